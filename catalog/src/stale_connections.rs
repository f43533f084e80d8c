//! S3 requests retried when the HTTP pool handed out a connection the peer
//! had just closed ("connection was not ready"). object_store 0.13
//! classifies that as an unknown error and does not retry it, although the
//! request never reached the server; load balancers and proxies that close
//! idle connections trigger it. Reads and whole-object writes are retried
//! (a request that was never sent is safe to send, whatever it does); a
//! multipart upload's parts are not: its part numbers are counted by the
//! upload, so a part sent again would be another part.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Attempts of a read that keeps meeting closed pooled connections.
const ATTEMPTS: u32 = 3;

#[derive(Debug)]
pub(crate) struct RetryStaleConnections(pub Arc<dyn ObjectStore>);

fn stale_connection(error: &object_store::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if e.to_string().contains("connection was not ready") {
            return true;
        }
        source = e.source();
    }
    false
}

impl fmt::Display for RetryStaleConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Runs `request` until it no longer meets a closed pooled connection, at
/// most [`ATTEMPTS`] times.
async fn retried<T, F, Fut>(location: &Path, request: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Err(e) if attempt < ATTEMPTS && stale_connection(&e) => {
                tracing::debug!(%location, attempt, "a request met a closed pooled connection, retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[async_trait]
impl ObjectStore for RetryStaleConnections {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        retried(location, || {
            self.0.put_opts(location, payload.clone(), opts.clone())
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        retried(location, || self.0.get_opts(location, options.clone())).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        retried(location, || self.0.get_ranges(location, ranges)).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(message: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: message.to_string().into(),
        }
    }

    /// A store whose first `failures` writes meet a closed pooled
    /// connection; everything else goes to memory.
    #[derive(Debug)]
    struct ClosedConnections {
        failures: std::sync::atomic::AtomicU32,
        inner: object_store::memory::InMemory,
    }

    impl fmt::Display for ClosedConnections {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("closed connections")
        }
    }

    #[async_trait]
    impl ObjectStore for ClosedConnections {
        async fn put_opts(
            &self,
            path: &Path,
            data: PutPayload,
            o: PutOptions,
        ) -> Result<PutResult> {
            let left = self.failures.load(std::sync::atomic::Ordering::SeqCst);
            if left > 0 {
                self.failures
                    .store(left - 1, std::sync::atomic::Ordering::SeqCst);
                return Err(generic(
                    "error sending request: client error (Canceled): connection was not ready",
                ));
            }
            self.inner.put_opts(path, data, o).await
        }

        async fn put_multipart_opts(
            &self,
            path: &Path,
            o: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(path, o).await
        }

        async fn get_opts(&self, path: &Path, o: GetOptions) -> Result<GetResult> {
            self.inner.get_opts(path, o).await
        }

        fn delete_stream(
            &self,
            paths: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(paths)
        }

        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
            self.inner.copy_opts(from, to, o).await
        }
    }

    fn store_failing(failures: u32) -> RetryStaleConnections {
        RetryStaleConnections(Arc::new(ClosedConnections {
            failures: failures.into(),
            inner: object_store::memory::InMemory::new(),
        }))
    }

    #[tokio::test]
    async fn a_write_that_met_a_closed_pooled_connection_is_sent_again() {
        let store = store_failing(ATTEMPTS - 1);
        let path = Path::from("data/file.parquet");
        let put = store.put_opts(
            &path,
            PutPayload::from_static(b"rows"),
            PutOptions::default(),
        );
        put.await.unwrap();
        let stored = store.get_opts(&path, GetOptions::default()).await.unwrap();
        assert_eq!(stored.bytes().await.unwrap(), Bytes::from_static(b"rows"));

        let store = store_failing(ATTEMPTS);
        let put = store.put_opts(
            &path,
            PutPayload::from_static(b"rows"),
            PutOptions::default(),
        );
        let error = put.await.unwrap_err();
        assert!(
            stale_connection(&error),
            "gives up after {ATTEMPTS}: {error}"
        );
    }

    #[test]
    fn only_a_closed_pooled_connection_is_retried() {
        assert!(stale_connection(&generic(
            "HTTP error: error sending request: client error (Canceled): operation was canceled: connection was not ready"
        )));
        assert!(!stale_connection(&generic(
            "HTTP error: client error (Connect): connection refused"
        )));
        assert!(!stale_connection(&object_store::Error::NotFound {
            path: "x".into(),
            source: "missing".into(),
        }));
    }
}
