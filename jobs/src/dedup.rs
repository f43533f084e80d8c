use datafusion::prelude::{DataFrame, SessionContext};

use crate::spec::DedupStep;

const RANK: &str = "__medallion_rank";

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Keeps, for every key, the row with the greatest `latest_by` values.
/// Nulls sort last explicitly: DataFusion would put them first under DESC.
pub(crate) async fn keep_latest(
    ctx: &SessionContext,
    step: &DedupStep,
) -> datafusion::error::Result<DataFrame> {
    let source = ctx.table(step.from.as_str()).await?;
    let columns: Vec<String> = source
        .schema()
        .fields()
        .iter()
        .map(|f| quote(f.name()))
        .collect();
    let keys: Vec<String> = step.keys.iter().map(|k| quote(k)).collect();
    let order: Vec<String> = step
        .latest_by
        .iter()
        .map(|c| format!("{} DESC NULLS LAST", quote(c)))
        .collect();
    let order = if order.is_empty() {
        "1".to_string()
    } else {
        order.join(", ")
    };
    ctx.sql(&format!(
        "SELECT {columns} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {order}) AS {RANK} FROM {from}) WHERE {RANK} = 1",
        columns = columns.join(", "),
        keys = keys.join(", "),
        from = step.from,
    ))
    .await
}
