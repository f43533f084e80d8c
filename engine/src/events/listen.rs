//! `medallion listen`: reads `raw-data-ready` in a consumer group, gathers
//! events into batches, runs the pipeline once per batch and commits the
//! batch's offsets only after its run succeeded.
//!
//! - A batch closes `batch_window` after its first event, or at `max_batch`
//!   events, so a burst of uploads becomes a few runs.
//! - Its job id is derived from the sorted upload ids: a batch delivered
//!   again re-runs the same job id, which commits nothing new.
//! - A failed run is retried with a growing pause (1 s to 1 min), never
//!   committed, and nothing more is fetched meanwhile (back-pressure).
//! - SIGTERM or SIGINT: the current run finishes and is committed, then the
//!   consumer leaves the group; a batch still gathering is left uncommitted
//!   and read again by the next listener.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

use super::kafka::{consumer, ensure_topics};
use super::{RAW_DATA_READY, RawDataReady, SCHEMA_VERSION};
use crate::errors::one_line;
use crate::metrics::Registry;
use crate::metrics::names::{CONSUMER_LAG, LISTEN_BATCHES, LISTEN_EVENTS};

const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
const LAG_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the pipeline for one batch: in this process, or through GitOps.
/// Not `Send`: a listener runs one batch at a time, on its own task.
#[async_trait(?Send)]
pub trait BatchRunner {
    /// Ok once the run is done: in this process, every job committed (or
    /// had under this job id); through GitOps, its manifests landed.
    async fn run(&self, job_id: &str, events: &[RawDataReady]) -> Result<()>;
}

pub struct ListenOptions {
    pub brokers: String,
    pub group: String,
    pub batch_window: Duration,
    pub max_batch: usize,
    pub session_timeout: Duration,
}

/// What a listener did before it stopped.
#[derive(Debug, Default, Serialize)]
pub struct ListenSummary {
    /// Batches whose run succeeded and whose offsets were committed.
    pub runs: u64,
    pub events: u64,
    /// Events skipped (and committed): an unknown schema_version or not an event.
    pub refused: u64,
    /// Run attempts that failed (each retried, none committed).
    pub failed_runs: u64,
    pub job_ids: Vec<String>,
}

/// The summary, mirrored into the listener's metrics as it grows.
struct Tally<'a> {
    summary: ListenSummary,
    metrics: &'a Registry,
}

impl Tally<'_> {
    fn refused(&mut self) {
        self.summary.refused += 1;
        let labels = [("status", "refused")];
        self.metrics.add(&LISTEN_EVENTS, &labels, 1.0);
    }

    fn failed_run(&mut self) {
        self.summary.failed_runs += 1;
        self.metrics
            .add(&LISTEN_BATCHES, &[("status", "failed")], 1.0);
    }

    fn ran(&mut self, job_id: String, events: usize) {
        self.summary.runs += 1;
        self.summary.events += events as u64;
        self.summary.job_ids.push(job_id);
        self.metrics
            .add(&LISTEN_BATCHES, &[("status", "succeeded")], 1.0);
        let labels = [("status", "loaded")];
        self.metrics.add(&LISTEN_EVENTS, &labels, events as f64);
    }
}

/// Listens until SIGTERM or SIGINT, counting into `metrics`.
pub async fn listen(
    options: &ListenOptions,
    runner: &dyn BatchRunner,
    metrics: &Registry,
) -> Result<ListenSummary> {
    let mut stop = stop_on_signal()?;
    let mut tally = Tally {
        summary: ListenSummary::default(),
        metrics,
    };
    if !topics_exist(&options.brokers, &mut stop).await {
        return Ok(tally.summary);
    }
    let consumer = consumer(&options.brokers, &options.group, options.session_timeout)?;
    consumer.subscribe(&[RAW_DATA_READY])?;
    tracing::info!(
        "listening to {RAW_DATA_READY} on {} as group {}",
        options.brokers,
        options.group
    );
    while let Some(batch) = gather(&consumer, options, &mut stop).await {
        let events = decode(&batch, &mut tally);
        if !events.is_empty() {
            let job_id = job_id(&events);
            // Nothing is fetched while the batch runs (back-pressure).
            let assigned = consumer.assignment()?;
            consumer.pause(&assigned)?;
            let done = run_until_done(runner, &job_id, &events, &mut tally, &mut stop).await;
            consumer.resume(&assigned)?;
            if !done {
                break;
            }
            tally.ran(job_id, events.len());
        }
        commit(&consumer, &batch);
        record_lag(&consumer, metrics);
        if *stop.borrow() {
            break;
        }
    }
    consumer.unsubscribe();
    tracing::info!("stopped: left group {}", options.group);
    Ok(tally.summary)
}

