use datafusion::prelude::{DataFrame, SessionContext};

use crate::spec::DedupStep;

const RANK: &str = "__medallion_rank";

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Keeps, for every key, the row with the greatest `latest_by` values.
/// Nulls sort last explicitly: DataFusion would put them first under DESC.
///
/// Most keys occur once, and ranking every row with a window function
/// sorts the whole input (the slowest step of silver at scale). So the keys
/// that repeat are found by hash aggregation first: rows of other keys pass
/// through a hash anti join, and only rows of repeated keys are ranked.
/// Keys compare with IS NOT DISTINCT FROM, so null keys group as in
/// PARTITION BY.
pub(crate) async fn keep_latest(
    ctx: &SessionContext,
    step: &DedupStep,
) -> datafusion::error::Result<DataFrame> {
    let source = ctx.table(step.from.as_str()).await?;
    let columns: Vec<String> = source
        .schema()
        .fields()
        .iter()
        .map(|f| format!("s.{}", quote(f.name())))
        .collect();
    let keys: Vec<String> = step.keys.iter().map(|k| quote(k)).collect();
    let same_key = keys
        .iter()
        .map(|k| format!("r.{k} IS NOT DISTINCT FROM s.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
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
        "WITH repeated AS (SELECT {keys} FROM {from} GROUP BY {keys} HAVING COUNT(*) > 1)
         SELECT {columns} FROM {from} s WHERE NOT EXISTS (SELECT 1 FROM repeated r WHERE {same_key})
         UNION ALL
         SELECT {columns} FROM (
             SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {order}) AS {RANK}
             FROM {from} s WHERE EXISTS (SELECT 1 FROM repeated r WHERE {same_key})
         ) s WHERE {RANK} = 1",
        columns = columns.join(", "),
        keys = keys.join(", "),
        from = step.from,
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition: rank every row of a key, keep the first.
    const RANKED: &str = "SELECT k, t, f, v FROM (SELECT *, ROW_NUMBER() OVER \
        (PARTITION BY k ORDER BY t DESC NULLS LAST, f DESC NULLS LAST) AS n FROM rows) WHERE n = 1";

    #[tokio::test]
    async fn the_hash_path_keeps_what_ranking_every_row_keeps() {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE rows (k BIGINT, t BIGINT, f VARCHAR, v VARCHAR) AS VALUES
               (1, 10, 'a', 'only'),
               (2, 10, 'a', 'old'), (2, 20, 'a', 'new'),
               (3, 20, 'a', 'tie lost'), (3, 20, 'b', 'tie won'),
               (4, NULL, 'z', 'null time loses'), (4, 5, 'a', 'a time wins'),
               (NULL, 1, 'a', 'null key old'), (NULL, 2, 'a', 'null key new'),
               (5, 1, 'a', 'single')",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let step = DedupStep {
            from: "rows".into(),
            keys: vec!["k".into()],
            latest_by: vec!["t".into(), "f".into()],
        };
        let sorted = |frame: DataFrame| async move {
            let batches = frame
                .sort_by(vec![datafusion::prelude::col("k")])
                .unwrap()
                .collect()
                .await
                .unwrap();
            arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
        };
        let fast = sorted(keep_latest(&ctx, &step).await.unwrap()).await;
        let ranked = sorted(ctx.sql(RANKED).await.unwrap()).await;
        assert_eq!(fast, ranked);
        for expected in [
            "only",
            "new",
            "tie won",
            "a time wins",
            "null key new",
            "single",
        ] {
            assert!(fast.contains(expected), "{expected} missing:\n{fast}");
        }
        assert_eq!(fast.lines().count(), 6 + 4, "six rows:\n{fast}");
    }
}
