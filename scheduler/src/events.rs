//! Events that report the progress of jobs to a [`SchedulerListener`].

use std::time::Duration;

use crate::job::{JobId, StageId, TaskContext, TaskOutcome};

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Every stage completed.
    Succeeded,
    /// A task failed for good (or the scheduler was dropped).
    Failed,
    /// The job was cancelled.
    Cancelled,
    /// The job ran or waited longer than its timeout and was cancelled.
    TimedOut,
}

impl JobStatus {
    /// `succeeded`, `failed`, `cancelled` or `timed_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
        }
    }
}

/// Something that happened in the scheduler.
///
/// The pool name travels in the job and task events rather than in
/// [`TaskContext`], which stays a small `Copy` value for task runners.
#[derive(Clone, Debug, PartialEq)]
pub enum SchedulerEvent {
    /// A job was accepted.
    JobStart {
        /// The job.
        job: JobId,
        /// Its `JobSpec::description`.
        description: String,
        /// Its pool: `JobSpec::pool`, or `default` when that is `None`. Under
        /// a FIFO root it is reported but plays no part in ordering.
        pool: String,
        /// How many stages the job has.
        stages: usize,
    },
    /// A job's pool runs `maxRunningJobs` jobs already: the job waits in the
    /// pool's queue (after its `JobStart`).
    JobQueued {
        /// The job.
        job: JobId,
        /// Its pool.
        pool: String,
        /// Its place in the queue, from 1.
        position: usize,
    },
    /// A queued job was admitted: its stages may now get slots.
    JobAdmitted {
        /// The job.
        job: JobId,
        /// Its pool.
        pool: String,
        /// How long it waited in the queue.
        waited: Duration,
    },
    /// A job passed its timeout (running, or waiting in the queue) and is
    /// cancelled; its `JobEnd` with [`JobStatus::TimedOut`] follows.
    JobTimedOut {
        /// The job.
        job: JobId,
        /// Its pool.
        pool: String,
        /// The timeout it passed.
        limit: Duration,
        /// Whether it was still waiting in the queue.
        queued: bool,
    },
    /// A job ended; no more events come for it.
    JobEnd {
        /// The job.
        job: JobId,
        /// How it ended.
        status: JobStatus,
    },
    /// All parents of a stage completed: its tasks may now get slots.
    StageSubmitted {
        /// The job.
        job: JobId,
        /// The stage.
        stage: StageId,
        /// Its number of tasks.
        tasks: usize,
    },
    /// Every task of a stage succeeded.
    StageCompleted {
        /// The job.
        job: JobId,
        /// The stage.
        stage: StageId,
    },
    /// A task got a slot and was started.
    TaskStart {
        /// The task and its slot.
        task: TaskContext,
        /// The job's pool, as in `JobStart`.
        pool: String,
    },
    /// A task ended and gave its slot back. Tasks aborted because their job
    /// failed or was cancelled end with an `Err` that says so (a task
    /// aborted while suspended held no slot; `task.slot` is the one it gave
    /// up).
    TaskEnd {
        /// The task and the slot it held.
        task: TaskContext,
        /// Time from start to end (time spent suspended included).
        duration: Duration,
        /// What the task returned, or its error message.
        outcome: Result<TaskOutcome, String>,
        /// The job's pool, as in `JobStart`.
        pool: String,
    },
    /// A running task gave its slot up at a
    /// [`YieldPoint`](crate::YieldPoint) because the scheduler asked for it
    /// (cooperative preemption), and now waits for a slot. It no longer
    /// counts as running.
    TaskYield {
        /// The task and the slot it gave up.
        task: TaskContext,
        /// The job's pool, as in `JobStart`.
        pool: String,
    },
    /// A task that yielded got a slot again and goes on where it stopped.
    TaskResume {
        /// The task and its new slot (which may differ from the one it gave
        /// up).
        task: TaskContext,
        /// The job's pool, as in `JobStart`.
        pool: String,
    },
}

/// Receives [`SchedulerEvent`]s.
///
/// Events are delivered outside the scheduler's state lock, one at a time, in
/// the order in which the scheduler's state changed (so `JobStart` comes first
/// and `JobEnd` last for a job, and every `TaskStart` is followed by its
/// `TaskEnd`; in between, a task that yields has alternating `TaskYield` and
/// `TaskResume` events, and a task aborted while it waits for a slot ends
/// with its `TaskEnd` right after its `TaskYield`, naming the slot it gave
/// up). A listener may call back into the scheduler (submit, cancel).
/// It runs on whichever thread changed the state (a worker thread, or the
/// thread that called `submit` or `cancel`), and while it runs other events
/// queue up, so it should be quick. A listener that panics loses that event
/// only.
pub trait SchedulerListener: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: &SchedulerEvent);
}
