//! `Lakehouse`: a connection to an Iceberg catalog (an embedded SQLite SQL
//! catalog or a REST catalog) and the storage under its tables.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, ErrorKind, NamespaceIdent, TableIdent};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};

use std::path::PathBuf;

use crate::commit_observer::CommitObserver;
use crate::error::{CatalogError, Context, Result};
use crate::object_storage::{ObjectStoreStorageFactory, ObjectStores};
use crate::rest::{Authenticator, Backoff, RestCatalog, RestClient, RestSettings};
use crate::secret::redacted_uri;
use crate::transport::{CommitTransport, SqlCommitTransport};

/// Where the tables live and who keeps their pointers.
#[derive(Debug, Clone)]
pub enum LakehouseConfig {
    /// An Iceberg SQL catalog in a SQLite file. PyIceberg's `SqlCatalog`
    /// opens the same file under the same name.
    Sqlite {
        /// The catalog name stored in every row (PyIceberg: `SqlCatalog(name, ...)`).
        name: String,
        /// Path of the SQLite database file; created when missing.
        database: PathBuf,
        /// Root of the table data and metadata: `file:///...` or `s3://bucket/prefix`.
        warehouse: String,
    },
    /// An Iceberg REST catalog (Lakekeeper, Polaris, ...).
    Rest(RestSettings),
}

/// A connected catalog: reads go through iceberg-rust's `Catalog`, commits
/// through medallion's [`CommitTransport`].
#[derive(Clone)]
pub struct Lakehouse {
    catalog: Arc<dyn Catalog>,
    transport: Arc<dyn CommitTransport>,
    /// The storage under the tables, for listing it (orphan-file removal).
    stores: Arc<ObjectStores>,
    description: String,
    /// Told about every commit attempt (the engine's metrics), if anyone is.
    observer: Option<Arc<dyn CommitObserver>>,
}

impl std::fmt::Debug for Lakehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lakehouse")
            .field("catalog", &self.description)
            .finish()
    }
}

impl Lakehouse {
    /// Connects to the catalog; table files are read and written through `stores`.
    pub async fn connect(config: &LakehouseConfig, stores: Arc<ObjectStores>) -> Result<Self> {
        let storage = Arc::new(ObjectStoreStorageFactory::new(stores.clone()));
        match config {
            LakehouseConfig::Sqlite {
                name,
                database,
                warehouse,
            } => {
                if let Some(local) = warehouse.strip_prefix("file://") {
                    std::fs::create_dir_all(local).map_err(|source| CatalogError::Io {
                        context: format!("cannot create the warehouse folder {local}"),
                        source,
                    })?;
                }
                if let Some(parent) = database.parent() {
                    std::fs::create_dir_all(parent).map_err(|source| CatalogError::Io {
                        context: format!("cannot create the catalog folder {}", parent.display()),
                        source,
                    })?;
                }
                let database =
                    std::path::absolute(database).map_err(|source| CatalogError::Io {
                        context: format!("bad catalog path {}", database.display()),
                        source,
                    })?;
                let uri = format!("sqlite://{}?mode=rwc", database.display());
                let transport = SqlCommitTransport::connect(name, &uri).await?;
                let catalog = SqlCatalogBuilder::default()
                    .with_storage_factory(storage)
                    .sql_bind_style(SqlBindStyle::QMark)
                    .load(
                        name,
                        HashMap::from([
                            ("uri".to_string(), uri),
                            ("warehouse".to_string(), warehouse.clone()),
                        ]),
                    )
                    .await
                    .context(|| format!("cannot open the SQLite catalog {}", database.display()))?;
                Ok(Self {
                    catalog: Arc::new(catalog),
                    transport: Arc::new(transport),
                    stores,
                    description: format!("SQLite catalog {}", database.display()),
                    observer: None,
                })
            }
            LakehouseConfig::Rest(settings) => {
                let http = reqwest::Client::builder()
                    .user_agent(concat!("medallion/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|source| CatalogError::Http {
                        context: "cannot set up HTTP".into(),
                        source,
                    })?;
                // Token fetches retry as catalog requests do.
                let retry = Backoff::default();
                let auth =
                    Authenticator::new(settings.token_source()?, http.clone(), retry.clone());
                let client = RestClient::connect(
                    &settings.uri,
                    settings.warehouse.as_deref(),
                    &settings.headers,
                    auth,
                    http,
                    retry,
                )
                .await?;
                let rest =
                    RestCatalog::new(client, storage, stores.clone(), settings.vended_credentials);
                Ok(Self {
                    catalog: rest.clone(),
                    transport: rest,
                    stores,
                    description: format!("REST catalog {}", redacted_uri(&settings.uri)),
                    observer: None,
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

    /// Tells `observer` about every commit attempt made through this
    /// lakehouse (and its clones made afterwards).
    pub fn with_commit_observer(mut self, observer: Arc<dyn CommitObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub(crate) fn commit_observer(&self) -> Option<&Arc<dyn CommitObserver>> {
        self.observer.as_ref()
    }

    pub(crate) fn stores(&self) -> &Arc<ObjectStores> {
        &self.stores
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
        if !exists
            && let Err(e) = self
                .catalog
                .create_namespace(namespace, HashMap::new())
                .await
        {
            // Another writer may have created it first, which is what we
            // wanted; catalogs say so differently (SQLite: a unique-key error).
            let created_meanwhile = self
                .catalog
                .namespace_exists(namespace)
                .await
                .unwrap_or(false);
            if !created_meanwhile {
                return Err(e)
                    .context(|| format!("cannot create namespace {}", namespace.join(".")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl Lakehouse {
    /// An embedded SQLite lakehouse in a test's temporary folder.
    pub(crate) async fn in_test_folder(dir: &std::path::Path) -> Self {
        Self::connect(
            &LakehouseConfig::Sqlite {
                name: "test".into(),
                database: dir.join("catalog.db"),
                warehouse: format!("file://{}/warehouse", dir.display()),
            },
            ObjectStores::new(Default::default()),
        )
        .await
        .unwrap()
    }
}
