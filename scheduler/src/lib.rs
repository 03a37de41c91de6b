//! Slot-bounded scheduler for stage DAGs of opaque tasks, with Spark's FIFO
//! and weighted FAIR scheduler pools.
//!
//! A job is a DAG of stages; a stage is a number of independent tasks
//! (partitions) that may start once all its parent stages have completed. The
//! [`Scheduler`] runs the tasks of all submitted jobs on a fixed number of
//! slots, on a dedicated tokio runtime whose worker threads are as many as
//! the slots. It retries failed tasks, fails, cancels, and reports progress
//! to a listener.
//!
//! Which stage gets a free slot follows Apache Spark's in-application
//! scheduler exactly: in [`SchedulingMode::Fifo`] the earliest job first; in
//! [`SchedulingMode::Fair`] jobs run in named pools that share the slots by
//! `minShare` and `weight`, each pool ordering its own jobs FIFO or FAIR.
//! Pools come from [`SchedulerConfig::pools`], typically read from a Spark
//! allocation file with [`parse_allocation_file`] (which can also check the
//! file more strictly than Spark does). See [`Scheduler`] for the design.
//!
//! Unlike Spark, FAIR pools can also take slots back: with
//! [`SchedulerConfig::preemption`], a task that calls a [`YieldPoint`]
//! between batches gives its slot up when another pool waits for its fair
//! share, and goes on once it gets a slot again.
//!
//! The crate knows nothing of what a task does: there is no DataFusion or
//! Arrow here. A [`TaskRunner`] supplied with each job turns a
//! [`TaskContext`] (job, stage, partition, attempt, slot) into a future; the
//! engine decides what that future computes.
//!
//! Two jobs submitted into FAIR pools: `reports` has weight 3, so while both
//! jobs have tasks waiting it runs three tasks for every one of `adhoc` (an
//! unknown pool name creates a pool with weight 1).
//!
//! ```
//! use std::sync::Arc;
//!
//! use fairway_scheduler::{
//!     JobSpec, Scheduler, SchedulerConfig, SchedulingMode, StageSpec, TaskContext, TaskError,
//!     TaskOutcome, TaskRunner, parse_allocation_str,
//! };
//! use futures::future::{BoxFuture, FutureExt};
//!
//! /// Pretends that partition `p` produces `p` rows.
//! struct CountRows;
//!
//! impl TaskRunner for CountRows {
//!     fn run(&self, task: TaskContext) -> BoxFuture<'static, Result<TaskOutcome, TaskError>> {
//!         async move {
//!             let rows = task.id.partition as u64;
//!             Ok(TaskOutcome { rows, bytes: 8 * rows })
//!         }
//!         .boxed()
//!     }
//! }
//!
//! let allocation = parse_allocation_str(
//!     r#"<allocations>
//!          <pool name="reports"><weight>3</weight><schedulingMode>FAIR</schedulingMode></pool>
//!        </allocations>"#,
//!     "fairscheduler.xml",
//!     true,
//! )?;
//! let scheduler = Scheduler::new(SchedulerConfig {
//!     slots: 2,
//!     mode: SchedulingMode::Fair,
//!     pools: allocation.pools,
//!     allocation_file_loaded: true,
//!     ..SchedulerConfig::default()
//! })?;
//! // Stage 0 scans in 4 tasks; stage 1 merges in 1 task once stage 0 is done.
//! let scan_then_merge = |pool: &str| JobSpec {
//!     description: format!("scan then merge in {pool}"),
//!     stages: vec![
//!         StageSpec { id: 0, tasks: 4, parents: vec![] },
//!         StageSpec { id: 1, tasks: 1, parents: vec![0] },
//!     ],
//!     pool: Some(pool.to_string()),
//!     ..JobSpec::default()
//! };
//! let reports = scheduler.submit(scan_then_merge("reports"), Arc::new(CountRows))?;
//! let adhoc = scheduler.submit(scan_then_merge("adhoc"), Arc::new(CountRows))?;
//! assert_eq!((reports.id(), adhoc.id()), (1, 2));
//! let summary = futures::executor::block_on(reports.wait())?;
//! assert_eq!(summary.tasks, 5);
//! futures::executor::block_on(adhoc.wait())?;
//!
//! // Pools as Spark's UI lists them: file pools, `default`, pools made on use.
//! let pools: Vec<String> = scheduler.pools().into_iter().map(|p| p.name).collect();
//! assert_eq!(pools, ["reports", "default", "adhoc"]);
//! assert_eq!(scheduler.metrics().tasks_completed, 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod admission;
mod allocation;
mod dag;
mod error;
mod events;
mod info;
mod job;
mod metrics;
mod policy;
mod pool;
mod preempt;
mod state;
mod units;
mod yielding;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::oneshot;

