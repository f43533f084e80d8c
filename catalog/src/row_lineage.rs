//! v3 row lineage across manifest rewrites. A row's `_row_id` is its data
//! file's `first_row_id` plus its position; a file added without one
//! inherits it from its manifest (the manifest's `first_row_id` plus the
//! rows of the files before it that inherit too). When a commit carries a
//! file into a new manifest, as existing or deleted, the spec wants the
//! inherited value written out, or the file's rows would get new ids.
//! iceberg-rust 0.10 reads manifests without this inheritance, so it is
//! done here.

use iceberg::spec::{DataContentType, DataFile, DataFileBuilder, ManifestEntryRef};

/// Each entry's `first_row_id`, its own or inherited, in manifest order;
/// `None` for all when the manifest has none (v2, or delete files).
pub(crate) fn first_row_ids(
    manifest_first_row_id: Option<u64>,
    entries: &[ManifestEntryRef],
) -> Vec<Option<i64>> {
    let Some(first) = manifest_first_row_id else {
        return vec![None; entries.len()];
    };
    let mut next = first as i64;
    entries
        .iter()
        .map(|entry| {
            let file = entry.data_file();
            if file.content_type() != DataContentType::Data {
                return None;
            }
            Some(file.first_row_id().unwrap_or_else(|| {
                let id = next;
                next += file.record_count() as i64;
                id
            }))
        })
        .collect()
}

/// `file` (of the partition spec `spec_id`) with its `first_row_id`
/// written out; the same file otherwise.
pub(crate) fn with_first_row_id(
    file: &DataFile,
    spec_id: i32,
    first_row_id: Option<i64>,
) -> DataFile {
    if first_row_id.is_none() || file.first_row_id() == first_row_id {
        return file.clone();
    }
    let mut builder = DataFileBuilder::default();
    builder
        .content(file.content_type())
        .file_path(file.file_path().to_string())
        .file_format(file.file_format())
        .partition(file.partition().clone())
        .record_count(file.record_count())
        .file_size_in_bytes(file.file_size_in_bytes())
        .column_sizes(file.column_sizes().clone())
        .value_counts(file.value_counts().clone())
        .null_value_counts(file.null_value_counts().clone())
        .nan_value_counts(file.nan_value_counts().clone())
        .lower_bounds(file.lower_bounds().clone())
        .upper_bounds(file.upper_bounds().clone())
        .key_metadata(file.key_metadata().map(<[u8]>::to_vec))
        .split_offsets(file.split_offsets().map(<[i64]>::to_vec))
        .equality_ids(file.equality_ids())
        .first_row_id(first_row_id)
        .partition_spec_id(spec_id)
        .referenced_data_file(file.referenced_data_file())
        .content_offset(file.content_offset())
        .content_size_in_bytes(file.content_size_in_bytes());
    if let Some(sort_order_id) = file.sort_order_id() {
        builder.sort_order_id(sort_order_id);
    }
    builder
        .build()
        .expect("every field of a file that was valid")
}
