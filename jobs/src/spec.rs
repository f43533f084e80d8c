use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, TimeUnit};
use serde::Deserialize;

use crate::error::{JobError, Result};

/// One job: where its data comes from, how it is transformed and which table
/// it commits to. Written as YAML; see `jobs/reference/` for examples.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Unique name of the job within its pipeline.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Raw files and tables the job reads. Tables also order the pipeline:
    /// a job runs after the job that writes a table it reads.
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
    /// Transform steps, in order; the last step's output is written.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    pub target: TargetSpec,
    /// `mode: maintain` only: what to do to the target table, in the order
    /// compact, rewrite manifests, expire snapshots, remove orphan files.
    #[serde(default)]
    pub maintenance: Option<MaintenanceSpec>,
    /// The file this spec was read from (set when loading).
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum InputSpec {
    /// A committed Iceberg table, readable in SQL under its name (`bronze.orders`).
    Table {
        table: String,
        #[serde(default)]
        read: TableRead,
    },
    /// Raw files: one file, a folder of parts, or a glob; relative paths are
    /// resolved against the configured raw root.
    Raw {
        name: String,
        path: String,
        #[serde(default)]
        format: RawFormat,
    },
}

/// How much of an input table a job reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableRead {
    /// The whole table at its current snapshot.
    #[default]
    All,
    /// Only the rows appended since this job last committed (incremental
    /// loads: merge the new bronze rows into silver). Each commit records
    /// the input snapshot it read up to; when that is unknown, or the input
    /// was rewritten since, the whole table is read.
    NewRows,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawFormat {
    #[default]
    Parquet,
    Csv,
    /// Newline-delimited JSON.
    Json,
}

