//! HTTP to an Iceberg REST catalog: authentication with refresh on 401,
//! retries with backoff and jitter for transient failures (5xx, 429,
//! timeouts), and errors that say which request failed and what to do.
//! No token, secret or signed URL is ever part of an error or a log line.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{CatalogError, Result};
use crate::rest::auth::{Authenticator, without_url};
use crate::rest::backoff::Backoff;
use crate::secret::redacted_uri;

/// What a request is for, so a refusal can say what was refused.
#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub verb: &'static str,
    pub object: String,
}

impl Action {
    pub fn new(verb: &'static str, object: impl Into<String>) -> Self {
        Self {
            verb,
            object: object.into(),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorModel>,
}

#[derive(Deserialize)]
struct ErrorModel {
    message: Option<String>,
    r#type: Option<String>,
}

#[derive(Deserialize, Default)]
struct CatalogConfigResponse {
    #[serde(default)]
    defaults: HashMap<String, String>,
    #[serde(default)]
    overrides: HashMap<String, String>,
}

/// A failed request, classified for the caller.
#[derive(Debug)]
pub(crate) enum RestFailure {
    NotFound(String),
    Conflict(String),
    /// The server may or may not have applied a write (5xx after retries,
    /// or a lost connection).
    Unknown(CatalogError),
    Other(CatalogError),
}

pub(crate) struct RestClient {
    http: reqwest::Client,
    uri: String,
    /// `uri` as errors show it: without its password.
    shown_uri: String,
    prefix: Option<String>,
    headers: HeaderMap,
    auth: Authenticator,
    retry: Backoff,
    /// Catalog properties from `/v1/config` (defaults, then overrides).
    pub properties: HashMap<String, String>,
}

impl RestClient {
    pub async fn connect(
        uri: &str,
        warehouse: Option<&str>,
        headers: &HashMap<String, String>,
        auth: Authenticator,
        http: reqwest::Client,
        retry: Backoff,
    ) -> Result<Self> {
        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                CatalogError::Config(format!("bad catalog header name `{name}`: {e}"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|e| {
                CatalogError::Config(format!("bad value of catalog header `{name}`: {e}"))
            })?;
            header_map.insert(name, value);
        }
        let mut client = Self {
            http,
            uri: uri.trim_end_matches('/').to_string(),
            shown_uri: redacted_uri(uri.trim_end_matches('/')),
            prefix: None,
            headers: header_map,
            auth,
            retry,
            properties: HashMap::new(),
        };
        let query: Vec<(&str, &str)> = warehouse
            .map(|w| vec![("warehouse", w)])
            .unwrap_or_default();
        let config: CatalogConfigResponse = client
            .json(
                Method::GET,
                &format!("{}/v1/config", client.uri),
                &query,
                None::<&()>,
                // The refusal names the catalog's address already.
                &Action::new("read the configuration of", "the catalog"),
            )
            .await
            .map_err(RestFailure::into_error)?;
        let mut properties = config.defaults;
        properties.extend(config.overrides);
        client.prefix = properties.get("prefix").filter(|p| !p.is_empty()).cloned();
        client.properties = properties;
        Ok(client)
    }

    /// The catalog's address as logs and errors show it (no password).
    pub fn shown_uri(&self) -> &str {
        &self.shown_uri
    }

    /// `{uri}/v1/{prefix}/{path}`.
    pub fn endpoint(&self, path: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{}/v1/{}/{}", self.uri, encode(prefix), path),
            None => format!("{}/v1/{}", self.uri, path),
        }
    }

    pub async fn json<T: DeserializeOwned, B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        action: &Action,
    ) -> Result<T, RestFailure> {
        let response = self.send(method, url, query, body, &[], action).await?;
        response.json().await.map_err(|e| {
            RestFailure::Other(CatalogError::Catalog(format!(
                "the catalog sent an unreadable answer when asked to {} {}: {}",
                action.verb,
                action.object,
                without_url(&e)
            )))
        })
    }

    /// Sends a request with retries; returns the successful response.
    pub async fn send<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
        extra_headers: &[(&str, String)],
        action: &Action,
    ) -> Result<Response, RestFailure> {
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url)
                .query(query)
                .headers(self.headers.clone())
                .timeout(self.retry.timeout);
            for (name, value) in extra_headers {
                request = request.header(*name, value);
            }
            if let Some(authorization) = self
                .auth
                .authorization()
                .await
                .map_err(RestFailure::Other)?
            {
                request = request.header(reqwest::header::AUTHORIZATION, authorization);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let transient = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::UNAUTHORIZED && !refreshed && self.auth.can_refresh() {
                        // A token can expire or be revoked mid-run: fetch a new one once.
                        refreshed = true;
                        self.auth.invalidate().await;
                        continue;
                    }
                    let detail = error_detail(response).await;
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        format!("{status}{detail}")
                    } else {
                        return Err(self.refusal(status, &detail, action));
                    }
                }
                Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => without_url(&e),
                Err(e) => {
                    return Err(RestFailure::Unknown(CatalogError::Catalog(format!(
                        "the request to {} {} failed: {}",
                        action.verb,
                        action.object,
                        without_url(&e)
                    ))));
                }
            };
            if attempt >= self.retry.attempts {
                return Err(RestFailure::Unknown(CatalogError::Catalog(format!(
                    "the catalog at {} did not {} {} after {attempt} attempts (last: {transient}); \
                     check that the catalog is up and reachable",
                    self.shown_uri, action.verb, action.object
                ))));
            }
            let delay = self.retry.delay(attempt);
            tracing::warn!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                "catalog request to {} {} failed ({transient}); retrying",
                action.verb,
                action.object
            );
            tokio::time::sleep(delay).await;
        }
    }

    fn refusal(&self, status: StatusCode, detail: &str, action: &Action) -> RestFailure {
        let what = format!("{} {}", action.verb, action.object);
        match status {
            StatusCode::NOT_FOUND => RestFailure::NotFound(format!("{what}: not found{detail}")),
            StatusCode::CONFLICT => RestFailure::Conflict(format!("{what}: conflict{detail}")),
            StatusCode::UNAUTHORIZED => RestFailure::Other(CatalogError::Auth(format!(
                "the catalog at {} did not accept our credentials to {what} (401{detail}); \
                 check `credential`, `token` or the token file",
                self.shown_uri
            ))),
            StatusCode::FORBIDDEN => RestFailure::Other(CatalogError::Auth(format!(
                "the catalog at {} refused to let this client {what} (403{detail}); \
                 the catalog's authorization policy (OpenFGA in Lakekeeper) does not allow it: \
                 grant the permission to the client, or use one that has it",
                self.shown_uri
            ))),
            _ => RestFailure::Other(CatalogError::Catalog(format!(
                "the catalog at {} refused to {what} ({status}{detail})",
                self.shown_uri
            ))),
        }
    }
}

impl RestFailure {
    pub fn into_error(self) -> CatalogError {
        match self {
            RestFailure::NotFound(m) | RestFailure::Conflict(m) => CatalogError::Catalog(m),
            RestFailure::Unknown(e) | RestFailure::Other(e) => e,
        }
    }
}

async fn error_detail(response: Response) -> String {
    let body: Option<ErrorBody> = response.json().await.ok();
    match body.and_then(|b| b.error) {
        Some(ErrorModel { message, r#type }) => {
            let parts: Vec<String> = [r#type, message].into_iter().flatten().collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(", {}", parts.join(": "))
            }
        }
        None => String::new(),
    }
}

/// Percent-encodes one path segment.
pub(crate) fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
