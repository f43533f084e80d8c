//! The Iceberg REST catalog protocol.

mod auth;
mod backoff;
mod catalog;
mod client;
mod oauth;
mod redact;

use std::collections::HashMap;
use std::path::PathBuf;

pub(crate) use auth::Authenticator;
pub use auth::TokenSource;
pub(crate) use backoff::Backoff;
pub(crate) use catalog::RestCatalog;
pub(crate) use client::RestClient;

use crate::error::{CatalogError, Result};
use crate::secret::{Secret, redacted_uri};

/// How to reach and authenticate to a REST catalog, with the property names
/// Spark and PyIceberg users know (`uri`, `warehouse`, `credential`,
/// `oauth2-server-uri`, `scope`, `token`, `header.*`).
#[derive(Clone, Default)]
pub struct RestSettings {
    /// e.g. `http://lakekeeper:8181/catalog`.
    pub uri: String,
    /// Warehouse name (Lakekeeper) or location.
    pub warehouse: Option<String>,
    /// OAuth2 client credentials, `client_id:client_secret`.
    pub credential: Option<Secret>,
    /// Token endpoint; default `{uri}/v1/oauth/tokens`. For Keycloak:
    /// `https://keycloak/realms/<realm>/protocol/openid-connect/token`.
    pub oauth2_server_uri: Option<String>,
    pub scope: Option<String>,
    /// A static bearer token.
    pub token: Option<Secret>,
    /// A file holding a bearer token, re-read whenever it changes.
    pub token_file: Option<PathBuf>,
    /// Extra headers sent with every request.
    pub headers: HashMap<String, String>,
    /// Ask the catalog for storage credentials with each table.
    pub vended_credentials: bool,
}

impl std::fmt::Debug for RestSettings {
    // A catalog URI keeps its password for its requests and a header may
    // carry a token (`Authorization`): neither reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&String, &str)> = self
            .headers
            .keys()
            .map(|name| (name, "<redacted>"))
            .collect();
        f.debug_struct("RestSettings")
            .field("uri", &redacted_uri(&self.uri))
            .field("warehouse", &self.warehouse.as_deref().map(redacted_uri))
            .field("credential", &self.credential)
            .field(
                "oauth2_server_uri",
                &self.oauth2_server_uri.as_deref().map(redacted_uri),
            )
            .field("scope", &self.scope)
            .field("token", &self.token)
            .field("token_file", &self.token_file)
            .field("headers", &headers)
            .field("vended_credentials", &self.vended_credentials)
            .finish()
    }
}

impl RestSettings {
    pub fn token_source(&self) -> Result<TokenSource> {
        let given = [
            self.credential.is_some(),
            self.token.is_some(),
            self.token_file.is_some(),
        ]
        .into_iter()
        .filter(|g| *g)
        .count();
        if given > 1 {
            return Err(CatalogError::Config(
                "give the catalog one of `credential`, `token` or `token_file`, not several".into(),
            ));
        }
        if let Some(token) = &self.token {
            return Ok(TokenSource::Static(token.clone()));
        }
        if let Some(path) = &self.token_file {
            return Ok(TokenSource::File(path.clone()));
        }
        let Some(credential) = &self.credential else {
            return Ok(TokenSource::Anonymous);
        };
        let (client_id, client_secret) = credential.expose().split_once(':').ok_or_else(|| {
            CatalogError::Config("`credential` must be `client_id:client_secret`".into())
        })?;
        Ok(TokenSource::ClientCredentials {
            token_endpoint: self
                .oauth2_server_uri
                .clone()
                .unwrap_or_else(|| format!("{}/v1/oauth/tokens", self.uri.trim_end_matches('/'))),
            client_id: client_id.to_string(),
            client_secret: Secret::new(client_secret),
            scope: self.scope.clone(),
        })
    }
}
