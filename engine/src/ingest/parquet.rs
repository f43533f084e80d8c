//! Parquet sources, batch by batch: each declared column found by name
//! and read as text, so its values pass the same checks as CSV's.

use std::borrow::Cow;
use std::fs::File;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use medallion_jobs::DatasetColumn;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::row::{Emit, Row};

/// Reads every row of a Parquet file; a row's "line" is its number.
pub fn read_parquet(
    file: File,
    name: &str,
    columns: &[DatasetColumn],
    batch_rows: usize,
    emit: &mut Emit<'_>,
) -> Result<()> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{name}: not a Parquet file"))?
        .with_batch_size(batch_rows)
        .build()?;
    let mut number = 0;
    for batch in reader {
        let batch = batch.with_context(|| format!("{name}: cannot read row {}", number + 1))?;
        let mut texts: Vec<Option<StringArray>> = Vec::with_capacity(columns.len());
        for column in columns {
            let Some(array) = batch.column_by_name(&column.name) else {
                if column.required {
                    bail!(
                        "{name}: has no column `{}`, which the dataset requires",
                        column.name
                    );
                }
                texts.push(None);
                continue;
            };
            let text = cast(array, &DataType::Utf8).with_context(|| {
                format!("{name}: column `{}` cannot be read as text", column.name)
            })?;
            texts.push(text.as_any().downcast_ref::<StringArray>().cloned());
        }
        for index in 0..batch.num_rows() {
            number += 1;
            let values: Vec<Option<Cow<'_, str>>> = texts
                .iter()
                .map(|t| {
                    t.as_ref()
                        .filter(|t| t.is_valid(index))
                        .map(|t| Cow::Borrowed(t.value(index)))
                })
                .collect();
            let raw = || {
                let object: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .zip(&values)
                    .map(|(c, v)| {
                        (
                            c.name.clone(),
                            v.as_deref().map_or(serde_json::Value::Null, |v| v.into()),
                        )
                    })
                    .collect();
                serde_json::Value::Object(object).to_string()
            };
            emit(Row {
                line: number,
                values: Ok(values.clone()),
                raw: &raw,
            })?;
        }
    }
    Ok(())
}
