//! Jobs are data, not code: a pipeline is a folder of YAML job specs and SQL
//! files. This crate reads them, orders them, checks them and turns one job
//! into a DataFusion plan; running the plan and committing its output is the
//! engine's work.

mod bronze;
mod csv_lines;
mod dataset;
mod dedup;
mod distribution;
mod error;
mod exact_cast;
mod job_id;
mod json_lines;
mod parquet_columns;
mod pipeline;
mod plan;
mod query;
mod raw;
mod raw_file_errors;
mod raw_scan;
mod run;
mod shards;
mod spec;

pub use bronze::{JOB_ID, LOADED_AT, SOURCE_FILE, bronze_frame, loaded_at_type};
pub use dataset::{DEFAULT_LANDING, Dataset, DatasetColumn, OnBadRow, SourceFormat};
pub use dedup::keep_latest;
pub use error::{JobError, Result};
pub use job_id::parse_job_id;
pub use pipeline::{DATASETS_DIR, Pipeline, reference_pipeline_dir};
pub use plan::plan_job;
pub use query::{Effect, NotAQuery, QueryError, plan_query};
pub use raw::{RawFile, compression_of};
pub use run::RunParameters;
pub use spec::{
    BronzeStep, CastMode, ColumnSpec, DedupStep, ExecutionMode, ExecutionSpec, ExpireSpec,
    InputSpec, JobSpec, MaintenanceSpec, OrphanSpec, RawFormat, StepKind, StepSpec, TableRead,
    TargetMode, TargetSpec, parse_age,
};
