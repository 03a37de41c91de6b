//! The scheduler's state machine: jobs, stages, slots, and dispatch.
//!
//! All state sits in one [`State`] under one mutex in [`Core`]. Every change
//! (submit, task end, cancel) locks it, updates it, dispatches as many pending
//! tasks as there are free slots, queues listener events, and unlocks; the
//! queued events are then delivered outside the lock by
//! [`Core::deliver_events`]. Which stage gets each free slot is the pool
//! tree's decision (module `policy`).
//!
//! With preemption on (FAIR root), every dispatch ends by recomputing which
//! running tasks to ask to yield (module `preempt`); a task that yields
//! ([`Core::suspend`], called from its [`YieldPoint`](crate::YieldPoint))
//! gives its slot back and waits in its stage's `resumable` queue, which
//! dispatch serves before the stage's pending partitions. The yield point
//! reaches `Core` through the `yielding::SlotOwner` trait, so that module
//! does not depend on this one.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::dag::{self, StagePlan};
use crate::error::SchedulerError;
use crate::events::{JobStatus, SchedulerEvent, SchedulerListener};
use crate::info::{JobInfo, JobState};
use crate::job::{
    JobId, JobSummary, StageId, TaskContext, TaskError, TaskId, TaskOutcome, TaskRunner,
};
use crate::metrics::Counters;
use crate::policy::{NodeId, PoolTree, ROOT};
use crate::pool::{DEFAULT_POOL, PoolStatus, SchedulingMode};
use crate::preempt::{self, PoolLoad, Victim};
use crate::yielding::{self, SlotOwner, YieldPoint, YieldShared};

pub(crate) type JobResult = Result<JobSummary, SchedulerError>;

/// How many ended jobs [`Scheduler::jobs`](crate::Scheduler::jobs) still reports.
pub const FINISHED_JOBS_KEPT: usize = 1000;

/// Shared by the `Scheduler` clones, the job handles, and every running task.
#[derive(Debug)]
pub(crate) struct Core {
    state: Mutex<State>,
    runtime: Handle,
    max_task_attempts: u32,
    /// Cooperative preemption is on and the root is FAIR.
    preemption: bool,
    pub(crate) counters: Arc<Counters>,
}

#[derive(Debug)]
struct State {
    next_job: JobId,
    /// Slot indices not held by a task; `pop` gives the next one to use.
    free_slots: Vec<usize>,
    jobs: BTreeMap<JobId, JobEntry>,
    /// Pools and the task sets of submitted stages: the ordering policy.
    pools: PoolTree,
    /// Global number of the next stage, for task-set names (see `policy`).
    next_stage_sequence: u64,
    /// Start order of the next task attempt (preemption asks later ones
    /// first).
    next_task_sequence: u64,
    /// Set when the scheduler is dropped: nothing starts any more.
    closed: bool,
    events: EventQueue,
    /// Admitted jobs and the queue of each top-level pool (the root under
    /// FIFO), by pool node.
    admission: HashMap<NodeId, PoolJobs>,
    /// The last [`FINISHED_JOBS_KEPT`] ended jobs, oldest first.
    finished: VecDeque<JobInfo>,
}

/// One pool's jobs at the admission level.
#[derive(Debug, Default)]
struct PoolJobs {
    /// Admitted and not ended.
    running: usize,
    /// Waiting for admission, in submission order.
    queue: VecDeque<JobId>,
}

/// How a job's limits were set at submission.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JobLimits {
    pub(crate) timeout: Option<Duration>,
    pub(crate) queue_timeout: Option<Duration>,
}

struct JobEntry {
    runner: Arc<dyn TaskRunner>,
    /// Where the job's task sets go in the pool tree (the root under FIFO).
    pool_node: NodeId,
    /// The pool name reported in events.
    pool: String,
    stages: BTreeMap<StageId, StageState>,
    stages_left: usize,
    tasks_succeeded: u64,
    /// Live task attempts (holding a slot, or suspended), by (stage,
    /// partition).
    running: HashMap<(StageId, usize), RunningTask>,
    started: Instant,
    done: oneshot::Sender<JobResult>,
    description: String,
    submitted_at: SystemTime,
    /// The top-level pool whose admission counts the job (the root under
    /// FIFO).
    admission_pool: NodeId,
    /// When the job was admitted; `None` while it waits in the queue.
    admitted: Option<(Instant, SystemTime)>,
    /// Root stages, submitted at admission.
    roots: Vec<StageId>,
    tasks_total: usize,
    /// The run timeout that applies (the job's, else its pool's).
    timeout: Option<Duration>,
    /// The timer of the timeout that runs now (queue, then run).
    timer: Option<AbortHandle>,
}

