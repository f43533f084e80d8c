//! The production path against real servers: raw data on S3, tables
//! committed through an Iceberg REST catalog that requires OAuth2 client
//! credentials. In CI both are SeaweedFS (`.ci/seaweedfs.sh`, started by
//! `tests/run.sh`). With `MEDALLION_TEST_LAKEKEEPER_URI` set, the same
//! tests also run against that Lakekeeper; without it they say they skipped.

// Whole files of tests/support: each test binary names the ones it uses.
#[path = "../support"]
mod support {
    mod announced;
    mod history;
    mod lakehouse;
    mod listener;
    mod pipeline_copy;
    mod ports;
    mod promtool;
    mod pyiceberg;
    mod raw_facts;
    mod runtime;
    mod served;
    mod sharded_events;
    mod tansu;
    mod workers;

    pub use lakehouse::*;
    pub use listener::*;
    pub use ports::*;
    pub use promtool::*;
    pub use pyiceberg::*;
    pub use raw_facts::*;
    pub use runtime::*;
    pub use served::*;
    pub use sharded_events::*;
    pub use tansu::*;
    pub use workers::*;
}

mod auth;
mod backend;
mod distributed;
mod duckdb_tables;
mod faults;
mod idp_outage;
mod ingest;
mod introspection;
mod oidc;
mod pipeline;
mod proxy;
mod shards;
mod tcp_proxy;
mod upload_api;
mod upload_to_gold;
mod vended;
mod vending;
