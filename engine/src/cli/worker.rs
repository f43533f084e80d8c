//! `worker`: one worker of a distributed cluster.

use std::net::SocketAddr;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::output::{Report, pretty};
use crate::config::Config;
use crate::distributed::serve_worker;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(
        long,
        env = "MEDALLION_WORKER_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    listen: SocketAddr,
}

/// Where the worker listened before it stopped.
#[derive(Debug, Serialize)]
pub struct Stopped {
    listened_on: String,
}

impl Report for Stopped {
    fn text(&self) -> String {
        format!("worker: stopped listening on {}\n", self.listened_on)
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

pub async fn worker(config: Config, args: WorkerArgs) -> Result<Stopped> {
    let mut listened_on = String::new();
    serve_worker(&config, args.listen, |address| {
        listened_on = format!("http://{address}");
        // Scripts and tests wait for this line; with port 0 it says which.
        eprintln!(
            "worker listening on {listened_on} (memory pool {} MiB)",
            config.memory_limit >> 20
        );
    })
    .await?;
    Ok(Stopped { listened_on })
}
