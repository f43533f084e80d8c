//! Job templates, one per layer. The defaults are compiled in from
//! `deploy/gitops/jobs/<layer>-layer/template.yaml` (each is the output of
//! `kubectl kustomize deploy/job/overlays/<layer>`); a GitOps repository's
//! own `jobs/<layer>-layer/template.yaml` takes their place on submit, so
//! resources and deadlines are tuned in Git, not in the binary. A new
//! repository gets the layer folders of the layout with these templates.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::batch::v1::Job;

use crate::layout;

const EMBEDDED: [(&str, &str); 3] = [
    (
        "bronze",
        include_str!("../gitops/jobs/bronze-layer/template.yaml"),
    ),
    (
        "silver",
        include_str!("../gitops/jobs/silver-layer/template.yaml"),
    ),
    (
        "gold",
        include_str!("../gitops/jobs/gold-layer/template.yaml"),
    ),
];

/// Templates by layer.
#[derive(Debug, Clone)]
pub struct Templates {
    by_layer: BTreeMap<String, (String, Job)>,
}

impl Templates {
    /// The templates compiled into the binary.
    pub fn embedded() -> Self {
        let by_layer = EMBEDDED
            .iter()
            .map(|(layer, text)| {
                let job = parse(text).expect("the embedded templates are tested to parse");
                (layer.to_string(), (text.to_string(), job))
            })
            .collect();
        Self { by_layer }
    }

    /// The embedded templates, replaced by those a GitOps checkout has.
    pub fn from_checkout(root: &Path) -> Result<Self> {
        let mut templates = Self::embedded();
        let jobs = root.join(layout::JOBS_DIR);
        let Ok(entries) = std::fs::read_dir(&jobs) else {
            return Ok(templates);
        };
        for entry in entries {
            let dir = entry?.path();
            let Some(layer) = layout::layer_of_dir(&dir) else {
                continue;
            };
            let path = dir.join(layout::TEMPLATE_FILE);
            if !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let job = parse(&text).with_context(|| {
                format!(
                    "{} is not a valid batch/v1 Job; fix it in the GitOps repository",
                    path.display()
                )
            })?;
            templates.by_layer.insert(layer, (text, job));
        }
        Ok(templates)
    }

    /// Writes what a new GitOps repository needs (or a layer it lacks): the
    /// layer folders with these templates, and the kustomizations.
    pub fn bootstrap(&self, root: &Path, layers: &[&str]) -> Result<()> {
        for layer in layout::LAYERS.iter().chain(layers) {
            let dir = root.join(layout::layer_dir(layer));
            let jobs = dir.join("jobs");
            if jobs.is_dir() {
                continue;
            }
            std::fs::create_dir_all(&jobs)
                .with_context(|| format!("cannot create {}", jobs.display()))?;
            // Git keeps no empty folders.
            std::fs::write(jobs.join(".gitkeep"), "")?;
            let template = dir.join(layout::TEMPLATE_FILE);
            if !template.exists()
                && let Some(text) = self.text(layer)
            {
                std::fs::write(&template, text)
                    .with_context(|| format!("cannot write {}", template.display()))?;
            }
        }
        layout::write_kustomizations(root)
    }

    pub fn job(&self, layer: &str) -> Result<&Job> {
        match self.by_layer.get(layer) {
            Some((_, job)) => Ok(job),
            None => bail!(
                "no Job template for layer `{layer}` (templates: {}); add jobs/{layer}-layer/{} to the GitOps repository",
                self.by_layer.keys().cloned().collect::<Vec<_>>().join(", "),
                layout::TEMPLATE_FILE
            ),
        }
    }

    /// The template file's text, as it is written into a new GitOps repository.
    pub fn text(&self, layer: &str) -> Option<&str> {
        self.by_layer.get(layer).map(|(text, _)| text.as_str())
    }
}

/// Parses a template into the typed Job: unknown fields and wrong types are
/// errors, so a template that is not a Job fails here, not in the cluster.
pub fn parse(text: &str) -> Result<Job> {
    let value: serde_json::Value = serde_yaml::from_str(text).context("not YAML")?;
    let kind = value.get("kind").and_then(|k| k.as_str());
    let api = value.get("apiVersion").and_then(|k| k.as_str());
    if kind != Some("Job") || api != Some("batch/v1") {
        bail!("expected apiVersion batch/v1, kind Job; found {api:?}, {kind:?}");
    }
    crate::schema::check_object(&value)?;
    Ok(serde_json::from_value(value)?)
}
