//! The Kafka client: librdkafka through `rdkafka`. A producer that is an
//! [`EventSink`], the consumer `medallion listen` reads with, and the topics
//! both need, created when missing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use super::{EventSink, FILE_UPLOADED, RAW_DATA_READY};

/// How long one send may wait for the broker's acknowledgement. The outbox
/// keeps an event that was not acknowledged in time and sends it again.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes to Kafka. Idempotent (`enable.idempotence`): librdkafka's own
/// retries never write an event twice, and events of one key stay in order.
pub struct KafkaProducer {
    brokers: String,
    /// Replaced after a failed send: an idempotent producer whose broker
    /// lost its state (a restart of Tansu's memory engine) stays fatally
    /// failed, and a new one starts a new producer id.
    producer: Mutex<FutureProducer>,
    /// Topics are created once per process, on the first send that reaches
    /// a broker: some brokers (Tansu) do not create them on first use.
    topics_ready: AtomicBool,
}

impl KafkaProducer {
    /// A producer for `brokers` (`host:port,host:port`). Connects lazily:
    /// a broker that is down fails sends, not this call.
    pub fn new(brokers: &str) -> Result<Self> {
        Ok(Self {
            brokers: brokers.to_string(),
            producer: Mutex::new(producer(brokers)?),
            topics_ready: AtomicBool::new(false),
        })
    }

    fn current(&self) -> FutureProducer {
        self.producer.lock().expect("the producer lock").clone()
    }

    /// After a failed send: the topics and the producer are made anew.
    fn renew(&self) {
        self.topics_ready.store(false, Ordering::Release);
        match producer(&self.brokers) {
            Ok(fresh) => *self.producer.lock().expect("the producer lock") = fresh,
            Err(e) => tracing::warn!("{}", crate::errors::one_line(&e)),
        }
    }

    async fn ready(&self) -> Result<()> {
        if !self.topics_ready.load(Ordering::Acquire) {
            ensure_topics(&self.brokers).await?;
            self.topics_ready.store(true, Ordering::Release);
        }
        Ok(())
    }
}

#[async_trait]
impl EventSink for KafkaProducer {
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
        self.ready().await?;
        let record = FutureRecord::to(topic).key(key).payload(payload);
        let sent = self.current().send(record, SEND_TIMEOUT).await;
        sent.map(|_| ()).map_err(|(error, _)| {
            // A broker restarted without its data (Tansu's memory
            // engine) lost the topics and our producer id too.
            self.renew();
            anyhow!(
                "Kafka at {} did not take the event on {topic}: {error}",
                self.brokers
            )
        })
    }
}

fn producer(brokers: &str) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
        .create()
        .with_context(|| format!("cannot create a Kafka producer for {brokers}"))
}

/// Creates `file-uploaded` and `raw-data-ready` where they are missing: one
/// partition each, the broker's default replication. Production clusters
/// usually provision their topics; an existing topic is left as it is.
pub async fn ensure_topics(brokers: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .with_context(|| format!("cannot create a Kafka admin client for {brokers}"))?;
    let topics = [FILE_UPLOADED, RAW_DATA_READY]
        .map(|name| NewTopic::new(name, 1, TopicReplication::Fixed(1)));
    let options = AdminOptions::new().request_timeout(Some(SEND_TIMEOUT));
    let created = admin
        .create_topics(&topics, &options)
        .await
        .with_context(|| {
            format!("Kafka at {brokers} is not reachable; start the broker or fix events.brokers")
        })?;
    for result in created {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(anyhow!(
                    "Kafka at {brokers} did not create topic {topic}: {code}"
                ));
            }
        }
    }
    Ok(())
}

/// Whether a broker of `brokers` answers a metadata request within `timeout`.
pub async fn reachable(brokers: String, timeout: Duration) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .with_context(|| format!("cannot create a Kafka client for {brokers}"))?;
        client
            .fetch_metadata(None, timeout)
            .with_context(|| format!("Kafka at {brokers} does not answer"))?;
        Ok(())
    })
    .await?
}

/// A consumer in `group` that commits only when told to: `listen` commits
/// the offsets of a batch after its run succeeded.
pub fn consumer(brokers: &str, group: &str, session_timeout: Duration) -> Result<StreamConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A new group starts at the oldest event: nothing published before
        // the first `listen` is skipped.
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            session_timeout.as_millis().to_string(),
        )
        // A run holds its batch without polling; allow runs of up to an hour
        // before the broker counts the consumer as gone.
        .set("max.poll.interval.ms", "3600000")
        .create()
        .with_context(|| format!("cannot create a Kafka consumer for {brokers}"))
}
