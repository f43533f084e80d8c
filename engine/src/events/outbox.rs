//! The durable outbox in front of the Kafka producer: an event is a file in
//! a local folder before anything is sent, so a broker that is down delays
//! an event and never loses it or fails the caller.
//!
//! One file per event, named `<micros>-<pid>-<seq>.event` so that names sort
//! in publish order; written to a temporary name, fsynced and renamed, so a
//! file under its final name is always whole. A drainer task sends what is
//! waiting, oldest first, and deletes each file only after the broker
//! acknowledged it. A process that stops with events waiting sends them when
//! the next one opens the outbox. Delivery is at least once (an
//! acknowledgement lost on the way back sends the event again): consumers
//! dedupe by upload id or job id.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use futures::future::join_all;
use tokio::sync::Notify;

use super::EventSink;

/// How long `publish` waits for its event to reach the broker before it
/// returns anyway; the event is durable either way.
const DELIVERY_WAIT: Duration = Duration::from_secs(2);
/// Events sent at once: librdkafka pipelines them, in order.
const WINDOW: usize = 256;
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);
const SUFFIX: &str = ".event";
/// Held by the one drainer sending this folder, across processes.
const LOCK_FILE: &str = ".drain.lock";

pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    sink: Arc<dyn EventSink>,
    wake: Notify,
    seq: AtomicU64,
    /// The last send failed: `publish` does not wait for the broker then.
    failing: AtomicBool,
}

impl Outbox {
    /// An outbox in `dir` sending to `sink`, and its drainer, which starts
    /// by sending what an earlier process left. Needs a Tokio runtime.
    pub fn open(dir: &Path, sink: Arc<dyn EventSink>) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the event outbox {}; fix events.outbox",
                dir.display()
            )
        })?;
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            sink,
            wake: Notify::new(),
            seq: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        });
        tokio::spawn(drain_forever(inner.clone()));
        Ok(Self { inner })
    }
}

#[async_trait]
impl EventSink for Outbox {
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
        let path = self.inner.write(topic, key, payload)?;
        self.inner.wake.notify_one();
        let started = Instant::now();
        let failing = || self.inner.failing.load(Ordering::Relaxed);
        while path.exists() && !failing() && started.elapsed() < DELIVERY_WAIT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if path.exists() {
            tracing::info!(
                "event for {topic} waits in the outbox {} until the broker takes it",
                self.inner.dir.display()
            );
        }
        Ok(())
    }
}

impl Inner {
    /// Writes one event under a new name that sorts after every earlier one.
    fn write(&self, topic: &str, key: &str, payload: &[u8]) -> Result<PathBuf> {
        if topic.contains('\n') || key.contains('\n') {
            bail!("an event topic or key holds a line break: {topic:?} {key:?}");
        }
        let micros = chrono::Utc::now().timestamp_micros();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{micros:016}-{:010}-{seq:010}{SUFFIX}", std::process::id());
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(format!("{topic}\n{key}\n").as_bytes())?;
            file.write_all(payload)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            // The rename is durable once the folder is.
            File::open(&self.dir)?.sync_all()
        };
        write().with_context(|| {
            format!("cannot write an event to the outbox {}", self.dir.display())
        })?;
        Ok(path)
    }

    fn pending(&self) -> Result<Vec<PathBuf>> {
        pending(&self.dir)
    }

    /// Sends everything waiting, oldest first. `Ok(false)`: another drainer
    /// holds the folder.
    async fn drain(&self) -> Result<bool> {
        let lock = File::create(self.dir.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(false),
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
        loop {
            let pending = self.pending()?;
            let Some((first, rest)) = pending.split_first() else {
                return Ok(true);
            };
            // The first alone: it waits for the topics to exist, so the
            // rest, sent together, are queued in order.
            self.send(first).await?;
            let rest = &rest[..rest.len().min(WINDOW)];
            let sent = join_all(rest.iter().map(|path| self.send(path))).await;
            sent.into_iter().collect::<Result<Vec<()>>>()?;
        }
    }

    /// Sends one waiting event and deletes it once acknowledged.
    async fn send(&self, path: &Path) -> Result<()> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read the outbox event {}", path.display()))?;
        let mut parts = text.splitn(3, |&b| b == b'\n');
        let (Some(topic), Some(key), Some(payload)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!(
                "the outbox event {} is not an event; move it away",
                path.display()
            );
        };
        let (topic, key) = (String::from_utf8_lossy(topic), String::from_utf8_lossy(key));
        self.sink.publish(&topic, &key, payload).await?;
        std::fs::remove_file(path)
            .with_context(|| format!("cannot delete the sent outbox event {}", path.display()))
    }
}

/// Sends whenever woken; after a failure, again with a growing pause.
async fn drain_forever(inner: Arc<Inner>) {
    let mut pause = RETRY_MIN;
    loop {
        match inner.drain().await {
            Ok(true) => {
                pause = RETRY_MIN;
                inner.failing.store(false, Ordering::Relaxed);
                inner.wake.notified().await;
                continue;
            }
            Ok(false) => {}
            Err(e) => {
                inner.failing.store(true, Ordering::Relaxed);
                tracing::warn!(
                    "events wait in the outbox {}: {}; retrying in {pause:?}",
                    inner.dir.display(),
                    crate::errors::one_line(&e)
                );
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// The events waiting in `dir`, oldest first.
fn pending(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list the outbox {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.to_string_lossy().ends_with(SUFFIX) && !is_hidden(path))
        .collect();
    names.sort();
    Ok(names)
}

/// How many events wait in the outbox `dir` (0 when it cannot be read):
/// the depth operators alert on when the broker stays away.
pub fn waiting(dir: &Path) -> usize {
    pending(dir).map_or(0, |names| names.len())
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
}
