//! `sql`: queries over committed tables, as of now or of a snapshot. Its
//! output is the rows themselves in the format `--format` names, streamed
//! to stdout as they come (CSV and JSON lines), so a large result is never
//! held as one report.

use anyhow::{Context, Result};
use arrow::util::pretty::pretty_format_batches;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use medallion_jobs::{Effect, NotAQuery, QueryError, plan_query};

use crate::engine::{AsOf, Engine};

#[derive(Debug, Args)]
pub struct SqlArgs {
    query: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Read a table at a snapshot (time travel), e.g.
    /// --snapshot bronze.orders=4680882902660432718; repeatable.
    #[arg(long = "snapshot", value_name = "TABLE=SNAPSHOT_ID", value_parser = parse_table_snapshot)]
    snapshots: Vec<(String, i64)>,
    /// Read every table as it was at this moment (RFC 3339, e.g.
    /// 2026-11-29T12:00:00Z), unless --snapshot names it.
    #[arg(long, value_name = "TIMESTAMP")]
    as_of: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// Plans the query against the tables it names and prints its rows.
pub async fn query(engine: &Engine, args: SqlArgs) -> Result<()> {
    let as_of = AsOf {
        snapshots: args.snapshots.into_iter().collect(),
        timestamp_ms: args.as_of.map(|t| t.timestamp_millis()),
    };
    let ctx = engine.session_for_query(&args.query, &as_of).await?;
    let frame = plan_query(&ctx, &args.query).await.map_err(|e| match e {
        QueryError::NotAQuery(refused) => anyhow::anyhow!(refused_statement(refused)),
        QueryError::Plan(e) => anyhow::Error::new(e).context("the query does not plan"),
    })?;
    print_frame(frame, args.format).await
}

/// `medallion sql` only reads; the error names what does the rest.
fn refused_statement(refused: NotAQuery) -> String {
    let instead = match refused.effect {
        Effect::Drop => "there is no drop command yet",
        Effect::Delete => "to delete rows, use `medallion delete <table> --where <predicate>`",
        Effect::Update => {
            "to change rows, write a job spec with `mode: merge` and run it with `medallion run`"
        }
        Effect::Write => "to write a table, write a job spec and run it with `medallion run`",
        Effect::Session => "settings come from medallion.yaml, MEDALLION_* variables and flags",
    };
    format!(
        "`medallion sql` runs queries only (SELECT, WITH, VALUES, EXPLAIN, SHOW, DESCRIBE) and \
         {} is not one; {instead}",
        refused.statement
    )
}

fn parse_table_snapshot(value: &str) -> Result<(String, i64), String> {
    let (table, id) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}` is not TABLE=SNAPSHOT_ID"))?;
    let id = id
        .parse()
        .map_err(|_| format!("`{id}` is not a snapshot id"))?;
    Ok((table.to_string(), id))
}

async fn print_frame(frame: datafusion::prelude::DataFrame, format: OutputFormat) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let batches = frame.collect().await.context("the query failed")?;
            println!("{}", pretty_format_batches(&batches)?);
        }
        OutputFormat::Csv | OutputFormat::Json => {
            let mut stream = frame.execute_stream().await.context("the query failed")?;
            let stdout = std::io::stdout().lock();
            let mut csv = matches!(format, OutputFormat::Csv)
                .then(|| arrow::csv::Writer::new(std::io::BufWriter::new(std::io::stdout())));
            let mut json = matches!(format, OutputFormat::Json).then(|| {
                arrow::json::LineDelimitedWriter::new(std::io::BufWriter::new(std::io::stdout()))
            });
            drop(stdout);
            while let Some(batch) = stream.next().await {
                let batch = batch.context("the query failed")?;
                if let Some(w) = csv.as_mut() {
                    w.write(&batch)?;
                }
                if let Some(w) = json.as_mut() {
                    w.write(&batch)?;
                }
            }
            if let Some(mut w) = json {
                w.finish()?;
            }
        }
    }
    Ok(())
}
