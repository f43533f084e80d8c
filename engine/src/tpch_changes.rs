//! A second load of TPC-H orders (`medallion generate --changes 0.01`): a
//! share of the generated orders changed, picked evenly (every Nth order,
//! so the changes touch every data file of a table loaded from the first
//! load), and as many new orders. What a daily incremental load looks like
//! to silver's merge, and what `medallion-bench --loads 2` measures.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use tpchgen::decimal::TPCHDecimal;
use tpchgen::generators::{Order, OrderGenerator};

use crate::tpch::{order_batches, orders_schema, write_parquet};

/// The folder of the second load, beside `tpch/orders/`.
pub const CHANGES_DIR: &str = "tpch/orders_changes";

/// Writes `tpch/orders_changes/part-1.parquet` under `raw_dir`: `share` of
/// the orders at `scale` with a new price and comment, plus as many new
/// orders. The rows written.
pub async fn generate_changes(raw_dir: &Path, scale: f64, share: f64) -> Result<u64> {
    ensure!(
        share > 0.0 && share <= 1.0,
        "--changes is a share of the orders, above 0 and at most 1 (0.01 is 1%)"
    );
    let every = (1.0 / share).round() as usize;
    let dir = raw_dir.join(CHANGES_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("part-1.parquet");
    let rows = 2 * (OrderGenerator::SCALE_BASE as f64 * scale) as u64 / every as u64;
    tokio::task::spawn_blocking(move || {
        write_parquet(
            &path,
            orders_schema(),
            order_batches(changed_orders(scale, every)),
        )
    })
    .await
    .context("the generator thread panicked")??;
    Ok(rows)
}

/// Every `every`th order changed, each followed by a new order made from it
/// under a key no generated order has.
fn changed_orders(scale: f64, every: usize) -> impl Iterator<Item = Order<'static>> {
    // TPC-H keys are sparse, below 4 keys per order: ten times the count is free.
    let first_new_key = 10 * (OrderGenerator::SCALE_BASE as f64 * scale).ceil() as i64 + 1;
    OrderGenerator::new(scale, 1, 1)
        .into_iter()
        .step_by(every)
        .enumerate()
        .flat_map(move |(index, order)| {
            let new = Order {
                o_orderkey: first_new_key + index as i64,
                ..order.clone()
            };
            let changed = Order {
                o_totalprice: TPCHDecimal(order.o_totalprice.0 + 100),
                o_comment: "changed by the second load",
                ..order
            };
            [changed, new]
        })
}
