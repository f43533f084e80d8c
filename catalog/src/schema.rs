//! A write's schema: a query's Arrow output matched by name to the table's
//! Iceberg schema, and the casts or evolution (added, widened columns) it needs.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use iceberg::arrow::{
    arrow_schema_to_schema_auto_assign_ids, arrow_type_to_type, schema_to_arrow_schema,
};
use iceberg::spec::{
    ListType, MapType, NestedField, NestedFieldRef, Schema as IcebergSchema,
    SchemaRef as IcebergSchemaRef, StructType, TableMetadata, TableMetadataBuilder, Type,
};
use iceberg::{TableIdent, TableRequirement, TableUpdate};

use crate::error::{CatalogError, Context, Result};

/// Parses `layer.table` (or deeper namespaces) into a table identifier.
pub fn table_ident(name: &str) -> Result<TableIdent> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(CatalogError::Config(format!(
            "table name `{name}` must be `<namespace>.<table>`, e.g. `bronze.orders`"
        )));
    }
    TableIdent::from_strs(parts).context(|| format!("bad table name `{name}`"))
}

/// The Arrow type an Iceberg table stores for a type a query may produce.
/// Iceberg has one string, one binary, microsecond timestamps and no small
/// integers, so the many physical Arrow encodings map onto those.
pub(crate) fn storage_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        }
        DataType::Dictionary(_, value) => storage_type(value),
        other => other.clone(),
    }
}

/// The schema a table gets for a query's output: storage types, every column
/// optional (nullability inferred by a planner is not a contract).
pub fn normalize_arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), storage_type(f.data_type()), true))
            .collect::<Vec<_>>(),
    ))
}

/// Refuses a column typed Arrow's `Null` (all of its values null, or
/// inferred from a header alone), at any depth: Iceberg has no such type,
/// and its converter would only say `Cannot visit Arrow data type: Null`.
pub(crate) fn check_typed(table: &TableIdent, schema: &Schema) -> Result<()> {
    fn untyped(data_type: &DataType) -> bool {
        match data_type {
            DataType::Null => true,
            DataType::List(f)
            | DataType::LargeList(f)
            | DataType::ListView(f)
            | DataType::LargeListView(f)
            | DataType::FixedSizeList(f, _)
            | DataType::Map(f, _) => untyped(f.data_type()),
            DataType::Struct(fields) => fields.iter().any(|f| untyped(f.data_type())),
            DataType::Dictionary(_, value) => untyped(value),
            _ => false,
        }
    }
    match schema.fields().iter().find(|f| untyped(f.data_type())) {
        Some(field) => Err(CatalogError::UntypedColumn {
            table: table.clone(),
            column: field.name().clone(),
        }),
        None => Ok(()),
    }
}

/// What a write may do to its table's schema when the data differs from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaEvolution {
    /// The schema stays as it is: a column the table lacks, a column the
    /// data lacks or a wider type fails the write.
    #[default]
    Fail,
    /// Columns the table lacks are added (optional, with new field ids),
    /// safe widenings are applied (int to long, float to double, a
    /// decimal's precision), and columns the data lacks are written as nulls.
    Evolve,
}

/// How the data of one write lands in its table: the schema its data files
/// carry, and which data column fills each column of it.
#[derive(Debug, Clone)]
pub(crate) struct WriteSchema {
    /// The table's schema, or the table's schema evolved to fit the data.
    pub schema: IcebergSchemaRef,
    /// For each column of `schema`, the data column that fills it; `None`: nulls.
    pub sources: Vec<Option<usize>>,
    /// How `schema` differs from the table's ("added column `x` (string)");
    /// empty when it does not.
    pub changes: Vec<String>,
    /// The table schema the write was planned on.
    base_schema_id: i32,
    base_last_column_id: i32,
}

/// The schema part of one commit attempt.
#[derive(Debug)]
pub(crate) struct SchemaCommit {
    /// The table's schema once the commit lands.
    pub schema: IcebergSchemaRef,
    pub updates: Vec<TableUpdate>,
    pub requirements: Vec<TableRequirement>,
}

