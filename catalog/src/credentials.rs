//! S3 credentials: the ones a catalog vended for a table (renewed through a
//! new LoadTable before they expire), and the check that a path has any
//! credentials at all before object_store falls back to the EC2 instance
//! metadata address, which off AWS is a hang or a puzzling error.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use object_store::CredentialProvider;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};

/// Vended credentials are renewed this long before they expire, so that no
/// request (a multipart upload part, a Parquet range) meets an expired key.
/// The shortest STS credentials live 15 minutes.
pub(crate) const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Keys a catalog sent with a table (`s3.access-key-id`, ...).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct VendedKeys {
    pub credential: Arc<AwsCredential>,
    /// `s3.session-token-expires-at-ms`, when the catalog said.
    pub expires_at_ms: Option<u64>,
}

impl fmt::Debug for VendedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendedKeys")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl VendedKeys {
    /// The keys among a table's properties; `None` when nothing was vended.
    pub fn from_properties(props: &HashMap<String, String>) -> Option<Self> {
        let get = |key: &str| props.get(key).filter(|v| !v.is_empty()).cloned();
        let (key_id, secret_key) = (get("s3.access-key-id")?, get("s3.secret-access-key")?);
        Some(Self {
            credential: Arc::new(AwsCredential {
                key_id,
                secret_key,
                token: get("s3.session-token"),
            }),
            expires_at_ms: get("s3.session-token-expires-at-ms").and_then(|v| v.parse().ok()),
        })
    }

    fn due_for_renewal(&self) -> bool {
        self.expires_at_ms
            .is_some_and(|at| now_ms() + RENEW_BEFORE_EXPIRY.as_millis() as u64 >= at)
    }

    fn expired(&self) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms() >= at)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Asks the catalog for a table's credentials again (a new LoadTable),
/// which hands the fresh keys to the table's [`VendedCredentials`].
#[async_trait]
pub(crate) trait Revend: fmt::Debug + Send + Sync {
    async fn revend(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// The credentials of one table's files: the keys vended last, renewed
/// through [`Revend`] when they are about to expire.
#[derive(Debug)]
pub(crate) struct VendedCredentials {
    /// The table location the keys are for, for errors.
    location: String,
    keys: RwLock<VendedKeys>,
    revend: RwLock<Option<Arc<dyn Revend>>>,
    /// One renewal at a time; the others wait for it and use its keys.
    renewing: tokio::sync::Mutex<()>,
}

impl VendedCredentials {
    pub fn new(location: &str, keys: VendedKeys, revend: Option<Arc<dyn Revend>>) -> Self {
        Self {
            location: location.to_string(),
            keys: RwLock::new(keys),
            revend: RwLock::new(revend),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// Keys from a newer LoadTable of the same table.
    pub fn update(&self, keys: VendedKeys, revend: Option<Arc<dyn Revend>>) {
        *self.keys.write().expect("vended keys lock") = keys;
        if revend.is_some() {
            *self.revend.write().expect("revend lock") = revend;
        }
    }

    fn current(&self) -> VendedKeys {
        self.keys.read().expect("vended keys lock").clone()
    }
}

#[async_trait]
impl CredentialProvider for VendedCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let keys = self.current();
        if !keys.due_for_renewal() {
            return Ok(keys.credential);
        }
        let _renewing = self.renewing.lock().await;
        let keys = self.current();
        if !keys.due_for_renewal() {
            return Ok(keys.credential);
        }
        let revend = self.revend.read().expect("revend lock").clone();
        let failure = match revend {
            Some(revend) => match revend.revend().await {
                Ok(()) => return Ok(self.current().credential),
                Err(e) => e.to_string(),
            },
            None => "nothing can ask the catalog again".to_string(),
        };
        if keys.expired() {
            return Err(object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "the credentials the catalog vended for {} expired and could not be renewed \
                     ({failure}); check that the catalog is reachable and re-run",
                    self.location
                )
                .into(),
            });
        }
        tracing::warn!(
            location = %self.location,
            "cannot renew the credentials the catalog vended ({failure}); using them until they expire"
        );
        Ok(keys.credential)
    }
}

