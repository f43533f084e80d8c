//! `medallion serve` as a background process on a free port: the test
//! reads the address it prints, talks HTTP to it, and reads its log.

use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Lakehouse;
use super::announced::{Announced, start_announced};

pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Lakehouse {
    /// `medallion <global> serve --listen 127.0.0.1:0 <serve_args>`, up.
    pub fn serve(&self, global: &[&str], serve_args: &[&str]) -> Served {
        let mut args = global.to_vec();
        args.extend(["serve", "--listen", "127.0.0.1:0"]);
        args.extend(serve_args);
        let mut command = self.command(&args);
        command.env("RUST_LOG", "warn,medallion_engine=info");
        let Announced { child, url, log } = start_announced(command, "listening on ", |_| {});
        Served { child, url, log }
    }
}

impl Served {
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process as the kernel's OOM killer or a node loss would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SIGTERM first: the server's own shutdown path.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
    }
}
