//! The dedup step: keep the latest row per key, ranking only the keys that
//! repeat.

use datafusion::common::{Column, JoinType};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, Operator, SortExpr, binary_expr};
use datafusion::prelude::{DataFrame, Expr, SessionContext, ident, lit};

use crate::spec::DedupStep;

const RANK: &str = "__medallion_rank";
const REPEATED: &str = "__medallion_repeated";
const SOURCE: &str = "__medallion_source";

/// Keeps, for every key, the row with the greatest `latest_by` values.
/// Nulls sort last explicitly: DataFusion would put them first under DESC.
///
/// Most keys occur once, and ranking every row with a window function
/// sorts the whole input (the slowest step of silver at scale). So the keys
/// that repeat are found first, by a hash aggregation over the key columns
/// alone, and held in memory (keys only, never rows). With none, which is
/// every first load and most incremental ones, the input passes unchanged
/// and keeps its statistics, so later joins are planned on real sizes.
/// Otherwise rows of other keys pass a hash anti join built on the repeated
/// keys, and only rows of repeated keys are ranked. Keys compare with IS NOT
/// DISTINCT FROM, so null keys group as in PARTITION BY.
pub async fn keep_latest(
    ctx: &SessionContext,
    step: &DedupStep,
) -> datafusion::error::Result<DataFrame> {
    let source = ctx.table(step.from.as_str()).await?;
    let columns: Vec<Expr> = source
        .schema()
        .fields()
        .iter()
        .map(|f| ident(f.name()))
        .collect();
    let keys: Vec<Expr> = step.keys.iter().map(ident).collect();
    let repeated_keys = source
        .clone()
        .aggregate(keys.clone(), vec![count(lit(1)).alias(RANK)])?
        .filter(ident(RANK).gt(lit(1)))?
        .select(keys.clone())?
        .collect()
        .await?;
    if repeated_keys.iter().all(|batch| batch.num_rows() == 0) {
        return Ok(source);
    }
    let repeated = ctx.read_batches(repeated_keys)?.alias(REPEATED)?;
    let source = source.alias(SOURCE)?;
    let same_key: Vec<Expr> = step
        .keys
        .iter()
        .map(|k| {
            binary_expr(
                Expr::Column(Column::new(Some(REPEATED), k)),
                Operator::IsNotDistinctFrom,
                Expr::Column(Column::new(Some(SOURCE), k)),
            )
        })
        .collect();
    let once = repeated
        .clone()
        .join_on(source.clone(), JoinType::RightAnti, same_key.clone())?
        .select(columns.clone())?;
    let latest_first: Vec<SortExpr> = step
        .latest_by
        .iter()
        .map(|c| SortExpr::new(ident(c), false, false))
        .collect();
    let rank = row_number()
        .partition_by(keys)
        .order_by(latest_first)
        .build()?
        .alias(RANK);
    let latest_of_repeated = repeated
        .join_on(source, JoinType::RightSemi, same_key)?
        .window(vec![rank])?
        .filter(ident(RANK).eq(lit(1u64)))?
        .select(columns)?;
    once.union(latest_of_repeated)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition: rank every row of a key, keep the first.
    const RANKED: &str = "SELECT k, t, f, v FROM (SELECT *, ROW_NUMBER() OVER \
        (PARTITION BY k ORDER BY t DESC NULLS LAST, f DESC NULLS LAST) AS n FROM rows) WHERE n = 1";

    /// A session with a table `rows` of these columns and values.
    async fn session_with_rows(columns_and_values: &str) -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql(&format!("CREATE TABLE rows {columns_and_values}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        ctx
    }

    /// The latest row of `rows` per `k` by `t`, then `f`.
    fn latest_per_k() -> DedupStep {
        DedupStep {
            from: "rows".into(),
            keys: vec!["k".into()],
            latest_by: vec!["t".into(), "f".into()],
        }
    }

    #[tokio::test]
    async fn rows_without_a_repeated_key_pass_without_a_join() {
        let ctx =
            session_with_rows("(k BIGINT, t BIGINT, f VARCHAR) AS VALUES (1, 1, 'a'), (2, 1, 'a')")
                .await;
        let frame = keep_latest(&ctx, &latest_per_k()).await.unwrap();
        let plan = frame.logical_plan().display_indent().to_string();
        assert!(!plan.contains("Join"), "{plan}");
        assert_eq!(frame.count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn the_hash_path_keeps_what_ranking_every_row_keeps() {
        let ctx = session_with_rows(
            "(k BIGINT, t BIGINT, f VARCHAR, v VARCHAR) AS VALUES
               (1, 10, 'a', 'only'),
               (2, 10, 'a', 'old'), (2, 20, 'a', 'new'),
               (3, 20, 'a', 'tie lost'), (3, 20, 'b', 'tie won'),
               (4, NULL, 'z', 'null time loses'), (4, 5, 'a', 'a time wins'),
               (NULL, 1, 'a', 'null key old'), (NULL, 2, 'a', 'null key new'),
               (5, 1, 'a', 'single')",
        )
        .await;
        let step = latest_per_k();
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