impl std::fmt::Debug for JobEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEntry")
            .field("pool", &self.pool)
            .field("stages", &self.stages)
            .field("stages_left", &self.stages_left)
            .field("tasks_succeeded", &self.tasks_succeeded)
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct StageState {
    plan: StagePlan,
    /// Global sequence number, naming the stage's task set.
    sequence: u64,
    parents_left: usize,
    /// All parents completed: tasks may get slots.
    submitted: bool,
    /// Partitions waiting for a slot, with the attempt to run next.
    pending: BTreeMap<usize, u32>,
    /// Partitions of suspended tasks waiting for a slot, in the order they
    /// yielded. Served before `pending`.
    resumable: VecDeque<usize>,
    /// Partitions whose output is there: succeeded and not lost since.
    done: Vec<bool>,
    succeeded: usize,
    /// The attempt number of each partition's next attempt.
    next_attempt: Vec<u32>,
    /// For each partition, the task start sequence when its output was
    /// last registered: a reader started before that saw an older output,
    /// so its report that the output is lost is stale.
    output_sequence: Vec<u64>,
    /// Every partition is done; children may read the stage's outputs.
    completed: bool,
}

impl StageState {
    /// Tasks waiting for a slot: the task set is schedulable. Pending tasks
    /// of a stage that waits for lost parent outputs to be recomputed do
    /// not count (suspended ones may go on: they hold their inputs).
    fn waiting(&self) -> usize {
        let pending = if self.parents_left == 0 {
            self.pending.len()
        } else {
            0
        };
        pending + self.resumable.len()
    }
}

impl JobEntry {
    /// The job as [`Core::jobs`] reports it; `ended` gives the status and
    /// result of a job that ends now.
    fn info(&self, id: JobId, now: Instant, ended: Option<(JobStatus, &JobResult)>) -> JobInfo {
        let state = match ended.map(|(status, _)| status) {
            None if self.admitted.is_none() => JobState::Queued,
            None => JobState::Running,
            Some(JobStatus::Succeeded) => JobState::Succeeded,
            Some(JobStatus::Failed) => JobState::Failed,
            Some(JobStatus::Cancelled) => JobState::Cancelled,
            Some(JobStatus::TimedOut) => JobState::TimedOut,
        };
        let (queued, run) = match self.admitted {
            Some((at, _)) => (at.duration_since(self.started), now.duration_since(at)),
            None => (now.duration_since(self.started), Duration::ZERO),
        };
        JobInfo {
            id,
            pool: self.pool.clone(),
            description: self.description.clone(),
            state,
            submitted: self.submitted_at,
            started: self.admitted.map(|(_, at)| at),
            finished: ended.map(|_| SystemTime::now()),
            queued,
            run,
            running_tasks: self
                .running
                .values()
                .filter(|task| task.suspended.is_none())
                .count(),
            tasks_done: self.tasks_succeeded,
            tasks_total: self.tasks_total,
            error: ended.and_then(|(_, result)| result.as_ref().err().map(|e| e.to_string())),
        }
    }
}

/// A live task attempt: holding a slot, or suspended at a yield point.
struct RunningTask {
    /// The slot is the one held now, or while suspended the one given up.
    context: TaskContext,
    abort: AbortHandle,
    started: Instant,
    /// Start order among all task attempts.
    sequence: u64,
    yield_point: Arc<YieldShared>,
    /// While suspended: the yield futures to tell the new slot (normally
    /// one).
    suspended: Option<Vec<oneshot::Sender<usize>>>,
}

impl std::fmt::Debug for RunningTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTask")
            .field("context", &self.context)
            .field("sequence", &self.sequence)
            .field("requested", &self.yield_point.is_requested())
            .field("suspended", &self.suspended.is_some())
            .finish_non_exhaustive()
    }
}

/// Events waiting to be delivered, and who delivers them.
#[derive(Default)]
struct EventQueue {
    listener: Option<Arc<dyn SchedulerListener>>,
    queue: Vec<Queued>,
    /// A thread is delivering events now; others leave theirs to it.
    delivering: bool,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("listener", &self.listener.is_some())
            .field("queued", &self.queue.len())
            .field("delivering", &self.delivering)
            .finish()
    }
}

/// An event for the listener, or a job's result for its handle. Results
/// travel in the same queue so that a caller whose `wait()` returned can rely
/// on the listener having seen every event of that job, `JobEnd` included.
enum Queued {
    Event(SchedulerEvent),
    Result(oneshot::Sender<JobResult>, JobResult),
}

impl EventQueue {
    /// Queues an event, built only when someone listens.
    fn push(&mut self, event: impl FnOnce() -> SchedulerEvent) {
        if self.listener.is_some() {
            self.queue.push(Queued::Event(event()));
        }
    }

    /// Sends a job's result after the events queued before it.
    fn push_result(&mut self, done: oneshot::Sender<JobResult>, result: JobResult) {
        if self.queue.is_empty() {
            // The handle may have been dropped (detached job): nobody to tell.
            let _ = done.send(result);
        } else {
            self.queue.push(Queued::Result(done, result));
        }
    }
}

