//! The Prometheus text exposition format (0.0.4), what the Pushgateway,
//! node-exporter's textfile collector and a `/metrics` scrape all read.
//! Written by hand: batch runs set counters and gauges only, and the
//! OpenMetrics text that `prometheus-client` writes (a counter's TYPE line
//! without `_total`, `# EOF`) is read by the Pushgateway 1.5 as untyped.

use std::fmt::Write;

use super::registry::{Family, Registry};

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

fn render_families(families: &[Family], keep: impl Fn(&super::registry::Labels) -> bool) -> String {
    let mut out = String::new();
    for family in families {
        let series: Vec<_> = family.series.iter().filter(|(l, _)| keep(l)).collect();
        if series.is_empty() {
            continue;
        }
        let metric = family.metric;
        let _ = writeln!(out, "# HELP {} {}", metric.name, escape_help(metric.help));
        let _ = writeln!(out, "# TYPE {} {}", metric.name, metric.kind.as_str());
        for (labels, value) in series {
            let labels: Vec<String> = labels
                .iter()
                .map(|(name, value)| format!("{name}=\"{}\"", escape_value(value)))
                .collect();
            let _ = writeln!(
                out,
                "{}{{{}}} {}",
                metric.name,
                labels.join(","),
                number(*value)
            );
        }
    }
    out
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
    use super::super::names::{DQ_REJECTED, ROWS_WRITTEN};
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
}
