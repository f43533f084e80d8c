//! The GitOps repository's layout, the same as the SparkApplication one it
//! replaces: `jobs/<layer>-layer/jobs/<job>.yaml`, with each layer's Job
//! template and a kustomization per folder. The kustomizations are written
//! from the files present (kustomize has no globs), so two submitters that
//! each add a file never conflict over them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The layers medallion ships Job templates for, in the order they run:
/// a new repository gets their folders, and listings sort them first.
pub const LAYERS: [&str; 3] = ["bronze", "silver", "gold"];

pub const JOBS_DIR: &str = "jobs";
pub const TEMPLATE_FILE: &str = "template.yaml";
const KUSTOMIZATION: &str = "kustomization.yaml";
const LAYER_SUFFIX: &str = "-layer";

const ROOT_HEADER: &str = "\
# The GitOps repository's jobs/ folder, synced by the ArgoCD app
# `medallion-jobs`. Each layer folder holds its Job template and the job
# manifests `medallion deploy submit` commits; `medallion deploy prune`
# removes finished ones. Layer folders are `bases` so that kubectl 1.20
# (Debian 12) builds this too; kustomize v5 warns and builds the same.
";

const LAYER_HEADER: &str = "\
# Written by `medallion deploy submit` and `medallion deploy prune`: the job
# manifests of this layer, one file per Job. template.yaml is not listed; it
# is what submit renders new jobs from.
";

/// `jobs/silver-layer`.
pub fn layer_dir(layer: &str) -> PathBuf {
    Path::new(JOBS_DIR).join(format!("{layer}{LAYER_SUFFIX}"))
}

/// `jobs/silver-layer/jobs/silver-orders-2026-11-29.yaml`, relative to the
/// repository root.
pub fn manifest_path(layer: &str, job_name: &str) -> PathBuf {
    layer_dir(layer)
        .join("jobs")
        .join(format!("{job_name}.yaml"))
}

/// The layer of a `<layer>-layer` folder.
pub fn layer_of_dir(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let layer = name.strip_suffix(LAYER_SUFFIX)?;
    (!layer.is_empty() && dir.is_dir()).then(|| layer.to_string())
}

/// The manifests of one layer, relative to its folder (`jobs/x.yaml`), sorted.
pub fn layer_manifests(root: &Path, layer: &str) -> Result<Vec<String>> {
    let jobs = root.join(layer_dir(layer)).join("jobs");
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&jobs) {
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".yaml") {
                files.push(format!("jobs/{name}"));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The layers a checkout has, sorted as bronze, silver, gold, then others.
pub fn layers(root: &Path) -> Result<Vec<String>> {
    let mut layers = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join(JOBS_DIR)) {
        for entry in entries {
            if let Some(layer) = layer_of_dir(&entry?.path()) {
                layers.push(layer);
            }
        }
    }
    layers.sort_by_key(|layer| {
        let known = LAYERS
            .iter()
            .position(|l| l == layer)
            .unwrap_or(LAYERS.len());
        (known, layer.clone())
    });
    Ok(layers)
}

/// Rewrites `jobs/kustomization.yaml` and each layer's from the folders and
/// files present.
pub fn write_kustomizations(root: &Path) -> Result<()> {
    let layers = layers(root)?;
    let root_text = kustomization(
        ROOT_HEADER,
        "bases",
        &layers
            .iter()
            .map(|l| format!("{l}{LAYER_SUFFIX}"))
            .collect::<Vec<_>>(),
    );
    write(&root.join(JOBS_DIR).join(KUSTOMIZATION), &root_text)?;
    for layer in &layers {
        let text = kustomization(LAYER_HEADER, "resources", &layer_manifests(root, layer)?);
        write(&root.join(layer_dir(layer)).join(KUSTOMIZATION), &text)?;
    }
    Ok(())
}

fn kustomization(header: &str, key: &str, entries: &[String]) -> String {
    let mut text =
        format!("{header}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n{key}:");
    if entries.is_empty() {
        text.push_str(" []\n");
    } else {
        text.push('\n');
        for entry in entries {
            text.push_str(&format!("  - {entry}\n"));
        }
    }
    text
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
