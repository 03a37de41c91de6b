//! fairway's pools beyond Spark on the stage engine: memory per pool, the
//! system tables `fairway.jobs` and `fairway.pools`, `CANCEL JOB`, job
//! queues and timeouts set in SQL.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{DEADLINE, assert_same_rows, plain_rows};
use fairway_engine::{EngineConfig, JobState, Session, rows_as_text};

fn config(dir: &Path, allocation: &str, settings: &[(&str, &str)]) -> EngineConfig {
    let file = dir.join("fairscheduler.xml");
    std::fs::write(&file, allocation).unwrap();
    let mut config = EngineConfig::with_slots(2).partitions(2);
    config.shuffle_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    config.set("fairway.scheduler.mode", "fair").unwrap();
    config
        .set("fairway.scheduler.allocation.file", file.to_str().unwrap())
        .unwrap();
    for (key, value) in settings {
        config.set(key, value).unwrap();
    }
    config
}

/// Runs for hours unless cancelled; its first stage has two tasks.
const HEAVY: &str = "select k % 1000 as g, count(*) from \
    (select value as k from generate_series(1, 300000000000) \
     union all select value as k from generate_series(1, 300000000000)) group by 1";

/// 800,000 groups: far more than a few MiB hold.
const SPILLING: &str = "select k, count(*) as c, sum(v) as s from \
    (select value % 800000 as k, value as v from generate_series(1, 4000000)) \
    group by k order by s desc, k limit 5";

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn rows(session: &Session, sql: &str) -> Vec<String> {
    let out = session
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows_as_text(&out.batches).unwrap()
}

