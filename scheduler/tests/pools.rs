//! FIFO and FAIR scheduling pools with real tasks, through the public API.

mod common;

use common::{Recorder, sleeping, succeed, wait_for};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fairway_scheduler::{
    JobSpec, PoolStatus, Scheduler, SchedulerConfig, SchedulerError, SchedulerEvent,
    SchedulingMode, StageSpec, parse_allocation_str,
};

/// A one-stage job of `tasks` tasks in `pool`.
fn job(pool: Option<&str>, tasks: usize) -> JobSpec {
    JobSpec {
        description: format!("{tasks} tasks in {pool:?}"),
        stages: vec![StageSpec {
            id: 0,
            tasks,
            parents: vec![],
        }],
        pool: pool.map(str::to_string),
        ..JobSpec::default()
    }
}

fn fair_scheduler(slots: usize, allocation: &str) -> Scheduler {
    let allocation = parse_allocation_str(allocation, "fairscheduler.xml", true).unwrap();
    Scheduler::new(SchedulerConfig {
        slots,
        mode: SchedulingMode::Fair,
        pools: allocation.pools,
        allocation_file_loaded: true,
        ..SchedulerConfig::default()
    })
    .unwrap()
}

fn status<'a>(pools: &'a [PoolStatus], name: &str) -> &'a PoolStatus {
    pools
        .iter()
        .find(|pool| pool.name == name)
        .unwrap_or_else(|| panic!("no pool {name} in {pools:?}"))
}

#[tokio::test]
async fn fair_pools_share_slots_by_weight() {
    let scheduler = fair_scheduler(
        4,
        r#"<allocations>
             <pool name="a"><weight>1</weight></pool>
             <pool name="b"><weight>3</weight></pool>
           </allocations>"#,
    );
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let task = sleeping(Duration::from_millis(5));
    let a = scheduler.submit(job(Some("a"), 200), task.clone()).unwrap();
    let b = scheduler.submit(job(Some("b"), 200), task).unwrap();

    // Once a's first tasks have ended, the slots are split 1:3 and stay so
    // while both have tasks waiting (every hand-out re-sorts the pools).
    wait_for("a 1:3 split", || {
        let pools = scheduler.pools();
        status(&pools, "a").running_tasks == 1 && status(&pools, "b").running_tasks == 3
    })
    .await;
    let pools = scheduler.pools();
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "default"]);
    assert_eq!(
        (
            status(&pools, "b").weight,
            status(&pools, "b").active_stages
        ),
        (3, 1)
    );
    succeed(a).await;
    succeed(b).await;

    // Count the starts from b's submission until one job has started all
    // its tasks: while both jobs had tasks waiting.
    let events = recorder.events();
    let b_submitted = events
        .iter()
        .position(|e| matches!(e, SchedulerEvent::JobStart { job: 2, pool, .. } if pool == "b"))
        .expect("JobStart of b");
    let mut total: HashMap<u64, usize> = HashMap::new();
    let mut while_both: HashMap<String, usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        let SchedulerEvent::TaskStart { task, pool } = event else {
            continue;
        };
        let started = total.entry(task.id.job).or_default();
        *started += 1;
        if index > b_submitted {
            *while_both.entry(pool.clone()).or_default() += 1;
        }
        if *started == 200 {
            break;
        }
    }
    let (in_a, in_b) = (while_both["a"], while_both["b"]);
    let ratio = in_b as f64 / in_a as f64;
    assert!(
        (2.5..=3.5).contains(&ratio),
        "b/a = {in_b}/{in_a} = {ratio:.2}, expected about 3"
    );
    let pools = scheduler.pools();
    assert!(
        pools
            .iter()
            .all(|p| p.running_tasks == 0 && p.active_stages == 0)
    );
}

#[tokio::test]
async fn fifo_root_lets_the_earlier_job_take_every_slot() {
    let scheduler = Scheduler::new(SchedulerConfig {
        slots: 4,
        // A FIFO root ignores pools, configured or named by jobs.
        pools: vec![fairway_scheduler::PoolConfig {
            weight: 100,
            ..fairway_scheduler::PoolConfig::new("b")
        }],
        ..SchedulerConfig::default()
    })
    .unwrap();
    assert_eq!(scheduler.mode(), SchedulingMode::Fifo);
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let task = sleeping(Duration::from_millis(2));
    let first = scheduler.submit(job(Some("a"), 60), task.clone()).unwrap();
    let second = scheduler.submit(job(Some("b"), 60), task).unwrap();
    succeed(first).await;
    succeed(second).await;

    let starts = recorder.task_starts();
    assert_eq!(starts.len(), 120);
    let last_first = starts.iter().rposition(|(job, _)| *job == 1).unwrap();
    let first_second = starts.iter().position(|(job, _)| *job == 2).unwrap();
    assert_eq!(
        (last_first, first_second),
        (59, 60),
        "job 2 started while job 1 had tasks waiting"
    );
    // Pools are reported in events but not created.
    assert!(starts[..60].iter().all(|(_, pool)| pool == "a"));
    assert!(starts[60..].iter().all(|(_, pool)| pool == "b"));
    assert!(scheduler.pools().is_empty());
}

