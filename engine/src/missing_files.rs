//! A data file that a table's metadata names but storage lacks is a damaged
//! table, not an empty file: reading it fails with the table and the file
//! named ([`MissingDataFile`]), and with what to do about it.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use medallion_catalog::MissingDataFile;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;

/// Wraps a reader factory so that "not found" from storage becomes
/// [`MissingDataFile`]. DataFusion's caching reader turns the cause of a
/// failed footer read into text, so on a failure the file is looked up once
/// more to tell a missing file from any other failure.
#[derive(Debug)]
pub struct NamingMissingFiles {
    table: String,
    store: Arc<dyn ObjectStore>,
    inner: Arc<dyn ParquetFileReaderFactory>,
    /// Each file's URI as the table's metadata spells it, so errors quote it.
    uris: Arc<HashMap<Path, String>>,
}

impl NamingMissingFiles {
    pub fn new(
        table: &str,
        store: Arc<dyn ObjectStore>,
        inner: Arc<dyn ParquetFileReaderFactory>,
        uris: Arc<HashMap<Path, String>>,
    ) -> Self {
        Self {
            table: table.to_string(),
            store,
            inner,
            uris,
        }
    }
}

impl ParquetFileReaderFactory for NamingMissingFiles {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::common::Result<Box<dyn AsyncFileReader + Send>> {
        let location = &file.object_meta.location;
        let uri = self
            .uris
            .get(location)
            .map_or_else(|| location.to_string(), String::clone);
        let file_ref = FileRef {
            store: self.store.clone(),
            location: file.object_meta.location.clone(),
            table: self.table.clone(),
            uri,
        };
        let inner = self
            .inner
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(NamedReader {
            file: file_ref,
            inner,
        }))
    }
}

/// The file a reader reads, to name it when it is missing.
struct FileRef {
    store: Arc<dyn ObjectStore>,
    location: Path,
    table: String,
    uri: String,
}

impl FileRef {
    async fn name(&self, error: ParquetError) -> ParquetError {
        let missing = match MissingDataFile::in_chain(&self.table, &self.uri, &error) {
            Some(missing) => Some(missing),
            None => self.is_gone().await.then(|| MissingDataFile {
                table: self.table.clone(),
                file: self.uri.clone(),
            }),
        };
        match missing {
            Some(missing) => ParquetError::External(Box::new(missing)),
            None => error,
        }
    }
}

impl FileRef {
    async fn is_gone(&self) -> bool {
        matches!(
            self.store.head(&self.location).await,
            Err(object_store::Error::NotFound { .. })
        )
    }
}

struct NamedReader {
    file: FileRef,
    inner: Box<dyn AsyncFileReader + Send>,
}

impl AsyncFileReader for NamedReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        named(&self.file, self.inner.get_bytes(range))
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        named(&self.file, self.inner.get_byte_ranges(ranges))
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        named(&self.file, self.inner.get_metadata(options))
    }
}

/// The read, its failure on a missing file named.
fn named<'a, T: Send + 'a>(
    file: &'a FileRef,
    read: BoxFuture<'a, parquet::errors::Result<T>>,
) -> BoxFuture<'a, parquet::errors::Result<T>> {
    async move {
        match read.await {
            Ok(value) => Ok(value),
            Err(e) => Err(file.name(e).await),
        }
    }
    .boxed()
}
