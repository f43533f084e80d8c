//! `serve`: the upload API, with its authentication settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use medallion_jobs::{Pipeline, reference_pipeline_dir};
use serde::Serialize;

use super::output::{Report, pretty};
use crate::config::Config;
use crate::engine::Engine;
use crate::serve::{Authenticator, ServeOptions, serve as run_server};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, env = "MEDALLION_SERVE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The OpenID Connect issuer whose JWTs are accepted, e.g.
    /// https://keycloak.example.com/realms/data; its JWKS is found by discovery.
    #[arg(long, env = "MEDALLION_OIDC_ISSUER", requires = "oidc_audience")]
    oidc_issuer: Option<String>,
    /// The audience (`aud`) a token must name: this API's client id or resource.
    #[arg(long, env = "MEDALLION_OIDC_AUDIENCE", requires = "oidc_issuer")]
    oidc_audience: Option<String>,
    /// Clock skew allowed when checking a token's expiry, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    oidc_clock_skew: std::time::Duration,
    /// Accept requests without a token. Only for a laptop: anyone who
    /// reaches the port can upload.
    #[arg(long, conflicts_with = "oidc_issuer")]
    no_auth: bool,
    /// Largest upload accepted, e.g. 512MiB or 5GiB; a larger one gets 413.
    #[arg(long, default_value = "5GiB", value_parser = upload_size)]
    max_upload_size: u64,
    /// The pipeline whose datasets/ declares what may be uploaded
    /// (default: the reference pipeline).
    #[arg(long, value_name = "DIR")]
    pipeline: Option<PathBuf>,
}

/// What the server did before it stopped.
#[derive(Debug, Serialize)]
pub struct Stopped {
    listened_on: String,
}

impl Report for Stopped {
    fn text(&self) -> String {
        format!("serve: stopped listening on {}\n", self.listened_on)
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

/// `--max-upload-size`, read as every size medallion takes (`--memory-limit`).
fn upload_size(text: &str) -> Result<u64, String> {
    crate::config::parse_size(text).map_err(|e| crate::errors::one_line(&e))
}

pub async fn serve(config: Config, args: ServeArgs) -> Result<Stopped> {
    let auth = match (&args.oidc_issuer, &args.oidc_audience, args.no_auth) {
        (Some(issuer), Some(audience), _) => {
            Some(Authenticator::discover(issuer, audience, args.oidc_clock_skew).await?)
        }
        (_, _, true) => {
            tracing::warn!("--no-auth: every request may upload; never expose this port");
            None
        }
        _ => bail!(
            "serve needs --oidc-issuer and --oidc-audience (MEDALLION_OIDC_ISSUER, MEDALLION_OIDC_AUDIENCE), or --no-auth on a laptop"
        ),
    };
    let dir = match &args.pipeline {
        Some(dir) => dir.clone(),
        None => reference_pipeline_dir(&config.lakehouse.join("pipelines").join("reference"))?,
    };
    let pipeline = Pipeline::load(&dir)?;
    if pipeline.datasets.is_empty() {
        bail!(
            "{} declares no datasets, so nothing could be uploaded; add datasets/<name>.yaml",
            dir.display()
        );
    }
    let engine = Engine::open(config).await?;
    let options = ServeOptions {
        listen: args.listen,
        auth,
        max_upload_bytes: args.max_upload_size,
    };
    let mut listened_on = String::new();
    run_server(engine, pipeline, options, |address| {
        listened_on = format!("http://{address}");
        // Scripts and tests wait for this line; with port 0 it says which.
        eprintln!("listening on {listened_on} (OpenAPI: {listened_on}/api/v1/openapi.json)");
    })
    .await?;
    Ok(Stopped { listened_on })
}
