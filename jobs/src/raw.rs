//! Raw objects: which names a format reads, compressed or not.

use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::object_store::ObjectMeta;

use crate::spec::RawFormat;

/// One raw object, by its full URI (`s3://raw/...`, `file:///...`).
#[derive(Debug, Clone)]
pub struct RawFile {
    pub uri: String,
    pub format: RawFormat,
    /// How the bytes are compressed, from the name (`.csv.gz`).
    pub compression: FileCompressionType,
    /// The object as listed: its path in the store and its size.
    pub meta: ObjectMeta,
}

/// Whether `format` reads a file of this name (the last segment of its
/// path), and how its bytes are compressed. Extensions match in any case;
/// CSV and JSON may be compressed (gzip, bzip2, xz, zstd), Parquet
/// compresses inside the file.
pub fn compression_of(format: RawFormat, name: &str) -> Option<FileCompressionType> {
    let lower = name.to_ascii_lowercase();
    let (base, compression) = match format {
        RawFormat::Parquet => (lower.as_str(), FileCompressionType::UNCOMPRESSED),
        RawFormat::Csv | RawFormat::Json => split_compression(&lower),
    };
    let extensions: &[&str] = match format {
        RawFormat::Parquet => &[".parquet", ".parq"],
        RawFormat::Csv => &[".csv"],
        RawFormat::Json => &[".json", ".jsonl", ".ndjson"],
    };
    extensions
        .iter()
        .any(|e| base.len() > e.len() && base.ends_with(e))
        .then_some(compression)
}

/// `orders.csv.gz` is `orders.csv`, gzip.
fn split_compression(name: &str) -> (&str, FileCompressionType) {
    for (suffix, compression) in [
        (".gz", FileCompressionType::GZIP),
        (".bz2", FileCompressionType::BZIP2),
        (".xz", FileCompressionType::XZ),
        (".zst", FileCompressionType::ZSTD),
        (".zstd", FileCompressionType::ZSTD),
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            return (base, compression);
        }
    }
    (name, FileCompressionType::UNCOMPRESSED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_match_in_any_case_and_compressed() {
        let plain = Some(FileCompressionType::UNCOMPRESSED);
        assert_eq!(compression_of(RawFormat::Csv, "good.CSV"), plain);
        assert_eq!(
            compression_of(RawFormat::Csv, "b.csv.gz"),
            Some(FileCompressionType::GZIP)
        );
        assert_eq!(
            compression_of(RawFormat::Csv, "b.Csv.ZST"),
            Some(FileCompressionType::ZSTD)
        );
        assert_eq!(compression_of(RawFormat::Json, "e.ndjson"), plain);
        assert_eq!(
            compression_of(RawFormat::Json, "e.jsonl.bz2"),
            Some(FileCompressionType::BZIP2)
        );
        assert_eq!(compression_of(RawFormat::Parquet, "p.PARQUET"), plain);
        assert_eq!(compression_of(RawFormat::Parquet, "p.parq"), plain);
    }

    #[test]
    fn other_names_are_not_read() {
        assert_eq!(compression_of(RawFormat::Csv, "notes.txt"), None);
        assert_eq!(compression_of(RawFormat::Csv, "csv"), None);
        assert_eq!(compression_of(RawFormat::Csv, "a.json"), None);
        assert_eq!(
            compression_of(RawFormat::Parquet, "p.parquet.gz"),
            None,
            "Parquet is compressed inside; a gzipped file of it is not readable"
        );
    }
}
