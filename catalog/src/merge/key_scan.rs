//! What both kinds of merge read on each head: the key columns of its live
//! files, a few files at once.

use std::sync::Arc;

use iceberg::table::Table;

use super::keys::MergeKeys;
use crate::error::CatalogError;

/// Files of the head read at once while looking for matching keys.
pub(super) const READ_CONCURRENCY: usize = 4;

/// A key scan of the head's files: the keys, and their field ids in the
/// head's schema.
pub(super) struct KeyScan<'a> {
    pub head: &'a Table,
    pub keys: &'a Arc<MergeKeys>,
    pub key_ids: Vec<i32>,
    pub job_id: Option<&'a str>,
}

/// A key comparison that failed on a file of the head.
pub(super) fn key_error(head: &Table, error: impl ToString) -> CatalogError {
    CatalogError::Merge {
        table: head.identifier().clone(),
        detail: error.to_string(),
    }
}
