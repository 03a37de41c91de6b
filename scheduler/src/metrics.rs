//! Counters behind [`SchedulerMetrics`].

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of the scheduler's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedulerMetrics {
    /// Tasks holding a slot now.
    pub running_tasks: usize,
    /// Most tasks that held slots at once (since start or `reset_peaks`).
    pub peak_running_tasks: usize,
    /// Worker threads of the scheduler's runtime that are not parked now.
    pub busy_threads: usize,
    /// Most worker threads busy at once (since start or `reset_peaks`).
    pub peak_busy_threads: usize,
    /// Tasks that succeeded, over all jobs (failed attempts not counted).
    pub tasks_completed: u64,
    /// Task attempts that returned an error (retried or not; aborted
    /// attempts of cancelled or failed jobs are not counted).
    pub tasks_failed: u64,
    /// Jobs submitted and not yet ended.
    pub jobs_active: usize,
    /// Times a task gave its slot up at a [`YieldPoint`](crate::YieldPoint)
    /// (cooperative preemption, see
    /// [`SchedulerConfig::preemption`](crate::SchedulerConfig::preemption)).
    pub yields: u64,
    /// Tasks that gave their slot up and wait for another now. They are not
    /// counted in `running_tasks`.
    pub suspended_tasks: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    running_tasks: AtomicUsize,
    peak_running_tasks: AtomicUsize,
    busy_threads: AtomicUsize,
    peak_busy_threads: AtomicUsize,
    tasks_completed: AtomicU64,
    tasks_failed: AtomicU64,
    jobs_active: AtomicUsize,
    yields: AtomicU64,
    suspended_tasks: AtomicUsize,
    /// Worker threads that have parked at least once.
    workers_seen: AtomicUsize,
}

/// Where a thread stands for `busy_threads`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WorkerState {
    /// Not seen parking yet: a blocking thread, or a worker still starting.
    Unseen,
    /// A worker between unpark and park, counted in `busy_threads`.
    Busy,
    /// A parked worker.
    Idle,
}

thread_local! {
    /// Each thread belongs to at most one runtime, so one state is enough.
    static WORKER_STATE: Cell<WorkerState> = const { Cell::new(WorkerState::Unseen) };
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SchedulerMetrics {
        SchedulerMetrics {
            running_tasks: self.running_tasks.load(Ordering::SeqCst),
            peak_running_tasks: self.peak_running_tasks.load(Ordering::SeqCst),
            busy_threads: self.busy_threads.load(Ordering::SeqCst),
            peak_busy_threads: self.peak_busy_threads.load(Ordering::SeqCst),
            tasks_completed: self.tasks_completed.load(Ordering::SeqCst),
            tasks_failed: self.tasks_failed.load(Ordering::SeqCst),
            jobs_active: self.jobs_active.load(Ordering::SeqCst),
            yields: self.yields.load(Ordering::SeqCst),
            suspended_tasks: self.suspended_tasks.load(Ordering::SeqCst),
        }
    }

    pub(crate) fn reset_peaks(&self) {
        self.peak_running_tasks
            .store(self.running_tasks.load(Ordering::SeqCst), Ordering::SeqCst);
        self.peak_busy_threads
            .store(self.busy_threads.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub(crate) fn task_started(&self) {
        let now = self.running_tasks.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_running_tasks.fetch_max(now, Ordering::SeqCst);
    }

    pub(crate) fn task_stopped(&self) {
        self.running_tasks.fetch_sub(1, Ordering::SeqCst);
    }

    /// A running task gave its slot up and waits.
    pub(crate) fn task_yielded(&self) {
        self.yields.fetch_add(1, Ordering::SeqCst);
        self.suspended_tasks.fetch_add(1, Ordering::SeqCst);
        self.task_stopped();
    }

    /// A suspended task got a slot again.
    pub(crate) fn task_resumed(&self) {
        self.suspended_tasks.fetch_sub(1, Ordering::SeqCst);
        self.task_started();
    }

    /// A suspended task ended without getting a slot again (aborted).
    pub(crate) fn suspended_task_dropped(&self) {
        self.suspended_tasks.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn task_succeeded(&self) {
        self.tasks_completed.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn task_failed(&self) {
        self.tasks_failed.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn job_started(&self) {
        self.jobs_active.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn job_ended(&self) {
        self.jobs_active.fetch_sub(1, Ordering::SeqCst);
    }

    /// Number of worker threads that have parked at least once. Only
    /// workers park, and a worker parks as soon as it has started when there
    /// is no work, so once this equals the number of workers `busy_threads`
    /// counts every worker.
    pub(crate) fn workers_seen(&self) -> usize {
        self.workers_seen.load(Ordering::SeqCst)
    }

    /// Runtime hook: a worker thread woke up (`on_thread_unpark`).
    pub(crate) fn worker_unparked(&self) {
        if WORKER_STATE.replace(WorkerState::Busy) != WorkerState::Busy {
            let now = self.busy_threads.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak_busy_threads.fetch_max(now, Ordering::SeqCst);
        }
    }

    /// Runtime hook: a worker thread is about to park (`on_thread_park`).
    pub(crate) fn worker_parked(&self) {
        match WORKER_STATE.replace(WorkerState::Idle) {
            WorkerState::Unseen => {
                self.workers_seen.fetch_add(1, Ordering::SeqCst);
            }
            WorkerState::Busy => {
                self.busy_threads.fetch_sub(1, Ordering::SeqCst);
            }
            WorkerState::Idle => {}
        }
    }

    /// Runtime hook: a thread stops (`on_thread_stop`).
    pub(crate) fn thread_stopped(&self) {
        if WORKER_STATE.replace(WorkerState::Unseen) == WorkerState::Busy {
            self.busy_threads.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
