//! A scripted stand-in for the Kubernetes API server, which cannot run
//! here (no cluster, no container runtime). It serves what `watch` asks
//! for, the way the API server answers it: list (with a resourceVersion),
//! watch (newline-delimited JSON events over a chunked response, from a
//! resourceVersion on), and a pod's log. A scenario is a timeline of
//! events; each becomes visible at its time, and lists show the objects as
//! of that moment. The Job and Pod objects are shaped like real API
//! responses, trimmed to the fields `watch` reads.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[derive(Clone)]
pub struct Event {
    pub at: Duration,
    pub kind: &'static str,
    pub object: Value,
}

#[derive(Clone, Default)]
pub struct Scenario {
    pub events: Vec<Event>,
    pub logs: HashMap<String, String>,
}

impl Scenario {
    pub fn at(mut self, millis: u64, kind: &'static str, object: Value) -> Self {
        self.events.push(Event {
            at: Duration::from_millis(millis),
            kind,
            object,
        });
        self
    }

    pub fn log(mut self, pod: &str, text: &str) -> Self {
        self.logs.insert(pod.into(), text.into());
        self
    }
}

pub struct ApiServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl ApiServer {
    pub fn start(scenario: Scenario) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let scenario = Arc::new(scenario);
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (scenario, log) = (scenario.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &scenario, started, &log);
                });
            }
        });
        Self { port, requests }
    }

    pub fn client(&self) -> kube::Client {
        let url: http::Uri = format!("http://127.0.0.1:{}", self.port).parse().unwrap();
        let mut config = kube::Config::new(url);
        config.default_namespace = "medallion-jobs".into();
        kube::Client::try_from(config).unwrap()
    }
}

fn serve(
    stream: TcpStream,
    scenario: &Scenario,
    started: Instant,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            if line.trim_end().is_empty() {
                break;
            }
        }
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        log.lock().unwrap().push(target.clone());
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
        };
        let kind = if path.ends_with("/jobs") {
            "Job"
        } else if path.ends_with("/pods") {
            "Pod"
        } else if let Some(rest) = path.strip_suffix("/log") {
            let pod = rest.rsplit('/').next().unwrap_or("");
            let text = scenario.logs.get(pod).cloned().unwrap_or_default();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )?;
            continue;
        } else {
            let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}).to_string();
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            continue;
        };
        if param("watch").as_deref() == Some("true") {
            let from: usize = param("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            return watch(stream, scenario, started, kind, from);
        }
        let now = started.elapsed();
        let visible = scenario.events.iter().take_while(|e| e.at <= now).count();
        let mut objects: Vec<(String, Value)> = Vec::new();
        for (index, event) in scenario.events[..visible].iter().enumerate() {
            if event.object["kind"] != kind {
                continue;
            }
            let name = event.object["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string();
            objects.retain(|(n, _)| *n != name);
            if event.kind != "DELETED" {
                objects.push((name, with_version(&event.object, index + 1)));
            }
        }
        let body = json!({
            "kind": format!("{kind}List"),
            "apiVersion": if kind == "Job" { "batch/v1" } else { "v1" },
            "metadata": {"resourceVersion": visible.to_string()},
            "items": objects.into_iter().map(|(_, o)| o).collect::<Vec<_>>(),
        })
        .to_string();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
    }
}

/// Streams the events after resourceVersion `from`, each at its time; ends
/// the watch a second after the last one, as the API server ends watches
/// after their timeout (the client lists and watches again).
fn watch(
    mut stream: TcpStream,
    scenario: &Scenario,
    started: Instant,
    kind: &str,
    from: usize,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )?;
    for (index, event) in scenario.events.iter().enumerate().skip(from) {
        if event.object["kind"] != kind {
            continue;
        }
        if let Some(wait) = event.at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let line = format!(
            "{}\n",
            json!({"type": event.kind, "object": with_version(&event.object, index + 1)})
        );
        write!(stream, "{:x}\r\n{line}\r\n", line.len())?;
        stream.flush()?;
    }
    let last = scenario.events.last().map(|e| e.at).unwrap_or_default();
    if let Some(wait) = (last + Duration::from_secs(1)).checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }
    write!(stream, "0\r\n\r\n")?;
    stream.flush()
}

fn with_version(object: &Value, version: usize) -> Value {
    let mut object = object.clone();
    object["metadata"]["resourceVersion"] = json!(version.to_string());
    object
}

// Objects as the API server returns them (trimmed).

pub const JOB_ID: &str = "2026-11-29";

fn metadata(job_id: &str, name: &str, run_size: usize) -> Value {
    json!({
        "name": name,
        "namespace": "medallion-jobs",
        "labels": {"medallion/job-id": job_id, "app.kubernetes.io/name": "medallion"},
        "annotations": {"medallion/job-id": job_id, "medallion/run-size": run_size.to_string()},
    })
}

pub fn job(name: &str, run_size: usize, status: Value) -> Value {
    job_of(JOB_ID, name, run_size, status)
}

/// A Job of the run `job_id` (label and annotation), one of `run_size`.
pub fn job_of(job_id: &str, name: &str, run_size: usize, status: Value) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": metadata(job_id, name, run_size),
        "spec": {"backoffLimit": 2, "activeDeadlineSeconds": 7200,
                 "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "medallion", "image": "ghcr.io/medallion-data/medallion:0.1.0"}]}}},
        "status": status,
    })
}

pub fn job_condition(kind: &str, reason: &str, message: &str) -> Value {
    json!({"conditions": [{"type": kind, "status": "True", "reason": reason, "message": message}]})
}

pub fn pod(name: &str, job: &str, phase: &str, extra_status: Value) -> Value {
    pod_of(JOB_ID, name, job, phase, extra_status)
}

/// A pod of the Job `job` of the run `job_id`.
pub fn pod_of(job_id: &str, name: &str, job: &str, phase: &str, extra_status: Value) -> Value {
    let mut meta = metadata(job_id, name, 1);
    meta["labels"]["batch.kubernetes.io/job-name"] = json!(job);
    meta["labels"]["job-name"] = json!(job);
    meta["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("medallion/run-size");
    let mut status = json!({"phase": phase});
    if let Value::Object(extra) = extra_status {
        for (k, v) in extra {
            status[k] = v;
        }
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "medallion"}]},
        "status": status,
    })
}

pub fn container(state: Value, restarts: i32) -> Value {
    json!({"containerStatuses": [{
        "name": "medallion", "image": "ghcr.io/medallion-data/medallion:0.1.0", "imageID": "",
        "ready": false, "restartCount": restarts, "state": state
    }]})
}
