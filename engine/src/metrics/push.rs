//! Pushing a batch command's series to a Prometheus Pushgateway, the
//! Prometheus way for jobs that end before a scrape would reach them.
//!
//! One group per medallion job: `/metrics/job/<job>/instance/<instance>`.
//! The Pushgateway overwrites a pushed series' `job` label with the group's,
//! so the group is named by the same job the series carry, and `instance`
//! is the pipeline. POST, not PUT: a push replaces the metrics it sends and
//! keeps the others, so a failed run leaves the group's last
//! `medallion_last_success_timestamp_seconds` in place and the freshness
//! alert keeps counting from the last load.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use url::Url;

use super::registry::Registry;

/// A Pushgateway that does not answer within this long is given up on:
/// the data command is done and must not hang on its metrics.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Pushes every job's series to `base` (`http://pushgateway:9091`).
pub async fn push(registry: &Registry, base: &str, instance: &str) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(PUSH_TIMEOUT)
        .build()
        .context("cannot set up HTTP")?;
    for job in registry.jobs() {
        let url = group_url(base, &job, instance)?;
        let response = client
            .post(url)
            .header("content-type", "text/plain; version=0.0.4")
            .body(registry.render_job(&job))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.without_url()))
            .context("the Pushgateway did not answer")?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!(
                "the Pushgateway refused the metrics of job `{job}`: {status} {}",
                body.trim()
            );
        }
    }
    Ok(())
}

/// `<base>/metrics/job/<job>/instance/<instance>`, each part escaped.
fn group_url(base: &str, job: &str, instance: &str) -> Result<Url> {
    let mut url = Url::parse(base).with_context(|| {
        format!(
            "--metrics-push-url `{}` is not a URL; give the Pushgateway's, e.g. http://pushgateway:9091",
            medallion_catalog::redacted_uri(base)
        )
    })?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("--metrics-push-url must be an http:// or https:// URL"))?
        .pop_if_empty()
        .extend(["metrics", "job", job, "instance", instance]);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_url_names_the_job_and_instance_below_the_base_path() {
        let url = group_url("http://gw:9091/prefix/", "silver_orders", "my pipeline").unwrap();
        assert_eq!(
            url.as_str(),
            "http://gw:9091/prefix/metrics/job/silver_orders/instance/my%20pipeline"
        );
    }
}
