//! Writing one output stream into data files, one writer per partition.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::spec::{DataFile, PartitionKey, Struct};
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};

/// Writers open at once per stream. Beyond that the open files are
/// finished and new ones started: memory stays bounded when a stream holds
/// many partitions, at the price of smaller files (which `compact` merges).
const MAX_OPEN_WRITERS: usize = 16;

pub(crate) struct PartitionWriters<B: IcebergWriterBuilder> {
    builder: B,
    /// `None` for an unpartitioned table.
    splitter: Option<Arc<RecordBatchPartitionSplitter>>,
    open: HashMap<Option<Struct>, B::R>,
    written: Vec<DataFile>,
}

impl<B: IcebergWriterBuilder> PartitionWriters<B> {
    pub fn new(builder: B, splitter: Option<Arc<RecordBatchPartitionSplitter>>) -> Self {
        Self {
            builder,
            splitter,
            open: HashMap::new(),
            written: Vec::new(),
        }
    }

    /// Writes a batch in the table's schema, split by partition.
    pub async fn write(&mut self, batch: RecordBatch) -> iceberg::Result<()> {
        match self.splitter.clone() {
            None => self.write_to(None, batch).await,
            Some(splitter) => {
                for (key, part) in splitter.split(&batch)? {
                    self.write_to(Some(key), part).await?;
                }
                Ok(())
            }
        }
    }

    async fn write_to(
        &mut self,
        key: Option<PartitionKey>,
        batch: RecordBatch,
    ) -> iceberg::Result<()> {
        let slot = key.as_ref().map(|k| k.data().clone());
        if !self.open.contains_key(&slot) {
            if self.open.len() >= MAX_OPEN_WRITERS {
                self.finish_open().await?;
            }
            let writer = self.builder.build(key).await?;
            self.open.insert(slot.clone(), writer);
        }
        self.open
            .get_mut(&slot)
            .expect("the writer was just opened")
            .write(batch)
            .await
    }

    async fn finish_open(&mut self) -> iceberg::Result<()> {
        for (_, mut writer) in self.open.drain() {
            self.written.extend(writer.close().await?);
        }
        Ok(())
    }

    /// Finishes every file; the data files written, for the commit.
    pub async fn close(mut self) -> iceberg::Result<Vec<DataFile>> {
        self.finish_open().await?;
        Ok(self.written)
    }
}
