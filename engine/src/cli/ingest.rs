//! `medallion ingest`: one upload of a dataset from files, folders, URLs
//! or S3 prefixes, and its summary.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use medallion_jobs::{Pipeline, SourceFormat, reference_pipeline_dir};

use super::output::{Report, pretty};
use crate::engine::Engine;
use crate::ingest::format::parse_format;
use crate::ingest::{CsvOptions, IngestOptions, IngestReport, ingest as ingest_upload};
use crate::progress::Progress;
use crate::report::human_bytes;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The dataset, as named by a spec under the pipeline's datasets/.
    pub dataset: String,
    /// Files, folders, http(s) URLs or s3://bucket/prefix, read in order
    /// as one upload.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// The pipeline whose datasets/ declares the dataset (default: the
    /// built-in reference pipeline, as `demo` writes it).
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// The format of every source, when the names do not say it.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<SourceFormat>,
    /// Record the upload under this id instead of one derived from the
    /// bytes (re-ingesting an id already recorded writes nothing).
    #[arg(long)]
    pub upload_id: Option<String>,
    /// CSV field delimiter (one character; `\t` for tabs).
    #[arg(long, default_value = ",", value_parser = parse_byte)]
    pub csv_delimiter: u8,
    /// CSV quote character.
    #[arg(long, default_value = "\"", value_parser = parse_byte)]
    pub csv_quote: u8,
    /// CSV files have no header: fields are the declared columns in order.
    #[arg(long)]
    pub csv_no_header: bool,
}

fn parse_byte(text: &str) -> Result<u8, String> {
    match text {
        "\\t" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() => Ok(text.as_bytes()[0]),
        _ => Err(format!("`{text}` is not one ASCII character")),
    }
}

pub async fn ingest(
    engine: &Engine,
    args: IngestArgs,
    progress: &Progress,
) -> Result<IngestReport> {
    let dir = match &args.pipeline {
        Some(dir) => dir.clone(),
        None => {
            reference_pipeline_dir(&engine.config.lakehouse.join("pipelines").join("reference"))?
        }
    };
    if !dir.is_dir() {
        bail!(
            "--pipeline {}: give the pipeline folder, whose datasets/ declares the dataset",
            dir.display()
        );
    }
    let pipeline = Pipeline::load(&dir)?;
    let dataset = pipeline.dataset(&args.dataset)?;
    let options = IngestOptions {
        format: args.format,
        csv: CsvOptions {
            header: !args.csv_no_header,
            delimiter: args.csv_delimiter,
            quote: args.csv_quote,
        },
        upload_id: args.upload_id,
        ..IngestOptions::default()
    };
    // Without brokers configured the event is in the report, not sent.
    let events = crate::events::sink(&engine.config)?;
    ingest_upload(engine, dataset, &args.sources, &options, events, progress).await
}

impl Report for IngestReport {
    fn text(&self) -> String {
        if self.already_ingested {
            return format!(
                "already ingested as upload {}; nothing written ({} rows accepted then, in {})\n",
                self.upload_id,
                self.rows_accepted,
                self.object_keys.join(", ")
            );
        }
        let mut text = format!(
            "ingested {} as upload {} from {}\n",
            self.dataset,
            self.upload_id,
            self.sources.join(", ")
        );
        text.push_str(&format!(
            "  rows: {} in, {} accepted, {} quarantined{}\n",
            self.rows_in,
            self.rows_accepted,
            self.rows_quarantined,
            self.quarantine
                .as_ref()
                .map(|q| format!(" ({q})"))
                .unwrap_or_default()
        ));
        text.push_str(&format!(
            "  bytes: {} read, {} written\n",
            human_bytes(self.bytes_read),
            human_bytes(self.bytes_written)
        ));
        for key in &self.object_keys {
            text.push_str(&format!("  landed: {key}\n"));
        }
        text.push_str(&format!("  recorded: {}\n", self.marker));
        text.push_str(if self.event_published {
            "  raw-data-ready: published\n"
        } else {
            "  raw-data-ready: not published, no broker is configured (--json shows the event)\n"
        });
        text.push_str(&format!("  {:.2}s\n", self.seconds));
        text
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}
