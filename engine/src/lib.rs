//! The medallion engine: configuration, storage, DataFusion sessions, job
//! execution and the command line. The `medallion` binary is a thin wrapper
//! over [`cli::run`].

pub mod bucket_store;
pub mod cgroup;
pub mod check;
pub mod cli;
pub mod config;
pub mod conflict_filter;
pub mod delete;
pub mod delete_positions;
pub mod engine;
pub mod errors;
pub mod events;
pub mod execute;
pub mod field_ids;
pub mod ingest;
pub mod loaded_sources;
pub mod logging;
pub mod maintain;
pub mod metrics;
pub mod missing_files;
pub mod peak_memory;
pub mod position_deletes;
pub mod progress;
pub mod query_tables;
pub mod replan;
pub mod report;
pub mod serve;
pub mod session;
pub mod storage;
pub mod table_scan;
pub mod tables;
pub mod tpch;
pub mod tpch_changes;
pub mod upload_status;
pub mod validate;
