//! The ordering policy: which runnable stage gets the next free slot.
//!
//! This is the one place that decides the order in which tasks of different
//! jobs and stages start. The scheduler's dispatch loop, each time a slot is
//! free, builds the list of runnable stages (all parents completed, at least
//! one task pending) and asks [`SchedulingPolicy::pick`] for one; it then
//! starts that stage's lowest pending partition. Everything else (DAG
//! tracking, slots, retries, cancellation) is independent of the policy.
//!
//! Today there is one policy, [`Fifo`]: the smallest `(job id, stage id)`
//! first, so jobs run in submission order and a job's stages in id order,
//! with later jobs filling only the slots that earlier ones cannot use.
//!
//! The next step replaces it with weighted fair pools following Spark's
//! semantics: every job is assigned to a pool; each pool has a
//! `schedulingMode` (FIFO or FAIR among its jobs), a `weight` and a
//! `minShare`. Pools are ordered by the fair comparator (pools running fewer
//! tasks than their `minShare` first, by `running / minShare`; then by
//! `running / weight`; then by name), and within the chosen pool its own mode
//! orders the jobs and stages. That policy needs, per candidate, how many
//! tasks are already running in its stage, job and pool, which is why
//! [`RunnableStage`] carries running counts and why the pick is made over the
//! whole candidate list rather than by a fixed sort key. To add it, implement
//! [`SchedulingPolicy`] and extend [`RunnableStage`] (for example with the
//! job's pool); the dispatch loop does not change.

use std::fmt::Debug;

use crate::job::{JobId, StageId};

/// A stage whose parents have completed and that has tasks waiting for a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RunnableStage {
    /// The job.
    pub(crate) job: JobId,
    /// The stage.
    pub(crate) stage: StageId,
    /// Tasks of the stage waiting for a slot (always at least 1).
    pub(crate) pending_tasks: usize,
    /// Tasks of the stage holding slots now.
    pub(crate) running_tasks: usize,
    /// Tasks of the whole job holding slots now.
    pub(crate) job_running_tasks: usize,
}

/// Picks which runnable stage starts its next task.
pub(crate) trait SchedulingPolicy: Send + Sync + Debug {
    /// Returns the index in `runnable` of the stage that gets the next free
    /// slot, or `None` to leave the slot free. `runnable` is in no particular
    /// order; the caller updates the counts between picks.
    fn pick(&self, runnable: &[RunnableStage]) -> Option<usize>;
}

/// First in, first out: smallest `(job id, stage id)` first.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fifo;

impl SchedulingPolicy for Fifo {
    fn pick(&self, runnable: &[RunnableStage]) -> Option<usize> {
        runnable
            .iter()
            .enumerate()
            .min_by_key(|(_, stage)| (stage.job, stage.stage))
            .map(|(index, _)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(job: JobId, stage: StageId) -> RunnableStage {
        RunnableStage {
            job,
            stage,
            pending_tasks: 1,
            running_tasks: 0,
            job_running_tasks: 0,
        }
    }

    #[test]
    fn fifo_picks_oldest_job_then_lowest_stage() {
        let runnable = vec![stage(2, 0), stage(1, 3), stage(1, 1), stage(3, 0)];
        assert_eq!(Fifo.pick(&runnable), Some(2));
        assert_eq!(Fifo.pick(&runnable[..2]), Some(1));
        assert_eq!(Fifo.pick(&[]), None);
    }
}
