//! Cooperative preemption: tasks that give their slot up at yield points.

mod common;

use common::{DEADLINE, FinishWithin, Recorder, runner, sleeping, wait_for};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fairway_scheduler::{
    JobSpec, JobStatus, PoolConfig, PoolStatus, Scheduler, SchedulerConfig, SchedulerError,
    SchedulerEvent, SchedulingMode, StageSpec, TaskContext, TaskId, TaskOutcome, TaskRunner,
    YieldPoint,
};

/// What [`batched`] tasks report.
#[derive(Clone, Default)]
struct Probe {
    /// Batches done, over all tasks.
    batches: Arc<AtomicUsize>,
    /// Whether any task ever saw a yield request.
    asked: Arc<AtomicBool>,
    /// `(task, slot)` each task found itself on after a yield point.
    slots: Arc<Mutex<HashSet<(TaskId, usize)>>>,
}

/// Tasks of `batches` batches of `batch` each, with a yield point after
/// every batch.
fn batched(batches: usize, batch: Duration, probe: &Probe) -> Arc<dyn TaskRunner> {
    let probe = probe.clone();
    runner(move |context| {
        let probe = probe.clone();
        async move {
            let point = YieldPoint::current().expect("a yield point inside a task");
            assert_eq!((point.task(), point.slot()), (context.id, context.slot));
            for _ in 0..batches {
                tokio::time::sleep(batch).await;
                probe.batches.fetch_add(1, Ordering::SeqCst);
                if point.should_yield() {
                    probe.asked.store(true, Ordering::SeqCst);
                }
                point.yield_now().await;
                let slot = point.slot();
                assert_eq!(
                    point.context(),
                    TaskContext {
                        id: context.id,
                        slot
                    }
                );
                probe.slots.lock().unwrap().insert((context.id, slot));
            }
            Ok(TaskOutcome {
                rows: batches as u64,
                bytes: 0,
            })
        }
    })
}

fn job(pool: &str, tasks: usize) -> JobSpec {
    JobSpec {
        description: format!("{tasks} tasks in {pool}"),
        stages: vec![StageSpec {
            id: 0,
            tasks,
            parents: vec![],
        }],
        pool: Some(pool.to_string()),
        ..JobSpec::default()
    }
}

fn scheduler(
    slots: usize,
    mode: SchedulingMode,
    pools: &[(&str, i32)],
    preempt: bool,
) -> Scheduler {
    Scheduler::new(SchedulerConfig {
        slots,
        mode,
        pools: pools
            .iter()
            .map(|&(name, weight)| PoolConfig {
                weight,
                mode: SchedulingMode::Fair,
                ..PoolConfig::new(name)
            })
            .collect(),
        allocation_file_loaded: true,
        preemption: preempt,
        ..SchedulerConfig::default()
    })
    .expect("scheduler starts")
}

fn running(pools: &[PoolStatus], name: &str) -> usize {
    pools
        .iter()
        .find(|pool| pool.name == name)
        .unwrap_or_else(|| panic!("no pool {name} in {pools:?}"))
        .running_tasks
}

/// Counts live task futures: made when a task starts, dropped with it.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counter))
    }
}

/// Tasks that never end: they sleep 2 ms and reach a yield point, forever;
/// `live` counts the task futures that exist.
fn endless(live: &Arc<AtomicUsize>) -> Arc<dyn TaskRunner> {
    let counter = Arc::clone(live);
    runner(move |_| {
        let guard = Live::new(&counter);
        async move {
            let _guard = guard;
            let point = YieldPoint::current().unwrap();
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                point.yield_now().await;
            }
        }
    })
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Replays the task events: a slot is taken by `TaskStart` and `TaskResume`
/// and given back by `TaskYield` and `TaskEnd`; no slot is ever taken twice
/// and every yield is followed by a resume or by the task's end. Returns the
/// tasks that yielded and then resumed.
fn check_slots(events: &[SchedulerEvent], slots: usize) -> HashSet<TaskId> {
    let mut holder: Vec<Option<TaskId>> = vec![None; slots];
    let mut suspended: HashSet<TaskId> = HashSet::new();
    let mut resumed = HashSet::new();
    for event in events {
        match event {
            SchedulerEvent::TaskStart { task, .. } => {
                assert_eq!(holder[task.slot], None, "slot taken twice: {event:?}");
                holder[task.slot] = Some(task.id);
            }
            SchedulerEvent::TaskResume { task, .. } => {
                assert!(
                    suspended.remove(&task.id),
                    "resumed without yielding: {event:?}"
                );
                resumed.insert(task.id);
                assert_eq!(holder[task.slot], None, "slot taken twice: {event:?}");
                holder[task.slot] = Some(task.id);
            }
            SchedulerEvent::TaskYield { task, .. } => {
                assert_eq!(holder[task.slot], Some(task.id), "{event:?}");
                holder[task.slot] = None;
                suspended.insert(task.id);
            }
            SchedulerEvent::TaskEnd { task, .. } => {
                // A task aborted while suspended holds no slot.
                let held_a_slot = !suspended.remove(&task.id);
                if held_a_slot {
                    assert_eq!(holder[task.slot], Some(task.id), "{event:?}");
                    holder[task.slot] = None;
                }
            }
            _ => {}
        }
    }
    assert!(suspended.is_empty(), "tasks still suspended: {suspended:?}");
    resumed
}

