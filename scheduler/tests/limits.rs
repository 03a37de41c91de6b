//! fairway's pool limits beyond Spark: maxShare, job queues
//! (maxRunningJobs, maxQueuedJobs), timeouts, the job table and cancel by
//! id.

mod common;

use common::{FinishWithin, Recorder, runner, sleeping, wait_for};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fairway_scheduler::{
    JobSpec, JobState, JobStatus, PoolConfig, Scheduler, SchedulerConfig, SchedulerError,
    SchedulerEvent, SchedulingMode, StageSpec, TaskOutcome, TaskRunner, YieldPoint,
    parse_allocation_str,
};

fn fair(slots: usize, pools: Vec<PoolConfig>, preemption: bool) -> (Scheduler, Arc<Recorder>) {
    let scheduler = Scheduler::new(SchedulerConfig {
        slots,
        mode: SchedulingMode::Fair,
        pools,
        allocation_file_loaded: true,
        preemption,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let recorder = Arc::new(Recorder::default());
    scheduler.set_listener(Some(recorder.clone()));
    (scheduler, recorder)
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

/// The most tasks of each pool that held slots at once, from the events.
fn peaks(events: &[SchedulerEvent]) -> HashMap<String, usize> {
    let mut running: HashMap<String, usize> = HashMap::new();
    let mut peaks: HashMap<String, usize> = HashMap::new();
    for event in events {
        let (pool, up) = match event {
            SchedulerEvent::TaskStart { pool, .. } | SchedulerEvent::TaskResume { pool, .. } => {
                (pool, true)
            }
            SchedulerEvent::TaskYield { pool, .. } => (pool, false),
            SchedulerEvent::TaskEnd { pool, outcome, .. } => {
                // A task aborted while suspended held no slot; these tests
                // abort none.
                assert!(outcome.is_ok(), "{outcome:?}");
                (pool, false)
            }
            _ => continue,
        };
        let count = running.entry(pool.clone()).or_default();
        if up {
            *count += 1;
        } else {
            *count -= 1;
        }
        let peak = peaks.entry(pool.clone()).or_default();
        *peak = (*peak).max(*count);
    }
    peaks
}

fn capped(name: &str, max_share: usize) -> PoolConfig {
    PoolConfig {
        mode: SchedulingMode::Fair,
        max_share: Some(max_share),
        ..PoolConfig::new(name)
    }
}

#[tokio::test]
async fn max_share_is_never_exceeded_and_spare_slots_go_to_others() {
    let (scheduler, recorder) = fair(4, vec![capped("batch", 2), PoolConfig::new("other")], false);
    let batch = scheduler
        .submit(job("batch", 12), sleeping(Duration::from_millis(15)))
        .unwrap();
    let other = scheduler
        .submit(job("other", 12), sleeping(Duration::from_millis(15)))
        .unwrap();
    batch.finish().await.unwrap();
    other.finish().await.unwrap();
    recorder.wait_for_job_ends(2).await;
    let peaks = peaks(&recorder.events());
    assert_eq!(peaks["batch"], 2, "{peaks:?}");
    // The two slots batch may not use went to the other pool.
    assert!(peaks["other"] >= 2, "{peaks:?}");
}

#[tokio::test]
async fn a_capped_pool_alone_leaves_slots_idle() {
    let (scheduler, recorder) = fair(4, vec![capped("batch", 1)], false);
    let probe = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (p, k) = (probe.clone(), peak.clone());
    let tasks = runner(move |_| {
        let (p, k) = (p.clone(), k.clone());
        async move {
            let now = p.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            k.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            p.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            Ok(TaskOutcome::default())
        }
    });
    scheduler
        .submit(job("batch", 6), tasks)
        .unwrap()
        .finish()
        .await
        .unwrap();
    recorder.wait_for_job_ends(1).await;
    assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(peaks(&recorder.events())["batch"], 1);
}

/// Tasks of `batches` batches with a yield point after each.
fn yielding(batches: usize, batch: Duration) -> Arc<dyn TaskRunner> {
    runner(move |_| async move {
        let point = YieldPoint::current().expect("a yield point");
        for _ in 0..batches {
            tokio::time::sleep(batch).await;
            point.yield_now().await;
        }
        Ok(TaskOutcome::default())
    })
}

#[tokio::test]
async fn preemption_takes_no_more_slots_than_the_cap_allows() {
    // "hungry" has a far larger weight, so without its cap it would take
    // three of the four slots from "first".
    let hungry = PoolConfig {
        weight: 100,
        ..capped("hungry", 1)
    };
    let (scheduler, recorder) = fair(4, vec![PoolConfig::new("first"), hungry], true);
    let first = scheduler
        .submit(job("first", 4), yielding(40, Duration::from_millis(5)))
        .unwrap();
    wait_for("first to hold every slot", || {
        scheduler.pools()[0].running_tasks == 4
    })
    .await;
    let second = scheduler
        .submit(job("hungry", 4), yielding(4, Duration::from_millis(5)))
        .unwrap();
    second.finish().await.unwrap();
    first.finish().await.unwrap();
    recorder.wait_for_job_ends(2).await;
    let events = recorder.events();
    let peaks = peaks(&events);
    assert_eq!(peaks["hungry"], 1, "{peaks:?}");
    let yields_of_first = events
        .iter()
        .filter(|e| matches!(e, SchedulerEvent::TaskYield { pool, .. } if pool == "first"))
        .count();
    assert!(
        (1..=4).contains(&yields_of_first),
        "first gave up {yields_of_first} slots for a pool capped at 1"
    );
}

fn queued_pool(max_running: usize, max_queued: Option<usize>) -> PoolConfig {
    PoolConfig {
        max_running_jobs: Some(max_running),
        max_queued_jobs: max_queued,
        ..PoolConfig::new("etl")
    }
}

#[tokio::test]
async fn queued_jobs_are_admitted_in_submission_order() {
    let (scheduler, recorder) = fair(4, vec![queued_pool(1, None)], false);
    let (gate, open) = tokio::sync::watch::channel(false);
    let held = runner(move |_| {
        let mut open = open.clone();
        async move {
            open.wait_for(|o| *o).await.unwrap();
            Ok(TaskOutcome::default())
        }
    });
    let first = scheduler.submit(job("etl", 2), held).unwrap();
    let second = scheduler
        .submit(job("etl", 2), sleeping(Duration::from_millis(2)))
        .unwrap();
    let third = scheduler
        .submit(job("etl", 2), sleeping(Duration::from_millis(2)))
        .unwrap();
    wait_for("the first job's tasks", || {
        scheduler.pools()[0].running_tasks == 2
    })
    .await;
    // Two free slots, yet the later jobs wait for the first.
    let states: Vec<(u64, JobState)> = scheduler.jobs().iter().map(|j| (j.id, j.state)).collect();
    assert_eq!(
        states,
        [
            (1, JobState::Running),
            (2, JobState::Queued),
            (3, JobState::Queued)
        ]
    );
    let etl = &scheduler.pools()[0];
    assert_eq!((etl.running_jobs, etl.queued_jobs), (1, 2));
    gate.send(true).unwrap();
    for handle in [first, second, third] {
        handle.finish().await.unwrap();
    }
    recorder.wait_for_job_ends(3).await;

    let events = recorder.events();
    let queued: Vec<(u64, usize)> = events
        .iter()
        .filter_map(|e| match e {
            SchedulerEvent::JobQueued { job, position, .. } => Some((*job, *position)),
            _ => None,
        })
        .collect();
    assert_eq!(queued, [(2, 1), (3, 2)]);
    // Each job's tasks start only after the job before it ended, and its
    // admission comes between.
    let place =
        |wanted: &dyn Fn(&SchedulerEvent) -> bool| events.iter().position(wanted).expect("event");
    for (before, after) in [(1, 2), (2, 3)] {
        let end = place(&|e| matches!(e, SchedulerEvent::JobEnd { job, .. } if *job == before));
        let admitted =
            place(&|e| matches!(e, SchedulerEvent::JobAdmitted { job, .. } if *job == after));
        let start =
            place(&|e| matches!(e, SchedulerEvent::TaskStart { task, .. } if task.id.job == after));
        assert!(end < admitted && admitted < start, "{events:#?}");
    }
    let jobs = scheduler.jobs();
    assert!(jobs.iter().all(|j| j.state == JobState::Succeeded));
    assert!(jobs[2].queued > Duration::ZERO && jobs[0].started.is_some());
    assert_eq!((jobs[2].tasks_done, jobs[2].tasks_total), (2, 2));
}

#[tokio::test]
async fn a_full_queue_refuses_the_job_at_once() {
    let (scheduler, _) = fair(2, vec![queued_pool(1, Some(1))], false);
    let long = scheduler
        .submit(job("etl", 1), sleeping(Duration::from_secs(60)))
        .unwrap();
    let waiting = scheduler
        .submit(job("etl", 1), sleeping(Duration::from_millis(1)))
        .unwrap();
    let error = scheduler
        .submit(job("etl", 1), sleeping(Duration::from_millis(1)))
        .unwrap_err();
    assert!(matches!(error, SchedulerError::QueueFull { ref pool, limit: 1, .. } if pool == "etl"));
    assert!(
        error.to_string().starts_with("pool 'etl' queue is full"),
        "{error}"
    );
    // Another pool is not affected, and the refused job took no id.
    let other = scheduler
        .submit(job("adhoc", 1), sleeping(Duration::from_millis(1)))
        .unwrap();
    assert_eq!(other.id(), 3);
    other.finish().await.unwrap();
    assert!(scheduler.cancel(long.id()));
    assert!(matches!(
        long.finish().await,
        Err(SchedulerError::Cancelled { job: 1 })
    ));
    waiting.finish().await.unwrap();
}

#[tokio::test]
async fn a_job_past_its_timeout_is_cancelled_and_frees_its_slots() {
    let (scheduler, recorder) = fair(2, vec![], false);
    let slow = scheduler
        .submit(
            JobSpec {
                timeout: Some(Duration::from_millis(100)),
                ..job("default", 4)
            },
            sleeping(Duration::from_secs(60)),
        )
        .unwrap();
    let error = slow.finish().await.unwrap_err();
    assert_eq!(
        error,
        SchedulerError::TimedOut {
            job: 1,
            limit: Duration::from_millis(100),
            waiting_in: None
        }
    );
    assert_eq!(error.to_string(), "job 1 timed out after 100 ms");
    assert_eq!(scheduler.metrics().running_tasks, 0);
    // The slots are free: a job submitted now runs at once.
    scheduler
        .submit(job("default", 2), sleeping(Duration::from_millis(1)))
        .unwrap()
        .finish()
        .await
        .unwrap();
    recorder.wait_for_job_ends(2).await;
    let events = recorder.events();
    let timed_out = events
        .iter()
        .position(|e| {
            matches!(
                e,
                SchedulerEvent::JobTimedOut {
                    job: 1,
                    queued: false,
                    ..
                }
            )
        })
        .expect("JobTimedOut");
    let end = events
        .iter()
        .position(|e| {
            matches!(
                e,
                SchedulerEvent::JobEnd {
                    job: 1,
                    status: JobStatus::TimedOut
                }
            )
        })
        .expect("JobEnd timed out");
    assert!(timed_out < end);
    let info = &scheduler.jobs()[0];
    assert_eq!(info.state, JobState::TimedOut);
    assert_eq!(info.error.as_deref(), Some("job 1 timed out after 100 ms"));
}

#[tokio::test]
async fn a_pool_timeout_applies_unless_the_job_sets_its_own() {
    let pool = PoolConfig {
        timeout: Some(Duration::from_millis(50)),
        ..PoolConfig::new("short")
    };
    let (scheduler, _) = fair(2, vec![pool], false);
    let error = scheduler
        .submit(job("short", 1), sleeping(Duration::from_secs(60)))
        .unwrap()
        .finish()
        .await
        .unwrap_err();
    assert!(
        matches!(error, SchedulerError::TimedOut { limit, .. } if limit == Duration::from_millis(50))
    );
    // A job's own timeout wins over its pool's.
    let own = JobSpec {
        timeout: Some(Duration::from_secs(60)),
        ..job("short", 1)
    };
    scheduler
        .submit(own, sleeping(Duration::from_millis(200)))
        .unwrap()
        .finish()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_queue_timeout_counts_the_wait_only() {
    let (scheduler, recorder) = fair(2, vec![queued_pool(1, None)], false);
    let long = scheduler
        .submit(job("etl", 1), sleeping(Duration::from_secs(60)))
        .unwrap();
    let impatient = scheduler
        .submit(
            JobSpec {
                queue_timeout: Some(Duration::from_millis(50)),
                ..job("etl", 1)
            },
            sleeping(Duration::from_millis(1)),
        )
        .unwrap();
    let error = impatient.finish().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "job 2 timed out after 50 ms waiting in the queue of pool 'etl'"
    );
    // A job with a queue timeout that is admitted in time runs as long as
    // it needs, beyond that timeout.
    assert!(scheduler.cancel(long.id()));
    let patient = scheduler
        .submit(
            JobSpec {
                queue_timeout: Some(Duration::from_millis(50)),
                ..job("etl", 1)
            },
            sleeping(Duration::from_millis(150)),
        )
        .unwrap();
    patient.finish().await.unwrap();
    let _ = long.finish().await;
    recorder.wait_for_job_ends(3).await;
    assert!(recorder.events().iter().any(|e| matches!(
        e,
        SchedulerEvent::JobTimedOut {
            job: 2,
            queued: true,
            ..
        }
    )));
    let states: Vec<JobState> = scheduler.jobs().iter().map(|j| j.state).collect();
    assert_eq!(
        states,
        [JobState::Cancelled, JobState::TimedOut, JobState::Succeeded]
    );
}

#[tokio::test]
async fn cancel_by_id_reaches_queued_and_running_jobs() {
    let (scheduler, _) = fair(2, vec![queued_pool(1, None)], false);
    let running = scheduler
        .submit(job("etl", 1), sleeping(Duration::from_secs(60)))
        .unwrap();
    let queued = scheduler
        .submit(job("etl", 1), sleeping(Duration::from_secs(60)))
        .unwrap();
    assert!(scheduler.cancel(2));
    assert!(matches!(
        queued.finish().await,
        Err(SchedulerError::Cancelled { job: 2 })
    ));
    assert!(!scheduler.cancel(2), "already ended");
    assert!(!scheduler.cancel(99), "no such job");
    assert!(scheduler.cancel(1));
    assert!(running.finish().await.is_err());
    assert_eq!(scheduler.pools()[0].running_jobs, 0);
}

#[tokio::test]
async fn limits_come_from_an_allocation_file_that_spark_also_reads() {
    let allocation = parse_allocation_str(
        r#"<?xml version="1.0"?>
        <allocations>
          <pool name="batch">
            <schedulingMode>FAIR</schedulingMode>
            <weight>1</weight>
            <maxShare>1</maxShare>
            <maxRunningJobs>1</maxRunningJobs>
            <maxQueuedJobs>0</maxQueuedJobs>
            <memory>2GiB</memory>
            <timeout>30s</timeout>
          </pool>
        </allocations>"#,
        "fairscheduler.xml",
        true,
    )
    .unwrap();
    assert!(allocation.warnings.is_empty(), "{:?}", allocation.warnings);
    let (scheduler, _) = fair(2, allocation.pools, false);
    let status = &scheduler.pools()[0];
    assert_eq!(
        (
            status.max_share,
            status.max_running_jobs,
            status.max_queued_jobs,
            status.memory,
            status.timeout
        ),
        (
            Some(1),
            Some(1),
            Some(0),
            Some(2 << 30),
            Some(Duration::from_secs(30))
        )
    );
    let first = scheduler
        .submit(job("batch", 1), sleeping(Duration::from_secs(60)))
        .unwrap();
    // maxQueuedJobs 0: nothing may wait.
    assert!(matches!(
        scheduler.submit(job("batch", 1), sleeping(Duration::ZERO)),
        Err(SchedulerError::QueueFull { limit: 0, .. })
    ));
    first.cancel();
    let _ = first.finish().await;
}
