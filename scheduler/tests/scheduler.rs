//! Behaviour of the scheduler through its public API.

mod common;

use common::{FinishWithin, Recorder, runner, wait_for};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use fairway_scheduler::{
    JobSpec, JobStatus, Scheduler, SchedulerConfig, SchedulerError, SchedulerEvent,
    SchedulerListener, StageId, StageSpec, TaskContext, TaskError, TaskOutcome, TaskRunner,
};
use futures::future::BoxFuture;

fn scheduler(slots: usize) -> Scheduler {
    Scheduler::new(SchedulerConfig {
        slots,
        max_task_attempts: 1,
        thread_name: "test-worker".to_string(),
        ..SchedulerConfig::default()
    })
    .expect("scheduler starts")
}

/// A job from `(stage id, tasks, parents)`.
fn job(description: &str, stages: &[(StageId, usize, &[StageId])]) -> JobSpec {
    JobSpec {
        description: description.to_string(),
        stages: stages
            .iter()
            .map(|&(id, tasks, parents)| StageSpec {
                id,
                tasks,
                parents: parents.to_vec(),
            })
            .collect(),
        pool: None,
        ..JobSpec::default()
    }
}

fn ok() -> Result<TaskOutcome, TaskError> {
    Ok(TaskOutcome::default())
}

fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Counts task futures made and dropped, to see that aborted tasks stop.
#[derive(Clone, Default)]
struct Liveness {
    started: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Liveness {
    /// Call when a task starts; the guard counts the drop of its future.
    fn guard(&self) -> DropGuard {
        self.started.fetch_add(1, Ordering::SeqCst);
        DropGuard(self.dropped.clone())
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    fn all_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst) == self.started()
    }
}

struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn running_tasks_never_exceed_slots() {
    let scheduler = scheduler(4);
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let slots_held = Arc::new(Mutex::new(HashSet::new()));
    let task = {
        let (current, peak, slots_held) = (current.clone(), peak.clone(), slots_held.clone());
        runner(move |context| {
            let (current, peak, slots_held) = (current.clone(), peak.clone(), slots_held.clone());
            async move {
                assert!(context.slot < 4, "slot {} out of range", context.slot);
                assert!(
                    slots_held.lock().unwrap().insert(context.slot),
                    "slot {} held twice",
                    context.slot
                );
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                current.fetch_sub(1, Ordering::SeqCst);
                slots_held.lock().unwrap().remove(&context.slot);
                ok()
            }
        })
    };
    let handles: Vec<_> = (0..3)
        .map(|i| {
            scheduler
                .submit(job(&format!("job {i}"), &[(0, 20, &[])]), task.clone())
                .unwrap()
        })
        .collect();
    assert_eq!(scheduler.metrics().jobs_active, 3);
    for handle in handles {
        assert_eq!(handle.finish().await.unwrap().tasks, 20);
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        4,
        "tasks saw their own concurrency"
    );
    let metrics = scheduler.metrics();
    assert_eq!(metrics.peak_running_tasks, 4);
    assert_eq!(metrics.running_tasks, 0);
    assert_eq!(metrics.tasks_completed, 60);
    assert_eq!(metrics.jobs_active, 0);
}

#[tokio::test]
async fn worker_threads_bound_cpu_work_including_spawned_work() {
    let scheduler = scheduler(2);
    scheduler.reset_peaks();
    let threads: Arc<Mutex<HashMap<ThreadId, String>>> = Arc::default();
    let record_thread = |threads: &Mutex<HashMap<ThreadId, String>>| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>").to_string();
        threads.lock().unwrap().insert(thread.id(), name);
    };
    let sub_tasks = Arc::new(AtomicUsize::new(0));
    let task = {
        let (threads, sub_tasks) = (threads.clone(), sub_tasks.clone());
        runner(move |_| {
            let (threads, sub_tasks) = (threads.clone(), sub_tasks.clone());
            async move {
                record_thread(&threads);
                spin(Duration::from_millis(20));
                let spawned: Vec<_> = (0..4)
                    .map(|_| {
                        let (threads, sub_tasks) = (threads.clone(), sub_tasks.clone());
                        tokio::spawn(async move {
                            record_thread(&threads);
                            spin(Duration::from_millis(5));
                            sub_tasks.fetch_add(1, Ordering::SeqCst);
                        })
                    })
                    .collect();
                for handle in spawned {
                    handle.await.expect("sub-task runs");
                }
                ok()
            }
        })
    };
    let handle = scheduler.submit(job("spin", &[(0, 6, &[])]), task).unwrap();
    assert_eq!(handle.finish().await.unwrap().tasks, 6);

    assert_eq!(sub_tasks.load(Ordering::SeqCst), 24);
    let threads = threads.lock().unwrap().clone();
    assert!(
        threads.values().all(|name| name == "test-worker"),
        "work ran outside the worker threads: {threads:?}"
    );
    assert!(
        threads.len() <= 2,
        "more than 2 worker threads: {threads:?}"
    );
    let metrics = scheduler.metrics();
    assert!(metrics.peak_busy_threads >= 1, "{metrics:?}");
    assert!(metrics.peak_busy_threads <= 2, "{metrics:?}");
    wait_for("workers to park", || scheduler.metrics().busy_threads == 0).await;
}

