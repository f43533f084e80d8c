//! An Iceberg REST catalog client (Lakekeeper, Polaris, SeaweedFS, ...)
//! implementing iceberg-rust's `Catalog` for reads and table creation, and
//! medallion's `CommitTransport` for commits with an `Idempotency-Key`.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use iceberg::io::{FileIOBuilder, StorageFactory};
use iceberg::spec::FormatVersion;
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, Namespace, NamespaceIdent, Runtime, TableCommit, TableCreation,
    TableIdent, TableRequirement, TableUpdate,
};
use iceberg_catalog_rest::{
    CommitTableRequest, CreateNamespaceRequest, CreateTableRequest, ListNamespaceResponse,
    ListTablesResponse, LoadTableResult, NamespaceResponse,
};
use reqwest::Method;

use crate::credentials::Revend;
use crate::object_storage::ObjectStores;
use crate::rest::client::{Action, RestClient, RestFailure, encode};
use crate::transport::CommitTransport;

pub(crate) struct RestCatalog {
    client: RestClient,
    storage: Arc<dyn StorageFactory>,
    /// Where the credentials vended with each table are kept, for
    /// DataFusion's reads as much as for Iceberg's.
    stores: Arc<ObjectStores>,
    vended_credentials: bool,
    /// This catalog, for renewing a table's vended credentials later.
    me: Weak<RestCatalog>,
}

/// Renews a table's vended credentials with a new LoadTable.
#[derive(Debug)]
struct LoadTableAgain {
    catalog: Weak<RestCatalog>,
    table: TableIdent,
}

#[async_trait]
impl Revend for LoadTableAgain {
    async fn revend(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let catalog = self
            .catalog
            .upgrade()
            .ok_or("the catalog connection is closed")?;
        tracing::debug!(table = %self.table, "renewing vended credentials");
        catalog.load(&self.table).await?;
        Ok(())
    }
}

impl std::fmt::Debug for RestCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestCatalog")
            .field("uri", &self.client.shown_uri())
            .finish()
    }
}

fn namespace_path(namespace: &NamespaceIdent) -> String {
    // Multi-level namespaces are joined by the unit separator (0x1F).
    format!("namespaces/{}", encode(&namespace.join("\u{1f}")))
}

fn table_path(table: &TableIdent) -> String {
    format!(
        "{}/tables/{}",
        namespace_path(table.namespace()),
        encode(table.name())
    )
}

fn into_iceberg(failure: RestFailure, not_found: ErrorKind, conflict: ErrorKind) -> Error {
    match failure {
        RestFailure::NotFound(message) => Error::new(not_found, message),
        RestFailure::Conflict(message) => Error::new(conflict, message),
        RestFailure::Unknown(e) | RestFailure::Other(e) => {
            Error::new(ErrorKind::Unexpected, e.to_string())
        }
    }
}

fn unreadable_table(ident: TableIdent, source: reqwest::Error) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("the catalog sent an unreadable table {ident}"),
    )
    .with_source(source)
}

fn unexpected(failure: RestFailure) -> Error {
    into_iceberg(failure, ErrorKind::Unexpected, ErrorKind::Unexpected)
}