/// Stage metric lines of `EXPLAIN ANALYZE sql` that report spilled bytes.
async fn spilling_stages(session: &Session, sql: &str) -> usize {
    rows(session, &format!("explain analyze {sql}"))
        .await
        .join("\n")
        .lines()
        .filter(|l| l.contains("metrics:") && !l.contains("spilled=0 B"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_a_small_budget_spills_while_another_pools_query_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new(config(
        dir.path(),
        r#"<allocations>
             <pool name="small"><schedulingMode>FAIR</schedulingMode><memory>12MiB</memory></pool>
             <pool name="big"><schedulingMode>FAIR</schedulingMode></pool>
           </allocations>"#,
        &[("fairway.memory.limit", "2GiB")],
    ))
    .unwrap();
    let small = session.with_pool("small").unwrap();
    let big = session.with_pool("big").unwrap();
    // Both at once: the small pool's query spills within its 12 MiB, the
    // big pool's, sharing the rest of the 2 GiB, does not.
    let (small_spills, big_spills) = tokio::join!(
        spilling_stages(&small, SPILLING),
        spilling_stages(&big, SPILLING)
    );
    assert!(small_spills > 0, "the small pool spilled");
    assert_eq!(big_spills, 0, "the big pool did not spill");
    // Spilling changes nothing in the answer.
    let plain = fairway_engine::plain_datafusion_context(2);
    let expected = plain_rows(&plain, SPILLING).await;
    let ours = small.sql(SPILLING).await.unwrap();
    assert_same_rows("spilled in its pool", &ours.batches, &expected, true);
    let pools = rows(
        &session,
        "select name, memory_limit, memory_used from fairway.pools order by name",
    )
    .await;
    assert_eq!(
        pools,
        [
            "big | NULL | 0",
            "default | NULL | 0",
            "small | 12582912 | 0"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_that_leave_no_memory_for_other_pools_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = Session::new(config(
        dir.path(),
        "<allocations><pool name=\"etl\"><memory>16MiB</memory></pool></allocations>",
        &[("fairway.memory.limit", "20MiB")],
    ))
    .err()
    .expect("refused")
    .to_string();
    assert!(
        error.contains("fairway.scheduler.allocation.file") && error.contains("'etl' 16.0 MiB"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_tables_show_queued_and_running_jobs_and_cancel_reaches_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let session = Session::new(config(
        dir.path(),
        r#"<allocations>
             <pool name="etl"><maxRunningJobs>1</maxRunningJobs><maxShare>1</maxShare></pool>
           </allocations>"#,
        &[("fairway.event_log", log.to_str().unwrap())],
    ))
    .unwrap();
    let etl = session.with_pool("etl").unwrap();
    etl.sql("set fairway.job.tags = 'nightly, etl'")
        .await
        .unwrap();
    let first = etl.submit_sql(HEAVY);
    wait_until("the first job runs", || {
        session.jobs().iter().any(|j| j.state == JobState::Running)
    })
    .await;
    let second = etl.submit_sql(HEAVY);
    wait_until("the second job waits", || {
        session.jobs().iter().any(|j| j.state == JobState::Queued)
    })
    .await;
    let ids: Vec<u64> = session.jobs().iter().map(|j| j.id).collect();
    let (running, queued) = (ids[0], ids[1]);

    // Any client reads them, in SQL, while they run.
    let reader = session.client();
    let jobs = rows(
        &reader,
        "select job, pool, state, running_tasks, tasks_total > 0, tags, error \
         from fairway.jobs where state in ('running', 'queued') order by job",
    )
    .await;
    assert_eq!(
        jobs,
        [
            format!("{running} | etl | running | 1 | true | [nightly, etl] | NULL"),
            format!("{queued} | etl | queued | 0 | true | [nightly, etl] | NULL"),
        ]
    );
    let pools = rows(
        &reader,
        "select name, mode, max_share, max_running_jobs, running_jobs, queued_jobs, running_tasks \
         from fairway.pools where name = 'etl'",
    )
    .await;
    assert_eq!(pools, ["etl | FIFO | 1 | 1 | 1 | 1 | 1"]);

    // CANCEL JOB ends the queued job; the tag reaches the running one.
    let cancelled = rows(&reader, &format!("CANCEL JOB {queued};")).await;
    assert_eq!(cancelled, [format!("{queued} | etl | queued | true")]);
    let error = tokio::time::timeout(DEADLINE, second.wait())
        .await
        .unwrap()
        .expect_err("cancelled");
    assert!(error.is_cancelled(), "{error}");
    let again = reader
        .sql(&format!("cancel job {queued}"))
        .await
        .expect_err("ended already")
        .to_string();
    assert!(
        again.contains("is not queued or running: it cancelled"),
        "{again}"
    );
    let unknown = reader.sql("cancel job 999").await.expect_err("no such job");
    assert!(
        unknown.to_string().contains("there is no job 999"),
        "{unknown}"
    );
    let tagged = rows(&reader, "cancel jobs with tag 'nightly'").await;
    assert_eq!(tagged, [format!("{running} | etl | running | true")]);
    let error = tokio::time::timeout(DEADLINE, first.wait())
        .await
        .unwrap()
        .expect_err("cancelled");
    assert!(error.is_cancelled(), "{error}");
    wait_until("slots are free", || {
        session.scheduler().metrics().running_tasks == 0
    })
    .await;
    let ended = rows(
        &reader,
        &format!("select state, finished is not null from fairway.jobs where job in ({running}, {queued}) order by job"),
    )
    .await;
    assert_eq!(ended, ["cancelled | true", "cancelled | true"]);

    session.flush_event_log();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("job_queued") && l.contains(&format!("\"job\":{queued},"))),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_a_statement_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new(config(
        dir.path(),
        r#"<allocations><pool name="etl">
             <maxRunningJobs>1</maxRunningJobs><maxQueuedJobs>0</maxQueuedJobs>
           </pool></allocations>"#,
        &[],
    ))
    .unwrap();
    let etl = session.with_pool("etl").unwrap();
    let heavy = etl.submit_sql(HEAVY);
    wait_until("the heavy job runs", || !session.jobs().is_empty()).await;
    let error = etl
        .sql("select 1")
        .await
        .expect_err("queue full")
        .to_string();
    assert!(error.contains("pool 'etl' queue is full"), "{error}");
    // Other pools run.
    assert_eq!(rows(&session, "select 1 as one").await, ["1"]);
    heavy.cancel();
    let _ = heavy.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_its_timeout_fails_and_frees_its_slots() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new(config(dir.path(), "<allocations/>", &[])).unwrap();
    let client = session.client();
    client
        .sql("SET fairway.job.timeout = '300ms'")
        .await
        .unwrap();
    assert_eq!(
        rows(&client, "show fairway.job.timeout").await,
        ["fairway.job.timeout | 300ms"]
    );
    let error = tokio::time::timeout(DEADLINE, client.sql(HEAVY))
        .await
        .expect("the timeout ended it")
        .expect_err("timed out")
        .to_string();
    assert!(error.contains("timed out after 300 ms"), "{error}");
    wait_until("slots are free", || {
        session.scheduler().metrics().running_tasks == 0
    })
    .await;
    // Other clients keep no timeout; this one's next statement runs.
    assert_eq!(rows(&client, "select 2 as two").await, ["2"]);
    let state = rows(
        &session,
        "select state, error from fairway.jobs where state = 'timed_out'",
    )
    .await;
    assert_eq!(state.len(), 1);
    assert!(state[0].starts_with("timed_out | job "), "{state:?}");
    let bad = client
        .sql("set fairway.job.timeout = 'soon'")
        .await
        .expect_err("not a duration")
        .to_string();
    assert!(
        bad.contains("fairway.job.timeout") && bad.contains("soon"),
        "{bad}"
    );
    client.sql("set fairway.job.timeout = 0").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_given_in_code_join_the_files_and_the_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(
        dir.path(),
        "<allocations><pool name=\"etl\"><weight>3</weight></pool></allocations>",
        &[],
    );
    config.pools = vec![
        fairway_engine::PoolConfig {
            mode: fairway_engine::SchedulingMode::Fair,
            ..fairway_engine::PoolConfig::new("features")
        },
        fairway_engine::PoolConfig {
            weight: 9,
            ..fairway_engine::PoolConfig::new("etl")
        },
    ];
    let session = Session::new(config).unwrap();
    let pools = rows(
        &session,
        "select name, mode, weight from fairway.pools order by name",
    )
    .await;
    assert_eq!(
        pools,
        [
            "default | FIFO | 1",
            "etl | FIFO | 3",
            "features | FAIR | 1"
        ]
    );
}