pub use crate::admission::{JobAdmission, JobPermit};
pub use crate::allocation::{
    Allocation, AllocationError, parse_allocation_file, parse_allocation_str,
};
pub use crate::error::SchedulerError;
pub use crate::events::{JobStatus, SchedulerEvent, SchedulerListener};
pub use crate::info::{JobInfo, JobState};
pub use crate::job::{
    JobId, JobSpec, JobSummary, StageId, StageSpec, TaskContext, TaskError, TaskId, TaskOutcome,
    TaskRunner,
};
pub use crate::metrics::SchedulerMetrics;
pub use crate::pool::{DEFAULT_POOL, PoolConfig, PoolStatus, SchedulingMode};
pub use crate::units::{format_duration, parse_duration, parse_size};
pub use crate::yielding::YieldPoint;

use crate::metrics::Counters;
use crate::policy::PoolTree;
pub use crate::state::FINISHED_JOBS_KEPT;
use crate::state::{Core, JobLimits, JobResult};

/// The most slots a [`Scheduler`] accepts ([`SchedulerConfig::slots`]).
///
/// Every slot is a worker thread of the scheduler's runtime, and the
/// runtime may add as many blocking threads again. Each thread reserves a
/// stack (2 MiB by default) and counts against the process and container
/// thread limits (`ulimit -u`, `pids.max`, often a few thousand); past them
/// the runtime cannot spawn its workers, and `--slots 100000` used to end
/// the process instead of failing. A slot is also a task running at once,
/// and tasks are CPU-bound batch work: more slots than hardware threads
/// only add switching and memory. 1024 is far above any single machine's
/// useful count (the default is the number of hardware threads) and, with
/// at most as many blocking threads, stays within usual thread limits.
pub const MAX_SLOTS: usize = 1024;

/// Settings of a [`Scheduler`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Most tasks running at once over all jobs, and the number of worker
    /// threads. From 1 to [`MAX_SLOTS`].
    pub slots: usize,
    /// Attempts per task before its job fails (1 = no retries). At least 1.
    /// Fetch failures ([`TaskError::fetch_failed`]) count too.
    pub max_task_attempts: u32,
    /// Name of the worker threads.
    pub thread_name: String,
    /// How the root orders its children (Spark's `spark.scheduler.mode`):
    /// FIFO (the default) ignores pools; FAIR runs jobs in pools.
    pub mode: SchedulingMode,
    /// The pools, in order (from an allocation file: see
    /// [`parse_allocation_file`]). Used only when `mode` is FAIR. Duplicate
    /// names are kept; a job naming one goes to the last.
    pub pools: Vec<PoolConfig>,
    /// Whether an allocation file was given. Under FAIR, when `pools` has no
    /// pool named [`DEFAULT_POOL`], one is appended after them: FIFO if a
    /// file was given (Spark's rule: a file that wants a FAIR default pool
    /// says so), FAIR otherwise (Spark >= 3.4 without a file). Pools given
    /// in code without a file follow the second rule.
    pub allocation_file_loaded: bool,
    /// Cooperative preemption between batches (off by default; Spark has
    /// none). Only has an effect when `mode` is FAIR: a running task of a
    /// top-level pool that holds more than its fair share is asked to give
    /// its slot up at its next [`YieldPoint`] when another top-level pool
    /// waits for slots, so that a short job submitted while a long one holds
    /// every slot gets its share within one batch instead of waiting for
    /// long tasks to end. Tasks that never call a yield point are never
    /// preempted. See [`Scheduler`] and [`YieldPoint`].
    pub preemption: bool,
}

