//! FAIR pools and FIFO order observed through the event log, with real
//! queries on the stage engine.

use std::path::Path;

use fairway_engine::{EngineConfig, SchedulingMode, Session};
use fairway_observe::Event;
use fairway_observe::timeline::read_event_log;

/// A CPU-heavy query whose first stage has `tasks` tasks of equal size.
fn heavy_query(tasks: usize, rows: usize) -> String {
    let branch = format!(
        "select sum(sqrt(cast(value as double)) * sin(cast(value as double))) as s \
         from generate_series(1, {rows})"
    );
    let union = vec![branch; tasks].join(" union all ");
    format!("select sum(s) from ({union}) t")
}

/// The log read through the one event schema: every line must be a valid
/// event of a kind this version knows.
fn events(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap();
    let events = read_event_log(path).expect("a valid event log");
    assert_eq!(
        events.len(),
        text.lines().count(),
        "every line is an event of a known kind"
    );
    events
}

/// The job ids of the `job_start` events of `pool`, in log order.
fn jobs_of(events: &[Event], pool_name: &str) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::JobStart { job, pool, .. } if pool == pool_name => Some(*job),
            _ => None,
        })
        .collect()
}

/// The times of the `task_start` events of `job` (in `stage`, if given).
fn task_starts(events: &[Event], job: u64, stage: Option<u64>) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::TaskStart { time_us, task }
                if task.job == job && stage.is_none_or(|s| task.stage == s) =>
            {
                Some(*time_us)
            }
            _ => None,
        })
        .collect()
}

