//! The tables a query reads, loaded from the catalog only when DataFusion
//! plans a reference to them. A query on `silver.orders` loads that table
//! alone: a table the catalog refuses to this client, or hundreds of others,
//! cost it nothing. Only `information_schema` and `SHOW TABLES` list the
//! catalog, and only their column listings load every table.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::TableReference;
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableIdent};
use medallion_catalog::Lakehouse;

use crate::tables::table_provider;

const INFORMATION_SCHEMA: &str = "information_schema";

/// Which snapshot of each table a query reads (time travel).
#[derive(Debug, Default, Clone)]
pub struct AsOf {
    /// Exact snapshots by table name.
    pub snapshots: HashMap<String, i64>,
    /// Every other table as it was at this moment (milliseconds since the epoch).
    pub timestamp_ms: Option<i64>,
}

impl AsOf {
    /// The snapshot of `table` to read: `None` for its current one, or
    /// `Err(())` when the table did not exist yet at the moment asked for.
    fn snapshot_of(&self, table: &Table) -> Result<Option<i64>, ()> {
        match (
            self.snapshots.get(&table.identifier().to_string()),
            self.timestamp_ms,
        ) {
            (Some(id), _) => Ok(Some(*id)),
            (None, Some(at)) => table
                .metadata()
                .history()
                .iter()
                .filter(|entry| entry.timestamp_ms <= at)
                .max_by_key(|entry| entry.timestamp_ms)
                .map(|entry| Some(entry.snapshot_id))
                .ok_or(()),
            (None, None) => Ok(None),
        }
    }
}

/// Registers, as schemas of the session's default catalog, the namespaces
/// that `sql` names, each loading its tables on first reference.
pub async fn register_query_tables(
    ctx: &SessionContext,
    lakehouse: &Lakehouse,
    sql: &str,
    as_of: &AsOf,
) -> Result<()> {
    // The tables asked for at a snapshot are checked even when the query
    // does not name them: a typo there would otherwise go unnoticed.
    for (name, id) in &as_of.snapshots {
        let ident = medallion_catalog::table_ident(name)?;
        let Some(table) = lakehouse.try_load_table(&ident).await? else {
            anyhow::bail!("there is no table {name} to read as of a snapshot");
        };
        if table.metadata().snapshot_by_id(*id).is_none() {
            anyhow::bail!(
                "table {ident} has no snapshot {id}; `medallion history {ident}` lists them"
            );
        }
    }
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    // A statement that does not parse is left to the planner to explain.
    let Ok(statement) = state.sql_to_statement(sql, &dialect) else {
        return Ok(());
    };
    let Ok(references) = state.resolve_table_references(&statement) else {
        return Ok(());
    };
    let as_of = Arc::new(as_of.clone());
    for (namespace, names) in namespaces(lakehouse, &references).await? {
        let schema = NamespaceTables {
            lakehouse: lakehouse.clone(),
            namespace: NamespaceIdent::from_strs(namespace.split('.'))
                .with_context(|| format!("bad namespace {namespace}"))?,
            names,
            as_of: as_of.clone(),
            loaded: Mutex::default(),
        };
        ctx.catalog("datafusion")
            .context("the default DataFusion catalog is missing")?
            .register_schema(&namespace, Arc::new(schema))
            .with_context(|| format!("cannot register schema {namespace}"))?;
    }
    Ok(())
}

/// The namespaces the references name, with the table names known in each:
/// those of the whole catalog when `information_schema` is asked about.
async fn namespaces(
    lakehouse: &Lakehouse,
    references: &[TableReference],
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut namespaces: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if references
        .iter()
        .any(|r| r.schema() == Some(INFORMATION_SCHEMA))
    {
        for ident in lakehouse.list_tables().await? {
            namespaces
                .entry(ident.namespace().join("."))
                .or_default()
                .push(ident.name().to_string());
        }
    }
    for reference in references {
        if let Some(schema) = reference.schema()
            && schema != INFORMATION_SCHEMA
            && reference.catalog().is_none_or(|c| c == "datafusion")
        {
            namespaces.entry(schema.to_string()).or_default();
        }
    }
    Ok(namespaces)
}

/// One namespace of the catalog as a DataFusion schema: a table is loaded
/// (metadata and manifests) when a query first names it.
#[derive(Debug)]
struct NamespaceTables {
    lakehouse: Lakehouse,
    namespace: NamespaceIdent,
    /// The tables known to be here, for `information_schema` (empty unless
    /// the query asked about it: nothing else needs the list).
    names: Vec<String>,
    as_of: Arc<AsOf>,
    loaded: Mutex<HashMap<String, Option<Arc<dyn TableProvider>>>>,
}

impl NamespaceTables {
    async fn load(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let ident = TableIdent::new(self.namespace.clone(), name.to_string());
        let Some(table) = self.lakehouse.try_load_table(&ident).await? else {
            return Ok(None);
        };
        match self.as_of.snapshot_of(&table) {
            Ok(snapshot_id) => Ok(Some(table_provider(&table, snapshot_id).await?)),
            // The table did not exist yet at that moment.
            Err(()) => Ok(None),
        }
    }
}

#[async_trait]
impl SchemaProvider for NamespaceTables {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.names.clone()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        if let Some(provider) = self.loaded.lock().expect("loaded tables lock").get(name) {
            return Ok(provider.clone());
        }
        let provider = self
            .load(name)
            .await
            .map_err(|e| DataFusionError::External(e.into()))?;
        self.loaded
            .lock()
            .expect("loaded tables lock")
            .insert(name.to_string(), provider.clone());
        Ok(provider)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}
