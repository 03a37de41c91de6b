//! Subtrees that the stage engine cannot cut run whole, in process, as
//! one task.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream, displayable,
};

/// Runs a DataFusion subtree that cannot be cut into stages (a recursive
/// query's loop over its work table) as a leaf of the stage plan: one
/// partition, computed by DataFusion's own in-process execution of every
/// partition of the subtree, merged in order where the subtree's output is
/// ordered.
///
/// It has no children, so the splitter neither cuts nor rewrites anything
/// below it; each task's fresh copy ([`ExecutionPlan::reset_state`]) resets
/// every operator of the subtree.
#[derive(Debug)]
pub struct InProcessExec {
    /// The subtree, with one output partition.
    inner: Arc<dyn ExecutionPlan>,
    /// What the subtree was before it was brought to one partition.
    reason: &'static str,
    properties: Arc<PlanProperties>,
}

impl InProcessExec {
    /// Wraps `plan`, merging its partitions into one when it has several.
    pub fn new(plan: Arc<dyn ExecutionPlan>, reason: &'static str) -> Self {
        let inner: Arc<dyn ExecutionPlan> = if plan.output_partitioning().partition_count() <= 1 {
            plan
        } else if let Some(ordering) = plan.output_ordering().cloned() {
            Arc::new(SortPreservingMergeExec::new(ordering, plan))
        } else {
            Arc::new(CoalescePartitionsExec::new(plan))
        };
        let properties = PlanProperties::new(
            inner.equivalence_properties().clone(),
            Partitioning::UnknownPartitioning(1),
            inner.pipeline_behavior(),
            inner.boundedness(),
        );
        Self {
            inner,
            reason,
            properties: Arc::new(properties),
        }
    }

    /// The subtree this node runs.
    pub fn inner(&self) -> &Arc<dyn ExecutionPlan> {
        &self.inner
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
        &self.properties
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
            properties: Arc::clone(&self.properties),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "InProcessExec has one partition, asked for {partition}"
            )));
        }
        self.inner.execute(0, context)
    }
}
