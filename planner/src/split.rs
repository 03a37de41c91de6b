//! The splitter: one bottom-up walk that replaces every exchange by a
//! shuffle reader and records the subtree below it as a stage.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{
    Distribution, ExecutionPlan, ExecutionPlanProperties, Partitioning,
};
use fairway_shuffle::{MapPartitioning, ReadMode, ShuffleReaderExec};

use crate::error::PlannerError;
use crate::prepare::prepare_plan;
use crate::stage::{Stage, StageGraph, StageOutput};

/// Prepares `plan` ([`prepare_plan`]) and cuts it into stages at every
/// exchange. The returned graph's last stage produces the query result.
pub fn split_into_stages(plan: Arc<dyn ExecutionPlan>) -> Result<StageGraph, PlannerError> {
    let plan = prepare_plan(plan)?;
    let mut stages: Vec<Stage> = Vec::new();
    let root = plan
        .transform_up(|node| cut(node, &mut stages))
        .map_err(PlannerError::from)?
        .data;
    let id = stages.len();
    stages.push(Stage {
        id,
        inputs: read_stages(&root),
        plan: root,
        output: StageOutput::Result,
    });
    for stage in &stages {
        check_stage(stage)?;
    }
    Ok(StageGraph { stages })
}

fn cut(
    node: Arc<dyn ExecutionPlan>,
    stages: &mut Vec<Stage>,
) -> datafusion::error::Result<Transformed<Arc<dyn ExecutionPlan>>> {
    if let Some(repartition) = node.downcast_ref::<RepartitionExec>() {
        let input = Arc::clone(repartition.input());
        return match repartition.partitioning() {
            // Removed: see the crate documentation.
            Partitioning::RoundRobinBatch(_) => Ok(Transformed::yes(input)),
            _ if repartition.preserve_order() => Err(PlannerError::Unsupported(
                "order-preserving repartition (set datafusion.optimizer.prefer_existing_sort \
                 = false)"
                    .to_string(),
            )
            .into()),
            partitioning => {
                let maps = input.output_partitioning().partition_count();
                let schema = input.schema();
                let stage = add_stage(
                    stages,
                    input,
                    MapPartitioning::Partitioned(partitioning.clone()),
                );
                let reader = ShuffleReaderExec::new(
                    stage,
                    schema,
                    ReadMode::Buckets {
                        buckets: partitioning.partition_count(),
                        maps,
                    },
                    Some(partitioning.clone()),
                );
                Ok(Transformed::yes(Arc::new(reader)))
            }
        };
    }
    if let Some(coalesce) = node.downcast_ref::<CoalescePartitionsExec>() {
        let input = Arc::clone(coalesce.input());
        let maps = input.output_partitioning().partition_count();
        if maps <= 1 {
            return Ok(Transformed::no(node));
        }
        let schema = input.schema();
        let stage = add_stage(stages, input, MapPartitioning::Single);
        let reader = ShuffleReaderExec::new(stage, schema, ReadMode::All { maps }, None);
        let coalesced = CoalescePartitionsExec::new(Arc::new(reader)).with_fetch(coalesce.fetch());
        return Ok(Transformed::yes(Arc::new(coalesced)));
    }
    if let Some(merge) = node.downcast_ref::<SortPreservingMergeExec>() {
        let input = Arc::clone(merge.input());
        let maps = input.output_partitioning().partition_count();
        if maps <= 1 {
            return Ok(Transformed::no(node));
        }
        let reader = ShuffleReaderExec::with_equivalence(
            stages.len(),
            input.schema(),
            ReadMode::PerMap { maps },
            None,
            input.equivalence_properties().clone(),
        );
        add_stage(stages, input, MapPartitioning::Single);
        let merged = replace_children_if_necessary(node, vec![Arc::new(reader)])?;
        return Ok(Transformed::yes(merged));
    }
    broadcast_build_sides(node, stages)
}

/// An operator that requires a single-partition child while producing
/// several partitions (a broadcast join after [`prepare_plan`]) gets that
/// child as a stage of its own, read whole by each of its tasks, so the
/// build side is computed once rather than once per task.
fn broadcast_build_sides(
    node: Arc<dyn ExecutionPlan>,
    stages: &mut Vec<Stage>,
) -> datafusion::error::Result<Transformed<Arc<dyn ExecutionPlan>>> {
    if node.output_partitioning().partition_count() <= 1 {
        return Ok(Transformed::no(node));
    }
    let required = node.input_distribution_requirements().into_per_child();
    let mut changed = false;
    let children = node
        .children()
        .into_iter()
        .zip(required)
        .map(|(child, distribution)| {
            if !matches!(distribution, Distribution::SinglePartition) || reads_whole_stage(child) {
                return Arc::clone(child);
            }
            changed = true;
            let schema = child.schema();
            let stage = add_stage(stages, Arc::clone(child), MapPartitioning::Single);
            Arc::new(ShuffleReaderExec::new(
                stage,
                schema,
                ReadMode::All { maps: 1 },
                None,
            )) as Arc<dyn ExecutionPlan>
        })
        .collect::<Vec<_>>();
    if !changed {
        return Ok(Transformed::no(node));
    }
    Ok(Transformed::yes(replace_children_if_necessary(
        node, children,
    )?))
}

/// Whether `plan` is already a reader of a whole stage (possibly under the
/// coalesce that the splitter keeps above it).
fn reads_whole_stage(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() {
        return matches!(reader.mode(), ReadMode::All { .. });
    }
    plan.downcast_ref::<CoalescePartitionsExec>()
        .is_some_and(|c| c.input().is::<ShuffleReaderExec>())
}

fn add_stage(
    stages: &mut Vec<Stage>,
    plan: Arc<dyn ExecutionPlan>,
    output: MapPartitioning,
) -> usize {
    let id = stages.len();
    stages.push(Stage {
        id,
        inputs: read_stages(&plan),
        plan,
        output: StageOutput::Shuffle(output),
    });
    id
}

/// The stages a plan reads, in plan order, without repeats.
fn read_stages(plan: &Arc<dyn ExecutionPlan>) -> Vec<usize> {
    let mut ids = Vec::new();
    plan.apply(|node| {
        if let Some(reader) = node.downcast_ref::<ShuffleReaderExec>()
            && !ids.contains(&reader.stage())
        {
            ids.push(reader.stage());
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("visiting a plan cannot fail");
    ids
}

/// Invariant: inside a stage, partition `p` of every operator reads only
/// partition `p` of its children, or a shuffle reader. No exchange is left.
fn check_stage(stage: &Stage) -> Result<(), PlannerError> {
    let mut problem = None;
    stage.plan.apply(|node| {
        let exchange = if let Some(r) = node.downcast_ref::<RepartitionExec>() {
            Some(format!("RepartitionExec ({})", r.partitioning()))
        } else if let Some(c) = node.downcast_ref::<CoalescePartitionsExec>() {
            (c.input().output_partitioning().partition_count() > 1)
                .then(|| "CoalescePartitionsExec over several partitions".to_string())
        } else if let Some(m) = node.downcast_ref::<SortPreservingMergeExec>() {
            (m.input().output_partitioning().partition_count() > 1
                && !m.input().is::<ShuffleReaderExec>())
            .then(|| "SortPreservingMergeExec over several partitions".to_string())
        } else {
            None
        };
        if let Some(exchange) = exchange {
            problem = Some(exchange);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match problem {
        Some(p) => Err(PlannerError::Internal(format!(
            "stage {} still contains an exchange: {p}",
            stage.id
        ))),
        None => Ok(()),
    }
}

