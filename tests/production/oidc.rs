//! A real OpenID Connect server for the production tests: npm
//! `oidc-provider` (installed by `tests/run.sh` from `tests/oidc/`), run by
//! node on 127.0.0.1, issuing client-credentials tokens with a short life.
//! A test stops and restarts it as Kubernetes restarts a Keycloak pod.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CLIENT_ID: &str = "medallion-nightly";
pub const CLIENT_SECRET: &str = "oidc-client-secret-1337";
pub const CATALOG_ID: &str = "catalog";
pub const CATALOG_SECRET: &str = "oidc-catalog-secret-4242";

pub struct Oidc {
    dir: tempfile::TempDir,
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
        let modules = modules()?;
        let dir = tempfile::tempdir().unwrap();
        // ES modules resolve packages next to the script.
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/oidc/server.mjs"),
            dir.path().join("server.mjs"),
        )
        .unwrap();
        std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
        let mut oidc = Oidc {
            dir,
            port: port(port_offset),
            token_life,
            child: None,
        };
        oidc.resume();
        Some(oidc)
    }

    pub fn token_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn introspection_endpoint(&self) -> String {
        format!("{}/introspection", self.token_endpoint())
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