/// Turns SIGTERM and SIGINT into a flag the loop looks at between steps.
fn stop_on_signal() -> Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("stopping: the current run finishes first");
        sender.send_replace(true);
        // Kept alive: a dropped sender would wake every waiter for ever.
        std::future::pending::<()>().await;
    });
    Ok(receiver)
}

/// Creates the topics, waiting for a broker that is not up yet; false on stop.
async fn topics_exist(brokers: &str, stop: &mut watch::Receiver<bool>) -> bool {
    let mut pause = RETRY_MIN;
    loop {
        match ensure_topics(brokers).await {
            Ok(()) => return true,
            Err(e) => tracing::warn!("{}; retrying in {pause:?}", one_line(&e)),
        }
        tokio::select! {
            _ = sleep(pause) => {}
            _ = stop.wait_for(|&stop| stop) => return false,
        }
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// The next batch: from its first event until the window closes or it is
/// full. `None` on stop: a batch still gathering is left for redelivery.
async fn gather(
    consumer: &StreamConsumer,
    options: &ListenOptions,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<OwnedMessage>> {
    let mut batch = Vec::new();
    let mut deadline = None;
    while batch.len() < options.max_batch.max(1) {
        let closes_at = deadline;
        let closes = async move {
            match closes_at {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = consumer.recv() => match received {
                Ok(message) => {
                    deadline.get_or_insert(Instant::now() + options.batch_window);
                    batch.push(message.detach());
                }
                // librdkafka reconnects by itself; its errors are reports.
                Err(e) => tracing::warn!("reading {RAW_DATA_READY}: {e}"),
            },
            _ = closes => break,
            _ = stop.wait_for(|&stop| stop) => return None,
        }
    }
    Some(batch)
}

/// The batch's events, one per upload id; refused ones are counted.
fn decode(batch: &[OwnedMessage], tally: &mut Tally) -> Vec<RawDataReady> {
    let mut seen = BTreeSet::new();
    let mut events = Vec::new();
    for message in batch {
        let at = format!(
            "{}/{}@{}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        match read_event(message.payload().unwrap_or_default()) {
            Ok(event) => {
                if seen.insert(event.upload_id.clone()) {
                    events.push(event);
                }
            }
            Err(reason) => {
                tally.refused();
                tracing::warn!("event {at} skipped: {reason}");
            }
        }
    }
    events
}

/// One payload, refused unless it is a `raw-data-ready` of a known version.
fn read_event(payload: &[u8]) -> Result<RawDataReady, String> {
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("not JSON ({e})"))?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(version) if version == u64::from(SCHEMA_VERSION) => {}
        Some(version) => {
            return Err(format!(
                "schema_version {version} is unknown; this medallion reads version {SCHEMA_VERSION}: upgrade it"
            ));
        }
        None => return Err("it has no schema_version".into()),
    }
    serde_json::from_value(value).map_err(|e| format!("not a {RAW_DATA_READY} event ({e})"))
}

/// `listen-` and 16 hex digits of the SHA-256 of the sorted upload ids:
/// the same uploads always give the same job id.
pub fn job_id(events: &[RawDataReady]) -> String {
    let ids: BTreeSet<&str> = events.iter().map(|e| e.upload_id.as_str()).collect();
    let mut hash = Sha256::new();
    for id in ids {
        hash.update(id.as_bytes());
        hash.update(b"\n");
    }
    let hex: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("listen-{hex}")
}

/// Runs until the run succeeds (true), retrying with a growing pause, or
/// until stopped between attempts (false: nothing is committed).
async fn run_until_done(
    runner: &dyn BatchRunner,
    job_id: &str,
    events: &[RawDataReady],
    tally: &mut Tally<'_>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut pause = RETRY_MIN;
    loop {
        tracing::info!(
            "run {job_id} starts: {} events{}",
            events.len(),
            age(events)
        );
        match runner.run(job_id, events).await {
            Ok(()) => return true,
            Err(e) => {
                tally.failed_run();
                tracing::error!(
                    "run {job_id} failed, its events stay uncommitted: {}; retrying in {pause:?}",
                    one_line(&e)
                );
            }
        }
        tokio::select! {
            _ = sleep(pause) => {}
            _ = stop.wait_for(|&stop| stop) => return false,
        }
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// How long ago the oldest event of the batch was published, for the log.
fn age(events: &[RawDataReady]) -> String {
    let oldest = events
        .iter()
        .filter_map(|e| chrono::DateTime::parse_from_rfc3339(&e.timestamp).ok())
        .min();
    match oldest {
        Some(at) => {
            let ms = (chrono::Utc::now() - at.to_utc()).num_milliseconds();
            format!(", the oldest published {ms} ms ago")
        }
        None => String::new(),
    }
}

/// Commits the offset after the batch's last event on each partition. A
/// commit that fails (a rebalance) is logged: the batch comes again and its
/// job id commits nothing new.
fn commit(consumer: &StreamConsumer, batch: &[OwnedMessage]) {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for message in batch {
        let at = next
            .entry((message.topic(), message.partition()))
            .or_default();
        *at = (*at).max(message.offset() + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(e) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!("cannot commit {topic}/{partition}@{offset}: {e}");
        }
    }
    // A synchronous commit blocks its thread for a round trip to the broker.
    match tokio::task::block_in_place(|| consumer.commit(&offsets, CommitMode::Sync)) {
        Ok(()) => tracing::info!("committed {}", describe(&offsets)),
        Err(e) => tracing::warn!("committing {} failed: {e}", describe(&offsets)),
    }
}

/// Sets the consumer lag: the messages of each assigned partition after
/// the group's committed offset. A broker that does not answer leaves the
/// last value.
fn record_lag(consumer: &StreamConsumer, metrics: &Registry) {
    let lag = tokio::task::block_in_place(|| -> Result<i64> {
        let committed = consumer.committed(LAG_TIMEOUT)?;
        let mut lag = 0;
        for element in committed.elements() {
            let (low, high) =
                consumer.fetch_watermarks(element.topic(), element.partition(), LAG_TIMEOUT)?;
            let at = match element.offset() {
                Offset::Offset(at) => at,
                _ => low,
            };
            lag += (high - at).max(0);
        }
        Ok(lag)
    });
    match lag {
        Ok(lag) => metrics.set(&CONSUMER_LAG, &[("topic", RAW_DATA_READY)], lag as f64),
        Err(e) => tracing::debug!("consumer lag not measured: {}", one_line(&e)),
    }
}

fn describe(offsets: &TopicPartitionList) -> String {
    offsets
        .elements()
        .iter()
        .map(|e| format!("{}/{}@{:?}", e.topic(), e.partition(), e.offset()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(upload_id: &str) -> RawDataReady {
        RawDataReady {
            schema_version: SCHEMA_VERSION,
            dataset: "orders".into(),
            upload_id: upload_id.into(),
            object_keys: vec![format!("s3://raw/orders/{upload_id}.parquet")],
            rows_accepted: 1,
            rows_quarantined: 0,
            sha256: "0".repeat(64),
            source: "orders.csv".into(),
            timestamp: "2026-12-01T12:00:00Z".into(),
        }
    }

    #[test]
    fn the_job_id_of_a_batch_depends_on_its_upload_ids_not_their_order() {
        let ab = job_id(&[event("a"), event("b")]);
        assert_eq!(ab, job_id(&[event("b"), event("a")]));
        assert_ne!(ab, job_id(&[event("a"), event("c")]));
        assert_eq!(ab.len(), "listen-".len() + 16);
        assert!(medallion_jobs::parse_job_id(&ab).is_ok(), "{ab}");
    }

    #[test]
    fn an_event_of_an_unknown_version_or_without_one_is_refused_saying_why() {
        let known = serde_json::to_vec(&event("a")).unwrap();
        assert_eq!(read_event(&known).unwrap().upload_id, "a");
        let mut value = serde_json::to_value(event("a")).unwrap();
        value["schema_version"] = 2.into();
        let error = read_event(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(error.contains("schema_version 2 is unknown"), "{error}");
        value.as_object_mut().unwrap().remove("schema_version");
        let error = read_event(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(error.contains("no schema_version"), "{error}");
        assert!(read_event(b"not json").unwrap_err().starts_with("not JSON"));
    }
}