fn session_with_log(mode: SchedulingMode, allocation: Option<&Path>, log: &Path) -> Session {
    let mut config = EngineConfig::with_slots(4);
    config.scheduler_mode = mode;
    config.allocation_file = allocation.map(Path::to_path_buf);
    config.event_log = Some(log.to_path_buf());
    Session::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fair_pools_share_slots_by_weight() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("fairscheduler.xml");
    std::fs::write(
        &xml,
        r#"<allocations>
             <pool name="light"><schedulingMode>FAIR</schedulingMode><weight>1</weight></pool>
             <pool name="heavy"><schedulingMode>FAIR</schedulingMode><weight>3</weight></pool>
           </allocations>"#,
    )
    .unwrap();
    let log = dir.path().join("events.jsonl");
    let session = session_with_log(SchedulingMode::Fair, Some(&xml), &log);
    let sql = heavy_query(160, 250_000);
    let light = session.with_pool("light").unwrap();
    let heavy = session.with_pool("heavy").unwrap();
    let (a, b) = tokio::join!(light.sql(&sql), heavy.sql(&sql));
    assert_eq!(
        a.unwrap().batches,
        b.unwrap().batches,
        "same answer in both pools"
    );
    session.flush_event_log();

    let events = events(&log);
    let (light_job, heavy_job) = (jobs_of(&events, "light")[0], jobs_of(&events, "heavy")[0]);
    let start_of = |job: u64| {
        events
            .iter()
            .find(|e| matches!(e, Event::JobStart { .. }) && e.job() == job)
            .map(Event::time_us)
            .unwrap()
    };
    // The window in which both jobs had tasks waiting for a slot: from the
    // later job start to the moment the first job handed out its last task.
    // FAIR never preempts: the job submitted first may hold every slot at
    // the start. The window opens once the shares can have settled, when the
    // later job has started as many tasks as its fair share (3 of 4 slots
    // for heavy, 1 for light).
    let nth_start = |job: u64, n: usize| task_starts(&events, job, None)[n - 1];
    let both_from = if start_of(light_job) <= start_of(heavy_job) {
        nth_start(heavy_job, 3)
    } else {
        nth_start(light_job, 1)
    };
    let last_start = |job: u64| {
        task_starts(&events, job, Some(0))
            .into_iter()
            .max()
            .unwrap()
    };
    let both_until = last_start(light_job).min(last_start(heavy_job));
    // Slot time each pool held inside the window: the overlap of every task's
    // [task_start, task_end] interval with it. Unlike a count of started
    // tasks, this does not depend on how long individual tasks took on a
    // noisy machine.
    let slot_time = |pool: &str| {
        let mut total = 0u64;
        for (start, started) in events.iter().filter_map(|e| match e {
            Event::TaskStart { time_us, task } if task.pool == pool => Some((task, *time_us)),
            _ => None,
        }) {
            // A task holds a slot from task_start (or task_resume) to
            // task_yield (or task_end).
            let mut held_from = Some(started);
            for e in events.iter().filter(|e| {
                matches!(
                    e,
                    Event::TaskYield { .. } | Event::TaskResume { .. } | Event::TaskEnd { .. }
                ) && e.task().is_some_and(|t| t.key() == start.key())
            }) {
                let t = e.time_us();
                match (e, held_from) {
                    (Event::TaskResume { .. }, _) => held_from = Some(t),
                    (_, Some(from)) => {
                        total += t.min(both_until).saturating_sub(from.max(both_from));
                        held_from = None;
                    }
                    _ => {}
                }
            }
        }
        total as f64
    };
    let (l, h) = (slot_time("light"), slot_time("heavy"));
    let ratio = h / l;
    eprintln!("while both waited for slots: heavy held {h} slot-us, light {l}, ratio {ratio:.2}");
    assert!(
        (2.5..=3.5).contains(&ratio),
        "while both waited for slots, heavy (weight 3) held {h} slot-us and light (weight 1) {l}: ratio {ratio:.2}"
    );
    // Every task ended, and reported what it produced.
    let ends = events
        .iter()
        .filter(|e| matches!(e, Event::TaskEnd { .. }))
        .count();
    let starts = events
        .iter()
        .filter(|e| matches!(e, Event::TaskStart { .. }))
        .count();
    assert_eq!(ends, starts, "one task_end per task_start");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::TaskEnd { rows, .. } if *rows > 0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_lets_the_earlier_job_take_every_slot() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let session = session_with_log(SchedulingMode::Fifo, None, &log);
    let sql = heavy_query(24, 100_000);
    let first = session.with_pool("a").unwrap();
    let second = session.with_pool("b").unwrap();
    let sql2 = sql.clone();
    let early = tokio::spawn(async move { first.sql(&sql2).await });
    let late = second.sql(&sql).await.unwrap();
    let early = early.await.unwrap().unwrap();
    assert_eq!(early.batches, late.batches);
    session.flush_event_log();

    // Whichever job the scheduler admitted first (by the order of the
    // job_start events, not by wall-clock sleeps) takes every slot: the
    // other starts no task before the first has handed out all of stage 0.
    let events = events(&log);
    let admitted: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::JobStart { job, .. } => Some(*job),
            _ => None,
        })
        .collect();
    assert_eq!(admitted.len(), 2, "{admitted:?}");
    let (first_job, second_job) = (admitted[0], admitted[1]);
    let first_stage_last = task_starts(&events, first_job, Some(0))
        .into_iter()
        .max()
        .unwrap();
    let second_first = task_starts(&events, second_job, None)
        .into_iter()
        .min()
        .unwrap();
    assert!(
        second_first >= first_stage_last,
        "under FIFO job {second_job} started a task before job {first_job} had handed out all of its stage 0"
    );
    // Pools are reported but ignored under FIFO.
    assert_eq!(jobs_of(&events, "b").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_pool_applies_to_later_statements_of_that_client_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let session = session_with_log(SchedulingMode::Fair, None, &log);
    let client = session.client();
    client
        .sql("select 1; set fairway.scheduler.pool = 'reports'; select 2")
        .await
        .unwrap();
    session.sql("select 3").await.unwrap();
    assert_eq!(client.pool(), "reports");
    assert_eq!(session.pool(), "default");
    session.flush_event_log();
    let pools: Vec<(String, String)> = events(&log)
        .into_iter()
        .filter_map(|e| match e {
            Event::JobStart {
                description, pool, ..
            } => Some((description, pool)),
            _ => None,
        })
        .collect();
    assert_eq!(
        pools,
        [
            ("SELECT 1".to_string(), "default".to_string()),
            ("SELECT 2".to_string(), "reports".to_string()),
            ("SELECT 3".to_string(), "default".to_string()),
        ]
    );
    let names: Vec<String> = session
        .scheduler()
        .pools()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["default", "reports"], "pool created on first use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_file_errors_name_the_pool_element_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("bad.xml");
    std::fs::write(
        &xml,
        "<allocations>\n  <pool name=\"adhoc\">\n    <weight>heavy</weight>\n  </pool>\n</allocations>\n",
    )
    .unwrap();
    let mut config = EngineConfig::with_slots(2);
    config.scheduler_mode = SchedulingMode::Fair;
    config.allocation_file = Some(xml.clone());
    let err = Session::new(config.clone())
        .err()
        .expect("strict by default")
        .to_string();
    for needle in ["bad.xml", "adhoc", "weight", "heavy", "line 3"] {
        assert!(err.contains(needle), "'{needle}' missing from: {err}");
    }
    config.allocation_strict = false;
    let session = Session::new(config).unwrap();
    assert!(
        session.warnings().iter().any(|w| w.contains("heavy")),
        "{:?}",
        session.warnings()
    );
    let adhoc = session
        .scheduler()
        .pools()
        .into_iter()
        .find(|p| p.name == "adhoc")
        .unwrap();
    assert_eq!(adhoc.weight, 1, "Spark's fallback weight");

    let mut missing = EngineConfig::with_slots(2);
    missing.scheduler_mode = SchedulingMode::Fair;
    missing.allocation_file = Some(dir.path().join("nope.xml"));
    let err = Session::new(missing).err().unwrap().to_string();
    assert!(err.contains("nope.xml"), "{err}");
}
