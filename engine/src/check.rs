//! `medallion check`: tries the configuration step by step (catalog,
//! credentials, storage) and says which step fails and why.

use std::time::Instant;

use anyhow::{Context, Result};
use medallion_catalog::{Lakehouse, LakehouseConfig, ObjectStores};
use object_store::{ObjectStoreExt, PutPayload};

use crate::config::Config;

pub struct Step {
    pub name: &'static str,
    pub outcome: Result<String>,
    pub millis: u128,
}

async fn step<F, T>(name: &'static str, work: F) -> (Step, Option<T>)
where
    F: Future<Output = Result<(String, T)>>,
{
    let started = Instant::now();
    let result = work.await;
    let millis = started.elapsed().as_millis();
    match result {
        Ok((message, value)) => (
            Step {
                name,
                outcome: Ok(message),
                millis,
            },
            Some(value),
        ),
        Err(e) => (
            Step {
                name,
                outcome: Err(e),
                millis,
            },
            None,
        ),
    }
}

/// Runs every step that can run; a step whose prerequisite failed is left out.
pub async fn check(config: &Config) -> Vec<Step> {
    let stores = ObjectStores::new(config.s3.clone());
    let mut steps = Vec::new();

    let (connected, lakehouse) = step("catalog", async {
        let lakehouse = Lakehouse::connect(&config.catalog, stores.clone()).await?;
        let described = match &config.catalog {
            LakehouseConfig::Rest(settings) => format!(
                "{} answers (warehouse {})",
                lakehouse.description(),
                settings.warehouse.as_deref().unwrap_or("-")
            ),
            LakehouseConfig::Sqlite { .. } => format!("{} opens", lakehouse.description()),
        };
        Ok((described, lakehouse))
    })
    .await;
    steps.push(connected);

    if let Some(lakehouse) = lakehouse {
        // Listing needs an authenticated request: the token is obtained here.
        let (listed, _) = step("credentials", async {
            let tables = lakehouse.list_tables().await?;
            Ok((
                format!("authenticated; {} tables visible", tables.len()),
                (),
            ))
        })
        .await;
        steps.push(listed);
    }

    let (storage, _) = step("raw storage", async {
        let probe = format!("{}/_medallion_check/{}", config.raw_root, unique_suffix());
        let (store, path) = stores.resolve(&probe)?;
        store
            .put(&path, PutPayload::from_static(b"medallion check"))
            .await
            .with_context(|| format!("cannot write {probe}"))?;
        let read = store
            .get(&path)
            .await
            .with_context(|| format!("cannot read {probe}"))?;
        read.bytes()
            .await
            .with_context(|| format!("cannot read {probe}"))?;
        store
            .delete(&path)
            .await
            .with_context(|| format!("cannot delete {probe}"))?;
        Ok((format!("{} is readable and writable", config.raw_root), ()))
    })
    .await;
    steps.push(storage);
    steps
}

fn unique_suffix() -> String {
    format!(
        "{:x}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}
