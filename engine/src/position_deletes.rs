//! Iceberg position deletes (v2 delete files, v3 deletion vectors), applied
//! where the data files are read:
//! the rows a table's delete files name are left out of each data file's
//! scan as a row selection (DataFusion's `ParquetAccessPlan`), so the scan
//! stays parallel and pruned. Tables that DuckDB or Spark updated with
//! merge-on-read, and medallion's own merge-on-read tables, read the rows
//! they read. The delete files are read as the catalog's writers read
//! them (`medallion_catalog::read_delete_files_of`), through DataFusion's store.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::execution::object_store::ObjectStoreUrl;
use iceberg::scan::FileScanTask;
use medallion_catalog::{DeletedRows, read_delete_files_of};
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetObjectReader};

/// Reads every delete file the `tasks` name, once each (a few at once),
/// keeping the positions of the tasks' own data files.
pub async fn deleted_rows(
    store: &Arc<dyn ObjectStore>,
    store_url: &ObjectStoreUrl,
    tasks: &[FileScanTask],
) -> Result<DeletedRows> {
    let open = |uri: String, size: u64| async move {
        let reader = ParquetObjectReader::new(store.clone(), location(store_url, &uri)?);
        Ok(reader.with_file_size(size))
    };
    read_delete_files_of(tasks, open).await.map_err(|(uri, e)| {
        anyhow::anyhow!(e).context(format!("cannot read the delete file {uri}"))
    })
}

/// The path of `uri` within the store at `store_url`, parsed as the data
/// files' URIs are (`DataFilesTable::try_new`).
pub fn location(store_url: &ObjectStoreUrl, uri: &str) -> Result<Path> {
    let url = ListingTableUrl::parse(uri).with_context(|| format!("bad URI {uri}"))?;
    if url.object_store() != *store_url {
        anyhow::bail!("{uri} is not in {store_url}, where the table's data files are");
    }
    Ok(url.prefix().clone())
}

/// The access plan that reads every row of the data file at `location`
/// but the `deleted` ones, from its row groups' sizes (its footer).
pub async fn access_plan(
    store: &Arc<dyn ObjectStore>,
    location: &Path,
    size: u64,
    deleted: &BTreeSet<u64>,
) -> Result<ParquetAccessPlan> {
    let mut reader = ParquetObjectReader::new(store.clone(), location.clone()).with_file_size(size);
    let metadata = reader.get_metadata(None).await?;
    let row_counts = metadata.row_groups().iter().map(|g| g.num_rows() as u64);
    Ok(plan_without(row_counts, deleted))
}

/// Per row group of these sizes: all rows, none, or a selection that
/// leaves out the deleted positions (counted from the file's first row).
fn plan_without(
    row_counts: impl Iterator<Item = u64>,
    deleted: &BTreeSet<u64>,
) -> ParquetAccessPlan {
    let mut groups = Vec::new();
    let mut start = 0;
    for rows in row_counts {
        let gone: Vec<u64> = deleted
            .range(start..start + rows)
            .map(|p| p - start)
            .collect();
        groups.push(match gone.len() as u64 {
            0 => RowGroupAccess::Scan,
            n if n == rows => RowGroupAccess::Skip,
            _ => RowGroupAccess::Selection(selection(rows, &gone)),
        });
        start += rows;
    }
    ParquetAccessPlan::new(groups)
}

/// Selects `rows` rows but the `gone` positions (sorted, within the group).
fn selection(rows: u64, gone: &[u64]) -> RowSelection {
    let mut selectors = Vec::new();
    let mut at = 0;
    for &position in gone {
        if position > at {
            selectors.push(RowSelector::select((position - at) as usize));
        }
        selectors.push(RowSelector::skip(1));
        at = position + 1;
    }
    if rows > at {
        selectors.push(RowSelector::select((rows - at) as usize));
    }
    RowSelection::from(selectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_positions_become_skips_in_their_row_groups() {
        let deleted: BTreeSet<u64> = [0, 3, 4, 10, 11, 12, 13, 14].into();
        let plan = plan_without([10, 5, 5].into_iter(), &deleted);
        let groups = plan.inner();
        let expected = RowSelection::from(vec![
            RowSelector::skip(1),
            RowSelector::select(2),
            RowSelector::skip(2),
            RowSelector::select(5),
        ]);
        assert_eq!(groups[0], RowGroupAccess::Selection(expected));
        assert_eq!(
            groups[1],
            RowGroupAccess::Skip,
            "rows 10 to 14 are all gone"
        );
        assert_eq!(groups[2], RowGroupAccess::Scan);
    }
}