#[tokio::test]
async fn default_pool_is_fair_without_an_allocation_file() {
    let scheduler = Scheduler::new(SchedulerConfig {
        slots: 2,
        mode: SchedulingMode::Fair,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let pools = scheduler.pools();
    assert_eq!(pools.len(), 1);
    assert_eq!(
        (
            pools[0].name.as_str(),
            pools[0].mode,
            pools[0].weight,
            pools[0].min_share
        ),
        ("default", SchedulingMode::Fair, 1, 0)
    );
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let task = sleeping(Duration::from_millis(2));
    let first = scheduler.submit(job(None, 20), task.clone()).unwrap();
    let second = scheduler.submit(job(None, 20), task).unwrap();
    succeed(first).await;
    succeed(second).await;
    // Two jobs in a FAIR default pool alternate instead of queueing.
    let starts = recorder.task_starts();
    let first_second = starts.iter().position(|(job, _)| *job == 2).unwrap();
    let last_first = starts.iter().rposition(|(job, _)| *job == 1).unwrap();
    assert!(first_second < last_first, "{starts:?}");
    assert!(starts.iter().all(|(_, pool)| pool == "default"));
}

#[tokio::test]
async fn unknown_pools_are_created_and_counts_drop_on_cancel() {
    let scheduler = fair_scheduler(3, r#"<allocations><pool name="etl"/></allocations>"#);
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    let slow = scheduler
        .submit(job(Some("adhoc"), 5), sleeping(Duration::from_secs(10)))
        .unwrap();
    wait_for("adhoc to run 3 tasks", || {
        status(&scheduler.pools(), "adhoc").running_tasks == 3
    })
    .await;
    let pools = scheduler.pools();
    let summary: Vec<(&str, SchedulingMode, i32, i32, usize)> = pools
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.mode,
                p.weight,
                p.min_share,
                p.active_stages,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("etl", SchedulingMode::Fifo, 1, 0, 0),
            ("default", SchedulingMode::Fifo, 1, 0, 0),
            ("adhoc", SchedulingMode::Fifo, 1, 0, 1),
        ]
    );
    slow.cancel();
    let pools = scheduler.pools();
    assert_eq!(
        (
            status(&pools, "adhoc").running_tasks,
            status(&pools, "adhoc").active_stages
        ),
        (0, 0),
        "cancelled job left the pool at once"
    );
    assert!(matches!(
        slow.wait().await,
        Err(SchedulerError::Cancelled { job: 1 })
    ));
    wait_for("JobEnd", || {
        recorder
            .events()
            .iter()
            .any(|e| matches!(e, SchedulerEvent::JobEnd { .. }))
    })
    .await;
    let events = recorder.events();
    assert!(matches!(&events[0], SchedulerEvent::JobStart { pool, .. } if pool == "adhoc"));
    let aborted = events
        .iter()
        .filter(|e| matches!(e, SchedulerEvent::TaskEnd { pool, outcome: Err(_), .. } if pool == "adhoc"))
        .count();
    assert_eq!(aborted, 3);
    // The pool stays (pools are never removed) and serves the next job.
    succeed(
        scheduler
            .submit(job(Some("adhoc"), 2), sleeping(Duration::ZERO))
            .unwrap(),
    )
    .await;
    assert_eq!(scheduler.pools().len(), 3);
}

#[test]
fn allocation_errors_convert_to_config_errors() {
    let text = "<allocations>\n<pool name=\"p\"><weight>heavy</weight></pool></allocations>";
    let error = parse_allocation_str(text, "conf/fairscheduler.xml", true).unwrap_err();
    let error = SchedulerError::from(error);
    match &error {
        SchedulerError::InvalidConfig(message) => {
            for part in [
                "conf/fairscheduler.xml",
                "line 2",
                "\"p\"",
                "<weight>",
                "\"heavy\"",
            ] {
                assert!(message.contains(part), "{part} missing in {message}");
            }
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}
