//! A source's format and compression, from its name or `--format`, and
//! the reader that undoes the compression.

use std::io::Read;

use anyhow::{Result, bail};
use medallion_jobs::SourceFormat;

/// How a source's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The format and compression of the source named `name` (its last path
/// segment): `.csv`, `.json` (an array), `.ndjson`/`.jsonl`, `.parquet`,
/// each but Parquet optionally `.gz` or `.zst`.
pub fn detect(name: &str, forced: Option<SourceFormat>) -> Result<(SourceFormat, Compression)> {
    let lower = name.to_ascii_lowercase();
    let (base, compression) = if let Some(base) = lower.strip_suffix(".gz") {
        (base, Compression::Gzip)
    } else if let Some(base) = lower
        .strip_suffix(".zst")
        .or_else(|| lower.strip_suffix(".zstd"))
    {
        (base, Compression::Zstd)
    } else {
        (lower.as_str(), Compression::None)
    };
    let by_name = [
        (".csv", SourceFormat::Csv),
        (".ndjson", SourceFormat::Ndjson),
        (".jsonl", SourceFormat::Ndjson),
        (".json", SourceFormat::Json),
        (".parquet", SourceFormat::Parquet),
        (".parq", SourceFormat::Parquet),
    ]
    .into_iter()
    .find(|(extension, _)| base.ends_with(extension))
    .map(|(_, format)| format);
    let Some(format) = forced.or(by_name) else {
        bail!(
            "cannot tell the format of {name}; name it .csv, .json, .ndjson, .jsonl or .parquet \
             (optionally .gz or .zst), or pass --format"
        );
    };
    if format == SourceFormat::Parquet && compression != Compression::None {
        bail!("{name}: Parquet is compressed inside; send the .parquet file itself");
    }
    Ok((format, compression))
}

/// A format as a user names it: `--format` and the upload API's `format`.
pub fn parse_format(text: &str) -> Result<SourceFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "csv" => Ok(SourceFormat::Csv),
        "json" => Ok(SourceFormat::Json),
        "ndjson" | "jsonl" => Ok(SourceFormat::Ndjson),
        "parquet" => Ok(SourceFormat::Parquet),
        _ => Err(format!(
            "`{text}`: use csv, json (an array), ndjson or parquet"
        )),
    }
}

/// The bytes of `reader` with its compression undone, as they are read.
pub fn decompress<'a>(
    reader: impl Read + Send + 'a,
    compression: Compression,
) -> Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        // Multi-member, as `cat a.gz b.gz` and pigz write them.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_names_the_format_and_the_compression() {
        assert_eq!(
            detect("a.CSV.gz", None).unwrap(),
            (SourceFormat::Csv, Compression::Gzip)
        );
        assert_eq!(
            detect("a.jsonl.zst", None).unwrap(),
            (SourceFormat::Ndjson, Compression::Zstd)
        );
        assert_eq!(
            detect("a.json", None).unwrap(),
            (SourceFormat::Json, Compression::None)
        );
        assert_eq!(
            detect("upload.bin", Some(SourceFormat::Csv)).unwrap(),
            (SourceFormat::Csv, Compression::None)
        );
        assert!(
            detect("notes.txt", None)
                .unwrap_err()
                .to_string()
                .contains("--format")
        );
        assert!(detect("a.parquet.gz", None).is_err());
    }
}
