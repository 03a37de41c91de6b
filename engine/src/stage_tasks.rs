//! One job on the stage engine: how the scheduler's opaque tasks become
//! executions of stage plans.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::TaskContext as DataFusionTaskContext;
use datafusion::physical_plan::common::collect;
use fairway_planner::{StageGraph, StageOutput, SwappedPlan, swap_build_sides};
use fairway_scheduler::{
    JobCanceller, SchedulerError, TaskContext, TaskError, TaskOutcome, TaskRunner,
};
use fairway_shuffle::{JobShuffle, MapOutput, ShuffleError, write_map_output};
use futures::future::BoxFuture;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_plan::ExecutionPlan;

use fairway_files::FileError;

use crate::error::EngineError;
use crate::faults::{FaultInjection, OutputFault};
use crate::stage_metrics::{LeafCounters, StageAccumulator, StageMetrics, TaskReport};
use crate::yield_exec::YieldExec;

/// The tasks of one job: runs partition `p` of a stage plan, then writes the
/// result to the shuffle (map stages) or keeps it for the caller (the
/// result stage).
pub(crate) struct StageTasks {
    graph: StageGraph,
    shuffle: Arc<JobShuffle>,
    task_ctx: Arc<DataFusionTaskContext>,
    batch_size: usize,
    results: Mutex<Vec<Vec<RecordBatch>>>,
    /// The last error of every task that failed, by (stage, partition):
    /// the job's error is the one of the task that failed it.
    errors: Mutex<HashMap<(usize, usize), EngineError>>,
    /// The engine's job number (fault injection draws from it).
    job: u64,
    faults: FaultInjection,
    /// Partitions per stage whose task succeeded and whose output is not
    /// lost, to free a stage's shuffle output as soon as every stage
    /// reading it is done.
    done: Mutex<Vec<Vec<bool>>>,
    metrics: Mutex<Vec<StageAccumulator>>,
    /// Whether a stage's partitioned joins may swap sides when it starts
    /// (`fairway.adaptive.build_side`).
    adaptive: bool,
    /// The plan each stage runs, decided when its first task starts: the
    /// stage's own plan, or that plan with build sides swapped.
    plans: Mutex<Vec<Option<SwappedPlan>>>,
}

impl StageTasks {
    pub(crate) fn new(
        graph: StageGraph,
        shuffle: Arc<JobShuffle>,
        task_ctx: &DataFusionTaskContext,
        faults: FaultInjection,
    ) -> Arc<Self> {
        // Readers find the job's shuffle data through the task context.
        let config = task_ctx
            .session_config()
            .clone()
            .with_extension(Arc::clone(&shuffle));
        let batch_size = config.batch_size();
        let adaptive =
            crate::config::FairwayOptions::is_on(config.options(), "adaptive.build_side");
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
        let shuffle_job = shuffle.job_id();
        let stages = graph.stages().len();
        Arc::new(Self {
            done: Mutex::new(
                graph
                    .stages()
                    .iter()
                    .map(|s| vec![false; s.tasks()])
                    .collect(),
            ),
            metrics: Mutex::new((0..stages).map(|_| StageAccumulator::default()).collect()),
            adaptive,
            plans: Mutex::new(vec![None; stages]),
            graph,
            shuffle,
            task_ctx,
            batch_size,
            results: Mutex::new(vec![Vec::new(); result_partitions]),
            errors: Mutex::default(),
            job: shuffle_job,
            faults,
        })
    }

    async fn run_task(self: Arc<Self>, task: TaskContext) -> Result<TaskOutcome, EngineError> {
        let started = Instant::now();
        if let Some(message) =
            self.faults
                .failure(self.job, task.id.stage, task.id.partition, task.id.attempt)
        {
            return Err(EngineError::DataFusion(
                datafusion::error::DataFusionError::Execution(message),
            ));
        }
        let stage = &self.graph.stages()[task.id.stage];
        match Arc::clone(&self).run_plan(task, started).await {
            Ok(outcome) => Ok(outcome),
            Err(EngineError::DataFusion(e)) => match input_files(&stage.plan, task.id.partition) {
                Some(files) => Err(EngineError::DataFusion(
                    datafusion::error::DataFusionError::Context(
                        format!(
                            "stage {} task {} (reading {files})",
                            stage.id, task.id.partition
                        ),
                        Box::new(e),
                    ),
                )),
                None => Err(EngineError::DataFusion(e)),
            },
            Err(e) => Err(e),
        }
    }

