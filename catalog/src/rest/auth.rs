//! Bearer tokens for the REST catalog: a static token, a token file that is
//! re-read when it changes (Kubernetes projected service-account tokens), or
//! OAuth2 client credentials (Keycloak) refreshed before they expire.
//! iceberg-rust 0.10 never refreshes, so a job longer than a token's life
//! would fail; this does not.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::{CatalogError, Result};
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
    file_modified: Option<SystemTime>,
}

#[derive(Debug)]
pub struct Authenticator {
    source: TokenSource,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
}

/// Refresh when this share of a token's life has passed, leaving room for
/// clock skew and requests in flight.
const REFRESH_AT_LIFE_FRACTION: f64 = 0.8;

impl Authenticator {
    pub fn new(source: TokenSource, http: reqwest::Client) -> Self {
        Self {
            source,
            http,
            cached: Mutex::new(None),
        }
    }

    /// The `Authorization` header value, fetching or refreshing as needed.
    pub async fn authorization(&self) -> Result<Option<String>> {
        let mut cached = self.cached.lock().await;
        let fresh = match (&self.source, cached.as_ref()) {
            (TokenSource::Anonymous, _) => return Ok(None),
            (TokenSource::Static(token), _) => {
                return Ok(Some(format!("Bearer {}", token.expose())));
            }
            (TokenSource::File(path), Some(current)) => {
                file_modified(path) == current.file_modified
            }
            (TokenSource::ClientCredentials { .. }, Some(current)) => {
                current.refresh_after.is_none_or(|at| Instant::now() < at)
            }
            (_, None) => false,
        };
        if !fresh {
            *cached = Some(self.fetch().await?);
        }
        Ok(cached
            .as_ref()
            .map(|c| format!("Bearer {}", c.token.expose())))
    }

    /// Forgets the token after the catalog rejected it (401).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    pub fn can_refresh(&self) -> bool {
        matches!(
            self.source,
            TokenSource::File(_) | TokenSource::ClientCredentials { .. }
        )
    }

    async fn fetch(&self) -> Result<Cached> {
        match &self.source {
            TokenSource::Anonymous | TokenSource::Static(_) => unreachable!("nothing to fetch"),
            TokenSource::File(path) => {
                let token = std::fs::read_to_string(path).map_err(|e| {
                    CatalogError::Auth(format!(
                        "cannot read the catalog token file {}: {e}",
                        path.display()
                    ))
                })?;
                Ok(Cached {
                    token: Secret::new(token.trim()),
                    refresh_after: None,
                    file_modified: file_modified(path),
                })
            }
            TokenSource::ClientCredentials {
                token_endpoint,
                client_id,
                client_secret,
                scope,
            } => {
                let mut form = vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose()),
                ];
                if let Some(scope) = scope {
                    form.push(("scope", scope.as_str()));
                }
                let shown = redacted_uri(token_endpoint);
                let started = Instant::now();
                let response = self
                    .http
                    .post(token_endpoint)
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| {
                        CatalogError::Auth(format!(
                            "cannot reach the OAuth2 token endpoint {shown}: {}",
                            without_url(&e)
                        ))
                    })?;
                let status = response.status();
                if !status.is_success() {
                    let body: Option<OAuthError> = response.json().await.ok();
                    let detail = body
                        .map(|b| {
                            [b.error, b.error_description]
                                .into_iter()
                                .flatten()
                                .collect::<Vec<_>>()
                                .join(": ")
                        })
                        .unwrap_or_default();
                    return Err(CatalogError::Auth(format!(
                        "the OAuth2 token endpoint {shown} refused client `{client_id}` \
                         ({status}{}); check the client id and secret (`credential`)",
                        if detail.is_empty() {
                            String::new()
                        } else {
                            format!(", {detail}")
                        }
                    )));
                }
                let token: TokenResponse = response.json().await.map_err(|e| {
                    CatalogError::Auth(format!(
                        "the OAuth2 token endpoint {shown} sent no usable token: {}",
                        without_url(&e)
                    ))
                })?;
                let refresh_after = token.expires_in.map(|seconds| {
                    started + Duration::from_secs_f64(seconds as f64 * REFRESH_AT_LIFE_FRACTION)
                });
                tracing::debug!(
                    client_id,
                    expires_in = token.expires_in,
                    "obtained a catalog token"
                );
                Ok(Cached {
                    token: token.access_token,
                    refresh_after,
                    file_modified: None,
                })
            }
        }
    }
}

fn file_modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// reqwest errors print their URL, which may carry a signed query; the
/// caller names the endpoint itself.
pub(crate) fn without_url(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message.replace(" ()", "").replace(" for url", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first-token\n").unwrap();
        let auth = Authenticator::new(TokenSource::File(path.clone()), reqwest::Client::new());
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
        );
        let error = auth.authorization().await.unwrap_err().to_string();
        assert!(error.contains("/nonexistent/token"), "{error}");
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
