//! The keys of a merge's new rows: remembered while the rows stream into
//! data files, then matched against the rows of the table's files.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Mutex, RwLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, prep_null_mask_filter};
use arrow::datatypes::{DataType, Schema};
use arrow::row::{RowConverter, Rows, SortField};
use arrow::util::display::array_value_to_string;
use foldhash::fast::RandomState;

use super::key_set::KeySet;
use crate::error::BoxError;

/// The keys of the new rows, in Arrow's row format so that any key columns
/// hash and compare the same way.
pub(super) struct MergeKeys {
    pub(super) names: Vec<String>,
    /// Whether keys are kept (the table had rows when the merge started).
    pub(super) kept: bool,
    types: Vec<DataType>,
    converter: RowConverter,
    /// Every key of every file of the head is looked up here on every attempt.
    seen: RwLock<KeySet>,
    /// When keys are not kept: each new key's 64-bit hash (8 bytes a key
    /// instead of ~60), so that a repeated key is still found.
    pub(super) hashes: Mutex<Vec<u64>>,
    hasher: RandomState,
}

/// The new rows' keys are not usable: a key is null or repeated.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct KeyProblem(String);

impl MergeKeys {
    pub(super) fn new(
        names: &[String],
        table_schema: &Schema,
        kept: bool,
    ) -> std::result::Result<Self, String> {
        if names.is_empty() {
            return Err("a merge needs at least one key column".into());
        }
        let types = names
            .iter()
            .map(|name| {
                table_schema
                    .field_with_name(name)
                    .map(|f| f.data_type().clone())
                    .map_err(|_| format!("key column `{name}` is not in the table"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let converter = RowConverter::new(types.iter().cloned().map(SortField::new).collect())
            .map_err(|e| format!("cannot compare keys of these types: {e}"))?;
        Ok(Self {
            names: names.to_vec(),
            kept,
            converter,
            seen: RwLock::new(KeySet::for_types(&types)),
            types,
            hashes: Mutex::default(),
            hasher: RandomState::default(),
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.seen.read().expect("key set lock").is_empty()
    }

    fn columns(&self, batch: &RecordBatch) -> std::result::Result<Vec<ArrayRef>, BoxError> {
        self.names
            .iter()
            .zip(&self.types)
            .map(|(name, data_type)| {
                let column = batch.column_by_name(name).ok_or_else(|| {
                    KeyProblem(format!("key column `{name}` is not in the new rows"))
                })?;
                Ok(cast(column, data_type)?)
            })
            .collect()
    }

    fn rows(&self, columns: &[ArrayRef]) -> std::result::Result<Rows, BoxError> {
        Ok(self.converter.convert_columns(columns)?)
    }

    /// Adds the batch's keys (when kept); a null or repeated key is
    /// refused, since it could not say which table row it replaces.
    pub(super) fn remember(&self, batch: &RecordBatch) -> std::result::Result<(), BoxError> {
        let columns = self.columns(batch)?;
        for (name, column) in self.names.iter().zip(&columns) {
            if column.null_count() > 0 {
                return Err(KeyProblem(format!(
                    "key column `{name}` is null in {} of the new rows; filter them out first",
                    column.null_count()
                ))
                .into());
            }
        }
        if !self.kept {
            let rows = self.rows(&columns)?;
            let hashes = rows.iter().map(|row| self.hasher.hash_one(row.as_ref()));
            self.hashes.lock().expect("key hash lock").extend(hashes);
            return Ok(());
        }
        let mut seen = self.seen.write().expect("key set lock");
        match seen.insert_all(&columns, &self.converter)? {
            Some(index) => Err(self.repeated(&columns, index).into()),
            None => Ok(()),
        }
    }

    fn repeated(&self, columns: &[ArrayRef], index: usize) -> KeyProblem {
        let key: Vec<String> = self
            .names
            .iter()
            .zip(columns)
            .map(|(name, column)| {
                let value = array_value_to_string(column, index).unwrap_or_default();
                format!("{name} = {value}")
            })
            .collect();
        KeyProblem(format!(
            "the new rows hold the key ({}) more than once; deduplicate them first (a `dedup` step)",
            key.join(", ")
        ))
    }

    /// The key hashes seen more than once (their memory is given back).
    pub(super) fn repeated_hashes(&self) -> HashSet<u64> {
        let mut hashes = std::mem::take(&mut *self.hashes.lock().expect("key hash lock"));
        hashes.sort_unstable();
        hashes
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect()
    }

    /// The first key of `batch` whose hash is a suspect and that `seen`
    /// already holds (then it is a real repeat, named).
    pub(super) fn first_repeat(
        &self,
        batch: &RecordBatch,
        suspects: &HashSet<u64>,
        seen: &mut HashSet<Box<[u8]>>,
    ) -> std::result::Result<Option<KeyProblem>, BoxError> {
        let columns = self.columns(batch)?;
        let rows = self.rows(&columns)?;
        for (index, row) in rows.iter().enumerate() {
            let suspect = suspects.contains(&self.hasher.hash_one(row.as_ref()));
            if suspect && !seen.insert(row.as_ref().into()) {
                return Ok(Some(self.repeated(&columns, index)));
            }
        }
        Ok(None)
    }

    /// Which rows of a table batch have a key of the new rows.
    pub(super) fn matches(
        &self,
        batch: &RecordBatch,
    ) -> std::result::Result<BooleanArray, BoxError> {
        let columns = self.columns(batch)?;
        let seen = self.seen.read().expect("key set lock");
        seen.contains_all(&columns, &self.converter)
    }
}

/// True where the flag is true; null counts as false.
pub(super) fn is_true(column: &ArrayRef) -> BooleanArray {
    let flags = column.as_boolean();
    match flags.nulls() {
        Some(_) => prep_null_mask_filter(flags),
        None => flags.clone(),
    }
}
