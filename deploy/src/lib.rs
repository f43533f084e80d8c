//! Running medallion pipelines as Kubernetes Jobs through a GitOps
//! repository, in place of SparkApplications and the Spark Operator:
//! `render` turns a run into `batch/v1` Job manifests (typed k8s-openapi
//! objects, so they are valid by construction), `submit` commits them where
//! ArgoCD applies them, `watch` follows them through the Kubernetes API and
//! `prune` removes finished ones.

pub mod cli;
pub mod credentials;
pub mod git;
pub mod job;
pub mod layout;
pub mod names;
pub mod prune;
pub mod render;
pub mod schema;
pub mod submit;
pub mod template;
pub mod update;
pub mod watch;
pub mod waves;

pub use cli::DeployCommand;
pub use job::{JobDescription, JobSource, PipelineSource, RunRequest};