/// The task events of each task of `job`, in order.
fn task_events(events: &[SchedulerEvent], job: u64) -> HashMap<TaskId, Vec<&'static str>> {
    let mut tasks: HashMap<TaskId, Vec<&'static str>> = HashMap::new();
    for event in events {
        let (task, name) = match event {
            SchedulerEvent::TaskStart { task, .. } => (task, "start"),
            SchedulerEvent::TaskYield { task, .. } => (task, "yield"),
            SchedulerEvent::TaskResume { task, .. } => (task, "resume"),
            SchedulerEvent::TaskEnd { task, .. } => (task, "end"),
            _ => continue,
        };
        if task.id.job == job {
            tasks.entry(task.id).or_default().push(name);
        }
    }
    tasks
}

/// Job A (pool "long") holds both slots with 2 tasks of 400 batches of
/// 5 ms; once both have run a batch, job B (pool "short") brings 2 tasks of
/// 20 ms. Returns whether A was still running when B ended, the events, A's
/// probe and the scheduler.
async fn long_then_short(preempt: bool) -> (bool, Vec<SchedulerEvent>, Probe, Scheduler) {
    let scheduler = scheduler(
        2,
        SchedulingMode::Fair,
        &[("long", 1), ("short", 1)],
        preempt,
    );
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let probe = Probe::default();
    let long = batched(400, Duration::from_millis(5), &probe);
    let a = scheduler.submit(job("long", 2), long).unwrap();
    wait_for("A on both slots, a batch done", || {
        scheduler.metrics().running_tasks == 2 && probe.batches.load(Ordering::SeqCst) >= 2
    })
    .await;
    let b = scheduler
        .submit(job("short", 2), sleeping(Duration::from_millis(20)))
        .unwrap();
    b.finish().await.expect("B succeeded");
    let a_running = scheduler.metrics().jobs_active == 1;
    a.finish().await.expect("A succeeded");
    assert_eq!(
        probe.batches.load(Ordering::SeqCst),
        800,
        "A ran every batch"
    );
    assert_eq!(probe.asked.load(Ordering::SeqCst), preempt);
    recorder.wait_for_job_ends(2).await;
    (a_running, recorder.events(), probe, scheduler)
}

