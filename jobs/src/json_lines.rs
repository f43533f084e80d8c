//! Where an NDJSON file stops being JSON. Arrow infers a JSON file's
//! columns by parsing each line on its own, so its error says `line 1`
//! whatever the line; the line and column here are the file's.

use datafusion::common::{DataFusionError, exec_datafusion_err};
use datafusion::object_store::{ObjectStore, ObjectStoreExt};
use futures::StreamExt;

use crate::raw::RawFile;

/// `error`, from reading `file`'s columns, restated at the file's first
/// line that is not JSON; `error` itself when no line is found (or the
/// file is compressed, whose lines are not its bytes').
pub(crate) async fn at_its_line(
    store: &dyn ObjectStore,
    file: &RawFile,
    error: DataFusionError,
) -> DataFusionError {
    if file.compression.is_compressed() {
        return error;
    }
    match first_bad_line(store, file).await {
        Some((line, bad)) => {
            let message = bad.to_string();
            let message = message
                .strip_suffix(&format!(" at line {} column {}", bad.line(), bad.column()))
                .unwrap_or(&message);
            exec_datafusion_err!(
                "line {line} column {}: not valid JSON: {message}; fix the line",
                bad.column()
            )
        }
        None => error,
    }
}

/// The number (from 1) of the first non-empty line that does not parse,
/// and why; the file is read only up to it.
async fn first_bad_line(
    store: &dyn ObjectStore,
    file: &RawFile,
) -> Option<(usize, serde_json::Error)> {
    let parse = |line: &[u8]| -> Option<serde_json::Error> {
        let line = line.trim_ascii();
        if line.is_empty() {
            return None;
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(line).err()
    };
    let mut chunks = store.get(&file.meta.location).await.ok()?.into_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut number = 0;
    while let Some(chunk) = chunks.next().await {
        pending.extend_from_slice(&chunk.ok()?);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            number += 1;
            if let Some(bad) = parse(&line) {
                return Some((number, bad));
            }
        }
    }
    parse(&pending).map(|bad| (number + 1, bad))
}
