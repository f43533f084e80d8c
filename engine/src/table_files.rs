//! What a scan of an Iceberg table's data files knows beyond DataFusion's
//! Parquet scan, in one value: the scan reads through it here, and a
//! distributed plan carries it to the workers, who read the same way.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use object_store::path::Path;

use crate::field_ids::FieldIds;
use crate::missing_files::NamingMissingFiles;

/// What a scan of a table's data files knows beyond DataFusion's Parquet
/// scan: the table (named in errors), each file's URI as the metadata
/// spells it, and the field ids by which columns are read.
#[derive(Debug)]
pub struct TableFiles {
    pub table: String,
    pub uris: Arc<HashMap<Path, String>>,
    pub field_ids: Arc<FieldIds>,
}

impl TableFiles {
    /// `source` reading these files through the runtime's store and footer
    /// cache, a file that is gone named as missing. The field ids are the
    /// scan's expression adapter, set on its config.
    pub fn reading(
        &self,
        source: ParquetSource,
        runtime: &Arc<RuntimeEnv>,
        store: &ObjectStoreUrl,
    ) -> datafusion::common::Result<ParquetSource> {
        let store = runtime.object_store(store)?;
        let cached = CachedParquetFileReaderFactory::new(
            store.clone(),
            runtime.cache_manager.get_file_metadata_cache(),
        );
        let naming =
            NamingMissingFiles::new(&self.table, store, Arc::new(cached), self.uris.clone());
        Ok(source.with_parquet_file_reader_factory(Arc::new(naming)))
    }
}
