//! Task runners shared by the scheduler's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fairway_scheduler::{TaskContext, TaskError, TaskOutcome, TaskRunner};
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