/// Position of the first event that `matches`.
fn first(
    events: &[SchedulerEvent],
    what: &str,
    matches: impl Fn(&SchedulerEvent) -> bool,
) -> usize {
    events
        .iter()
        .position(matches)
        .unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

/// Position of `job`'s `JobEnd` event.
fn job_end(events: &[SchedulerEvent], job: u64) -> usize {
    first(
        events,
        "JobEnd",
        |e| matches!(e, SchedulerEvent::JobEnd { job: id, .. } if *id == job),
    )
}

/// Position of the first `TaskEnd` event of a task of `job`.
fn first_task_end(events: &[SchedulerEvent], job: u64) -> usize {
    first(
        events,
        "TaskEnd",
        |e| matches!(e, SchedulerEvent::TaskEnd { task, .. } if task.id.job == job),
    )
}

/// Position of the first `TaskStart` event of a task of `job`.
fn first_task_start(events: &[SchedulerEvent], job: u64) -> usize {
    first(
        events,
        "TaskStart",
        |e| matches!(e, SchedulerEvent::TaskStart { task, .. } if task.id.job == job),
    )
}

#[tokio::test]
async fn short_job_takes_its_share_from_a_long_one_within_a_batch() {
    let (a_running, events, probe, scheduler) = long_then_short(true).await;
    assert!(a_running, "A still ran when B ended");
    // B did not wait for A's 2 s tasks: all of B ran and ended before
    // either of A's tasks ended.
    assert!(
        job_end(&events, 2) < first_task_end(&events, 1),
        "B waited for A with preemption: {events:#?}"
    );
    let metrics = scheduler.metrics();
    assert!(metrics.yields >= 1, "{metrics:?}");
    assert_eq!(metrics.suspended_tasks, 0);
    assert_eq!(metrics.running_tasks, 0);
    // A's tasks yielded and resumed; B's never did.
    let resumed = check_slots(&events, 2);
    assert!(!resumed.is_empty());
    assert!(resumed.iter().all(|task| task.job == 1), "{resumed:?}");
    let mut a: Vec<Vec<&str>> = task_events(&events, 1).into_values().collect();
    a.sort();
    assert_eq!(
        a,
        [
            vec!["start", "end"],
            vec!["start", "yield", "resume", "end"]
        ]
    );
    // After resuming, a task's yield point reports its new slot.
    let slots = probe.slots.lock().unwrap().clone();
    for event in &events {
        if let SchedulerEvent::TaskResume { task, pool } = event {
            assert_eq!(pool, "long");
            assert!(
                slots.contains(&(task.id, task.slot)),
                "{task:?} not in {slots:?}"
            );
        }
    }
    let b = task_events(&events, 2);
    assert_eq!(b.len(), 2);
    assert!(b.values().all(|events| events == &["start", "end"]));
    // B's tasks started while A's were suspended, before any of A ended.
    let b_start = first_task_start(&events, 2);
    assert!(b_start < first_task_end(&events, 1));
    assert!(matches!(
        &events[b_start - 1],
        SchedulerEvent::TaskYield { task, pool } if task.id.job == 1 && pool == "long"
    ));
    // Exactly one slot moved: B's fair share of 2 slots is 1.
    assert_eq!(metrics.yields, 1, "{events:#?}");
}

#[tokio::test]
async fn without_preemption_the_short_job_waits_for_the_long_tasks() {
    let (a_running, events, _, scheduler) = long_then_short(false).await;
    assert!(!a_running, "A ended before B");
    assert_eq!(scheduler.metrics().yields, 0);
    check_slots(&events, 2);
    // Each of B's tasks started on a slot that one of A's tasks gave back
    // by ending: B waited for A's tasks to run to their end.
    let b_starts: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, SchedulerEvent::TaskStart { task, .. } if task.id.job == 2))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(b_starts.len(), 2, "{events:#?}");
    let a_ends: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, SchedulerEvent::TaskEnd { task, .. } if task.id.job == 1))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(a_ends.len(), 2, "{events:#?}");
    for (start, end) in b_starts.iter().zip(&a_ends) {
        assert!(
            end < start,
            "a task of B started before a slot was free: {events:#?}"
        );
    }
    assert!(job_end(&events, 1) < job_end(&events, 2));
    assert!(!events.iter().any(|e| matches!(
        e,
        SchedulerEvent::TaskYield { .. } | SchedulerEvent::TaskResume { .. }
    )));
}

#[tokio::test]
async fn fifo_root_never_asks_to_yield() {
    let scheduler = scheduler(2, SchedulingMode::Fifo, &[("long", 1), ("short", 1)], true);
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let probe = Probe::default();
    let long = batched(40, Duration::from_millis(5), &probe);
    let a = scheduler.submit(job("long", 2), long).unwrap();
    wait_for("A on both slots, a batch done", || {
        scheduler.metrics().running_tasks == 2 && probe.batches.load(Ordering::SeqCst) >= 2
    })
    .await;
    let b = scheduler
        .submit(job("short", 2), sleeping(Duration::from_millis(5)))
        .unwrap();
    b.finish().await.unwrap();
    a.finish().await.unwrap();
    assert!(!probe.asked.load(Ordering::SeqCst));
    assert_eq!(scheduler.metrics().yields, 0);
    let events = recorder.events();
    check_slots(&events, 2);
    assert!(
        first_task_end(&events, 1) < first_task_start(&events, 2),
        "FIFO: B waited for A"
    );
}