impl RawFormat {
    pub fn extension(self) -> &'static str {
        match self {
            RawFormat::Parquet => ".parquet",
            RawFormat::Csv => ".csv",
            RawFormat::Json => ".json",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StepSpec {
    /// Name under which later steps can query this step's output.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub kind: StepKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Standardise raw files: rename, cast, trim strings, and add the
    /// `loaded_at`, `source_file` and `job_id` columns.
    Bronze(BronzeStep),
    /// SQL text, run by DataFusion.
    Sql(String),
    /// SQL in a file next to the spec.
    SqlFile(PathBuf),
    /// Keep one row per key: the one with the greatest `latest_by` values.
    Dedup(DedupStep),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BronzeStep {
    /// The raw input to load.
    pub from: String,
    pub columns: Vec<ColumnSpec>,
    /// Raw columns that no entry of `columns` reads.
    #[serde(default)]
    pub unlisted_columns: UnlistedColumns,
}

/// What the bronze step does with raw columns its `columns` do not name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlistedColumns {
    /// Store them too, under their name in snake_case, with their raw type
    /// (strings trimmed): a column that appears in the raw files appears
    /// in the output, and `target.on_schema_change` says whether the
    /// table takes it.
    #[default]
    Keep,
    /// Leave them out.
    Drop,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name in the table.
    pub name: String,
    /// Column name in the raw file.
    pub from: String,
    /// int32, int64, float64, boolean, string, date, timestamp, decimal(p,s).
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether a raw value may change on its way into `type`.
    #[serde(default)]
    pub cast: CastMode,
}

/// What a bronze column does with a raw value its type cannot hold exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CastMode {
    /// Fail the job, naming the file, the column and the value: 1.9 into
    /// an integer, 1.234 into decimal(10,2), a time of day into a date.
    #[default]
    Exact,
    /// Accept the change (1.9 becomes 1, 1.235 becomes 1.24, the time of
    /// day is dropped); a value that does not convert at all, such as
    /// 'abc' into a number or one out of range, still fails.
    Lossy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupStep {
    /// Step or table to dedup.
    pub from: String,
    pub keys: Vec<String>,
    /// Ordering columns, most significant first; the greatest wins, and a
    /// null never beats a value.
    pub latest_by: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// `<namespace>.<table>`, e.g. `silver.orders`.
    pub table: String,
    pub mode: TargetMode,
    /// Partition fields of the table: `column`, `year(c)`, `month(c)`,
    /// `day(c)`, `hour(c)`, `bucket(N, c)`, `truncate(W, c)`.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Overwrite only: replace just the rows this SQL predicate is true
    /// for (and keep the rest), e.g. `order_date >= DATE '2024-06-01'`.
    #[serde(default)]
    pub replace_where: Option<String>,
    /// Merge only: the columns that identify a row.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Merge only: a boolean column of the job's output; where it is true
    /// the key is deleted from the table. The column is not stored.
    #[serde(default)]
    pub delete_when: Option<String>,
    /// When the output's columns differ from the table's: `fail` (the
    /// default), or `evolve` (add new columns, widen int to long, float to
    /// double and a decimal's precision, write nulls for missing columns).
    #[serde(default)]
    pub on_schema_change: medallion_catalog::SchemaEvolution,
}

impl TargetSpec {
    /// The parsed `partition_by` (checked when the spec was loaded).
    pub fn partition_fields(&self) -> Vec<medallion_catalog::PartitionField> {
        self.partition_by
            .iter()
            .filter_map(|f| medallion_catalog::PartitionField::parse(f).ok())
            .collect()
    }
}

/// How the job's output changes its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetMode {
    /// Add the rows (bronze loads).
    Append,
    /// Replace the whole table (gold aggregates).
    Overwrite,
    /// Replace the partitions the output falls in; keep the others
    /// (re-loading some days of a table partitioned by day).
    OverwritePartitions,
    /// Upsert on `keys`: replace rows with the same key, add the others
    /// (silver). Only data files holding a matching key are rewritten.
    Merge,
    /// No new data: run the `maintenance` tasks on the table.
    Maintain,
}

/// Table maintenance as a job, so it is scheduled like any other.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    /// Rewrite small data files into target-sized ones.
    #[serde(default)]
    pub compact: bool,
    pub expire_snapshots: Option<ExpireSpec>,
    pub remove_orphan_files: Option<OrphanSpec>,
    /// List the live data files in one manifest.
    #[serde(default)]
    pub rewrite_manifests: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpireSpec {
    /// Expire snapshots older than this age (`5d`, `12h`, `30m`, `0s`).
    #[serde(default = "five_days")]
    pub older_than: String,
    /// Ancestors of the current snapshot that always stay.
    #[serde(default = "one")]
    pub retain_last: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrphanSpec {
    /// Safety age: younger files are never deleted.
    #[serde(default = "three_days")]
    pub older_than: String,
}

fn five_days() -> String {
    "5d".into()
}

fn three_days() -> String {
    "3d".into()
}

fn one() -> usize {
    1
}

/// Parses an age like `5d`, `12h`, `30m` or `0s`.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not an age ({e}); use e.g. 5d, 12h, 30m or 0s"))
}

impl ColumnSpec {
    pub fn arrow_type(&self) -> Result<DataType, String> {
        parse_type(&self.data_type)
    }
}

/// Parses the type names job specs use.
pub fn parse_type(name: &str) -> Result<DataType, String> {
    let lower = name.trim().to_ascii_lowercase();
    let simple = match lower.as_str() {
        "int" | "int32" | "integer" => Some(DataType::Int32),
        "long" | "int64" | "bigint" => Some(DataType::Int64),
        "float" | "float32" => Some(DataType::Float32),
        "double" | "float64" => Some(DataType::Float64),
        "bool" | "boolean" => Some(DataType::Boolean),
        "string" | "varchar" | "text" => Some(DataType::Utf8),
        "date" => Some(DataType::Date32),
        "timestamp" => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        "timestamptz" => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("+00:00".into()),
        )),
        _ => None,
    };
    if let Some(t) = simple {
        return Ok(t);
    }
    if let Some(args) = lower
        .strip_prefix("decimal(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let mut parts = args.split(',').map(str::trim);
        if let (Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next())
            && let (Ok(precision), Ok(scale)) = (p.parse::<u8>(), s.parse::<i8>())
            && (1..=38).contains(&precision)
            && scale >= 0
            && scale as u8 <= precision
        {
            return Ok(DataType::Decimal128(precision, scale));
        }
    }
    Err(format!(
        "unknown type `{name}`; use int32, int64, float32, float64, boolean, string, date, \
         timestamp, timestamptz or decimal(p,s) with p <= 38"
    ))
}

