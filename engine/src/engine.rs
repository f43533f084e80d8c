//! A connected engine: configuration, the catalog, storage and the shared
//! DataFusion runtime, opened once per command.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use medallion_catalog::{Lakehouse, ObjectStores};

use crate::config::Config;
use crate::session::{register_table, runtime, session};

/// Which snapshot of each table a query reads (time travel).
#[derive(Debug, Default, Clone)]
pub struct AsOf {
    /// Exact snapshots by table name.
    pub snapshots: HashMap<String, i64>,
    /// Every other table as it was at this moment (milliseconds since the epoch).
    pub timestamp_ms: Option<i64>,
}

/// A connected engine: configuration, catalog and the shared runtime.
pub struct Engine {
    pub config: Config,
    pub lakehouse: Lakehouse,
    pub stores: Arc<ObjectStores>,
    runtime: Arc<RuntimeEnv>,
}

impl Engine {
    pub async fn open(config: Config) -> Result<Self> {
        let stores = ObjectStores::new(config.s3.clone());
        let lakehouse = Lakehouse::connect(&config.catalog, stores.clone()).await?;
        let runtime = runtime(&config, stores.clone())?;
        Ok(Self {
            config,
            lakehouse,
            stores,
            runtime,
        })
    }

    pub fn session(&self) -> SessionContext {
        session(&self.config, &self.runtime)
    }

    /// A session with every table of the catalog registered by name, each
    /// at its current snapshot or as of the given point in time.
    pub async fn session_with_all_tables(&self, as_of: &AsOf) -> Result<SessionContext> {
        let ctx = self.session();
        let tables = self.lakehouse.list_tables().await?;
        if let Some(unknown) = as_of
            .snapshots
            .keys()
            .find(|name| !tables.iter().any(|t| &t.to_string() == *name))
        {
            anyhow::bail!("there is no table {unknown} to read as of a snapshot");
        }
        for ident in tables {
            let table = self.lakehouse.load_table(&ident).await?;
            let snapshot_id = match (as_of.snapshots.get(&ident.to_string()), as_of.timestamp_ms) {
                (Some(id), _) => Some(*id),
                (None, Some(at)) => {
                    // The snapshot current at that moment; a table that did not
                    // exist yet is left out.
                    let current_then = table
                        .metadata()
                        .history()
                        .iter()
                        .filter(|entry| entry.timestamp_ms <= at)
                        .max_by_key(|entry| entry.timestamp_ms)
                        .map(|entry| entry.snapshot_id);
                    match current_then {
                        Some(id) => Some(id),
                        None => continue,
                    }
                }
                (None, None) => None,
            };
            register_table(&ctx, &table, snapshot_id).await?;
        }
        Ok(ctx)
    }
}
