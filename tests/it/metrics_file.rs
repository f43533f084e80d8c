//! `--metrics-file`: the text exposition for node-exporter's textfile
//! collector passes Prometheus's own parser and linter, and no label holds
//! a value without bound (a job id, a path, a snapshot id, a trace id).

use crate::support::{Lakehouse, promtool_check_metrics};

/// Every label value of every sample line.
fn label_values(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| Some(line[line.find('{')? + 1..line.rfind('}')?].to_string()))
        .flat_map(|labels| {
            labels
                .split("\",")
                .map(|pair| {
                    pair.split_once("=\"")
                        .unwrap()
                        .1
                        .trim_end_matches('"')
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_metrics_file_passes_promtool_and_no_label_holds_a_job_id_a_path_or_a_snapshot_id() {
    let lakehouse = Lakehouse::new();
    let file = lakehouse.path().join("textfile/medallion.prom");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let report = lakehouse.report(&[
        "demo",
        "--scale",
        "0.01",
        "--job-id",
        "load-2026-12-01",
        "--metrics-file",
        file.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    let (passed, said) = promtool_check_metrics(&text);
    assert!(passed, "promtool check metrics:\n{said}\n{text}");
    // Nothing beside the file: the temporary one was renamed over it.
    let files: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
    assert_eq!(files.len(), 1);

    let mut unbounded = vec![
        "load-2026-12-01".to_string(),
        report["trace_id"].as_str().unwrap().to_string(),
    ];
    for job in report["jobs"].as_array().unwrap() {
        unbounded.push(job["snapshot_id"].to_string().trim_matches('"').to_string());
    }
    let values = label_values(&text);
    assert!(values.len() > 100, "{text}");
    for value in &values {
        assert!(
            !value.contains('/') && !unbounded.contains(value),
            "a label holds `{value}`:\n{text}"
        );
    }
}

#[test]
fn a_maintenance_command_records_its_run_its_writes_and_its_commit_under_its_name() {
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec(
        "one_row.yaml",
        "name: one_row\nsteps:\n  - sql: SELECT 1 AS x\ntarget: { table: bronze.one_row, mode: append }\n",
    );
    for job_id in ["a", "b"] {
        lakehouse.ok(&["run", spec.to_str().unwrap(), "--job-id", job_id]);
    }
    let file = lakehouse.path().join("medallion.prom");
    lakehouse.ok(&[
        "compact",
        "bronze.one_row",
        "--metrics-file",
        file.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    let labels = "job=\"compact\",table=\"bronze.one_row\",layer=\"bronze\"";
    for line in [
        format!("medallion_job_runs_total{{{labels},status=\"committed\"}} 1"),
        format!("medallion_rows_written_total{{{labels}}} 2"),
        format!("medallion_files_written_total{{{labels}}} 1"),
        format!("medallion_commit_attempts_total{{{labels},status=\"committed\"}} 1"),
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    // Compaction loads nothing: the table's freshness is its loads'.
    assert!(
        !text.contains("medallion_last_success_timestamp_seconds"),
        "{text}"
    );
}

#[test]
fn a_merge_on_read_counts_the_rows_it_deletes_by_position_and_says_so_in_its_summary() {
    let lakehouse = Lakehouse::new();
    let spec = |values: &str| {
        format!(
            "name: things\nsteps:\n  - sql: SELECT * FROM (VALUES {values}) AS t(k, v)\n\
             target: {{ table: silver.things, mode: merge, keys: [k], write_mode: merge-on-read }}\n"
        )
    };
    let first = lakehouse.spec("first.yaml", &spec("(1, 'a'), (2, 'b'), (3, 'c')"));
    lakehouse.ok(&["run", first.to_str().unwrap(), "--job-id", "one"]);
    let second = lakehouse.spec("second.yaml", &spec("(2, 'B'), (3, 'C'), (4, 'd')"));
    let file = lakehouse.path().join("medallion.prom");
    let summary = lakehouse.ok(&[
        "run",
        second.to_str().unwrap(),
        "--job-id",
        "two",
        "--metrics-file",
        file.to_str().unwrap(),
    ]);
    assert!(summary.contains("3 (2 deleted)"), "{summary}");
    let text = std::fs::read_to_string(&file).unwrap();
    let labels = "job=\"things\",table=\"silver.things\",layer=\"silver\"";
    for line in [
        format!("medallion_rows_written_total{{{labels}}} 3"),
        format!("medallion_rows_deleted_total{{{labels}}} 2"),
        format!("medallion_table_rows{{{labels}}} 4"),
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}
