//! Task runners shared by the scheduler's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fairway_scheduler::{
    SchedulerEvent, SchedulerListener, TaskContext, TaskError, TaskOutcome, TaskRunner,
};
use futures::FutureExt;
use futures::future::BoxFuture;

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