#[tokio::test]
async fn stage_starts_after_its_parents_and_independent_stages_overlap() {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mark {
        Start(StageId),
        End(StageId),
    }
    let scheduler = scheduler(4);
    let log: Arc<Mutex<Vec<Mark>>> = Arc::default();
    let task = {
        let log = log.clone();
        runner(move |context| {
            let log = log.clone();
            async move {
                let stage = context.id.stage;
                log.lock().unwrap().push(Mark::Start(stage));
                tokio::time::sleep(Duration::from_millis(30)).await;
                log.lock().unwrap().push(Mark::End(stage));
                ok()
            }
        })
    };
    let spec = job("join", &[(2, 3, &[0, 1]), (0, 2, &[]), (1, 2, &[])]);
    assert_eq!(
        scheduler
            .submit(spec, task)
            .unwrap()
            .finish()
            .await
            .unwrap()
            .tasks,
        7
    );

    let log = log.lock().unwrap();
    let first = |mark: Mark| log.iter().position(|&m| m == mark).unwrap();
    let last = |mark: Mark| log.iter().rposition(|&m| m == mark).unwrap();
    assert!(first(Mark::Start(2)) > last(Mark::End(0)), "{log:?}");
    assert!(first(Mark::Start(2)) > last(Mark::End(1)), "{log:?}");
    assert!(
        first(Mark::Start(1)) < last(Mark::End(0)),
        "no overlap: {log:?}"
    );
    assert!(
        first(Mark::Start(0)) < last(Mark::End(1)),
        "no overlap: {log:?}"
    );
}

#[tokio::test]
async fn fifo_runs_earlier_jobs_first() {
    let scheduler = scheduler(1);
    let order: Arc<Mutex<Vec<(u64, StageId, usize)>>> = Arc::default();
    let task = {
        let order = order.clone();
        runner(move |context| {
            let order = order.clone();
            async move {
                let id = context.id;
                order.lock().unwrap().push((id.job, id.stage, id.partition));
                tokio::time::sleep(Duration::from_millis(2)).await;
                ok()
            }
        })
    };
    let a = scheduler
        .submit(job("A", &[(0, 3, &[]), (1, 2, &[0])]), task.clone())
        .unwrap();
    let b = scheduler.submit(job("B", &[(0, 3, &[])]), task).unwrap();
    assert_eq!((a.id(), b.id()), (1, 2));
    b.finish().await.unwrap();
    a.finish().await.unwrap();
    let expected = vec![
        (1, 0, 0),
        (1, 0, 1),
        (1, 0, 2),
        (1, 1, 0),
        (1, 1, 1),
        (2, 0, 0),
        (2, 0, 1),
        (2, 0, 2),
    ];
    assert_eq!(*order.lock().unwrap(), expected);
}

