//! Integration tests of the embedded lakehouse: the real `medallion` binary,
//! real Parquet and Iceberg files, a real SQLite catalog, and PyIceberg
//! reading the tables back. One test binary for the area keeps builds fast.

// Whole files of tests/support: each test binary names the ones it uses.
#[path = "../support"]
mod support {
    mod announced;
    mod history;
    mod lakehouse;
    mod listener;
    mod local;
    mod pipeline_copy;
    mod ports;
    mod prometheus;
    mod promtool;
    mod pyiceberg;
    mod raw_facts;
    mod runtime;
    mod sharded_events;
    mod tansu;
    mod workers;

    pub use lakehouse::*;
    pub use listener::*;
    pub use local::*;
    pub use ports::*;
    pub use prometheus::*;
    pub use promtool::*;
    pub use pyiceberg::*;
    pub use raw_facts::*;
    pub use runtime::*;
    pub use sharded_events::*;
    pub use tansu::*;
    pub use workers::*;
}

mod bad_input;
mod behaviour;
mod beside_writers;
mod concurrency;
mod delete;
mod demo;
mod distributed;
mod events;
mod foreign_deletes;
mod formats;
mod ingest;
mod integrity;
mod interop;
mod json_logs;
mod listen;
mod loads;
mod maintenance;
mod metrics;
mod metrics_file;
mod no_credentials;
mod reruns;
mod secrets;
mod shards;
mod spark_tables;
mod time_travel;
mod validate;
