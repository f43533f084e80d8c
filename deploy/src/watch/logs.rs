//! Streams a pod's log to the output, each line prefixed with the pod.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use tokio::task::JoinHandle;

use crate::render::CONTAINER;

pub type Output = Arc<Mutex<dyn Write + Send>>;

/// Starts one log stream per pod, once its container has started.
pub struct LogFollower {
    api: Api<Pod>,
    out: Output,
    started: HashSet<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl LogFollower {
    pub fn new(api: Api<Pod>, out: Output) -> Self {
        Self {
            api,
            out,
            started: HashSet::new(),
            tasks: Vec::new(),
        }
    }

    /// Follows the pod's log if its container runs or ran and it is not
    /// followed yet.
    pub fn follow(&mut self, pod: &Pod) {
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.name == CONTAINER)
            .any(|c| {
                c.state
                    .as_ref()
                    .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            });
        if !started || !self.started.insert(name.clone()) {
            return;
        }
        let api = self.api.clone();
        let out = self.out.clone();
        self.tasks.push(tokio::spawn(async move {
            let params = LogParams {
                container: Some(CONTAINER.into()),
                follow: true,
                ..LogParams::default()
            };
            let stream = match api.log_stream(&name, &params).await {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = writeln!(lock(&out), "[{name}] (no log: {e})");
                    return;
                }
            };
            let mut lines = stream.lines();
            while let Some(line) = lines.next().await {
                match line {
                    Ok(line) => {
                        let _ = writeln!(lock(&out), "[{name}] {line}");
                    }
                    Err(e) => {
                        let _ = writeln!(lock(&out), "[{name}] (log interrupted: {e})");
                        break;
                    }
                }
            }
        }));
    }

    /// Lets the streams of finished pods end (they close when the
    /// container's log is complete), then stops the rest.
    pub async fn finish(self, grace: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

pub fn lock(out: &Output) -> std::sync::MutexGuard<'_, dyn Write + Send + 'static> {
    out.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
