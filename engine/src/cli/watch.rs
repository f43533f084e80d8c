//! The metrics of one command: what its jobs or its maintenance task did,
//! recorded from their reports once they are known, failed ones included.

use std::time::Instant;

use anyhow::Result;
use medallion_jobs::Pipeline;

use crate::engine::Engine;
use crate::metrics::{CommitCounts, Registry, record_dq, record_job, record_run};
use crate::report::{JobReport, JobStatus, RunReport};

/// One command's registry and its trace id.
pub struct Watch {
    pub registry: Registry,
    pub trace_id: String,
}

impl Watch {
    pub fn new(trace_id: String) -> Self {
        Self {
            registry: Registry::default(),
            trace_id,
        }
    }

    /// Every job of a pipeline run, and the checks of its dq report.
    pub async fn run(&self, engine: &Engine, report: &RunReport) {
        record_run(&self.registry, report, &engine.commits);
        record_dq(&self.registry, engine, report).await;
    }

    /// Every job of `pipeline` as failed: the engine did not even open.
    pub fn none_ran(&self, pipeline: &Pipeline) {
        for job in &pipeline.jobs {
            record_job(
                &self.registry,
                &JobReport::failed(job),
                &CommitCounts::default(),
            );
        }
    }

    /// A maintenance command `name` on `table`, started at `started`;
    /// `written` says the rows and files it wrote, if it wrote any.
    pub fn task<T>(
        &self,
        engine: &Engine,
        name: &str,
        table: &str,
        started: Instant,
        result: &Result<T>,
        written: impl Fn(&T) -> Option<(u64, usize)>,
    ) {
        let status = match result {
            Ok(_) => JobStatus::Committed,
            Err(_) => JobStatus::Failed,
        };
        let mut report = JobReport::command(name, table, status);
        report.seconds = started.elapsed().as_secs_f64();
        if let Some((rows, files)) = result.as_ref().ok().and_then(&written) {
            report.rows_written = Some(rows);
            report.files = Some(files);
        }
        // Maintenance loads no rows: no last-success time for the table.
        report.maintenance = Some(Default::default());
        record_job(&self.registry, &report, &engine.commits);
    }
}
