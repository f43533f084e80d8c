//! A fault-injecting HTTP proxy in front of the REST catalog. SeaweedFS
//! issues hour-long tokens and never fails on purpose; this stand-in for a
//! short-lived-token Keycloak, a flaky network, a catalog that vends
//! table-scoped credentials (as Lakekeeper does) and one whose authorization
//! refuses a table sits between medallion and the real catalog, which still
//! does all the catalog work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::introspection::Verdict;

#[derive(Default)]
pub struct Faults {
    /// Issue our own tokens that stop working after this long, while
    /// telling the client they last an hour (so only a 401 reveals it).
    pub token_lifetime: Option<Duration>,
    /// Answer every n-th catalog request with 503 without forwarding it.
    pub fail_every: Option<u64>,
    /// Answer commits (POST to a table) with 503 without forwarding them.
    pub fail_commits: bool,
    /// Add STS credentials scoped to the table's location to every
    /// LoadTable and CreateTable answer that asks for vended credentials.
    pub vend: Option<crate::vending::Sts>,
    /// Answer 403 for every request about this table (`namespace.table`),
    /// as a catalog's authorization does for a table the client may not see.
    pub refuse_table: Option<String>,
    /// Accept only tokens of this OpenID Connect server (401 otherwise),
    /// as a catalog behind Keycloak does.
    pub introspect: Option<Arc<crate::introspection::Introspection>>,
    /// Hold every catalog request this long, as a far or busy catalog
    /// does: a run then lasts long enough for its token to need refreshing.
    pub latency: Option<Duration>,
}

#[derive(Default)]
pub struct Counters {
    pub tokens_issued: AtomicU64,
    pub rejected_401: AtomicU64,
    pub injected_503: AtomicU64,
    pub forwarded: AtomicU64,
    pub vended: AtomicU64,
    pub refused_403: AtomicU64,
}

pub struct Proxy {
    pub uri: String,
    pub counters: Arc<Counters>,
}

struct State {
    upstream: String,
    faults: Faults,
    counters: Arc<Counters>,
    tokens: Mutex<HashMap<String, (Instant, String)>>,
    requests: AtomicU64,
    http: reqwest::Client,
}

impl Proxy {
    pub async fn start(upstream: &str, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let counters = Arc::new(Counters::default());
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            faults,
            counters: counters.clone(),
            tokens: Mutex::default(),
            requests: AtomicU64::new(0),
            http: reqwest::Client::new(),
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Proxy { uri, counters }
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

async fn serve(mut stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let is_token_request = request.target.starts_with("/v1/oauth/tokens");
    let mut authorization = header("authorization");

    if let Some(lifetime) = state.faults.token_lifetime {
        if is_token_request {
            // Let the real catalog check the client credentials.
            let upstream = state
                .http
                .post(format!("{}/v1/oauth/tokens", state.upstream))
                .header("content-type", header("content-type").unwrap_or_default())
                .body(request.body.clone())
                .send()
                .await
                .map_err(std::io::Error::other)?;
            let status = upstream.status().as_u16();
            let body: serde_json::Value = upstream.json().await.map_err(std::io::Error::other)?;
            if status != 200 {
                return respond(
                    &mut stream,
                    status,
                    "application/json",
                    body.to_string().as_bytes(),
                )
                .await;
            }
            let ours = format!("proxy-token-{}", uuid_like());
            state.tokens.lock().unwrap().insert(
                ours.clone(),
                (
                    Instant::now() + lifetime,
                    body["access_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            );
            state.counters.tokens_issued.fetch_add(1, Ordering::Relaxed);
            let answer = serde_json::json!({"access_token": ours, "token_type": "bearer", "expires_in": 3600});
            return respond(
                &mut stream,
                200,
                "application/json",
                answer.to_string().as_bytes(),
            )
            .await;
        }
        let presented = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default();
        let valid = state
            .tokens
            .lock()
            .unwrap()
            .get(presented)
            .filter(|(expires, _)| Instant::now() < *expires)
            .map(|(_, upstream)| upstream.clone());
        match valid {
            Some(upstream_token) => authorization = Some(format!("Bearer {upstream_token}")),
            None => {
                state.counters.rejected_401.fetch_add(1, Ordering::Relaxed);
                let body = r#"{"error":{"message":"token expired","type":"NotAuthorizedException","code":401}}"#;
                return respond(&mut stream, 401, "application/json", body.as_bytes()).await;
            }
        }
    }

    if let Some(introspection) = &state.faults.introspect {
        let presented = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default();
        match introspection.check(presented).await {
            Verdict::Valid => authorization = Some(introspection.upstream_authorization.clone()),
            Verdict::Invalid => {
                state.counters.rejected_401.fetch_add(1, Ordering::Relaxed);
                let body = r#"{"error":{"message":"not a valid token of the identity provider","type":"NotAuthorizedException","code":401}}"#;
                return respond(&mut stream, 401, "application/json", body.as_bytes()).await;
            }
            Verdict::Unknown => {
                state.counters.injected_503.fetch_add(1, Ordering::Relaxed);
                let body = r#"{"error":{"message":"cannot check the token: the identity provider is down","type":"ServiceUnavailable","code":503}}"#;
                return respond(&mut stream, 503, "application/json", body.as_bytes()).await;
            }
        }
    }
    if let Some(latency) = state.faults.latency {
        tokio::time::sleep(latency).await;
    }

    let path = request
        .target
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    if let Some(refused) = &state.faults.refuse_table
        && crate::vending::names_table(&path, refused)
    {
        state.counters.refused_403.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"error":{"message":"not allowed by the test proxy's policy","type":"ForbiddenException","code":403}}"#;
        return respond(&mut stream, 403, "application/json", body.as_bytes()).await;
    }

    if !is_token_request {
        let n = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let is_commit = request.method == "POST" && request.target.contains("/tables/");
        let fail = state
            .faults
            .fail_every
            .is_some_and(|every| n.is_multiple_of(every))
            || (state.faults.fail_commits && is_commit);
        if fail {
            state.counters.injected_503.fetch_add(1, Ordering::Relaxed);
            let body = r#"{"error":{"message":"injected by the test proxy","type":"ServiceUnavailable","code":503}}"#;
            return respond(&mut stream, 503, "application/json", body.as_bytes()).await;
        }
    }

    let wants_credentials = header("x-iceberg-access-delegation").is_some()
        && crate::vending::loads_or_creates_a_table(&request.method, &path);
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).map_err(std::io::Error::other)?;
    let mut forward = state
        .http
        .request(method, format!("{}{}", state.upstream, request.target));
    for (name, value) in &request.headers {
        if !matches!(
            name.as_str(),
            "host" | "authorization" | "content-length" | "connection"
        ) {
            forward = forward.header(name, value);
        }
    }
    if let Some(authorization) = authorization {
        forward = forward.header("authorization", authorization);
    }
    let response = forward
        .body(request.body)
        .send()
        .await
        .map_err(std::io::Error::other)?;
    state.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let mut body = response
        .bytes()
        .await
        .map_err(std::io::Error::other)?
        .to_vec();
    if let Some(sts) = &state.faults.vend
        && wants_credentials
        && status == 200
    {
        body = sts.add_credentials(&body).await;
        state.counters.vended.fetch_add(1, Ordering::Relaxed);
    }
    respond(&mut stream, status, &content_type, &body).await
}

fn uuid_like() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    let a = RandomState::new().hash_one(Instant::now());
    let b = RandomState::new().hash_one(std::process::id());
    (u128::from(a) << 64) | u128::from(b)
}
