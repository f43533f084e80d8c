//! Reading a table's data files by Iceberg field id (the `PARQUET:field_id`
//! every Iceberg writer stores), not by column name or position.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapter, DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter,
    PhysicalExprAdapterFactory,
};
use parquet::arrow::PARQUET_FIELD_ID_META_KEY;
use serde::{Deserialize, Serialize};

/// Reads each data file's columns by Iceberg field id (the `PARQUET:field_id`
/// every Iceberg writer stores): a renamed column still reads its old
/// files, and a column added later under a dropped or renamed column's old
/// name reads as null there instead of as the other column's values. Types
/// are then cast as DataFusion does for any schema change (old int files of
/// a widened long column). Serialized whole into a distributed plan, so a
/// worker reads the files as this process would.
#[derive(Debug, Serialize, Deserialize)]
pub struct FieldIds {
    /// The table's field id of each column, by name.
    ids: HashMap<String, i32>,
}

impl FieldIds {
    /// The field ids of an Iceberg schema's columns.
    pub fn of(schema: &iceberg::spec::Schema) -> Self {
        let ids = schema
            .as_struct()
            .fields()
            .iter()
            .map(|f| (f.name.clone(), f.id))
            .collect();
        Self { ids }
    }

    /// The column of a field id, if it is a top-level column.
    pub fn name_of(&self, id: i32) -> Option<&str> {
        let mut columns = self.ids.iter();
        columns
            .find(|(_, i)| **i == id)
            .map(|(name, _)| name.as_str())
    }
}

impl PhysicalExprAdapterFactory for FieldIds {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> datafusion::common::Result<Arc<dyn PhysicalExprAdapter>> {
        let in_file: HashMap<i32, &str> = physical_file_schema
            .fields()
            .iter()
            .filter_map(|f| {
                let id = f.metadata().get(PARQUET_FIELD_ID_META_KEY)?.parse().ok()?;
                Some((id, f.name().as_str()))
            })
            .collect();
        // A file without field ids (not written by an Iceberg writer) can
        // only be read by name.
        if in_file.is_empty() {
            return DefaultPhysicalExprAdapterFactory
                .create(logical_file_schema, physical_file_schema);
        }
        // Each table column under its name in this file; one the file lacks
        // under a name no file column has, which DataFusion reads as null.
        let names: HashMap<String, String> = logical_file_schema
            .fields()
            .iter()
            .map(|f| {
                let in_this_file = match self.ids.get(f.name()).and_then(|id| in_file.get(id)) {
                    Some(name) => name.to_string(),
                    None => format!("{} (not in this file)", f.name()),
                };
                (f.name().clone(), in_this_file)
            })
            .collect();
        let renamed = Schema::new(
            logical_file_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_name(&names[f.name()]))
                .collect::<Vec<_>>(),
        );
        Ok(Arc::new(ByFieldId {
            names,
            inner: DefaultPhysicalExprAdapter::new(Arc::new(renamed), physical_file_schema),
        }))
    }
}

#[derive(Debug)]
struct ByFieldId {
    /// Table column name -> its name in the file.
    names: HashMap<String, String>,
    inner: DefaultPhysicalExprAdapter,
}

impl PhysicalExprAdapter for ByFieldId {
    fn rewrite(
        &self,
        expr: Arc<dyn PhysicalExpr>,
    ) -> datafusion::common::Result<Arc<dyn PhysicalExpr>> {
        let in_file_names = expr
            .transform(|e| {
                if let Some(column) = e.as_any().downcast_ref::<Column>()
                    && let Some(name) = self.names.get(column.name())
                {
                    let renamed: Arc<dyn PhysicalExpr> =
                        Arc::new(Column::new(name, column.index()));
                    return Ok(Transformed::yes(renamed));
                }
                Ok(Transformed::no(e))
            })
            .data()?;
        self.inner.rewrite(in_file_names)
    }
}