impl RestCatalog {
    pub fn new(
        client: RestClient,
        storage: Arc<dyn StorageFactory>,
        stores: Arc<ObjectStores>,
        vended_credentials: bool,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            client,
            storage,
            stores,
            vended_credentials,
            me: me.clone(),
        })
    }

    fn delegation_headers(&self) -> Vec<(&'static str, String)> {
        if self.vended_credentials {
            vec![(
                "X-Iceberg-Access-Delegation",
                "vended-credentials".to_string(),
            )]
        } else {
            Vec::new()
        }
    }

    /// A `Table` with a `FileIO` configured from the catalog's properties,
    /// the table's config, and the most specific vended storage credential,
    /// which from now on signs every request under the table's location.
    fn table(&self, ident: TableIdent, result: LoadTableResult) -> iceberg::Result<Table> {
        let mut props = self.client.properties.clone();
        props.extend(result.config);
        let location = result.metadata.location().to_string();
        let mut scope = location.clone();
        if let Some(credential) = result
            .storage_credentials
            .unwrap_or_default()
            .into_iter()
            .filter(|c| location.starts_with(&c.prefix))
            .max_by_key(|c| c.prefix.len())
        {
            props.extend(credential.config);
            scope = credential.prefix;
        }
        let revend: Arc<dyn Revend> = Arc::new(LoadTableAgain {
            catalog: self.me.clone(),
            table: ident.clone(),
        });
        self.stores
            .vend(&scope, &props, Some(revend))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("cannot use the storage credentials vended for {ident}"),
                )
                .with_source(e)
            })?;
        let file_io = FileIOBuilder::new(self.storage.clone())
            .with_props(props)
            .build();
        let mut builder = Table::builder()
            .identifier(ident)
            .metadata(result.metadata)
            .file_io(file_io)
            .runtime(Runtime::current());
        if let Some(location) = result.metadata_location {
            builder = builder.metadata_location(location);
        }
        builder.build()
    }

    async fn load(&self, ident: &TableIdent) -> iceberg::Result<Table> {
        let result: LoadTableResult = self
            .client
            .send(
                Method::GET,
                &self.client.endpoint(&table_path(ident)),
                &[],
                None::<&()>,
                &self.delegation_headers(),
                &Action::new("load table", ident.to_string()),
            )
            .await
            .map_err(|f| into_iceberg(f, ErrorKind::TableNotFound, ErrorKind::Unexpected))?
            .json()
            .await
            .map_err(|e| unreadable_table(ident.clone(), e))?;
        self.table(ident.clone(), result)
    }

    /// Every item of a paginated listing.
    async fn all_pages<Page: serde::de::DeserializeOwned, Item>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        action: Action,
        items: impl Fn(Page) -> (Vec<Item>, Option<String>),
    ) -> iceberg::Result<Vec<Item>> {
        let mut all = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut page_query = query.to_vec();
            if let Some(token) = &page_token {
                page_query.push(("pageToken", token));
            }
            let page: Page = self
                .client
                .json(
                    Method::GET,
                    &self.client.endpoint(path),
                    &page_query,
                    None::<&()>,
                    &action,
                )
                .await
                .map_err(|f| {
                    into_iceberg(f, ErrorKind::NamespaceNotFound, ErrorKind::Unexpected)
                })?;
            let (page_items, next) = items(page);
            all.extend(page_items);
            match next {
                Some(token) if !token.is_empty() => page_token = Some(token),
                _ => return Ok(all),
            }
        }
    }

    async fn exists(&self, path: String, what: Action) -> iceberg::Result<bool> {
        match self
            .client
            .send(
                Method::HEAD,
                &self.client.endpoint(&path),
                &[],
                None::<&()>,
                &[],
                &what,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(RestFailure::NotFound(_)) => Ok(false),
            Err(failure) => Err(unexpected(failure)),
        }
    }
}

