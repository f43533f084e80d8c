//! Who may upload: `Authorization: Bearer <JWT>` from the identity
//! provider (Keycloak), checked against its published keys (JWKS, found
//! through OpenID discovery) for signature, issuer, audience and expiry,
//! then for the scope or role a dataset requires (`upload:<dataset>`).
//!
//! Keys are cached; a token signed by a key not in the cache fetches the
//! JWKS again (key rotation), at most once a second so that tokens with
//! made-up key ids cannot hammer the provider.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::RwLock;

/// The least time between two JWKS fetches caused by unknown key ids.
const REFETCH_AFTER: Duration = Duration::from_secs(1);

/// Why a request may not upload: 401 for the token, 403 for the grant,
/// 503 when the provider's keys cannot be fetched. The text names the
/// check that failed and never contains the token.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    Unauthenticated(String),
    Forbidden(String),
    Unavailable(String),
}

/// Checks bearer tokens of one issuer and audience.
pub struct Authenticator {
    issuer: String,
    audience: String,
    /// Clock skew allowed between the provider and this process.
    leeway: Duration,
    jwks_uri: String,
    http: reqwest::Client,
    keys: RwLock<Keys>,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Authenticator {
    /// Discovers the provider's JWKS and fetches it once, so a server with
    /// a wrong issuer fails at start, not at the first upload.
    pub async fn discover(issuer: &str, audience: &str, leeway: Duration) -> Result<Self> {
        let issuer = issuer.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = async {
            http.get(&url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .with_context(|| {
            format!("cannot read the OpenID configuration at {url}; check --oidc-issuer")
        })?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            bail!(
                "--oidc-issuer {issuer}: the provider calls itself {}; use that",
                discovery.issuer
            );
        }
        let set = fetch_keys(&http, &discovery.jwks_uri).await?;
        Ok(Self {
            issuer,
            audience: audience.to_string(),
            leeway,
            jwks_uri: discovery.jwks_uri,
            http,
            keys: RwLock::new(Keys {
                set,
                fetched: Instant::now(),
            }),
        })
    }

    /// The claims of a valid token, or why it is not.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Claims, Denied> {
        let token = bearer(authorization)?;
        let header = decode_header(token)
            .map_err(|_| Denied::Unauthenticated("the bearer token is not a JWT".into()))?;
        let kid = header.kid.ok_or_else(|| {
            Denied::Unauthenticated("the token names no signing key (kid)".into())
        })?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.leeway.as_secs();
        decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| Denied::Unauthenticated(self.rejection(e.kind())))
    }

    fn rejection(&self, kind: &ErrorKind) -> String {
        match kind {
            ErrorKind::ExpiredSignature => "the token expired; get a new one".into(),
            ErrorKind::InvalidAudience => format!(
                "the token is not for this API: its audience is not `{}`",
                self.audience
            ),
            ErrorKind::InvalidIssuer => {
                format!("the token was not issued by {}", self.issuer)
            }
            ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
            ErrorKind::InvalidAlgorithm => {
                "the token's algorithm does not match its signing key".into()
            }
            ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
            _ => "the bearer token is malformed".into(),
        }
    }

    /// The key `kid` names, fetching the JWKS again when it is not cached.
    async fn key(&self, kid: &str) -> Result<DecodingKey, Denied> {
        if let Some(key) = self.cached(kid).await? {
            return Ok(key);
        }
        let mut keys = self.keys.write().await;
        // Another request may have refreshed the set meanwhile.
        if keys.set.find(kid).is_none() && keys.fetched.elapsed() >= REFETCH_AFTER {
            keys.set = fetch_keys(&self.http, &self.jwks_uri).await.map_err(|e| {
                Denied::Unavailable(format!(
                    "cannot fetch the identity provider's keys: {}",
                    crate::errors::one_line(&e)
                ))
            })?;
            keys.fetched = Instant::now();
        }
        drop(keys);
        self.cached(kid).await?.ok_or_else(|| {
            Denied::Unauthenticated(format!(
                "the token is signed by a key (kid {kid}) the identity provider does not publish"
            ))
        })
    }

    async fn cached(&self, kid: &str) -> Result<Option<DecodingKey>, Denied> {
        let keys = self.keys.read().await;
        let Some(jwk) = keys.set.find(kid) else {
            return Ok(None);
        };
        DecodingKey::from_jwk(jwk)
            .map(Some)
            .map_err(|_| Denied::Unavailable(format!("the provider's key {kid} is not usable")))
    }
}

async fn fetch_keys(http: &reqwest::Client, uri: &str) -> Result<JwkSet> {
    async { http.get(uri).send().await?.error_for_status()?.json().await }
        .await
        .with_context(|| format!("cannot fetch the JWKS at {uri}"))
}

fn bearer(authorization: Option<&str>) -> Result<&str, Denied> {
    let value = authorization.ok_or_else(|| {
        Denied::Unauthenticated(
            "no Authorization header; send `Authorization: Bearer <token>`".into(),
        )
    })?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Denied::Unauthenticated(
            "the Authorization header is not `Bearer <token>`".into(),
        )),
    }
}

/// The claims a grant is read from: OAuth2 scopes (`scope`, space
/// separated; `scp`) and Keycloak roles (`realm_access.roles`,
/// `resource_access.<client>.roles`).
#[derive(Debug, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Value>,
    #[serde(default)]
    realm_access: Option<Value>,
    #[serde(default)]
    resource_access: Option<Value>,
}

impl Claims {
    /// Whether the token grants `wanted` as a scope or a role.
    pub fn grants(&self, wanted: &str) -> bool {
        let scopes = self.scope.iter().flat_map(|s| s.split_whitespace());
        let scp = strings(self.scp.as_ref());
        let realm = strings(self.realm_access.as_ref().and_then(|r| r.get("roles")));
        let clients = self
            .resource_access
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|clients| clients.values())
            .flat_map(|client| strings(client.get("roles")));
        scopes
            .map(str::to_string)
            .chain(scp)
            .chain(realm)
            .chain(clients)
            .any(|granted| granted == wanted)
    }
}

/// The strings of a JSON string or array of strings.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The scope or role an upload to `dataset` needs.
pub fn upload_scope(dataset: &str) -> String {
    format!("upload:{dataset}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: Value) -> Claims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_grant_is_read_from_scopes_and_from_keycloak_roles() {
        let wanted = upload_scope("orders");
        assert!(claims(serde_json::json!({"scope": "openid upload:orders"})).grants(&wanted));
        assert!(claims(serde_json::json!({"scp": ["upload:orders"]})).grants(&wanted));
        assert!(
            claims(serde_json::json!({"realm_access": {"roles": ["upload:orders"]}}))
                .grants(&wanted)
        );
        assert!(
            claims(
                serde_json::json!({"resource_access": {"medallion": {"roles": ["upload:orders"]}}})
            )
            .grants(&wanted)
        );
        assert!(
            !claims(serde_json::json!({"scope": "upload:customer upload:orders2"})).grants(&wanted)
        );
    }

    #[test]
    fn a_missing_or_foreign_authorization_header_is_named() {
        assert!(
            matches!(bearer(None), Err(Denied::Unauthenticated(m)) if m.contains("no Authorization"))
        );
        assert!(
            matches!(bearer(Some("Basic abc")), Err(Denied::Unauthenticated(m)) if m.contains("Bearer"))
        );
        assert_eq!(bearer(Some("bearer abc")).unwrap(), "abc");
    }
}
