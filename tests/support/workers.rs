//! `medallion worker` processes on free ports of 127.0.0.1: a real
//! datafusion-distributed cluster for the jobs that run distributed. Each
//! worker's log is kept; it logs every task it is sent.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Lakehouse;

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
        let mut command = self.command(&[
            "--memory-limit",
            "512MiB",
            "worker",
            "--listen",
            "127.0.0.1:0",
        ]);
        command
            .env("RUST_LOG", "warn,medallion_engine=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("medallion worker starts");
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address, announced) = mpsc::channel();
        let (task, tasks) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("worker listening on ") {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let _ = address.send(url.to_string());
                }
                if line.contains("running a task") {
                    let _ = task.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let url = announced
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "medallion worker did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
        Worker {
            child,
            url,
            log,
            tasks,
        }
    }
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
