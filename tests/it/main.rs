//! Integration tests of the embedded lakehouse: the real `medallion` binary,
//! real Parquet and Iceberg files, a real SQLite catalog, and PyIceberg
//! reading the tables back. One test binary for the area keeps builds fast.

// Whole files of tests/support: each test binary names the ones it uses.
#[path = "../support"]
mod support {
    mod history;
    mod lakehouse;
    mod listener;
    mod local;
    mod pipeline_copy;
    mod pyiceberg;
    mod raw_facts;
    mod runtime;
    mod tansu;

    pub use lakehouse::*;
    pub use listener::*;
    pub use local::*;
    pub use pyiceberg::*;
    pub use raw_facts::*;
    pub use runtime::*;
    pub use tansu::*;
}

mod bad_input;
mod behaviour;
mod beside_writers;
mod concurrency;
mod delete;
mod demo;
mod events;
mod formats;
mod integrity;
mod interop;
mod listen;
mod loads;
mod maintenance;
mod reruns;
mod secrets;
mod time_travel;
mod validate;
