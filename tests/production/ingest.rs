//! `medallion ingest` on the production path: sources under an S3 prefix
//! and behind an HTTP URL, landed in the S3 raw bucket, then loaded by
//! `run --input` through the REST catalog.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::Value;

use crate::backend::Backend;

const ORDERS_HEADER: &str = "o_orderkey,o_custkey,o_orderstatus,o_totalprice,o_orderdate,o_orderpriority,o_clerk,o_shippriority,o_comment";

/// The raw bucket, as the test's own client sees it.
pub(crate) fn raw_bucket(backend: &Backend) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name("raw")
            .with_endpoint(&backend.s3_endpoint)
            .with_access_key_id(&backend.access_key)
            .with_secret_access_key(&backend.secret_key)
            .with_region(&backend.region)
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}

/// Serves `body` to every GET on a free port of 127.0.0.1, from a thread
/// that lives as long as the test process.
fn serve(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body.as_bytes()).unwrap();
        }
    });
    format!("http://{address}")
}

fn ingest(
    lakehouse: &crate::support::Lakehouse,
    pipeline: &Path,
    dataset: &str,
    source: &str,
) -> Value {
    lakehouse.report(&[
        "ingest",
        dataset,
        source,
        "--pipeline",
        pipeline.to_str().unwrap(),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_from_an_s3_prefix_and_an_http_url_land_in_the_raw_bucket_and_load_bronze() {
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let pipeline = lakehouse.pipeline_copy();
    let prefix = format!("{}-incoming/orders", Backend::raw_prefix());
    let bucket = raw_bucket(&backend);
    for (part, rows) in [
        (
            "part-1.csv",
            "1,10,F,12.50,1996-01-02,1-URGENT,Clerk#1,0,first\n2,11,X,1.00,1996-01-03,2-HIGH,Clerk#2,0,bad\n",
        ),
        (
            "part-2.csv",
            "3,10,O,7.25,1996-01-04,5-LOW,Clerk#3,1,last\n",
        ),
    ] {
        let body = format!("{ORDERS_HEADER}\n{rows}");
        let key = ObjectPath::from(format!("{prefix}/{part}"));
        bucket.put(&key, PutPayload::from(body)).await.unwrap();
    }
    let server = serve(
        "c_custkey,c_name,c_address,c_nationkey,c_phone,c_acctbal,c_mktsegment,c_comment\n\
         10,Customer#10,Street 1,3,11-111,100.00,BUILDING,x\n\
         11,Customer#11,Street 2,4,22-222,-5.50,MACHINERY,y\n",
    );

    let orders = ingest(
        &lakehouse,
        &pipeline,
        "orders",
        &format!("s3://raw/{prefix}/"),
    );
    assert_eq!(orders["rows_in"], 3, "{orders}");
    assert_eq!(orders["rows_accepted"], 2);
    assert_eq!(orders["rows_quarantined"], 1);
    assert_eq!(orders["sources"].as_array().unwrap().len(), 2, "{orders}");
    let customers = ingest(
        &lakehouse,
        &pipeline,
        "customer",
        &format!("{server}/customer.csv?token=secret"),
    );
    assert_eq!(customers["rows_accepted"], 2, "{customers}");
    assert!(
        !customers.to_string().contains("secret"),
        "a URL's query is never recorded: {customers}"
    );

    let raw = format!("s3://raw/{}/", Backend::raw_prefix());
    let mut inputs = Vec::new();
    for (input, report) in [("raw_orders", &orders), ("raw_customers", &customers)] {
        let uri = report["object_keys"][0].as_str().unwrap();
        assert!(uri.starts_with(&raw) && uri.ends_with(".parquet"), "{uri}");
        let key = ObjectPath::from(uri.strip_prefix("s3://raw/").unwrap());
        assert!(
            bucket.head(&key).await.is_ok(),
            "{uri} is in the raw bucket"
        );
        let marker = format!(
            "{}/_uploads/{}.json",
            Backend::raw_prefix(),
            report["upload_id"].as_str().unwrap()
        );
        assert!(bucket.head(&ObjectPath::from(marker)).await.is_ok());
        inputs.extend(["--input".to_string(), format!("{input}={uri}")]);
    }
    let quarantine = orders["quarantine"].as_str().unwrap();
    let quarantined = bucket
        .get(&ObjectPath::from(
            quarantine.strip_prefix("s3://raw/").unwrap(),
        ))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let bad: Value = serde_json::from_slice(&quarantined).unwrap();
    assert_eq!(bad["line"], 3);
    assert!(
        bad["source"].as_str().unwrap().ends_with("part-1.csv"),
        "{bad}"
    );

    let pipeline = pipeline.to_str().unwrap().to_string();
    let mut args = vec![
        "run",
        pipeline.as_str(),
        "--job",
        "bronze_orders",
        "--job",
        "bronze_customers",
    ];
    args.extend(inputs.iter().map(String::as_str));
    lakehouse.ok(&args);
    assert_eq!(lakehouse.rows("bronze.orders"), 2);
    assert_eq!(lakehouse.rows("bronze.customers"), 2);
}
