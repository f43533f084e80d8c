//! The set of a merge's new keys, which the key scan looks every row of
//! the table up in (15 million lookups for silver.orders at scale 10). A
//! single 64-bit integer key, the usual id, is kept as the number itself:
//! no row encoding and no byte comparisons, which were a third of a
//! merge-on-read merge's time. Any other key is kept as its bytes in
//! Arrow's row format, so that every key type hashes and compares alike.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::RowConverter;
use foldhash::fast::RandomState;

use crate::error::BoxError;

pub(super) enum KeySet {
    Int64(HashSet<i64, RandomState>),
    Rows(HashSet<Box<[u8]>, RandomState>),
}

impl KeySet {
    /// An empty set for keys of these column types.
    pub(super) fn for_types(types: &[DataType]) -> Self {
        match types {
            [DataType::Int64] => Self::Int64(HashSet::default()),
            _ => Self::Rows(HashSet::default()),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Self::Int64(set) => set.is_empty(),
            Self::Rows(set) => set.is_empty(),
        }
    }

    /// Adds the keys of `columns` (none of them null); the index of the
    /// first that was already there.
    pub(super) fn insert_all(
        &mut self,
        columns: &[ArrayRef],
        converter: &RowConverter,
    ) -> Result<Option<usize>, BoxError> {
        Ok(match self {
            Self::Int64(set) => {
                let keys = columns[0].as_primitive::<Int64Type>().values();
                keys.iter().position(|key| !set.insert(*key))
            }
            Self::Rows(set) => {
                let rows = converter.convert_columns(columns)?;
                rows.iter().position(|row| !set.insert(row.as_ref().into()))
            }
        })
    }

    /// Which rows of `columns` hold a key of the set (no entry is null; a
    /// null key is never in the set).
    pub(super) fn contains_all(
        &self,
        columns: &[ArrayRef],
        converter: &RowConverter,
    ) -> Result<BooleanArray, BoxError> {
        Ok(match self {
            Self::Int64(set) => {
                let keys = columns[0].as_primitive::<Int64Type>();
                let values = keys.values();
                // 64 lookups per word of the bitmap, no per-row Option.
                let found = BooleanBuffer::collect_bool(values.len(), |i| set.contains(&values[i]));
                match keys.nulls() {
                    None => BooleanArray::new(found, None),
                    Some(valid) => BooleanArray::new(&found & valid.inner(), None),
                }
            }
            Self::Rows(set) => {
                let rows = converter.convert_columns(columns)?;
                let found = BooleanBuffer::collect_bool(rows.num_rows(), |i| {
                    set.contains(rows.row(i).as_ref())
                });
                BooleanArray::new(found, None)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::row::SortField;

    use super::*;

    fn converter(types: &[DataType]) -> RowConverter {
        RowConverter::new(types.iter().cloned().map(SortField::new).collect()).unwrap()
    }

    #[test]
    fn an_integer_key_is_found_by_value_and_a_null_table_key_matches_nothing() {
        let types = [DataType::Int64];
        let mut set = KeySet::for_types(&types);
        assert!(matches!(set, KeySet::Int64(_)));
        let new: ArrayRef = Arc::new(Int64Array::from(vec![0, 7, 9]));
        assert_eq!(set.insert_all(&[new], &converter(&types)).unwrap(), None);
        // A null's slot holds 0 in the buffer, which is a key of the set.
        let table: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None, Some(8), Some(0)]));
        let found = set.contains_all(&[table], &converter(&types)).unwrap();
        assert_eq!(found, BooleanArray::from(vec![true, false, false, true]));
    }

    #[test]
    fn a_repeated_key_is_named_by_its_index_whatever_the_key_types() {
        for types in [vec![DataType::Int64], vec![DataType::Int64, DataType::Utf8]] {
            let mut set = KeySet::for_types(&types);
            let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![1, 2, 1]))];
            if types.len() == 2 {
                columns.push(Arc::new(StringArray::from(vec!["a", "b", "a"])));
            }
            let repeated = set.insert_all(&columns, &converter(&types)).unwrap();
            assert_eq!(repeated, Some(2), "{types:?}");
        }
    }
}
