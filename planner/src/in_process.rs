//! Subtrees that the stage engine cannot cut run whole, in process, as
//! one task.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    SendableRecordBatchStream, displayable,
};

/// Runs a one-partition DataFusion subtree that cannot be cut into stages
/// (a recursive query, whose operators share its work table in process)
/// as a leaf of the stage plan: DataFusion's own execution runs every
/// operator of the subtree inside the one task.
///
/// It has no children, so the splitter neither cuts nor rewrites anything
/// below it; each task's fresh copy ([`ExecutionPlan::reset_state`]) resets
/// every operator of the subtree.
#[derive(Debug)]
pub struct InProcessExec {
    /// The subtree, with one output partition.
    inner: Arc<dyn ExecutionPlan>,
    /// Why the subtree runs whole, as EXPLAIN shows it.
    reason: &'static str,
}

impl InProcessExec {
    /// Wraps `plan`, which has one output partition (so its parents'
    /// requirements hold unchanged).
    pub fn new(plan: Arc<dyn ExecutionPlan>, reason: &'static str) -> Result<Self> {
        let partitions = plan.output_partitioning().partition_count();
        if partitions != 1 {
            return Err(DataFusionError::Internal(format!(
                "InProcessExec runs one partition, {} has {partitions}",
                plan.name()
            )));
        }
        Ok(Self {
            inner: plan,
            reason,
        })
    }
}

impl DisplayAs for InProcessExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::TreeRender => write!(f, "reason={}", self.reason),
            _ => {
                write!(f, "InProcessExec: reason={}", self.reason)?;
                // The subtree, indented under this node, so EXPLAIN and
                // `fairway explain` show what runs inside the task.
                for line in displayable(self.inner.as_ref())
                    .indent(true)
                    .to_string()
                    .lines()
                {
                    write!(f, "\n    {line}")?;
                }
                Ok(())
            }
        }
    }
}

impl ExecutionPlan for InProcessExec {
    fn name(&self) -> &str {
        "InProcessExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(format!(
                "InProcessExec has no children, got {}",
                children.len()
            )))
        }
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        let inner = Arc::clone(&self.inner)
            .transform_up(|node| Ok(Transformed::yes(node.reset_state()?)))?
            .data;
        Ok(Arc::new(Self {
            inner,
            reason: self.reason,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }
}