#[tokio::test]
async fn failed_task_fails_its_job_only_and_frees_slots() {
    let scheduler = scheduler(3);
    let liveness = Liveness::default();
    let failing = {
        let liveness = liveness.clone();
        runner(move |context| {
            let guard = liveness.guard();
            async move {
                let _guard = guard;
                if context.id.partition == 2 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return Err(TaskError::new("boom"));
                }
                // Never ends by itself: only aborting it frees its slot.
                std::future::pending::<()>().await;
                ok()
            }
        })
    };
    let healthy = runner(|_| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        ok()
    });
    let bad = scheduler
        .submit(job("bad", &[(0, 4, &[])]), failing)
        .unwrap();
    let good = scheduler
        .submit(job("good", &[(0, 5, &[])]), healthy)
        .unwrap();

    let error = bad.finish().await.unwrap_err();
    assert_eq!(
        error,
        SchedulerError::TaskFailed {
            job: 1,
            stage: 0,
            partition: 2,
            attempt: 0,
            message: "boom".to_string(),
        }
    );
    // The good job runs (FIFO, behind the bad one) only on slots freed by
    // aborting the bad job's endless tasks.
    assert_eq!(good.finish().await.expect("slots were freed").tasks, 5);
    // The tasks of the failed job that had started are all gone; partition
    // 3 never started.
    wait_for("aborted tasks to be dropped", || liveness.all_dropped()).await;
    assert!(liveness.started() <= 3);
    let metrics = scheduler.metrics();
    assert_eq!(metrics.running_tasks, 0);
    assert_eq!(metrics.jobs_active, 0);
    assert_eq!(metrics.tasks_completed, 5);
}

#[tokio::test]
async fn cancel_aborts_running_tasks_and_leaves_other_jobs_alone() {
    let scheduler = scheduler(2);
    let liveness = Liveness::default();
    let sleepy = {
        let liveness = liveness.clone();
        runner(move |_| {
            let guard = liveness.guard();
            async move {
                let _guard = guard;
                // Never ends by itself: the job ends only by aborting it.
                std::future::pending::<()>().await;
                ok()
            }
        })
    };
    let slow = scheduler
        .submit(job("slow", &[(0, 4, &[])]), sleepy)
        .unwrap();
    let quick = scheduler
        .submit(job("quick", &[(0, 3, &[])]), runner(|_| async { ok() }))
        .unwrap();
    wait_for("two tasks to run", || liveness.started() == 2).await;
    assert_eq!(scheduler.metrics().running_tasks, 2);
    assert_eq!(scheduler.metrics().tasks_completed, 0, "FIFO: quick waits");

    let canceller = slow.canceller();
    std::thread::spawn(move || canceller.cancel())
        .join()
        .unwrap();
    slow.cancel(); // idempotent
    let result = slow.finish().await;
    assert_eq!(result.unwrap_err(), SchedulerError::Cancelled { job: 1 });
    // The quick job was queued behind the slow one's endless tasks.
    let summary = quick.finish().await.expect("other job goes on");
    assert_eq!(summary.tasks, 3);
    wait_for("aborted tasks to be dropped", || liveness.all_dropped()).await;
    assert_eq!(liveness.started(), 2);
    let metrics = scheduler.metrics();
    assert_eq!(metrics.running_tasks, 0);
    assert_eq!(metrics.jobs_active, 0);
}

#[tokio::test]
async fn panicking_task_fails_its_job_and_scheduler_goes_on() {
    let scheduler = scheduler(2);
    let panics_in_future = runner(|context| async move {
        if context.id.partition == 1 {
            panic!("kaboom");
        }
        ok()
    });
    let error = scheduler
        .submit(job("panics", &[(0, 3, &[])]), panics_in_future)
        .unwrap()
        .finish()
        .await
        .unwrap_err();
    match error {
        SchedulerError::TaskFailed {
            stage: 0,
            partition: 1,
            attempt: 0,
            message,
            ..
        } => assert_eq!(message, "task panicked: kaboom"),
        other => panic!("unexpected {other:?}"),
    }

    struct PanicsInRun;
    impl TaskRunner for PanicsInRun {
        fn run(&self, task: TaskContext) -> BoxFuture<'static, Result<TaskOutcome, TaskError>> {
            panic!("no future for partition {}", task.id.partition)
        }
    }
    let error = scheduler
        .submit(job("panics in run", &[(0, 1, &[])]), Arc::new(PanicsInRun))
        .unwrap()
        .finish()
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("task panicked: no future for partition 0"),
        "{error}"
    );

    let summary = scheduler
        .submit(
            job("fine", &[(0, 4, &[]), (1, 1, &[0])]),
            runner(|_| async { ok() }),
        )
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(summary.tasks, 5);
    assert_eq!(scheduler.metrics().running_tasks, 0);
}

