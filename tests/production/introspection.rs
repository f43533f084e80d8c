//! The catalog proxy's check of OpenID Connect tokens: each token is asked
//! about once at the server's introspection endpoint and then remembered
//! until the `exp` it reported, as a catalog that verifies JWTs against
//! cached keys (Lakekeeper) keeps accepting tokens while the identity
//! provider is down. Requests that pass go on with the proxy's own token
//! for the real catalog.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Introspection {
    endpoint: String,
    client_id: String,
    client_secret: String,
    /// What the real catalog takes: `Bearer <its own token>`.
    pub upstream_authorization: String,
    /// Token → when it expires.
    checked: Mutex<HashMap<String, SystemTime>>,
    first_seen: Mutex<Option<Instant>>,
    pub tokens_seen: AtomicU64,
    http: reqwest::Client,
}

/// What the proxy makes of a presented token.
pub enum Verdict {
    Valid,
    Invalid,
    /// Not seen before and the identity provider cannot be asked.
    Unknown,
}

impl Introspection {
    /// Checks tokens at `endpoint`, forwarding with a token the real
    /// catalog at `upstream` issued to `upstream_credential` (`id:secret`).
    pub async fn new(
        endpoint: String,
        client_id: &str,
        client_secret: &str,
        upstream: &str,
        upstream_credential: (&str, &str),
    ) -> Introspection {
        let http = reqwest::Client::new();
        let answer: serde_json::Value = http
            .post(format!(
                "{}/v1/oauth/tokens",
                upstream.trim_end_matches('/')
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", upstream_credential.0),
                ("client_secret", upstream_credential.1),
            ])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("the real catalog issues the proxy a token")
            .json()
            .await
            .unwrap();
        Introspection {
            endpoint,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            upstream_authorization: format!("Bearer {}", answer["access_token"].as_str().unwrap()),
            checked: Mutex::default(),
            first_seen: Mutex::default(),
            tokens_seen: AtomicU64::new(0),
            http,
        }
    }

    /// When the first token reached the catalog: the run's clock.
    pub fn first_seen(&self) -> Option<Instant> {
        *self.first_seen.lock().unwrap()
    }

    pub async fn check(&self, token: &str) -> Verdict {
        let known = self.checked.lock().unwrap().get(token).copied();
        let expires = match known {
            Some(expires) => expires,
            None => match self.introspect(token).await {
                Ok(Some(expires)) => {
                    self.checked
                        .lock()
                        .unwrap()
                        .insert(token.to_string(), expires);
                    self.tokens_seen.fetch_add(1, Ordering::Relaxed);
                    self.first_seen
                        .lock()
                        .unwrap()
                        .get_or_insert_with(Instant::now);
                    expires
                }
                Ok(None) => return Verdict::Invalid,
                Err(_) => return Verdict::Unknown,
            },
        };
        if SystemTime::now() < expires {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    }

    /// The token's expiry when the server calls it active.
    async fn introspect(&self, token: &str) -> reqwest::Result<Option<SystemTime>> {
        let answer: serde_json::Value = self
            .http
            .post(&self.endpoint)
            .form(&[
                ("token", token),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok((answer["active"] == true)
            .then(|| answer["exp"].as_u64())
            .flatten()
            .map(|exp| UNIX_EPOCH + Duration::from_secs(exp)))
    }
}