    /// Runs partition `task.id.partition` of its stage's plan and writes
    /// or keeps the output.
    async fn run_plan(
        self: Arc<Self>,
        task: TaskContext,
        started: Instant,
    ) -> Result<TaskOutcome, EngineError> {
        let stage = &self.graph.stages()[task.id.stage];
        let leaves = Arc::new(LeafCounters::default());
        let plan = fresh_instance(&self.stage_plan(stage.id)?, &leaves)?;
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
                if let Some(fault) =
                    self.faults
                        .output_fault(stage.id, task.id.partition, task.id.attempt)
                {
                    self.damage_output(stage.id, task.id.partition, fault);
                }
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

    /// The plan stage `stage` runs. Its first task decides it: every stage
    /// it reads has finished then, so the rows each wrote are known, and a
    /// partitioned join whose build side is much the larger swaps its
    /// sides (`fairway_planner::swap_build_sides`).
    fn stage_plan(&self, stage: usize) -> Result<Arc<dyn ExecutionPlan>, EngineError> {
        let mut plans = self.plans.lock().expect("plans lock");
        if let Some(decided) = &plans[stage] {
            return Ok(Arc::clone(&decided.plan));
        }
        let original = &self.graph.stages()[stage].plan;
        let mut decided = SwappedPlan {
            plan: Arc::clone(original),
            joins: Vec::new(),
        };
        if self.adaptive {
            let metrics = self.metrics.lock().expect("metrics lock");
            let inputs = &self.graph.stages()[stage].inputs;
            let rows = |s: usize| inputs.contains(&s).then(|| metrics[s].rows_out());
            if let Some(swapped) = swap_build_sides(original, &rows)? {
                for join in &swapped.joins {
                    log::info!("job {} stage {stage}: {join}", self.job);
                }
                decided = swapped;
            }
        }
        let plan = Arc::clone(&decided.plan);
        plans[stage] = Some(decided);
        Ok(plan)
    }

    /// The plan every stage ran (`None` for a stage that never started),
    /// in stage order.
    pub(crate) fn stage_plans(&self) -> Vec<Option<SwappedPlan>> {
        self.plans.lock().expect("plans lock").clone()
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
    fn task_finished(&self, stage: usize, partition: usize) {
        let mut done = self.done.lock().expect("done lock");
        done[stage][partition] = true;
        let complete = |s: usize, done: &[Vec<bool>]| done[s].iter().all(|&d| d);
        if !complete(stage, &done) {
            return;
        }
        for &input in &self.graph.stages()[stage].inputs {
            let readers_done = self
                .graph
                .consumers(input)
                .into_iter()
                .all(|c| complete(c, &done));
            if readers_done {
                self.shuffle.remove_stage(input);
            }
        }
    }

    /// A task could not read map output `map` of `stage`: finds every lost
    /// output of that stage (the file of one is rarely lost alone),
    /// unregisters them so that nothing reads them until they are written
    /// again, and returns their partitions.
    fn lost_outputs(&self, stage: usize, map: usize) -> Vec<usize> {
        let mut lost = self
            .shuffle
            .lost_outputs(stage, self.graph.stages()[stage].tasks());
        if !lost.contains(&map) {
            lost.push(map);
            lost.sort_unstable();
        }
        self.shuffle.forget(stage, &lost);
        let mut done = self.done.lock().expect("done lock");
        for &partition in &lost {
            done[stage][partition] = false;
        }
        log::info!("shuffle outputs of stage {stage} partitions {lost:?} are lost");
        lost
    }

    /// Test-only ([`FaultInjection`]): deletes or damages the output a map
    /// task just wrote.
    fn damage_output(&self, stage: usize, partition: usize, fault: OutputFault) {
        let Ok(output) = self.shuffle.get(stage, partition) else {
            return;
        };
        match (output.as_ref(), fault) {
            (MapOutput::File { data, .. }, OutputFault::Lose) => {
                let _ = std::fs::remove_file(data);
            }
            (MapOutput::Memory { .. }, OutputFault::Lose) => {
                self.shuffle.forget(stage, &[partition]);
            }
            (MapOutput::File { data, offsets, .. }, OutputFault::Corrupt) => {
                if let Ok(mut bytes) = std::fs::read(data) {
                    // Garbage over the middle of every bucket's stream.
                    for window in offsets.windows(2) {
                        let (start, end) = (window[0] as usize, window[1] as usize);
                        let from = start + (end - start) / 3;
                        let to = (start + 2 * (end - start) / 3).min(bytes.len());
                        for (i, byte) in bytes[from.min(to)..to].iter_mut().enumerate() {
                            *byte = (i as u8).wrapping_mul(31).wrapping_add(7);
                        }
                    }
                    let _ = std::fs::write(data, bytes);
                }
            }
            (MapOutput::Memory { .. }, OutputFault::Corrupt) => {}
        }
    }

    /// The result batches, in partition order.
    pub(crate) fn take_results(&self) -> Vec<RecordBatch> {
        std::mem::take(&mut *self.results.lock().expect("results lock"))
            .into_iter()
            .flatten()
            .collect()
    }

    /// The error that ended the job: the last error of the task that
    /// failed it, with its full detail; the scheduler's own error when the
    /// job was cancelled or the scheduler failed.
    pub(crate) fn job_error(&self, error: SchedulerError) -> EngineError {
        if let SchedulerError::TaskFailed {
            stage, partition, ..
        } = &error
            && let Some(e) = self
                .errors
                .lock()
                .expect("error lock")
                .remove(&(*stage, *partition))
        {
            return e;
        }
        EngineError::Scheduler(error)
    }
}

/// The files that partition `partition` of `plan` scans, for error
/// messages: `a.parquet`, or `a.csv, b.csv and 3 more files`. `None` when
/// the partition reads no file. Partition `p` of an operator reads
/// partition `p` of its children (stages hold no exchange), except a union,
/// whose partitions are its children's, one child after another.
fn input_files(
    plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    partition: usize,
) -> Option<String> {
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::physical_plan::ExecutionPlanProperties;
    use datafusion::physical_plan::union::UnionExec;

    fn collect(
        plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        partition: usize,
        files: &mut Vec<String>,
    ) {
        if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
            if let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>()
                && let Some(group) = config.file_groups.get(partition)
            {
                for file in group.iter() {
                    let path = format!("/{}", file.object_meta.location);
                    if !files.contains(&path) {
                        files.push(path);
                    }
                }
            }
            return;
        }
        if plan.downcast_ref::<UnionExec>().is_some() {
            let mut offset = 0;
            for child in plan.children() {
                let count = child.output_partitioning().partition_count();
                if partition < offset + count {
                    collect(child, partition - offset, files);
                    return;
                }
                offset += count;
            }
            return;
        }
        for child in plan.children() {
            collect(child, partition, files);
        }
    }

    let mut files = Vec::new();
    collect(plan, partition, &mut files);
    match files.len() {
        0 => None,
        1..=3 => Some(files.join(", ")),
        n => Some(format!(
            "{} and {} more files",
            files[..3].join(", "),
            n - 3
        )),
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
                    tasks.task_finished(task.id.stage, task.id.partition);
                    Ok(outcome)
                }
                Err(e) => {
                    let message = e.to_string();
                    if let Some((stage, map)) = lost_map_output(&e) {
                        let lost = tasks.lost_outputs(stage, map);
                        tasks
                            .errors
                            .lock()
                            .expect("error lock")
                            .insert((task.id.stage, task.id.partition), e);
                        return Err(TaskError::fetch_failed(message, stage, lost));
                    }
                    let retryable = is_retryable(&e);
                    tasks
                        .errors
                        .lock()
                        .expect("error lock")
                        .insert((task.id.stage, task.id.partition), e);
                    if retryable {
                        Err(TaskError::new(message))
                    } else {
                        Err(TaskError::fatal(message))
                    }
                }
            }
        })
    }
}

