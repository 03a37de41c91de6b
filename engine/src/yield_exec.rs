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

use crate::stage_metrics::LeafCounters;
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
///
/// It also counts the rows and bytes its leaf produced, for the task's
/// stage metrics.
#[derive(Debug)]
pub(crate) struct YieldExec {
    input: Arc<dyn ExecutionPlan>,
    counters: Arc<LeafCounters>,
    from_shuffle: bool,
}

impl YieldExec {
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, counters: Arc<LeafCounters>) -> Self {
        let from_shuffle = input.is::<fairway_shuffle::ShuffleReaderExec>();
        Self {
            input,
            counters,
            from_shuffle,
        }
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
            1 => Ok(Arc::new(YieldExec::new(
                children.remove(0),
                Arc::clone(&self.counters),
            ))),
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
        Ok(Box::pin(YieldStream {
            schema: input.schema(),
            input,
            // Outside a scheduler task (or in work it spawned) there is
            // nothing to yield.
            point: YieldPoint::current(),
            waiting: None,
            counters: Arc::clone(&self.counters),
            from_shuffle: self.from_shuffle,
        }))
    }
}

struct YieldStream {
    schema: SchemaRef,
    input: SendableRecordBatchStream,
    point: Option<YieldPoint>,
    waiting: Option<BoxFuture<'static, ()>>,
    counters: Arc<LeafCounters>,
    from_shuffle: bool,
}

impl Stream for YieldStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(waiting) = self.waiting.as_mut() {
                ready!(waiting.poll_unpin(cx));
                self.waiting = None;
            }
            if let Some(point) = self.point.as_ref().filter(|p| p.should_yield()) {
                let wait = point.yield_now().boxed();
                self.waiting = Some(wait);
                continue;
            }
            let next = ready!(self.input.poll_next_unpin(cx));
            if let Some(Ok(batch)) = &next {
                self.counters.record(self.from_shuffle, batch);
            }
            return Poll::Ready(next);
        }
    }
}

impl RecordBatchStream for YieldStream {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
