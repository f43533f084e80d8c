//! The whole path of a user's files, as the README walks it: TPC-H orders
//! and customers uploaded with a token to `medallion serve`, stored in the
//! S3 raw bucket and ingested, announced on a real Kafka broker (Tansu)
//! that is down while the uploads arrive, loaded by `medallion listen`
//! through bronze, silver and gold in the REST catalog. Gold then holds
//! what `medallion demo` computes from the same files; each upload's
//! status names the bronze snapshot that holds it; the listener's
//! `/metrics` say what it did.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend::Backend;
use crate::oidc::{API_RESOURCE, Oidc};
use crate::support::{Lakehouse, Tansu, free_port, promtool_check_metrics, raw_data_ready};

const MINUTES: Duration = Duration::from_secs(240);

/// What gold says about the data: rows and sums of both gold tables.
const GOLD: &str = "SELECT CONCAT(CAST(COUNT(*) AS VARCHAR), ' ', CAST(SUM(revenue) AS VARCHAR), ' ', CAST(SUM(orders) AS VARCHAR), ' ', \
    (SELECT CONCAT(CAST(COUNT(*) AS VARCHAR), ' ', CAST(SUM(total_spend) AS VARCHAR), ' ', CAST(SUM(order_count) AS VARCHAR)) FROM gold.customer_metrics)) \
    FROM gold.sales_dashboard";

async fn post(url: &str, token: &str, dataset: &str, file: &Path) -> (u16, Value) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{url}/api/v1/upload?dataset={dataset}&filename={name}"
        ))
        .bearer_auth(token)
        .header("content-type", "application/vnd.apache.parquet")
        .body(std::fs::read(file).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls the upload's status until a bronze snapshot loaded it.
async fn loaded(url: &str, token: &str, upload_id: &str) -> Value {
    let started = Instant::now();
    loop {
        let status: Value = reqwest::Client::new()
            .get(format!("{url}/api/v1/uploads/{upload_id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !status["loaded"].as_array().unwrap().is_empty() {
            return status;
        }
        assert!(
            started.elapsed() < MINUTES,
            "{upload_id} was not loaded: {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_reach_gold_through_kafka_and_listen_with_the_rows_and_sums_of_the_demo() {
    let Some(oidc) = Oidc::start(6, Duration::from_secs(600)) else {
        return;
    };
    // The demo's own files, and what the demo makes of them.
    let local = Lakehouse::with(Vec::new(), Vec::new());
    local.ok(&["demo", "--scale", "0.01"]);
    let expected = local.scalar(GOLD);
    let raw = local.path().join("raw/tpch");

    let mut broker = Tansu::start();
    let brokers = broker.brokers();
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let pipeline = lakehouse.pipeline_copy();
    let pipeline = pipeline.to_str().unwrap();
    let issuer = oidc.issuer();
    let serve_args = [
        "--oidc-issuer",
        &issuer,
        "--oidc-audience",
        API_RESOURCE,
        "--pipeline",
        pipeline,
    ];
    let served = lakehouse.serve(&["--kafka-brokers", &brokers], &serve_args);
    let token = oidc
        .jwt(API_RESOURCE, "upload:orders upload:customer")
        .await;
    // The uploads are answered while the broker is down.
    broker.stop();

    let mut upload_ids = Vec::new();
    for (dataset, dir) in [("customer", "customer"), ("orders", "orders")] {
        for file in parquet_files(&raw.join(dir)) {
            let (status, body) = post(&served.url, &token, dataset, &file).await;
            assert_eq!(status, 201, "{body}");
            upload_ids.push(body["upload_id"].as_str().unwrap().to_string());
        }
    }
    let again = parquet_files(&raw.join("orders")).remove(0);
    let (status, body) = post(&served.url, &token, "orders", &again).await;
    assert_eq!(
        (status, &body["already_ingested"]),
        (200, &Value::Bool(true)),
        "{body}"
    );
    let ready: Value = reqwest::get(format!("{}/api/v1/ready", served.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "not_ready", "the broker is down: {ready}");

    // The outbox sends every event once the broker is up.
    broker.restart();
    let metrics_address = format!("127.0.0.1:{}", free_port());
    let args = ["--pipeline", pipeline, "--metrics-listen", &metrics_address];
    let mut listener = lakehouse.listen(&brokers, &args);
    let mut statuses = Vec::new();
    for id in &upload_ids {
        statuses.push(loaded(&served.url, &token, id).await);
    }
    assert_eq!(
        lakehouse.scalar(GOLD),
        expected,
        "gold as the demo computes it"
    );
    assert_eq!(
        lakehouse.rows("bronze.orders"),
        local.rows("bronze.orders"),
        "each upload loaded once"
    );
    assert_eq!(
        lakehouse.rows("bronze.customers"),
        local.rows("bronze.customers")
    );

    let orders = statuses.iter().find(|s| s["dataset"] == "orders").unwrap();
    assert_eq!(orders["loaded"][0]["table"], "bronze.orders", "{orders}");
    let snapshot = orders["loaded"][0]["snapshot_id"]
        .as_i64()
        .unwrap()
        .to_string();
    let history = lakehouse.ok(&["--json", "history", "bronze.orders"]);
    assert!(
        history.contains(&snapshot),
        "{snapshot} is a snapshot of bronze.orders:\n{history}"
    );

    // The same objects announced again under another upload id: another
    // batch, another job id, and bronze loads nothing twice.
    let commits = listener.count("committed raw-data-ready");
    let object_keys: Vec<String> = serde_json::from_value(orders["object_keys"].clone()).unwrap();
    let again = raw_data_ready("orders", "u-announced-again", object_keys);
    std::thread::scope(|s| {
        s.spawn(|| lakehouse.publish(&brokers, &[again]))
            .join()
            .unwrap()
    });
    listener.wait_for("committed raw-data-ready", commits + 1, MINUTES);
    assert_eq!(listener.count("holds 1 of its objects already"), 1);
    assert_eq!(
        lakehouse.rows("bronze.orders"),
        local.rows("bronze.orders"),
        "nothing loaded twice"
    );
    assert_eq!(lakehouse.scalar(GOLD), expected);

    let metrics_url = format!("http://{metrics_address}/metrics");
    let text = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let loaded_events = format!(
        "medallion_listen_events_total{{status=\"loaded\"}} {}",
        upload_ids.len() + 1
    );
    assert!(text.contains(&loaded_events), "{text}");
    assert!(
        text.contains("medallion_consumer_lag_messages{topic=\"raw-data-ready\"} 0"),
        "{text}"
    );
    let (parsed, said) = promtool_check_metrics(&text);
    assert!(parsed, "promtool check metrics:\n{said}");
    let summary = listener.stop();
    assert_eq!(
        summary["events"].as_u64(),
        Some(upload_ids.len() as u64 + 1),
        "every event once: {summary}"
    );
    drop(served);
}
