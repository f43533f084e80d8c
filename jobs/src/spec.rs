//! The job-spec format (YAML): inputs, steps, target and maintenance, with
//! the checks a spec passes when it is loaded.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, TimeUnit};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::error::{JobError, Result};

/// How a job's work is split (`execution: { shards: 4, commit: single }`)
/// or where it runs (`execution: { mode: distributed }`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionSpec {
    /// `local` (the default): in this process; `distributed`: its query on
    /// the configured workers, this process writing and committing.
    #[serde(default)]
    pub mode: ExecutionMode,
    /// The processes its raw files are split among; each takes a stable
    /// shard of them. Unset: one process reads every file.
    #[serde(default)]
    pub shards: Option<u32>,
    /// `single` (the default): one snapshot once every shard has written;
    /// `per-shard`: each shard commits its own.
    #[serde(default)]
    pub commit: medallion_catalog::ShardCommit,
}

/// Where a job's query runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionMode {
    /// In the process that runs the job.
    #[default]
    Local,
    /// On the workers of a datafusion-distributed cluster (`medallion
    /// worker`), stages split among them and shuffled between them over
    /// Arrow Flight; the process that runs the job writes and commits.
    Distributed,
}

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
    /// How the job's work is split: `execution: { shards: 4 }`.
    #[serde(default)]
    pub execution: ExecutionSpec,
    /// The file this spec was read from (set when loading).
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub enum InputSpec {
    /// A committed Iceberg table, readable in SQL under its name (`bronze.orders`).
    Table { table: String, read: TableRead },
    /// Raw files: one file, a folder of parts, or a glob; relative paths are
    /// resolved against the configured raw root.
    Raw {
        name: String,
        path: String,
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

/// Read through [`InputKeys`]: an untagged enum would answer an unknown
/// key with "did not match any variant".
impl<'de> Deserialize<'de> for InputSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Checked::<InputKeys, _>::new(
            "an input: `table` (and `read`), or `name`, `path` (and `format`)",
        ))
    }
}

/// Every key an input may have.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputKeys {
    table: Option<String>,
    read: Option<TableRead>,
    name: Option<String>,
    path: Option<String>,
    format: Option<RawFormat>,
}

impl TryFrom<InputKeys> for InputSpec {
    type Error = String;

    fn try_from(keys: InputKeys) -> Result<Self, String> {
        match keys {
            InputKeys {
                table: Some(table),
                read,
                name: None,
                path: None,
                format: None,
            } => Ok(InputSpec::Table {
                table,
                read: read.unwrap_or_default(),
            }),
            InputKeys {
                table: None,
                read: None,
                name: Some(name),
                path: Some(path),
                format,
            } => Ok(InputSpec::Raw {
                name,
                path,
                format: format.unwrap_or_default(),
            }),
            keys => {
                let given = [
                    ("table", keys.table.is_some()),
                    ("read", keys.read.is_some()),
                    ("name", keys.name.is_some()),
                    ("path", keys.path.is_some()),
                    ("format", keys.format.is_some()),
                ];
                Err(format!(
                    "has {}; an input is either a table (`table`, optionally `read`) or raw files \
                     (`name` and `path`, optionally `format`)",
                    listed(given.iter().filter(|(_, is)| *is).map(|(key, _)| *key))
                ))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepSpec {
    /// Name under which later steps can query this step's output.
    pub name: Option<String>,
    pub kind: StepKind,
}

/// Read through [`StepKeys`]: `#[serde(flatten)]` of the kind would ignore
/// unknown keys and every kind after the first.
impl<'de> Deserialize<'de> for StepSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Checked::<StepKeys, _>::new(
            "a step: one of `bronze`, `sql`, `sql_file` or `dedup`, and optionally `name`",
        ))
    }
}

/// Every key a step may have; a step has exactly one kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepKeys {
    name: Option<String>,
    bronze: Option<BronzeStep>,
    sql: Option<String>,
    sql_file: Option<PathBuf>,
    dedup: Option<DedupStep>,
}

impl TryFrom<StepKeys> for StepSpec {
    type Error = String;

