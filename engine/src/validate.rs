//! `medallion validate`: every job of a pipeline planned, in order, against
//! empty tables of the right schemas; nothing is read beyond file footers
//! and nothing is written.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Result, bail};
use arrow::datatypes::SchemaRef;
use datafusion::datasource::empty::EmptyTable;
use iceberg::arrow::schema_to_arrow_schema;
use medallion_catalog::{FormatVersion, ShardCommit, normalize_arrow_schema, table_ident};
use medallion_jobs::{ExecutionMode, InputSpec, Pipeline, RunParameters, plan_job};

use crate::engine::Engine;
use crate::session::register_provider;
use crate::storage::{list_raw_files, raw_uri, some_of};

/// Which readers a v3 table needs: those of the interop tests read it.
const V3_READERS: &str = "target.format_version 3: readers need Iceberg v3 (deletion vectors, \
    row lineage); PyIceberg 0.11, DuckDB 1.5 and Spark with Iceberg 1.10 read medallion's v3 \
    tables, Iceberg Java before 1.8 and engines without v3 cannot";

/// What `execution.mode: distributed` makes of a job.
const DISTRIBUTED: &str = "runs its query on the workers of --workers (`medallion worker`; \
    `medallion explain --distributed` shows its stages); this process writes and commits";

/// What `execution.shards` makes of a job where it is deployed.
fn sharded(count: u32, commit: ShardCommit) -> String {
    let commit = match commit {
        ShardCommit::Single => "one snapshot once every shard has staged its files",
        ShardCommit::PerShard => "one snapshot per shard (commit: per-shard)",
    };
    format!(
        "runs in {count} shards (an Indexed Job of {count} pods, or `run --shard i/{count}`), \
         each loading a stable share of the raw files; {commit}"
    )
}

pub async fn validate_pipeline(engine: &Engine, pipeline: &Pipeline) -> Result<Vec<String>> {
    let run = RunParameters {
        job_id: "validate".into(),
        loaded_at_micros: 0,
        raw_inputs: Default::default(),
        ..Default::default()
    };
    let mut planned: HashMap<String, SchemaRef> = HashMap::new();
    let mut lines = Vec::new();
    for job in &pipeline.jobs {
        let ctx = engine.session();
        let mut raw_files = HashMap::new();
        let mut notes = Vec::new();
        for input in &job.inputs {
            match input {
                InputSpec::Table { table, .. } => {
                    let schema = match planned.get(table) {
                        Some(schema) => schema.clone(),
                        None => match engine
                            .lakehouse
                            .try_load_table(&table_ident(table)?)
                            .await?
                        {
                            Some(existing) => normalize_arrow_schema(&schema_to_arrow_schema(
                                existing.metadata().current_schema(),
                            )?),
                            None => bail!(
                                "{}: job `{}` reads table {table}, which does not exist and no job of this pipeline writes",
                                job.path.display(),
                                job.name
                            ),
                        },
                    };
                    register_provider(
                        &ctx,
                        &table_ident(table)?,
                        Arc::new(EmptyTable::new(schema)),
                    )?;
                }
                InputSpec::Raw { name, path, format } => {
                    let uri = raw_uri(&engine.config.raw_root, path);
                    match list_raw_files(&ctx, &uri, *format).await {
                        Ok(listing) => {
                            if !listing.skipped.is_empty() {
                                notes.push(format!(
                                    "raw input `{name}`: {} objects are not {} files or lie in a subfolder and would not be loaded: {}",
                                    listing.skipped.len(),
                                    format.extension(),
                                    some_of(&listing.skipped)
                                ));
                            }
                            raw_files.insert(name.clone(), listing.files);
                        }
                        Err(e) => notes.push(format!(
                            "raw input `{name}` checked against its declared columns only ({})",
                            crate::errors::one_line(&e)
                        )),
                    }
                }
            }
        }
        if let Some(count) = job.execution.shards {
            notes.push(sharded(count, job.execution.commit));
        }
        if job.execution.mode == ExecutionMode::Distributed {
            notes.push(DISTRIBUTED.to_string());
        }
        if job.target.format_version == Some(FormatVersion::V3) {
            notes.push(V3_READERS.to_string());
        }
        let frame = plan_job(&ctx, job, &raw_files, &run).await?;
        let schema = normalize_arrow_schema(frame.schema().as_arrow());
        lines.push(format!(
            "ok  {:<24} -> {} ({} columns){}",
            job.name,
            job.target.table,
            schema.fields().len(),
            notes
                .iter()
                .map(|n| format!("\n    note: {n}"))
                .collect::<String>()
        ));
        planned.insert(job.target.table.clone(), schema);
    }
    // Loading checked each dataset (types, patterns, `feeds`); say so.
    for dataset in &pipeline.datasets {
        lines.push(format!(
            "ok  dataset {:<16} -> {} ({} columns)",
            dataset.dataset,
            dataset.feeds,
            dataset.columns.len()
        ));
    }
    Ok(lines)
}
