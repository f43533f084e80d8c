//! The dataset-spec format (YAML, under a pipeline's `datasets/`): what a
//! user may upload, the columns it must have, and where its raw files land.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use regex::Regex;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::error::{JobError, Result};
use crate::spec::{Checked, parse_type, yaml_error};

/// The landing key when a dataset names none, under the raw root.
pub const DEFAULT_LANDING: &str = "{dataset}/{yyyy}/{mm}/{dd}/{upload_id}.parquet";

/// A dataset: the files `medallion ingest` accepts for it, checked row by
/// row against its declared columns, and the job that loads them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Its name, as `medallion ingest <dataset>` and the events use it.
    pub dataset: String,
    /// The source formats it accepts.
    pub formats: Vec<SourceFormat>,
    /// The declared columns, in order: the Parquet written has exactly these.
    pub columns: Vec<DatasetColumn>,
    #[serde(default)]
    pub on_bad_row: OnBadRow,
    /// The key of the Parquet object an upload becomes, under the raw root:
    /// `{dataset}`, `{yyyy}`, `{mm}`, `{dd}` (the day of the ingest, UTC)
    /// and `{upload_id}`.
    #[serde(default = "default_landing")]
    pub landing: String,
    /// `job.raw_input`: the pipeline job, and its raw input, that load it.
    pub feeds: String,
    /// The file this spec was read from (set when loading).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_landing() -> String {
    DEFAULT_LANDING.into()
}

/// A format a source may arrive in (compressed or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Csv,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    Parquet,
}

/// What ingesting does with a row that breaks a declared column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRow {
    /// Keep the good rows; write the bad ones, with their line and reason,
    /// under `_quarantine/`.
    #[default]
    Quarantine,
    /// Refuse the whole source at its first bad row; nothing is written.
    RejectFile,
}

/// A declared column and the checks each of its values passes.
#[derive(Debug, Clone)]
pub struct DatasetColumn {
    pub name: String,
    pub data_type: DataType,
    /// A null (or missing, or empty) value is a bad row.
    pub required: bool,
    /// The value as written must match (anywhere, unless anchored).
    pub pattern: Option<Regex>,
    /// Bounds of a numeric value, inclusive.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Read through [`ColumnKeys`] so a bad type or pattern is an error at the
/// column's line.
impl<'de> Deserialize<'de> for DatasetColumn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Checked::<ColumnKeys, _>::new(
            "a column: `name`, `type`, and optionally `required`, `pattern`, `min`, `max`",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnKeys {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    #[serde(default)]
    required: bool,
    pattern: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
}

impl TryFrom<ColumnKeys> for DatasetColumn {
    type Error = String;

    fn try_from(keys: ColumnKeys) -> Result<Self, String> {
        let name = &keys.name;
        let data_type = parse_type(&keys.data_type).map_err(|e| format!("column `{name}`: {e}"))?;
        let pattern = keys
            .pattern
            .map(|p| {
                Regex::new(&p).map_err(|e| {
                    let first = e.to_string().lines().last().unwrap_or_default().to_string();
                    format!("column `{name}`: pattern `{p}` is not a regular expression ({first})")
                })
            })
            .transpose()?;
        let numeric = data_type.is_numeric();
        if (keys.min.is_some() || keys.max.is_some()) && !numeric {
            return Err(format!(
                "column `{name}`: `min` and `max` apply to numeric types, not {}",
                keys.data_type
            ));
        }
        if let (Some(min), Some(max)) = (keys.min, keys.max)
            && min > max
        {
            return Err(format!("column `{name}`: `min` {min} is above `max` {max}"));
        }
        Ok(DatasetColumn {
            name: keys.name,
            data_type,
            required: keys.required,
            pattern,
            min: keys.min,
            max: keys.max,
        })
    }
}

impl Dataset {
    /// Reads and checks one dataset spec.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| JobError::Io {
            path: path.to_path_buf(),
            context: "cannot read the dataset spec".into(),
            source,
        })?;
        let mut dataset: Dataset = serde_yaml::from_str(&text).map_err(|e| JobError::Spec {
            path: path.to_path_buf(),
            message: yaml_error(&e),
        })?;
        dataset.path = path.to_path_buf();
        dataset.check().map_err(|message| JobError::Spec {
            path: path.to_path_buf(),
            message: format!("dataset `{}`: {message}", dataset.dataset),
        })?;
        Ok(dataset)
    }

    /// What can be checked without the pipeline: names and the landing key.
    fn check(&self) -> Result<(), String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !name_ok(&self.dataset) {
            return Err("the name may hold only letters, digits, `_` and `-`".into());
        }
        if self.formats.is_empty() {
            return Err(
                "`formats` is empty; accept at least one of csv, json, ndjson, parquet".into(),
            );
        }
        if self.columns.is_empty() {
            return Err("`columns` is empty; declare the columns an upload must have".into());
        }
        for (index, column) in self.columns.iter().enumerate() {
            if self.columns[..index].iter().any(|c| c.name == column.name) {
                return Err(format!("column `{}` is declared twice", column.name));
            }
        }
        self.feeds()?;
        check_landing(&self.landing)
    }

    /// The job and raw input named by `feeds`.
    pub fn feeds(&self) -> Result<(&str, &str), String> {
        self.feeds
            .split_once('.')
            .filter(|(job, input)| !job.is_empty() && !input.is_empty())
            .ok_or_else(|| {
                format!(
                    "`feeds: {}` must be `job.raw_input`, e.g. bronze_orders.raw_orders",
                    self.feeds
                )
            })
    }

    /// The schema of the Parquet an upload becomes.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), !c.required))
                .collect::<Vec<_>>(),
        ))
    }

    /// The landing key of an upload ingested on `day` (UTC).
    pub fn landing_key(&self, upload_id: &str, day: chrono::NaiveDate) -> String {
        use chrono::Datelike;
        self.landing
            .replace("{dataset}", &self.dataset)
            .replace("{yyyy}", &format!("{:04}", day.year()))
            .replace("{mm}", &format!("{:02}", day.month()))
            .replace("{dd}", &format!("{:02}", day.day()))
            .replace("{upload_id}", upload_id)
    }
}

