//! Iceberg v2 equality deletes, applied where the data files are read: a
//! row of a data file is deleted when its equality columns equal those of
//! a row of one of the equality delete files that apply to it (Flink leaves
//! them when it upserts). Iceberg compares nulls as equal here.
//!
//! Which delete files apply to which data file is settled at planning
//! (partition and sequence number, by iceberg-rust's scan). Data files that
//! share one set of delete files are scanned together and anti-joined
//! against the rows of those delete files: the delete rows are the hash
//! table (one per set, as big as the deletes), and the data streams past
//! it on every core. Files without equality deletes are scanned as before.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::common::{JoinType, NullEquality};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use iceberg::scan::FileScanTask;
use iceberg::spec::DataContentType;

/// One equality delete file: its URI, size and the field ids it compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EqualityDeleteFile {
    pub uri: String,
    pub size: u64,
    pub field_ids: Vec<i32>,
}

/// Data files (by their index among the table's files) to which the same
/// equality delete files apply.
#[derive(Debug)]
pub struct DeleteGroup {
    pub deletes: Vec<EqualityDeleteFile>,
    pub files: Vec<usize>,
}

impl DeleteGroup {
    /// The group's delete files by the field ids they compare: one
    /// anti-join each.
    pub fn by_field_ids(&self) -> BTreeMap<&[i32], Vec<&EqualityDeleteFile>> {
        let mut sets: BTreeMap<&[i32], Vec<&EqualityDeleteFile>> = BTreeMap::new();
        for delete in &self.deletes {
            sets.entry(&delete.field_ids).or_default().push(delete);
        }
        sets
    }
}

/// The table's files split into those without equality deletes and groups
/// that share theirs.
#[derive(Debug, Default)]
pub struct FileGroups {
    pub plain: Vec<usize>,
    pub with_deletes: Vec<DeleteGroup>,
}

impl FileGroups {
    pub fn of(tasks: &[FileScanTask]) -> Self {
        let mut groups = Self::default();
        let mut by_deletes: BTreeMap<Vec<EqualityDeleteFile>, Vec<usize>> = BTreeMap::new();
        for (index, task) in tasks.iter().enumerate() {
            let deletes = equality_deletes_of(task);
            if deletes.is_empty() {
                groups.plain.push(index);
            } else {
                by_deletes.entry(deletes).or_default().push(index);
            }
        }
        groups.with_deletes = by_deletes
            .into_iter()
            .map(|(deletes, files)| DeleteGroup { deletes, files })
            .collect();
        groups
    }
}

fn equality_deletes_of(task: &FileScanTask) -> Vec<EqualityDeleteFile> {
    let mut deletes: Vec<EqualityDeleteFile> = task
        .deletes
        .iter()
        .filter(|d| d.file_type == DataContentType::EqualityDeletes)
        .map(|d| EqualityDeleteFile {
            uri: d.file_path.clone(),
            size: d.file_size_in_bytes,
            field_ids: d.equality_ids.clone().unwrap_or_default(),
        })
        .collect();
    deletes.sort();
    deletes
}

/// The rows of `data` (whose columns are `read`, indices of the table's
/// columns) that no row of `deletes` (the table's `keys` columns, in that
/// order) equals on the keys.
pub fn anti_join(
    deletes: Arc<dyn ExecutionPlan>,
    data: Arc<dyn ExecutionPlan>,
    keys: &[usize],
    read: &[usize],
) -> Result<Arc<dyn ExecutionPlan>> {
    let data_schema = data.schema();
    let on = keys
        .iter()
        .enumerate()
        .map(|(in_deletes, key)| {
            let in_data = read
                .iter()
                .position(|c| c == key)
                .context("an equality column the scan does not read")?;
            let name = data_schema.field(in_data).name();
            let left: Arc<dyn PhysicalExpr> = Arc::new(Column::new(name, in_deletes));
            let right: Arc<dyn PhysicalExpr> = Arc::new(Column::new(name, in_data));
            Ok((left, right))
        })
        .collect::<Result<Vec<_>>>()?;
    // The deletes are the build side, collected once; the data is probed
    // partition by partition, and only its unmatched rows come out.
    let join = HashJoinExec::try_new(
        deletes,
        data,
        on,
        None,
        &JoinType::RightAnti,
        None,
        PartitionMode::CollectLeft,
        NullEquality::NullEqualsNull,
        false,
    )?;
    Ok(Arc::new(join))
}

/// The first `width` columns of `plan`: the columns a query asked for,
/// without the keys read only to join on.
pub fn first_columns(plan: Arc<dyn ExecutionPlan>, width: usize) -> Result<Arc<dyn ExecutionPlan>> {
    if plan.schema().fields().len() == width {
        return Ok(plan);
    }
    let schema = plan.schema();
    let columns = schema
        .fields()
        .iter()
        .take(width)
        .enumerate()
        .map(|(i, f)| {
            let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(f.name(), i));
            (column, f.name().clone())
        });
    Ok(Arc::new(ProjectionExec::try_new(columns, plan)?))
}

#[cfg(test)]
mod tests {
    use iceberg::scan::FileScanTaskDeleteFile;
    use iceberg::spec::{DataFileFormat, Schema};

    use super::*;

    fn task(path: &str, deletes: &[(&str, &[i32])]) -> FileScanTask {
        let deletes = deletes
            .iter()
            .map(|(uri, ids)| FileScanTaskDeleteFile {
                file_path: uri.to_string(),
                file_size_in_bytes: 10,
                file_type: DataContentType::EqualityDeletes,
                partition_spec_id: 0,
                equality_ids: Some(ids.to_vec()),
            })
            .collect();
        FileScanTask::builder()
            .with_file_size_in_bytes(100)
            .with_start(0)
            .with_length(100)
            .with_data_file_path(path.to_string())
            .with_data_file_format(DataFileFormat::Parquet)
            .with_schema(Arc::new(Schema::builder().build().unwrap()))
            .with_project_field_ids(vec![])
            .with_deletes(deletes)
            .with_case_sensitive(true)
            .build()
    }

    #[test]
    fn files_that_share_their_equality_deletes_are_scanned_together() {
        let tasks = [
            task("a", &[("d1", &[1]), ("d2", &[2])]),
            task("b", &[]),
            task("c", &[("d2", &[2]), ("d1", &[1])]),
            task("d", &[("d2", &[2])]),
        ];
        let groups = FileGroups::of(&tasks);
        assert_eq!(groups.plain, [1]);
        let files: Vec<&[usize]> = groups.with_deletes.iter().map(|g| &g.files[..]).collect();
        assert_eq!(files, [&[0, 2][..], &[3][..]]);
        let sets = groups.with_deletes[0].by_field_ids();
        assert_eq!(
            sets.keys().copied().collect::<Vec<_>>(),
            [&[1][..], &[2][..]]
        );
    }
}
