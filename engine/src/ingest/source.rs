//! Where an upload's bytes come from: local files and folders, HTTP(S)
//! URLs and object-store prefixes (`s3://bucket/prefix`, through the
//! engine's stores and credentials), each opened as a blocking reader
//! that streams: a remote body arrives in chunks, never whole.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::store::store_of;

/// One source of an upload.
pub enum Source {
    Local(PathBuf),
    Http(url::Url),
    Object {
        store: Arc<dyn ObjectStore>,
        location: ObjectPath,
        uri: String,
    },
}

impl Source {
    /// How the source is named in reports, events and the quarantine: a
    /// URL without its user, password or query (which may hold a token).
    pub fn name(&self) -> String {
        match self {
            Source::Local(path) => path.display().to_string(),
            Source::Http(url) => {
                let mut shown = url.clone();
                let _ = shown.set_username("");
                let _ = shown.set_password(None);
                shown.set_query(None);
                shown.to_string()
            }
            Source::Object { uri, .. } => uri.clone(),
        }
    }

    /// The last segment of its path, whose extension names the format.
    pub fn file_name(&self) -> String {
        match self {
            Source::Local(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Source::Http(url) => url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .unwrap_or_default()
                .to_string(),
            Source::Object { location, .. } => location.filename().unwrap_or_default().to_string(),
        }
    }

    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Source::Local(path) => Some(path),
            _ => None,
        }
    }

    /// Opens the source for reading on a blocking thread; remote bodies
    /// are pumped by a task on `runtime`, a few chunks ahead.
    pub fn open(&self, runtime: &Handle) -> Result<Box<dyn Read + Send>> {
        let chunks = match self {
            Source::Local(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                return Ok(Box::new(file));
            }
            Source::Http(url) => {
                let response = runtime
                    .block_on(async { reqwest::get(url.clone()).await?.error_for_status() })
                    .with_context(|| format!("cannot download {}", self.name()))?;
                futures::stream::unfold(response, |mut response| async move {
                    match response.chunk().await {
                        Ok(Some(chunk)) => Some((Ok(chunk), response)),
                        Ok(None) => None,
                        Err(e) => Some((Err(std::io::Error::other(e)), response)),
                    }
                })
                .boxed()
            }
            Source::Object {
                store, location, ..
            } => runtime
                .block_on(store.get(location))
                .with_context(|| format!("cannot read {}", self.name()))?
                .into_stream()
                .map_err(std::io::Error::other)
                .boxed(),
        };
        let (sender, receiver) = mpsc::channel(4);
        runtime.spawn(async move {
            let mut chunks = chunks;
            while let Some(chunk) = chunks.next().await {
                // The reader stopped (a rejected file): stop downloading.
                if sender.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        Ok(Box::new(ChannelReader {
            receiver,
            chunk: Bytes::new(),
        }))
    }
}

/// A blocking `Read` over chunks that an async task sends.
struct ChannelReader {
    receiver: mpsc::Receiver<std::io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.chunk = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The sources the arguments name, in order: a folder or prefix becomes
/// its files, sorted, without hidden ones (`.x`, `_SUCCESS`).
pub async fn resolve(ctx: &SessionContext, arguments: &[String]) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for argument in arguments {
        if argument.starts_with("http://") || argument.starts_with("https://") {
            let url = url::Url::parse(argument).with_context(|| format!("bad URL {argument}"))?;
            sources.push(Source::Http(url));
        } else if let Some((scheme, _)) = argument.split_once("://")
            && scheme != "file"
        {
            sources.extend(objects(ctx, argument).await?);
        } else {
            let path = PathBuf::from(argument.strip_prefix("file://").unwrap_or(argument));
            let before = sources.len();
            local_files(&path, &mut sources)?;
            if sources.len() == before {
                bail!("{} holds no files to ingest", path.display());
            }
        }
    }
    Ok(sources)
}

fn local_files(path: &Path, sources: &mut Vec<Source>) -> Result<()> {
    if path.is_file() {
        sources.push(Source::Local(path.to_path_buf()));
        return Ok(());
    }
    let entries = std::fs::read_dir(path).with_context(|| {
        format!(
            "cannot read {}; give a file, a folder, an http(s) URL or s3://bucket/prefix",
            path.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", path.display()))?;
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(['.', '_']));
        if !hidden {
            local_files(&path, sources)?;
        }
    }
    Ok(())
}

/// The object `uri` names, or every object under it as a prefix.
async fn objects(ctx: &SessionContext, uri: &str) -> Result<Vec<Source>> {
    let (store, store_url, url) = store_of(ctx, uri)?;
    let prefix = ObjectPath::from(url.path().trim_matches('/'));
    let base = uri.trim_end_matches('/');
    let object = |location: ObjectPath| {
        let uri = format!("{}/{}", store_url.as_str().trim_end_matches('/'), location);
        Source::Object {
            store: store.clone(),
            location,
            uri,
        }
    };
    if store.head(&prefix).await.is_ok() {
        return Ok(vec![object(prefix)]);
    }
    let mut listed: Vec<ObjectPath> = store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .with_context(|| format!("cannot list {base}"))?;
    listed.retain(|location| {
        let below = location.prefix_match(&prefix).into_iter().flatten();
        !below
            .into_iter()
            .any(|part| part.as_ref().starts_with(['.', '_']))
    });
    listed.sort();
    if listed.is_empty() {
        bail!("no objects at {base}; check the bucket and prefix");
    }
    Ok(listed.into_iter().map(object).collect())
}
