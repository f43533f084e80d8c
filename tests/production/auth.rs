use crate::backend::Backend;
use crate::support::Lakehouse;

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
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{stderr}"));
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
