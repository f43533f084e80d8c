//! S3 reads retried when the HTTP pool handed out a connection the peer had
//! just closed ("connection was not ready"). object_store 0.13 classifies
//! that as an unknown error and does not retry it, although the request
//! never reached the server; load balancers and proxies that close idle
//! connections trigger it. Only reads are retried: they are idempotent.

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

#[async_trait]
impl ObjectStore for RetryStaleConnections {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let mut attempt = 1;
        loop {
            match self.0.get_opts(location, options.clone()).await {
                Err(e) if attempt < ATTEMPTS && stale_connection(&e) => {
                    tracing::debug!(%location, attempt, "read met a closed pooled connection, retrying");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let mut attempt = 1;
        loop {
            match self.0.get_ranges(location, ranges).await {
                Err(e) if attempt < ATTEMPTS && stale_connection(&e) => {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
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
