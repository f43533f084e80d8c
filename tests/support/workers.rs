//! `medallion worker` processes on free ports of 127.0.0.1: a real
//! datafusion-distributed cluster for the jobs that run distributed. Each
//! worker's log is kept; it logs every task it is sent.

use std::process::Child;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::Lakehouse;
use super::announced::{Announced, start_announced};

pub struct Worker {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Each task's plan as the worker logged it, as it arrives.
    pub tasks: mpsc::Receiver<String>,
}

impl Lakehouse {
    /// `medallion worker --listen 127.0.0.1:0`, up, with a 512 MiB pool.
    pub fn worker(&self) -> Worker {
        let args = [
            "--memory-limit",
            "512MiB",
            "worker",
            "--listen",
            "127.0.0.1:0",
        ];
        let mut command = self.command(&args);
        command.env("RUST_LOG", "warn,medallion_engine=info");
        let (task, tasks) = mpsc::channel();
        let on_line = move |line: &str| {
            if line.contains("running a task") {
                let _ = task.send(line.to_string());
            }
        };
        let Announced { child, url, log } =
            start_announced(command, "worker listening on ", on_line);
        Worker {
            child,
            url,
            log,
            tasks,
        }
    }
}

/// `run <pipeline> --job-id <job_id> --execution distributed --workers <urls>`.
pub fn run_on_workers<'a>(pipeline: &'a str, job_id: &'a str, urls: &'a str) -> Vec<&'a str> {
    let execution = ["--execution", "distributed", "--workers", urls];
    [&["run", pipeline, "--job-id", job_id][..], &execution].concat()
}

/// `--workers` for these workers.
pub fn worker_urls(workers: &[&Worker]) -> String {
    workers
        .iter()
        .map(|w| w.url.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl Worker {
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Kills the process as a lost node would: no shutdown of its own.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}
