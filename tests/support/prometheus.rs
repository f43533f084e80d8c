//! A real Prometheus Pushgateway and Prometheus (Debian's
//! `prometheus-pushgateway` and `prometheus`), started on free ports of
//! 127.0.0.1 for one test and stopped when it ends, and Prometheus's HTTP
//! query API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, required};

/// How long a service may take to answer `/-/ready`, and a query its series.
const WAIT: Duration = Duration::from_secs(30);

/// A service started for a test; killed when dropped.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Pushgateway on a free port.
pub fn pushgateway() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(required("prometheus-pushgateway"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the Pushgateway starts");
    started(child, port, dir)
}

/// A Prometheus scraping `pushgateway` every second, keeping the pushed
/// `job` and `instance` labels (`honor_labels`), as a Pushgateway's scrape must.
pub fn prometheus_scraping(pushgateway: &Service) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let target = pushgateway.url.trim_start_matches("http://");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    \
             static_configs: [{{ targets: ['{target}'] }}]\n"
        ),
    )
    .unwrap();
    let child = Command::new(required("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Prometheus starts");
    started(child, port, dir)
}

fn started(child: Child, port: u16, dir: tempfile::TempDir) -> Service {
    let service = Service {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + WAIT;
    while http_get(&format!("{}/-/ready", service.url)).map(|(status, _)| status) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "{} did not get ready",
            service.url
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    service
}

/// One sample of an instant query: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Value,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels[name].as_str().unwrap_or("")
    }
}

/// Queries Prometheus until `done` holds for the answer, at most [`WAIT`].
pub fn query_until(
    prometheus: &Service,
    query: &str,
    done: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let deadline = Instant::now() + WAIT;
    loop {
        let samples = query_now(prometheus, query);
        if done(&samples) {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "`{query}` did not reach the expected answer in {WAIT:?}; last: {samples:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// An instant query through `/api/v1/query`.
pub fn query_now(prometheus: &Service, query: &str) -> Vec<Sample> {
    let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    let url = format!("{}/api/v1/query?query={encoded}", prometheus.url);
    let (status, body) = http_get(&url).expect("Prometheus answers");
    assert_eq!(status, 200, "{query}: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    answer["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|r| Sample {
            labels: r["metric"].clone(),
            value: r["value"][1].as_str().unwrap().parse().unwrap(),
        })
        .collect()
}

/// A plain HTTP/1.0 GET: the status and body, `None` when nothing answers.
fn http_get(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_string()))
}