#[tokio::test]
async fn invalid_jobs_are_rejected() {
    let scheduler = scheduler(1);
    let task = runner(|_| async { ok() });
    let invalid = |spec: JobSpec| match scheduler.submit(spec, task.clone()) {
        Err(SchedulerError::InvalidJob(message)) => message,
        other => panic!("expected InvalidJob, got {other:?}"),
    };
    assert!(invalid(job("unknown", &[(0, 1, &[]), (1, 1, &[5])])).contains("unknown parent"));
    assert!(invalid(job("cycle", &[(0, 1, &[1]), (1, 1, &[0])])).contains("cycle"));
    assert!(invalid(job("self", &[(0, 1, &[0])])).contains("cycle"));
    assert!(invalid(job("duplicate", &[(0, 1, &[]), (0, 2, &[])])).contains("duplicate"));
    assert!(invalid(job("empty", &[])).contains("no stages"));
    assert_eq!(scheduler.metrics().jobs_active, 0);

    // Rejected jobs take no id.
    let handle = scheduler
        .submit(job("valid", &[(0, 1, &[])]), task)
        .unwrap();
    assert_eq!(handle.id(), 1);
    handle.finish().await.unwrap();

    for (slots, max_task_attempts) in [(0, 1), (1, 0)] {
        let config = SchedulerConfig {
            slots,
            max_task_attempts,
            ..SchedulerConfig::default()
        };
        assert!(matches!(
            Scheduler::new(config),
            Err(SchedulerError::InvalidConfig(_))
        ));
    }
}

fn flaky(
    failures: u32,
    error: fn() -> TaskError,
    attempts: Arc<Mutex<Vec<(usize, u32)>>>,
) -> Arc<dyn TaskRunner> {
    runner(move |context| {
        attempts
            .lock()
            .unwrap()
            .push((context.id.partition, context.id.attempt));
        async move {
            if context.id.partition == 1 && context.id.attempt < failures {
                Err(error())
            } else {
                ok()
            }
        }
    })
}

#[tokio::test]
async fn retryable_failures_are_retried_up_to_max_attempts() {
    let scheduler = Scheduler::new(SchedulerConfig {
        slots: 2,
        max_task_attempts: 3,
        thread_name: "retry-worker".to_string(),
        ..SchedulerConfig::default()
    })
    .unwrap();
    let retryable = || TaskError::new("flaky");

    let attempts = Arc::default();
    let summary = scheduler
        .submit(
            job("recovers", &[(0, 3, &[])]),
            flaky(2, retryable, Arc::clone(&attempts)),
        )
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(summary.tasks, 3);
    let mut attempts = attempts.lock().unwrap().clone();
    attempts.sort();
    assert_eq!(attempts, vec![(0, 0), (1, 0), (1, 1), (1, 2), (2, 0)]);
    assert_eq!(scheduler.metrics().tasks_completed, 3);

    let error = scheduler
        .submit(
            job("gives up", &[(0, 3, &[])]),
            flaky(3, retryable, Arc::default()),
        )
        .unwrap()
        .finish()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SchedulerError::TaskFailed {
                partition: 1,
                attempt: 2,
                ..
            }
        ),
        "{error:?}"
    );

    let attempts = Arc::default();
    let error = scheduler
        .submit(
            job("fatal", &[(0, 3, &[])]),
            flaky(1, || TaskError::fatal("broken"), Arc::clone(&attempts)),
        )
        .unwrap()
        .finish()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SchedulerError::TaskFailed {
                partition: 1,
                attempt: 0,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        !attempts.lock().unwrap().contains(&(1, 1)),
        "fatal error retried"
    );
    assert_eq!(scheduler.metrics().running_tasks, 0);
}

