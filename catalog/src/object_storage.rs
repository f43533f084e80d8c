//! One storage layer for everything medallion reads and writes: raw files
//! through DataFusion, table data and metadata through Iceberg's `FileIO`.
//! Both go through `object_store` and [`ObjectStores::resolve`], the one
//! place that decides which credentials an S3 path gets: the ones the
//! catalog vended for the table whose location holds it, else the
//! configured ones. A local folder works the same way as a bucket.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use iceberg::{Error, ErrorKind};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::credentials::{NoCredentials, Revend, VendedCredentials, VendedKeys, has_credentials};
use crate::secret::{redacted_uri, without_userinfo};
use crate::stale_connections::RetryStaleConnections;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// How to reach S3 (or MinIO, SeaweedFS, ...). Keys left empty come from
/// the standard `AWS_*` environment variables.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Settings {
    /// e.g. `http://minio.storage:9000`; empty for AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Virtual-hosted-style requests (`bucket.host`); local servers need
    /// path style, the default.
    pub virtual_hosted_style: bool,
    /// How long a failing request is retried before the error is final
    /// (default: object_store's three minutes).
    pub retry_timeout: Option<std::time::Duration>,
    /// Where no keys are configured or vended, ask the EC2 instance
    /// metadata address (169.254.169.254) for credentials. Off by default:
    /// off AWS that address hangs or answers confusingly.
    pub instance_metadata: bool,
}

impl fmt::Debug for S3Settings {
    // Keys never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint.as_deref().map(redacted_uri))
            .field("region", &self.region)
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("retry_timeout", &self.retry_timeout)
            .field("instance_metadata", &self.instance_metadata)
            .finish()
    }
}

impl S3Settings {
    /// Settings completed by the `s3.*` properties a catalog sends with a
    /// table; vended keys are not settings, see [`ObjectStores::vend`]. The
    /// configured endpoint wins: a catalog may advertise an address only
    /// reachable inside its own network.
    pub fn with_catalog_properties(&self, props: &HashMap<String, String>) -> Self {
        let mut merged = self.clone();
        let get = |key: &str| props.get(key).filter(|v| !v.is_empty()).cloned();
        if merged.endpoint.is_none() {
            merged.endpoint = get("s3.endpoint");
        }
        if merged.region.is_none() {
            merged.region = get("client.region").or_else(|| get("s3.region"));
        }
        merged
    }

    /// A store for `bucket` signing with `vended` keys, or else with the
    /// configured or environment's credentials.
    fn build(
        &self,
        bucket: &str,
        vended: Option<Arc<VendedCredentials>>,
    ) -> object_store::Result<Arc<dyn ObjectStore>> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(self.virtual_hosted_style);
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(without_userinfo(endpoint))
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &self.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &self.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &self.session_token {
            builder = builder.with_token(token);
        }
        if let Some(timeout) = self.retry_timeout {
            builder = builder.with_retry(RetryConfig {
                retry_timeout: timeout,
                ..RetryConfig::default()
            });
        }
        match vended {
            Some(vended) => builder = builder.with_credentials(vended),
            None if has_credentials(&builder) || self.instance_metadata => {}
            None => {
                return Err(object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(NoCredentials {
                        bucket: bucket.to_string(),
                    }),
                });
            }
        }
        Ok(Arc::new(RetryStaleConnections(Arc::new(builder.build()?))))
    }
}

/// The files under one table location, read and written with the
/// credentials the catalog vended for them.
#[derive(Debug)]
struct VendedScope {
    /// `s3://bucket/path/to/table`, without a trailing slash.
    prefix: String,
    store: Arc<dyn ObjectStore>,
    credentials: Option<Arc<VendedCredentials>>,
}

/// Whether `location` is `prefix` or lies below it (`s3a://` reads as `s3://`).
fn is_under(location: &str, prefix: &str) -> bool {
    let location = normalize_scheme(location);
    let prefix = normalize_scheme(prefix);
    let prefix = prefix.trim_end_matches('/');
    location == prefix
        || location
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn normalize_scheme(location: &str) -> std::borrow::Cow<'_, str> {
    match location.strip_prefix("s3a://") {
        Some(rest) => format!("s3://{rest}").into(),
        None => location.into(),
    }
}

/// Object stores by `scheme://bucket` with the configured credentials, and
/// by table location with the credentials vended for it; built on first
/// use and shared.
#[derive(Debug, Default)]
pub struct ObjectStores {
    s3: S3Settings,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    vended: RwLock<Vec<VendedScope>>,
}

