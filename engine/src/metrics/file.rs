//! The text exposition written to a file for node-exporter's textfile
//! collector, which may read it at any moment: written beside it under a
//! name the collector skips (it reads `*.prom` only), then renamed over it.

use std::path::Path;

use anyhow::{Context, Result};

use super::registry::Registry;

pub fn write_file(registry: &Registry, path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("--metrics-file {} names no file", path.display()))?;
    let temp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temp, registry.render())
        .with_context(|| format!("cannot write the metrics file {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| {
        let _ = std::fs::remove_file(&temp);
        format!(
            "cannot move the metrics file into place at {}",
            path.display()
        )
    })
}