impl Core {
    pub(crate) fn new(
        runtime: Handle,
        slots: usize,
        max_task_attempts: u32,
        pools: PoolTree,
        preemption: bool,
        counters: Arc<Counters>,
    ) -> Self {
        let preemption = preemption && pools.mode() == SchedulingMode::Fair;
        Self {
            state: Mutex::new(State {
                next_job: 1,
                free_slots: (0..slots).rev().collect(),
                jobs: BTreeMap::new(),
                pools,
                next_stage_sequence: 0,
                next_task_sequence: 0,
                closed: false,
                events: EventQueue::default(),
                admission: HashMap::new(),
                finished: VecDeque::new(),
            }),
            runtime,
            max_task_attempts,
            preemption,
            counters,
        }
    }

    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Locks the state. Nothing user-supplied runs under the lock, but a
    /// poisoned lock is still usable: every change keeps the state consistent
    /// before it can panic.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The root's scheduling mode.
    pub(crate) fn mode(&self) -> SchedulingMode {
        self.lock().pools.mode()
    }

    /// The top-level pools, in root order, with their job counts.
    pub(crate) fn pools(&self) -> Vec<PoolStatus> {
        let state = self.lock();
        let mut statuses = state.pools.statuses();
        for (status, id) in statuses.iter_mut().zip(state.pools.top_level_pools()) {
            if let Some(jobs) = state.admission.get(&id) {
                status.running_jobs = jobs.running;
                status.queued_jobs = jobs.queue.len();
            }
        }
        statuses
    }

    /// Live jobs in id order, then the ended ones kept, oldest first.
    pub(crate) fn jobs(&self) -> Vec<JobInfo> {
        let state = self.lock();
        let now = Instant::now();
        let mut jobs: Vec<JobInfo> = state.finished.iter().cloned().collect();
        jobs.extend(state.jobs.iter().map(|(&id, job)| job.info(id, now, None)));
        jobs.sort_by_key(|job| job.id);
        jobs
    }

    pub(crate) fn set_listener(&self, listener: Option<Arc<dyn SchedulerListener>>) {
        self.lock().events.listener = listener;
    }

    /// Accepts a checked job, starts what can start, returns its id and the
    /// receiver of its result.
    pub(crate) fn submit(
        self: &Arc<Self>,
        description: String,
        pool: Option<String>,
        plan: BTreeMap<StageId, StagePlan>,
        runner: Arc<dyn TaskRunner>,
        limits: JobLimits,
    ) -> Result<(JobId, oneshot::Receiver<JobResult>), SchedulerError> {
        let (done, receiver) = oneshot::channel();
        let mut state = self.lock();
        if state.closed {
            return Err(SchedulerError::Internal(
                "the scheduler is shutting down".to_string(),
            ));
        }
        let pool_node = state.pools.pool_for_job(pool.as_deref());
        let admission_pool = state.pools.top_level_of(pool_node).unwrap_or(ROOT);
        let config = state.pools.pool_config(admission_pool).cloned();
        let pool = pool.unwrap_or_else(|| DEFAULT_POOL.to_string());
        let max_running = config.as_ref().and_then(|c| c.max_running_jobs);
        let queued = {
            let jobs = state.admission.entry(admission_pool).or_default();
            let queued =
                max_running.is_some_and(|limit| jobs.running >= limit || !jobs.queue.is_empty());
            if queued
                && let Some(limit) = config.as_ref().and_then(|c| c.max_queued_jobs)
                && jobs.queue.len() >= limit
            {
                log::info!("pool {pool:?} queue is full ({limit} jobs): job refused");
                return Err(SchedulerError::QueueFull {
                    pool,
                    limit,
                    running_limit: max_running.unwrap_or(0),
                });
            }
            queued
        };
        let job = state.next_job;
        state.next_job += 1;
        log::debug!(
            "job {job} submitted to pool {pool:?}: {description} ({} stages)",
            plan.len()
        );

        let mut sequences = BTreeMap::new();
        for id in dag::topological_order(&plan) {
            sequences.insert(id, state.next_stage_sequence);
            state.next_stage_sequence += 1;
        }
        let stages: BTreeMap<StageId, StageState> = plan
            .into_iter()
            .map(|(id, plan)| {
                let stage = StageState {
                    parents_left: plan.parents.len(),
                    sequence: sequences[&id],
                    submitted: false,
                    pending: BTreeMap::new(),
                    resumable: VecDeque::new(),
                    done: vec![false; plan.tasks],
                    succeeded: 0,
                    next_attempt: vec![0; plan.tasks],
                    output_sequence: vec![0; plan.tasks],
                    completed: false,
                    plan,
                };
                (id, stage)
            })
            .collect();
        let roots: Vec<StageId> = stages
            .iter()
            .filter(|(_, stage)| stage.parents_left == 0)
            .map(|(&id, _)| id)
            .collect();
        let tasks_total = stages.values().map(|s| s.plan.tasks).sum();
        state.jobs.insert(
            job,
            JobEntry {
                runner,
                pool_node,
                pool: pool.clone(),
                stages_left: stages.len(),
                stages,
                tasks_succeeded: 0,
                running: HashMap::new(),
                started: Instant::now(),
                done,
                description: description.clone(),
                submitted_at: SystemTime::now(),
                admission_pool,
                admitted: None,
                roots,
                tasks_total,
                timeout: limits.timeout.or(config.as_ref().and_then(|c| c.timeout)),
                timer: None,
            },
        );
        self.counters.job_started();
        let stage_count = state.jobs.get(&job).map_or(0, |j| j.stages.len());
        state.events.push(|| SchedulerEvent::JobStart {
            job,
            description,
            pool: pool.clone(),
            stages: stage_count,
        });
        if queued {
            let jobs = state.admission.entry(admission_pool).or_default();
            jobs.queue.push_back(job);
            let position = jobs.queue.len();
            log::debug!("job {job} waits in pool {pool:?}'s queue at place {position}");
            state.events.push(|| SchedulerEvent::JobQueued {
                job,
                pool,
                position,
            });
            if let Some(limit) = limits.queue_timeout {
                let timer = self.start_timer(job, limit, true);
                state.jobs.get_mut(&job).expect("job just added").timer = Some(timer);
            }
        } else {
            self.admit(&mut state, job);
        }
        self.dispatch(&mut state);
        drop(state);
        self.deliver_events();
        Ok((job, receiver))
    }

