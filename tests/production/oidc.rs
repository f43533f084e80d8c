//! A real OpenID Connect server for the production tests: npm
//! `oidc-provider` (installed by `tests/run.sh` from `tests/oidc/`), run by
//! node on 127.0.0.1, issuing client-credentials tokens with a short life.
//! A test stops and restarts it as Kubernetes restarts a Keycloak pod.
//!
//! Tokens are opaque (checked by introspection) unless the request names a
//! `resource`: then they are RS256 JWTs for that audience, as the upload
//! API (`medallion serve`) takes them. Each start signs with a new key, so
//! a restart is also a key rotation.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CLIENT_ID: &str = "medallion-nightly";
pub const CLIENT_SECRET: &str = "oidc-client-secret-1337";
pub const CATALOG_ID: &str = "catalog";
pub const CATALOG_SECRET: &str = "oidc-catalog-secret-4242";
/// The client that uploads: it may ask for `upload:orders` and
/// `upload:customer`.
pub const UPLOADER_ID: &str = "medallion-uploader";
pub const UPLOADER_SECRET: &str = "oidc-uploader-secret-7070";
/// The upload API's resource indicator, and so the `aud` of its tokens.
pub const API_RESOURCE: &str = "urn:medallion:upload-api";
/// Another API the provider issues JWTs for: its tokens must not upload.
pub const OTHER_RESOURCE: &str = "urn:other:api";

pub struct Oidc {
    dir: tempfile::TempDir,
    /// Another server's signing key, to sign with instead of a new one.
    key_of: Option<PathBuf>,
    port: u16,
    token_life: Duration,
    child: Option<Child>,
}

/// The installed `node_modules`, or `None` (the test skips) without node.
fn modules() -> Option<PathBuf> {
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("skipped: node is not installed, so no OpenID Connect server can run");
        return None;
    }
    let modules = std::env::var_os("MEDALLION_TEST_OIDC_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/medallion/oidc/node_modules")
        });
    assert!(
        modules.join("oidc-provider").is_dir(),
        "oidc-provider is not installed in {}: run `bash tests/run.sh`, which installs it from tests/oidc/",
        modules.display()
    );
    Some(modules)
}

/// `MEDALLION_TEST_OIDC_PORT` + `offset` when set (machines that hand out
/// ports), else one the system picks. The server restarts on the same port.
fn port(offset: u16) -> u16 {
    match std::env::var("MEDALLION_TEST_OIDC_PORT") {
        Ok(base) => base.parse::<u16>().expect("a port number") + offset,
        Err(_) => std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port(),
    }
}

impl Oidc {
    /// Starts the server, or `None` when node is absent.
    pub fn start(port_offset: u16, token_life: Duration) -> Option<Oidc> {
        let mut oidc = Self::start_stopped(port_offset, token_life)?;
        oidc.resume();
        Some(oidc)
    }

    /// Its folder and port, not started yet.
    fn start_stopped(port_offset: u16, token_life: Duration) -> Option<Oidc> {
        let modules = modules()?;
        let dir = tempfile::tempdir().unwrap();
        // ES modules resolve packages next to the script.
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/oidc/server.mjs"),
            dir.path().join("server.mjs"),
        )
        .unwrap();
        std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
        Some(Oidc {
            dir,
            key_of: None,
            port: port(port_offset),
            token_life,
            child: None,
        })
    }

    /// The `iss` of its tokens; discovery is under it.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A second server (another issuer) signing with `other`'s key: its
    /// tokens verify against `other`'s JWKS but name another `iss`.
    pub fn start_with_key_of(port_offset: u16, other: &Oidc) -> Option<Oidc> {
        let mut oidc = Self::start_stopped(port_offset, other.token_life)?;
        oidc.key_of = Some(other.key_file());
        oidc.resume();
        Some(oidc)
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("signing-key.json")
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer())
    }

    pub fn introspection_endpoint(&self) -> String {
        format!("{}/introspection", self.token_endpoint())
    }

    /// A JWT access token for `resource` (its `aud`) granting `scope`
    /// (space-separated), issued to the uploader client. Scopes the
    /// resource does not know are left out of the token, not refused.
    pub async fn jwt(&self, resource: &str, scope: &str) -> String {
        let response = reqwest::Client::new()
            .post(self.token_endpoint())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", UPLOADER_ID),
                ("client_secret", UPLOADER_SECRET),
                ("resource", resource),
                ("scope", scope),
            ])
            .send()
            .await
            .expect("the OpenID Connect server answers a token request");
        let status = response.status();
        let answer: serde_json::Value = response
            .json()
            .await
            .expect("the token endpoint answers JSON");
        assert!(
            status.is_success(),
            "the OpenID Connect server refused a token for {resource} with scope {scope:?}: {status} {answer}"
        );
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in the token response: {answer}"))
            .to_string()
    }

    /// Stops the server as a crash or a pod eviction would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port; returns once it listens.
    pub fn resume(&mut self) {
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(self.dir.path())
            .env("OIDC_PORT", self.port.to_string())
            .env("OIDC_TOKEN_TTL", self.token_life.as_secs().to_string())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_CATALOG_ID", CATALOG_ID)
            .env("OIDC_CATALOG_SECRET", CATALOG_SECRET)
            .env("OIDC_UPLOADER_ID", UPLOADER_ID)
            .env("OIDC_UPLOADER_SECRET", UPLOADER_SECRET)
            .env("OIDC_API_RESOURCE", API_RESOURCE)
            .env("OIDC_OTHER_RESOURCE", OTHER_RESOURCE)
            .env("OIDC_KEY_OUT", self.key_file())
            .envs(self.key_of.iter().map(|file| ("OIDC_KEY_IN", file)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let listening = stdout
            .lines()
            .map_while(|l| l.ok())
            .any(|l| l.starts_with("listening"));
        assert!(
            listening,
            "the OpenID Connect server did not start on port {}",
            self.port
        );
        self.child = Some(child);
    }
}

impl Drop for Oidc {
    fn drop(&mut self) {
        self.stop();
    }
}
