//! deploy/monitoring: the alert rules pass `promtool check rules`, each
//! alert's unit tests pass `promtool test rules` (fires on the failing
//! series, quiet on the healthy one), the `PrometheusRule` holds the same
//! groups, the kustomization builds, and rules and dashboard name only
//! metrics the README lists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use medallion_deploy::schema::check_object;
use serde_json::Value;

use crate::support::*;

fn monitoring() -> PathBuf {
    deploy_dir().join("monitoring")
}

/// The YAML files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Runs promtool; panics with what it said unless it passes.
fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e}; install it: apt-get install prometheus (.ci/run does)")
        });
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool {args:?} failed:\n{said}");
    said
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every alert name of a rules file's groups.
fn alerts(groups: &Value) -> BTreeSet<String> {
    groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["alert"].as_str().map(String::from))
        .collect()
}

#[test]
fn every_rule_file_passes_promtool_check_rules() {
    let files = yaml_files(&monitoring().join("rules"));
    assert!(!files.is_empty());
    for file in &files {
        promtool(&["check", "rules", file.to_str().unwrap()], &monitoring());
    }
    // The operator's copy too, as the plain file it holds.
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("prometheus-rule.rules.yaml");
    let rule = yaml(&monitoring().join("prometheus-rule.yaml"));
    std::fs::write(&spec, serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
    promtool(&["check", "rules", spec.to_str().unwrap()], dir.path());
}

#[test]
fn every_alert_has_unit_tests_that_fire_on_its_failing_series_and_stay_quiet_on_the_healthy_one() {
    let tests = monitoring().join("rules/tests");
    let mut tested = BTreeSet::new();
    for file in yaml_files(&tests) {
        let said = promtool(&["test", "rules", file.to_str().unwrap()], &tests);
        assert!(said.contains("SUCCESS"), "{said}");
        for test in yaml(&file)["tests"].as_array().unwrap() {
            for case in test["alert_rule_test"].as_array().unwrap() {
                // An empty list of alerts would test only the quiet side.
                assert!(
                    !case["exp_alerts"].as_array().unwrap().is_empty(),
                    "{}: a test that expects no alert",
                    test["name"]
                );
                tested.insert(case["alertname"].as_str().unwrap().to_string());
            }
        }
    }
    let rules = yaml(&monitoring().join("rules/medallion.rules.yaml"));
    assert_eq!(
        tested,
        alerts(&rules["groups"]),
        "alerts without a unit test, or tests of none"
    );
}

#[test]
fn the_prometheus_rule_holds_the_same_groups_as_the_rules_file() {
    let plain = yaml(&monitoring().join("rules/medallion.rules.yaml"));
    let rule = yaml(&monitoring().join("prometheus-rule.yaml"));
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert!(
        rule["spec"]["groups"] == plain["groups"],
        "prometheus-rule.yaml and rules/medallion.rules.yaml differ: copy the groups over"
    );
}

#[test]
fn the_monitoring_kustomization_builds_the_rules_the_scrapes_and_the_dashboard() {
    let built = documents(&kustomize(&monitoring()));
    let kinds: BTreeSet<&str> = built.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ConfigMap",
            "PodMonitor",
            "PrometheusRule",
            "ServiceMonitor"
        ])
    );
    for document in &built {
        assert_eq!(document["metadata"]["namespace"], "monitoring");
        match document["kind"].as_str().unwrap() {
            "ConfigMap" => {
                check_object(document).unwrap();
                assert_eq!(document["metadata"]["labels"]["grafana_dashboard"], "1");
                let dashboard: Value =
                    serde_json::from_str(document["data"]["medallion.json"].as_str().unwrap())
                        .unwrap();
                assert!(dashboard["panels"].as_array().unwrap().len() >= 6);
            }
            // Pushed series keep the job and instance they were pushed with.
            "ServiceMonitor" => {
                assert_eq!(document["spec"]["endpoints"][0]["honorLabels"], true)
            }
            "PodMonitor" => {
                assert_eq!(
                    document["spec"]["podMetricsEndpoints"][0]["path"],
                    "/metrics"
                )
            }
            _ => {}
        }
    }
}

/// The `medallion_*` names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (start, _) in text.match_indices("medallion_") {
        let name: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

#[test]
fn the_rules_and_the_dashboard_name_only_metrics_the_readme_lists() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Watching medallion\n")
        .nth(1)
        .expect("README.md has a `## Watching medallion` section");
    let section = section.split("\n## ").next().unwrap();
    let listed = metric_names(section);
    for file in ["rules/medallion.rules.yaml", "dashboards/medallion.json"] {
        let used = metric_names(&std::fs::read_to_string(monitoring().join(file)).unwrap());
        assert!(!used.is_empty(), "{file}");
        let unlisted: Vec<_> = used.difference(&listed).collect();
        assert!(
            unlisted.is_empty(),
            "{file} uses metrics the README does not list: {unlisted:?}"
        );
    }
}
