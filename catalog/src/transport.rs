//! `CommitTransport`: how a planned commit reaches the catalog atomically,
//! and `SqlCommitTransport` for the SQL catalog on SQLite.

use std::str::FromStr;

use async_trait::async_trait;
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, MetadataLocation, TableRequirement, TableUpdate};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::error::{Context, Result};

/// Carries one table commit to the catalog: the updates apply only if every
/// requirement still holds at the catalog, atomically.
///
/// A conflict is reported as an `iceberg::Error` of kind
/// `CatalogCommitConflicts`; the caller decides whether to re-plan.
#[async_trait]
pub(crate) trait CommitTransport: Send + Sync {
    async fn commit(
        &self,
        base: &Table,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
        idempotency_key: &str,
    ) -> iceberg::Result<()>;
}

/// Commits to an Iceberg SQL catalog on SQLite by compare-and-swap of the
/// table's metadata pointer, the protocol shared by Java, PyIceberg and
/// iceberg-rust SQL catalogs.
#[derive(Debug)]
pub(crate) struct SqlCommitTransport {
    catalog_name: String,
    pool: SqlitePool,
}

impl SqlCommitTransport {
    pub(crate) async fn connect(catalog_name: &str, uri: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(uri)
            .context(|| format!("bad SQLite catalog address {uri}"))?
            .create_if_missing(true)
            // Several medallion processes may commit at once; wait for the lock.
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .context(|| format!("cannot open the SQLite catalog {uri}"))?;
        Ok(Self {
            catalog_name: catalog_name.to_string(),
            pool,
        })
    }
}

fn conflict(message: String) -> Error {
    Error::new(ErrorKind::CatalogCommitConflicts, message).with_retryable(true)
}

#[async_trait]
impl CommitTransport for SqlCommitTransport {
    async fn commit(
        &self,
        base: &Table,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
        _idempotency_key: &str,
    ) -> iceberg::Result<()> {
        let ident = base.identifier();
        let base_location = base.metadata_location_result()?.to_string();
        // The swap below only succeeds while the catalog still points at
        // `base`, so checking the requirements against `base` is exact.
        for requirement in &requirements {
            if let Err(e) = requirement.check(Some(base.metadata())) {
                return Err(conflict(format!(
                    "commit requirement failed for {ident}: {e}"
                )));
            }
        }
        let mut builder = base
            .metadata()
            .clone()
            .into_builder(Some(base_location.clone()));
        for update in updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        // A new file name for every commit: the swap below is only a
        // compare-and-swap if the new pointer differs from every old one.
        let location = MetadataLocation::from_str(&base_location)?
            .with_next_version()
            .with_new_metadata(&metadata);
        metadata.write_to(base.file_io(), &location).await?;
        let location = location.to_string();

        let swapped = sqlx::query(
            "UPDATE iceberg_tables
                SET metadata_location = ?, previous_metadata_location = ?
              WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
                AND metadata_location = ?",
        )
        .bind(&location)
        .bind(&base_location)
        .bind(&self.catalog_name)
        .bind(ident.namespace().join("."))
        .bind(ident.name())
        .bind(&base_location)
        .execute(&self.pool)
        .await;
        match swapped {
            Ok(result) if result.rows_affected() == 1 => Ok(()),
            Ok(_) => {
                // Nobody will ever point at the file we just wrote.
                let _ = base.file_io().delete(&location).await;
                Err(conflict(format!(
                    "{ident} changed while this commit was prepared"
                )))
            }
            Err(e) => {
                let _ = base.file_io().delete(&location).await;
                Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("the SQLite catalog refused the commit to {ident}"),
                )
                .with_source(e))
            }
        }
    }
}
