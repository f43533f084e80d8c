//! Catalog connections and the Iceberg commit protocol of medallion.
//!
//! iceberg-rust 0.10 can only fast-append, and it keeps the constructor of a
//! catalog commit private. medallion therefore writes its own snapshots
//! (manifests and manifest lists through the public spec writers) and hands the
//! resulting `TableUpdate`s and `TableRequirement`s to a `CommitTransport`,
//! which talks to the catalog's commit endpoint directly. That gives every
//! write an explicit policy: a job id recorded in the snapshot summary (so a
//! re-run is a no-op), optimistic concurrency with retries, and clean-up of
//! files that never became part of a snapshot.
//!
//! A write reads in one direction: `write.rs` or `merge/` (what the caller
//! asks) → `target.rs` (the table, and how the rows fit it) → `data_files.rs`
//! (rows into Parquet files) → `commit.rs` (one snapshot, planned by
//! `snapshot.rs`, sent through `transport.rs` or `rest/`). `history.rs`
//! names the snapshot-summary keys all of them record and read.

mod commit;
mod commit_observer;
mod conflicts;
mod connection;
mod credentials;
mod data_files;
mod delete;
mod delete_files;
mod deletion_vector_files;
mod deletion_vectors;
mod error;
mod fanout;
mod file_target;
mod history;
mod maintenance;
mod merge;
mod object_storage;
mod partition;
mod position_deletes;
mod rest;
mod rollback;
mod row_level;
mod row_lineage;
mod scan;
mod schema;
mod secret;
mod shard;
mod shard_staging;
mod snapshot;
mod stale_connections;
mod target;
mod transport;
mod write;

pub use commit::{CommitOutcome, CommitProperties, WriteStats};
pub use commit_observer::{AttemptEnd, CommitObserver};
pub use conflicts::{FilterOverwrite, REPLANS};
pub use connection::{Lakehouse, LakehouseConfig};
pub use credentials::NoCredentials;
pub use data_files::data_file_properties;
pub use delete_files::DeletedPositions;
pub use error::{CatalogError, MissingDataFile, Result};
pub use file_target::FileTarget;
pub use history::{
    SnapshotInfo, TableInfo, input_read, snapshot_infos, snapshot_of_job, snapshot_of_shard,
    table_rows,
};
/// The Iceberg format version a job asks for its table (`target.format_version`).
pub use iceberg::spec::FormatVersion;
pub use maintenance::{
    CompactReport, ExpireOptions, ExpireReport, MIN_SAFE_ORPHAN_AGE, ManifestsReport,
    OrphanOptions, OrphanReport,
};
pub use merge::MergeWrite;
pub use object_storage::{ObjectStores, S3Settings};
pub use partition::PartitionField;
pub use position_deletes::{DeletedRows, read_delete_files_of};
pub use rest::RestSettings;
pub use rollback::RollbackPlan;
pub use row_level::{RowLevelMode, RowLevelOperation};
pub use scan::{live_files, snapshot_files};
pub use schema::{SchemaEvolution, normalize_arrow_schema, table_ident};
pub use secret::{Secret, redacted_uri};
pub use shard::{Shard, ShardCommit};
pub use shard_staging::ShardOutcome;
pub use write::{TableWrite, WriteMode, WriteOptions};