#[tokio::test]
async fn jobs_in_the_same_pool_never_preempt_each_other() {
    let scheduler = scheduler(2, SchedulingMode::Fair, &[("shared", 1)], true);
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let probe = Probe::default();
    let long = batched(40, Duration::from_millis(5), &probe);
    let a = scheduler.submit(job("shared", 2), long.clone()).unwrap();
    wait_for("A on both slots, a batch done", || {
        running(&scheduler.pools(), "shared") == 2 && probe.batches.load(Ordering::SeqCst) >= 2
    })
    .await;
    // A FAIR pool would give B half the slots as they free up, but nothing
    // is taken from A: B's first task starts only once one of A's ended.
    let b = scheduler.submit(job("shared", 2), long).unwrap();
    assert_eq!(running(&scheduler.pools(), "shared"), 2);
    a.finish().await.unwrap();
    b.finish().await.unwrap();
    recorder.wait_for_job_ends(2).await;
    let events = recorder.events();
    check_slots(&events, 2);
    assert!(
        first_task_end(&events, 1) < first_task_start(&events, 2),
        "B took a slot from A: {events:#?}"
    );
    assert!(!probe.asked.load(Ordering::SeqCst));
    assert_eq!(scheduler.metrics().yields, 0);
    assert_eq!(probe.batches.load(Ordering::SeqCst), 160);
}

#[tokio::test]
async fn cancelling_a_job_aborts_its_suspended_tasks() {
    let scheduler = scheduler(2, SchedulingMode::Fair, &[("long", 1), ("short", 1)], true);
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let live = Arc::new(AtomicUsize::new(0));
    let endless = endless(&live);
    let a = scheduler.submit(job("long", 2), endless).unwrap();
    wait_for("A on both slots", || scheduler.metrics().running_tasks == 2).await;
    // B holds its slot until told to end.
    let (release, released) = tokio::sync::watch::channel(false);
    let b = scheduler
        .submit(
            job("short", 1),
            runner(move |_| {
                let mut released = released.clone();
                async move {
                    released.wait_for(|&go| go).await.unwrap();
                    Ok(TaskOutcome::default())
                }
            }),
        )
        .unwrap();
    wait_for("one of A's tasks suspended", || {
        scheduler.metrics().suspended_tasks == 1
    })
    .await;
    let pools = scheduler.pools();
    assert_eq!((running(&pools, "long"), running(&pools, "short")), (1, 1));

    // A's tasks never end by themselves: the job ends only by aborting
    // them, the suspended one included.
    a.cancel();
    assert!(matches!(
        a.finish().await,
        Err(SchedulerError::Cancelled { job: 1 })
    ));
    let metrics = scheduler.metrics();
    assert_eq!((metrics.suspended_tasks, metrics.running_tasks), (0, 1));
    wait_for("A's futures dropped", || live.load(Ordering::SeqCst) == 0).await;

    // The freed slot serves another job in A's pool while B still runs.
    scheduler
        .submit(job("long", 2), sleeping(Duration::from_millis(1)))
        .unwrap()
        .finish()
        .await
        .unwrap();
    release.send(true).unwrap();
    b.finish().await.unwrap();
    let metrics = scheduler.metrics();
    assert_eq!((metrics.suspended_tasks, metrics.running_tasks), (0, 0));

    recorder.wait_for_job_ends(3).await;
    let events = recorder.events();
    check_slots(&events, 2);
    // The suspended task ended (aborted) while suspended.
    let mut a_events: Vec<Vec<&str>> = task_events(&events, 1).into_values().collect();
    a_events.sort();
    assert_eq!(
        a_events,
        [vec!["start", "end"], vec!["start", "yield", "end"]]
    );
    let aborted = events
        .iter()
        .filter(|e| {
            matches!(e, SchedulerEvent::TaskEnd { task, outcome: Err(message), .. }
                if task.id.job == 1 && message.contains("cancelled"))
        })
        .count();
    assert_eq!(aborted, 2);
}

