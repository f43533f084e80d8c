//! How medallion's plan nodes travel to a worker. An [`IcebergScanExec`]:
//! its Parquet scan as DataFusion's plan encoding writes it, and beside it
//! what that encoding drops (the table, its files' URIs, the field ids, and
//! the rows each file with deletes leaves out), from which the worker
//! rebuilds the same scan. A [`DataFileWriteExec`]: where its files go
//! (its [`medallion_catalog::FileTarget`]); the worker writes them through
//! its own storage.
//!
//! On the wire, after a byte naming the node: for a scan, the length of the
//! JSON part (4 bytes, little-endian), the JSON part, then the encoded
//! Parquet scan; for a write, the target as JSON.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::physical_plan::{DefaultPhysicalExtensionCodec, PhysicalExtensionCodec};
use iceberg::io::FileIO;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use serde::{Deserialize, Serialize};

use super::iceberg_scan::IcebergScanExec;
use super::write::DataFileWriteExec;
use crate::field_ids::FieldIds;
use crate::table_files::TableFiles;

/// Encodes and decodes medallion's plan nodes, [`IcebergScanExec`] and
/// [`DataFileWriteExec`]; registered with the coordinator's session and
/// with every worker's. `file_io` is the storage a decoded write writes to.
#[derive(Debug)]
pub struct IcebergCodec {
    pub file_io: FileIO,
}

/// The first byte of an encoded node: which node it is.
const SCAN: u8 = b'S';
const WRITE: u8 = b'W';

impl PhysicalExtensionCodec for IcebergCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match (buf.split_first(), inputs) {
            (Some((&SCAN, scan)), []) => decode_scan(scan, ctx),
            (Some((&WRITE, target)), [input]) => {
                let target = serde_json::from_slice(target).map_err(external)?;
                let write =
                    DataFileWriteExec::new(input.clone(), Arc::new(target), self.file_io.clone());
                Ok(Arc::new(write))
            }
            _ => internal_err!(
                "not an encoded Iceberg scan or write with {} inputs ({} bytes)",
                inputs.len(),
                buf.len()
            ),
        }
    }

    fn try_encode(&self, node: Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>) -> Result<()> {
        if let Some(scan) = node.as_any().downcast_ref::<IcebergScanExec>() {
            buf.push(SCAN);
            return encode_scan(scan, buf);
        }
        if let Some(write) = node.as_any().downcast_ref::<DataFileWriteExec>() {
            buf.push(WRITE);
            return serde_json::to_writer(buf, write.target()).map_err(external);
        }
        internal_err!(
            "medallion's plan encoding knows Iceberg scans and writes, not {}",
            node.name()
        )
    }
}

fn decode_scan(buf: &[u8], ctx: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
    let (wire, scan) = split(buf)?;
    let wire: ScanOnTheWire = serde_json::from_slice(wire).map_err(external)?;
    let scan = physical_plan_from_bytes_with_extension_codec(
        scan,
        ctx,
        &DefaultPhysicalExtensionCodec {},
    )?;
    let Some((config, _)) = scan
        .as_any()
        .downcast_ref::<DataSourceExec>()
        .and_then(|scan| scan.downcast_to_file_source::<ParquetSource>())
    else {
        return internal_err!(
            "an encoded Iceberg scan holds a Parquet scan, not {}",
            scan.name()
        );
    };
    let config = wire.restore_deletes(config.clone())?;
    let files = Arc::new(wire.table_files()?);
    Ok(Arc::new(IcebergScanExec::decoded(config, files, ctx)?))
}

fn encode_scan(scan: &IcebergScanExec, buf: &mut Vec<u8>) -> Result<()> {
    let wire = serde_json::to_vec(&ScanOnTheWire::of(scan)).map_err(external)?;
    let parquet = physical_plan_to_bytes_with_extension_codec(
        scan.parquet_scan(),
        &DefaultPhysicalExtensionCodec {},
    )?;
    let length = u32::try_from(wire.len()).map_err(|_| {
        DataFusionError::Internal("an Iceberg scan over 4 GiB of file names".into())
    })?;
    buf.extend_from_slice(&length.to_le_bytes());
    buf.extend_from_slice(&wire);
    buf.extend_from_slice(&parquet);
    Ok(())
}