/// A landing key names each upload once, under the raw root, as Parquet.
fn check_landing(landing: &str) -> Result<(), String> {
    let known = ["{dataset}", "{yyyy}", "{mm}", "{dd}", "{upload_id}"];
    let mut rest = landing.to_string();
    for placeholder in known {
        rest = rest.replace(placeholder, "");
    }
    if rest.contains(['{', '}']) {
        return Err(format!(
            "`landing: {landing}` has an unknown placeholder; use {}",
            known.join(", ")
        ));
    }
    if !landing.contains("{upload_id}") || !landing.ends_with(".parquet") {
        return Err(format!(
            "`landing: {landing}` must contain {{upload_id}} and end in .parquet, so each upload is its own file"
        ));
    }
    if landing.starts_with('/') || landing.contains("://") || landing.split('/').any(|s| s == "..")
    {
        return Err(format!(
            "`landing: {landing}` must be a key under the raw root (no leading `/`, no `..`, no URI)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERS: &str = "dataset: orders\nformats: [csv, ndjson]\ncolumns:\n  - { name: id, type: int64, required: true }\n  - { name: status, type: string, pattern: \"^[FOP]$\" }\n  - { name: price, type: \"decimal(15,2)\", min: 0 }\nfeeds: bronze_orders.raw_orders\n";

    fn load(yaml: &str) -> Result<Dataset> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.yaml");
        std::fs::write(&path, yaml).unwrap();
        Dataset::load(&path)
    }

    #[test]
    fn a_dataset_spec_loads_with_its_defaults() {
        let dataset = load(ORDERS).unwrap();
        assert_eq!(dataset.on_bad_row, OnBadRow::Quarantine);
        assert_eq!(dataset.landing, DEFAULT_LANDING);
        assert_eq!(dataset.feeds().unwrap(), ("bronze_orders", "raw_orders"));
        assert_eq!(
            dataset.columns[2].data_type,
            DataType::Decimal128(15, 2),
            "the job specs' type names"
        );
        assert!(!dataset.schema().field(0).is_nullable());
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
        assert_eq!(
            dataset.landing_key("u-1", day),
            "orders/2026/03/04/u-1.parquet"
        );
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_refused_at_its_line() {
        let err = load(&ORDERS.replace("^[FOP]$", "^[FOP$"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("orders.yaml: line 5"), "{err}");
        assert!(err.contains("column `status`: pattern"), "{err}");
    }

    #[test]
    fn an_unknown_type_or_key_is_refused_at_its_line() {
        let err = load(&ORDERS.replace("type: int64", "type: int65"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4") && err.contains("unknown type `int65`"),
            "{err}"
        );
        let err = load(&ORDERS.replace("feeds:", "feed:"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 7") && err.contains("`feed`"), "{err}");
    }

    #[test]
    fn bounds_on_a_string_and_a_landing_without_the_upload_id_are_refused() {
        let err = load(&ORDERS.replace("pattern: \"^[FOP]$\"", "min: 1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("apply to numeric types"), "{err}");
        let err = load(&format!("{ORDERS}landing: \"{{dataset}}/all.parquet\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must contain {upload_id}"), "{err}");
    }
}