#[tokio::test]
async fn weighted_pools_split_running_tasks_by_weight() {
    let scheduler = scheduler(4, SchedulingMode::Fair, &[("a", 1), ("b", 3)], true);
    let probe = Probe::default();
    let long = batched(1000, Duration::from_millis(2), &probe);
    let a = scheduler.submit(job("a", 4), long.clone()).unwrap();
    wait_for("a on every slot, a batch each", || {
        running(&scheduler.pools(), "a") == 4 && probe.batches.load(Ordering::SeqCst) >= 4
    })
    .await;
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let b = scheduler.submit(job("b", 4), long).unwrap();
    wait_for("the 1:3 split", || {
        let pools = scheduler.pools();
        running(&pools, "a") == 1 && running(&pools, "b") == 3
    })
    .await;
    // The split holds: while the 4 running tasks do 200 more batches
    // (50 each), no slot moves back and forth.
    let batches = probe.batches.load(Ordering::SeqCst);
    wait_for("200 more batches", || {
        probe.batches.load(Ordering::SeqCst) >= batches + 200
    })
    .await;
    let pools = scheduler.pools();
    assert_eq!((running(&pools, "a"), running(&pools, "b")), (1, 3));
    let metrics = scheduler.metrics();
    assert_eq!((metrics.running_tasks, metrics.suspended_tasks), (4, 3));
    assert_eq!(metrics.yields, 3);
    let moves: Vec<SchedulerEvent> = recorder
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                SchedulerEvent::TaskYield { .. } | SchedulerEvent::TaskResume { .. }
            )
        })
        .collect();
    assert_eq!(moves.len(), 3, "only a's three yields: {moves:#?}");
    assert!(
        moves
            .iter()
            .all(|e| matches!(e, SchedulerEvent::TaskYield { pool, .. } if pool == "a")),
        "{moves:#?}"
    );
    a.cancel();
    b.cancel();
    assert!(matches!(
        a.finish().await,
        Err(SchedulerError::Cancelled { .. })
    ));
    assert!(matches!(
        b.finish().await,
        Err(SchedulerError::Cancelled { .. })
    ));
    assert_eq!(scheduler.metrics().suspended_tasks, 0);
}

#[tokio::test]
async fn a_withdrawn_request_lets_the_task_go_on() {
    assert!(
        YieldPoint::current().is_none(),
        "no yield point outside tasks"
    );
    let scheduler = scheduler(2, SchedulingMode::Fair, &[("long", 1), ("short", 1)], true);
    let points: Arc<Mutex<HashMap<TaskId, YieldPoint>>> = Arc::default();
    let (open, gate) = tokio::sync::watch::channel(false);
    let seen = Arc::clone(&points);
    let gated = runner(move |context| {
        let point = YieldPoint::current().unwrap();
        assert_eq!(point.task(), context.id);
        assert_eq!(point.slot(), context.slot);
        seen.lock().unwrap().insert(context.id, point.clone());
        let mut gate = gate.clone();
        async move {
            // The batch ends when the test opens the gate.
            gate.wait_for(|&open| open).await.unwrap();
            point.yield_now().await;
            Ok(TaskOutcome::default())
        }
    });
    let a = scheduler.submit(job("long", 2), gated).unwrap();
    wait_for("A on both slots", || points.lock().unwrap().len() == 2).await;
    let requested = || {
        points
            .lock()
            .unwrap()
            .values()
            .filter(|point| point.should_yield())
            .count()
    };
    assert_eq!(requested(), 0);
    let b = scheduler
        .submit(job("short", 1), sleeping(Duration::ZERO))
        .unwrap();
    // Exactly one of A's tasks is asked (B needs one slot of two).
    assert_eq!(requested(), 1);
    b.cancel();
    assert!(matches!(
        b.finish().await,
        Err(SchedulerError::Cancelled { .. })
    ));
    assert_eq!(requested(), 0, "request withdrawn with the demand");
    open.send(true).unwrap();
    a.finish().await.unwrap();
    let metrics = scheduler.metrics();
    assert_eq!((metrics.yields, metrics.tasks_completed), (0, 2));
}

#[tokio::test]
async fn dropping_the_scheduler_ends_suspended_tasks() {
    let scheduler = scheduler(2, SchedulingMode::Fair, &[("long", 1), ("short", 1)], true);
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let live = Arc::new(AtomicUsize::new(0));
    let endless = endless(&live);
    // Detached jobs: their handles do not keep the scheduler.
    drop(scheduler.submit(job("long", 2), endless.clone()).unwrap());
    drop(scheduler.submit(job("short", 1), endless).unwrap());
    wait_for("a suspended task", || {
        scheduler.metrics().suspended_tasks >= 1
    })
    .await;
    // The tasks never end by themselves, so a drop that waited for them
    // would never return.
    let dropped = tokio::task::spawn_blocking(move || drop(scheduler));
    tokio::time::timeout(DEADLINE, dropped)
        .await
        .expect("dropping the scheduler does not wait for its tasks")
        .unwrap();
    wait_for("every task future dropped", || {
        live.load(Ordering::SeqCst) == 0
    })
    .await;
    let failed = recorder
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                SchedulerEvent::JobEnd {
                    status: JobStatus::Failed,
                    ..
                }
            )
        })
        .count();
    assert_eq!(failed, 2);
}
