//! Catalog connections and the Iceberg commit protocol of medallion.
//!
//! iceberg-rust 0.10 can only fast-append, and it keeps the constructor of a
//! catalog commit private. medallion therefore writes its own snapshots
//! (manifests and manifest lists through the public spec writers) and hands the
//! resulting `TableUpdate`s and `TableRequirement`s to a [`CommitTransport`],
//! which talks to the catalog's commit endpoint directly. That gives every
//! write an explicit policy: a job id recorded in the snapshot summary (so a
//! re-run is a no-op), optimistic concurrency with retries, and clean-up of
//! files that never became part of a snapshot.

mod connection;
mod credentials;
mod error;
mod fanout;
mod maintenance;
mod merge;
mod object_storage;
mod partition;
mod rest;
mod rollback;
mod scan;
mod schema;
mod secret;
mod snapshot;
mod stale_connections;
mod transport;
mod write;

pub use connection::{Lakehouse, LakehouseConfig};
pub use credentials::NoCredentials;
pub use error::{CatalogError, MissingDataFile, Result};
pub use maintenance::{
    CompactReport, ExpireOptions, ExpireReport, MIN_SAFE_ORPHAN_AGE, ManifestsReport,
    OrphanOptions, OrphanReport,
};
pub use merge::MergeWrite;
pub use object_storage::{ObjectStoreStorage, ObjectStoreStorageFactory, ObjectStores, S3Settings};
pub use partition::PartitionField;
pub use rest::{RestSettings, RetryPolicy, TokenSource};
pub use scan::{live_files, snapshot_files};
pub use schema::{SchemaEvolution, normalize_arrow_schema, table_ident};
pub use secret::Secret;
pub use snapshot::{
    JOB_ID_PROPERTY, SnapshotInfo, latest_summary_property, snapshot_infos, snapshot_of_job,
};
pub use transport::{CommitTransport, SqlCommitTransport};
pub use write::{
    CommitOutcome, CommitPolicy, TableWrite, WriteMode, WriteStats, data_file_properties,
};
