//! [`YieldPoint`]: where a running task may give its slot back.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::oneshot;

use crate::job::{TaskContext, TaskId};

tokio::task_local! {
    /// The yield point of the task whose future is being polled. The
    /// scheduler sets it around every task future it spawns.
    static CURRENT: YieldPoint;
}

/// Where a running task may give its slot back to the scheduler and wait for
/// another: cooperative preemption between batches.
///
/// # Why cooperative
///
/// A task is an opaque future that holds a slot from its start to its end;
/// the scheduler cannot stop it half-way without losing its work (aborting
/// drops the future and everything it computed). So it does not interrupt
/// tasks: with [`SchedulerConfig::preemption`](crate::SchedulerConfig::preemption)
/// on, under a FAIR root, it *asks* a task to give its slot up when a job of
/// another top-level pool waits for slots that the fair split says it should
/// have, and the task gives it up the next time it reaches a yield point.
/// Spark has no preemption at all inside an application: a pool that holds
/// every slot keeps them until its tasks end.
///
/// # Batch boundaries
///
/// Task code calls [`yield_now`](Self::yield_now) where stopping for a while
/// costs nothing but time: between two batches of rows, when no lock is held
/// and no partial output is half-written. If no yield was asked for, the call
/// returns at once (one atomic load, [`should_yield`](Self::should_yield)).
/// If one was, the task gives up its slot (it no longer counts as running,
/// and another task starts on the slot), waits until the scheduler hands it a
/// slot again, and continues where it was. The slot may be a different one:
/// read [`slot`](Self::slot) after the call rather than keeping
/// [`TaskContext::slot`] from the start. A task that never calls it is never
/// preempted, and a task that is asked and ends before its next yield point
/// just ends. A request that is no longer wanted (the job that needed the
/// slot ended) is withdrawn, and the call then returns at once.
///
/// # What a suspended task keeps
///
/// Only the slot is given back. Whatever the task holds (buffers, memory
/// reservations, open files, partial state) stays held while it waits, so
/// memory use can exceed what the running tasks alone would use. A suspended
/// task waits only for a slot, never for another task, so suspension cannot
/// deadlock; cancelling its job (or dropping the scheduler) aborts it where
/// it waits.
///
/// # Use
///
/// [`YieldPoint::current`] returns the yield point of the task being polled
/// (a task-local value); it is `None` outside a scheduler task, including
/// inside futures that the task spawned with `tokio::spawn`. The future of
/// [`yield_now`](Self::yield_now) is `'static` and `Send`, so a
/// `Stream::poll_next` can box it (`Option<BoxFuture<'static, ()>>`), poll it
/// to completion, then go on. Await it from the task's own future only, one
/// call at a time, and to completion: dropping it while it waits lets the
/// task run on without a slot until the scheduler resumes it.
///
/// ```
/// use fairway_scheduler::{TaskContext, TaskError, TaskOutcome, YieldPoint};
///
/// async fn scan(task: TaskContext, batches: usize) -> Result<TaskOutcome, TaskError> {
///     let yield_point = YieldPoint::current();
///     let mut rows = 0;
///     for _ in 0..batches {
///         rows += 1024; // ... produce one batch ...
///         if let Some(point) = &yield_point {
///             point.yield_now().await; // returns at once unless asked
///         }
///     }
///     Ok(TaskOutcome { rows, bytes: 0 })
/// }
/// ```
#[derive(Clone)]
pub struct YieldPoint {
    shared: Arc<YieldShared>,
}

/// What a yield point gives its slot back to: the scheduler's state, which
/// implements this (module `state`). A trait so that this module does not
/// depend on the state machine that depends on it.
pub(crate) trait SlotOwner: Send + Sync {
    /// Frees the slot of `point`'s task if its yield request still stands,
    /// and returns the receiver of the slot it is resumed on; `None` when the
    /// task should go on at once (request withdrawn, task no longer live).
    fn give_slot_back(self: Arc<Self>, point: &YieldShared) -> Option<oneshot::Receiver<usize>>;
}

/// The state of one task attempt's yield point, shared between the task and
/// the scheduler.
pub(crate) struct YieldShared {
    /// The task attempt.
    pub(crate) task: TaskId,
    /// Set by the scheduler (under its lock) to ask for the slot, cleared
    /// when the request is withdrawn or met.
    pub(crate) requested: AtomicBool,
    /// The slot the task holds now (or held last, while suspended).
    pub(crate) slot: AtomicUsize,
    /// Weak: the scheduler's state holds this, and must not keep itself.
    core: Weak<dyn SlotOwner>,
}

impl YieldShared {
    pub(crate) fn new(context: TaskContext, core: Weak<dyn SlotOwner>) -> Self {
        Self {
            task: context.id,
            requested: AtomicBool::new(false),
            slot: AtomicUsize::new(context.slot),
            core,
        }
    }

    /// Whether the scheduler wants the slot back now.
    pub(crate) fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}

impl YieldPoint {
    pub(crate) fn new(shared: Arc<YieldShared>) -> Self {
        Self { shared }
    }

    /// The yield point of the task whose future is being polled, or `None`
    /// outside a scheduler task.
    pub fn current() -> Option<YieldPoint> {
        CURRENT.try_with(YieldPoint::clone).ok()
    }

    /// Whether the scheduler asks this task to give its slot up at its next
    /// yield point. Cheap (one atomic load): check it between batches to skip
    /// even building the [`yield_now`](Self::yield_now) future.
    pub fn should_yield(&self) -> bool {
        self.shared.is_requested()
    }

    /// If a yield is asked for: gives the task's slot up, waits until the
    /// scheduler hands it a slot again, and returns. Otherwise returns at
    /// once. Whether the request still stands is checked again under the
    /// scheduler's lock when the slot is given up.
    ///
    /// The future owns what it needs (`'static`), so it can be boxed and kept
    /// across polls of a stream.
    pub fn yield_now(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        async move {
            if !shared.is_requested() {
                return;
            }
            let Some(core) = shared.core.upgrade() else {
                return;
            };
            let Some(resumed) = core.give_slot_back(&shared) else {
                return;
            };
            if resumed.await.is_err() {
                // The job ended (or the scheduler was dropped) while the task
                // waited: the task has been aborted and is never polled to
                // the end. Going on without a slot would break the bound.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The task attempt this yield point belongs to.
    pub fn task(&self) -> TaskId {
        self.shared.task
    }

    /// The slot the task holds now: its [`TaskContext::slot`] until it first
    /// yields, then the slot it was resumed on (while suspended, the slot it
    /// gave up).
    pub fn slot(&self) -> usize {
        self.shared.slot.load(Ordering::Acquire)
    }

    /// The task's context with its current [`slot`](Self::slot).
    pub fn context(&self) -> TaskContext {
        TaskContext {
            id: self.task(),
            slot: self.slot(),
        }
    }
}

impl fmt::Debug for YieldPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YieldPoint")
            .field("task", &self.shared.task)
            .field("slot", &self.slot())
            .field("requested", &self.should_yield())
            .finish()
    }
}

/// Runs `future` with `point` as the current yield point.
pub(crate) fn scope<F: Future>(point: YieldPoint, future: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(point, future)
}
