//! Receiving an upload: its body streamed into the raw store under a
//! staging key while it is hashed and counted, never whole in memory; its
//! first bytes sniffed; then moved to `_received/<dataset>/<upload_id>/`
//! where the ingest reads it. A body over the limit, one whose bytes are
//! not what its name says, or a client that goes away leaves nothing.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use medallion_jobs::SourceFormat;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::sniff::sniff;
use crate::ingest::RawRoot;

/// S3's smallest multipart part: what one part buffers in memory.
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts uploaded at once, so memory stays near `PART_BYTES` times this.
const PARTS_IN_FLIGHT: usize = 4;
/// Bytes sniffed before the format is settled.
const SNIFF_BYTES: usize = 512;

/// What the client says an upload is.
pub struct Upload<'a> {
    pub dataset: &'a str,
    /// Safe as a key segment (`safe_filename`).
    pub filename: &'a str,
    pub content_type: String,
    /// The format the client named, over what the name says.
    pub forced: Option<SourceFormat>,
    pub limit: u64,
}

/// An upload stored whole under its final key.
pub struct Received {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub upload_id: String,
    pub format: SourceFormat,
    /// The stored object, as a URI (what the ingest reads).
    pub uri: String,
}

/// Why an upload was not stored.
#[derive(Debug)]
pub enum Refused {
    TooLarge(u64),
    NotWhatItSays(String),
    /// The client's body broke off.
    Body(String),
    Storage(anyhow::Error),
}

/// Streams `body` into the store as `upload` says.
pub async fn receive<E: std::fmt::Display>(
    root: &RawRoot,
    upload: Upload<'_>,
    body: impl Stream<Item = Result<Bytes, E>> + Unpin,
) -> Result<Received, Refused> {
    let Upload {
        dataset,
        filename,
        forced,
        limit,
        ..
    } = upload;
    let staging = format!("_received/_staging/{}", uuid::Uuid::new_v4());
    let mut writer =
        BufWriter::with_capacity(root.store().clone(), root.path(&staging), PART_BYTES)
            .with_max_concurrency(PARTS_IN_FLIGHT);
    match stream_into(&mut writer, filename, forced, limit, body).await {
        Ok(written) => {
            let upload_id = crate::ingest::upload_id(&written.sha256);
            let key = format!("_received/{dataset}/{upload_id}/{filename}");
            root.store()
                .rename(&root.path(&staging), &root.path(&key))
                .await
                .map_err(|e| Refused::Storage(e.into()))?;
            Ok(Received {
                filename: filename.to_string(),
                content_type: upload.content_type,
                size: written.size,
                sha256: written.sha256,
                upload_id,
                format: written.format,
                uri: root.uri(&key),
            })
        }
        Err(refused) => {
            // Completed multipart parts would linger unseen and cost storage.
            if let Err(e) = writer.abort().await {
                tracing::warn!("cannot abort the staged upload {}: {e}", root.uri(&staging));
            }
            let _ = root.store().delete(&root.path(&staging)).await;
            Err(refused)
        }
    }
}

struct Written {
    size: u64,
    sha256: String,
    format: SourceFormat,
}

async fn stream_into<E: std::fmt::Display>(
    writer: &mut BufWriter,
    filename: &str,
    forced: Option<SourceFormat>,
    limit: u64,
    mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
) -> Result<Written, Refused> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut format = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Refused::Body(e.to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(Refused::TooLarge(limit));
        }
        if format.is_none() {
            let wanted = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..wanted]);
            if head.len() == SNIFF_BYTES {
                format = Some(settle(filename, forced, &head)?);
            }
        }
        hasher.update(&chunk);
        writer
            .put(chunk)
            .await
            .map_err(|e| Refused::Storage(e.into()))?;
    }
    if size == 0 {
        return Err(Refused::NotWhatItSays("the upload is empty".into()));
    }
    let format = match format {
        Some(format) => format,
        None => settle(filename, forced, &head)?,
    };
    writer
        .shutdown()
        .await
        .map_err(|e| Refused::Storage(e.into()))?;
    Ok(Written {
        size,
        sha256: format!("{:x}", hasher.finalize()),
        format,
    })
}

fn settle(
    filename: &str,
    forced: Option<SourceFormat>,
    head: &[u8],
) -> Result<SourceFormat, Refused> {
    // The compression is the name's; the ingest undoes it again.
    sniff(filename, forced, head)
        .map(|(format, _)| format)
        .map_err(Refused::NotWhatItSays)
}

/// The last segment of a client's file name, in characters that are safe
/// in an object key; `upload` when nothing is left.
pub fn safe_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let safe: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    let safe = safe.trim_start_matches('.').to_string();
    if safe.is_empty() {
        "upload".into()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_file_name_becomes_one_safe_key_segment() {
        assert_eq!(safe_filename("orders 2026.csv"), "orders_2026.csv");
        assert_eq!(safe_filename("../../etc/passwd"), "passwd");
        assert_eq!(safe_filename("C:\\data\\a.csv"), "a.csv");
        assert_eq!(safe_filename(".."), "upload");
        assert_eq!(safe_filename("ü.csv"), "_.csv");
    }
}
