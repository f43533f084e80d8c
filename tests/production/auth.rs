use crate::backend::Backend;
use crate::support::{Lakehouse, error_line};

#[test]
fn a_wrong_client_secret_is_a_clear_401_that_shows_no_secret() {
    let backend = Backend::seaweedfs();
    let wrong = "not-the-right-secret-4711";
    let mut env = backend.env();
    env.retain(|(k, _)| k != "MEDALLION_CATALOG_CREDENTIAL");
    env.push((
        "MEDALLION_CATALOG_CREDENTIAL".into(),
        format!("{}:{wrong}", backend.client_id),
    ));
    let lakehouse = Lakehouse::with(backend.args(&backend.catalog_uri, "unused"), env);
    let out = lakehouse.medallion(&["tables"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let error = error_line(&out);
    assert!(error.contains("401"), "{error}");
    assert!(
        error.contains(&format!("{}/v1/oauth/tokens", backend.catalog_uri)),
        "names the endpoint: {error}"
    );
    assert!(
        error.contains(&format!("client `{}`", backend.client_id)),
        "names the client: {error}"
    );
    assert!(!stderr.contains(wrong), "the secret leaked: {stderr}");
    let help = String::from_utf8_lossy(&lakehouse.medallion(&["--help"]).stdout).to_string();
    assert!(
        !help.contains(wrong),
        "--help shows the secret from the environment: {help}"
    );
}

fn env_with(backend: &Backend, key: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut env = backend.env();
    env.retain(|(k, _)| k != key);
    if let Some(value) = value {
        env.push((key.into(), value.into()));
    }
    env
}

#[test]
fn check_tries_each_step_and_names_the_one_that_fails() {
    let backend = Backend::seaweedfs();
    let args = backend.args(&backend.catalog_uri, "check");
    let good = Lakehouse::with(args.clone(), backend.env());
    let out = good.ok(&["check"]);
    let ok_lines = out.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok_lines, 3, "{out}");

    let wrong = "wrong-s3-secret-0815";
    let bad_s3 = Lakehouse::with(
        args,
        env_with(&backend, "AWS_SECRET_ACCESS_KEY", Some(wrong)),
    );
    let out = bad_s3.medallion(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stdout.contains("ok    credentials"), "{stdout}");
    let failure = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        failure.contains("raw storage") && failure.contains("s3://raw/check/"),
        "names the object: {failure}"
    );
    assert!(
        failure.contains("SignatureDoesNotMatch") && !failure.contains("<?xml"),
        "{failure}"
    );
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "the secret leaked"
    );
}

#[test]
fn a_refusal_by_the_catalog_names_the_action() {
    let backend = Backend::seaweedfs();
    let anonymous = Lakehouse::with(
        backend.args(&backend.catalog_uri, "unused"),
        env_with(&backend, "MEDALLION_CATALOG_CREDENTIAL", None),
    );
    let error = anonymous.fails(&["tables"]);
    assert!(
        error.contains("403") && error.contains("list namespaces"),
        "{error}"
    );
    assert!(!error.contains("=>"), "{error}");

    let lakehouse = Lakehouse::with(backend.args(&backend.catalog_uri, "unused"), backend.env());
    let error = lakehouse.fails(&["history", "bronze.no_such_table"]);
    assert!(
        error.contains("table bronze.no_such_table does not exist"),
        "{error}"
    );
}