impl Default for SchedulerConfig {
    /// As many slots as the machine has hardware threads (at most
    /// [`MAX_SLOTS`]), no retries, FIFO, no preemption.
    fn default() -> Self {
        Self {
            slots: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_SLOTS),
            max_task_attempts: 1,
            thread_name: "fairway-worker".to_string(),
            mode: SchedulingMode::Fifo,
            pools: Vec::new(),
            allocation_file_loaded: false,
            preemption: false,
        }
    }
}

/// Runs the tasks of stage DAGs on a fixed number of slots.
///
/// # Design
///
/// * **Slots and threads.** The scheduler owns a multi-thread tokio runtime
///   with exactly `slots` worker threads (named `thread_name`, at most
///   `max(slots, 2)` blocking threads). At most `slots` tasks hold a slot at
///   once; each task's future is spawned onto this runtime, so whatever a task
///   spawns with `tokio::spawn` also runs on those threads. That is what
///   bounds CPU use, whatever runtime the caller lives on. A task holds slot
///   index `s` (`0..slots`, [`TaskContext::slot`]) from its start to its end.
///   [`SchedulerMetrics::busy_threads`] counts worker threads between unpark
///   and park (runtime hooks); [`new`](Self::new) waits until every worker
///   has started and parked once, so that all of them are counted.
/// * **One lock, no event loop.** All state (jobs, stages, pending and running
///   tasks, free slots) is behind one `std::sync::Mutex`. There is no
///   scheduling thread: [`submit`](Self::submit), a task's end (the wrapper
///   future around each task locks and records it) and
///   [`cancel`](JobHandle::cancel) each update the state and then dispatch
///   pending tasks onto free slots right away, under the same lock. Task code
///   never runs under the lock.
/// * **DAG.** A stage becomes runnable when all its parents have completed,
///   so independent stages (both sides of a join) run at the same time. It
///   completes when all its tasks succeeded; the job succeeds when all its
///   stages completed.
/// * **Order.** Among runnable stages, the pool tree (module `policy`, a
///   re-implementation of Spark's) picks which one gets the next slot;
///   within a stage the lowest pending partition goes first.
///   * FIFO root ([`SchedulerConfig::mode`]): the smallest
///     `(job id, stage id)` first; [`JobSpec::pool`] is ignored (but
///     reported in events).
///   * FAIR root: top-level pools are the configured ones, then `default`,
///     then pools created when a job first names them (FIFO, weight 1,
///     minShare 0, with a logged warning). A job runs in its
///     [`JobSpec::pool`] or in `default`. Pools running fewer tasks than
///     their `min_share` go first (smallest `running / min_share`), then the
///     smallest `running / weight`, then the smaller name; a pool orders its
///     own stages by its own mode (FAIR: fewest running tasks, then task-set
///     name). Spark names task sets `TaskSet_<stage id>.<attempt>` with
///     application-wide stage ids; ours are per job, so every stage gets an
///     application-wide sequence number when its job is submitted (parents
///     first) and its task set is named `TaskSet_<sequence>.0`. Name ties
///     compare lexicographically, as in Spark (`TaskSet_10.0` before
///     `TaskSet_9.0`); everything else uses the job's own stage ids.
///   * The order is recomputed for every slot handed out, which is finer
///     than Spark's per-offer rounds (where the first stage takes every slot
///     of a round it can use). Without preemption (the default, and always
///     under a FIFO root) running tasks keep their slots: a share is reached
///     as slots free up.
/// * **Cooperative preemption** ([`SchedulerConfig::preemption`], FAIR root
///   only). Spark cannot take a slot back, so a pool that holds every slot
///   keeps them until its tasks end, however short the jobs that wait. Tasks
///   here cannot be interrupted either (a future dropped half-way loses its
///   work), but task code calls a [`YieldPoint`] between batches. After every
///   change (submit, task end, yield, resume, cancel), when no slot is free
///   and the top-level pool `P` that the root would serve next has work
///   waiting, the scheduler asks running tasks of *other* top-level pools to
///   yield, as many as `P`'s waiting work and the fair split call for: a
///   task of pool `Q` when `P` with one more task would still be strictly
///   further below its share than `Q` is now (Spark's comparator without
///   names: needy before satisfied, then `running / minShare` or
///   `running / weight`), and the freed slot would go to `P` rather than
///   back to `Q`. It asks the pool most over its share, and there the task
///   that started last. Every slot moved makes the split strictly fairer, so
///   slots never move back and forth (module `preempt` has the details).
///   Requests are recomputed after every change and withdrawn when no
///   longer wanted. A task asked to yield gives its slot up at its next
///   yield point ([`SchedulerEvent::TaskYield`]; it stops counting as
///   running) and waits in its stage as a *resumable* task, which competes
///   for slots exactly like the stage's pending tasks and goes before them.
///   When the tree picks its stage again the task is resumed, possibly on
///   another slot ([`SchedulerEvent::TaskResume`]), by signalling its
///   waiting future: nothing is spawned again. A suspended task keeps all
///   its memory and waits only for a slot, so there is no deadlock; cancel,
///   failure and dropping the scheduler abort it like a running task. Slots
///   never move within one top-level pool.
/// * **Failure.** A task that returns an error is run again (next attempt
///   number) while the error is retryable and attempts are left
///   ([`SchedulerConfig::max_task_attempts`]); otherwise its job fails with
///   [`SchedulerError::TaskFailed`]: the job's running tasks are aborted and
///   their slots freed, its pending tasks dropped. A task that panics fails
///   the same way (not retried), with message `task panicked: ...`; the
///   scheduler goes on.
/// * **Lost outputs (lineage).** A task that fails with
///   [`TaskError::fetch_failed`] could not read outputs of a parent stage
///   (Spark's `FetchFailed`). Those partitions of the parent are marked
///   not done and pending again (next attempt numbers); a parent that had
///   completed is reopened ([`SchedulerEvent::StageSubmitted`] again, with
///   the number of tasks to recompute) and every stage reading it that has
///   not completed is held back: its running tasks go on, its pending ones
///   (the failed task among them, with its next attempt) wait until the
///   parent completes again. If the parent's own inputs are gone too, its
///   re-run tasks report that in turn, so recomputation walks up the
///   lineage as far as needed. A fetch failure counts as one attempt of the
///   failed task (Spark counts stage attempts instead), which bounds the
///   loop.
/// * **Cancel.** [`JobHandle::cancel`] ends the job with
///   [`SchedulerError::Cancelled`], aborts its running tasks (their slots are
///   free at once) and drops its pending ones. Other jobs are not affected.
///   An aborted future stops at its next `.await` (a long synchronous stretch
///   finishes first); work that a task spawned itself is not aborted.
/// * **Results.** [`JobHandle::wait`] resolves through a oneshot channel, so it
///   works from any runtime or from synchronous code with a `block_on`.
///   Dropping a handle does not cancel its job.
/// * **Events.** A listener set with [`set_listener`](Self::set_listener)
///   gets [`SchedulerEvent`]s outside the lock, in state order (see
///   [`SchedulerListener`]). A job's result is sent before its `JobEnd`
///   event is delivered, so `wait` may return just before the listener hears
///   of the end.
/// * **Lifetime.** `Scheduler` is a cheap handle (clone it freely); job
///   handles hold one too. When the last one is dropped, jobs still running
///   fail with [`SchedulerError::Internal`] and the runtime is shut down in the
///   background (safe from inside any async context).
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

