//! Iceberg v3 deletion vectors: the deleted row positions of a data file
//! as one Roaring bitmap, a `deletion-vector-v1` blob in a Puffin file.
//! Spark, DuckDB and medallion write them on v3 tables in place of position
//! delete files; one Puffin file holds the vectors of many data files, each
//! blob naming its data file in the `referenced-data-file` property. This
//! file reads them, and encodes one blob (`deletion_vector_files.rs`
//! writes the Puffin files).
//!
//! The reader needs only byte ranges ([`AsyncFileReader::get_bytes`]), so
//! the engine's scans (through DataFusion's object store) and the
//! catalog's rewrites (through the table's FileIO) read them the same way.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Cursor;

use iceberg::puffin::{DELETION_VECTOR_V1, FileMetadata};
use parquet::arrow::async_reader::AsyncFileReader;
use roaring::RoaringTreemap;

use crate::error::BoxError;

/// Puffin's magic, at the start of the file and around the footer.
const PUFFIN_MAGIC: [u8; 4] = [0x50, 0x46, 0x41, 0x31];
/// The magic that starts a `deletion-vector-v1` blob's vector.
const VECTOR_MAGIC: [u8; 4] = [0xD1, 0xD3, 0x39, 0x64];
/// Payload size (4 bytes), flags (4 bytes) and magic end every footer.
const FOOTER_TAIL: u64 = 12;

/// Adds the positions the deletion vectors of one Puffin file (of `size`
/// bytes) hold for the `data_files` to `deleted` (by data file URI); the
/// vectors of other data files are not read.
pub async fn read_deletion_vectors<R: AsyncFileReader>(
    mut reader: R,
    size: u64,
    data_files: &HashSet<&str>,
    deleted: &mut HashMap<String, BTreeSet<u64>>,
) -> Result<(), BoxError> {
    let footer = read_footer(&mut reader, size).await?;
    for blob in footer.blobs() {
        if blob.blob_type() != DELETION_VECTOR_V1 {
            continue;
        }
        let Some(data_file) = blob.properties().get("referenced-data-file") else {
            return Err("a deletion vector without a referenced-data-file".into());
        };
        if !data_files.contains(data_file.as_str()) {
            continue;
        }
        let range = blob.offset()..blob.offset() + blob.length();
        let vector = decode(&reader.get_bytes(range).await?)?;
        if let Some(cardinality) = blob.properties().get("cardinality")
            && cardinality.parse::<u64>().ok() != Some(vector.len())
        {
            return Err(format!(
                "the deletion vector of {data_file} holds {} positions, its footer says {cardinality}",
                vector.len()
            )
            .into());
        }
        deleted.entry(data_file.clone()).or_default().extend(vector);
    }
    Ok(())
}

/// The footer of a Puffin file: the metadata of its blobs.
async fn read_footer<R: AsyncFileReader>(
    reader: &mut R,
    size: u64,
) -> Result<FileMetadata, BoxError> {
    if size < FOOTER_TAIL + 8 {
        return Err("too short for a Puffin file".into());
    }
    let tail = reader.get_bytes(size - FOOTER_TAIL..size).await?;
    if tail[8..] != PUFFIN_MAGIC {
        return Err("not a Puffin file (no magic at its end)".into());
    }
    // Java and DuckDB write the footer uncompressed; bit 0 marks LZ4.
    if tail[4] & 1 != 0 {
        return Err("an LZ4-compressed Puffin footer, which medallion does not read".into());
    }
    let payload = u64::from(u32::from_le_bytes(tail[..4].try_into()?));
    let start = (size - FOOTER_TAIL)
        .checked_sub(payload + 4)
        .ok_or("a Puffin footer longer than its file")?;
    let footer = reader.get_bytes(start..size - FOOTER_TAIL).await?;
    if footer[..4] != PUFFIN_MAGIC {
        return Err("a Puffin footer without its magic".into());
    }
    Ok(serde_json::from_slice(&footer[4..])?)
}

/// The positions of one `deletion-vector-v1` blob: its length (big-endian),
/// the magic, the 64-bit Roaring bitmap in its portable serialization, and
/// the CRC-32 (big-endian) of magic and bitmap.
pub(crate) fn decode(blob: &[u8]) -> Result<RoaringTreemap, BoxError> {
    let too_short = || BoxError::from("a deletion vector shorter than its header");
    let length = u32::from_be_bytes(blob.get(..4).ok_or_else(too_short)?.try_into()?) as usize;
    let body = blob.get(4..4 + length).ok_or_else(too_short)?;
    let crc = blob.get(4 + length..8 + length).ok_or_else(too_short)?;
    if body.get(..4) != Some(&VECTOR_MAGIC[..]) {
        return Err("a deletion vector without its magic".into());
    }
    if crc32fast::hash(body).to_be_bytes() != crc {
        return Err("a deletion vector whose checksum does not match: the file is corrupt".into());
    }
    Ok(RoaringTreemap::deserialize_from(Cursor::new(&body[4..]))?)
}

/// One `deletion-vector-v1` blob of `positions`, as [`decode`] reads it
/// and Iceberg Java's `BitmapPositionDeleteIndex` writes it.
pub(crate) fn encode(positions: &RoaringTreemap) -> Vec<u8> {
    let mut body = VECTOR_MAGIC.to_vec();
    positions
        .serialize_into(&mut body)
        .expect("writing to memory cannot fail");
    let mut blob = (body.len() as u32).to_be_bytes().to_vec();
    blob.extend(&body);
    blob.extend(crc32fast::hash(&body).to_be_bytes());
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(positions: &[u64]) -> Vec<u8> {
        encode(&positions.iter().copied().collect())
    }

    #[test]
    fn a_deletion_vector_decodes_to_its_positions_beyond_32_bits_too() {
        let positions = [0, 3, 4, 70_000, 1 << 33];
        let decoded = decode(&blob(&positions)).unwrap();
        assert_eq!(decoded.iter().collect::<Vec<_>>(), positions);
    }

    #[test]
    fn a_deletion_vector_with_a_flipped_bit_is_refused_as_corrupt() {
        let mut corrupt = blob(&[1, 2, 3]);
        let last_of_bitmap = corrupt.len() - 5;
        corrupt[last_of_bitmap] ^= 1;
        let error = decode(&corrupt).unwrap_err().to_string();
        assert!(error.contains("checksum"), "{error}");
    }
}