#[tokio::test]
async fn listener_sees_events_in_order_and_empty_stages_complete() {
    let scheduler = scheduler(2);
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let spec = job("events", &[(0, 2, &[]), (1, 0, &[0]), (2, 1, &[1])]);
    let task = runner(|context| async move {
        Ok(TaskOutcome {
            rows: context.id.partition as u64 + 1,
            bytes: 0,
        })
    });
    assert_eq!(
        scheduler
            .submit(spec, task)
            .unwrap()
            .finish()
            .await
            .unwrap()
            .tasks,
        3
    );
    wait_for("JobEnd", || {
        recorder
            .events()
            .iter()
            .any(|event| matches!(event, SchedulerEvent::JobEnd { .. }))
    })
    .await;

    let events = recorder.events();
    assert_eq!(
        events.first(),
        Some(&SchedulerEvent::JobStart {
            job: 1,
            description: "events".to_string(),
            pool: "default".to_string(),
            stages: 3,
        })
    );
    assert_eq!(
        events.last(),
        Some(&SchedulerEvent::JobEnd {
            job: 1,
            status: JobStatus::Succeeded
        })
    );
    let position = |wanted: &dyn Fn(&SchedulerEvent) -> bool| {
        events
            .iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("missing event in {events:?}"))
    };
    let empty_submitted = position(&|e| {
        matches!(
            e,
            SchedulerEvent::StageSubmitted {
                stage: 1,
                tasks: 0,
                ..
            }
        )
    });
    let empty_completed =
        position(&|e| matches!(e, SchedulerEvent::StageCompleted { stage: 1, .. }));
    let last_submitted =
        position(&|e| matches!(e, SchedulerEvent::StageSubmitted { stage: 2, .. }));
    let last_task =
        position(&|e| matches!(e, SchedulerEvent::TaskStart { task, .. } if task.id.stage == 2));
    assert!(empty_submitted < empty_completed && empty_completed < last_submitted);
    assert!(last_submitted < last_task);

    let mut open = HashSet::new();
    for event in &events {
        match event {
            SchedulerEvent::TaskStart { task, pool } => {
                assert_eq!(pool, "default");
                assert!(open.insert(task.id))
            }
            SchedulerEvent::TaskEnd {
                task,
                outcome,
                pool,
                ..
            } => {
                assert_eq!(pool, "default");
                assert!(open.remove(&task.id), "TaskEnd before TaskStart");
                let rows = outcome.as_ref().unwrap().rows;
                assert_eq!(rows, task.id.partition as u64 + 1);
            }
            _ => {}
        }
    }
    assert!(open.is_empty());
    let task_ends = events
        .iter()
        .filter(|e| matches!(e, SchedulerEvent::TaskEnd { .. }))
        .count();
    assert_eq!(task_ends, 3);
}

#[test]
fn wait_works_from_sync_code_and_dropped_handles_do_not_cancel() {
    let scheduler = scheduler(2);
    let done = Arc::new(AtomicUsize::new(0));
    let task = {
        let done = done.clone();
        runner(move |_| {
            let done = done.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                done.fetch_add(1, Ordering::SeqCst);
                ok()
            }
        })
    };
    drop(
        scheduler
            .submit(job("detached", &[(0, 3, &[])]), task.clone())
            .unwrap(),
    );
    let handle = scheduler
        .submit(job("waited", &[(0, 2, &[])]), task)
        .unwrap();
    let summary = futures::executor::block_on(handle.wait()).unwrap();
    assert_eq!(summary.job, 2);
    assert_eq!(summary.tasks, 2);
    // FIFO: the detached job was ahead of the waited one, so it is done too.
    assert_eq!(done.load(Ordering::SeqCst), 5);
    assert_eq!(scheduler.metrics().tasks_completed, 5);
}

#[test]
fn waiting_from_inside_the_worker_runtime_and_dropping_there_is_safe() {
    let scheduler = scheduler(2);
    let runtime = scheduler.runtime();
    let inner = scheduler.clone();
    drop(scheduler);
    // The last Scheduler clone is dropped on a worker thread, after waiting
    // for a job from a task on the same runtime.
    let result = futures::executor::block_on(runtime.spawn(async move {
        let handle = inner
            .submit(job("nested", &[(0, 2, &[])]), runner(|_| async { ok() }))
            .unwrap();
        drop(inner);
        handle.finish().await
    }))
    .unwrap();
    assert_eq!(result.unwrap().tasks, 2);
}

/// Tasks of a chain of stages over a shared "store" of outputs: a task of
/// stage `s > 0` reads every output of stage `s - 1` and reports the
/// missing ones as lost; `lose` runs when a task starts and may delete
/// outputs. Records every attempt as (stage, partition, attempt).
fn lineage_runner(
    store: Arc<Mutex<HashSet<(StageId, usize)>>>,
    parent_tasks: Vec<usize>,
    runs: Arc<Mutex<Vec<(StageId, usize, u32)>>>,
    lose: impl Fn(&TaskContext, &mut HashSet<(StageId, usize)>) + Send + Sync + 'static,
) -> Arc<dyn TaskRunner> {
    runner(move |context| {
        let id = context.id;
        runs.lock()
            .unwrap()
            .push((id.stage, id.partition, id.attempt));
        let mut outputs = store.lock().unwrap();
        lose(&context, &mut outputs);
        let result = if id.stage == 0 {
            Ok(())
        } else {
            let missing: Vec<usize> = (0..parent_tasks[id.stage - 1])
                .filter(|&p| !outputs.contains(&(id.stage - 1, p)))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(TaskError::fetch_failed(
                    format!("lost outputs of stage {}: {missing:?}", id.stage - 1),
                    id.stage - 1,
                    missing,
                ))
            }
        };
        if result.is_ok() {
            outputs.insert((id.stage, id.partition));
        }
        drop(outputs);
        async move { result.map(|()| TaskOutcome::default()) }
    })
}

