//! `--log-format json`: one JSON object per line on stderr, each carrying
//! the command's trace id (also in the run report), a job's lines its job
//! id, name and table, a commit's line its snapshot id.

use serde_json::Value;

use crate::support::Lakehouse;

/// The fields of the spans a JSON log line is in, outermost first.
fn span_field<'a>(line: &'a Value, field: &str) -> Option<&'a str> {
    line["spans"]
        .as_array()?
        .iter()
        .find_map(|span| span[field].as_str())
}

#[test]
fn json_logs_parse_line_by_line_and_carry_the_trace_id_job_id_table_and_snapshot_id() {
    let lakehouse = Lakehouse::new();
    let out = lakehouse
        .command(&[
            "demo",
            "--scale",
            "0.01",
            "--job-id",
            "json-1",
            "--json",
            "--log-format",
            "json",
        ])
        // The default filter: the spans must pass it as the lines do.
        .env(
            "RUST_LOG",
            "warn,medallion_engine=info,medallion_catalog=info",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let trace_id = report["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32, "{trace_id}");

    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() > 7, "{stderr}");
    for line in &lines {
        assert_eq!(span_field(line, "trace_id"), Some(trace_id), "{line}");
    }
    let committed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "committed")
        .collect();
    assert_eq!(committed.len(), 7, "{stderr}");
    for line in committed {
        assert_eq!(span_field(line, "job_id"), Some("json-1"), "{line}");
        let table = span_field(line, "table").unwrap();
        let job = report["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["table"] == table)
            .unwrap();
        assert_eq!(line["snapshot_id"], job["snapshot_id"], "{line}");
        assert_eq!(span_field(line, "job"), job["job"].as_str());
    }
}

#[test]
fn a_failed_command_ends_with_its_error_as_a_json_line() {
    let lakehouse = Lakehouse::new();
    let out = lakehouse
        .command(&["run", "no/such/pipeline", "--log-format", "json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("no such pipeline folder"),
        "{stderr}"
    );
}