/// Whether Iceberg can promote a column of type `from` to `to` without
/// rewriting data: int to long, float to double, a decimal to a larger
/// precision with the same scale.
fn widens(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        (DataType::Int32, DataType::Int64) | (DataType::Float32, DataType::Float64) => true,
        (DataType::Decimal128(p, s), DataType::Decimal128(wider, same)) => wider > p && s == same,
        _ => false,
    }
}

/// Matches the data's columns to the table's by name and decides what the
/// write does: cast the data (the table's type is wider), evolve the
/// schema (as `evolution` allows) or fail, naming every column that does
/// not fit with both types.
pub(crate) fn fit_schema(
    table: &TableIdent,
    metadata: &TableMetadata,
    data: &Schema,
    evolution: SchemaEvolution,
) -> Result<WriteSchema> {
    let current = metadata.current_schema();
    let columns = schema_to_arrow_schema(current)
        .context(|| format!("cannot map the schema of {table} to Arrow"))?;
    let mut fitting = Fitting {
        table,
        data,
        evolve: evolution == SchemaEvolution::Evolve,
        partition_sources: metadata
            .default_partition_spec()
            .fields()
            .iter()
            .map(|f| f.source_id)
            .collect(),
        problems: Vec::new(),
        changes: Vec::new(),
        fields: Vec::with_capacity(columns.fields().len()),
        sources: Vec::with_capacity(columns.fields().len()),
    };
    for (field, column) in current.as_struct().fields().iter().zip(columns.fields()) {
        fitting.table_column(field, column.data_type())?;
    }
    fitting.new_columns(current, metadata.last_column_id())?;
    if !fitting.problems.is_empty() {
        return Err(CatalogError::SchemaMismatch {
            table: table.clone(),
            detail: fitting.problems.join("; "),
        });
    }
    let schema = if fitting.changes.is_empty() {
        current.clone()
    } else {
        Arc::new(
            IcebergSchema::builder()
                .with_schema_id(current.schema_id())
                .with_fields(fitting.fields)
                .with_identifier_field_ids(current.identifier_field_ids())
                .build()
                .context(|| format!("cannot evolve the schema of {table}"))?,
        )
    };
    Ok(WriteSchema {
        schema,
        sources: fitting.sources,
        changes: fitting.changes,
        base_schema_id: current.schema_id(),
        base_last_column_id: metadata.last_column_id(),
    })
}

/// The written schema as [`fit_schema`] builds it, column by column.
struct Fitting<'a> {
    table: &'a TableIdent,
    data: &'a Schema,
    evolve: bool,
    /// Field ids the table is partitioned by, which are never widened.
    partition_sources: HashSet<i32>,
    /// Why the data does not fit, one entry per column.
    problems: Vec<String>,
    /// How the written schema differs from the table's.
    changes: Vec<String>,
    fields: Vec<NestedFieldRef>,
    sources: Vec<Option<usize>>,
}

