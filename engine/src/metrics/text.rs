//! The Prometheus text exposition format (0.0.4), what the Pushgateway,
//! node-exporter's textfile collector and a `/metrics` scrape all read.
//! Written by hand: batch runs set counters and gauges only, and the
//! OpenMetrics text that `prometheus-client` writes (a counter's TYPE line
//! without `_total`, `# EOF`) is read by the Pushgateway 1.5 as untyped.

use std::fmt::Write;

use super::names::Metric;
use super::registry::{Family, Histogram, Labels, Registry};

impl Registry {
    /// Every series, as a `/metrics` route or a `.prom` file serves them.
    pub fn render(&self) -> String {
        render_families(&self.families(), |_| true)
    }

    /// The series whose `job` label is `job`: one Pushgateway group.
    pub fn render_job(&self, job: &str) -> String {
        render_families(&self.families(), |labels| {
            labels
                .iter()
                .any(|(name, value)| *name == "job" && value == job)
        })
    }

    /// The values of the `job` label, each once, sorted.
    pub fn jobs(&self) -> Vec<String> {
        let mut jobs: Vec<String> = self
            .families()
            .iter()
            .flat_map(|family| family.series.keys())
            .flat_map(|labels| labels.iter())
            .filter(|(name, _)| *name == "job")
            .map(|(_, value)| value.clone())
            .collect();
        jobs.sort();
        jobs.dedup();
        jobs
    }
}

fn render_families(families: &[Family], keep: impl Fn(&Labels) -> bool) -> String {
    let mut out = String::new();
    for family in families {
        let series: Vec<_> = family.series.iter().filter(|(l, _)| keep(l)).collect();
        let histograms: Vec<_> = family.histograms.iter().filter(|(l, _)| keep(l)).collect();
        if series.is_empty() && histograms.is_empty() {
            continue;
        }
        let metric = family.metric;
        let _ = writeln!(out, "# HELP {} {}", metric.name, escape_help(metric.help));
        let _ = writeln!(out, "# TYPE {} {}", metric.name, metric.kind.as_str());
        for (labels, value) in series {
            line(&mut out, metric.name, &label_text(labels, None), *value);
        }
        for (labels, histogram) in histograms {
            render_histogram(&mut out, metric, labels, histogram);
        }
    }
    out
}

/// `_bucket` lines with cumulative counts up to `+Inf`, then `_sum` and `_count`.
fn render_histogram(out: &mut String, metric: &Metric, labels: &Labels, histogram: &Histogram) {
    let bounds = metric.buckets.iter().copied().chain([f64::INFINITY]);
    let mut cumulative = 0;
    for (bound, count) in bounds.zip(&histogram.counts) {
        cumulative += count;
        let name = format!("{}_bucket", metric.name);
        line(
            out,
            &name,
            &label_text(labels, Some(&number(bound))),
            cumulative as f64,
        );
    }
    let plain = label_text(labels, None);
    line(out, &format!("{}_sum", metric.name), &plain, histogram.sum);
    line(
        out,
        &format!("{}_count", metric.name),
        &plain,
        histogram.count() as f64,
    );
}

fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let pairs = labels.iter().map(|(name, value)| (*name, value.as_str()));
    let shown: Vec<String> = pairs
        .chain(le.map(|le| ("le", le)))
        .map(|(name, value)| format!("{name}=\"{}\"", escape_value(value)))
        .collect();
    if shown.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", shown.join(","))
    }
}

fn line(out: &mut String, name: &str, labels: &str, value: f64) {
    let _ = writeln!(out, "{name}{labels} {}", number(value));
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(text: &str) -> String {
    escape_help(text).replace('"', "\\\"")
}

/// Whole numbers without a fraction; the format's spellings of the rest.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::names::{DQ_REJECTED, HTTP_DURATION, ROWS_WRITTEN};
    use super::*;

    #[test]
    fn series_render_with_help_type_and_escaped_labels_grouped_by_job() {
        let registry = Registry::default();
        let labels = [("job", "a"), ("table", "bronze.x"), ("layer", "bronze")];
        registry.add(&ROWS_WRITTEN, &labels, 2.0);
        registry.add(&ROWS_WRITTEN, &labels, 3.0);
        registry.set(
            &DQ_REJECTED,
            &[("job", "b"), ("table", "q\"\\\n"), ("check", "c")],
            1.5,
        );
        assert_eq!(
            registry.render_job("a"),
            "# HELP medallion_rows_written_total Rows in the data files the job's snapshots added.\n\
             # TYPE medallion_rows_written_total counter\n\
             medallion_rows_written_total{job=\"a\",table=\"bronze.x\",layer=\"bronze\"} 5\n"
        );
        assert!(
            registry.render().contains(
                "medallion_dq_rejected_rows{job=\"b\",table=\"q\\\"\\\\\\n\",check=\"c\"} 1.5\n"
            ),
            "{}",
            registry.render()
        );
        assert_eq!(registry.jobs(), ["a", "b"]);
    }

    #[test]
    fn a_histogram_renders_cumulative_buckets_sum_and_count() {
        let registry = Registry::default();
        let labels = [("route", "/api/v1/health"), ("method", "GET")];
        // Binary fractions, so the sum is exact.
        for seconds in [0.00390625, 0.015625, 0.015625, 700.0] {
            registry.observe(&HTTP_DURATION, &labels, seconds);
        }
        let text = registry.render();
        let route = "route=\"/api/v1/health\",method=\"GET\"";
        for expected in [
            format!("medallion_http_request_duration_seconds_bucket{{{route},le=\"0.005\"}} 1\n"),
            format!("medallion_http_request_duration_seconds_bucket{{{route},le=\"0.025\"}} 3\n"),
            format!("medallion_http_request_duration_seconds_bucket{{{route},le=\"600\"}} 3\n"),
            format!("medallion_http_request_duration_seconds_bucket{{{route},le=\"+Inf\"}} 4\n"),
            format!("medallion_http_request_duration_seconds_sum{{{route}}} 700.03515625\n"),
            format!("medallion_http_request_duration_seconds_count{{{route}}} 4\n"),
        ] {
            assert!(text.contains(&expected), "{expected} not in\n{text}");
        }
        assert!(text.contains("# TYPE medallion_http_request_duration_seconds histogram\n"));
    }
}