/// The stage and map partition of a shuffle output that a task could not
/// read (missing, gone, truncated or corrupt), wherever DataFusion wrapped
/// the shuffle's error.
fn lost_map_output(error: &EngineError) -> Option<(usize, usize)> {
    let EngineError::DataFusion(e) = error else {
        return None;
    };
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(shuffle) = err.downcast_ref::<ShuffleError>() {
            return shuffle.lost_map_output();
        }
        if let Some(datafusion::error::DataFusionError::Shared(inner)) =
            err.downcast_ref::<datafusion::error::DataFusionError>()
        {
            current = Some(inner.as_ref());
            continue;
        }
        current = err.source();
    }
    None
}

/// Whether another attempt of a task that failed with `error` may succeed.
///
/// Fatal (the job fails at once): errors of the plan itself (SQL, planning,
/// schema, configuration, not implemented, internal errors), which a new
/// attempt of the same plan meets again; deterministic errors of the data
/// (a cast, parse, division by zero or overflow), which the same input
/// gives again, and so does a file that does not decode (corrupt parquet,
/// a CSV row with the wrong number of fields); and a closed shuffle, which means the job already ended
/// (cancelled or failed). Everything else (I/O, object store, resources
/// exhausted, a failure in a spawned operator task,
/// an injected failure) is retried, as Spark retries any task failure.
fn is_retryable(error: &EngineError) -> bool {
    match error {
        EngineError::DataFusion(e) => datafusion_retryable(e),
        EngineError::File(FileError::Io { .. }) => true,
        EngineError::Config { .. }
        | EngineError::Cancelled(_)
        | EngineError::Table { .. }
        | EngineError::Context { .. }
        | EngineError::Planner(_)
        | EngineError::Scheduler(_)
        | EngineError::File(FileError::Refused { .. }) => false,
    }
}