impl Fitting<'_> {
    /// A column of the table, of Arrow type `table_type`: filled from the
    /// data column of the same name, or with nulls.
    fn table_column(&mut self, field: &NestedFieldRef, table_type: &DataType) -> Result<()> {
        let name = &field.name;
        let Ok(index) = self.data.index_of(name) else {
            if !self.evolve {
                self.problems.push(format!(
                    "column `{name}` is missing from the data (`on_schema_change: evolve` writes nulls)"
                ));
            } else if field.required {
                self.problems.push(format!(
                    "column `{name}` is missing from the data and required in the table"
                ));
            }
            self.fields.push(field.clone());
            self.sources.push(None);
            return Ok(());
        };
        self.sources.push(Some(index));
        let data_type = storage_type(self.data.field(index).data_type());
        if data_type.equals_datatype(table_type) || widens(&data_type, table_type) {
            self.fields.push(field.clone());
            return Ok(());
        }
        self.type_change(field, table_type, data_type)
    }

    /// A data column whose type the table's column does not hold: widened
    /// when Iceberg can and the write may, a problem otherwise.
    fn type_change(
        &mut self,
        field: &NestedFieldRef,
        table_type: &DataType,
        data_type: DataType,
    ) -> Result<()> {
        let name = &field.name;
        let mismatch =
            format!("column `{name}` is {table_type} in the table but {data_type} in the data");
        if !widens(table_type, &data_type) {
            self.problems.push(format!(
                "{mismatch}, a change Iceberg cannot make (it widens only int to long, float to \
                 double and a decimal to a larger precision)"
            ));
        } else if !self.evolve {
            self.problems.push(format!(
                "{mismatch} (`on_schema_change: evolve` widens the column)"
            ));
        } else if self.partition_sources.contains(&field.id) {
            self.problems.push(format!(
                "{mismatch}, and the table is partitioned by it; cast it to {table_type} in the job"
            ));
        } else {
            let table = self.table;
            let wider = arrow_type_to_type(&data_type)
                .context(|| format!("column `{name}` of {table} cannot be {data_type}"))?;
            self.changes.push(format!(
                "widened column `{name}` from {} to {wider}",
                field.field_type
            ));
            self.fields.push(Arc::new(NestedField {
                field_type: Box::new(wider),
                ..field.as_ref().clone()
            }));
        }
        Ok(())
    }

    /// The data columns the table lacks: added after the table's columns
    /// (new field ids follow `last_column_id`) when the write may evolve.
    fn new_columns(&mut self, current: &IcebergSchema, last_column_id: i32) -> Result<()> {
        let data = self.data;
        let added: Vec<usize> = (0..data.fields().len())
            .filter(|&i| {
                current
                    .as_struct()
                    .field_by_name(data.field(i).name())
                    .is_none()
            })
            .collect();
        if !self.evolve {
            self.problems.extend(added.iter().map(|&i| {
                format!(
                    "column `{}` is not in the table (`on_schema_change: evolve` adds it)",
                    data.field(i).name()
                )
            }));
            return Ok(());
        }
        if added.is_empty() {
            return Ok(());
        }
        let table = self.table;
        let new_columns =
            normalize_arrow_schema(&data.project(&added).expect("indices of the data"));
        check_typed(table, &new_columns)?;
        let numbered = arrow_schema_to_schema_auto_assign_ids(&new_columns)
            .context(|| format!("the new columns cannot be stored in Iceberg table {table}"))?;
        for (field, index) in numbered.as_struct().fields().iter().zip(added) {
            // Numbered from 1 on their own; new field ids follow the table's last.
            self.fields.push(renumbered(field, last_column_id));
            self.sources.push(Some(index));
            self.changes.push(format!(
                "added column `{}` ({})",
                field.name, field.field_type
            ));
        }
        Ok(())
    }
}

/// `field` (and everything nested in it) with every field id moved by `by`.
fn renumbered(field: &NestedField, by: i32) -> NestedFieldRef {
    let field_type = match field.field_type.as_ref() {
        Type::Struct(fields) => Type::Struct(StructType::new(
            fields.fields().iter().map(|f| renumbered(f, by)).collect(),
        )),
        Type::List(list) => Type::List(ListType::new(renumbered(&list.element_field, by))),
        Type::Map(map) => Type::Map(MapType::new(
            renumbered(&map.key_field, by),
            renumbered(&map.value_field, by),
        )),
        primitive => primitive.clone(),
    };
    Arc::new(NestedField {
        id: field.id + by,
        field_type: Box::new(field_type),
        ..field.clone()
    })
}

/// A write's schema as one shard stages it: what another process needs to
/// commit the shard's files, which are written already (`shard_staging.rs`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StagedSchema {
    schema: IcebergSchema,
    changes: Vec<String>,
    base_schema_id: i32,
    base_last_column_id: i32,
}

impl StagedSchema {
    pub(crate) fn schema(&self) -> &IcebergSchema {
        &self.schema
    }

    /// The schema the staged files commit with.
    pub(crate) fn for_commit(&self) -> WriteSchema {
        WriteSchema {
            schema: Arc::new(self.schema.clone()),
            sources: Vec::new(),
            changes: self.changes.clone(),
            base_schema_id: self.base_schema_id,
            base_last_column_id: self.base_last_column_id,
        }
    }
}

