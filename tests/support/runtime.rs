//! A Tokio runtime for tests that call medallion's async library directly:
//! the event sink, a Kafka consumer.

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
