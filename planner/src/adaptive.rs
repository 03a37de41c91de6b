//! Build sides chosen when a stage starts, from the rows its input stages
//! actually wrote.
//!
//! DataFusion picks the build (left) side of a partitioned hash join while
//! planning, from estimates that are often guesses after filters and joins:
//! in TPC-H Q21 at SF 1 it builds the hash table of the `NOT EXISTS` anti
//! join from 3.8 M late line items and probes it with the ~75 K rows that
//! the other joins leave. On the stage engine every input of a stage is
//! materialised before the stage starts, so the row counts are known
//! exactly; [`swap_build_sides`] then swaps a partitioned hash join whose
//! build side is much larger than its probe side, as Spark's adaptive query
//! execution re-plans joins between stages.
//!
//! Swapping a partitioned join is safe task by task: partition `p` of the
//! join still joins partition `p` of both inputs, so the rows of every
//! output partition and the stage's output partitioning stay the same;
//! DataFusion's `swap_inputs` turns the join type around (`RightAnti` into
//! `LeftAnti`) and keeps the column order. Only joins without an output
//! ordering are swapped (the probe side decides a hash join's order, and a
//! parent might rely on it), never null-aware anti joins, which must build
//! their left side.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::JoinType;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::union::UnionExec;
use fairway_shuffle::ShuffleReaderExec;

use crate::co_partition::KeyPartitionedExec;

/// How much larger the build side must be than the probe side (in rows)
/// before the join is swapped: estimates of joined inputs are rough, and a
/// swap of near-equal sides gains nothing.
pub const SWAP_RATIO: u64 = 2;

/// One join whose inputs [`swap_build_sides`] swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwappedJoin {
    /// The join type before the swap (`RightAnti`).
    pub join_type: JoinType,
    /// Rows of the old build side (an upper bound where it is not a plain
    /// shuffle read).
    pub build_rows: u64,
    /// Estimated rows of the old probe side.
    pub probe_rows: u64,
}

impl std::fmt::Display for SwappedJoin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} hash join: build side swapped ({} rows) for the probe side (~{} rows)",
            self.join_type, self.build_rows, self.probe_rows
        )
    }
}

/// A stage's plan as it runs, and the joins swapped in it.
#[derive(Debug, Clone)]
pub struct SwappedPlan {
    pub plan: Arc<dyn ExecutionPlan>,
    /// Empty when the plan is the one planned.
    pub joins: Vec<SwappedJoin>,
}

/// `plan` (one stage's plan) with every partitioned hash join swapped whose
/// build side has more than [`SWAP_RATIO`] times the rows of its probe
/// side, given the rows each input stage wrote (`stage_rows(stage)`, `None`
/// when unknown). `None` when no join is swapped.
pub fn swap_build_sides(
    plan: &Arc<dyn ExecutionPlan>,
    stage_rows: &dyn Fn(usize) -> Option<u64>,
) -> Result<Option<SwappedPlan>> {
    let mut swapped = Vec::new();
    let rewritten = Arc::clone(plan).transform_up(|node| {
        let Some(join) = node.downcast_ref::<HashJoinExec>() else {
            return Ok(Transformed::no(node));
        };
        if *join.partition_mode() != PartitionMode::Partitioned
            || !join.join_type().supports_swap()
            || join.null_aware
            || node.output_ordering().is_some()
        {
            return Ok(Transformed::no(node));
        }
        let (Some(build), Some(probe)) = (
            rows(join.left(), stage_rows),
            rows(join.right(), stage_rows),
        ) else {
            return Ok(Transformed::no(node));
        };
        if build <= SWAP_RATIO.saturating_mul(probe) {
            return Ok(Transformed::no(node));
        }
        let plain = join.builder().reset_state().build()?;
        let new = plain.swap_inputs(PartitionMode::Partitioned)?;
        swapped.push(SwappedJoin {
            join_type: *join.join_type(),
            build_rows: build,
            probe_rows: probe,
        });
        Ok(Transformed::yes(new))
    })?;
    Ok(rewritten.transformed.then_some(SwappedPlan {
        plan: rewritten.data,
        joins: swapped,
    }))
}

