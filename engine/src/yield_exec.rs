//! Batch boundaries at which a task may give its slot to a fairer pool.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use fairway_scheduler::YieldPoint;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};

/// Wraps a leaf of a task's plan (a scan or a shuffle reader): before
/// handing the next batch to its parent, it checks whether the scheduler
/// asked the task to give its slot up, and if so waits, slot-less, until the
/// scheduler gives it one again. Every task pulls its input through its
/// leaves batch by batch, so even a task that produces no output until the
/// end (an aggregation, a hash-join build) reaches this point often. Added
/// to each task's private copy of the stage plan only; stage plans shown by
/// `explain` do not contain it.
#[derive(Debug)]
pub(crate) struct YieldExec {
    input: Arc<dyn ExecutionPlan>,
}

impl YieldExec {
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self { input }
    }
}

impl DisplayAs for YieldExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "YieldExec")
    }
}

impl ExecutionPlan for YieldExec {
    fn name(&self) -> &str {
        "YieldExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match children.len() {
            1 => Ok(Arc::new(YieldExec::new(children.remove(0)))),
            n => Err(datafusion::error::DataFusionError::Internal(format!(
                "YieldExec takes one child, got {n}"
            ))),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        // Outside a scheduler task (or in work it spawned) there is nothing
        // to yield.
        Ok(match YieldPoint::current() {
            Some(point) => Box::pin(YieldStream {
                schema: input.schema(),
                input,
                point,
                waiting: None,
            }),
            None => input,
        })
    }
}

struct YieldStream {
    schema: SchemaRef,
    input: SendableRecordBatchStream,
    point: YieldPoint,
    waiting: Option<BoxFuture<'static, ()>>,
}

impl Stream for YieldStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(waiting) = self.waiting.as_mut() {
                ready!(waiting.poll_unpin(cx));
                self.waiting = None;
            }
            if self.point.should_yield() {
                let wait = self.point.yield_now().boxed();
                self.waiting = Some(wait);
                continue;
            }
            return self.input.poll_next_unpin(cx);
        }
    }
}

impl RecordBatchStream for YieldStream {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
