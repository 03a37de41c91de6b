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

mod prepare;
mod split;
mod tournament;
mod using;
mod using_sql;

use std::fmt;
use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, displayable};
use fairway_shuffle::MapPartitioning;

pub use fairway_shuffle::{ReadMode, ShuffleReaderExec};
pub use prepare::{BroadcastJoinSafety, prepare_plan};
pub use split::split_into_stages;
pub use tournament::{
    Kind as BalancedKind, RuleSwitch, TournamentJoins, balanced_join, balanced_left_join,
    join_depth,
};
pub use using::StandardUsingJoins;
pub use using_sql::{ColumnsOf, standard_using_joins, using_join_relations};

/// Kinds of planning failure.
#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    /// The plan uses an operator the stage engine cannot split safely.
    #[error("cannot run on the stage engine: {0}")]
    Unsupported(String),
    /// DataFusion failed while re-planning a part of the plan.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// A stage violated an invariant of the splitter (a bug).
    #[error("internal planner error: {0}")]
    Internal(String),
}

impl From<PlannerError> for DataFusionError {
    fn from(e: PlannerError) -> Self {
        match e {
            PlannerError::DataFusion(e) => e,
            PlannerError::Unsupported(m) => DataFusionError::NotImplemented(m),
            PlannerError::Internal(m) => DataFusionError::Internal(m),
        }
    }
}

/// Stage identifier, unique within one [`StageGraph`]. Stages that feed
/// others have smaller ids, as in Spark.
pub type StageId = usize;

/// Where a stage's output goes.
#[derive(Debug, Clone)]
pub enum StageOutput {
    /// To a shuffle, split for the consumer stage.
    Shuffle(MapPartitioning),
    /// Back to the caller: this is the job's last stage.
    Result,
}

/// One stage: a plan whose leaves are scans or shuffle readers, run as one
/// task per output partition.
#[derive(Debug, Clone)]
pub struct Stage {
    pub id: StageId,
    pub plan: Arc<dyn ExecutionPlan>,
    pub output: StageOutput,
    /// Stages whose output this stage reads, in plan order.
    pub inputs: Vec<StageId>,
}

impl Stage {
    /// Number of tasks: one per output partition of the stage plan.
    pub fn tasks(&self) -> usize {
        self.plan.output_partitioning().partition_count()
    }
}

/// The stages of one query; the last one is the result stage.
#[derive(Debug, Clone)]
pub struct StageGraph {
    stages: Vec<Stage>,
}

impl StageGraph {
    /// Stages in id order (producers before consumers).
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn stage(&self, id: StageId) -> Option<&Stage> {
        self.stages.get(id)
    }

    /// The stage whose tasks return the query result.
    pub fn result_stage(&self) -> &Stage {
        self.stages
            .last()
            .expect("a stage graph has a result stage")
    }

    /// Ids of the stages that read `id`.
    pub fn consumers(&self, id: StageId) -> Vec<StageId> {
        self.stages
            .iter()
            .filter(|s| s.inputs.contains(&id))
            .map(|s| s.id)
            .collect()
    }
}

impl Stage {
    /// The stage's header line: id, task count, the stages it reads and how
    /// its output is partitioned.
    pub fn header(&self) -> String {
        let reads = if self.inputs.is_empty() {
            "-".to_string()
        } else {
            self.inputs
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let output = match &self.output {
            StageOutput::Result => "result".to_string(),
            StageOutput::Shuffle(MapPartitioning::Single) => {
                "shuffle, one bucket per task".to_string()
            }
            StageOutput::Shuffle(MapPartitioning::Partitioned(p)) => format!("shuffle {p}"),
        };
        format!(
            "Stage {} [tasks={}, reads={reads}, output={output}]",
            self.id,
            self.tasks()
        )
    }

    /// The stage's operators, one per line, indented by depth.
    pub fn operators(&self) -> String {
        displayable(self.plan.as_ref()).indent(false).to_string()
    }
}

impl fmt::Display for StageGraph {
    /// Prints every stage, producers first: its id, task count, the stages it
    /// reads, how its output is partitioned, then its operators indented.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{}", stage.header())?;
            for line in stage.operators().lines() {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}