/// Rows `plan` produces over all its partitions: exact for a shuffle read,
/// an upper bound through operators that never add rows, and the larger
/// input for an inner or outer join (the usual key-to-foreign-key case).
/// `None` through anything else.
fn rows(plan: &Arc<dyn ExecutionPlan>, stage_rows: &dyn Fn(usize) -> Option<u64>) -> Option<u64> {
    if let Some(reader) = plan.downcast_ref::<ShuffleReaderExec>() {
        return stage_rows(reader.stage());
    }
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        let left = rows(join.left(), stage_rows)?;
        let right = rows(join.right(), stage_rows)?;
        let estimate = match join.join_type() {
            JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => left,
            JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => right,
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => left.max(right),
        };
        return Some(match join.fetch() {
            Some(fetch) => estimate.min(fetch as u64),
            None => estimate,
        });
    }
    if let Some(union) = plan.downcast_ref::<UnionExec>() {
        return union
            .children()
            .into_iter()
            .map(|child| rows(child, stage_rows))
            .sum();
    }
    if let Some(aggregate) = plan.downcast_ref::<AggregateExec>() {
        // Grouping sets (CUBE, ROLLUP) emit a row per set and group.
        if aggregate.group_expr().groups().len() > 1 {
            return None;
        }
    }
    let passes = plan.downcast_ref::<FilterExec>().is_some()
        || plan.downcast_ref::<ProjectionExec>().is_some()
        || plan.downcast_ref::<CoalescePartitionsExec>().is_some()
        || plan.downcast_ref::<CooperativeExec>().is_some()
        || plan.downcast_ref::<SortExec>().is_some()
        || plan.downcast_ref::<AggregateExec>().is_some()
        || plan.downcast_ref::<KeyPartitionedExec>().is_some();
    match plan.children().as_slice() {
        [child] if passes => rows(child, stage_rows),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::NullEquality;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::Partitioning;
    use fairway_shuffle::ReadMode;

    fn reader(stage: usize, names: [&str; 2]) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![
            Field::new(names[0], DataType::Int64, true),
            Field::new(names[1], DataType::Int64, true),
        ]));
        let key = Arc::new(Column::new(names[0], 0));
        Arc::new(ShuffleReaderExec::new(
            stage,
            schema,
            ReadMode::Buckets {
                buckets: 4,
                maps: 4,
            },
            Some(Partitioning::Hash(vec![key], 4)),
        ))
    }

    fn join(join_type: JoinType, mode: PartitionMode) -> Arc<dyn ExecutionPlan> {
        let on = vec![(
            Arc::new(Column::new("a", 0)) as _,
            Arc::new(Column::new("c", 0)) as _,
        )];
        Arc::new(
            HashJoinExec::try_new(
                reader(0, ["a", "b"]),
                reader(1, ["c", "d"]),
                on,
                None,
                &join_type,
                None,
                mode,
                NullEquality::NullEqualsNothing,
                false,
            )
            .unwrap(),
        )
    }

    fn rows_of(left: u64, right: u64) -> impl Fn(usize) -> Option<u64> {
        move |stage| match stage {
            0 => Some(left),
            1 => Some(right),
            _ => None,
        }
    }

    #[test]
    fn a_build_side_much_larger_than_the_probe_side_is_swapped() {
        for (join_type, swapped_type) in [
            (JoinType::RightAnti, JoinType::LeftAnti),
            (JoinType::LeftSemi, JoinType::RightSemi),
            (JoinType::Inner, JoinType::Inner),
            (JoinType::Left, JoinType::Right),
        ] {
            let plan = join(join_type, PartitionMode::Partitioned);
            let SwappedPlan {
                plan: new,
                joins: swapped,
            } = swap_build_sides(&plan, &rows_of(1000, 10))
                .unwrap()
                .expect("swapped");
            assert_eq!(
                swapped,
                vec![SwappedJoin {
                    join_type,
                    build_rows: 1000,
                    probe_rows: 10
                }]
            );
            // The same columns in the same order, whatever the join type.
            assert_eq!(new.schema(), plan.schema(), "{join_type}");
            // Inner and outer joins come back under a projection that
            // restores the column order.
            let children = new.children();
            let join = new
                .downcast_ref::<HashJoinExec>()
                .or_else(|| {
                    children
                        .first()
                        .and_then(|c| c.downcast_ref::<HashJoinExec>())
                })
                .expect("a hash join");
            assert_eq!(*join.join_type(), swapped_type);
            let build = join.left().downcast_ref::<ShuffleReaderExec>().unwrap();
            assert_eq!(build.stage(), 1, "the small side builds");
            assert_eq!(
                new.output_partitioning().partition_count(),
                plan.output_partitioning().partition_count()
            );
        }
    }

    #[test]
    fn joins_stay_when_the_sides_are_close_or_unknown_or_not_partitioned() {
        let plan = join(JoinType::RightAnti, PartitionMode::Partitioned);
        // The build side is not more than SWAP_RATIO times the probe side.
        assert!(swap_build_sides(&plan, &rows_of(20, 10)).unwrap().is_none());
        // The small side builds already.
        assert!(
            swap_build_sides(&plan, &rows_of(10, 1000))
                .unwrap()
                .is_none()
        );
        // A side of unknown size.
        let unknown = |stage: usize| (stage == 0).then_some(1000);
        assert!(swap_build_sides(&plan, &unknown).unwrap().is_none());
        // A broadcast join's build side is one partition for every task.
        let broadcast = join(JoinType::Inner, PartitionMode::CollectLeft);
        assert!(
            swap_build_sides(&broadcast, &rows_of(1000, 10))
                .unwrap()
                .is_none()
        );
    }
}
