//! Rewrites applied to a DataFusion physical plan before it is cut into
//! stages, so that every stage can run as independent per-partition tasks.

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, PartitionMode,
};
use datafusion::physical_plan::recursive_query::RecursiveQueryExec;
use datafusion::physical_plan::{Distribution, ExecutionPlan, ExecutionPlanProperties};

use crate::error::PlannerError;
use crate::in_process::InProcessExec;

/// Join types whose broadcast (build) side never produces output rows of its
/// own, so every probe task may hold its own copy of the build side.
pub(crate) fn broadcast_safe(join_type: JoinType) -> bool {
    matches!(
        join_type,
        JoinType::Inner
            | JoinType::Right
            | JoinType::RightSemi
            | JoinType::RightAnti
            | JoinType::RightMark
    )
}

/// Physical optimizer rule, placed right after DataFusion's `JoinSelection`,
/// that keeps broadcast (`CollectLeft`) hash joins to the join types that
/// are safe to broadcast.
///
/// DataFusion runs all partitions of one join instance together and lets
/// them share the build side and a bitmap of matched build rows, so the last
/// probe partition can emit the unmatched ones. fairway runs each partition
/// as its own task with its own copy of the plan, so a `Left`, `Full`,
/// `LeftSemi`, `LeftAnti` or `LeftMark` join would emit those rows once per
/// task. Such joins become `Partitioned`; DataFusion's `EnsureRequirements`
/// (which runs after this rule) then hash-repartitions both sides.
/// Null-aware anti joins (`NOT IN`) stay `CollectLeft`: they need the whole
/// build side in one instance, and [`prepare_plan`] runs them as one task.
#[derive(Debug, Default)]
pub struct BroadcastJoinSafety;

impl PhysicalOptimizerRule for BroadcastJoinSafety {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if *join.partition_mode() != PartitionMode::CollectLeft
                || join.null_aware
                || broadcast_safe(*join.join_type())
            {
                return Ok(Transformed::no(node));
            }
            let left = match join.left().downcast_ref::<CoalescePartitionsExec>() {
                Some(coalesce) => Arc::clone(coalesce.input()),
                None => Arc::clone(join.left()),
            };
            let rebuilt = join
                .builder()
                .with_partition_mode(PartitionMode::Partitioned)
                .with_new_children(vec![left, Arc::clone(join.right())])?
                .recompute_properties()
                .build_exec()?;
            Ok(Transformed::yes(rebuilt))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "fairway_broadcast_join_safety"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Makes a fully optimised DataFusion plan safe to run as separate
/// per-partition tasks, each with its own copy of the plan.
///
/// Operators that need a single-partition child while producing several
/// partitions share that child between their partitions. Where that sharing
/// changes results (a null-aware anti join; a nested-loop join, or a
/// `CollectLeft` hash join that [`BroadcastJoinSafety`] did not see, emitting
/// unmatched build rows; any other such operator), the other children are
/// coalesced so that the operator runs as one task. The output of those
/// operators has no partitioning a parent could rely on, so nothing above
/// needs to change. Broadcast-safe joins are left alone: every probe task
/// reads the whole build side.
///
/// Recursive queries run whole as one task ([`InProcessExec`]). A
/// `ScalarSubqueryExec` is rejected: the engine runs its subqueries first
/// and removes it.
pub fn prepare_plan(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>, PlannerError> {
    reject_unsupported(&plan)?;
    let plan = run_in_process(plan)?;
    Ok(plan.transform_up(rewrite_node)?.data)
}

/// A recursive query (`WITH RECURSIVE`) loops over a work table that its
/// own operators share in process: its subtree runs whole, as one task, in
/// an [`InProcessExec`]. It has one output partition already, so nothing
/// above it changes.
fn run_in_process(
    plan: Arc<dyn ExecutionPlan>,
) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    Ok(plan
        .transform_down(|node| {
            if node.is::<RecursiveQueryExec>() {
                let wrapped = InProcessExec::new(node, "recursive query")?;
                Ok(Transformed::new(
                    Arc::new(wrapped) as Arc<dyn ExecutionPlan>,
                    true,
                    TreeNodeRecursion::Jump,
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })?
        .data)
}

fn reject_unsupported(plan: &Arc<dyn ExecutionPlan>) -> Result<(), PlannerError> {
    let mut problem = None;
    plan.apply(|node| {
        let name = node.name();
        if name == "ScalarSubqueryExec" {
            problem = Some(
                "a ScalarSubqueryExec: its subqueries run first, as jobs of their own \
                 (fairway's Session does this before cutting the plan)"
                    .to_string(),
            );
        }
        Ok(if problem.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    match problem {
        Some(p) => Err(PlannerError::Unsupported(p)),
        None => Ok(()),
    }
}

fn rewrite_node(
    node: Arc<dyn ExecutionPlan>,
) -> datafusion::error::Result<Transformed<Arc<dyn ExecutionPlan>>> {
    if node.output_partitioning().partition_count() <= 1 {
        return Ok(Transformed::no(node));
    }
    let safe_broadcast = if let Some(join) = node.downcast_ref::<HashJoinExec>() {
        *join.partition_mode() != PartitionMode::CollectLeft
            || (!join.null_aware && broadcast_safe(*join.join_type()))
    } else if let Some(join) = node.downcast_ref::<NestedLoopJoinExec>() {
        broadcast_safe(*join.join_type())
    } else {
        node.is::<CrossJoinExec>()
    };
    let needs_single = node
        .input_distribution_requirements()
        .into_per_child()
        .iter()
        .any(|d| matches!(d, Distribution::SinglePartition));
    if needs_single && !safe_broadcast {
        single_task(node)
    } else {
        Ok(Transformed::no(node))
    }
}

/// Coalesces every multi-partition child, so the operator runs as one task.
fn single_task(
    node: Arc<dyn ExecutionPlan>,
) -> datafusion::error::Result<Transformed<Arc<dyn ExecutionPlan>>> {
    let children = node
        .children()
        .into_iter()
        .map(|child| {
            if child.output_partitioning().partition_count() > 1 {
                Arc::new(CoalescePartitionsExec::new(Arc::clone(child))) as Arc<dyn ExecutionPlan>
            } else {
                Arc::clone(child)
            }
        })
        .collect::<Vec<_>>();
    Ok(Transformed::yes(replace_children_if_necessary(
        node, children,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_safety_by_join_type() {
        for safe in [
            JoinType::Inner,
            JoinType::Right,
            JoinType::RightSemi,
            JoinType::RightAnti,
            JoinType::RightMark,
        ] {
            assert!(broadcast_safe(safe), "{safe:?}");
        }
        for unsafe_type in [
            JoinType::Left,
            JoinType::Full,
            JoinType::LeftSemi,
            JoinType::LeftAnti,
            JoinType::LeftMark,
        ] {
            assert!(!broadcast_safe(unsafe_type), "{unsafe_type:?}");
        }
    }
}
