//! A `medallion` server in the background (`serve`, `worker`) that says on
//! stderr where it listens: started, its address read from that line, and
//! its log kept for the test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Announced {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, the first word after `announcement`.
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Starts `command` and waits up to a minute for its line `announcement
/// <url> ...`; every line of its stderr also goes to `on_line`.
pub fn start_announced(
    mut command: Command,
    announcement: &'static str,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> Announced {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("medallion starts");
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (address, announced) = mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(announcement) {
                let url = rest.split_whitespace().next().unwrap_or_default();
                let _ = address.send(url.to_string());
            }
            on_line(&line);
            sink.lock().unwrap().push(line);
        }
    });
    let url = announced
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "medallion did not say `{announcement}`; log:\n{}",
                log.lock().unwrap().join("\n")
            )
        });
    Announced { child, url, log }
}
