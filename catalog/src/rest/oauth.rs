//! One OAuth2 client-credentials request to a token endpoint (Keycloak, an
//! OpenID Connect server, the catalog's own), its failure classified: a
//! passing one (no connection, a timeout, 5xx, 429) is worth another try,
//! a refusal of the client is not.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::CatalogError;
use crate::rest::redact::without_url;
use crate::secret::Secret;
use crate::secret::redacted_uri;

/// Who asks for a token, and where.
pub(crate) struct Client<'a> {
    pub token_endpoint: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a Secret,
    pub scope: Option<&'a str>,
}

/// A token and how long it lasts, measured from before it was asked for.
pub(crate) struct Issued {
    pub token: Secret,
    pub requested: Instant,
    pub expires_in: Option<Duration>,
}

#[derive(Debug)]
pub(crate) enum Failure {
    /// The endpoint could not answer now; what happened, without a secret.
    Passing(String),
    /// The endpoint answered and refused, or answered nonsense.
    Refused(CatalogError),
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

impl Client<'_> {
    /// Asks once, giving up after `timeout`.
    pub async fn request(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Issued, Failure> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id),
            ("client_secret", self.client_secret.expose()),
        ];
        if let Some(scope) = self.scope {
            form.push(("scope", scope));
        }
        let requested = Instant::now();
        let response = http
            .post(self.token_endpoint)
            .form(&form)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_timeout() || e.is_request() {
                    Failure::Passing(without_url(&e))
                } else {
                    Failure::Refused(CatalogError::Auth(format!(
                        "cannot reach the OAuth2 token endpoint {}: {}",
                        redacted_uri(self.token_endpoint),
                        without_url(&e)
                    )))
                }
            })?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Passing(format!(
                "{status}{}",
                detail(response).await
            )));
        }
        if !status.is_success() {
            return Err(Failure::Refused(CatalogError::Auth(format!(
                "the OAuth2 token endpoint {} refused client `{}` ({status}{}); \
                 check the client id and secret (`credential`)",
                redacted_uri(self.token_endpoint),
                self.client_id,
                detail(response).await
            ))));
        }
        let token: TokenResponse = response.json().await.map_err(|e| {
            Failure::Refused(CatalogError::Auth(format!(
                "the OAuth2 token endpoint {} sent no usable token: {}",
                redacted_uri(self.token_endpoint),
                without_url(&e)
            )))
        })?;
        Ok(Issued {
            token: token.access_token,
            requested,
            expires_in: token.expires_in.map(Duration::from_secs),
        })
    }
}

/// `, error: description` from an OAuth2 error body, or nothing.
async fn detail(response: reqwest::Response) -> String {
    let body: Option<OAuthError> = response.json().await.ok();
    let parts: Vec<String> = body
        .map(|b| {
            [b.error, b.error_description]
                .into_iter()
                .flatten()
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join(": "))
    }
}
