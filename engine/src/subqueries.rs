//! Uncorrelated scalar subqueries, run before the query that uses them.
//!
//! DataFusion plans `(SELECT max(v) FROM t)` in any position (a filter, a
//! projection, `ORDER BY`, an aggregate's argument, a join condition) as a
//! `ScalarSubqueryExec` above the operators that use the value: the node
//! computes its subqueries once, stores each value in a results container
//! shared with the `ScalarSubqueryExpr`s below, then runs its input. On the
//! stage engine those users may sit in earlier stages than the node, and
//! every task resets its copy of the plan (which clears the container). So,
//! as Spark does, fairway runs each subquery first, as a job of its own (a
//! subquery of more than one row is an error, of none is NULL), stores the
//! values in the container, and removes the node before cutting the rest
//! into stages.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::physical_planning_context::ScalarSubqueryResults;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::scalar_subquery::{ScalarSubqueryExec, ScalarSubqueryLink};

/// The subqueries of one `ScalarSubqueryExec` and the container their
/// values go to.
pub(crate) type SubqueryGroup = (Vec<ScalarSubqueryLink>, ScalarSubqueryResults);

/// `plan` without its `ScalarSubqueryExec` nodes (each replaced by its
/// input, which has the same properties), and those nodes' subqueries.
/// Subqueries nested in a subquery's plan stay there, for that plan's own
/// run.
pub(crate) fn take_scalar_subqueries(
    plan: Arc<dyn ExecutionPlan>,
) -> datafusion::error::Result<(Arc<dyn ExecutionPlan>, Vec<SubqueryGroup>)> {
    let mut groups = Vec::new();
    let plan = plan
        .transform_down(|mut node| {
            let mut changed = false;
            // The input of one may be another.
            while let Some(exec) = node.downcast_ref::<ScalarSubqueryExec>() {
                groups.push((exec.subqueries().to_vec(), exec.results().clone()));
                node = Arc::clone(exec.input());
                changed = true;
            }
            Ok(Transformed::new_transformed(node, changed))
        })?
        .data;
    Ok((plan, groups))
}

/// The value of a one-column subquery from its rows, as DataFusion defines
/// it: NULL of the column's type for no rows, an error for more than one.
pub(crate) fn scalar_value(
    plan: &Arc<dyn ExecutionPlan>,
    batches: &[datafusion::arrow::record_batch::RecordBatch],
) -> datafusion::error::Result<ScalarValue> {
    let schema = plan.schema();
    if schema.fields().len() != 1 {
        return Err(DataFusionError::Internal(format!(
            "a scalar subquery returns one column, this one {}",
            schema.fields().len()
        )));
    }
    let mut value = None;
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        if value.is_some() || batch.num_rows() > 1 {
            return Err(DataFusionError::Execution(
                "Scalar subquery returned more than one row".to_string(),
            ));
        }
        value = Some(ScalarValue::try_from_array(batch.column(0), 0)?);
    }
    match value {
        Some(v) => Ok(v),
        None => ScalarValue::try_from(schema.field(0).data_type()),
    }
}