impl ObjectStores {
    pub fn new(s3: S3Settings) -> Arc<Self> {
        Arc::new(Self {
            s3,
            stores: Mutex::default(),
            vended: RwLock::default(),
        })
    }

    /// Iceberg's file access over these stores, with this process's own
    /// credentials: how a worker writes the data files of a table it was
    /// never handed by a catalog.
    pub fn file_io(self: &Arc<Self>) -> FileIO {
        FileIOBuilder::new(Arc::new(ObjectStoreStorageFactory::new(self.clone()))).build()
    }

    /// Files under `prefix` (a table location) use what the catalog sent
    /// with the table: its vended keys, renewed through `revend` before
    /// they expire, and its endpoint where none is configured. Keys from a
    /// newer LoadTable replace the older ones.
    pub(crate) fn vend(
        &self,
        prefix: &str,
        props: &HashMap<String, String>,
        revend: Option<Arc<dyn Revend>>,
    ) -> object_store::Result<()> {
        let Some(("s3" | "s3a", rest)) = prefix.split_once("://") else {
            return Ok(());
        };
        let settings = self.s3.with_catalog_properties(props);
        let keys = VendedKeys::from_properties(props);
        if keys.is_none() && settings == self.s3 {
            return Ok(());
        }
        let prefix = prefix.trim_end_matches('/');
        let mut scopes = self.vended.write().expect("vended stores lock");
        let keys = match scopes.iter().position(|s| s.prefix == prefix) {
            None => keys,
            Some(index) => match (&scopes[index].credentials, keys) {
                (Some(credentials), Some(keys)) => {
                    credentials.update(keys, revend);
                    return Ok(());
                }
                // Nothing new was vended: the last keys stay until they expire.
                (_, None) => return Ok(()),
                (None, keys) => {
                    scopes.remove(index);
                    keys
                }
            },
        };
        let bucket = rest.split('/').next().unwrap_or(rest);
        let credentials = keys.map(|keys| Arc::new(VendedCredentials::new(prefix, keys, revend)));
        let store = settings.build(bucket, credentials.clone())?;
        scopes.push(VendedScope {
            prefix: prefix.to_string(),
            store,
            credentials,
        });
        Ok(())
    }

    /// The store holding `location` (`s3://bucket/key`, `file:///path`,
    /// or `file:/path` as Hadoop spells it in tables Spark keeps in a
    /// Hadoop catalog) and the object's path inside it. The most specific table location
    /// holding it decides its credentials; the configured ones serve the
    /// rest (raw files, a catalog that vends nothing).
    pub fn resolve(&self, location: &str) -> object_store::Result<(Arc<dyn ObjectStore>, Path)> {
        let (scheme, rest) = match location.split_once("://") {
            Some(split) => split,
            None if location.starts_with("file:/") => ("file", &location["file:".len()..]),
            None => return Err(unsupported(location)),
        };
        let (bucket, key) = match scheme {
            "file" => ("", rest),
            "s3" | "s3a" => rest.split_once('/').unwrap_or((rest, "")),
            _ => return Err(unsupported(location)),
        };
        let vended = self
            .vended
            .read()
            .expect("vended stores lock")
            .iter()
            .filter(|scope| is_under(location, &scope.prefix))
            .max_by_key(|scope| scope.prefix.len())
            .map(|scope| scope.store.clone());
        let store = match vended {
            Some(store) => store,
            None => self.configured(scheme, bucket)?,
        };
        let path = if scheme == "file" {
            Path::from_absolute_path(std::path::Path::new(key))?
        } else {
            Path::parse(key)?
        };
        Ok((store, path))
    }

    /// The store of a bucket (or the local file system) with the configured credentials.
    fn configured(&self, scheme: &str, bucket: &str) -> object_store::Result<Arc<dyn ObjectStore>> {
        let cache_key = format!("{scheme}://{bucket}");
        let mut stores = self.stores.lock().expect("store cache lock");
        if let Some(store) = stores.get(&cache_key) {
            return Ok(store.clone());
        }
        let store: Arc<dyn ObjectStore> = if scheme == "file" {
            Arc::new(LocalFileSystem::new().with_automatic_cleanup(true))
        } else {
            self.s3.build(bucket, None)?
        };
        stores.insert(cache_key, store.clone());
        Ok(store)
    }
}

