//! Cuts a DataFusion physical plan into a *stage graph*, like Spark's DAG of
//! stages: a new stage begins at every exchange.
//!
//! * A hash (or range) `RepartitionExec` becomes a shuffle: the subtree below
//!   is a producer stage whose map tasks partition their output by the same
//!   expressions; in the consumer the exchange is replaced by a
//!   [`ShuffleReaderExec`] that reads one bucket of every map output.
//! * A round-robin `RepartitionExec` is **removed**: it only spreads batches,
//!   and inside a per-partition task it would read its whole input. Scan
//!   parallelism comes from DataFusion's file-scan splitting instead.
//! * Below a `CoalescePartitionsExec` or `SortPreservingMergeExec` with more
//!   than one input partition, the input becomes a stage; the coalesce or
//!   merge stays in the consumer, over a reader of every map output (or one
//!   reader partition per map, which a merge needs).
//! * The single-partition side of a broadcast join (a `CollectLeft` hash join,
//!   a cross join or nested-loop join) becomes its own stage, read whole by
//!   every probe task. Before cutting, joins that would emit build-side rows
//!   from a broadcast (`Left`, `Full`, `LeftSemi`, `LeftAnti`, `LeftMark`) are
//!   turned into partitioned hash joins, and null-aware anti joins (`NOT IN`)
//!   run as a single task; see [`prepare_plan`].
//!
//! Each stage runs as one task per output partition of its plan. Nothing here
//! executes anything: this crate does not know about tasks or slots.
//!
//! ```
//! # use std::sync::Arc;
//! # use datafusion::prelude::*;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! let config = SessionConfig::new().with_target_partitions(4);
//! let ctx = SessionContext::new_with_config(config);
//! ctx.sql("create table t (k int, v int) as values (1, 10), (2, 20), (1, 30)").await?;
//! let plan = ctx
//!     .sql("select k, sum(v) from t group by k")
//!     .await?
//!     .create_physical_plan()
//!     .await?;
//! let graph = fairway_planner::split_into_stages(plan)?;
//! assert!(graph.stages().len() >= 2);
//! println!("{graph}");
//! # Ok(())
//! # }
//! ```

mod adaptive;
mod co_partition;
mod error;
mod in_process;
mod order;
mod prepare;
mod reduce;
mod split;
mod stage;
mod switch;
mod tournament;
mod using;
mod using_sql;

pub use adaptive::{SWAP_RATIO, SwappedJoin, SwappedPlan, swap_build_sides};
pub use co_partition::{CoPartitionedJoins, KeyPartitionedExec};
pub use error::PlannerError;
pub use fairway_shuffle::{ReadMode, ShuffleReaderExec};
pub use in_process::InProcessExec;
pub use order::FilteredJoinsFirst;
pub use prepare::{BroadcastJoinSafety, prepare_plan};
pub use reduce::SemiJoinReduction;
pub use split::split_into_stages;
pub use stage::{Stage, StageGraph, StageId, StageOutput, operators_text};
pub use tournament::{
    Kind as BalancedKind, RuleSwitch, TournamentJoins, balanced_join, balanced_left_join,
    join_depth,
};
pub use using::StandardUsingJoins;
pub use using_sql::{ColumnsOf, standard_using_joins, using_join_relations};
