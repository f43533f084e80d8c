//! Which raw files a bronze table already holds rows of, read from its
//! `source_file` column: the one record of a load that is committed in
//! the same snapshot as its rows. A listener that is handed an upload
//! again, in a batch grouped differently than the first time (so under
//! another job id), loads only what bronze does not hold yet.

use std::collections::BTreeSet;

use anyhow::Result;
use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use medallion_jobs::SOURCE_FILE;

use crate::engine::Engine;
use crate::query_tables::AsOf;

/// The `uris` that `table` has rows from (none when it does not exist yet).
pub async fn already_loaded(
    engine: &Engine,
    table: &str,
    uris: &[String],
) -> Result<BTreeSet<String>> {
    let ident = medallion_catalog::table_ident(table)?;
    if uris.is_empty() || engine.lakehouse.try_load_table(&ident).await?.is_none() {
        return Ok(BTreeSet::new());
    }
    let listed: Vec<String> = uris
        .iter()
        .map(|uri| format!("'{}'", uri.replace('\'', "''")))
        .collect();
    let sql = format!(
        "SELECT DISTINCT {SOURCE_FILE} FROM {table} WHERE {SOURCE_FILE} IN ({})",
        listed.join(", ")
    );
    let ctx = engine.session_for_query(&sql, &AsOf::default()).await?;
    // At most one row per URI asked about.
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut found = BTreeSet::new();
    for batch in batches {
        let column = cast(batch.column(0), &DataType::Utf8)?;
        let strings = column.as_string::<i32>();
        found.extend(
            (0..strings.len())
                .filter(|i| strings.is_valid(*i))
                .map(|i| strings.value(i).to_string()),
        );
    }
    Ok(found)
}