impl WriteSchema {
    pub(crate) fn staged(&self) -> StagedSchema {
        StagedSchema {
            schema: self.schema.as_ref().clone(),
            changes: self.changes.clone(),
            base_schema_id: self.base_schema_id,
            base_last_column_id: self.base_last_column_id,
        }
    }

    /// The table's current schema, unchanged: for rewrites of the table's
    /// own rows, which come in that schema's columns.
    pub(crate) fn unchanged(metadata: &TableMetadata) -> Self {
        let schema = metadata.current_schema().clone();
        Self {
            sources: (0..schema.as_struct().fields().len()).map(Some).collect(),
            changes: Vec::new(),
            base_schema_id: schema.schema_id(),
            base_last_column_id: metadata.last_column_id(),
            schema,
        }
    }

    /// The schema part of a commit on `head`. While the table's schema is
    /// still the one this write was planned on, an evolved schema is added
    /// and made current, asserting that nobody changed it meanwhile.
    /// Otherwise the written files must be readable, by field id, under the
    /// head's schema as it is (a concurrent writer may have made the same
    /// change, or one that does not touch these columns).
    pub(crate) fn on_head(&self, table: &TableIdent, head: &TableMetadata) -> Result<SchemaCommit> {
        let planned_on = head.current_schema_id() == self.base_schema_id
            && head.last_column_id() == self.base_last_column_id;
        if planned_on && !self.changes.is_empty() {
            // The id the catalog gives it: an identical earlier schema's, or a new one.
            let schema_id = head
                .schemas_iter()
                .find(|s| {
                    s.as_struct() == self.schema.as_struct()
                        && s.identifier_field_ids()
                            .eq(self.schema.identifier_field_ids())
                })
                .map(|s| s.schema_id())
                .unwrap_or_else(|| {
                    head.schemas_iter()
                        .map(|s| s.schema_id())
                        .max()
                        .unwrap_or(0)
                        + 1
                });
            let schema = self
                .schema
                .as_ref()
                .clone()
                .into_builder()
                .with_schema_id(schema_id)
                .build()
                .context(|| format!("cannot evolve the schema of {table}"))?;
            return Ok(SchemaCommit {
                updates: vec![
                    TableUpdate::AddSchema {
                        schema: schema.clone(),
                    },
                    TableUpdate::SetCurrentSchema {
                        schema_id: TableMetadataBuilder::LAST_ADDED,
                    },
                ],
                requirements: vec![
                    TableRequirement::CurrentSchemaIdMatch {
                        current_schema_id: self.base_schema_id,
                    },
                    TableRequirement::LastAssignedFieldIdMatch {
                        last_assigned_field_id: self.base_last_column_id,
                    },
                ],
                schema: Arc::new(schema),
            });
        }
        let current = head.current_schema();
        let problems = self.unreadable_under(table, current)?;
        if !problems.is_empty() {
            return Err(CatalogError::SchemaConflict {
                table: table.clone(),
                detail: problems.join("; "),
            });
        }
        Ok(SchemaCommit {
            schema: current.clone(),
            updates: Vec::new(),
            requirements: vec![TableRequirement::CurrentSchemaIdMatch {
                current_schema_id: head.current_schema_id(),
            }],
        })
    }

