//! The object store a URI lives in, as the engine's DataFusion runtime has
//! it (the same credentials raw files are read with).

use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;

/// The store of `uri`, its root URL (`s3://bucket/`, `file:///`) and the
/// parsed URI.
pub fn store_of(
    ctx: &SessionContext,
    uri: &str,
) -> Result<(Arc<dyn ObjectStore>, ObjectStoreUrl, url::Url)> {
    let url = url::Url::parse(uri).with_context(|| format!("bad URI {uri}"))?;
    let store_url = ObjectStoreUrl::parse(format!(
        "{}://{}",
        url.scheme(),
        url.host_str().unwrap_or_default()
    ))?;
    let store = ctx
        .runtime_env()
        .object_store(&store_url)
        .with_context(|| format!("no storage is configured for {uri}"))?;
    Ok((store, store_url, url))
}
