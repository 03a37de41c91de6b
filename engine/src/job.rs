//! One job on the stage engine: how the scheduler's opaque tasks become
//! executions of stage plans.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::TaskContext as DataFusionTaskContext;
use datafusion::physical_plan::common::collect;
use fairway_planner::{StageGraph, StageOutput};
use fairway_scheduler::{JobCanceller, TaskContext, TaskError, TaskOutcome, TaskRunner};
use fairway_shuffle::{JobShuffle, write_map_output};
use futures::future::BoxFuture;

use crate::error::EngineError;
use crate::session::fresh_instance;
use crate::stage_metrics::{LeafCounters, StageAccumulator, StageMetrics, TaskReport};

/// The tasks of one job: runs partition `p` of a stage plan, then writes the
/// result to the shuffle (map stages) or keeps it for the caller (the
/// result stage).
pub(crate) struct StageTasks {
    graph: StageGraph,
    shuffle: Arc<JobShuffle>,
    task_ctx: Arc<DataFusionTaskContext>,
    batch_size: usize,
    results: Mutex<Vec<Vec<RecordBatch>>>,
    first_error: Mutex<Option<EngineError>>,
    /// Tasks finished per stage, to free a stage's shuffle output as soon as
    /// every stage reading it is done.
    finished: Mutex<Vec<usize>>,
    metrics: Mutex<Vec<StageAccumulator>>,
}

impl StageTasks {
    pub(crate) fn new(
        graph: StageGraph,
        shuffle: Arc<JobShuffle>,
        task_ctx: &DataFusionTaskContext,
    ) -> Arc<Self> {
        // Readers find the job's shuffle data through the task context.
        let config = task_ctx
            .session_config()
            .clone()
            .with_extension(Arc::clone(&shuffle));
        let batch_size = config.batch_size();
        let task_ctx = Arc::new(DataFusionTaskContext::new(
            task_ctx.task_id(),
            task_ctx.session_id(),
            config,
            task_ctx.scalar_functions().clone(),
            task_ctx.higher_order_functions().clone(),
            task_ctx.aggregate_functions().clone(),
            task_ctx.window_functions().clone(),
            task_ctx.runtime_env(),
        ));
        let result_partitions = graph.result_stage().tasks();
        let stages = graph.stages().len();
        Arc::new(Self {
            finished: Mutex::new(vec![0; stages]),
            metrics: Mutex::new((0..stages).map(|_| StageAccumulator::default()).collect()),
            graph,
            shuffle,
            task_ctx,
            batch_size,
            results: Mutex::new(vec![Vec::new(); result_partitions]),
            first_error: Mutex::new(None),
        })
    }

    async fn run_task(self: Arc<Self>, task: TaskContext) -> Result<TaskOutcome, EngineError> {
        let started = Instant::now();
        let stage = &self.graph.stages()[task.id.stage];
        let leaves = Arc::new(LeafCounters::default());
        let plan = fresh_instance(&stage.plan, &leaves)?;
        let stream = plan.execute(task.id.partition, Arc::clone(&self.task_ctx))?;
        let (outcome, shuffle) = match &stage.output {
            StageOutput::Shuffle(partitioning) => {
                let stats = write_map_output(
                    &self.shuffle,
                    stage.id,
                    task.id.partition,
                    task.id.attempt,
                    stream,
                    partitioning,
                    self.batch_size,
                )
                .await
                .map_err(datafusion::error::DataFusionError::from)?;
                let outcome = TaskOutcome {
                    rows: stats.rows,
                    bytes: stats.bytes,
                };
                (outcome, Some((stats.bytes, stats.spilled)))
            }
            StageOutput::Result => {
                let batches = collect(stream).await?;
                let outcome = TaskOutcome {
                    rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
                    bytes: batches
                        .iter()
                        .map(|b| b.get_array_memory_size() as u64)
                        .sum(),
                };
                self.results.lock().expect("results lock")[task.id.partition] = batches;
                (outcome, None)
            }
        };
        self.metrics.lock().expect("metrics lock")[stage.id].add(TaskReport {
            started,
            ended: Instant::now(),
            leaves: &leaves,
            rows_out: outcome.rows,
            bytes_out: outcome.bytes,
            shuffle,
            operator_spill: operator_spilled_bytes(&plan),
        });
        Ok(outcome)
    }

    /// What every stage did, in stage order.
    pub(crate) fn stage_metrics(&self) -> Vec<StageMetrics> {
        self.metrics
            .lock()
            .expect("metrics lock")
            .iter()
            .map(StageAccumulator::metrics)
            .collect()
    }

    /// Records a finished task; once its stage is complete, drops the
    /// shuffle output of every input stage whose readers are all complete.
    fn task_finished(&self, stage: usize) {
        let mut finished = self.finished.lock().expect("finished lock");
        finished[stage] += 1;
        let complete = |s: usize, finished: &[usize]| finished[s] >= self.graph.stages()[s].tasks();
        if !complete(stage, &finished) {
            return;
        }
        for &input in &self.graph.stages()[stage].inputs {
            let readers_done = self
                .graph
                .consumers(input)
                .into_iter()
                .all(|c| complete(c, &finished));
            if readers_done {
                self.shuffle.remove_stage(input);
            }
        }
    }

    /// The result batches, in partition order.
    pub(crate) fn take_results(&self) -> Vec<RecordBatch> {
        std::mem::take(&mut *self.results.lock().expect("results lock"))
            .into_iter()
            .flatten()
            .collect()
    }

    /// The error of the first task that failed, with its full detail.
    pub(crate) fn take_error(&self) -> Option<EngineError> {
        self.first_error.lock().expect("error lock").take()
    }
}

/// Bytes DataFusion's own operators (sorts, aggregations, joins) spilled
/// while running this task's copy of the plan.
fn operator_spilled_bytes(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> u64 {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut total = 0u64;
    let _ = plan.apply(|node| {
        if let Some(bytes) = node.metrics().and_then(|m| m.spilled_bytes()) {
            total += bytes as u64;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    total
}

/// The scheduler's handle on a job's [`StageTasks`].
pub(crate) struct StageTaskRunner(pub(crate) Arc<StageTasks>);

impl TaskRunner for StageTaskRunner {
    fn run(&self, task: TaskContext) -> BoxFuture<'static, Result<TaskOutcome, TaskError>> {
        let tasks = Arc::clone(&self.0);
        Box::pin(async move {
            match Arc::clone(&tasks).run_task(task).await {
                Ok(outcome) => {
                    tasks.task_finished(task.id.stage);
                    Ok(outcome)
                }
                Err(e) => {
                    let message = e.to_string();
                    tasks
                        .first_error
                        .lock()
                        .expect("error lock")
                        .get_or_insert(e);
                    // Errors from plans (bad data, bad SQL semantics) fail
                    // the same way again: do not retry them.
                    Err(TaskError::fatal(message))
                }
            }
        })
    }
}

/// Cancels the job if the caller stops waiting (its future is dropped), and
/// removes the job's shuffle data in every case.
pub(crate) struct JobGuard {
    canceller: Option<JobCanceller>,
    shuffle: Arc<JobShuffle>,
}

impl JobGuard {
    pub(crate) fn new(canceller: JobCanceller, shuffle: Arc<JobShuffle>) -> Self {
        Self {
            canceller: Some(canceller),
            shuffle,
        }
    }

    /// The job ended on its own: nothing to cancel.
    pub(crate) fn finish(mut self) {
        self.canceller = None;
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if let Some(canceller) = self.canceller.take() {
            canceller.cancel();
        }
        self.shuffle.close();
    }
}
