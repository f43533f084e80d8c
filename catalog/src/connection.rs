use std::collections::HashMap;
use std::sync::Arc;

use iceberg::io::LocalFsStorageFactory;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, ErrorKind, NamespaceIdent, TableIdent};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};

use crate::error::{CatalogError, Context, Result};
use crate::transport::{CommitTransport, SqlCommitTransport};
use crate::write::{TableWrite, WriteMode};

/// Where the tables live and who keeps their pointers.
#[derive(Debug, Clone)]
pub enum LakehouseConfig {
    /// An Iceberg SQL catalog in a SQLite file, with tables in a local folder.
    /// PyIceberg's `SqlCatalog` opens the same file under the same name.
    Sqlite {
        /// The catalog name stored in every row (PyIceberg: `SqlCatalog(name, ...)`).
        name: String,
        /// Path of the SQLite database file; created when missing.
        database: std::path::PathBuf,
        /// Root folder of the table data and metadata.
        warehouse: std::path::PathBuf,
    },
}

/// A connected catalog: reads go through iceberg-rust's `Catalog`, commits
/// through medallion's [`CommitTransport`].
#[derive(Clone)]
pub struct Lakehouse {
    catalog: Arc<dyn Catalog>,
    transport: Arc<dyn CommitTransport>,
    description: String,
}

impl std::fmt::Debug for Lakehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lakehouse")
            .field("catalog", &self.description)
            .finish()
    }
}

impl Lakehouse {
    pub async fn connect(config: &LakehouseConfig) -> Result<Self> {
        match config {
            LakehouseConfig::Sqlite {
                name,
                database,
                warehouse,
            } => {
                std::fs::create_dir_all(warehouse).map_err(|e| {
                    CatalogError::Config(format!(
                        "cannot create the warehouse folder {}: {e}",
                        warehouse.display()
                    ))
                })?;
                if let Some(parent) = database.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        CatalogError::Config(format!(
                            "cannot create the catalog folder {}: {e}",
                            parent.display()
                        ))
                    })?;
                }
                let database = std::path::absolute(database).map_err(|e| {
                    CatalogError::Config(format!("bad catalog path {}: {e}", database.display()))
                })?;
                let warehouse = std::path::absolute(warehouse).map_err(|e| {
                    CatalogError::Config(format!("bad warehouse path {}: {e}", warehouse.display()))
                })?;
                let uri = format!("sqlite://{}?mode=rwc", database.display());
                let transport = SqlCommitTransport::connect(name, &uri).await?;
                let catalog = SqlCatalogBuilder::default()
                    .with_storage_factory(Arc::new(LocalFsStorageFactory))
                    .sql_bind_style(SqlBindStyle::QMark)
                    .load(
                        name,
                        HashMap::from([
                            ("uri".to_string(), uri),
                            (
                                "warehouse".to_string(),
                                format!("file://{}", warehouse.display()),
                            ),
                        ]),
                    )
                    .await
                    .context(|| format!("cannot open the SQLite catalog {}", database.display()))?;
                Ok(Self {
                    catalog: Arc::new(catalog),
                    transport: Arc::new(transport),
                    description: format!("sqlite catalog {}", database.display()),
                })
            }
        }
    }

    /// Short human description of the catalog, for logs and reports.
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub(crate) fn transport(&self) -> &Arc<dyn CommitTransport> {
        &self.transport
    }

    /// Loads the current state of a table from the catalog.
    pub async fn load_table(&self, ident: &TableIdent) -> Result<Table> {
        match self.catalog.load_table(ident).await {
            Ok(table) => Ok(table),
            Err(e) if e.kind() == ErrorKind::TableNotFound => Err(CatalogError::TableNotFound {
                table: ident.clone(),
            }),
            Err(e) => Err(e).context(|| format!("cannot load table {ident}")),
        }
    }

    /// Loads a table, or `None` when it does not exist (yet).
    pub async fn try_load_table(&self, ident: &TableIdent) -> Result<Option<Table>> {
        match self.load_table(ident).await {
            Ok(table) => Ok(Some(table)),
            Err(CatalogError::TableNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every table of every namespace, sorted.
    pub async fn list_tables(&self) -> Result<Vec<TableIdent>> {
        let namespaces = self
            .catalog
            .list_namespaces(None)
            .await
            .context(|| format!("cannot list namespaces of the {}", self.description))?;
        let mut tables = Vec::new();
        for namespace in namespaces {
            tables.extend(
                self.catalog
                    .list_tables(&namespace)
                    .await
                    .context(|| format!("cannot list tables of namespace {namespace:?}"))?,
            );
        }
        tables.sort_by_key(|t| t.to_string());
        Ok(tables)
    }

    pub(crate) async fn ensure_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        let exists = self
            .catalog
            .namespace_exists(namespace)
            .await
            .context(|| format!("cannot look up namespace {}", namespace.join(".")))?;
        if !exists {
            match self
                .catalog
                .create_namespace(namespace, HashMap::new())
                .await
            {
                Ok(_) => {}
                // Another writer created it first: that is what we wanted.
                Err(e) if e.kind() == ErrorKind::NamespaceAlreadyExists => {}
                Err(e) => {
                    return Err(e)
                        .context(|| format!("cannot create namespace {}", namespace.join(".")));
                }
            }
        }
        Ok(())
    }

    /// Starts a write to `table` (created on first write).
    pub fn write(&self, table: TableIdent, mode: WriteMode) -> TableWrite {
        TableWrite::new(self.clone(), table, mode)
    }
}
