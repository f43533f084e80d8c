//! Which column of a Parquet file does not decode. The decoder's error (a
//! page that does not decompress, a header that does not parse) names no
//! column; after a read failed, each column is read alone to find it.

use std::sync::Arc;

use datafusion::common::DataFusionError;
use datafusion::object_store::{ObjectMeta, ObjectStore};
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use datafusion::parquet::arrow::async_reader::ParquetObjectReader;
use datafusion::parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use futures::StreamExt;

/// Whether the Parquet decoder said `error` (not the store, which a
/// column-by-column re-read would only meet again).
pub(crate) fn is_decoding(error: &DataFusionError) -> bool {
    matches!(error.find_root(), DataFusionError::ParquetError(_))
}

/// The first column of the file that fails to decode on its own; `None`
/// when every column decodes (the failure was elsewhere).
pub(crate) async fn failing_column(
    store: Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
) -> Option<String> {
    let reader = ParquetObjectReader::new(store, meta.location.clone()).with_file_size(meta.size);
    let metadata = ArrowReaderMetadata::load_async(&mut reader.clone(), ArrowReaderOptions::new())
        .await
        .ok()?;
    for (index, field) in metadata.schema().fields().iter().enumerate() {
        let columns =
            ProjectionMask::roots(metadata.metadata().file_metadata().schema_descr(), [index]);
        let mut batches =
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader.clone(), metadata.clone())
                .with_projection(columns)
                .build()
                .ok()?;
        while let Some(batch) = batches.next().await {
            if batch.is_err() {
                return Some(field.name().clone());
            }
        }
    }
    None
}
