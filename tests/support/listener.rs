//! `medallion listen` as a background process whose log a test waits on,
//! and `raw-data-ready` events published through medallion's own outbox.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medallion_engine::config::{Config, Overrides};
use medallion_engine::events::{self, RAW_DATA_READY, RawDataReady, SCHEMA_VERSION};
use serde_json::Value;

use super::{Lakehouse, runtime};

pub struct Listener {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Lakehouse {
    /// `medallion listen` on `brokers` with quick batches and a short
    /// session, so joining the group takes seconds.
    pub fn listen(&self, brokers: &str, extra: &[&str]) -> Listener {
        let mut args = vec!["--json", "--kafka-brokers", brokers, "listen"];
        args.extend(["--session-timeout", "6s"]);
        if !extra.contains(&"--batch-window") {
            args.extend(["--batch-window", "2s"]);
        }
        args.extend(extra);
        let mut command = self.command(&args);
        command
            .env("RUST_LOG", "warn,medallion_engine=info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("medallion listen starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Listener { child, log }
    }

    /// Publishes through `events::sink`, as `ingest` does: the outbox in
    /// front of the Kafka producer.
    pub fn publish(&self, brokers: &str, events: &[RawDataReady]) {
        let config = Config::resolve(&Overrides {
            lakehouse: Some(self.path().to_path_buf()),
            kafka_brokers: Some(brokers.to_string()),
            ..Overrides::default()
        })
        .unwrap();
        runtime().block_on(async {
            let sink = events::sink(&config)
                .unwrap()
                .expect("brokers are configured");
            for event in events {
                let payload = serde_json::to_vec(event).unwrap();
                sink.publish(RAW_DATA_READY, &event.upload_id, &payload)
                    .await
                    .unwrap();
            }
        });
    }
}

impl Listener {
    /// Waits until `count` log lines contain `text`; panics with the log
    /// after `timeout`, or when listen exited.
    pub fn wait_for(&mut self, text: &str, count: usize, timeout: Duration) {
        let started = Instant::now();
        while self.count(text) < count {
            let exited = self.child.try_wait().unwrap();
            assert!(
                started.elapsed() < timeout && exited.is_none(),
                "no {count} log lines with {text:?} in {:?} (exit: {exited:?}); log:\n{}",
                started.elapsed(),
                self.log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn count(&self, text: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    /// SIGTERM, then the exit status (must be 0) and the JSON summary.
    pub fn stop(mut self) -> Value {
        let pid = self.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                panic!("listen did not stop in 120 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log.lock().unwrap().join("\n");
        assert!(
            status.success(),
            "listen exited with {status} after SIGTERM; log:\n{log}"
        );
        let mut stdout = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\nlog:\n{log}"))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An event for one upload of `dataset`.
pub fn raw_data_ready(dataset: &str, upload_id: &str, object_keys: Vec<String>) -> RawDataReady {
    RawDataReady {
        schema_version: SCHEMA_VERSION,
        dataset: dataset.into(),
        upload_id: upload_id.into(),
        object_keys,
        rows_accepted: 1,
        rows_quarantined: 0,
        sha256: "0".repeat(64),
        source: format!("test/{upload_id}"),
        timestamp: chrono::Utc::now().to_rfc3339(),
    }
}
