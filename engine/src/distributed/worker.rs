//! `medallion worker`: one process of a distributed cluster. It runs the
//! tasks coordinators send it, reading Iceberg data files straight from
//! storage with its own credentials (none travel in a plan), writing the
//! data files of the tables jobs write the same way, and within its own
//! bounded, spilling memory pool.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{DistributedExt, Worker, WorkerQueryContext};
use medallion_catalog::ObjectStores;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::codec::IcebergCodec;
use crate::config::Config;
use crate::metrics::Registry;
use crate::serve::stopped;
use crate::session::runtime;

/// Serves tasks on `listen` until SIGTERM or SIGINT; `listening` hears the
/// bound address (port 0 picks one).
pub async fn serve_worker(
    config: &Config,
    listen: SocketAddr,
    listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    let stores = ObjectStores::new(config.s3.clone());
    let (runtime, _pool) = runtime(config, stores.clone(), Arc::new(Registry::default()))?;
    let file_io = stores.file_io();
    let mut worker = Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let codec = IcebergCodec {
            file_io: file_io.clone(),
        };
        async move { Ok(ctx.builder.with_distributed_user_codec(codec).build()) }
    })
    .with_runtime_env(runtime);
    worker.add_on_plan_hook(|plan| {
        tracing::info!(nodes = %node_names(&plan), "running a task");
        plan
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}; is the port taken?"))?;
    listening(listener.local_addr()?);
    Server::builder()
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stopped())
        .await
        .context("the worker stopped serving")
}

/// The names of a task's plan nodes, root first: what an operator reads to
/// see which stage of which job a worker runs.
fn node_names(plan: &Arc<dyn ExecutionPlan>) -> String {
    let mut names = Vec::new();
    let mut pending = vec![plan.clone()];
    while let Some(node) = pending.pop() {
        names.push(node.name().to_string());
        pending.extend(node.children().into_iter().rev().cloned());
    }
    names.join(",")
}
