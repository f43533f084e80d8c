//! One S3 bucket as DataFusion sees it. DataFusion asks for a store by
//! `s3://bucket` alone, but a bucket holds tables whose files are signed
//! with the keys the catalog vended for each: every request is therefore
//! routed by its path through [`ObjectStores::resolve`], which decides the
//! credentials of every S3 path medallion touches. Each request is counted
//! and timed (`medallion_storage_requests_total`), for the servers' `/metrics`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::metrics::Registry;
use crate::metrics::names::{STORAGE_DURATION, STORAGE_REQUESTS};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use medallion_catalog::ObjectStores;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

#[derive(Debug)]
pub struct BucketStore {
    stores: Arc<ObjectStores>,
    /// `s3://bucket`
    root: String,
    metrics: Arc<Registry>,
}

impl BucketStore {
    pub fn new(
        stores: Arc<ObjectStores>,
        scheme: &str,
        bucket: &str,
        metrics: Arc<Registry>,
    ) -> Self {
        Self {
            stores,
            root: format!("{scheme}://{bucket}"),
            metrics,
        }
    }

    /// Runs one request, counting it by operation and outcome and timing it.
    async fn timed<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = request.await;
        record(&self.metrics, operation, &result, started);
        result
    }

    /// The store that serves `path` of this bucket (the path stays the same:
    /// every store of a bucket addresses it from its root).
    fn store(&self, path: Option<&Path>) -> Result<Arc<dyn ObjectStore>> {
        let location = match path {
            Some(path) => format!("{}/{path}", self.root),
            None => format!("{}/", self.root),
        };
        Ok(self.stores.resolve(&location)?.0)
    }
}

fn record<T>(metrics: &Registry, operation: &'static str, result: &Result<T>, started: Instant) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(object_store::Error::NotFound { .. }) => "not_found",
        Err(_) => "error",
    };
    count(metrics, operation, outcome, started);
}

fn count(metrics: &Registry, operation: &'static str, outcome: &'static str, started: Instant) {
    let labels = [("operation", operation), ("outcome", outcome)];
    metrics.add(&STORAGE_REQUESTS, &labels, 1.0);
    let seconds = started.elapsed().as_secs_f64();
    metrics.observe(&STORAGE_DURATION, &[("operation", operation)], seconds);
}

impl fmt::Display for BucketStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BucketStore({})", self.root)
    }
}

#[async_trait]
impl ObjectStore for BucketStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let store = self.store(Some(location))?;
        self.timed("put", store.put_opts(location, payload, opts))
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let store = self.store(Some(location))?;
        self.timed("multipart", store.put_multipart_opts(location, opts))
            .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let store = self.store(Some(location))?;
        let operation = if options.head { "head" } else { "get" };
        self.timed(operation, store.get_opts(location, options))
            .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let store = self.store(Some(location))?;
        self.timed("get_ranges", store.get_ranges(location, ranges))
            .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let stores = self.stores.clone();
        let root = self.root.clone();
        let metrics = self.metrics.clone();
        locations
            .then(move |location| {
                let bucket = BucketStore {
                    stores: stores.clone(),
                    root: root.clone(),
                    metrics: metrics.clone(),
                };
                async move {
                    let location = location?;
                    let store = bucket.store(Some(&location))?;
                    let mut deleted = store.delete_stream(stream::iter([Ok(location)]).boxed());
                    let one = async {
                        deleted
                            .next()
                            .await
                            .expect("one result for one deleted path")
                    };
                    bucket.timed("delete", one).await
                }
            })
            .boxed()
    }

    /// Counted once, when the listing ends (a listing is several pages).
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let listing = match self.store(prefix) {
            Ok(store) => store.list(prefix),
            Err(e) => return stream::once(async { Err(e) }).boxed(),
        };
        let (metrics, started) = (self.metrics.clone(), Instant::now());
        let failed = Arc::new(AtomicBool::new(false));
        let seen = failed.clone();
        let end = stream::once(async move {
            let outcome = if failed.load(Ordering::Relaxed) {
                "error"
            } else {
                "ok"
            };
            count(&metrics, "list", outcome, started);
        })
        .filter_map(|()| async { None });
        listing
            .inspect(move |item| {
                if item.is_err() {
                    seen.store(true, Ordering::Relaxed);
                }
            })
            .chain(end)
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let store = self.store(prefix)?;
        self.timed("list", store.list_with_delimiter(prefix)).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let store = self.store(Some(to))?;
        self.timed("copy", store.copy_opts(from, to, options)).await
    }
}
