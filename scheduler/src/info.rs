//! What the scheduler tells about its jobs while they run and after:
//! [`JobInfo`], one row of `fairway.jobs`.

use std::time::{Duration, SystemTime};

use crate::job::JobId;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting in its pool's queue (`maxRunningJobs` jobs run already).
    Queued,
    /// Admitted: its stages get slots.
    Running,
    /// Every stage completed.
    Succeeded,
    /// A task failed for good.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Cancelled by its timeout (running or queued).
    TimedOut,
}

impl JobState {
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled`, `timed_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
        }
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as [`Scheduler::jobs`](crate::Scheduler::jobs) reports it: live
/// jobs as they are now, ended ones as they ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// The job.
    pub id: JobId,
    /// Its pool (`default` when it named none).
    pub pool: String,
    /// Its [`JobSpec::description`](crate::JobSpec::description).
    pub description: String,
    /// Where it is.
    pub state: JobState,
    /// When it was submitted.
    pub submitted: SystemTime,
    /// When it was admitted (its stages could get slots); `None` while it
    /// waits in its pool's queue, or if it ended there.
    pub started: Option<SystemTime>,
    /// When it ended.
    pub finished: Option<SystemTime>,
    /// Time in its pool's queue (until now while it waits).
    pub queued: Duration,
    /// Time from admission to its end (until now while it runs).
    pub run: Duration,
    /// Its tasks holding slots now.
    pub running_tasks: usize,
    /// Its task attempts that succeeded.
    pub tasks_done: u64,
    /// The sum of its stages' tasks.
    pub tasks_total: usize,
    /// Why it failed, was cancelled or timed out.
    pub error: Option<String>,
}