/// No credentials for a bucket: none configured, none in the environment,
/// none vended by the catalog.
#[derive(Debug, thiserror::Error)]
#[error(
    "no S3 credentials for bucket `{bucket}`: none are configured and the catalog vended none \
     for this path; give medallion keys (`s3.access_key_id` and `s3.secret_access_key` in \
     medallion.yaml, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), a web identity \
     (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN), let the catalog vend them \
     (`vended_credentials: true` under `catalog:`), or set `s3.instance_metadata: true` to \
     use the credentials of the EC2 instance"
)]
pub struct NoCredentials {
    pub bucket: String,
}

/// Whether `builder` has a source of credentials other than the instance
/// metadata address, which object_store tries when it has none.
pub(crate) fn has_credentials(builder: &AmazonS3Builder) -> bool {
    let set = |key: AmazonS3ConfigKey| {
        builder
            .get_config_value(&key)
            .is_some_and(|v| !v.is_empty())
    };
    set(AmazonS3ConfigKey::AccessKeyId)
        || (set(AmazonS3ConfigKey::WebIdentityTokenFile) && set(AmazonS3ConfigKey::RoleArn))
        || set(AmazonS3ConfigKey::ContainerCredentialsRelativeUri)
        || (set(AmazonS3ConfigKey::ContainerCredentialsFullUri)
            && set(AmazonS3ConfigKey::ContainerAuthorizationTokenFile))
        || builder
            .get_config_value(&AmazonS3ConfigKey::SkipSignature)
            .is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn keys(key_id: &str, expires_in: Duration) -> VendedKeys {
        VendedKeys {
            credential: Arc::new(AwsCredential {
                key_id: key_id.into(),
                secret_key: "secret".into(),
                token: Some("token".into()),
            }),
            expires_at_ms: Some(now_ms() + expires_in.as_millis() as u64),
        }
    }

    /// A catalog that vends `renewed` on every LoadTable.
    #[derive(Debug)]
    struct Catalog {
        loads: AtomicU32,
        target: std::sync::OnceLock<Arc<VendedCredentials>>,
    }

    #[async_trait]
    impl Revend for Catalog {
        async fn revend(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            let target = self.target.get().expect("set");
            target.update(keys("renewed", Duration::from_secs(3600)), None);
            Ok(())
        }
    }

    #[tokio::test]
    async fn keys_about_to_expire_are_renewed_once_and_fresh_ones_are_kept() {
        let catalog = Arc::new(Catalog {
            loads: AtomicU32::new(0),
            target: Default::default(),
        });
        let credentials = Arc::new(VendedCredentials::new(
            "s3://warehouse/t",
            keys("first", Duration::from_secs(60)),
            Some(catalog.clone()),
        ));
        catalog.target.set(credentials.clone()).unwrap();
        let (a, b) = tokio::join!(credentials.get_credential(), credentials.get_credential());
        assert_eq!(a.unwrap().key_id, "renewed");
        assert_eq!(b.unwrap().key_id, "renewed");
        assert_eq!(
            credentials.get_credential().await.unwrap().key_id,
            "renewed"
        );
        assert_eq!(catalog.loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn expired_keys_that_cannot_be_renewed_are_an_error_naming_the_table() {
        let credentials =
            VendedCredentials::new("s3://warehouse/t", keys("old", Duration::ZERO), None);
        let error = credentials.get_credential().await.unwrap_err().to_string();
        assert!(
            error.contains("s3://warehouse/t") && error.contains("expired"),
            "{error}"
        );
    }

    #[test]
    fn keys_and_expiry_are_read_from_the_table_properties() {
        let props = HashMap::from([
            ("s3.access-key-id".to_string(), "AK".to_string()),
            ("s3.secret-access-key".to_string(), "SK".to_string()),
            ("s3.session-token".to_string(), "T".to_string()),
            (
                "s3.session-token-expires-at-ms".to_string(),
                "1700000000000".to_string(),
            ),
        ]);
        let keys = VendedKeys::from_properties(&props).unwrap();
        assert_eq!(keys.credential.token.as_deref(), Some("T"));
        assert_eq!(keys.expires_at_ms, Some(1_700_000_000_000));
        assert!(!format!("{keys:?}").contains("SK"));
        assert!(VendedKeys::from_properties(&HashMap::new()).is_none());
    }
}