    /// Cancels a job if it is still active (queued or running); returns
    /// whether it was.
    pub(crate) fn cancel(self: &Arc<Self>, job: JobId) -> bool {
        let mut state = self.lock();
        let active = state.jobs.contains_key(&job);
        if active {
            log::debug!("job {job} cancelled");
            self.end_job(
                &mut state,
                job,
                JobStatus::Cancelled,
                Err(SchedulerError::Cancelled { job }),
            );
            self.dispatch(&mut state);
        }
        drop(state);
        self.deliver_events();
        active
    }

    /// Lets a job's stages get slots: counts it as running in its pool,
    /// starts its run timeout and submits its root stages.
    fn admit(self: &Arc<Self>, state: &mut State, job: JobId) {
        let Some(entry) = state.jobs.get_mut(&job) else {
            return;
        };
        let now = Instant::now();
        if let Some(timer) = entry.timer.take() {
            timer.abort();
        }
        let waited = now.duration_since(entry.started);
        entry.admitted = Some((now, SystemTime::now()));
        let roots = std::mem::take(&mut entry.roots);
        let pool = entry.pool.clone();
        let admission_pool = entry.admission_pool;
        let queued = state
            .admission
            .get(&admission_pool)
            .is_some_and(|jobs| jobs.queue.contains(&job));
        if let Some(limit) = entry.timeout {
            entry.timer = Some(self.start_timer(job, limit, false));
        }
        let jobs = state.admission.entry(admission_pool).or_default();
        jobs.running += 1;
        jobs.queue.retain(|&queued| queued != job);
        if queued {
            log::debug!("job {job} admitted in pool {pool:?} after {waited:?}");
            state
                .events
                .push(|| SchedulerEvent::JobAdmitted { job, pool, waited });
        }
        self.submit_stages(state, job, roots);
    }

    /// Admits queued jobs of every pool that runs fewer than its
    /// `maxRunningJobs`, oldest first.
    fn admit_waiting(self: &Arc<Self>, state: &mut State) {
        let mut admit = Vec::new();
        for (&pool, jobs) in &state.admission {
            if jobs.queue.is_empty() {
                continue;
            }
            let limit = state
                .pools
                .pool_config(pool)
                .and_then(|c| c.max_running_jobs)
                .unwrap_or(usize::MAX);
            let free = limit.saturating_sub(jobs.running);
            admit.extend(jobs.queue.iter().take(free).copied());
        }
        admit.sort_unstable();
        for job in admit {
            self.admit(state, job);
        }
    }

    /// Starts the timer that times `job` out after `limit`: its wait in
    /// the queue (`queued`), else its run from admission.
    fn start_timer(self: &Arc<Self>, job: JobId, limit: Duration, queued: bool) -> AbortHandle {
        let core = Arc::downgrade(self);
        self.runtime
            .spawn(async move {
                tokio::time::sleep(limit).await;
                if let Some(core) = core.upgrade() {
                    core.time_out(job, limit, queued);
                }
            })
            .abort_handle()
    }

    /// A job's timer fired: the job ends with [`JobStatus::TimedOut`] if it
    /// is still in the phase that the timer measured (a queue timer that
    /// fires just as its job is admitted does nothing).
    fn time_out(self: &Arc<Self>, job: JobId, limit: Duration, queued: bool) {
        let mut state = self.lock();
        if let Some(entry) = state.jobs.get(&job)
            && entry.admitted.is_none() == queued
        {
            let pool = entry.pool.clone();
            log::info!(
                "job {job} timed out after {}{}",
                crate::error::spoken(limit),
                if queued { " in its pool's queue" } else { "" }
            );
            state.events.push(|| SchedulerEvent::JobTimedOut {
                job,
                pool: pool.clone(),
                limit,
                queued,
            });
            self.end_job(
                &mut state,
                job,
                JobStatus::TimedOut,
                Err(SchedulerError::TimedOut {
                    job,
                    limit,
                    waiting_in: queued.then_some(pool),
                }),
            );
            self.dispatch(&mut state);
        }
        drop(state);
        self.deliver_events();
    }

