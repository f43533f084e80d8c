//! Writing where the rows are: a distributed job that appends or
//! overwrites gets a [`DataFileWriteExec`] on top of its query before the
//! query is cut into stages, so the tasks of the last stage (on the
//! workers) write the table's data files themselves and only the files'
//! descriptions travel back. The job's process commits them, in one
//! snapshot, as it commits the files it writes itself.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use iceberg::io::FileIO;
use medallion_catalog::FileTarget;

use crate::errors::one_line;

/// `plan` with its rows written into `target`'s data files, by one writer
/// per partition. A plan of one partition is dealt out to `writers` of
/// them first, so its rows too are encoded in parallel (on the workers),
/// and so is a plan of more (a union of small aggregates), which would
/// otherwise write a near-empty file per partition.
pub fn writing(
    plan: Arc<dyn ExecutionPlan>,
    target: FileTarget,
    file_io: FileIO,
    writers: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let partitions = plan.output_partitioning().partition_count();
    let plan = if partitions > writers || (partitions == 1 && writers > 1) {
        Arc::new(RepartitionExec::try_new(
            plan,
            Partitioning::RoundRobinBatch(writers),
        )?)
    } else {
        plan
    };
    Ok(Arc::new(DataFileWriteExec::new(
        plan,
        Arc::new(target),
        file_io,
    )))
}

/// Writes each partition of its input into data files of one table;
/// answers with the files written ([`FileTarget::answer_schema`]).
#[derive(Debug)]
pub struct DataFileWriteExec {
    input: Arc<dyn ExecutionPlan>,
    target: Arc<FileTarget>,
    /// This process's storage: the table's, or a worker's own.
    file_io: FileIO,
    properties: Arc<PlanProperties>,
}

impl DataFileWriteExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, target: Arc<FileTarget>, file_io: FileIO) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(FileTarget::answer_schema()),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            target,
            file_io,
            properties: Arc::new(properties),
        }
    }

    pub fn target(&self) -> &FileTarget {
        &self.target
    }
}

impl DisplayAs for DataFileWriteExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DataFileWriteExec: table={}", self.target.table())
    }
}

impl ExecutionPlan for DataFileWriteExec {
    fn name(&self) -> &str {
        "DataFileWriteExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|children| {
            DataFusionError::Internal(format!(
                "DataFileWriteExec writes one input; it was given {}",
                children.len()
            ))
        })?;
        Ok(Arc::new(Self::new(
            input,
            self.target.clone(),
            self.file_io.clone(),
        )))
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition >= self.properties.partitioning.partition_count() {
            return internal_err!("DataFileWriteExec has no partition {partition}");
        }
        let rows = self.input.execute(partition, context)?;
        let (target, file_io) = (self.target.clone(), self.file_io.clone());
        let answer = futures::stream::once(async move {
            // Only the text of a worker's error reaches the job's process:
            // all of its causes go into it.
            let answer = target
                .write(file_io, rows)
                .await
                .map_err(|e| DataFusionError::Execution(one_line(&e.into())))?;
            tracing::info!(table = %target.table(), files = answer.num_rows(), "wrote data files");
            Ok(answer)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            FileTarget::answer_schema(),
            answer,
        )))
    }
}
