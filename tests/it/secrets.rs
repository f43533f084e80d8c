//! Secrets never reach the output: a password in a catalog or S3 address,
//! and a secret YAML reads as something other than text, at every log level.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::support::Lakehouse;

const PASSWORD: &str = "pa55-in-the-uri-4711";
const LEVELS: [&str; 4] = ["warn", "info", "debug", "trace"];

/// A catalog (and OAuth2 token endpoint) that answers every request with
/// 401; returns its `host:port`.
fn refusing_catalog() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request);
            let body = r#"{"error":{"message":"no","type":"NotAuthorizedException","code":401}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    address
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command that fails, at log level `level`; returns all its output.
fn failing_output(lakehouse: &Lakehouse, args: &[&str], level: &str) -> String {
    let out = lakehouse
        .command(args)
        .env("RUST_LOG", level)
        .output()
        .expect("the medallion binary runs");
    assert!(!out.status.success(), "{args:?} should fail");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_hidden(output: &str, secret: &str, what: &str) {
    let leaked: Vec<&str> = output.lines().filter(|l| l.contains(secret)).collect();
    assert!(
        leaked.is_empty(),
        "{what}: the secret leaked in {leaked:#?}"
    );
}

#[test]
fn a_password_in_the_catalog_uri_is_never_shown_at_any_log_level() {
    let lakehouse = Lakehouse::new();
    let refusing = format!("http://client:{PASSWORD}@{}/catalog", refusing_catalog());
    for level in LEVELS {
        for command in [
            &["--catalog-uri", &refusing, "tables"][..],
            &["--catalog-uri", &refusing, "check"],
            &["--catalog-uri", &refusing, "sql", "SELECT 1"],
            // The token endpoint defaults to one below the catalog's address.
            &[
                "--catalog-uri",
                &refusing,
                "--catalog-credential",
                "id:x",
                "tables",
            ],
        ] {
            let output = failing_output(&lakehouse, command, level);
            assert_hidden(&output, PASSWORD, &format!("{level} {command:?}"));
            assert!(
                output.contains("http://client:<redacted>@127.0.0.1"),
                "{level} {command:?}: the address is still named: {output}"
            );
        }
    }
    // Unreachable: six attempts, each warned about, then the final error.
    let unreachable = format!(
        "http://client:{PASSWORD}@127.0.0.1:{}/catalog",
        closed_port()
    );
    let output = failing_output(
        &lakehouse,
        &["--catalog-uri", &unreachable, "check"],
        "trace",
    );
    assert_hidden(&output, PASSWORD, "an unreachable catalog");
    assert!(output.contains("after 6 attempts"), "{output}");
    // `-vv`, as an operator raises the level without RUST_LOG.
    let out = lakehouse
        .command(&["-vv", "--catalog-uri", &unreachable, "tables"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(output.contains("WARN"), "{output}");
    assert_hidden(&output, PASSWORD, "-vv tables");
}

#[test]
fn a_password_in_the_s3_endpoint_is_never_shown() {
    // Keys, so that the request is signed and sent.
    let keys = [("AWS_ACCESS_KEY_ID", "key"), ("AWS_SECRET_ACCESS_KEY", "x")];
    let env = keys.map(|(k, v)| (k.to_string(), v.to_string()));
    let lakehouse = Lakehouse::with(Vec::new(), env.to_vec());
    let endpoint = format!("http://key:{PASSWORD}@127.0.0.1:{}", closed_port());
    let output = failing_output(
        &lakehouse,
        &["--s3-endpoint", &endpoint, "--raw", "s3://raw", "check"],
        "trace",
    );
    assert_hidden(&output, PASSWORD, "check of an S3 raw root");
    assert!(
        output.contains("FAIL  raw storage") && output.contains("Error performing PUT"),
        "{output}"
    );
}

#[test]
fn a_secret_yaml_reads_as_a_number_or_a_list_is_never_shown() {
    let lakehouse = Lakehouse::new();
    let catalog = refusing_catalog();
    let token = "123456789012345";
    let config = lakehouse.path().join("medallion.yaml");
    let config_flag = ["--config", config.to_str().unwrap(), "tables"];
    // A number is taken as the text it is written as, and sent.
    std::fs::write(
        &config,
        format!("catalog:\n  type: rest\n  uri: http://{catalog}/catalog\n  token: {token}\n"),
    )
    .unwrap();
    for level in LEVELS {
        let output = failing_output(&lakehouse, &config_flag, level);
        assert_hidden(&output, token, level);
        assert!(
            output.contains("did not accept our credentials"),
            "{output}"
        );
    }
    // What is not text is refused, by key and line and never by value.
    for value in [format!("[{token}]"), format!("{{ value: {token} }}")] {
        std::fs::write(
            &config,
            format!("catalog:\n  type: rest\n  uri: http://{catalog}/catalog\n  token: {value}\n"),
        )
        .unwrap();
        let error = lakehouse.fails(&config_flag);
        assert_hidden(&error, token, &value);
        assert!(
            error.contains("medallion.yaml: line 4") && error.contains("catalog.token"),
            "{error}"
        );
    }
}

/// A job that needs no raw data: one row.
const ONE_ROW_JOB: &str = "name: one_row\nsteps:\n  - sql: SELECT 1 AS x\ntarget: { table: bronze.one_row, mode: append }\n";

#[test]
fn a_password_in_the_push_url_is_never_shown_in_json_logs_or_metrics_and_a_failed_push_only_warns()
{
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec("one_row.yaml", ONE_ROW_JOB);
    let file = lakehouse.path().join("medallion.prom");
    let push_url = format!("http://pusher:{PASSWORD}@127.0.0.1:{}/", closed_port());
    let out = lakehouse
        .command(&[
            "run",
            spec.to_str().unwrap(),
            "--metrics-push-url",
            &push_url,
            "--metrics-file",
            file.to_str().unwrap(),
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "a failed push failed the run: {output}"
    );
    assert!(
        output.contains("metrics not pushed to http://pusher:<redacted>@127.0.0.1"),
        "{output}"
    );
    assert_hidden(
        &output,
        PASSWORD,
        "a run pushing to an unreachable Pushgateway",
    );
    let metrics = std::fs::read_to_string(&file).unwrap();
    assert!(
        metrics.contains("medallion_rows_written_total{job=\"one_row\""),
        "{metrics}"
    );
    assert_hidden(&metrics, PASSWORD, "the metrics file");
}

#[test]
fn a_password_in_the_catalog_uri_is_never_shown_in_json_logs_or_the_failed_run_metrics() {
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec("one_row.yaml", ONE_ROW_JOB);
    let file = lakehouse.path().join("medallion.prom");
    let refusing = format!("http://client:{PASSWORD}@{}/catalog", refusing_catalog());
    let args = [
        "--catalog-uri",
        &refusing,
        "--log-format",
        "json",
        "--metrics-file",
        file.to_str().unwrap(),
        "run",
        spec.to_str().unwrap(),
    ];
    let output = failing_output(&lakehouse, &args, "trace");
    assert_hidden(&output, PASSWORD, "json logs of a refused run");
    for line in output.lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let metrics = std::fs::read_to_string(&file).unwrap();
    assert!(
        metrics.contains("medallion_job_runs_total{job=\"one_row\",table=\"bronze.one_row\",layer=\"bronze\",status=\"failed\"} 1"),
        "{metrics}"
    );
    assert_hidden(&metrics, PASSWORD, "the metrics of the refused run");
}
