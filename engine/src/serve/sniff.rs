//! Content sniffing: the first bytes of an upload must be what its name
//! (or the `format` parameter) says, so a Parquet file named `.csv`, or a
//! gzip archive of anything named `.json`, is refused before it is stored.

use medallion_jobs::SourceFormat;

use crate::ingest::format::{Compression, detect};

/// What the first bytes look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Looks {
    Parquet,
    Gzip,
    Zstd,
    /// Text starting with `[` (a JSON array).
    JsonArray,
    /// Text starting with `{` (NDJSON).
    JsonObject,
    /// Other text: CSV, if anything.
    Text,
    Binary,
}

fn looks(head: &[u8]) -> Looks {
    if head.starts_with(b"PAR1") {
        return Looks::Parquet;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Looks::Gzip;
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Looks::Zstd;
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    // A control byte other than whitespace is no text format's.
    if text
        .iter()
        .any(|b| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return Looks::Binary;
    }
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Looks::JsonArray,
        Some(b'{') => Looks::JsonObject,
        _ => Looks::Text,
    }
}

/// The format and compression of an upload named `name` whose bytes start
/// with `head`, or why they disagree. A name without an extension takes
/// what the bytes say.
pub fn sniff(
    name: &str,
    forced: Option<SourceFormat>,
    head: &[u8],
) -> Result<(SourceFormat, Compression), String> {
    let seen = looks(head);
    let declared = match detect(name, forced) {
        Ok(declared) => declared,
        Err(e) => {
            return by_content(seen).ok_or_else(|| {
                crate::errors::one_line(&e)
                    .replace("--format", "the format parameter (?format=csv)")
            });
        }
    };
    let agrees = match declared {
        (_, Compression::Gzip) => seen == Looks::Gzip,
        (_, Compression::Zstd) => seen == Looks::Zstd,
        (SourceFormat::Parquet, _) => seen == Looks::Parquet,
        (SourceFormat::Json, _) => seen == Looks::JsonArray,
        (SourceFormat::Ndjson, _) => matches!(seen, Looks::JsonObject | Looks::Text),
        (SourceFormat::Csv, _) => seen == Looks::Text,
    };
    if agrees {
        Ok(declared)
    } else {
        Err(format!(
            "{name} is declared {} but its first bytes look like {}; send the file as it is, or name its format",
            shown(declared),
            described(seen)
        ))
    }
}

/// The format the bytes alone say, where they say it unambiguously.
fn by_content(seen: Looks) -> Option<(SourceFormat, Compression)> {
    match seen {
        Looks::Parquet => Some((SourceFormat::Parquet, Compression::None)),
        Looks::JsonArray => Some((SourceFormat::Json, Compression::None)),
        Looks::JsonObject => Some((SourceFormat::Ndjson, Compression::None)),
        _ => None,
    }
}

fn shown((format, compression): (SourceFormat, Compression)) -> String {
    let format = format!("{format:?}").to_lowercase();
    match compression {
        Compression::None => format,
        Compression::Gzip => format!("gzip-compressed {format}"),
        Compression::Zstd => format!("zstd-compressed {format}"),
    }
}

fn described(seen: Looks) -> &'static str {
    match seen {
        Looks::Parquet => "Parquet",
        Looks::Gzip => "gzip",
        Looks::Zstd => "zstd",
        Looks::JsonArray => "a JSON array",
        Looks::JsonObject => "JSON objects",
        Looks::Text => "text (CSV)",
        Looks::Binary => "binary data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_must_be_what_the_name_declares() {
        assert_eq!(
            sniff("a.csv", None, b"id,name\n1,x\n"),
            Ok((SourceFormat::Csv, Compression::None))
        );
        assert_eq!(
            sniff("a.csv.gz", None, &[0x1f, 0x8b, 8, 0]),
            Ok((SourceFormat::Csv, Compression::Gzip))
        );
        assert_eq!(
            sniff("a.parquet", None, b"PAR1\x15\x04"),
            Ok((SourceFormat::Parquet, Compression::None))
        );
        let err = sniff("a.csv", None, b"PAR1\x15\x04").unwrap_err();
        assert!(
            err.contains("declared csv") && err.contains("Parquet"),
            "{err}"
        );
        assert!(sniff("a.json", None, b"{\"a\":1}\n").is_err());
        assert!(sniff("a.csv", None, b"\x00\x01\x02").is_err());
    }

    #[test]
    fn a_name_without_extension_takes_what_unambiguous_bytes_say() {
        assert_eq!(
            sniff("upload", None, b"  [{\"a\":1}]"),
            Ok((SourceFormat::Json, Compression::None))
        );
        assert_eq!(
            sniff("upload", None, b"PAR1"),
            Ok((SourceFormat::Parquet, Compression::None))
        );
        assert!(
            sniff("upload", None, b"a,b\n")
                .unwrap_err()
                .contains("?format=csv")
        );
    }
}