/// Owns the runtime; dropped with the last `Scheduler` clone. Running tasks
/// hold the [`Core`] only, never this, so the runtime never owns itself.
struct Shared {
    core: Arc<Core>,
    slots: usize,
    runtime: Option<Runtime>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.core.close();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Scheduler {
    /// Starts a scheduler and its worker runtime. Blocks briefly (normally
    /// well under a millisecond per worker, at most 2 s) until the worker
    /// threads are up.
    ///
    /// Fails with [`SchedulerError::InvalidConfig`] when `slots` is 0 or
    /// above [`MAX_SLOTS`] or `max_task_attempts` is 0, and with
    /// [`SchedulerError::Internal`] when the runtime cannot start.
    pub fn new(config: SchedulerConfig) -> Result<Self, SchedulerError> {
        if config.slots == 0 {
            return Err(SchedulerError::InvalidConfig(
                "slots must be at least 1, got 0".to_string(),
            ));
        }
        if config.slots > MAX_SLOTS {
            return Err(SchedulerError::InvalidConfig(format!(
                "slots {} is above the maximum of {MAX_SLOTS}: every slot is a worker \
                 thread (and may add a blocking thread)",
                config.slots
            )));
        }
        if config.max_task_attempts == 0 {
            return Err(SchedulerError::InvalidConfig(
                "max_task_attempts must be at least 1".to_string(),
            ));
        }
        let counters = Arc::new(Counters::default());
        let on_unpark = Arc::clone(&counters);
        let on_park = Arc::clone(&counters);
        let on_stop = Arc::clone(&counters);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.slots)
            .max_blocking_threads(config.slots.max(2))
            .thread_name(config.thread_name.clone())
            .enable_all()
            .on_thread_unpark(move || on_unpark.worker_unparked())
            .on_thread_park(move || on_park.worker_parked())
            .on_thread_stop(move || on_stop.thread_stopped())
            .build()
            .map_err(|error| {
                SchedulerError::Internal(format!("cannot start the worker runtime: {error}"))
            })?;
        wait_for_workers(&counters, config.slots);
        let pools = PoolTree::new(config.mode, &config.pools, config.allocation_file_loaded);
        if config.preemption && config.mode == SchedulingMode::Fifo {
            log::info!("scheduling mode is FIFO: preemption has no effect");
        }
        let core = Core::new(
            runtime.handle().clone(),
            config.slots,
            config.max_task_attempts,
            pools,
            config.preemption,
            counters,
        );
        Ok(Self {
            shared: Arc::new(Shared {
                core: Arc::new(core),
                slots: config.slots,
                runtime: Some(runtime),
            }),
        })
    }

