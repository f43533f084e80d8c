use std::process::Command;

use crate::support::Lakehouse;

/// A catalog and S3 server to run against.
pub struct Backend {
    pub name: &'static str,
    pub catalog_uri: String,
    pub warehouse: String,
    pub client_id: String,
    pub client_secret: String,
    pub oauth2_server_uri: Option<String>,
    pub scope: Option<String>,
    pub s3_endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> String {
    var(name).unwrap_or_else(|| {
        panic!("{name} is not set: start the test servers first with `eval \"$(bash .ci/seaweedfs.sh start)\"`, or run `bash tests/run.sh`")
    })
}

impl Backend {
    /// SeaweedFS from `.ci/seaweedfs.sh`: its catalog's OAuth2 client is the S3 key pair.
    pub fn seaweedfs() -> Self {
        let access_key = required("MEDALLION_TEST_S3_ACCESS_KEY");
        let secret_key = required("MEDALLION_TEST_S3_SECRET_KEY");
        Self {
            name: "seaweedfs",
            catalog_uri: required("MEDALLION_TEST_ICEBERG_URI"),
            warehouse: required("MEDALLION_TEST_ICEBERG_WAREHOUSE"),
            client_id: access_key.clone(),
            client_secret: secret_key.clone(),
            oauth2_server_uri: None,
            scope: None,
            s3_endpoint: required("MEDALLION_TEST_S3_ENDPOINT"),
            access_key,
            secret_key,
            region: var("MEDALLION_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
        }
    }

    /// A Lakekeeper (with its S3 and, optionally, Keycloak), when configured:
    /// MEDALLION_TEST_LAKEKEEPER_URI (e.g. http://127.0.0.1:8181/catalog),
    /// _WAREHOUSE, _CLIENT_ID, _CLIENT_SECRET, _OAUTH2_SERVER_URI, _SCOPE,
    /// _S3_ENDPOINT, _S3_ACCESS_KEY, _S3_SECRET_KEY.
    pub fn lakekeeper() -> Option<Self> {
        let Some(catalog_uri) = var("MEDALLION_TEST_LAKEKEEPER_URI") else {
            eprintln!(
                "skipped: MEDALLION_TEST_LAKEKEEPER_URI is not set, so nothing runs against Lakekeeper"
            );
            return None;
        };
        let get = |suffix: &str| required(&format!("MEDALLION_TEST_LAKEKEEPER_{suffix}"));
        Some(Self {
            name: "lakekeeper",
            catalog_uri,
            warehouse: get("WAREHOUSE"),
            client_id: get("CLIENT_ID"),
            client_secret: get("CLIENT_SECRET"),
            oauth2_server_uri: var("MEDALLION_TEST_LAKEKEEPER_OAUTH2_SERVER_URI"),
            scope: var("MEDALLION_TEST_LAKEKEEPER_SCOPE"),
            s3_endpoint: get("S3_ENDPOINT"),
            access_key: get("S3_ACCESS_KEY"),
            secret_key: get("S3_SECRET_KEY"),
            region: var("MEDALLION_TEST_LAKEKEEPER_S3_REGION")
                .unwrap_or_else(|| "us-east-1".into()),
        })
    }

    /// Environment for medallion and PyIceberg: S3 keys the standard way.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), self.region.clone()),
            (
                "MEDALLION_CATALOG_CREDENTIAL".into(),
                format!("{}:{}", self.client_id, self.client_secret),
            ),
            (
                "MEDALLION_TEST_ICEBERG_URI".into(),
                self.catalog_uri.clone(),
            ),
            (
                "MEDALLION_TEST_ICEBERG_WAREHOUSE".into(),
                self.warehouse.clone(),
            ),
            (
                "MEDALLION_TEST_S3_ENDPOINT".into(),
                self.s3_endpoint.clone(),
            ),
            (
                "MEDALLION_TEST_S3_ACCESS_KEY".into(),
                self.access_key.clone(),
            ),
            (
                "MEDALLION_TEST_S3_SECRET_KEY".into(),
                self.secret_key.clone(),
            ),
            ("MEDALLION_TEST_S3_REGION".into(), self.region.clone()),
        ]
    }

    /// Flags selecting this backend, with `catalog_uri` in place of the
    /// real one (to go through a proxy) and raw data under a fresh prefix.
    pub fn args(&self, catalog_uri: &str, raw_prefix: &str) -> Vec<String> {
        self.args_via(catalog_uri, &self.s3_endpoint, raw_prefix)
    }

    /// As [`Self::args`], with S3 reached through `s3_endpoint` (a proxy).
    pub fn args_via(&self, catalog_uri: &str, s3_endpoint: &str, raw_prefix: &str) -> Vec<String> {
        let mut args = vec![
            "--raw".to_string(),
            format!("s3://raw/{raw_prefix}"),
            "--s3-endpoint".into(),
            s3_endpoint.to_string(),
            "--catalog-uri".into(),
            catalog_uri.to_string(),
            "--catalog-warehouse".into(),
            self.warehouse.clone(),
        ];
        if let Some(uri) = &self.oauth2_server_uri {
            args.extend(["--catalog-oauth2-server-uri".into(), uri.clone()]);
        }
        if let Some(scope) = &self.scope {
            args.extend(["--catalog-scope".into(), scope.clone()]);
        }
        args
    }

    /// A fresh local folder, raw data under a fresh S3 prefix, and a catalog
    /// emptied of tables (the reference pipeline's names are fixed).
    pub fn lakehouse(&self) -> Lakehouse {
        self.lakehouse_via(&self.catalog_uri.clone())
    }

    pub fn lakehouse_via(&self, catalog_uri: &str) -> Lakehouse {
        self.drop_all_tables();
        Lakehouse::with(self.args(catalog_uri, &Self::raw_prefix()), self.env())
    }

    /// Raw data of this test process, under its own S3 prefix.
    pub fn raw_prefix() -> String {
        format!("test-{}", std::process::id())
    }

    pub fn drop_all_tables(&self) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/interop/read_tables.py"
        );
        let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .args([script, "rest", "--drop-all"])
            .envs(self.env())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "cannot empty the {} catalog: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
