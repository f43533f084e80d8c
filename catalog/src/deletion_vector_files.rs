//! Writing Iceberg v3 deletion vectors: the deletes of one commit as one
//! Puffin file in the table's data folder, one `deletion-vector-v1` blob
//! per data file with rows to delete. A v3 data file has at most one
//! vector, so each blob holds the file's earlier deleted positions too,
//! and the snapshot drops the vector (or file-scoped position delete file)
//! it replaces (`snapshot.rs`). Nothing here commits.

use std::collections::HashMap;

use iceberg::metadata_columns::RESERVED_FIELD_ID_POS;
use iceberg::puffin::{
    Blob, CREATED_BY_PROPERTY, CompressionCodec, DELETION_VECTOR_V1, PuffinWriter,
};
use iceberg::spec::{DataContentType, DataFile, DataFileBuilder, DataFileFormat, Struct};
use iceberg::table::Table;
use iceberg::writer::file_writer::location_generator::{
    DefaultLocationGenerator, LocationGenerator,
};
use roaring::RoaringTreemap;
use uuid::Uuid;

use crate::data_files::{delete_quietly, file_prefix};
use crate::delete_files::DeletedPositions;
use crate::deletion_vectors::encode;
use crate::error::{Context, Result};
use crate::position_deletes::DeletedRows;

/// Puffin's magic, which starts the file before the first blob.
const PUFFIN_MAGIC_LENGTH: i64 = 4;

/// Writes the vectors of `deleted` (each with the positions `already`
/// deletes of its file) into one Puffin file; one delete entry per vector.
/// On failure the file is deleted.
pub(crate) async fn write_deletion_vectors(
    table: &Table,
    job_id: Option<&str>,
    deleted: Vec<DeletedPositions>,
    already: &DeletedRows,
) -> Result<Vec<DataFile>> {
    if deleted.is_empty() {
        return Ok(Vec::new());
    }
    let ident = table.identifier();
    let failed = || format!("cannot write the deletion vectors of {ident}");
    let locations = DefaultLocationGenerator::new(table.metadata()).context(failed)?;
    let name = format!("{}-{}-dv.puffin", file_prefix(job_id), Uuid::now_v7());
    let location = locations.generate_location(None, &name);
    let vectors: Vec<_> = deleted.into_iter().map(|d| vector_of(d, already)).collect();
    match write_puffin(table, &location, &vectors)
        .await
        .context(failed)
    {
        Ok(size) => Ok(entries(&location, size, vectors)),
        Err(error) => {
            delete_quietly(table, [location]).await;
            Err(error)
        }
    }
}

/// One data file's vector: its new and its earlier deleted positions.
struct Vector {
    deleted: DeletedPositions,
    blob: Vec<u8>,
    cardinality: u64,
}

fn vector_of(deleted: DeletedPositions, already: &DeletedRows) -> Vector {
    let mut positions: RoaringTreemap = deleted.positions.iter().copied().collect();
    if let Some(earlier) = already.get(&deleted.task.data_file_path) {
        positions.extend(earlier.iter().copied());
    }
    Vector {
        blob: encode(&positions),
        cardinality: positions.len(),
        deleted,
    }
}

/// Writes the Puffin file (blobs uncompressed, as the spec requires of
/// vectors, in the order given); its size in bytes.
async fn write_puffin(table: &Table, location: &str, vectors: &[Vector]) -> iceberg::Result<u64> {
    let output = table.file_io().new_output(location)?;
    let properties = HashMap::from([(
        CREATED_BY_PROPERTY.to_string(),
        format!("medallion {}", env!("CARGO_PKG_VERSION")),
    )]);
    let mut writer = PuffinWriter::new(&output, properties, false).await?;
    for vector in vectors {
        let blob = Blob::builder()
            .r#type(DELETION_VECTOR_V1.to_string())
            // Computed on the row positions (`_pos`), as Java's writer says.
            .fields(vec![RESERVED_FIELD_ID_POS])
            // Inherited from the manifest entry, as for every delete file.
            .snapshot_id(-1)
            .sequence_number(-1)
            .data(vector.blob.clone())
            .properties(HashMap::from([
                (
                    "referenced-data-file".to_string(),
                    vector.deleted.task.data_file_path.clone(),
                ),
                ("cardinality".to_string(), vector.cardinality.to_string()),
            ]))
            .build();
        writer.add(blob, CompressionCodec::None).await?;
    }
    writer.close().await?;
    Ok(table.file_io().new_input(location)?.metadata().await?.size)
}

/// The delete entries of the vectors: each names its blob's byte range,
/// which follows from the order the blobs were written in.
fn entries(location: &str, size: u64, vectors: Vec<Vector>) -> Vec<DataFile> {
    let mut offset = PUFFIN_MAGIC_LENGTH;
    vectors
        .into_iter()
        .map(|vector| {
            let length = vector.blob.len() as i64;
            let task = vector.deleted.task;
            let entry = DataFileBuilder::default()
                .content(DataContentType::PositionDeletes)
                .file_path(location.to_string())
                .file_format(DataFileFormat::Puffin)
                .partition(task.partition.clone().unwrap_or_else(Struct::empty))
                .partition_spec_id(task.partition_spec.as_ref().map_or(0, |s| s.spec_id()))
                .record_count(vector.cardinality)
                .file_size_in_bytes(size)
                .referenced_data_file(Some(task.data_file_path.clone()))
                .content_offset(Some(offset))
                .content_size_in_bytes(Some(length))
                .build()
                .expect("every required field of a deletion vector's entry");
            offset += length;
            entry
        })
        .collect()
}