    fn try_from(keys: StepKeys) -> Result<Self, String> {
        let mut kinds: Vec<(&str, StepKind)> = [
            keys.bronze.map(|b| ("bronze", StepKind::Bronze(b))),
            keys.sql.map(|s| ("sql", StepKind::Sql(s))),
            keys.sql_file.map(|f| ("sql_file", StepKind::SqlFile(f))),
            keys.dedup.map(|d| ("dedup", StepKind::Dedup(d))),
        ]
        .into_iter()
        .flatten()
        .collect();
        match kinds.len() {
            0 => Err("has no kind; give it one of `bronze`, `sql`, `sql_file` or `dedup`".into()),
            1 => Ok(StepSpec {
                name: keys.name,
                kind: kinds.remove(0).1,
            }),
            _ => Err(format!(
                "has both `{}` and `{}`; split it into two steps, naming the first (`name: ...`) \
                 and reading it from the second",
                kinds[0].0, kinds[1].0
            )),
        }
    }
}

/// `` `a`, `b` and `c` ``.
fn listed<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let keys: Vec<String> = keys.map(|k| format!("`{k}`")).collect();
    match keys.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => keys.concat(),
    }
}

/// Reads a mapping as its keys `K`, then checks them into `T`. The check
/// runs while the mapping is read, so serde_yaml gives its error the
/// mapping's line (an error after `deserialize` returned gets the list's).
pub(crate) struct Checked<K, T> {
    expecting: &'static str,
    types: PhantomData<fn(K) -> T>,
}

impl<K, T> Checked<K, T> {
    pub(crate) fn new(expecting: &'static str) -> Self {
        Self {
            expecting,
            types: PhantomData,
        }
    }
}

impl<'de, K, T> Visitor<'de> for Checked<K, T>
where
    K: Deserialize<'de>,
    T: TryFrom<K, Error = String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let keys = K::deserialize(MapAccessDeserializer::new(map))?;
        T::try_from(keys).map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone)]
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
    /// Merge only: how the rows the new keys replace leave their files:
    /// `copy-on-write` (rewrite those files) or `merge-on-read` (write
    /// position deletes; `compact` folds them in later). Unset: the table's
    /// `write.merge.mode` property, else copy-on-write.
    #[serde(default)]
    pub write_mode: Option<medallion_catalog::RowLevelMode>,
    /// The Iceberg format version of a table this job creates: 2 (the
    /// default) or 3, whose merge-on-read deletes are deletion vectors.
    /// An existing table must already be of it.
    #[serde(default, alias = "format-version")]
    pub format_version: Option<medallion_catalog::FormatVersion>,
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