#[tokio::test]
async fn lost_outputs_are_recomputed_from_lineage_then_the_reader_retried() {
    let scheduler = Scheduler::new(SchedulerConfig {
        slots: 2,
        max_task_attempts: 4,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let spec = job("lineage", &[(0, 3, &[]), (1, 2, &[0]), (2, 1, &[1])]);

    // Stage 1 partition 0's first attempt finds map output 1 of stage 0
    // gone.
    let store = Arc::default();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let lose_once = |context: &TaskContext, outputs: &mut HashSet<(StageId, usize)>| {
        if (context.id.stage, context.id.partition, context.id.attempt) == (1, 0, 0) {
            outputs.remove(&(0, 1));
        }
    };
    let summary = scheduler
        .submit(
            spec.clone(),
            lineage_runner(store, vec![3, 2], Arc::clone(&runs), lose_once),
        )
        .unwrap()
        .finish()
        .await
        .expect("the job recovers");
    let runs = runs.lock().unwrap().clone();
    let position = |run: (StageId, usize, u32)| {
        runs.iter()
            .position(|r| *r == run)
            .unwrap_or_else(|| panic!("{run:?} ran: {runs:?}"))
    };
    // Stage 0 partition 1 ran again (attempt 1) after the failure, and
    // stage 1 partition 0 ran again after that.
    assert!(position((1, 0, 0)) < position((0, 1, 1)), "{runs:?}");
    assert!(position((0, 1, 1)) < position((1, 0, 1)), "{runs:?}");
    assert!(position((1, 0, 1)) < position((2, 0, 0)), "{runs:?}");
    assert_eq!(
        runs.iter().filter(|r| r.0 == 0).count(),
        4,
        "one map task recomputed: {runs:?}"
    );
    assert_eq!(summary.tasks, 7, "6 tasks and 1 recomputed");
    let events = recorder.events();
    let submitted_again = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SchedulerEvent::StageSubmitted {
                    stage: 0,
                    tasks: 1,
                    ..
                }
            )
        })
        .count();
    assert_eq!(submitted_again, 1, "stage 0 resubmitted with one task");

    // A cascade: the last stage finds stage 1's outputs gone, and stage 1's
    // inputs are gone too (freed early, say): stage 0 runs again, then
    // stage 1, then the last stage.
    let store = Arc::default();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let lose_all = |context: &TaskContext, outputs: &mut HashSet<(StageId, usize)>| {
        if (context.id.stage, context.id.attempt) == (2, 0) {
            outputs.clear();
        }
    };
    scheduler
        .submit(
            spec.clone(),
            lineage_runner(store, vec![3, 2], Arc::clone(&runs), lose_all),
        )
        .unwrap()
        .finish()
        .await
        .expect("the job recovers through two stages");
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.iter().filter(|r| r.0 == 0).count(), 6, "{runs:?}");
    assert_eq!(runs.iter().filter(|r| r.0 == 2).count(), 2, "{runs:?}");
    assert_eq!(*runs.last().unwrap(), (2, 0, 1), "{runs:?}");

    // Outputs lost at every attempt: the reader's attempts run out.
    let runs = Arc::new(Mutex::new(Vec::new()));
    let lose_always = |context: &TaskContext, outputs: &mut HashSet<(StageId, usize)>| {
        if context.id.stage == 1 {
            outputs.remove(&(0, 2));
        }
    };
    let error = scheduler
        .submit(
            job("always lost", &[(0, 3, &[]), (1, 1, &[0])]),
            lineage_runner(Arc::default(), vec![3], Arc::clone(&runs), lose_always),
        )
        .unwrap()
        .finish()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            SchedulerError::TaskFailed { stage: 1, attempt: 3, message, .. }
                if message.contains("lost outputs of stage 0: [2]")
        ),
        "{error:?}"
    );

    // Lost outputs of a stage that is not a parent fail the job.
    let not_parent = runner(|context: TaskContext| async move {
        if context.id.stage == 1 {
            Err(TaskError::fetch_failed("lost", 7, vec![0]))
        } else {
            ok()
        }
    });
    let error = scheduler
        .submit(job("bad lineage", &[(0, 1, &[]), (1, 1, &[0])]), not_parent)
        .unwrap()
        .finish()
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not of a parent stage"),
        "{error}"
    );
    let m = scheduler.metrics();
    assert_eq!((m.running_tasks, m.jobs_active), (0, 0), "{m:?}");
}

