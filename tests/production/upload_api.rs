//! `medallion serve`, the upload API, on the production path: uploads
//! streamed into the S3 raw bucket and ingested, bearer JWTs of a real
//! OpenID Connect server (npm oidc-provider) checked against its JWKS, and
//! `/metrics` read by promtool's parser.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;

use crate::backend::Backend;
use crate::ingest::raw_bucket;
use crate::oidc::{API_RESOURCE, OTHER_RESOURCE, Oidc};
use crate::support::{Lakehouse, Served, promtool_check_metrics};

const ORDERS_CSV: &str = "o_orderkey,o_custkey,o_orderstatus,o_totalprice,o_orderdate,o_orderpriority,o_clerk,o_shippriority,o_comment\n\
1,10,F,12.50,1996-01-02,1-URGENT,Clerk#1,0,first\n\
2,11,X,1.00,1996-01-03,2-HIGH,Clerk#2,0,bad status\n\
3,10,O,7.25,1996-01-04,5-LOW,Clerk#3,1,last\n";

const CUSTOMERS_CSV: &str = "c_custkey,c_name,c_address,c_nationkey,c_phone,c_acctbal,c_mktsegment,c_comment\n\
10,Customer#10,Street 1,3,11-111,100.00,BUILDING,x\n\
11,Customer#11,Street 2,4,22-222,-5.50,MACHINERY,y\n";

/// An HTTP answer: status, `WWW-Authenticate`, JSON body.
struct Answer {
    status: u16,
    challenge: String,
    body: Value,
}

/// A form with one file part, as `curl -F file=@name` sends it.
fn multipart(filename: &str, body: &[u8]) -> (String, Vec<u8>) {
    let boundary = "medallion-test-boundary-7f3a";
    let mut form = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\ncontent-type: text/csv\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(body);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), form)
}

async fn upload(
    served: &Served,
    token: Option<&str>,
    dataset: &str,
    filename: &str,
    body: &[u8],
) -> Answer {
    let (content_type, form) = multipart(filename, body);
    let url = format!("{}/api/v1/upload?dataset={dataset}", served.url);
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.expect("the server answers")).await
}

async fn get(served: &Served, path: &str, token: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().get(format!("{}{path}", served.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.expect("the server answers")).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        challenge,
        body,
    }
}

fn serve_with_auth(
    lakehouse: &Lakehouse,
    oidc: &Oidc,
    pipeline: &std::path::Path,
    extra: &[&str],
) -> Served {
    let issuer = oidc.issuer();
    let mut args = vec![
        "--oidc-issuer",
        issuer.as_str(),
        "--oidc-audience",
        API_RESOURCE,
        "--pipeline",
        pipeline.to_str().unwrap(),
    ];
    args.extend(extra);
    lakehouse.serve(&[], &args)
}

