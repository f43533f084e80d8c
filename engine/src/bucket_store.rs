//! One S3 bucket as DataFusion sees it. DataFusion asks for a store by
//! `s3://bucket` alone, but a bucket holds tables whose files are signed
//! with the keys the catalog vended for each: every request is therefore
//! routed by its path through [`ObjectStores::resolve`], which decides the
//! credentials of every S3 path medallion touches.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

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
}

impl BucketStore {
    pub fn new(stores: Arc<ObjectStores>, scheme: &str, bucket: &str) -> Self {
        Self {
            stores,
            root: format!("{scheme}://{bucket}"),
        }
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
        self.store(Some(location))?
            .put_opts(location, payload, opts)
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.store(Some(location))?
            .put_multipart_opts(location, opts)
            .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.store(Some(location))?
            .get_opts(location, options)
            .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.store(Some(location))?
            .get_ranges(location, ranges)
            .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let stores = self.stores.clone();
        let root = self.root.clone();
        locations
            .then(move |location| {
                let bucket = BucketStore {
                    stores: stores.clone(),
                    root: root.clone(),
                };
                async move {
                    let location = location?;
                    let store = bucket.store(Some(&location))?;
                    let mut deleted = store.delete_stream(stream::iter([Ok(location)]).boxed());
                    deleted
                        .next()
                        .await
                        .expect("one result for one deleted path")
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        match self.store(prefix) {
            Ok(store) => store.list(prefix),
            Err(e) => stream::once(async { Err(e) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.store(prefix)?.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.store(Some(to))?.copy_opts(from, to, options).await
    }
}
