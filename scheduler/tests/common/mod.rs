//! Task runners, waits and the event recorder shared by the scheduler's
//! integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fairway_scheduler::{
    JobHandle, JobSummary, SchedulerError, SchedulerEvent, SchedulerListener, TaskContext,
    TaskError, TaskOutcome, TaskRunner,
};
use futures::FutureExt;
use futures::future::BoxFuture;

/// The one time limit of these tests, an upper bound only so that a broken
/// scheduler fails a test instead of hanging it: nothing is expected to take
/// nearly this long, and no test passes or fails by how fast it ran. What
/// must happen before what is checked on the order of events instead.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// `JobHandle::wait` within [`DEADLINE`].
pub trait FinishWithin {
    fn finish(self) -> BoxFuture<'static, Result<JobSummary, SchedulerError>>;
}

impl FinishWithin for JobHandle {
    fn finish(self) -> BoxFuture<'static, Result<JobSummary, SchedulerError>> {
        async move {
            tokio::time::timeout(DEADLINE, self.wait())
                .await
                .unwrap_or_else(|_| panic!("job did not end within {DEADLINE:?}"))
        }
        .boxed()
    }
}

/// `JobHandle::wait` within [`DEADLINE`], for a job that must succeed.
pub async fn succeed(handle: JobHandle) -> JobSummary {
    handle.finish().await.expect("job succeeded")
}

/// Polls `condition` every millisecond until it holds; fails the test if it
/// does not within [`DEADLINE`].
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Wraps an async closure as a task runner.
pub fn runner<F, Fut>(task: F) -> Arc<dyn TaskRunner>
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<TaskOutcome, TaskError>> + Send + 'static,
{
    Arc::new(
        move |context: TaskContext| -> BoxFuture<'static, Result<TaskOutcome, TaskError>> {
            task(context).boxed()
        },
    )
}

/// Tasks that sleep for `duration`.
pub fn sleeping(duration: Duration) -> Arc<dyn TaskRunner> {
    runner(move |_| async move {
        tokio::time::sleep(duration).await;
        Ok(TaskOutcome::default())
    })
}

/// A listener that keeps every event.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<SchedulerEvent>>);

impl SchedulerListener for Recorder {
    fn on_event(&self, event: &SchedulerEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<SchedulerEvent> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (within [`DEADLINE`]) until `jobs` `JobEnd` events arrived:
    /// the scheduler reports a job's end after `finish` may return.
    pub async fn wait_for_job_ends(&self, jobs: usize) {
        wait_for("JobEnd events", || {
            self.events()
                .iter()
                .filter(|event| matches!(event, SchedulerEvent::JobEnd { .. }))
                .count()
                == jobs
        })
        .await;
    }

    /// `(job, pool)` of every `TaskStart`, in order.
    pub fn task_starts(&self) -> Vec<(u64, String)> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                SchedulerEvent::TaskStart { task, pool } => Some((task.id.job, pool)),
                _ => None,
            })
            .collect()
    }
}
