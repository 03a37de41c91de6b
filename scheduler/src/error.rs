//! The scheduler's error type, [`SchedulerError`]: why a scheduler call or a
//! job failed.

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
    /// The scheduler could not do its work (runtime could not start, scheduler
    /// dropped while the job ran).
    #[error("scheduler error: {0}")]
    Internal(String),
}
