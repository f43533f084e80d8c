//! CSV sources, record by record: the header maps fields to the declared
//! columns; a record with the wrong field count or bad UTF-8 is a bad row
//! at its line, not a failed file.

use std::borrow::Cow;
use std::io::Read;

use anyhow::{Result, bail};

use medallion_jobs::DatasetColumn;

use super::csv_quotes::QuoteWatch;
use super::options::CsvOptions;
use super::row::{Emit, Row};

/// Reads every record of `reader` and hands each to `emit`, its values in
/// the order of the declared `columns`.
pub fn read_csv(
    reader: impl Read,
    name: &str,
    columns: &[DatasetColumn],
    options: CsvOptions,
    emit: &mut Emit<'_>,
) -> Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(options.header)
        .delimiter(options.delimiter)
        .quote(options.quote)
        // Field counts are checked per record, so one short line is one bad row.
        .flexible(true)
        .from_reader(QuoteWatch::new(reader, options.quote, options.delimiter));
    let (positions, width) = if options.header {
        let header = csv.headers()?.clone();
        (positions(&header, name, columns)?, header.len())
    } else {
        ((0..columns.len()).map(Some).collect(), columns.len())
    };
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => return no_open_quote(csv.get_ref(), name, options),
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                let values = if record.len() == width {
                    Ok(positions
                        .iter()
                        .map(|p| p.and_then(|i| record.get(i)).map(Cow::Borrowed))
                        .collect())
                } else {
                    Err(format!(
                        "has {} fields, the header has {width}",
                        record.len()
                    ))
                };
                let raw = || joined(&record, options);
                emit(Row {
                    line,
                    values,
                    raw: &raw,
                })?;
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos, err } => {
                    let line = pos.as_ref().map_or(line, |p| p.line());
                    let reason = format!("field {} is not UTF-8 text ({err})", err.field() + 1);
                    let raw = || String::new();
                    emit(Row {
                        line,
                        values: Err(reason),
                        raw: &raw,
                    })?;
                }
                _ => bail!("{name}: line {line}: {e}"),
            },
        }
    }
}

/// The whole file is refused when a quote is never closed: every line
/// after it would have been one value, so no row after it can be trusted.
fn no_open_quote(watch: &QuoteWatch<impl Read>, name: &str, options: CsvOptions) -> Result<()> {
    match watch.unclosed_quote() {
        None => Ok(()),
        Some(line) => bail!(
            "{name}: line {line}: a quoted field opens here and is never closed, so the rest of the file \
             would be one value; close the quote, or pass --csv-quote if `{}` is not the quote character",
            options.quote as char
        ),
    }
}

/// Where each declared column is in the header (`None`: absent, read as
/// null). Names match after trimming, in any case; a required column must
/// be there.
fn positions(
    header: &csv::StringRecord,
    name: &str,
    columns: &[DatasetColumn],
) -> Result<Vec<Option<usize>>> {
    let names: Vec<&str> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}'))
        .collect();
    let mut found = Vec::with_capacity(columns.len());
    for column in columns {
        let at = names
            .iter()
            .position(|h| h.eq_ignore_ascii_case(&column.name));
        if at.is_none() && column.required {
            bail!(
                "{name}: the header has no column `{}`, which the dataset requires; it has {} \
                 (pass --csv-delimiter if fields are not comma-separated)",
                column.name,
                names.join(", ")
            );
        }
        found.push(at);
    }
    Ok(found)
}

/// A record written back as CSV, for the quarantine.
fn joined(record: &csv::StringRecord, options: CsvOptions) -> String {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(options.delimiter)
        .quote(options.quote)
        .flexible(true)
        .from_writer(Vec::new());
    let line = writer
        .write_record(record)
        .ok()
        .and_then(|()| writer.into_inner().ok())
        .unwrap_or_default();
    String::from_utf8_lossy(&line).trim_end().to_string()
}
