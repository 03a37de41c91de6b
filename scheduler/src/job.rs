//! What a job is made of: stages, tasks, and the code that runs a task.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;

/// Identifies a job. Ids increase from 1, in submission order, per scheduler.
pub type JobId = u64;

/// Identifies a stage within its job (any number, unique within the job).
pub type StageId = usize;

/// A job to run: a DAG of stages, each a number of independent tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobSpec {
    /// Free text shown in events and logs (for example the query text).
    pub description: String,
    /// The stages; their order does not matter, `parents` defines the DAG.
    pub stages: Vec<StageSpec>,
    /// The scheduler pool to run in (Spark's `spark.scheduler.pool`); `None`
    /// means [`DEFAULT_POOL`](crate::DEFAULT_POOL). Used when the scheduler's
    /// mode is FAIR: a name that no pool has creates a pool with default
    /// settings (FIFO, weight 1, minShare 0). Under FIFO it only shows in
    /// events.
    pub pool: Option<String>,
    /// Longest the job may run once admitted; past it the job is cancelled
    /// and fails with [`SchedulerError::TimedOut`](crate::SchedulerError::TimedOut).
    /// `None` takes the pool's [`PoolConfig::timeout`](crate::PoolConfig::timeout)
    /// (under a FAIR root), else no timeout.
    pub timeout: Option<Duration>,
    /// Longest the job may wait in its pool's queue (a pool with
    /// [`PoolConfig::max_running_jobs`](crate::PoolConfig::max_running_jobs));
    /// counted apart from `timeout`. `None`: it waits as long as needed.
    pub queue_timeout: Option<Duration>,
}

/// One stage of a job: `tasks` tasks (partitions `0..tasks`) that may run once
/// every parent stage has completed.
///
/// A stage with `tasks == 0` completes immediately once its parents are done.
/// A parent listed twice counts once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageSpec {
    /// Unique within the job.
    pub id: StageId,
    /// Number of tasks (partitions) of the stage.
    pub tasks: usize,
    /// Stages that must complete before any task of this stage starts.
    pub parents: Vec<StageId>,
}

/// Identifies one attempt of one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// The job the task belongs to.
    pub job: JobId,
    /// The stage the task belongs to.
    pub stage: StageId,
    /// The partition the task computes, `0..tasks` of its stage.
    pub partition: usize,
    /// 0 for the first attempt, then 1, 2, ... for retries.
    pub attempt: u32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {} stage {} partition {} attempt {}",
            self.job, self.stage, self.partition, self.attempt
        )
    }
}

/// What a [`TaskRunner`] is told about the task it must run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskContext {
    /// Which task (and attempt) this is.
    pub id: TaskId,
    /// Index `0..slots` of the slot the task holds while it runs. No other
    /// task holds the same slot at the same time, so it can index per-slot
    /// resources (buffers, memory reservations).
    pub slot: usize,
}

/// What a successful task reports (used for events and statistics only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskOutcome {
    /// Rows the task produced.
    pub rows: u64,
    /// Bytes the task produced.
    pub bytes: u64,
}

/// Why a task failed, and whether running it again may help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    message: String,
    retryable: bool,
    /// Outputs of a parent stage that the task could not read.
    lost: Option<(StageId, Vec<usize>)>,
}

impl TaskError {
    /// A failure that may go away on another attempt (retried while the job's
    /// attempts last, see `SchedulerConfig::max_task_attempts`).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            lost: None,
        }
    }

    /// The task could not read the outputs of `partitions` of its parent
    /// stage `stage` (Spark's `FetchFailed`): they are lost. The scheduler
    /// runs those tasks of the parent stage again (from the parent's own
    /// inputs: lineage), holds back the failed task's stage until they
    /// succeeded, then runs the failed task again. Counts as one of the
    /// failed task's attempts.
    pub fn fetch_failed(
        message: impl Into<String>,
        stage: StageId,
        partitions: Vec<usize>,
    ) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            lost: Some((stage, partitions)),
        }
    }

    /// A failure that another attempt cannot fix: the job fails at once.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            lost: None,
        }
    }

    /// For a [`fetch_failed`](Self::fetch_failed) error: the parent stage
    /// and its partitions whose outputs are lost.
    pub fn lost_outputs(&self) -> Option<(StageId, &[usize])> {
        self.lost
            .as_ref()
            .map(|(stage, partitions)| (*stage, partitions.as_slice()))
    }

    /// The message given when the error was made.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the scheduler may run the task again.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

/// Runs the tasks of a job. The scheduler knows nothing of what a task does:
/// it calls [`TaskRunner::run`] on a worker thread of its runtime when the task
/// gets a slot and polls the returned future there until it ends.
///
/// The future may `tokio::spawn` more work; that work runs on the same bounded
/// set of worker threads. It may be dropped before it ends (job cancelled or
/// failed), so it must not rely on running to completion.
///
/// Closures `Fn(TaskContext) -> BoxFuture<...>` implement this trait.
pub trait TaskRunner: Send + Sync + 'static {
    /// Starts the task described by `task`.
    fn run(&self, task: TaskContext) -> BoxFuture<'static, Result<TaskOutcome, TaskError>>;
}

impl<F> TaskRunner for F
where
    F: Fn(TaskContext) -> BoxFuture<'static, Result<TaskOutcome, TaskError>>
        + Send
        + Sync
        + 'static,
{
    fn run(&self, task: TaskContext) -> BoxFuture<'static, Result<TaskOutcome, TaskError>> {
        self(task)
    }
}

/// What [`JobHandle::wait`](crate::JobHandle::wait) returns for a job that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSummary {
    /// The job.
    pub job: JobId,
    /// Number of tasks that succeeded: the sum of the stages' `tasks`, plus
    /// the tasks run again to recompute lost outputs.
    pub tasks: u64,
    /// Time from submission to the end of the last task.
    pub elapsed: Duration,
}