impl JobSpec {
    /// Reads and checks one spec file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| JobError::Io {
            path: path.to_path_buf(),
            context: "cannot read the job spec".into(),
            source,
        })?;
        let mut spec: JobSpec = serde_yaml::from_str(&text).map_err(|e| JobError::Spec {
            path: path.to_path_buf(),
            message: match e.location() {
                Some(at) => format!("line {} column {}: {e}", at.line(), at.column()),
                None => e.to_string(),
            },
        })?;
        spec.path = path.to_path_buf();
        spec.check()?;
        Ok(spec)
    }

    fn error(&self, message: impl Into<String>) -> JobError {
        JobError::Spec {
            path: self.path.clone(),
            message: format!("job `{}`: {}", self.name, message.into()),
        }
    }

    /// Checks what can be checked without data: names, references, types.
    fn check(&self) -> Result<()> {
        medallion_catalog::table_ident(&self.target.table)
            .map_err(|e| self.error(e.to_string()))?;
        if self.target.mode == TargetMode::Maintain {
            return self.check_maintenance();
        }
        if self.maintenance.is_some() {
            return Err(self.error("`maintenance` needs `target.mode: maintain`"));
        }
        if self.steps.is_empty() {
            return Err(self.error("`steps` is empty; a job needs at least one step"));
        }
        for field in &self.target.partition_by {
            medallion_catalog::PartitionField::parse(field)
                .map_err(|e| self.error(format!("target.partition_by: {e}")))?;
        }
        if self.target.replace_where.is_some() && self.target.mode != TargetMode::Overwrite {
            return Err(self.error("`target.replace_where` only applies to `mode: overwrite`"));
        }
        let merge = self.target.mode == TargetMode::Merge;
        if merge && self.target.keys.is_empty() {
            return Err(self.error(
                "`target.mode: merge` needs `target.keys`, the columns that identify a row",
            ));
        }
        if !merge && (!self.target.keys.is_empty() || self.target.delete_when.is_some()) {
            return Err(
                self.error("`target.keys` and `target.delete_when` only apply to `mode: merge`")
            );
        }
        let mut known: Vec<String> = self
            .inputs
            .iter()
            .map(|i| i.reference().to_string())
            .collect();
        for input in &self.inputs {
            if let InputSpec::Table { table, .. } = input {
                medallion_catalog::table_ident(table).map_err(|e| self.error(e.to_string()))?;
            }
        }
        for (index, step) in self.steps.iter().enumerate() {
            let step_no = index + 1;
            match &step.kind {
                StepKind::Bronze(bronze) => {
                    let raw = self
                        .inputs
                        .iter()
                        .any(|i| matches!(i, InputSpec::Raw { name, .. } if name == &bronze.from));
                    if !raw {
                        return Err(self.error(format!(
                            "step {step_no}: bronze `from: {}` must name a raw input of this job",
                            bronze.from
                        )));
                    }
                    if bronze.columns.is_empty() {
                        return Err(
                            self.error(format!("step {step_no}: bronze `columns` is empty"))
                        );
                    }
                    for column in &bronze.columns {
                        column.arrow_type().map_err(|e| {
                            self.error(format!("step {step_no}, column `{}`: {e}", column.name))
                        })?;
                    }
                }
                StepKind::Dedup(dedup) => {
                    if !known.contains(&dedup.from) {
                        return Err(self.error(format!(
                            "step {step_no}: dedup `from: {}` is neither an input nor an earlier step; known: {}",
                            dedup.from,
                            known.join(", ")
                        )));
                    }
                    if dedup.keys.is_empty() {
                        return Err(
                            self.error(format!("step {step_no}: dedup needs at least one key"))
                        );
                    }
                }
                StepKind::SqlFile(file) => {
                    let sql_path = self.sql_path(file);
                    if !sql_path.is_file() {
                        return Err(self.error(format!(
                            "step {step_no}: SQL file {} does not exist",
                            sql_path.display()
                        )));
                    }
                }
                StepKind::Sql(_) => {}
            }
            if let Some(name) = &step.name {
                known.push(name.clone());
            }
        }
        Ok(())
    }

    fn check_maintenance(&self) -> Result<()> {
        if !self.steps.is_empty() || !self.inputs.is_empty() {
            return Err(
                self.error("a `mode: maintain` job has no `inputs` or `steps`, only `maintenance`")
            );
        }
        let Some(tasks) = &self.maintenance else {
            return Err(self.error(
                "`mode: maintain` needs `maintenance`, e.g. `maintenance: { compact: true }`",
            ));
        };
        let ages = tasks
            .expire_snapshots
            .iter()
            .map(|e| &e.older_than)
            .chain(tasks.remove_orphan_files.iter().map(|o| &o.older_than));
        for age in ages {
            parse_age(age).map_err(|e| self.error(format!("maintenance: {e}")))?;
        }
        if !tasks.compact
            && !tasks.rewrite_manifests
            && tasks.expire_snapshots.is_none()
            && tasks.remove_orphan_files.is_none()
        {
            return Err(self.error(
                "`maintenance` names no task: compact, rewrite_manifests, expire_snapshots or remove_orphan_files",
            ));
        }
        Ok(())
    }

    /// SQL files are relative to the spec's folder.
    pub fn sql_path(&self, file: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(file)
    }

    /// Tables this job reads.
    pub fn input_tables(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().filter_map(|i| match i {
            InputSpec::Table { table, .. } => Some(table.as_str()),
            InputSpec::Raw { .. } => None,
        })
    }
}