/// The keys under `prefix` of the test's raw prefix.
async fn keys_under(bucket: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let prefix = ObjectPath::from(format!("{}/{prefix}", Backend::raw_prefix()));
    bucket
        .list(Some(&prefix))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_with_a_valid_token_is_stored_ingested_once_and_says_where_it_is() {
    let Some(oidc) = Oidc::start(2, Duration::from_secs(300)) else {
        return;
    };
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let pipeline = lakehouse.pipeline_copy();
    let served = serve_with_auth(&lakehouse, &oidc, &pipeline, &[]);
    let token = oidc.jwt(API_RESOURCE, "upload:orders").await;

    let first = upload(
        &served,
        Some(&token),
        "orders",
        "orders.csv",
        ORDERS_CSV.as_bytes(),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let body = &first.body;
    assert_eq!(body["state"], "ingested", "{body}");
    assert_eq!(
        (
            body["rows_accepted"].as_u64(),
            body["rows_quarantined"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(body["already_ingested"], false);
    let upload_id = body["upload_id"].as_str().unwrap();
    let received = body["received_object"].as_str().unwrap();
    assert!(
        received.ends_with(&format!("/_received/orders/{upload_id}/orders.csv")),
        "{received}"
    );
    let landed = body["object_keys"][0].as_str().unwrap();
    let raw = format!("s3://raw/{}/orders/", Backend::raw_prefix());
    assert!(
        landed.starts_with(&raw) && landed.ends_with(".parquet"),
        "{landed}"
    );

    let status = get(
        &served,
        &format!("/api/v1/uploads/{upload_id}"),
        Some(&token),
    )
    .await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["state"], "ingested");
    assert_eq!(status.body["object_keys"][0], landed);

    // The same bytes under another name are the same upload.
    let again = upload(
        &served,
        Some(&token),
        "orders",
        "copy.csv",
        ORDERS_CSV.as_bytes(),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        (
            again.body["already_ingested"].as_bool(),
            again.body["upload_id"].as_str()
        ),
        (Some(true), Some(upload_id))
    );
    let bucket = raw_bucket(&backend);
    assert_eq!(
        keys_under(bucket.as_ref(), "orders").await.len(),
        1,
        "one landing"
    );

    let bronze = lakehouse.report(&[
        "ingest",
        "orders",
        received,
        "--pipeline",
        pipeline.to_str().unwrap(),
    ]);
    assert_eq!(
        bronze["already_ingested"], true,
        "the CLI sees the API's upload id: {bronze}"
    );
    assert!(!served.log().contains(&token), "the token is never logged");

    // What the upload cost in requests to S3, by operation.
    let metrics = get(&served, "/metrics", None).await;
    let text = metrics.body.as_str().expect("the exposition is text");
    for series in [
        "medallion_storage_requests_total{operation=\"put\",outcome=\"ok\"}",
        "medallion_storage_requests_total{operation=\"copy\",outcome=\"ok\"}",
        "medallion_storage_requests_total{operation=\"get\",outcome=\"not_found\"}",
        "medallion_storage_request_duration_seconds_bucket{operation=\"put\",le=\"+Inf\"}",
    ] {
        assert!(text.contains(series), "{series} not in\n{text}");
    }
}

/// The answer has `status`, and its detail names the check that failed.
fn assert_refused(answer: &Answer, status: u16, check: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(check),
        "the detail names {check:?}: {}",
        answer.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_refusal_says_which_check_failed_and_stores_nothing() {
    let Some(oidc) = Oidc::start(3, Duration::from_secs(300)) else {
        return;
    };
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let pipeline = lakehouse.pipeline_copy();
    let limit = ["--max-upload-size", "4KiB"];
    let served = serve_with_auth(&lakehouse, &oidc, &pipeline, &limit);
    let orders = ORDERS_CSV.as_bytes();
    let token = oidc.jwt(API_RESOURCE, "upload:orders").await;
    // Another issuer signing with the same key: the signature verifies, the issuer does not.
    let impostor = Oidc::start_with_key_of(5, &oidc).expect("node runs");
    let elsewhere = impostor.jwt(API_RESOURCE, "upload:orders").await;
    let foreign = oidc.jwt(OTHER_RESOURCE, "upload:orders").await;
    let customers_only = oidc.jwt(API_RESOURCE, "upload:customer").await;

    let none = upload(&served, None, "orders", "orders.csv", orders).await;
    assert_refused(&none, 401, "no Authorization header");
    assert!(
        none.challenge.starts_with("Bearer error=\"invalid_token\""),
        "{}",
        none.challenge
    );
    let tampered = tamper_signature(&token);
    for (bearer, check) in [
        ("not-a-jwt", "not a JWT"),
        (tampered.as_str(), "signature does not verify"),
        (elsewhere.as_str(), "not issued by"),
        (foreign.as_str(), "audience"),
    ] {
        let answer = upload(&served, Some(bearer), "orders", "orders.csv", orders).await;
        assert_refused(&answer, 401, check);
    }
    let forbidden = upload(
        &served,
        Some(&customers_only),
        "orders",
        "orders.csv",
        orders,
    )
    .await;
    assert_refused(&forbidden, 403, "upload:orders");
    assert!(
        forbidden.challenge.contains("insufficient_scope"),
        "{}",
        forbidden.challenge
    );
    let unknown = upload(&served, Some(&token), "invoices", "invoices.csv", orders).await;
    assert_refused(&unknown, 404, "no dataset named `invoices`");
    let parquet = b"PAR1\x15\x04\x15\x00";
    let named_csv = upload(&served, Some(&token), "orders", "orders.csv", parquet).await;
    assert_refused(&named_csv, 415, "Parquet");
    let big = ORDERS_CSV.repeat(40);
    let too_large = upload(
        &served,
        Some(&token),
        "orders",
        "orders.csv",
        big.as_bytes(),
    )
    .await;
    assert_refused(&too_large, 413, "over the limit of 4.0 KiB");

    let bucket = raw_bucket(&backend);
    for prefix in ["_received", "_uploads", "orders"] {
        let stored = keys_under(bucket.as_ref(), prefix).await;
        assert_eq!(
            stored,
            Vec::<String>::new(),
            "nothing stored under {prefix}/"
        );
    }
    for secret in [&token, &foreign, &customers_only, &elsewhere] {
        assert!(
            !served.log().contains(secret.as_str()),
            "a token is never logged"
        );
    }
    let metrics = get(&served, "/metrics", None).await;
    let text = metrics
        .body
        .as_str()
        .expect("the exposition is text")
        .to_string();
    for series in [
        "medallion_http_requests_total{route=\"/api/v1/upload\",method=\"POST\",status=\"401\"} 5",
        "medallion_http_requests_total{route=\"/api/v1/upload\",method=\"POST\",status=\"413\"} 1",
        "medallion_uploads_total{dataset=\"orders\",status=\"refused\"} 2",
        "medallion_http_request_duration_seconds_count{route=\"/api/v1/upload\",method=\"POST\"} 9",
    ] {
        assert!(text.contains(series), "{series} not in\n{text}");
    }
    assert!(
        !text.contains("invoices"),
        "no label takes a value the client chose:\n{text}"
    );
    let (parsed, said) = promtool_check_metrics(&text);
    assert!(
        parsed && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refused_and_a_rotated_signing_key_is_fetched_again() {
    let Some(mut oidc) = Oidc::start(4, Duration::from_secs(2)) else {
        return;
    };
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let pipeline = lakehouse.pipeline_copy();
    let served = serve_with_auth(&lakehouse, &oidc, &pipeline, &["--oidc-clock-skew", "0s"]);

    let token = oidc.jwt(API_RESOURCE, "upload:customer").await;
    let fresh = upload(
        &served,
        Some(&token),
        "customer",
        "customer.csv",
        CUSTOMERS_CSV.as_bytes(),
    )
    .await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let expired = upload(
        &served,
        Some(&token),
        "customer",
        "customer.csv",
        CUSTOMERS_CSV.as_bytes(),
    )
    .await;
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert!(
        expired.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        expired.body
    );

    // A restarted provider signs with a new key, which the server has not seen.
    oidc.stop();
    oidc.resume();
    let rotated = oidc.jwt(API_RESOURCE, "upload:customer").await;
    let accepted = upload(
        &served,
        Some(&rotated),
        "customer",
        "customer.csv",
        CUSTOMERS_CSV.as_bytes(),
    )
    .await;
    assert_eq!(
        accepted.status, 200,
        "the same bytes, already ingested: {}",
        accepted.body
    );
    assert_eq!(accepted.body["already_ingested"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_mid_upload_leaves_nothing_and_the_same_upload_then_lands_once() {
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let pipeline = lakehouse.pipeline_copy();
    let pipeline_arg = ["--no-auth", "--pipeline", pipeline.to_str().unwrap()];
    let mut served = lakehouse.serve(&[], &pipeline_arg);

    // Half of a body announced whole, then the process dies.
    let address = served.url.strip_prefix("http://").unwrap().to_string();
    let mut stream = TcpStream::connect(&address).unwrap();
    let head = format!(
        "POST /api/v1/upload?dataset=orders&filename=orders.csv HTTP/1.1\r\nhost: {address}\r\ncontent-type: text/csv\r\ncontent-length: {}\r\n\r\n",
        ORDERS_CSV.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .write_all(&ORDERS_CSV.as_bytes()[..ORDERS_CSV.len() / 2])
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    served.kill();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);

    let bucket = raw_bucket(&backend);
    for prefix in ["orders", "_uploads", "_status"] {
        assert_eq!(
            keys_under(bucket.as_ref(), prefix).await,
            Vec::<String>::new(),
            "nothing under {prefix}/"
        );
    }
    let received: Vec<String> = keys_under(bucket.as_ref(), "_received").await;
    assert!(
        received.iter().all(|k| k.contains("/_received/_staging/")),
        "only staging is left: {received:?}"
    );

    let served = lakehouse.serve(&[], &pipeline_arg);
    let whole = upload(&served, None, "orders", "orders.csv", ORDERS_CSV.as_bytes()).await;
    assert_eq!(whole.status, 201, "{}", whole.body);
    assert_eq!(keys_under(bucket.as_ref(), "orders").await.len(), 1);
}

/// Sends a raw body of `size` bytes over one connection, a MiB at a
/// time (never whole in the test either): `n`, a bad line, then `1` lines.
/// Returns the answer's status line.
fn stream_upload(served: &Served, dataset: &str, filename: &str, size: u64) -> String {
    let address = served.url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /api/v1/upload?dataset={dataset}&filename={filename} HTTP/1.1\r\nhost: {address}\r\ncontent-type: text/csv\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let first = b"n\nnot-a-number\n";
    stream.write_all(first).unwrap();
    let chunk = "1\n".repeat(512 * 1024);
    let mut left = size - first.len() as u64;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk.as_bytes()[..n]).unwrap();
        left -= n as u64;
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_string()
}

/// The largest resident set a process has had, from /proc.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The token with one character of its signature changed.
fn tamper_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature: Vec<char> = signature.chars().collect();
    signature[10] = if signature[10] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", signature.into_iter().collect::<String>())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_gibibyte_upload_streams_into_the_bucket_with_the_server_under_150_mib() {
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let pipeline = lakehouse.pipeline_copy();
    // Rejected at its second line by the ingest, so the test times the
    // streaming and storing, not the parsing of 500 million rows.
    std::fs::write(
        pipeline.join("datasets/big.yaml"),
        "dataset: big\nformats: [csv]\ncolumns:\n  - { name: n, type: int64 }\non_bad_row: reject_file\nfeeds: bronze_orders.raw_orders\n",
    )
    .unwrap();
    let served = lakehouse.serve(
        &[],
        &["--no-auth", "--pipeline", pipeline.to_str().unwrap()],
    );
    let size = 1u64 << 30;
    let started = std::time::Instant::now();
    let answer = {
        let served = &served;
        tokio::task::block_in_place(|| stream_upload(served, "big", "big.csv", size))
    };
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        answer.contains(" 422 "),
        "the ingest rejects line 2: {answer}"
    );
    let peak = peak_rss_bytes(served.pid());
    eprintln!(
        "1 GiB upload: {:.0} MiB/s, peak RSS of the server {} MiB",
        1024.0 / seconds,
        peak >> 20
    );
    assert!(peak < 150 << 20, "peak RSS {} MiB", peak >> 20);
    let bucket = raw_bucket(&backend);
    let stored = keys_under(bucket.as_ref(), "_received/big").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let meta = bucket
        .head(&ObjectPath::from(stored[0].as_str()))
        .await
        .unwrap();
    assert_eq!(meta.size, size, "stored whole");
    bucket.delete(&meta.location).await.unwrap();
}
