//! Where in a CSV file a value does not parse. Arrow's CSV reader counts
//! the records of what it was given: from the header of a whole file (one
//! short of the file's line), or from the start of a byte range (DataFusion
//! reads files over 10 MB in ranges, so the count restarts per range), and
//! it numbers the column. Here the line is the file's and the column has
//! its name and declared type; the file is re-read only on this error path.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::common::{DataFusionError, exec_datafusion_err};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::object_store::{ObjectStore, ObjectStoreExt};
use futures::{StreamExt, TryStreamExt};

/// What the error path needs to know of a scan's CSV files.
pub(crate) struct CsvFiles {
    pub columns: SchemaRef,
    /// The declared type of each raw column a step declares, by raw name.
    pub declared: Arc<HashMap<String, String>>,
    pub quote: u8,
    pub terminator: Option<u8>,
    pub compression: FileCompressionType,
}

/// A value Arrow's CSV reader could not parse, as its message gives it.
struct BadValue {
    /// What could not be parsed: `"v"`, or Arrow's reason where its
    /// message names no value (timestamps).
    what: String,
    column: usize,
    /// The record's number among those the reader was given, from 0.
    record: usize,
}

/// Reads `Error while parsing value 'v' as type 't' for column c at line
/// l. Row data: ...` (most types) or `Error parsing column c at line l:
/// reason` (timestamps).
fn bad_value(message: &str) -> Option<BadValue> {
    if let Some(rest) = message.strip_prefix("Error while parsing value '") {
        let (value, rest) = rest.split_once("' as type '")?;
        let (_, rest) = rest.split_once("' for column ")?;
        let (column, rest) = rest.split_once(" at line ")?;
        let (record, _) = rest.split_once(". Row data: ")?;
        return bad(format!("{value:?}"), column, record);
    }
    let rest = message.strip_prefix("Error parsing column ")?;
    let (column, rest) = rest.split_once(" at line ")?;
    let (record, reason) = rest.split_once(": ")?;
    let reason = reason.strip_prefix("Parser error: ").unwrap_or(reason);
    bad(format!("a value ({reason})"), column, record)
}

fn bad(what: String, column: &str, record: &str) -> Option<BadValue> {
    Some(BadValue {
        what,
        column: column.parse().ok()?,
        record: record.parse().ok()?,
    })
}

fn parse_message(error: &DataFusionError) -> Option<&str> {
    match error.find_root() {
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::ParseError(message) => Some(message),
            _ => None,
        },
        _ => None,
    }
}

impl CsvFiles {
    /// `error`, from reading `file` (at `uri`), restated at the file's line
    /// with the column's name and type; `None` when it is not about a value
    /// or the line cannot be found.
    pub async fn restated(
        &self,
        store: &dyn ObjectStore,
        file: &PartitionedFile,
        uri: &str,
        error: &DataFusionError,
    ) -> Option<DataFusionError> {
        let bad = bad_value(parse_message(error)?)?;
        let field = self.columns.fields().get(bad.column)?;
        let name = field.name();
        // An unlisted column keeps the type the file's values suggested.
        let type_name = match self.declared.get(name) {
            Some(declared) => declared.clone(),
            None => field.data_type().to_string(),
        };
        let start = file.range.as_ref().map_or(0, |range| range.start as u64);
        let line = self.line_of(store, file, start, bad.record).await?;
        Some(exec_datafusion_err!(
            "{uri} line {line}: column {name}: cannot parse {} as {type_name}; fix the value in the file",
            bad.what
        ))
    }

    /// The line (from 1) on which `record` of the range from `start` begins,
    /// streaming the file only up to it.
    async fn line_of(
        &self,
        store: &dyn ObjectStore,
        file: &PartitionedFile,
        start: u64,
        record: usize,
    ) -> Option<usize> {
        let bytes = store
            .get(&file.object_meta.location)
            .await
            .ok()?
            .into_stream()
            .map_err(DataFusionError::from)
            .boxed();
        let mut chunks = self.compression.convert_stream(bytes).ok()?;
        let mut counter = RecordCounter::new(self, start, record);
        while let Some(chunk) = chunks.next().await {
            if let Some(line) = chunk.ok()?.iter().find_map(|b| counter.feed(*b)) {
                return Some(line);
            }
        }
        None
    }
}

/// Counts lines and records byte by byte as the CSV reader does: a range
/// not at the file's start begins after the first terminator at or after
/// its start's previous byte (as DataFusion aligns it), blank lines are no
/// records, and a terminator inside quotes ends none.
struct RecordCounter {
    terminator: u8,
    quote: u8,
    /// The range's start while the bytes before it are skipped.
    skipping_to: Option<u64>,
    at: u64,
    line: usize,
    records: usize,
    wanted: usize,
    in_record: bool,
    in_quotes: bool,
}

impl RecordCounter {
    fn new(files: &CsvFiles, start: u64, wanted: usize) -> Self {
        Self {
            terminator: files.terminator.unwrap_or(b'\n'),
            quote: files.quote,
            skipping_to: (start > 0).then_some(start),
            at: 0,
            line: 1,
            records: 0,
            wanted,
            in_record: false,
            in_quotes: false,
        }
    }

    /// The line of the wanted record, once `byte` is its first.
    fn feed(&mut self, byte: u8) -> Option<usize> {
        let at = self.at;
        self.at += 1;
        if byte == b'\n' {
            self.line += 1;
        }
        if let Some(start) = self.skipping_to {
            if byte == self.terminator && at + 1 >= start {
                self.skipping_to = None;
            }
            return None;
        }
        if byte == self.terminator && !self.in_quotes {
            self.in_record = false;
            return None;
        }
        if !self.in_record && byte != b'\r' && byte != b'\n' {
            if self.records == self.wanted {
                return Some(self.line);
            }
            self.records += 1;
            self.in_record = true;
            self.in_quotes = false;
        }
        if byte == self.quote {
            self.in_quotes = !self.in_quotes;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Schema;

    /// The line on which `record` of the range from `start` begins.
    fn line(csv: &str, start: u64, record: usize) -> Option<usize> {
        let files = CsvFiles {
            columns: Arc::new(Schema::empty()),
            declared: Arc::default(),
            quote: b'"',
            terminator: None,
            compression: FileCompressionType::UNCOMPRESSED,
        };
        let mut counter = RecordCounter::new(&files, start, record);
        csv.bytes().find_map(|b| counter.feed(b))
    }

    #[test]
    fn a_record_is_found_on_its_line_past_quoted_line_breaks_and_blank_lines() {
        let csv = "a,b\r\n1,\"x\ny\"\r\n\r\n\n2,z\r\n";
        assert_eq!(line(csv, 0, 0), Some(1));
        assert_eq!(line(csv, 0, 1), Some(2));
        assert_eq!(line(csv, 0, 2), Some(6));
        assert_eq!(line(csv, 0, 3), None);
    }

    #[test]
    fn a_range_counts_its_records_from_the_line_after_its_start() {
        let csv = "a\n10\n20\n30\n";
        // Byte 3 is inside `10`: the range begins at `20`.
        assert_eq!(line(csv, 3, 0), Some(3));
        // Byte 5 follows the line break before `20`, which begins it.
        assert_eq!(line(csv, 5, 0), Some(3));
        // Byte 6 is inside `20`: the range begins at `30`.
        assert_eq!(line(csv, 6, 0), Some(4));
        assert_eq!(line(csv, 5, 1), Some(4));
    }
}
