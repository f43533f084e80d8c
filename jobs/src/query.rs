//! SQL that must be a query. `medallion sql` and the SQL steps of jobs
//! answer questions; tables change only through jobs and medallion's own
//! commands, which commit Iceberg snapshots under a job id. DataFusion would
//! otherwise run DDL on the session (a `DROP TABLE` that does nothing to the
//! catalog), DML, and `COPY`, which writes files anywhere its stores reach.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, Statement, WriteOp};
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};

/// A statement that is not a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAQuery {
    /// As SQL spells it: `DROP TABLE`, `COPY`, `SET`.
    pub statement: &'static str,
    pub effect: Effect,
}

/// What a statement that is not a query would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Drop a table, view, schema or function.
    Drop,
    /// Delete rows (`DELETE`, `TRUNCATE`).
    Delete,
    /// Change rows in place (`UPDATE`).
    Update,
    /// Write a table, a view or a file (`INSERT`, `CREATE`, `COPY`).
    Write,
    /// Change the session (`SET`, `BEGIN`, `PREPARE`).
    Session,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{} is not a query", .0.statement)]
    NotAQuery(NotAQuery),
    #[error(transparent)]
    Plan(DataFusionError),
}

/// Plans `sql`, which must be one query (SELECT, WITH, VALUES, EXPLAIN,
/// SHOW, DESCRIBE); anything else is refused before it runs.
pub async fn plan_query(ctx: &SessionContext, sql: &str) -> Result<DataFrame, QueryError> {
    let queries_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    match ctx.sql_with_options(sql, queries_only).await {
        Ok(frame) => Ok(frame),
        // DataFusion refuses with "DDL not supported: DropTable"; planning
        // again (nothing runs) tells which statement it was.
        Err(error) => match ctx.state().create_logical_plan(sql).await {
            Ok(plan) => {
                Err(not_a_query(&plan).map_or(QueryError::Plan(error), QueryError::NotAQuery))
            }
            Err(_) => Err(QueryError::Plan(error)),
        },
    }
}

/// The first node of `plan` that is not part of a query, also below
/// `EXPLAIN ANALYZE` (which runs its statement) and in subqueries.
fn not_a_query(plan: &LogicalPlan) -> Option<NotAQuery> {
    let mut found = None;
    // The closure never fails.
    let _ = plan.apply_with_subqueries(|node| {
        found = statement_of(node);
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

fn statement_of(node: &LogicalPlan) -> Option<NotAQuery> {
    use Effect::*;
    let (statement, effect) = match node {
        LogicalPlan::Ddl(ddl) => match ddl {
            DdlStatement::DropTable(_) => ("DROP TABLE", Drop),
            DdlStatement::DropView(_) => ("DROP VIEW", Drop),
            DdlStatement::DropCatalogSchema(_) => ("DROP SCHEMA", Drop),
            DdlStatement::DropFunction(_) => ("DROP FUNCTION", Drop),
            DdlStatement::CreateExternalTable(_) => ("CREATE EXTERNAL TABLE", Write),
            DdlStatement::CreateMemoryTable(_) => ("CREATE TABLE", Write),
            DdlStatement::CreateView(_) => ("CREATE VIEW", Write),
            DdlStatement::CreateCatalogSchema(_) => ("CREATE SCHEMA", Write),
            DdlStatement::CreateCatalog(_) => ("CREATE DATABASE", Write),
            DdlStatement::CreateIndex(_) => ("CREATE INDEX", Write),
            DdlStatement::CreateFunction(_) => ("CREATE FUNCTION", Write),
        },
        LogicalPlan::Dml(dml) => match dml.op {
            WriteOp::Insert(_) => ("INSERT", Write),
            WriteOp::Ctas => ("CREATE TABLE AS", Write),
            WriteOp::Delete => ("DELETE", Delete),
            WriteOp::Truncate => ("TRUNCATE", Delete),
            WriteOp::Update => ("UPDATE", Update),
        },
        LogicalPlan::Copy(_) => ("COPY", Write),
        LogicalPlan::Statement(statement) => (
            match statement {
                Statement::TransactionStart(_) => "BEGIN",
                Statement::TransactionEnd(_) => "COMMIT",
                Statement::SetVariable(_) => "SET",
                Statement::ResetVariable(_) => "RESET",
                Statement::Prepare(_) => "PREPARE",
                Statement::Execute(_) => "EXECUTE",
                Statement::Deallocate(_) => "DEALLOCATE",
            },
            Session,
        ),
        _ => return None,
    };
    Some(NotAQuery { statement, effect })
}
