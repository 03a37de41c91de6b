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
            partitioning => {
                let maps = input.output_partitioning().partition_count();
                let schema = input.schema();
                let order = input.output_ordering().cloned();
                let stage = add_stage(
                    stages,
                    input,
                    MapPartitioning::Partitioned(partitioning.clone()),
                );
                let mode = ReadMode::Buckets {
                    buckets: partitioning.partition_count(),
                    maps,
                };
                // Every map task writes each bucket in its input's row
                // order. An order-preserving exchange over sorted input
                // merges the maps' sorted runs of each bucket; a bucket
                // read from one map keeps its order as is (a window over
                // `PARTITION BY` sorted below a one-partition hash exchange
                // relies on it).
                let reader = if let Some(order) = order.filter(|_| repartition.preserve_order()) {
                    ShuffleReaderExec::sorted_buckets(
                        stage,
                        schema,
                        maps,
                        partitioning.clone(),
                        node.equivalence_properties().clone(),
                        order,
                    )
                } else if maps == 1 && repartition.maintains_input_order()[0] {
                    ShuffleReaderExec::with_equivalence(
                        stage,
                        schema,
                        mode,
                        Some(partitioning.clone()),
                        node.equivalence_properties().clone(),
                    )
                } else {
                    ShuffleReaderExec::new(stage, schema, mode, Some(partitioning.clone()))
                };
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

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::physical_plan::joins::CrossJoinExec;
    use datafusion::physical_plan::sorts::sort::SortExec;
    use datafusion::physical_plan::union::UnionExec;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
        ]))
    }

    /// A leaf with `partitions` partitions (no data: nothing here executes).
    fn leaf(partitions: usize) -> Arc<dyn ExecutionPlan> {
        Arc::new(EmptyExec::new(schema()).with_partitions(partitions))
    }

    fn hash(input: Arc<dyn ExecutionPlan>, buckets: usize) -> Arc<dyn ExecutionPlan> {
        let key = col("a", &input.schema()).unwrap();
        Arc::new(RepartitionExec::try_new(input, Partitioning::Hash(vec![key], buckets)).unwrap())
    }

    fn ordering(schema: &SchemaRef) -> LexOrdering {
        LexOrdering::new(vec![PhysicalSortExpr::new_default(
            col("a", schema).unwrap(),
        )])
        .unwrap()
    }

    /// Sorts each partition of `input` on its own.
    fn sort(input: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let order = ordering(&input.schema());
        Arc::new(SortExec::new(order, input).with_preserve_partitioning(true))
    }

    /// `(tasks, inputs, output)` of every stage, output as `result`,
    /// `single` or the hash bucket count.
    fn shape(graph: &StageGraph) -> Vec<(usize, Vec<usize>, String)> {
        graph
            .stages()
            .iter()
            .map(|s| {
                let output = match &s.output {
                    StageOutput::Result => "result".to_string(),
                    StageOutput::Shuffle(MapPartitioning::Single) => "single".to_string(),
                    StageOutput::Shuffle(MapPartitioning::Partitioned(p)) => {
                        format!("hash {}", p.partition_count())
                    }
                };
                (s.tasks(), s.inputs.clone(), output)
            })
            .collect()
    }

    /// Every shuffle reader of `plan`, in plan order: (stage read, mode).
    fn readers(plan: &Arc<dyn ExecutionPlan>) -> Vec<(usize, ReadMode)> {
        let mut found = Vec::new();
        plan.apply(|node| {
            if let Some(r) = node.downcast_ref::<ShuffleReaderExec>() {
                found.push((r.stage(), r.mode()));
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        found
    }

    fn names(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
        let mut found = Vec::new();
        plan.apply(|node| {
            found.push(node.name().to_string());
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        found
    }

    #[test]
    fn a_plan_without_exchanges_is_one_result_stage() {
        let graph = split_into_stages(leaf(3)).unwrap();
        assert_eq!(shape(&graph), vec![(3, vec![], "result".to_string())]);
        assert_eq!(graph.result_stage().id, 0);
    }

    #[test]
    fn hash_repartition_becomes_a_map_stage_read_by_buckets() {
        let graph = split_into_stages(hash(leaf(3), 4)).unwrap();
        assert_eq!(
            shape(&graph),
            vec![
                (3, vec![], "hash 4".to_string()),
                (4, vec![0], "result".to_string()),
            ]
        );
        // The map stage is the leaf itself; the exchange left no trace.
        assert_eq!(names(&graph.stages()[0].plan), vec!["EmptyExec"]);
        assert_eq!(
            readers(&graph.stages()[1].plan),
            vec![(
                0,
                ReadMode::Buckets {
                    buckets: 4,
                    maps: 3
                }
            )]
        );
        // The reader promises the producer's hash partitioning.
        assert!(matches!(
            graph.stages()[1].plan.output_partitioning(),
            Partitioning::Hash(_, 4)
        ));
        assert_eq!(graph.consumers(0), vec![1]);
        assert_eq!(
            graph.stages()[1].header(),
            "Stage 1 [tasks=4, reads=0, output=result]"
        );
    }

    #[test]
    fn round_robin_repartition_is_removed() {
        let plan: Arc<dyn ExecutionPlan> =
            Arc::new(RepartitionExec::try_new(leaf(2), Partitioning::RoundRobinBatch(8)).unwrap());
        let graph = split_into_stages(plan).unwrap();
        assert_eq!(shape(&graph), vec![(2, vec![], "result".to_string())]);
        assert_eq!(names(&graph.stages()[0].plan), vec!["EmptyExec"]);
    }

    #[test]
    fn chained_exchanges_give_a_chain_of_stages() {
        // leaf(2) -> hash 3 -> hash 5 -> coalesce: four stages, each read
        // by the next one only.
        let plan = Arc::new(CoalescePartitionsExec::new(hash(hash(leaf(2), 3), 5)));
        let graph = split_into_stages(plan).unwrap();
        assert_eq!(
            shape(&graph),
            vec![
                (2, vec![], "hash 3".to_string()),
                (3, vec![0], "hash 5".to_string()),
                (5, vec![1], "single".to_string()),
                (1, vec![2], "result".to_string()),
            ]
        );
        for id in 0..3 {
            assert_eq!(graph.consumers(id), vec![id + 1], "consumers of {id}");
        }
        assert!(graph.consumers(3).is_empty());
        assert_eq!(
            readers(&graph.stages()[1].plan),
            vec![(
                0,
                ReadMode::Buckets {
                    buckets: 3,
                    maps: 2
                }
            )]
        );
        assert_eq!(
            readers(&graph.stages()[3].plan),
            vec![(2, ReadMode::All { maps: 5 })]
        );
    }

    #[test]
    fn coalesce_stays_in_the_consumer_with_its_fetch() {
        let plan = Arc::new(CoalescePartitionsExec::new(leaf(3)).with_fetch(Some(7)));
        let graph = split_into_stages(plan).unwrap();
        assert_eq!(
            shape(&graph),
            vec![
                (3, vec![], "single".to_string()),
                (1, vec![0], "result".to_string()),
            ]
        );
        let result = &graph.stages()[1].plan;
        let coalesce = result
            .downcast_ref::<CoalescePartitionsExec>()
            .expect("the coalesce is the result stage's root");
        assert_eq!(coalesce.fetch(), Some(7));
        assert_eq!(readers(result), vec![(0, ReadMode::All { maps: 3 })]);
    }

    #[test]
    fn single_partition_coalesce_and_merge_are_not_cut() {
        let coalesce = Arc::new(CoalescePartitionsExec::new(leaf(1)));
        let graph = split_into_stages(coalesce).unwrap();
        assert_eq!(shape(&graph), vec![(1, vec![], "result".to_string())]);

        let input = sort(leaf(1));
        let merge = Arc::new(SortPreservingMergeExec::new(
            ordering(&input.schema()),
            input,
        ));
        let graph = split_into_stages(merge).unwrap();
        assert_eq!(shape(&graph), vec![(1, vec![], "result".to_string())]);
    }

    #[test]
    fn sort_preserving_merge_reads_one_partition_per_map() {
        let input = sort(leaf(3));
        let merge = Arc::new(SortPreservingMergeExec::new(
            ordering(&input.schema()),
            input,
        ));
        let graph = split_into_stages(merge).unwrap();
        assert_eq!(
            shape(&graph),
            vec![
                (3, vec![], "single".to_string()),
                (1, vec![0], "result".to_string()),
            ]
        );
        assert_eq!(
            names(&graph.stages()[0].plan),
            vec!["SortExec", "EmptyExec"]
        );
        let result = &graph.stages()[1].plan;
        assert_eq!(
            names(result),
            vec!["SortPreservingMergeExec", "ShuffleReaderExec"]
        );
        assert_eq!(readers(result), vec![(0, ReadMode::PerMap { maps: 3 })]);
        // The reader keeps the sort order the merge relies on.
        assert!(result.children()[0].output_ordering().is_some());
    }

    #[test]
    fn broadcast_side_becomes_its_own_stage() {
        // A cross join needs its left side in one partition and runs one
        // task per right partition: the left side is computed once.
        let plan = Arc::new(CrossJoinExec::new(leaf(1), leaf(3)));
        let graph = split_into_stages(plan).unwrap();
        assert_eq!(
            shape(&graph),
            vec![
                (1, vec![], "single".to_string()),
                (3, vec![0], "result".to_string()),
            ]
        );
        assert_eq!(
            readers(&graph.stages()[1].plan),
            vec![(0, ReadMode::All { maps: 1 })]
        );
    }

    #[test]
    fn broadcast_side_already_read_whole_is_not_cut_again() {
        // The left side is a coalesce over three partitions: the coalesce
        // cut makes it a whole-stage read, which the broadcast join then
        // uses as it is (no third stage).
        let left = Arc::new(CoalescePartitionsExec::new(leaf(3)));
        let plan = Arc::new(CrossJoinExec::new(left, leaf(2)));
        let graph = split_into_stages(plan).unwrap();
        assert_eq!(
            shape(&graph),
            vec![
                (3, vec![], "single".to_string()),
                (2, vec![0], "result".to_string()),
            ]
        );
    }

    #[test]
    fn stages_reading_several_stages_list_them_in_plan_order() {
        // union(hash 2 of A, hash 2 of B): two map stages, both read by the
        // result stage, in plan order.
        let plan = UnionExec::try_new(vec![hash(leaf(3), 2), hash(leaf(1), 2)]).unwrap();
        let graph = split_into_stages(plan).unwrap();
        assert_eq!(
            shape(&graph),
            vec![
                (3, vec![], "hash 2".to_string()),
                (1, vec![], "hash 2".to_string()),
                (4, vec![0, 1], "result".to_string()),
            ]
        );
        assert_eq!(graph.consumers(0), vec![2]);
        assert_eq!(graph.consumers(1), vec![2]);
    }

    #[test]
    fn read_stages_lists_each_stage_once() {
        let reader = |stage| {
            Arc::new(ShuffleReaderExec::new(
                stage,
                schema(),
                ReadMode::All { maps: 1 },
                None,
            )) as Arc<dyn ExecutionPlan>
        };
        let plan = UnionExec::try_new(vec![reader(4), reader(1), reader(4)]).unwrap();
        assert_eq!(read_stages(&plan), vec![4, 1]);
    }

    #[test]
    fn order_preserving_repartition_reads_merged_sorted_buckets() {
        let plan = Arc::new(
            RepartitionExec::try_new(
                sort(leaf(2)),
                Partitioning::Hash(vec![col("a", &schema()).unwrap()], 4),
            )
            .unwrap()
            .with_preserve_order(),
        );
        let graph = split_into_stages(plan).unwrap();
        let result = &graph.result_stage().plan;
        assert_eq!(
            readers(result),
            vec![(
                0,
                ReadMode::Buckets {
                    buckets: 4,
                    maps: 2
                }
            )]
        );
        // The reader keeps the declared order, and says it merges.
        assert_eq!(
            result.output_ordering(),
            Some(&ordering(&schema())),
            "the merged buckets stay sorted"
        );
        let text = datafusion::physical_plan::displayable(result.as_ref())
            .one_line()
            .to_string();
        assert!(text.contains("merged by [a@0 ASC]"), "{text}");
    }

    #[test]
    fn check_stage_names_a_leftover_exchange() {
        let stage = Stage {
            id: 7,
            plan: hash(leaf(2), 3),
            output: StageOutput::Result,
            inputs: vec![],
        };
        let error = check_stage(&stage).unwrap_err().to_string();
        assert!(
            error.contains("stage 7 still contains an exchange: RepartitionExec"),
            "{error}"
        );
        let fine = Stage {
            plan: leaf(2),
            ..stage
        };
        check_stage(&fine).unwrap();
    }
}