fn datafusion_retryable(error: &datafusion::error::DataFusionError) -> bool {
    use datafusion::arrow::error::ArrowError;
    use datafusion::error::DataFusionError as D;
    match error {
        D::SQL(..)
        | D::Plan(_)
        | D::SchemaError(..)
        | D::Configuration(_)
        | D::NotImplemented(_)
        | D::Internal(_) => false,
        D::Context(_, inner) => datafusion_retryable(inner),
        D::Shared(inner) => datafusion_retryable(inner),
        D::Diagnostic(_, inner) => datafusion_retryable(inner),
        D::ParquetError(e) => match e.as_ref() {
            parquet::errors::ParquetError::External(inner) => external_retryable(inner.as_ref()),
            _ => false,
        },
        D::ArrowError(e, _) => match e.as_ref() {
            ArrowError::CastError(_)
            | ArrowError::ParseError(_)
            | ArrowError::DivideByZero
            | ArrowError::ArithmeticOverflow(_)
            | ArrowError::CsvError(_)
            | ArrowError::JsonError(_)
            | ArrowError::ParquetError(_)
            | ArrowError::InvalidArgumentError(_)
            | ArrowError::SchemaError(_) => false,
            ArrowError::ExternalError(inner) => external_retryable(inner.as_ref()),
            _ => true,
        },
        D::External(inner) => external_retryable(inner.as_ref()),
        _ => true,
    }
}

fn external_retryable(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    if let Some(e) = error.downcast_ref::<datafusion::error::DataFusionError>() {
        return datafusion_retryable(e);
    }
    if let Some(e) = error.downcast_ref::<fairway_shuffle::ShuffleError>() {
        return !matches!(e, fairway_shuffle::ShuffleError::Closed { .. });
    }
    true
}

/// A job that runs now, as [`crate::Session::active_jobs`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveJob {
    /// The scheduler's job id (as in the event log).
    pub id: u64,
    /// The job group (`fairway.job.group`), if any.
    pub group: Option<String>,
    /// The pool the job runs in.
    pub pool: String,
    /// The statement.
    pub description: String,
    /// Its tags (`fairway.job.tags`).
    pub tags: Vec<String>,
}

/// What the engine knows of a job beyond the scheduler: tags and memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JobExtras {
    pub(crate) tags: Vec<String>,
    /// Bytes held now (0 once ended).
    pub(crate) memory: usize,
    /// The most bytes held at once.
    pub(crate) peak_memory: usize,
}

/// Ended jobs whose extras are kept (as many as the scheduler reports).
const ENDED_KEPT: usize = fairway_scheduler::FINISHED_JOBS_KEPT;

struct Entry {
    job: ActiveJob,
    canceller: JobCanceller,
    memory: Arc<crate::job_memory::JobMemory>,
}

#[derive(Default)]
struct Jobs {
    live: std::collections::BTreeMap<u64, Entry>,
    ended: std::collections::VecDeque<(u64, JobExtras)>,
}

/// The jobs of a session that are queued or run now, with what cancels
/// them, and the extras of the last ended ones.
#[derive(Default)]
pub(crate) struct ActiveJobs {
    jobs: Mutex<Jobs>,
}

