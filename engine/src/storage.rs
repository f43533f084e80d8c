//! Storage as DataFusion sees it, and resolving raw inputs to the objects
//! they name.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use medallion_catalog::ObjectStores;
use medallion_jobs::{RawFile, RawFormat, compression_of};
use object_store::ObjectStore;
use url::Url;

use crate::bucket_store::BucketStore;
use crate::metrics::Registry;

/// DataFusion's object stores: each S3 bucket is a [`BucketStore`] over
/// the same [`ObjectStores`] that Iceberg's file IO uses, so a table's
/// files are read with the credentials vended for it.
#[derive(Debug)]
pub struct StoreRegistry {
    stores: Arc<ObjectStores>,
    registered: DefaultObjectStoreRegistry,
    /// Where the S3 stores count their requests.
    metrics: Arc<Registry>,
}

impl StoreRegistry {
    pub fn new(stores: Arc<ObjectStores>, metrics: Arc<Registry>) -> Self {
        Self {
            stores,
            registered: DefaultObjectStoreRegistry::new(),
            metrics,
        }
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.registered.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        match url.scheme() {
            scheme @ ("s3" | "s3a") => Ok(Arc::new(BucketStore::new(
                self.stores.clone(),
                scheme,
                url.host_str().unwrap_or_default(),
                self.metrics.clone(),
            ))),
            _ => self.registered.get_store(url),
        }
    }
}

/// Joins a spec's raw path to the raw root unless it is already a URI or an
/// absolute path.
pub fn raw_uri(raw_root: &str, path: &str) -> String {
    if path.contains("://") {
        path.to_string()
    } else if path.starts_with('/') {
        format!("file://{path}")
    } else {
        format!(
            "{}/{}",
            raw_root.trim_end_matches('/'),
            path.trim_start_matches("./")
        )
    }
}

/// The objects of a raw input: the files its format reads, and the others
/// it holds, which are not read and must be named.
#[derive(Debug, Default)]
pub struct RawListing {
    pub files: Vec<RawFile>,
    /// Objects that are not of the format, or lie in a subfolder (other
    /// than a hive-style `key=value` one); markers and hidden files
    /// (`_SUCCESS`, `.x`) are left out silently.
    pub skipped: Vec<String>,
}

/// Every object of a raw input: one file, a folder of parts (hive-style
/// `key=value` subfolders included) or a glob, sorted by path.
pub async fn list_raw_files(
    ctx: &SessionContext,
    uri: &str,
    format: RawFormat,
) -> Result<RawListing> {
    let last = uri
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let is_file = compression_of(format, last).is_some();
    // A folder must end in `/` for DataFusion to list it.
    let listing = if is_file || uri.contains(['*', '?', '[']) || uri.ends_with('/') {
        uri.to_string()
    } else {
        format!("{uri}/")
    };
    let url = ListingTableUrl::parse(&listing).with_context(|| format!("bad raw path {uri}"))?;
    let store = ctx
        .runtime_env()
        .object_store(&url)
        .with_context(|| format!("no storage is configured for {uri}"))?;
    // Everything below the folder, so that files in other subfolders can
    // be named rather than passed over.
    let mut state = ctx.state();
    state
        .config_mut()
        .options_mut()
        .execution
        .listing_table_ignore_subdirectory = false;
    let objects: Vec<_> = match url.list_all_files(&state, store.as_ref(), "").await {
        Ok(stream) => stream.try_collect().await,
        Err(e) => Err(e),
    }
    .with_context(|| format!("cannot list raw files at {uri}"))?;
    let store_url = url.object_store();
    let mut listed = RawListing {
        files: Vec::new(),
        skipped: Vec::new(),
    };
    for meta in objects {
        let object = object_uri(store_url.as_str(), meta.location.as_ref());
        // Markers and hidden files (`_SUCCESS`, `.part-0.crc`, `_temporary/`)
        // are skipped by convention: Spark and Hadoop write them next to data.
        let hidden = url
            .strip_prefix(&meta.location)
            .is_some_and(|mut below| below.any(|s| s.starts_with(['.', '_'])));
        if hidden {
            continue;
        }
        if !url.contains(&meta.location, true) {
            // Outside the glob, or in a subfolder of a folder.
            if url.get_glob().is_none() {
                listed.skipped.push(object);
            }
            continue;
        }
        match compression_of(format, meta.location.filename().unwrap_or_default()) {
            Some(compression) => listed.files.push(RawFile {
                uri: object,
                format,
                compression,
                meta,
            }),
            None => listed.skipped.push(object),
        }
    }
    listed.files.sort_by(|a, b| a.uri.cmp(&b.uri));
    listed.skipped.sort();
    if listed.files.is_empty() {
        let holds = if listed.skipped.is_empty() {
            String::new()
        } else {
            format!(" (only {})", some_of(&listed.skipped))
        };
        bail!(
            "no {} files at {uri}{holds}; land the raw files there, or fix the input path or format",
            format.extension()
        );
    }
    Ok(listed)
}

/// Up to five names and how many more: `a, b, c, d, e and 12 more`.
pub fn some_of(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let shown = names[..names.len().min(SHOWN)].join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// The full URI of an object: `file:///abs/path`, `s3://bucket/key`.
fn object_uri(store_url: &str, key: &str) -> String {
    let (scheme, rest) = store_url.split_once(':').unwrap_or(("file", ""));
    let host = rest.trim_matches('/');
    let key = key.trim_start_matches('/');
    if host.is_empty() {
        format!("{scheme}:///{key}")
    } else {
        format!("{scheme}://{host}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_raw_paths_join_the_root() {
        assert_eq!(raw_uri("s3://raw", "tpch/orders"), "s3://raw/tpch/orders");
        assert_eq!(
            raw_uri("file:///lh/raw/", "./tpch/orders"),
            "file:///lh/raw/tpch/orders"
        );
        assert_eq!(
            raw_uri("file:///lh/raw", "s3://other/x.parquet"),
            "s3://other/x.parquet"
        );
        assert_eq!(
            raw_uri("file:///lh/raw", "/data/x.parquet"),
            "file:///data/x.parquet"
        );
    }

    #[test]
    fn object_uris_are_full() {
        assert_eq!(
            object_uri("file:///", "lh/raw/a.parquet"),
            "file:///lh/raw/a.parquet"
        );
        assert_eq!(
            object_uri("s3://raw/", "tpch/a.parquet"),
            "s3://raw/tpch/a.parquet"
        );
    }
}