impl InputSpec {
    /// The name SQL and steps use for this input.
    pub fn reference(&self) -> &str {
        match self {
            InputSpec::Table { table, .. } => table,
            InputSpec::Raw { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse() {
        assert_eq!(
            parse_type("decimal(15,2)").unwrap(),
            DataType::Decimal128(15, 2)
        );
        assert_eq!(parse_type("int64").unwrap(), DataType::Int64);
        assert!(parse_type("decimal(40,2)").is_err());
        assert!(
            parse_type("varchar2")
                .unwrap_err()
                .contains("unknown type `varchar2`")
        );
    }

    #[test]
    fn unknown_keys_point_at_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.yaml");
        std::fs::write(
            &path,
            "name: j\nsteps:\n  - sql: SELECT 1 AS x\ntarget:\n  table: gold.x\n  mode: append\n  partitoned_by: [x]\n",
        )
        .unwrap();
        let err = JobSpec::load(&path).unwrap_err().to_string();
        assert!(err.contains("job.yaml: line 7"), "{err}");
        assert!(err.contains("partitoned_by"), "{err}");
    }

    #[test]
    fn dedup_must_name_something_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.yaml");
        std::fs::write(
            &path,
            "name: j\ninputs:\n  - table: bronze.orders\nsteps:\n  - dedup: { from: bronze.ordres, keys: [k], latest_by: [t] }\ntarget: { table: silver.orders, mode: overwrite }\n",
        )
        .unwrap();
        let err = JobSpec::load(&path).unwrap_err().to_string();
        assert!(err.contains("dedup `from: bronze.ordres`"), "{err}");
    }
}