#[tokio::test]
async fn a_stale_report_of_a_lost_output_recomputes_nothing() {
    let scheduler = Scheduler::new(SchedulerConfig {
        slots: 3,
        max_task_attempts: 4,
        ..SchedulerConfig::default()
    })
    .unwrap();
    // Both readers of stage 0 started before map output 1 was lost. Reader
    // 0 reports the loss at once; reader 1 reports it only after the
    // recomputed output is there again, so its report is stale: map task 1
    // must run twice in all, not three times, and reader 1 is retried.
    // `recomputed` is notified by the scheduler's listener when the
    // recomputed map task has ended, so its output is registered by then.
    struct RecomputeEnded(Arc<tokio::sync::Notify>);
    impl SchedulerListener for RecomputeEnded {
        fn on_event(&self, event: &SchedulerEvent) {
            if let SchedulerEvent::TaskEnd {
                task,
                outcome: Ok(_),
                ..
            } = event
                && (task.id.stage, task.id.partition, task.id.attempt) == (0, 1, 1)
            {
                self.0.notify_one();
            }
        }
    }
    let recomputed = Arc::new(tokio::sync::Notify::new());
    scheduler.set_listener(Some(Arc::new(RecomputeEnded(Arc::clone(&recomputed)))));
    let runs = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let runs = Arc::clone(&runs);
        runner(move |context: TaskContext| {
            let id = context.id;
            runs.lock()
                .unwrap()
                .push((id.stage, id.partition, id.attempt));
            let recomputed = Arc::clone(&recomputed);
            async move {
                match (id.stage, id.partition, id.attempt) {
                    (1, 0, 0) => Err(TaskError::fetch_failed("lost", 0, vec![1])),
                    (1, 1, 0) => {
                        recomputed.notified().await;
                        Err(TaskError::fetch_failed("lost", 0, vec![1]))
                    }
                    _ => ok(),
                }
            }
        })
    };
    let summary = scheduler
        .submit(job("stale", &[(0, 2, &[]), (1, 2, &[0])]), task)
        .unwrap()
        .finish()
        .await
        .expect("the job recovers");
    let runs = runs.lock().unwrap().clone();
    assert_eq!(
        runs.iter().filter(|r| (r.0, r.1) == (0, 1)).count(),
        2,
        "map task 1 recomputed once: {runs:?}"
    );
    assert!(runs.contains(&(1, 1, 1)), "reader 1 retried: {runs:?}");
    assert_eq!(summary.tasks, 5, "4 tasks and 1 recomputed: {runs:?}");
}

#[test]
fn slots_are_bounded_with_an_error_naming_value_and_maximum() {
    assert_eq!(fairway_scheduler::MAX_SLOTS, 1024);
    // Far more worker threads than a process may start used to end the
    // process; now it is a configuration error, and no thread is started.
    for slots in [fairway_scheduler::MAX_SLOTS + 1, 100_000, usize::MAX] {
        let config = SchedulerConfig {
            slots,
            ..SchedulerConfig::default()
        };
        match Scheduler::new(config) {
            Err(SchedulerError::InvalidConfig(message)) => {
                assert!(message.contains(&slots.to_string()), "{message}");
                assert!(message.contains("maximum of 1024"), "{message}");
            }
            other => panic!("{slots} slots: expected InvalidConfig, got {other:?}"),
        }
    }
    match Scheduler::new(SchedulerConfig {
        slots: 0,
        ..SchedulerConfig::default()
    }) {
        Err(SchedulerError::InvalidConfig(message)) => {
            assert!(message.contains("at least 1, got 0"), "{message}")
        }
        other => panic!("0 slots: expected InvalidConfig, got {other:?}"),
    }
    // The maximum itself is a working scheduler.
    let scheduler = Scheduler::new(SchedulerConfig {
        slots: fairway_scheduler::MAX_SLOTS,
        ..SchedulerConfig::default()
    })
    .expect("1024 slots");
    assert_eq!(scheduler.slots(), 1024);
}