impl ObjectStores {
    /// Deletes every object under `location`.
    pub async fn delete_prefix(&self, location: &str) -> object_store::Result<()> {
        let (store, prefix) = self.resolve(location)?;
        let objects = store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .boxed();
        store.delete_stream(objects).try_collect::<Vec<_>>().await?;
        Ok(())
    }
}

fn unsupported(location: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "medallion",
        source: format!("unsupported location {location}: use s3://bucket/key or file:///path")
            .into(),
    }
}

fn io_error(action: &str, location: &str, e: object_store::Error) -> Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => ErrorKind::DataInvalid,
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, format!("cannot {action} {location}")).with_source(e)
}

/// Iceberg `FileIO` storage over [`ObjectStores`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectStoreStorage {
    #[serde(skip)]
    stores: Arc<ObjectStores>,
}

impl ObjectStoreStorage {
    fn resolve(
        &self,
        action: &str,
        location: &str,
    ) -> iceberg::Result<(Arc<dyn ObjectStore>, Path)> {
        self.stores
            .resolve(location)
            .map_err(|e| io_error(action, location, e))
    }
}

#[async_trait]
#[typetag::serde(name = "medallion-object-store")]
impl Storage for ObjectStoreStorage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        let (store, key) = self.resolve("look up", path)?;
        match store.head(&key).await {
            Ok(_) => Ok(true),
            // S3 answers a HEAD of a missing key with 403, not 404, to a
            // caller it does not let list the bucket (SeaweedFS's table
            // buckets always do). Every caller looks up keys under a table
            // location its credentials write, so a refusal means not there.
            Err(
                object_store::Error::NotFound { .. } | object_store::Error::PermissionDenied { .. },
            ) => Ok(false),
            Err(e) => Err(io_error("look up", path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        let (store, key) = self.resolve("look up", path)?;
        let meta = store
            .head(&key)
            .await
            .map_err(|e| io_error("look up", path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        let (store, key) = self.resolve("read", path)?;
        let result = store
            .get(&key)
            .await
            .map_err(|e| io_error("read", path, e))?;
        result.bytes().await.map_err(|e| io_error("read", path, e))
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        let (store, key) = self.resolve("read", path)?;
        Ok(Box::new(RangeReader {
            store,
            key,
            location: path.to_string(),
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        let (store, key) = self.resolve("write", path)?;
        store
            .put(&key, PutPayload::from_bytes(bs))
            .await
            .map_err(|e| io_error("write", path, e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        let (store, key) = self.resolve("write", path)?;
        Ok(Box::new(StreamingWriter {
            writer: Some(BufWriter::new(store, key)),
            location: path.to_string(),
        }))
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        let (store, key) = self.resolve("delete", path)?;
        match store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error("delete", path, e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        self.stores
            .delete_prefix(path)
            .await
            .map_err(|e| io_error("delete everything under", path, e))
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

struct RangeReader {
    store: Arc<dyn ObjectStore>,
    key: Path,
    location: String,
}

#[async_trait]
impl FileRead for RangeReader {
    async fn read(&self, range: Range<u64>) -> iceberg::Result<Bytes> {
        self.store
            .get_range(&self.key, range)
            .await
            .map_err(|e| io_error("read", &self.location, e))
    }
}

/// Buffers and uploads in parts (multipart on S3); the object appears only
/// when the writer is closed, so a killed write leaves nothing half-written.
struct StreamingWriter {
    writer: Option<BufWriter>,
    location: String,
}

#[async_trait]
impl FileWrite for StreamingWriter {
    async fn write(&mut self, bs: Bytes) -> iceberg::Result<()> {
        let writer = self.writer.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("{} is already closed", self.location),
            )
        })?;
        writer
            .put(bs)
            .await
            .map_err(|e| io_error("write", &self.location, e))
    }

    async fn close(&mut self) -> iceberg::Result<()> {
        let mut writer = self.writer.take().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("{} is already closed", self.location),
            )
        })?;
        writer.shutdown().await.map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot finish writing {}", self.location),
            )
            .with_source(e)
        })
    }
}

/// Builds [`ObjectStoreStorage`] for every `FileIO`. The properties the
/// catalog sent with a table reached [`ObjectStores::vend`] before.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectStoreStorageFactory {
    #[serde(skip)]
    stores: Arc<ObjectStores>,
}

impl ObjectStoreStorageFactory {
    pub fn new(stores: Arc<ObjectStores>) -> Self {
        Self { stores }
    }
}

#[typetag::serde(name = "medallion-object-store")]
impl StorageFactory for ObjectStoreStorageFactory {
    fn build(&self, _config: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        Ok(Arc::new(ObjectStoreStorage {
            stores: self.stores.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_keys() {
        let settings = S3Settings {
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some("very-secret".into()),
            session_token: Some("token-value".into()),
            ..S3Settings::default()
        };
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("AKIAEXAMPLE")
                && !shown.contains("very-secret")
                && !shown.contains("token-value"),
            "{shown}"
        );
    }

    #[test]
    fn the_configured_endpoint_wins_over_the_catalogs() {
        let configured = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..S3Settings::default()
        };
        let props = HashMap::from([
            (
                "s3.endpoint".to_string(),
                "http://minio.internal:9000".to_string(),
            ),
            ("client.region".to_string(), "eu-west-1".to_string()),
        ]);
        let merged = configured.with_catalog_properties(&props);
        assert_eq!(merged.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(merged.region.as_deref(), Some("eu-west-1"));
    }

    fn vended(key_id: &str) -> HashMap<String, String> {
        HashMap::from([
            ("s3.access-key-id".to_string(), key_id.to_string()),
            ("s3.secret-access-key".to_string(), "secret".to_string()),
        ])
    }

    #[test]
    fn files_under_a_table_location_use_its_vended_store_and_others_the_configured_one() {
        let stores = ObjectStores::new(S3Settings {
            endpoint: Some("http://127.0.0.1:1".into()),
            access_key_id: Some("configured".into()),
            secret_access_key: Some("configured-secret".into()),
            ..S3Settings::default()
        });
        stores
            .vend("s3://warehouse/ns/orders", &vended("orders-key"), None)
            .unwrap();
        let store = |location: &str| Arc::as_ptr(&stores.resolve(location).unwrap().0).cast::<()>();
        let orders = store("s3://warehouse/ns/orders/data/a.parquet");
        assert_eq!(orders, store("s3a://warehouse/ns/orders/metadata/v1.json"));
        let configured = store("s3://warehouse/ns/orders_2/data/a.parquet");
        assert_ne!(
            orders, configured,
            "a sibling with a longer name is not under it"
        );
        assert_eq!(configured, store("s3://warehouse/other"));
        assert_ne!(store("s3://raw/a.csv"), orders);
    }

    #[test]
    fn a_bucket_without_any_credentials_is_an_error_naming_it() {
        let mut settings = S3Settings {
            endpoint: Some("http://127.0.0.1:1".into()),
            ..S3Settings::default()
        };
        let builder = AmazonS3Builder::from_env();
        if has_credentials(&builder) {
            return; // AWS_* credentials in this test's environment
        }
        let stores = ObjectStores::new(settings.clone());
        let error = stores.resolve("s3://warehouse/a").unwrap_err().to_string();
        assert!(
            error.contains("bucket `warehouse`") && error.contains("instance_metadata"),
            "{error}"
        );
        stores
            .vend("s3://warehouse/t", &vended("table-key"), None)
            .unwrap();
        assert!(stores.resolve("s3://warehouse/t/data/a.parquet").is_ok());
        settings.instance_metadata = true;
        assert!(
            ObjectStores::new(settings)
                .resolve("s3://warehouse/a")
                .is_ok()
        );
    }

    #[tokio::test]
    async fn local_files_round_trip_through_the_iceberg_storage() {
        let dir = tempfile::tempdir().unwrap();
        let storage = ObjectStoreStorage::default();
        let location = format!("file://{}/a/b/data.bin", dir.path().display());
        assert!(!storage.exists(&location).await.unwrap());
        let mut writer = storage.writer(&location).await.unwrap();
        writer.write(Bytes::from_static(b"hello ")).await.unwrap();
        writer.write(Bytes::from_static(b"world")).await.unwrap();
        assert!(
            !storage.exists(&location).await.unwrap(),
            "invisible until closed"
        );
        writer.close().await.unwrap();
        assert_eq!(storage.metadata(&location).await.unwrap().size, 11);
        let reader = storage.reader(&location).await.unwrap();
        assert_eq!(
            reader.read(6..11).await.unwrap(),
            Bytes::from_static(b"world")
        );
        storage
            .delete_prefix(&format!("file://{}/a", dir.path().display()))
            .await
            .unwrap();
        assert!(!storage.exists(&location).await.unwrap());
        storage.delete(&location).await.unwrap();
    }
}