impl ActiveJobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn list(&self) -> Vec<ActiveJob> {
        self.lock().live.values().map(|e| e.job.clone()).collect()
    }

    /// Tags and memory of every job known, live or ended.
    pub(crate) fn extras(&self) -> std::collections::HashMap<u64, JobExtras> {
        let jobs = self.lock();
        let mut extras: std::collections::HashMap<u64, JobExtras> =
            jobs.ended.iter().cloned().collect();
        for (&id, entry) in &jobs.live {
            extras.insert(
                id,
                JobExtras {
                    tags: entry.job.tags.clone(),
                    memory: entry.memory.held(),
                    peak_memory: entry.memory.peak(),
                },
            );
        }
        extras
    }

    /// Cancels every active job of `group`; returns how many.
    pub(crate) fn cancel_group(&self, group: &str) -> usize {
        self.cancel_where(|job| job.group.as_deref() == Some(group))
            .len()
    }

    /// Cancels every active job tagged `tag`; returns their ids.
    pub(crate) fn cancel_tagged(&self, tag: &str) -> Vec<u64> {
        self.cancel_where(|job| job.tags.iter().any(|t| t == tag))
    }

    fn cancel_where(&self, wanted: impl Fn(&ActiveJob) -> bool) -> Vec<u64> {
        let (ids, cancellers): (Vec<u64>, Vec<JobCanceller>) = self
            .lock()
            .live
            .values()
            .filter(|e| wanted(&e.job))
            .map(|e| (e.job.id, e.canceller.clone()))
            .unzip();
        // Outside the lock: cancelling ends jobs, whose guards deregister.
        for canceller in &cancellers {
            canceller.cancel();
        }
        ids
    }
}

/// Registers a job as active; cancels the job if the caller stops waiting
/// (its future is dropped); removes the job's shuffle data and its entry
/// in the active jobs in every case.
pub(crate) struct JobGuard {
    canceller: Option<JobCanceller>,
    shuffle: Arc<JobShuffle>,
    active: Arc<ActiveJobs>,
    id: u64,
}

impl JobGuard {
    pub(crate) fn new(
        job: ActiveJob,
        canceller: JobCanceller,
        memory: Arc<crate::job_memory::JobMemory>,
        shuffle: Arc<JobShuffle>,
        active: Arc<ActiveJobs>,
    ) -> Self {
        let id = job.id;
        active.lock().live.insert(
            id,
            Entry {
                job,
                canceller: canceller.clone(),
                memory,
            },
        );
        Self {
            canceller: Some(canceller),
            shuffle,
            active,
            id,
        }
    }

    /// The job ended on its own: nothing to cancel.
    pub(crate) fn finish(mut self) {
        self.canceller = None;
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        {
            let mut jobs = self.active.lock();
            if let Some(entry) = jobs.live.remove(&self.id) {
                if jobs.ended.len() == ENDED_KEPT {
                    jobs.ended.pop_front();
                }
                let extras = JobExtras {
                    tags: entry.job.tags,
                    memory: 0,
                    peak_memory: entry.memory.peak(),
                };
                jobs.ended.push_back((self.id, extras));
            }
        }
        if let Some(canceller) = self.canceller.take() {
            canceller.cancel();
        }
        self.shuffle.close();
    }
}

/// A copy of `plan` whose every operator is a new instance with fresh
/// execution state, so that a task shares nothing with the other tasks of
/// its stage (join build sides, scan queues, metrics). Every leaf gets a
/// [`YieldExec`] above it: the batch boundary where the task can give its
/// slot to a fairer pool; every other operator but the root gets a
/// `CooperativeExec` above it, so that a cancelled task stops soon.
fn fresh_instance(
    plan: &Arc<dyn ExecutionPlan>,
    leaves: &Arc<LeafCounters>,
) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_plan::coop::CooperativeExec;
    let root = Arc::clone(plan)
        .transform_up(|node| {
            let fresh = node.reset_state()?;
            Ok(Transformed::yes(if fresh.children().is_empty() {
                Arc::new(YieldExec::new(fresh, Arc::clone(leaves))) as Arc<dyn ExecutionPlan>
            } else {
                // Every batch an operator hands up spends tokio's
                // cooperative budget, so a task that makes many batches
                // from few (a nested-loop join) still returns to the
                // runtime often: a cancelled task stops there instead of
                // computing on, holding its worker thread.
                Arc::new(CooperativeExec::new(fresh)) as Arc<dyn ExecutionPlan>
            }))
        })
        .map(|t| t.data)?;
    // The root stays what the stage made (the shuffle writer or the result).
    Ok(match root.downcast_ref::<CooperativeExec>() {
        Some(coop) => Arc::clone(coop.children()[0]),
        None => root,
    })
}
