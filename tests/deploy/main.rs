//! Tests of `medallion deploy`: manifests (golden files, kustomize, the
//! Kubernetes schemas), GitOps submission and pruning against real git,
//! `watch` against a scripted stand-in for the Kubernetes API, and the
//! container image's build and run rules.

mod airflow;
mod airflow_harness;
mod api_server;
mod git_http_server;
mod image;
mod manifests;
mod monitoring;
#[path = "../support/ports.rs"]
mod ports;
mod prune;
mod submit;
mod support;
mod watch;