impl TargetMode {
    /// The catalog write that carries out this mode; `None` for a merge
    /// (a write of its own) and for maintenance (no write of rows).
    pub fn write_mode(self) -> Option<medallion_catalog::WriteMode> {
        use medallion_catalog::WriteMode;
        match self {
            Self::Append => Some(WriteMode::Append),
            Self::Overwrite => Some(WriteMode::Overwrite),
            Self::OverwritePartitions => Some(WriteMode::OverwritePartitions),
            Self::Merge | Self::Maintain => None,
        }
    }
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
    /// Safety age: younger files are never deleted (at least 1d, unless
    /// `force_unsafe_age`).
    #[serde(default = "three_days")]
    pub older_than: String,
    /// Allow an age under a day: only when no job writes the table then.
    #[serde(default)]
    pub force_unsafe_age: bool,
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
            message: yaml_error(&e),
        })?;
        spec.path = path.to_path_buf();
        spec.check()?;
        Ok(spec)
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> JobError {
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
        if self.execution.shards.is_some() {
            self.check_shardable()?;
        }
        if self.execution.mode == ExecutionMode::Distributed {
            self.check_distributable()?;
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
        if !merge && self.target.write_mode.is_some() {
            return Err(self.error(
                "`target.write_mode` only applies to `mode: merge` (copy-on-write or merge-on-read)",
            ));
        }
        if self.target.format_version == Some(medallion_catalog::FormatVersion::V1) {
            return Err(self.error(
                "`target.format_version: 1` cannot be written by medallion; use 2 (the default) or 3",
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

    /// Checks `target.partition_by` against the job's output: each field's
    /// column is there, and its transform takes the column's type.
    pub fn check_partitioning(&self, output: &arrow::datatypes::Schema) -> Result<()> {
        for text in &self.target.partition_by {
            medallion_catalog::PartitionField::parse(text)
                .and_then(|field| field.check_output(output))
                .map_err(|e| self.error(format!("target.partition_by `{text}`: {e}")))?;
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

/// serde_yaml says ``steps[1].dedup: missing field `keys` at line 9 column 5``;
/// this says ``line 9 column 5: step 2, dedup: missing field `keys` ``: the
/// place once, first, and steps and inputs counted from 1 as in the checks.
pub(crate) fn yaml_error(error: &serde_yaml::Error) -> String {
    let text = error.to_string();
    let Some(at) = error.location() else {
        return text;
    };
    let place = format!("line {} column {}", at.line(), at.column());
    let message = text.strip_suffix(&format!(" at {place}")).unwrap_or(&text);
    format!("{place}: {}", counted_from_one(message))
}

fn counted_from_one(message: &str) -> String {
    for (list, item) in [("steps", "step"), ("inputs", "input")] {
        if let Some((index, rest)) = message
            .strip_prefix(list)
            .and_then(|m| m.strip_prefix('['))
            .and_then(|m| m.split_once(']'))
            && let Ok(index) = index.parse::<usize>()
        {
            let rest = rest
                .strip_prefix('.')
                .map_or_else(|| rest.to_string(), |deeper| format!(", {deeper}"));
            return format!("{item} {}{rest}", index + 1);
        }
    }
    message.to_string()
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

    /// The error of loading `yaml` as `job.yaml`.
    fn load_error(yaml: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.yaml");
        std::fs::write(&path, yaml).unwrap();
        JobSpec::load(&path).unwrap_err().to_string()
    }

    #[test]
    fn a_step_with_both_sql_and_dedup_is_refused_with_its_line() {
        let err = load_error(
            "name: j\ninputs:\n  - table: bronze.orders\nsteps:\n  - name: recent\n    sql: SELECT * FROM bronze.orders\n  - sql: SELECT * FROM recent\n    dedup: { from: recent, keys: [k], latest_by: [t] }\ntarget: { table: silver.orders, mode: overwrite }\n",
        );
        assert!(err.contains("job.yaml: line 7"), "{err}");
        assert!(
            err.contains("step 2") && err.contains("`sql` and `dedup`"),
            "{err}"
        );
        assert!(err.contains("split it into two steps"), "{err}");
    }

    #[test]
    fn an_unknown_step_key_is_refused_with_its_line() {
        let err = load_error(
            "name: j\nsteps:\n  - sql: SELECT 1 AS x\n    nmae: first\ntarget: { table: gold.x, mode: overwrite }\n",
        );
        assert!(err.contains("job.yaml: line 4"), "{err}");
        assert!(err.contains("step 1") && err.contains("`nmae`"), "{err}");
        assert!(
            err.contains("`sql_file`"),
            "the error lists the keys there are: {err}"
        );
    }

    #[test]
    fn a_step_without_a_kind_is_refused() {
        let err = load_error(
            "name: j\nsteps:\n  - name: first\ntarget: { table: gold.x, mode: overwrite }\n",
        );
        assert!(err.contains("job.yaml: line 3"), "{err}");
        assert!(
            err.contains("step 1") && err.contains("`bronze`, `sql`, `sql_file` or `dedup`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_input_key_is_refused_with_its_line() {
        let err = load_error(
            "name: j\ninputs:\n  - table: bronze.orders\n  - name: raw\n    path: tpch/orders\n    fromat: csv\nsteps:\n  - sql: SELECT 1 AS x\ntarget: { table: gold.x, mode: overwrite }\n",
        );
        assert!(err.contains("job.yaml: line 6"), "{err}");
        assert!(err.contains("input 2") && err.contains("`fromat`"), "{err}");
        assert!(
            err.contains("`format`"),
            "the error lists the keys there are: {err}"
        );
    }

    #[test]
    fn an_input_that_is_both_a_table_and_raw_files_is_refused() {
        let err = load_error(
            "name: j\ninputs:\n  - { table: bronze.orders, path: tpch/orders }\nsteps:\n  - sql: SELECT 1 AS x\ntarget: { table: gold.x, mode: overwrite }\n",
        );
        assert!(err.contains("job.yaml: line 3"), "{err}");
        assert!(
            err.contains("input 1") && err.contains("`table`") && err.contains("`path`"),
            "{err}"
        );
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