    /// Why the written files would not read back under `schema`: a column
    /// this write adds is missing or has another name there (its field id
    /// went to another column), or a column's type is not the written one
    /// or a widening of it. A column dropped meanwhile is fine: readers
    /// skip it.
    fn unreadable_under(&self, table: &TableIdent, schema: &IcebergSchema) -> Result<Vec<String>> {
        let to_arrow = |s: &IcebergSchema| {
            schema_to_arrow_schema(s)
                .context(|| format!("cannot map the schema of {table} to Arrow"))
        };
        let (written, now) = (to_arrow(&self.schema)?, to_arrow(schema)?);
        let mut problems = Vec::new();
        for (field, column) in self
            .schema
            .as_struct()
            .fields()
            .iter()
            .zip(written.fields())
        {
            let added = field.id > self.base_last_column_id;
            let Some(position) = schema
                .as_struct()
                .fields()
                .iter()
                .position(|f| f.id == field.id)
            else {
                if added {
                    problems.push(format!(
                        "column `{}` that this write adds is gone",
                        field.name
                    ));
                }
                continue;
            };
            let (other, now_type) = (
                &schema.as_struct().fields()[position],
                now.field(position).data_type(),
            );
            if added && other.name != field.name {
                problems.push(format!(
                    "the field id this write gave column `{}` now belongs to column `{}`",
                    field.name, other.name
                ));
            } else if !now_type.equals_datatype(column.data_type())
                && !widens(column.data_type(), now_type)
            {
                problems.push(format!(
                    "column `{}` is now {now_type} but the files hold {}",
                    other.name,
                    column.data_type()
                ));
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_and_large_strings_store_as_utf8() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8View, false),
            Field::new("b", DataType::LargeUtf8, false),
            Field::new("c", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        ]);
        let normalized = normalize_arrow_schema(&schema);
        assert_eq!(normalized.field(0).data_type(), &DataType::Utf8);
        assert_eq!(normalized.field(1).data_type(), &DataType::Utf8);
        assert_eq!(
            normalized.field(2).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert!(normalized.fields().iter().all(|f| f.is_nullable()));
    }

    use std::collections::HashMap;

    use iceberg::spec::{FormatVersion, PrimitiveType, SortOrder, Transform, UnboundPartitionSpec};

    fn ident() -> TableIdent {
        table_ident("bronze.orders").unwrap()
    }

    /// A table of `id` int, `amount` decimal(10,2), `name` string (field
    /// ids 1, 2, 3), partitioned by `id` when asked.
    fn table(partitioned: bool) -> TableMetadata {
        let schema = IcebergSchema::builder()
            .with_fields(vec![
                NestedField::optional(1, "id", Type::Primitive(PrimitiveType::Int)).into(),
                NestedField::optional(
                    2,
                    "amount",
                    Type::Primitive(PrimitiveType::Decimal {
                        precision: 10,
                        scale: 2,
                    }),
                )
                .into(),
                NestedField::optional(3, "name", Type::Primitive(PrimitiveType::String)).into(),
            ])
            .build()
            .unwrap();
        let mut spec = UnboundPartitionSpec::builder();
        if partitioned {
            spec = spec
                .add_partition_field(1, "id", Transform::Identity)
                .unwrap();
        }
        TableMetadataBuilder::new(
            schema,
            spec.build(),
            SortOrder::unsorted_order(),
            "memory://bronze/orders".into(),
            FormatVersion::V2,
            HashMap::new(),
        )
        .unwrap()
        .build()
        .unwrap()
        .metadata
    }

    fn data(columns: &[(&str, DataType)]) -> Schema {
        Schema::new(
            columns
                .iter()
                .map(|(name, data_type)| Field::new(*name, data_type.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    fn fit(data: &Schema, evolution: SchemaEvolution) -> Result<WriteSchema> {
        fit_schema(&ident(), &table(false), data, evolution)
    }

    fn field_type(schema: &IcebergSchema, name: &str) -> String {
        schema.field_by_name(name).unwrap().field_type.to_string()
    }

    /// Applies a commit's schema part the way a catalog does.
    fn commit(head: &TableMetadata, schema: SchemaCommit) -> TableMetadata {
        for requirement in &schema.requirements {
            requirement.check(Some(head)).unwrap();
        }
        let mut builder = head.clone().into_builder(None);
        for update in schema.updates {
            builder = update.apply(builder).unwrap();
        }
        builder.build().unwrap().metadata
    }

    #[test]
    fn columns_match_by_name_and_a_wider_table_type_is_a_cast() {
        let data = data(&[
            ("name", DataType::Utf8View),
            ("amount", DataType::Decimal128(8, 2)),
            ("id", DataType::Int16),
        ]);
        for evolution in [SchemaEvolution::Fail, SchemaEvolution::Evolve] {
            let written = fit(&data, evolution).unwrap();
            assert_eq!(written.sources, vec![Some(2), Some(1), Some(0)]);
            assert!(written.changes.is_empty(), "{:?}", written.changes);
            assert_eq!(written.schema.schema_id(), table(false).current_schema_id());
        }
    }

    #[test]
    fn evolving_adds_new_columns_with_fresh_ids_and_widens_in_place() {
        let data = data(&[
            ("id", DataType::Int64),
            ("amount", DataType::Decimal128(15, 2)),
            ("name", DataType::Utf8),
            ("coupon", DataType::Utf8View),
            (
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            ),
        ]);
        let written = fit(&data, SchemaEvolution::Evolve).unwrap();
        let schema = &written.schema;
        // Same field ids, wider types: old files read under the new types.
        assert_eq!(schema.field_id_by_name("id"), Some(1));
        assert_eq!(field_type(schema, "id"), "long");
        assert_eq!(schema.field_id_by_name("amount"), Some(2));
        assert_eq!(field_type(schema, "amount"), "decimal(15, 2)");
        // New columns after the table's last field id, optional.
        assert_eq!(schema.field_id_by_name("coupon"), Some(4));
        assert_eq!(field_type(schema, "coupon"), "string");
        assert!(!schema.field_by_name("coupon").unwrap().required);
        let tags = schema.field_by_name("tags").unwrap();
        let Type::List(list) = tags.field_type.as_ref() else {
            panic!("{tags:?}");
        };
        let mut new_ids = vec![tags.id, list.element_field.id];
        new_ids.sort();
        assert_eq!(new_ids, vec![5, 6]);
        assert_eq!(
            written.sources,
            vec![Some(0), Some(1), Some(2), Some(3), Some(4)]
        );
        assert_eq!(
            written.changes,
            vec![
                "widened column `id` from int to long",
                "widened column `amount` from decimal(10, 2) to decimal(15, 2)",
                "added column `coupon` (string)",
                "added column `tags` (list)",
            ]
        );
    }

    #[test]
    fn evolving_writes_nulls_for_columns_the_data_lacks() {
        let written = fit(&data(&[("id", DataType::Int32)]), SchemaEvolution::Evolve).unwrap();
        assert_eq!(written.sources, vec![Some(0), None, None]);
        assert!(written.changes.is_empty());
    }

    #[test]
    fn failing_mode_names_every_difference_and_says_how_to_allow_it() {
        let data = data(&[
            ("id", DataType::Int64),
            ("name", DataType::Utf8),
            ("coupon", DataType::Utf8),
        ]);
        let err = fit(&data, SchemaEvolution::Fail).unwrap_err().to_string();
        for expected in [
            "the data does not fit table bronze.orders",
            "column `id` is Int32 in the table but Int64 in the data (`on_schema_change: evolve` widens the column)",
            "column `amount` is missing from the data (`on_schema_change: evolve` writes nulls)",
            "column `coupon` is not in the table (`on_schema_change: evolve` adds it)",
        ] {
            assert!(err.contains(expected), "{expected}\n  not in: {err}");
        }
    }

    #[test]
    fn incompatible_changes_fail_in_every_mode_naming_column_and_both_types() {
        let cases = [
            (
                "name",
                DataType::Int64,
                "column `name` is Utf8 in the table but Int64 in the data",
            ),
            (
                "amount",
                DataType::Decimal128(12, 3),
                "column `amount` is Decimal128(10, 2) in the table but Decimal128(12, 3) in the data",
            ),
            (
                "id",
                DataType::Float64,
                "column `id` is Int32 in the table but Float64 in the data",
            ),
        ];
        for (column, data_type, expected) in cases {
            let data = data(&[(column, data_type)]);
            for evolution in [SchemaEvolution::Fail, SchemaEvolution::Evolve] {
                let err = fit(&data, evolution).unwrap_err().to_string();
                assert!(err.contains(expected), "{expected}\n  not in: {err}");
                assert!(err.contains("a change Iceberg cannot make"), "{err}");
            }
        }
        // Narrowing is the other direction of a widening: refused too.
        let wide = fit_schema(
            &ident(),
            &commit(
                &table(false),
                fit(&data(&[("id", DataType::Int64)]), SchemaEvolution::Evolve)
                    .unwrap()
                    .on_head(&ident(), &table(false))
                    .unwrap(),
            ),
            &data(&[("id", DataType::Int32)]),
            SchemaEvolution::Evolve,
        )
        .unwrap();
        assert!(
            wide.changes.is_empty(),
            "int data into a long column is a cast"
        );
    }

    #[test]
    fn a_partition_column_is_not_widened() {
        let err = fit_schema(
            &ident(),
            &table(true),
            &data(&[("id", DataType::Int64)]),
            SchemaEvolution::Evolve,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("the table is partitioned by it"), "{err}");
    }

    #[test]
    fn an_evolving_commit_asserts_the_schema_it_was_planned_on() {
        let base = table(false);
        let written = fit(
            &data(&[("coupon", DataType::Utf8)]),
            SchemaEvolution::Evolve,
        )
        .unwrap();
        let schema = written.on_head(&ident(), &base).unwrap();
        assert!(matches!(
            schema.requirements.as_slice(),
            [
                TableRequirement::CurrentSchemaIdMatch {
                    current_schema_id: 0
                },
                TableRequirement::LastAssignedFieldIdMatch {
                    last_assigned_field_id: 3
                },
            ]
        ));
        assert_eq!(schema.schema.schema_id(), 1);
        let evolved = commit(&base, schema);
        assert_eq!(evolved.current_schema_id(), 1);
        assert_eq!(evolved.last_column_id(), 4);
        assert_eq!(evolved.current_schema().field_id_by_name("coupon"), Some(4));

        // Once the schema is current, a write of the same data changes nothing.
        let again = fit_schema(
            &ident(),
            &evolved,
            &data(&[("coupon", DataType::Utf8)]),
            SchemaEvolution::Evolve,
        )
        .unwrap();
        assert!(again.changes.is_empty());
        let schema = again.on_head(&ident(), &evolved).unwrap();
        assert!(schema.updates.is_empty());
        assert!(matches!(
            schema.requirements.as_slice(),
            [TableRequirement::CurrentSchemaIdMatch {
                current_schema_id: 1
            }]
        ));
    }

    #[test]
    fn after_a_concurrent_schema_change_the_files_must_still_read_back() {
        let base = table(false);
        let coupon = fit(
            &data(&[("coupon", DataType::Utf8)]),
            SchemaEvolution::Evolve,
        )
        .unwrap();
        let region = fit(
            &data(&[("region", DataType::Utf8)]),
            SchemaEvolution::Evolve,
        )
        .unwrap();

        // Another writer added the same column first: its field id is ours.
        let same = commit(&base, coupon.on_head(&ident(), &base).unwrap());
        let schema = coupon.on_head(&ident(), &same).unwrap();
        assert!(schema.updates.is_empty());
        assert_eq!(schema.schema.schema_id(), same.current_schema_id());

        // Another writer gave field id 4 to another column: our files would
        // show `region` values as `coupon`.
        let other = commit(&base, region.on_head(&ident(), &base).unwrap());
        let err = coupon.on_head(&ident(), &other).unwrap_err().to_string();
        assert!(
            err.contains("the schema of bronze.orders changed while this job wrote its files")
                && err.contains("now belongs to column `region`")
                && err.contains("re-run the job"),
            "{err}"
        );

        // A write that changes no schema is fine under a concurrent addition.
        let plain = fit(&data(&[("id", DataType::Int32)]), SchemaEvolution::Evolve).unwrap();
        let schema = plain.on_head(&ident(), &other).unwrap();
        assert!(schema.updates.is_empty());
    }

    #[test]
    fn table_names_need_a_namespace() {
        assert!(table_ident("orders").is_err());
        assert_eq!(
            table_ident("gold.sales_dashboard").unwrap().name(),
            "sales_dashboard"
        );
    }
}
