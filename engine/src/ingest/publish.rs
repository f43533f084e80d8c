//! Telling the pipeline an upload is ready: `raw-data-ready`, keyed by the
//! upload id, through whatever sink is configured.

use anyhow::{Context, Result};

use crate::events::{EventSink, RAW_DATA_READY, RawDataReady};

/// Publishes the event; `false` when no sink (no broker) is configured.
pub async fn publish(sink: Option<&dyn EventSink>, event: &RawDataReady) -> Result<bool> {
    let Some(sink) = sink else {
        return Ok(false);
    };
    let payload = serde_json::to_vec(event)?;
    sink.publish(RAW_DATA_READY, &event.upload_id, &payload)
        .await
        .with_context(|| {
            format!(
                "upload {} is ingested and recorded, but its {RAW_DATA_READY} event was not published; \
                 run `medallion run` with --input for it, or fix the broker and ingest again with --upload-id {}",
                event.upload_id, event.upload_id
            )
        })?;
    Ok(true)
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::events::SCHEMA_VERSION;

    /// Keeps what it is given.
    #[derive(Default)]
    pub struct MemorySink {
        pub sent: Mutex<Vec<(String, String, Vec<u8>)>>,
    }

    #[async_trait]
    impl EventSink for MemorySink {
        async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> anyhow::Result<()> {
            let sent = (topic.to_string(), key.to_string(), payload.to_vec());
            self.sent.lock().unwrap().push(sent);
            Ok(())
        }
    }

    /// Refuses everything, as a broker that is down.
    struct DownSink;

    #[async_trait]
    impl EventSink for DownSink {
        async fn publish(&self, _: &str, _: &str, _: &[u8]) -> anyhow::Result<()> {
            anyhow::bail!("connection refused")
        }
    }

    fn event() -> RawDataReady {
        RawDataReady {
            schema_version: SCHEMA_VERSION,
            dataset: "orders".into(),
            upload_id: "u-0123456789abcdef01234567".into(),
            object_keys: vec![
                "s3://raw/orders/2026/12/01/u-0123456789abcdef01234567.parquet".into(),
            ],
            rows_accepted: 3,
            rows_quarantined: 1,
            sha256: "0123456789abcdef01234567".into(),
            source: "orders.csv".into(),
            timestamp: "2026-12-01T00:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn the_event_goes_to_raw_data_ready_keyed_by_its_upload_id() {
        let sink = MemorySink::default();
        assert!(publish(Some(&sink), &event()).await.unwrap());
        let sent = sink.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let (topic, key, payload) = &sent[0];
        assert_eq!(topic, RAW_DATA_READY);
        assert_eq!(key, &event().upload_id);
        let decoded: RawDataReady = serde_json::from_slice(payload).unwrap();
        assert_eq!(decoded, event());
    }

    #[tokio::test]
    async fn without_a_sink_nothing_is_published_and_that_is_no_error() {
        assert!(!publish(None, &event()).await.unwrap());
    }

    #[tokio::test]
    async fn a_refused_event_says_the_upload_is_stored_all_the_same() {
        let err = publish(Some(&DownSink), &event()).await.unwrap_err();
        let line = crate::errors::one_line(&err);
        assert!(line.contains("is ingested and recorded"), "{line}");
        assert!(line.contains("connection refused"), "{line}");
    }
}