#[async_trait]
impl Catalog for RestCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> iceberg::Result<Vec<NamespaceIdent>> {
        let parent = parent.map(|p| p.join("\u{1f}"));
        let query: Vec<(&str, &str)> = parent.iter().map(|p| ("parent", p.as_str())).collect();
        self.all_pages(
            "namespaces",
            &query,
            Action::new("list", "namespaces"),
            |page: ListNamespaceResponse| (page.namespaces, page.next_page_token),
        )
        .await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<Namespace> {
        let request = CreateNamespaceRequest {
            namespace: namespace.clone(),
            properties,
        };
        let response: NamespaceResponse = self
            .client
            .json(
                Method::POST,
                &self.client.endpoint("namespaces"),
                &[],
                Some(&request),
                &Action::new("create namespace", namespace.join(".")),
            )
            .await
            .map_err(|f| {
                into_iceberg(f, ErrorKind::Unexpected, ErrorKind::NamespaceAlreadyExists)
            })?;
        Ok(Namespace::from(response))
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<Namespace> {
        let response: NamespaceResponse = self
            .client
            .json(
                Method::GET,
                &self.client.endpoint(&namespace_path(namespace)),
                &[],
                None::<&()>,
                &Action::new("read namespace", namespace.join(".")),
            )
            .await
            .map_err(|f| into_iceberg(f, ErrorKind::NamespaceNotFound, ErrorKind::Unexpected))?;
        Ok(Namespace::from(response))
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        self.exists(
            namespace_path(namespace),
            Action::new("look up namespace", namespace.join(".")),
        )
        .await
    }

    async fn update_namespace(
        &self,
        _namespace: &NamespaceIdent,
        _properties: HashMap<String, String>,
    ) -> iceberg::Result<()> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            "medallion does not update namespace properties",
        ))
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        self.client
            .send(
                Method::DELETE,
                &self.client.endpoint(&namespace_path(namespace)),
                &[],
                None::<&()>,
                &[],
                &Action::new("drop namespace", namespace.join(".")),
            )
            .await
            .map_err(|f| into_iceberg(f, ErrorKind::NamespaceNotFound, ErrorKind::Unexpected))?;
        Ok(())
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        self.all_pages(
            &format!("{}/tables", namespace_path(namespace)),
            &[],
            Action::new("list tables of", namespace.join(".")),
            |page: ListTablesResponse| (page.identifiers, page.next_page_token),
        )
        .await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> iceberg::Result<Table> {
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        let mut properties = creation.properties;
        // The REST protocol carries the version as this reserved property.
        if creation.format_version != FormatVersion::V2 {
            let version = creation.format_version as u8;
            properties.insert("format-version".into(), version.to_string());
        }
        let request = CreateTableRequest {
            name: creation.name,
            location: creation.location,
            schema: creation.schema,
            partition_spec: creation.partition_spec,
            write_order: creation.sort_order,
            stage_create: Some(false),
            properties,
        };
        let result: LoadTableResult = self
            .client
            .send(
                Method::POST,
                &self
                    .client
                    .endpoint(&format!("{}/tables", namespace_path(namespace))),
                &[],
                Some(&request),
                &self.delegation_headers(),
                &Action::new("create table", ident.to_string()),
            )
            .await
            .map_err(|f| {
                into_iceberg(
                    f,
                    ErrorKind::NamespaceNotFound,
                    ErrorKind::TableAlreadyExists,
                )
            })?
            .json()
            .await
            .map_err(|e| unreadable_table(ident.clone(), e))?;
        self.table(ident, result)
    }

    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        self.load(table).await
    }

    async fn drop_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.client
            .send(
                Method::DELETE,
                &self.client.endpoint(&table_path(table)),
                &[],
                None::<&()>,
                &[],
                &Action::new("drop table", table.to_string()),
            )
            .await
            .map_err(|f| into_iceberg(f, ErrorKind::TableNotFound, ErrorKind::Unexpected))?;
        Ok(())
    }

    async fn purge_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.client
            .send(
                Method::DELETE,
                &self.client.endpoint(&table_path(table)),
                &[("purgeRequested", "true")],
                None::<&()>,
                &[],
                &Action::new("purge table", table.to_string()),
            )
            .await
            .map_err(|f| into_iceberg(f, ErrorKind::TableNotFound, ErrorKind::Unexpected))?;
        Ok(())
    }

    async fn table_exists(&self, table: &TableIdent) -> iceberg::Result<bool> {
        self.exists(
            table_path(table),
            Action::new("look up table", table.to_string()),
        )
        .await
    }

    async fn rename_table(&self, _src: &TableIdent, _dest: &TableIdent) -> iceberg::Result<()> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            "medallion does not rename tables",
        ))
    }

    async fn register_table(
        &self,
        _table: &TableIdent,
        _metadata_location: String,
    ) -> iceberg::Result<Table> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            "medallion does not register tables",
        ))
    }

    async fn update_table(&self, _commit: TableCommit) -> iceberg::Result<Table> {
        Err(Error::new(
            ErrorKind::FeatureUnsupported,
            "medallion commits through its own transport; use Lakehouse::write",
        ))
    }
}

#[async_trait]
impl CommitTransport for RestCatalog {
    async fn commit(
        &self,
        base: &Table,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
        idempotency_key: &str,
    ) -> iceberg::Result<()> {
        let ident = base.identifier();
        let request = CommitTableRequest {
            identifier: Some(ident.clone()),
            requirements,
            updates,
        };
        match self
            .client
            .send(
                Method::POST,
                &self.client.endpoint(&table_path(ident)),
                &[],
                Some(&request),
                &[("Idempotency-Key", idempotency_key.to_string())],
                &Action::new("commit to", ident.to_string()),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(RestFailure::Conflict(message)) => {
                Err(Error::new(ErrorKind::CatalogCommitConflicts, message).with_retryable(true))
            }
            Err(RestFailure::Unknown(e)) => Err(Error::new(
                ErrorKind::Unexpected,
                format!("the outcome of the commit to {ident} is unknown: {e}"),
            )),
            Err(failure) => Err(into_iceberg(
                failure,
                ErrorKind::TableNotFound,
                ErrorKind::CatalogCommitConflicts,
            )),
        }
    }
}
