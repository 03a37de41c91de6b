//! The stage graph that [`split_into_stages`](crate::split_into_stages)
//! returns: stages, their inputs and outputs, and the text `fairway explain`
//! prints.

use std::fmt;
use std::sync::Arc;

use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, displayable};
use fairway_shuffle::MapPartitioning;

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
    pub(crate) stages: Vec<Stage>,
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
        operators_text(&self.plan)
    }
}

/// A stage plan's operators, one per line, indented by depth, as
/// `fairway explain` and `EXPLAIN ANALYZE` print them.
pub fn operators_text(plan: &Arc<dyn ExecutionPlan>) -> String {
    displayable(plan.as_ref()).indent(false).to_string()
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