    /// Submits a job and returns at once; its tasks start as slots free up.
    ///
    /// Fails with [`SchedulerError::InvalidJob`] when the stages are not a
    /// DAG (no stages, duplicate stage id, unknown parent, cycle), and with
    /// [`SchedulerError::QueueFull`] when the job's pool has
    /// `maxQueuedJobs` jobs waiting already.
    pub fn submit(
        &self,
        job: JobSpec,
        runner: Arc<dyn TaskRunner>,
    ) -> Result<JobHandle, SchedulerError> {
        let plan = dag::plan_stages(&job)?;
        let core = &self.shared.core;
        let limits = JobLimits {
            timeout: job.timeout,
            queue_timeout: job.queue_timeout,
        };
        let (id, result) = core.submit(job.description, job.pool, plan, runner, limits)?;
        Ok(JobHandle {
            id,
            result,
            canceller: JobCanceller {
                job: id,
                core: Arc::clone(core),
            },
            _scheduler: self.clone(),
        })
    }

    /// Number of slots (and worker threads).
    pub fn slots(&self) -> usize {
        self.shared.slots
    }

    /// Handle of the worker runtime, to run other work on the same threads.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.shared.core.runtime().clone()
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> SchedulerMetrics {
        self.shared.core.counters.snapshot()
    }