    /// Ends every job (they fail with `Internal`) and starts nothing more.
    /// Called when the last `Scheduler` clone is dropped.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let jobs: Vec<JobId> = state.jobs.keys().copied().collect();
        for job in jobs {
            self.end_job(
                &mut state,
                job,
                JobStatus::Failed,
                Err(SchedulerError::Internal(format!(
                    "the scheduler was dropped before job {job} finished"
                ))),
            );
        }
        drop(state);
        self.deliver_events();
    }

    /// Marks stages whose parents have all completed as runnable. Stages
    /// without tasks complete at once, which may submit their children and
    /// end the job.
    fn submit_stages(&self, state: &mut State, job: JobId, stages: Vec<StageId>) {
        let mut to_submit = stages;
        let mut completed = Vec::new();
        {
            let Some(job_state) = state.jobs.get_mut(&job) else {
                return;
            };
            while let Some(id) = to_submit.pop() {
                let stage = job_state.stages.get_mut(&id).expect("stage of the job");
                stage.submitted = true;
                stage.pending = (0..stage.plan.tasks).map(|p| (p, 0)).collect();
                let tasks = stage.plan.tasks;
                state.events.push(|| SchedulerEvent::StageSubmitted {
                    job,
                    stage: id,
                    tasks,
                });
                if tasks == 0 {
                    completed.push(id);
                } else {
                    state
                        .pools
                        .add_task_set(job_state.pool_node, job, id, stage.sequence);
                }
            }
        }
        for stage in completed {
            self.complete_stage(state, job, stage);
        }
    }

    /// Records that every task of `stage` succeeded; submits the children
    /// that became ready and ends the job when it was the last stage.
    fn complete_stage(&self, state: &mut State, job: JobId, stage: StageId) {
        let Some(job_state) = state.jobs.get_mut(&job) else {
            return;
        };
        state.pools.remove_task_set(job, stage);
        state
            .events
            .push(|| SchedulerEvent::StageCompleted { job, stage });
        job_state.stages_left -= 1;
        let stage_state = job_state.stages.get_mut(&stage).expect("stage of the job");
        stage_state.completed = true;
        let children = stage_state.plan.children.clone();
        let mut ready = Vec::new();
        for child in children {
            let child_state = job_state.stages.get_mut(&child).expect("child stage");
            // A child that completed while this stage was recomputed no
            // longer waits for it.
            if child_state.completed {
                continue;
            }
            child_state.parents_left -= 1;
            // A child held back while lost outputs were recomputed is
            // already submitted: its pending tasks may run again.
            if child_state.parents_left == 0 && !child_state.submitted {
                ready.push(child);
            }
        }
        if job_state.stages_left == 0 {
            let summary = JobSummary {
                job,
                tasks: job_state.tasks_succeeded,
                elapsed: job_state.started.elapsed(),
            };
            log::debug!("job {job} succeeded: {summary:?}");
            self.end_job(state, job, JobStatus::Succeeded, Ok(summary));
        } else if !ready.is_empty() {
            self.submit_stages(state, job, ready);
        }
    }

    /// Runs again the tasks of `stage` whose outputs were lost (lineage:
    /// from the stage's own inputs), and holds back every stage that reads
    /// `stage` and has not completed until they succeeded. Partitions that
    /// are already being recomputed are left alone. Tasks of waiting stages
    /// that run now go on (a suspended one too); pending ones wait.
    fn recompute(&self, state: &mut State, job: JobId, stage: StageId, lost: &[usize]) {
        let Some(job_state) = state.jobs.get_mut(&job) else {
            return;
        };
        let stage_state = job_state.stages.get_mut(&stage).expect("stage of the job");
        let mut again = 0;
        for &partition in lost {
            if stage_state.done[partition] {
                stage_state.done[partition] = false;
                stage_state.succeeded -= 1;
                let attempt = stage_state.next_attempt[partition];
                stage_state.pending.insert(partition, attempt);
                again += 1;
            }
        }
        if again == 0 || !stage_state.completed {
            // Nothing new, or the stage is being recomputed already (its
            // readers wait for it and its task set is in the tree).
            return;
        }
        stage_state.completed = false;
        job_state.stages_left += 1;
        let sequence = stage_state.sequence;
        let children = stage_state.plan.children.clone();
        for child in children {
            let child_state = job_state.stages.get_mut(&child).expect("child stage");
            if !child_state.completed {
                child_state.parents_left += 1;
            }
        }
        state
            .pools
            .add_task_set(job_state.pool_node, job, stage, sequence);
        state.events.push(|| SchedulerEvent::StageSubmitted {
            job,
            stage,
            tasks: again,
        });
    }

    /// Removes a job: aborts its running and suspended tasks, frees the
    /// slots of the running ones, drops its pending tasks, and sends
    /// `result` to its handle.
    fn end_job(&self, state: &mut State, job: JobId, status: JobStatus, result: JobResult) {
        let Some(job_state) = state.jobs.remove(&job) else {
            return;
        };
        let reason = match status {
            JobStatus::Succeeded => "job ended",
            JobStatus::Failed => "aborted: job failed",
            JobStatus::Cancelled => "aborted: job cancelled",
            JobStatus::TimedOut => "aborted: job timed out",
        };
        if let Some(timer) = &job_state.timer {
            timer.abort();
        }
        if let Some(jobs) = state.admission.get_mut(&job_state.admission_pool) {
            if job_state.admitted.is_some() {
                jobs.running -= 1;
            } else {
                jobs.queue.retain(|&queued| queued != job);
            }
        }
        let info = job_state.info(job, Instant::now(), Some((status, &result)));
        if state.finished.len() == FINISHED_JOBS_KEPT {
            state.finished.pop_front();
        }
        state.finished.push_back(info);
        // Its task sets leave the tree with the running tasks they count.
        for &stage in job_state.stages.keys() {
            state.pools.remove_task_set(job, stage);
        }
        let mut aborted: Vec<RunningTask> = job_state.running.into_values().collect();
        aborted.sort_by_key(|task| (task.context.id.stage, task.context.id.partition));
        for task in aborted {
            task.abort.abort();
            if task.suspended.is_some() {
                // Holds no slot; dropping its senders ends its wait.
                self.counters.suspended_task_dropped();
            } else {
                state.free_slots.push(task.context.slot);
                self.counters.task_stopped();
            }
            state.events.push(|| SchedulerEvent::TaskEnd {
                task: task.context,
                duration: task.started.elapsed(),
                outcome: Err(reason.to_string()),
                pool: job_state.pool.clone(),
            });
        }
        self.counters.job_ended();
        state.events.push(|| SchedulerEvent::JobEnd { job, status });
        state.events.push_result(job_state.done, result);
    }

    /// Starts pending tasks (or resumes suspended ones) while slots are
    /// free. For each slot the pool tree names the stage (its queue is
    /// recomputed slot by slot, since every start changes the running
    /// counts); within a stage a suspended task goes first, in the order
    /// they yielded, then the lowest pending partition. With preemption on,
    /// then recomputes which running tasks are asked to yield.
    fn dispatch(self: &Arc<Self>, state: &mut State) {
        if state.closed {
            return;
        }
        self.admit_waiting(state);
        while !state.free_slots.is_empty() {
            let jobs = &state.jobs;
            let next = state.pools.first_schedulable(|job, stage| {
                jobs.get(&job)
                    .and_then(|job_state| job_state.stages.get(&stage))
                    .is_some_and(|stage_state| stage_state.waiting() > 0)
            });
            let Some((job, stage)) = next else {
                break;
            };
            let slot = state.free_slots.pop().expect("a free slot");
            let job_state = state.jobs.get_mut(&job).expect("runnable job");
            let stage_state = job_state.stages.get_mut(&stage).expect("runnable stage");
            state.pools.task_started(job, stage);
            if let Some(partition) = stage_state.resumable.pop_front() {
                let task = job_state
                    .running
                    .get_mut(&(stage, partition))
                    .expect("suspended task");
                task.context.slot = slot;
                task.yield_point.slot.store(slot, Ordering::Release);
                for waiter in task.suspended.take().expect("task is suspended") {
                    // A yield future dropped while it waited: the task runs
                    // on anyway, and now holds a slot again.
                    let _ = waiter.send(slot);
                }
                self.counters.task_resumed();
                let context = task.context;
                log::trace!("task {} resumed on slot {slot}", context.id);
                state.events.push(|| SchedulerEvent::TaskResume {
                    task: context,
                    pool: job_state.pool.clone(),
                });
                continue;
            }
            let (partition, attempt) = stage_state.pending.pop_first().expect("pending task");
            stage_state.next_attempt[partition] = attempt + 1;
            let context = TaskContext {
                id: TaskId {
                    job,
                    stage,
                    partition,
                    attempt,
                },
                slot,
            };

            let owner: Weak<dyn SlotOwner> = Arc::downgrade(self) as Weak<Core>;
            let yield_shared = Arc::new(YieldShared::new(context, owner));
            let yield_point = YieldPoint::new(Arc::clone(&yield_shared));
            let core = Arc::clone(self);
            let runner = Arc::clone(&job_state.runner);
            let abort = self
                .runtime
                .spawn(yielding::scope(yield_point, async move {
                    let result = run_task(runner.as_ref(), context).await;
                    core.task_ended(context.id, result);
                }))
                .abort_handle();
            let sequence = state.next_task_sequence;
            state.next_task_sequence += 1;
            job_state.running.insert(
                (stage, partition),
                RunningTask {
                    context,
                    abort,
                    started: Instant::now(),
                    sequence,
                    yield_point: yield_shared,
                    suspended: None,
                },
            );
            self.counters.task_started();
            state.events.push(|| SchedulerEvent::TaskStart {
                task: context,
                pool: job_state.pool.clone(),
            });
        }
        if self.preemption {
            self.request_yields(state);
        }
    }

    /// Recomputes which running tasks are asked to yield (module `preempt`)
    /// and sets or clears their request flags: new requests are set, those
    /// no longer wanted are withdrawn.
    fn request_yields(&self, state: &State) {
        let loads = state.pools.top_level_keys();
        let ids: Vec<NodeId> = loads.iter().map(|(id, _)| *id).collect();
        let mut index = HashMap::with_capacity(loads.len());
        let mut pools: Vec<PoolLoad<'_>> = Vec::with_capacity(loads.len());
        for (position, (id, key)) in loads.into_iter().enumerate() {
            index.insert(id, position);
            pools.push(PoolLoad {
                name: key.name,
                weight: key.weight,
                min_share: key.min_share,
                running: key.running,
                waiting: 0,
                victims: Vec::new(),
            });
        }
        let mut candidates: Vec<Vec<(Victim, &YieldShared)>> = vec![Vec::new(); pools.len()];
        for job_state in state.jobs.values() {
            let Some(&pool) = state
                .pools
                .top_level_of(job_state.pool_node)
                .and_then(|top| index.get(&top))
            else {
                continue;
            };
            pools[pool].waiting += job_state
                .stages
                .values()
                .map(StageState::waiting)
                .sum::<usize>();
            for task in job_state.running.values() {
                if task.suspended.is_none() {
                    let victim = Victim {
                        asked: task.yield_point.is_requested(),
                        sequence: task.sequence,
                    };
                    candidates[pool].push((victim, &task.yield_point));
                }
            }
        }
        // A pool at its maxShare cannot take a freed slot: only the work
        // its cap lets start counts as waiting.
        for (pool, &id) in pools.iter_mut().zip(&ids) {
            pool.waiting = pool.waiting.min(state.pools.headroom(id));
        }
        for (pool, candidates) in pools.iter_mut().zip(candidates.iter_mut()) {
            candidates.sort_by_key(|(victim, _)| std::cmp::Reverse(*victim));
            pool.victims = candidates.iter().map(|(victim, _)| *victim).collect();
        }
        let asked = preempt::plan(&pools, state.free_slots.len());
        for (candidates, asked) in candidates.iter().zip(asked) {
            for (position, (victim, point)) in candidates.iter().enumerate() {
                let ask = position < asked;
                if ask != victim.asked {
                    point.requested.store(ask, Ordering::Release);
                    if ask {
                        log::debug!("task {} asked to yield its slot", point.task);
                    } else {
                        log::debug!("yield request of task {} withdrawn", point.task);
                    }
                }
            }
        }
    }

    /// Called by a yield point whose task was asked to yield. Under the lock,
    /// checks that the request still stands; if so, frees the task's slot,
    /// queues the task as resumable in its stage, dispatches, and returns the
    /// receiver of its next slot. Returns `None` (the task goes on at once)
    /// when the request was withdrawn or the task is no longer live.
    pub(crate) fn suspend(
        self: &Arc<Self>,
        point: &YieldShared,
    ) -> Option<oneshot::Receiver<usize>> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.closed {
            return None;
        }
        let TaskId {
            job,
            stage,
            partition,
            ..
        } = point.task;
        let job_state = state.jobs.get_mut(&job)?;
        let task = job_state
            .running
            .get_mut(&(stage, partition))
            .filter(|task| task.context.id == point.task)?;
        let (sender, receiver) = oneshot::channel();
        if let Some(waiters) = &mut task.suspended {
            // Another yield of the same task is already waiting: wait too.
            waiters.push(sender);
            return Some(receiver);
        }
        if !point.requested.swap(false, Ordering::AcqRel) {
            return None;
        }
        task.suspended = Some(vec![sender]);
        let context = task.context;
        job_state
            .stages
            .get_mut(&stage)
            .expect("stage of the job")
            .resumable
            .push_back(partition);
        state.free_slots.push(context.slot);
        state.pools.task_ended(job, stage);
        self.counters.task_yielded();
        log::debug!("task {} yielded slot {}", context.id, context.slot);
        state.events.push(|| SchedulerEvent::TaskYield {
            task: context,
            pool: job_state.pool.clone(),
        });
        self.dispatch(state);
        drop(guard);
        self.deliver_events();
        Some(receiver)
    }

    /// Called by a task's wrapper when the task's future ended (not when it
    /// was aborted: `end_job` already did the bookkeeping then).
    fn task_ended(self: &Arc<Self>, task: TaskId, result: Result<TaskOutcome, TaskError>) {
        let mut state = self.lock();
        self.record_task_end(&mut state, task, result);
        self.dispatch(&mut state);
        drop(state);
        self.deliver_events();
    }

    fn record_task_end(
        &self,
        state: &mut State,
        task_id: TaskId,
        result: Result<TaskOutcome, TaskError>,
    ) {
        let TaskId {
            job,
            stage,
            partition,
            attempt,
        } = task_id;
        let Some(job_state) = state.jobs.get_mut(&job) else {
            return;
        };
        match job_state.running.get(&(stage, partition)) {
            Some(task) if task.context.id == task_id => {}
            // An aborted attempt that finished anyway: already accounted for.
            _ => return,
        }
        let task = job_state
            .running
            .remove(&(stage, partition))
            .expect("running task");
        let context = task.context;
        // Lost outputs must be of a parent stage, and of its partitions.
        let lost_valid = result
            .as_ref()
            .err()
            .and_then(TaskError::lost_outputs)
            .is_none_or(|(parent, lost)| {
                job_state.stages[&stage].plan.parents.contains(&parent)
                    && job_state
                        .stages
                        .get(&parent)
                        .is_some_and(|p| lost.iter().all(|&l| l < p.plan.tasks))
            });
        let stage_state = job_state.stages.get_mut(&stage).expect("stage of the job");
        if task.suspended.is_some() {
            // It dropped its yield future while waiting and ran on: it holds
            // no slot and no running count.
            stage_state
                .resumable
                .retain(|&waiting| waiting != partition);
            self.counters.suspended_task_dropped();
        } else {
            state.free_slots.push(context.slot);
            state.pools.task_ended(job, stage);
            self.counters.task_stopped();
        }
        let duration = task.started.elapsed();
        state.events.push(|| SchedulerEvent::TaskEnd {
            task: context,
            duration,
            outcome: result.clone().map_err(|error| error.to_string()),
            pool: job_state.pool.clone(),
        });

        match result {
            Ok(_) => {
                if !stage_state.done[partition] {
                    stage_state.done[partition] = true;
                    stage_state.succeeded += 1;
                }
                stage_state.output_sequence[partition] = state.next_task_sequence;
                job_state.tasks_succeeded += 1;
                self.counters.task_succeeded();
                if stage_state.succeeded == stage_state.plan.tasks && !stage_state.completed {
                    self.complete_stage(state, job, stage);
                }
            }
            Err(error)
                if error.lost_outputs().is_some() && attempt + 1 < self.max_task_attempts =>
            {
                self.counters.task_failed();
                let (parent, lost) = error.lost_outputs().expect("lost outputs");
                if !lost_valid {
                    let failure = SchedulerError::TaskFailed {
                        job,
                        stage,
                        partition,
                        attempt,
                        message: format!(
                            "{} (and the lost outputs, stage {parent} partitions {lost:?}, \
                             are not of a parent stage)",
                            error.message()
                        ),
                    };
                    self.end_job(state, job, JobStatus::Failed, Err(failure));
                    return;
                }
                log::info!(
                    "task {task_id} lost outputs of stage {parent} partitions {lost:?}, \
                     recomputing them: {error}"
                );
                stage_state.pending.insert(partition, attempt + 1);
                // Outputs registered again since this reader started were
                // recomputed already (another reader reported them first):
                // the retried reader will find them.
                let registered = &job_state.stages[&parent].output_sequence;
                let lost: Vec<usize> = lost
                    .iter()
                    .copied()
                    .filter(|&p| registered[p] <= task.sequence)
                    .collect();
                self.recompute(state, job, parent, &lost);
            }
            Err(error) if error.is_retryable() && attempt + 1 < self.max_task_attempts => {
                self.counters.task_failed();
                log::info!("task {task_id} failed, will retry: {error}");
                stage_state.pending.insert(partition, attempt + 1);
            }
            Err(error) => {
                self.counters.task_failed();
                log::info!("task {task_id} failed, failing the job: {error}");
                let failure = SchedulerError::TaskFailed {
                    job,
                    stage,
                    partition,
                    attempt,
                    message: error.message().to_string(),
                };
                self.end_job(state, job, JobStatus::Failed, Err(failure));
            }
        }
    }

    /// Delivers queued events to the listener, outside the state lock. Only
    /// one thread delivers at a time, so events arrive in the order they were
    /// queued; a thread that finds another one delivering leaves its events
    /// to that one (this also makes listeners that call back in safe).
    pub(crate) fn deliver_events(&self) {
        let mut state = self.lock();
        if state.events.delivering {
            return;
        }
        loop {
            if state.events.queue.is_empty() {
                state.events.delivering = false;
                return;
            }
            let batch = std::mem::take(&mut state.events.queue);
            let listener = state.events.listener.clone();
            state.events.delivering = true;
            drop(state);
            for item in batch {
                match item {
                    Queued::Event(event) => {
                        let Some(listener) = &listener else { continue };
                        let delivered = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            listener.on_event(&event)
                        }));
                        if delivered.is_err() {
                            log::error!("scheduler listener panicked on {event:?}");
                        }
                    }
                    Queued::Result(done, result) => {
                        let _ = done.send(result);
                    }
                }
            }
            state = self.lock();
        }
    }
}

impl SlotOwner for Core {
    fn give_slot_back(self: Arc<Self>, point: &YieldShared) -> Option<oneshot::Receiver<usize>> {
        self.suspend(point)
    }
}

/// Runs one task attempt, turning a panic (in `run` or while polling its
/// future) into a fatal task error.
async fn run_task(runner: &dyn TaskRunner, context: TaskContext) -> Result<TaskOutcome, TaskError> {
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| runner.run(context))) {
        Ok(future) => future,
        Err(panic) => return Err(panic_error(panic)),
    };
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(panic_error(panic)),
    }
}

fn panic_error(panic: Box<dyn Any + Send>) -> TaskError {
    let message = if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(panic payload is not a string)".to_string()
    };
    TaskError::fatal(format!("task panicked: {message}"))
}
