//! Bearer tokens for the REST catalog: a static token, a token file that is
//! re-read when it changes (Kubernetes projected service-account tokens), or
//! OAuth2 client credentials (Keycloak) refreshed before they expire.
//! iceberg-rust 0.10 never refreshes, so a job longer than a token's life
//! would fail; this does not. Identity providers restart (a Keycloak pod in
//! Kubernetes): while a refresh fails the current token is used until it
//! really expires, and without a valid token the fetch is retried with the
//! catalog's backoff before the job fails.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use tokio::sync::Mutex;

use crate::error::{CatalogError, Result};
use crate::rest::backoff::Backoff;
use crate::rest::oauth::{self, Failure, Issued};
pub(crate) use crate::rest::redact::without_url;
use crate::secret::{Secret, redacted_uri};

#[derive(Debug, Clone)]
pub enum TokenSource {
    Anonymous,
    Static(Secret),
    File(PathBuf),
    ClientCredentials {
        token_endpoint: String,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
    },
}

#[derive(Debug)]
struct Cached {
    token: Secret,
    refresh_after: Option<Instant>,
    /// When the identity provider said the token stops working.
    expires_at: Option<Instant>,
    file_modified: Option<SystemTime>,
}

impl Cached {
    fn valid(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// Token fetches failing in a row: since when, and when to try again.
#[derive(Debug)]
struct Failing {
    since: Instant,
    attempts: u32,
    /// Of those, the ones made without a valid token: once they reach the
    /// policy's attempts, a request waiting behind the one that gave up
    /// tries once more rather than a whole round again.
    without_token: u32,
    next_try: Instant,
}

#[derive(Debug, Default)]
struct State {
    cached: Option<Cached>,
    failing: Option<Failing>,
}

#[derive(Debug)]
pub struct Authenticator {
    source: TokenSource,
    http: reqwest::Client,
    retry: Backoff,
    state: Mutex<State>,
}

/// Refresh when this share of a token's life has passed, leaving room for
/// clock skew, requests in flight and an identity provider that is down.
const REFRESH_AT_LIFE_FRACTION: f64 = 0.8;

impl Authenticator {
    pub(crate) fn new(source: TokenSource, http: reqwest::Client, retry: Backoff) -> Self {
        Self {
            source,
            http,
            retry,
            state: Mutex::default(),
        }
    }

    /// The `Authorization` header value, fetching or refreshing as needed.
    pub async fn authorization(&self) -> Result<Option<String>> {
        let mut state = self.state.lock().await;
        let current = match (&self.source, state.cached.as_ref()) {
            (TokenSource::Anonymous, _) => return Ok(None),
            (TokenSource::Static(token), _) => {
                return Ok(Some(format!("Bearer {}", token.expose())));
            }
            (TokenSource::File(path), current) => {
                if current.is_none_or(|c| file_modified(path) != c.file_modified) {
                    state.cached = Some(read_token_file(path)?);
                }
                return Ok(state.cached.as_ref().map(bearer));
            }
            (TokenSource::ClientCredentials { .. }, current) => current,
        };
        let now = Instant::now();
        match current {
            Some(c) if c.refresh_after.is_none_or(|at| now < at) => Ok(Some(bearer(c))),
            Some(c) if c.valid(now) => {
                self.refresh_while_valid(&mut state).await?;
                Ok(state.cached.as_ref().map(bearer))
            }
            _ => {
                state.cached = Some(self.fetch_with_retries(&mut state).await?);
                Ok(state.cached.as_ref().map(bearer))
            }
        }
    }

    /// Forgets the token after the catalog rejected it (401).
    pub async fn invalidate(&self) {
        self.state.lock().await.cached = None;
    }

    pub fn can_refresh(&self) -> bool {
        matches!(
            self.source,
            TokenSource::File(_) | TokenSource::ClientCredentials { .. }
        )
    }

    fn client(&self) -> oauth::Client<'_> {
        match &self.source {
            TokenSource::ClientCredentials {
                token_endpoint,
                client_id,
                client_secret,
                scope,
            } => oauth::Client {
                token_endpoint,
                client_id,
                client_secret,
                scope: scope.as_deref(),
            },
            _ => unreachable!("only client credentials are fetched"),
        }
    }

    /// The token is due for refresh but still valid: one attempt (none
    /// while the last failure's backoff runs), and on a passing failure
    /// the current token stays in use.
    async fn refresh_while_valid(&self, state: &mut State) -> Result<()> {
        let now = Instant::now();
        if state.failing.as_ref().is_some_and(|f| now < f.next_try) {
            return Ok(());
        }
        let left = state
            .cached
            .as_ref()
            .and_then(|c| c.expires_at)
            .map_or(self.retry.timeout, |at| at.saturating_duration_since(now));
        let client = self.client();
        match client
            .request(&self.http, left.min(self.retry.timeout))
            .await
        {
            Ok(issued) => {
                state.failing = None;
                state.cached = Some(cached(issued, client.client_id));
            }
            Err(Failure::Refused(e)) => return Err(e),
            Err(Failure::Passing(cause)) => {
                let attempts = self.note_failure(state);
                tracing::warn!(
                    attempts,
                    valid_for_s = left.as_secs_f64(),
                    "cannot refresh the catalog token at {} ({cause}); \
                     the current one stays in use until it expires",
                    redacted_uri(client.token_endpoint)
                );
            }
        }
        Ok(())
    }

    /// No valid token: fetch, retrying passing failures with the catalog's
    /// backoff, and fail only when the attempts are spent.
    async fn fetch_with_retries(&self, state: &mut State) -> Result<Cached> {
        let client = self.client();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let cause = match client.request(&self.http, self.retry.timeout).await {
                Ok(issued) => {
                    state.failing = None;
                    return Ok(cached(issued, client.client_id));
                }
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Passing(cause)) => cause,
            };
            let attempts = self.note_failure(state);
            let failing = state.failing.as_mut().expect("noted above");
            failing.without_token += 1;
            let since = failing.since;
            if attempt >= self.retry.attempts || failing.without_token >= self.retry.attempts {
                return Err(CatalogError::Auth(format!(
                    "cannot get a catalog token: the OAuth2 token endpoint {} gave client `{}` \
                     no token for {:.1} s ({attempts} attempts, last: {cause}) and no unexpired token \
                     is left; check that the identity provider is up and reachable, then run \
                     again with the same --job-id",
                    redacted_uri(client.token_endpoint),
                    client.client_id,
                    since.elapsed().as_secs_f64()
                )));
            }
            let delay = self.retry.delay(attempt);
            tracing::warn!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                "cannot get a catalog token at {} ({cause}); retrying",
                redacted_uri(client.token_endpoint)
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Counts a failed fetch; returns how many failed in a row.
    fn note_failure(&self, state: &mut State) -> u32 {
        let now = Instant::now();
        let failing = state.failing.get_or_insert(Failing {
            since: now,
            attempts: 0,
            without_token: 0,
            next_try: now,
        });
        failing.attempts += 1;
        failing.next_try = now + self.retry.delay(failing.attempts);
        failing.attempts
    }
}

fn bearer(cached: &Cached) -> String {
    format!("Bearer {}", cached.token.expose())
}

fn cached(issued: Issued, client_id: &str) -> Cached {
    let life = issued.expires_in;
    tracing::debug!(
        client_id,
        expires_in = life.map(|l| l.as_secs()),
        "obtained a catalog token"
    );
    Cached {
        token: issued.token,
        refresh_after: life.map(|l| issued.requested + l.mul_f64(REFRESH_AT_LIFE_FRACTION)),
        expires_at: life.map(|l| issued.requested + l),
        file_modified: None,
    }
}

fn read_token_file(path: &std::path::Path) -> Result<Cached> {
    let token = std::fs::read_to_string(path).map_err(|e| {
        CatalogError::Auth(format!(
            "cannot read the catalog token file {}: {e}",
            path.display()
        ))
    })?;
    Ok(Cached {
        token: Secret::new(token.trim()),
        refresh_after: None,
        expires_at: None,
        file_modified: file_modified(path),
    })
}

fn file_modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn test_backoff() -> Backoff {
        Backoff {
            attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn a_token_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first-token\n").unwrap();
        let auth = Authenticator::new(
            TokenSource::File(path.clone()),
            reqwest::Client::new(),
            test_backoff(),
        );
        assert_eq!(
            auth.authorization().await.unwrap().as_deref(),
            Some("Bearer first-token")
        );

        // Kubernetes swaps projected tokens by replacing the file.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let replacement = dir.path().join("token.new");
        std::fs::write(&replacement, "second-token").unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        assert_eq!(
            auth.authorization().await.unwrap().as_deref(),
            Some("Bearer second-token")
        );
    }

    #[tokio::test]
    async fn an_unreadable_token_file_names_the_file() {
        let auth = Authenticator::new(
            TokenSource::File("/nonexistent/token".into()),
            reqwest::Client::new(),
            test_backoff(),
        );
        let error = auth.authorization().await.unwrap_err().to_string();
        assert!(error.contains("/nonexistent/token"), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_token_endpoint_is_retried_then_named_with_the_client_and_the_time() {
        // A port nobody listens on: every attempt is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}/token");
        let auth = Authenticator::new(
            TokenSource::ClientCredentials {
                token_endpoint: endpoint.clone(),
                client_id: "nightly".into(),
                client_secret: Secret::new("very-secret-4711"),
                scope: None,
            },
            reqwest::Client::new(),
            test_backoff(),
        );
        let error = auth.authorization().await.unwrap_err().to_string();
        assert!(error.contains(&endpoint), "{error}");
        assert!(error.contains("client `nightly`"), "{error}");
        assert!(
            error.contains("3 attempts") && error.contains(" s ("),
            "{error}"
        );
        assert!(!error.contains("very-secret-4711"), "{error}");
        assert!(!error.contains("  "), "one line, single spaces: {error}");

        // A request after the one that gave up tries once, not a round again.
        let started = Instant::now();
        let again = auth.authorization().await.unwrap_err().to_string();
        assert!(again.contains("4 attempts"), "{again}");
        // A retry would wait 50 ms at least.
        assert!(started.elapsed() < Duration::from_millis(50), "{again}");
    }

    #[test]
    fn settings_refuse_two_kinds_of_credential() {
        let settings = crate::rest::RestSettings {
            uri: "http://catalog".into(),
            credential: Some(Secret::new("id:secret")),
            token: Some(Secret::new("token")),
            ..Default::default()
        };
        assert!(settings.token_source().is_err());
        let settings = crate::rest::RestSettings {
            uri: "http://catalog/".into(),
            credential: Some(Secret::new("id:secret")),
            ..Default::default()
        };
        match settings.token_source().unwrap() {
            TokenSource::ClientCredentials {
                token_endpoint,
                client_id,
                ..
            } => {
                assert_eq!(token_endpoint, "http://catalog/v1/oauth/tokens");
                assert_eq!(client_id, "id");
            }
            other => panic!("{other:?}"),
        }
    }
}
