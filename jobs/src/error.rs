//! `JobError`: what is wrong with a job spec or its plan, naming the file.

use std::path::PathBuf;

/// Errors in job specs and their plans. Each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{}: {message}", path.display())]
    Spec { path: PathBuf, message: String },

    #[error("{}: {context}", path.display())]
    Plan {
        path: PathBuf,
        context: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },

    #[error("{}: {context}", path.display())]
    Io {
        path: PathBuf,
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = JobError> = std::result::Result<T, E>;
