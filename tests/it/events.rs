//! The outbox in front of the Kafka producer, against a real broker (Tansu)
//! that is down when the events are published.

use std::time::{Duration, Instant};

use medallion_engine::config::{Config, Overrides};
use medallion_engine::events::{self, FILE_UPLOADED, kafka};
use rdkafka::Message;
use rdkafka::consumer::Consumer;

use crate::support::{Tansu, free_port, runtime};

const EVENTS: usize = 20;

#[test]
fn events_published_while_the_broker_is_down_wait_in_the_outbox_and_arrive_once_when_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Tansu::on(free_port());
    let config = Config::resolve(&Overrides {
        lakehouse: Some(dir.path().to_path_buf()),
        kafka_brokers: Some(broker.brokers()),
        ..Overrides::default()
    })
    .unwrap();
    let runtime = runtime();
    let sink = runtime.block_on(async { events::sink(&config).unwrap().unwrap() });
    let started = Instant::now();
    for i in 0..EVENTS {
        let payload = format!("{{\"n\":{i}}}");
        runtime
            .block_on(sink.publish(FILE_UPLOADED, &format!("upload-{i:02}"), payload.as_bytes()))
            .expect("a broker that is down never fails the caller");
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "publishing waited on the broker"
    );
    let outbox = &config.events.outbox;
    assert_eq!(waiting(outbox), EVENTS, "every event waits in the outbox");

    broker.restart();
    let started = Instant::now();
    while waiting(outbox) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the outbox did not drain"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let received = runtime.block_on(read_all(&broker.brokers()));
    let keys: Vec<String> = (0..EVENTS).map(|i| format!("upload-{i:02}")).collect();
    assert_eq!(received, keys, "each event once, in the order published");
}

/// The events waiting in the outbox folder.
fn waiting(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".event")
        })
        .count()
}

/// Every key on `file-uploaded`, read by a new consumer group until the
/// topic has been quiet for 5 s.
async fn read_all(brokers: &str) -> Vec<String> {
    let consumer = kafka::consumer(brokers, "outbox-test", Duration::from_secs(6)).unwrap();
    consumer.subscribe(&[FILE_UPLOADED]).unwrap();
    let mut keys = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let quiet = if keys.is_empty() {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(5)
        };
        match tokio::time::timeout(quiet, consumer.recv()).await {
            Ok(message) => {
                let message = message.unwrap();
                let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
                keys.push(key);
            }
            Err(_) => break,
        }
        assert!(Instant::now() < deadline, "the topic never went quiet");
    }
    keys
}

#[test]
fn after_a_broker_restart_that_lost_its_topics_the_outbox_creates_them_again_and_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Tansu::start();
    let config = Config::resolve(&Overrides {
        lakehouse: Some(dir.path().to_path_buf()),
        kafka_brokers: Some(broker.brokers()),
        ..Overrides::default()
    })
    .unwrap();
    let runtime = runtime();
    let sink = runtime.block_on(async { events::sink(&config).unwrap().unwrap() });
    runtime
        .block_on(sink.publish(FILE_UPLOADED, "before", b"{}"))
        .unwrap();
    assert_eq!(
        waiting(&config.events.outbox),
        0,
        "sent while the broker was up"
    );

    // The memory engine starts empty: no topics, no events.
    broker.restart();
    runtime
        .block_on(sink.publish(FILE_UPLOADED, "after", b"{}"))
        .unwrap();
    let started = Instant::now();
    while waiting(&config.events.outbox) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the outbox did not drain"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(runtime.block_on(read_all(&broker.brokers())), ["after"]);
}
