//! The production path against real servers: raw data on S3, tables
//! committed through an Iceberg REST catalog that requires OAuth2 client
//! credentials. In CI both are SeaweedFS (`.ci/seaweedfs.sh`, started by
//! `tests/run.sh`). With `MEDALLION_TEST_LAKEKEEPER_URI` set, the same
//! tests also run against that Lakekeeper; without it they say they skipped.

#[path = "../it/support.rs"]
mod support;

mod auth;
mod backend;
mod faults;
mod pipeline;
mod proxy;
mod tcp_proxy;
mod vended;
mod vending;
