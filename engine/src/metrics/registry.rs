//! The series of one process: each metric's value per label set, kept in
//! name and label order so the exposition is stable from run to run.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::names::{Kind, Metric};

/// Label names and values of one series, in the order the metric declares.
pub type Labels = Vec<(&'static str, String)>;

/// Every series set so far. A batch command fills one and publishes it at
/// its end; a long-running process keeps one and renders it on each scrape.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

/// One metric and its series: values of counters and gauges, or
/// histograms.
#[derive(Debug, Clone)]
pub struct Family {
    pub metric: &'static Metric,
    pub series: BTreeMap<Labels, f64>,
    pub histograms: BTreeMap<Labels, Histogram>,
}

/// Observations counted into a metric's buckets (not cumulative here; the
/// exposition adds them up).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// One count per bucket bound, then one for `+Inf`.
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl Histogram {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Registry {
    /// Adds `value` to a counter.
    pub fn add(&self, metric: &'static Metric, labels: &[(&'static str, &str)], value: f64) {
        debug_assert_eq!(metric.kind, Kind::Counter, "{} is a gauge", metric.name);
        self.update(metric, labels, |series| *series += value);
    }

    /// Sets a gauge.
    pub fn set(&self, metric: &'static Metric, labels: &[(&'static str, &str)], value: f64) {
        debug_assert_eq!(metric.kind, Kind::Gauge, "{} is a counter", metric.name);
        self.update(metric, labels, |series| *series = value);
    }

    /// Counts one observation into a histogram.
    pub fn observe(&self, metric: &'static Metric, labels: &[(&'static str, &str)], value: f64) {
        debug_assert_eq!(
            metric.kind,
            Kind::Histogram,
            "{} is no histogram",
            metric.name
        );
        let labels = checked(metric, labels);
        let mut families = self.lock();
        let histogram = families
            .entry(metric.name)
            .or_insert_with(|| Family::new(metric))
            .histograms
            .entry(labels)
            .or_insert_with(|| Histogram {
                counts: vec![0; metric.buckets.len() + 1],
                sum: 0.0,
            });
        let bucket = metric
            .buckets
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(metric.buckets.len());
        histogram.counts[bucket] += 1;
        histogram.sum += value;
    }

    /// A copy of every family, in name order.
    pub fn families(&self) -> Vec<Family> {
        self.lock().values().cloned().collect()
    }

    fn update(
        &self,
        metric: &'static Metric,
        labels: &[(&'static str, &str)],
        change: impl FnOnce(&mut f64),
    ) {
        let labels = checked(metric, labels);
        let mut families = self.lock();
        let family = families
            .entry(metric.name)
            .or_insert_with(|| Family::new(metric));
        change(family.series.entry(labels).or_insert(0.0));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Family>> {
        // A panic elsewhere while holding the lock leaves whole values.
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Family {
    fn new(metric: &'static Metric) -> Self {
        Self {
            metric,
            series: BTreeMap::new(),
            histograms: BTreeMap::new(),
        }
    }
}

/// The labels of a series, which must be the ones its metric declares, in
/// order: anything else would break the exposition's promise of one label
/// set per metric.
fn checked(metric: &'static Metric, labels: &[(&'static str, &str)]) -> Labels {
    assert!(
        labels.iter().map(|(name, _)| name).eq(metric.labels.iter()),
        "{} takes the labels {:?}",
        metric.name,
        metric.labels
    );
    labels.iter().map(|(k, v)| (*k, v.to_string())).collect()
}
