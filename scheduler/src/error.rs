//! The scheduler's error type, [`SchedulerError`]: why a scheduler call or a
//! job failed.

use std::time::Duration;

use crate::job::{JobId, StageId};

/// Why a scheduler call or a job failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// The configuration cannot be used (zero slots, zero attempts).
    #[error("invalid scheduler configuration: {0}")]
    InvalidConfig(String),
    /// The job's stage graph is not a valid DAG (no stages, duplicate stage
    /// id, unknown parent, cycle).
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// A task failed for good (attempts used up or error not retryable).
    #[error(
        "job {job} failed: task of stage {stage} partition {partition} (attempt {attempt}) failed: {message}"
    )]
    TaskFailed {
        /// The failed job.
        job: JobId,
        /// Stage of the failed task.
        stage: StageId,
        /// Partition of the failed task.
        partition: usize,
        /// The last attempt, starting at 0.
        attempt: u32,
        /// The task's error message (`task panicked: ...` for a panic).
        message: String,
    },
    /// The job was cancelled.
    #[error("job {job} was cancelled")]
    Cancelled {
        /// The cancelled job.
        job: JobId,
    },
    /// The job's pool has `maxQueuedJobs` jobs waiting already: the job was
    /// not accepted.
    #[error(
        "pool '{pool}' queue is full: {limit} jobs wait already (maxQueuedJobs {limit}, \
         maxRunningJobs {running_limit}); try again later or raise the pool's limits"
    )]
    QueueFull {
        /// The pool.
        pool: String,
        /// Its `maxQueuedJobs`.
        limit: usize,
        /// Its `maxRunningJobs`.
        running_limit: usize,
    },
    /// The job ran (or waited in its pool's queue) longer than its timeout
    /// and was cancelled.
    #[error("{}", timed_out_message(*job, *limit, waiting_in.as_deref()))]
    TimedOut {
        /// The job.
        job: JobId,
        /// The timeout it passed.
        limit: Duration,
        /// The pool whose queue it waited in, for a queue timeout; `None`
        /// when it timed out running.
        waiting_in: Option<String>,
    },
    /// The scheduler could not do its work (runtime could not start, scheduler
    /// dropped while the job ran).
    #[error("scheduler error: {0}")]
    Internal(String),
}

fn timed_out_message(job: JobId, limit: Duration, waiting_in: Option<&str>) -> String {
    let after = spoken(limit);
    match waiting_in {
        None => format!("job {job} timed out after {after}"),
        Some(pool) => {
            format!("job {job} timed out after {after} waiting in the queue of pool '{pool}'")
        }
    }
}

/// `30 s`, `1.5 s`, `250 ms`.
pub(crate) fn spoken(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis} ms")
    } else if millis.is_multiple_of(1000) {
        format!("{} s", millis / 1000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}
