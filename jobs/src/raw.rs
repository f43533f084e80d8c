//! Raw objects as a load sees them.

use datafusion::object_store::ObjectMeta;

use crate::spec::RawFormat;

/// One raw object, by its full URI (`s3://raw/...`, `file:///...`).
#[derive(Debug, Clone)]
pub struct RawFile {
    pub uri: String,
    pub format: RawFormat,
    /// The object as listed: its path in the store and its size.
    pub meta: ObjectMeta,
}