    /// The root's scheduling mode ([`SchedulerConfig::mode`]).
    pub fn mode(&self) -> SchedulingMode {
        self.shared.core.mode()
    }

    /// The top-level pools in the order of the root's queue before sorting
    /// (configured pools, `default`, pools created on use), with their
    /// running tasks and active stages: Spark UI's pool table. Empty under
    /// a FIFO root, which has no pools.
    pub fn pools(&self) -> Vec<PoolStatus> {
        self.shared.core.pools()
    }

    /// Every live job (queued or running) and the last ended ones (at
    /// most [`FINISHED_JOBS_KEPT`]), in id order: `fairway.jobs`. A short copy under the
    /// scheduler's lock; it never waits for a job.
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.shared.core.jobs()
    }

    /// Cancels job `job` (queued or running) as [`JobHandle::cancel`]
    /// does, from anywhere; returns false when no such job is live.
    pub fn cancel(&self, job: JobId) -> bool {
        self.shared.core.cancel(job)
    }

    /// Sets the peaks of [`SchedulerMetrics`] to the current values.
    pub fn reset_peaks(&self) {
        self.shared.core.counters.reset_peaks();
    }

    /// Sets (or with `None` removes) the listener that receives
    /// [`SchedulerEvent`]s from now on.
    pub fn set_listener(&self, listener: Option<Arc<dyn SchedulerListener>>) {
        self.shared.core.set_listener(listener);
    }
}

/// Waits (briefly: workers start and park at once when there is no work)
/// until every worker thread has parked once, so that `busy_threads` counts
/// all of them from the first task on. Gives up after a while: the count is
/// then low until the late workers first park.
fn wait_for_workers(counters: &Counters, workers: usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while counters.workers_seen() < workers {
        if Instant::now() >= deadline {
            log::warn!(
                "only {} of {workers} worker threads started in time; busy thread counts may be low",
                counters.workers_seen()
            );
            return;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("slots", &self.slots())
            .field("metrics", &self.metrics())
            .finish()
    }
}

/// A submitted job: wait for its result or cancel it.
///
/// Dropping the handle without calling [`wait`](Self::wait) does not cancel
/// the job; it runs on, detached.
pub struct JobHandle {
    id: JobId,
    result: oneshot::Receiver<JobResult>,
    canceller: JobCanceller,
    /// Keeps the runtime alive while someone may wait for the job.
    _scheduler: Scheduler,
}

impl JobHandle {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Cancels the job: pending tasks are dropped, running ones aborted, and
    /// [`wait`](Self::wait) returns [`SchedulerError::Cancelled`]. Does
    /// nothing if the job has already ended.
    pub fn cancel(&self) {
        self.canceller.cancel();
    }

    /// A handle that can cancel the job from elsewhere (another thread or
    /// task) while this one waits.
    pub fn canceller(&self) -> JobCanceller {
        self.canceller.clone()
    }

    /// Waits for the job to end; works from any runtime or a `block_on`.
    pub async fn wait(self) -> Result<JobSummary, SchedulerError> {
        match self.result.await {
            Ok(result) => result,
            Err(_) => Err(SchedulerError::Internal(format!(
                "job {} ended without a result",
                self.id
            ))),
        }
    }
}

impl fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.id).finish()
    }
}

/// Cancels one job; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct JobCanceller {
    job: JobId,
    core: Arc<Core>,
}

impl JobCanceller {
    /// The job this cancels.
    pub fn job(&self) -> JobId {
        self.job
    }

    /// Same as [`JobHandle::cancel`].
    pub fn cancel(&self) {
        self.core.cancel(self.job);
    }
}

impl fmt::Debug for JobCanceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobCanceller")
            .field("job", &self.job)
            .finish()
    }
}