/// The JSON part and the encoded scan.
fn split(buf: &[u8]) -> Result<(&[u8], &[u8])> {
    let cut = buf
        .get(..4)
        .map(|length| u32::from_le_bytes(length.try_into().expect("4 bytes")) as usize + 4)
        .filter(|cut| *cut <= buf.len());
    match cut {
        Some(cut) => Ok((&buf[4..cut], &buf[cut..])),
        None => internal_err!("an encoded Iceberg scan is cut short ({} bytes)", buf.len()),
    }
}

fn external(e: serde_json::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// What DataFusion's encoding of the Parquet scan leaves out.
#[derive(Serialize, Deserialize)]
struct ScanOnTheWire {
    table: String,
    /// Each file's path in its store, with its URI as the metadata spells it.
    uris: Vec<(String, String)>,
    field_ids: Arc<FieldIds>,
    /// The files with deleted rows, by path, and what of each row group to read.
    deletes: BTreeMap<String, Vec<RowGroupRead>>,
}

/// What a scan reads of one row group: nothing, all of it, or these runs
/// of rows (`true`: skip).
#[derive(Serialize, Deserialize)]
enum RowGroupRead {
    Skip,
    Scan,
    Select(Vec<(bool, usize)>),
}

impl ScanOnTheWire {
    fn of(scan: &IcebergScanExec) -> Self {
        let files = scan.files();
        let deletes = scan
            .config()
            .file_groups
            .iter()
            .flat_map(FileGroup::iter)
            .filter_map(|file| {
                let plan = file
                    .extensions
                    .as_ref()?
                    .downcast_ref::<ParquetAccessPlan>()?;
                Some((file.object_meta.location.to_string(), row_group_reads(plan)))
            })
            .collect();
        Self {
            table: files.table.clone(),
            uris: files
                .uris
                .iter()
                .map(|(path, uri)| (path.to_string(), uri.clone()))
                .collect(),
            field_ids: files.field_ids.clone(),
            deletes,
        }
    }

    fn table_files(self) -> Result<TableFiles> {
        let mut uris = HashMap::with_capacity(self.uris.len());
        for (path, uri) in self.uris {
            let path = Path::parse(&path).map_err(|e| DataFusionError::External(Box::new(e)))?;
            uris.insert(path, uri);
        }
        Ok(TableFiles {
            table: self.table,
            uris: Arc::new(uris),
            field_ids: self.field_ids,
        })
    }

    /// `config` with each file's deleted rows left out again.
    fn restore_deletes(&self, mut config: FileScanConfig) -> Result<FileScanConfig> {
        let mut restored = HashSet::new();
        config.file_groups = std::mem::take(&mut config.file_groups)
            .into_iter()
            .map(|group| {
                let files = group.into_inner().into_iter().map(|mut file| {
                    let path = file.object_meta.location.as_ref();
                    if let Some((path, reads)) = self.deletes.get_key_value(path) {
                        file.extensions = Some(Arc::new(access_plan(reads)));
                        restored.insert(path);
                    }
                    file
                });
                FileGroup::new(files.collect())
            })
            .collect();
        // A path spelled otherwise after the journey would read deleted
        // rows back: refuse rather than return them.
        if restored.len() < self.deletes.len() {
            return internal_err!(
                "an encoded scan of {} names deletes of files it does not read",
                self.table
            );
        }
        Ok(config)
    }
}

fn row_group_reads(plan: &ParquetAccessPlan) -> Vec<RowGroupRead> {
    plan.inner()
        .iter()
        .map(|access| match access {
            RowGroupAccess::Skip => RowGroupRead::Skip,
            RowGroupAccess::Scan => RowGroupRead::Scan,
            RowGroupAccess::Selection(selection) => RowGroupRead::Select(
                selection
                    .iter()
                    .map(|run| (run.skip, run.row_count))
                    .collect(),
            ),
        })
        .collect()
}

fn access_plan(reads: &[RowGroupRead]) -> ParquetAccessPlan {
    ParquetAccessPlan::new(
        reads
            .iter()
            .map(|read| match read {
                RowGroupRead::Skip => RowGroupAccess::Skip,
                RowGroupRead::Scan => RowGroupAccess::Scan,
                RowGroupRead::Select(runs) => RowGroupAccess::Selection(RowSelection::from(
                    runs.iter()
                        .map(|&(skip, rows)| {
                            if skip {
                                RowSelector::skip(rows)
                            } else {
                                RowSelector::select(rows)
                            }
                        })
                        .collect::<Vec<_>>(),
                )),
            })
            .collect(),
    )
}
