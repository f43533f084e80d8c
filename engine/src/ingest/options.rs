//! How an ingest reads its sources: the format when names do not say it,
//! CSV dialect, batch size and an upload id given by the caller.

use medallion_jobs::SourceFormat;

/// Options of one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The format of every source; by default each source's extension says.
    pub format: Option<SourceFormat>,
    pub csv: CsvOptions,
    /// The upload id to record; by default derived from the source bytes.
    pub upload_id: Option<String>,
    /// Rows per Arrow batch: what bounds the memory an ingest holds.
    pub batch_rows: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            format: None,
            csv: CsvOptions::default(),
            upload_id: None,
            batch_rows: 8192,
        }
    }
}

/// The CSV dialect.
#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    /// The first line names the columns; without it, fields are the
    /// declared columns in order.
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            header: true,
            delimiter: b',',
            quote: b'"',
        }
    }
}
