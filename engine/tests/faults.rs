//! Faults: task retries with injected failures, cancellation of jobs and
//! job groups.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{DEADLINE, assert_same_rows, is_ordered, plain_rows, plain_tpch, register_tpch};
use fairway_engine::{EngineConfig, Session};
use fairway_tpch as tpch;

fn bundled_tpch() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/tpch-sf0.01")
}

fn config(slots: usize, partitions: usize, settings: &[(&str, &str)]) -> EngineConfig {
    let mut config = EngineConfig::with_slots(slots).partitions(partitions);
    config.shuffle_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (key, value) in settings {
        config.set(key, value).unwrap();
    }
    config
}

fn no_job_folders(session: &Session) -> bool {
    common::job_folders(session).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_failures_are_retried_and_results_match_datafusion() {
    let dir = bundled_tpch();
    let plain = plain_tpch(&dir, 4).await;
    // Every first attempt of every task fails, and a fifth of the others.
    let session = Session::new(config(
        2,
        4,
        &[
            ("fairway.test.fail_tasks", "attempt=0"),
            ("fairway.test.fail_probability", "0.2"),
            ("fairway.test.fail_seed", "7"),
            // Attempts 1..=7 may fail with p = 0.2: a task fails for good
            // with p = 0.2^7, about 1e-5.
            ("fairway.task.max_failures", "8"),
        ],
    ))
    .unwrap();
    register_tpch(&session, &dir).await;
    for q in [1, 3, 5, 13, 18] {
        let sql = tpch::query(q).unwrap();
        let ours = session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("Q{q}: {e}"));
        let expected = plain_rows(&plain, sql).await;
        assert_same_rows(&format!("Q{q}"), &ours.batches, &expected, is_ordered(sql));
    }
    let m = session.scheduler().metrics();
    assert!(
        m.tasks_failed > m.tasks_completed,
        "every task failed at least once: {m:?}"
    );
    assert_eq!(m.running_tasks, 0);
    assert_eq!(session.shuffle().stats().memory_used, 0);
    assert!(no_job_folders(&session));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_always_fails_fails_its_job_with_the_last_error() {
    let session = Session::new(config(
        2,
        4,
        &[
            ("fairway.test.fail_tasks", "stage=0,partition=0"),
            ("fairway.task.max_failures", "3"),
        ],
    ))
    .unwrap();
    session
        .sql("create table t (k int, v int) as values (1, 10), (2, 20), (3, 30), (4, 40)")
        .await
        .unwrap();
    let err = session
        .sql("select k, sum(v) from t group by k")
        .await
        .expect_err("stage 0 partition 0 always fails")
        .to_string();
    assert!(
        err.contains("injected failure") && err.contains("stage 0 partition 0 attempt 2"),
        "the third and last attempt's error: {err}"
    );
    let m = session.scheduler().metrics();
    assert_eq!(m.tasks_failed, 3, "three attempts of one task: {m:?}");
    assert_eq!(m.running_tasks, 0);
    assert!(no_job_folders(&session));

    // max_failures = 1: no retry at all.
    let session = Session::new(config(
        1,
        2,
        &[
            ("fairway.test.fail_tasks", "stage=0,partition=0,attempt=0"),
            ("fairway.task.max_failures", "1"),
        ],
    ))
    .unwrap();
    let err = session
        .sql("select count(*) from (values (1), (2)) as t(x)")
        .await
        .expect_err("no retries")
        .to_string();
    assert!(err.contains("attempt 0"), "{err}");
    assert_eq!(session.scheduler().metrics().tasks_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_the_data_are_not_retried() {
    let session = Session::new(config(1, 2, &[])).unwrap();
    session
        .sql("create table t (x varchar) as values ('1'), ('two'), ('3')")
        .await
        .unwrap();
    let err = session
        .sql("select sum(cast(x as int)) from t")
        .await
        .expect_err("the cast fails")
        .to_string();
    assert!(err.to_lowercase().contains("cast"), "{err}");
    assert_eq!(
        session.scheduler().metrics().tasks_failed,
        1,
        "a cast error fails the job at once"
    );
}

/// A query that runs for hours unless cancelled (so a job that waits
/// behind it ends within [`DEADLINE`] only if cancelling aborted its
/// tasks); its first stage has two tasks (one per side of the union).
const HEAVY: &str = "select k % 1000 as g, count(*) from \
    (select value as k from generate_series(1, 300000000000) \
     union all select value as k from generate_series(1, 300000000000)) group by 1";

/// Waits for `job` within [`DEADLINE`].
async fn within_deadline<T>(what: &str, job: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, job)
        .await
        .unwrap_or_else(|_| panic!("{what} did not end within {DEADLINE:?}"))
}

/// Waits until `condition` holds; fails after `deadline` (the shared
/// [`DEADLINE`]: it tells a hang from a slow machine, never a speed).
async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_cancelled_from_its_handle_and_other_jobs_go_on() {
    let session = Session::new(config(2, 4, &[("fairway.shuffle.memory", "0")])).unwrap();
    let heavy = session.submit_sql(HEAVY);
    wait_until("the heavy job runs", DEADLINE, || {
        session.scheduler().metrics().running_tasks == 2
    })
    .await;
    // A small job waits for the heavy one under FIFO.
    let small = session.submit_sql("select v % 3 as g, count(*) as n from (values (1), (2), (3), (4)) as t(v) group by 1 order by 1");
    heavy.cancel();
    let err = within_deadline("the cancelled job", heavy.wait())
        .await
        .expect_err("cancelled");
    assert!(err.is_cancelled(), "{err}");
    // HEAVY's tasks run for hours: the small job, queued behind them
    // under FIFO, can only run because cancelling aborted them.
    let out = within_deadline("the small job", small.wait())
        .await
        .expect("the small job runs on");
    assert_eq!(
        fairway_engine::rows_as_text(&out.batches).unwrap(),
        vec!["0 | 1", "1 | 2", "2 | 1"]
    );
    wait_until("slots are free", DEADLINE, || {
        session.scheduler().metrics().running_tasks == 0
    })
    .await;
    assert!(no_job_folders(&session), "shuffle data removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_group_cancels_all_its_jobs_only() {
    let session = Session::new(config(2, 4, &[("fairway.shuffle.memory", "0")])).unwrap();
    let etl = session.with_job_group("etl").unwrap();
    assert_eq!(etl.job_group().as_deref(), Some("etl"));
    // Two heavy jobs in group etl (one named by SET), one small job outside.
    let first = etl.submit_sql(HEAVY);
    let other = session.client();
    other.sql("set fairway.job.group = 'etl'").await.unwrap();
    let second = other.submit_sql(HEAVY);
    let outside = session.submit_sql("select count(*) as n from (values (1), (2), (3)) as t(v)");
    wait_until("both heavy jobs run", DEADLINE, || {
        session
            .active_jobs()
            .iter()
            .filter(|j| j.group.as_deref() == Some("etl"))
            .count()
            == 2
    })
    .await;
    assert_eq!(session.cancel_group("etl"), 2);
    for handle in [first, second] {
        let err = within_deadline("a cancelled job", handle.wait())
            .await
            .expect_err("cancelled");
        assert!(err.is_cancelled(), "{err}");
    }
    // As above: the job outside the group waits behind HEAVY's hours-long
    // tasks under FIFO, so it ends only because they were aborted.
    let out = within_deadline("the job outside the group", outside.wait())
        .await
        .expect("a job outside the group runs");
    assert_eq!(
        fairway_engine::rows_as_text(&out.batches).unwrap(),
        vec!["3"]
    );
    assert_eq!(session.cancel_group("etl"), 0, "nothing left to cancel");
    wait_until("slots are free", DEADLINE, || {
        session.scheduler().metrics().running_tasks == 0
    })
    .await;
    assert!(session.active_jobs().is_empty());
    assert!(no_job_folders(&session), "shuffle data removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limit_makes_operators_spill_and_results_stay_right() {
    // 20 MiB: the shuffle keeps 5 MiB, DataFusion's pool 15 MiB, far less
    // than the aggregation's 800,000 groups and the sort need.
    let session = Session::new(config(
        2,
        2,
        &[
            ("fairway.memory.limit", "20MiB"),
            ("fairway.shuffle.memory", "1GiB"),
        ],
    ))
    .unwrap();
    assert_eq!(
        session.config().memory_budgets(),
        (5 << 20, Some(15 << 20)),
        "the shuffle keeps a quarter of the limit"
    );
    assert_eq!(session.shuffle().memory().limit(), 5 << 20);
    let sql = "select k, count(*) as c, sum(v) as s from \
               (select value % 800000 as k, value as v from generate_series(1, 4000000)) \
               group by k order by s desc, k limit 5";
    let ours = session.sql(sql).await.unwrap();
    let plain = fairway_engine::plain_datafusion_context(2);
    let expected = plain_rows(&plain, sql).await;
    assert_same_rows("spilling aggregation", &ours.batches, &expected, true);

    let report = session
        .sql(&format!("explain analyze {sql}"))
        .await
        .unwrap();
    let text = fairway_engine::rows_as_text(&report.batches)
        .unwrap()
        .join("\n");
    let spilled = text
        .lines()
        .filter(|l| l.contains("metrics:") && !l.contains("spilled=0 B"))
        .count();
    assert!(spilled > 0, "some stage spilled under the limit: {text}");
    assert_eq!(session.memory_reserved(), 0, "every reservation was freed");
    assert_eq!(session.shuffle().stats().memory_used, 0);

    // Too small a limit is refused when the session starts.
    let err = Session::new(config(1, 1, &[("fairway.memory.limit", "1MiB")]))
        .err()
        .expect("too small")
        .to_string();
    assert!(err.contains("fairway.memory.limit"), "{err}");
}

/// Runs TPC-H queries on a session with `settings` and checks them against
/// DataFusion; returns the scheduler's (tasks succeeded, attempts failed).
async fn tpch_with(settings: &[(&str, &str)], shuffle_memory: &str) -> (u64, u64) {
    let dir = bundled_tpch();
    let plain = plain_tpch(&dir, 4).await;
    let mut all = vec![("fairway.shuffle.memory", shuffle_memory)];
    all.extend_from_slice(settings);
    let session = Session::new(config(2, 4, &all)).unwrap();
    register_tpch(&session, &dir).await;
    for q in [3, 5, 18] {
        let sql = tpch::query(q).unwrap();
        let ours = session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("Q{q} with {settings:?}: {e}"));
        let expected = plain_rows(&plain, sql).await;
        assert_same_rows(&format!("Q{q}"), &ours.batches, &expected, is_ordered(sql));
    }
    let m = session.scheduler().metrics();
    assert_eq!(m.running_tasks, 0);
    assert_eq!(session.shuffle().stats().memory_used, 0);
    assert!(no_job_folders(&session), "shuffle data removed");
    (m.tasks_completed, m.tasks_failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_or_corrupt_shuffle_outputs_are_recomputed_from_lineage() {
    let (baseline, failed) = tpch_with(&[], "0").await;
    assert_eq!(failed, 0);
    // Files deleted: two map outputs of stage 0 and one of stage 1 (of
    // every query), found by the readers of the next stage.
    let (tasks, failed) = tpch_with(
        &[(
            "fairway.test.lose_map_outputs",
            "stage=0,partition=1,attempt=0;stage=1,partition=0,attempt=0;stage=0,partition=3,attempt=0",
        )],
        "0",
    )
    .await;
    assert!(failed >= 3, "readers failed on lost outputs: {failed}");
    assert!(
        tasks >= baseline + 3,
        "lost map tasks ran again: {tasks} tasks against {baseline}"
    );
    // Files with garbage in them: found while decoding.
    let (tasks, failed) = tpch_with(
        &[(
            "fairway.test.corrupt_map_outputs",
            "stage=0,partition=2,attempt=0;stage=2,partition=1,attempt=0",
        )],
        "0",
    )
    .await;
    assert!(failed >= 2, "readers failed on corrupt outputs: {failed}");
    assert!(tasks >= baseline + 2, "{tasks} tasks against {baseline}");
    // Outputs kept in memory and lost.
    let (tasks, failed) = tpch_with(
        &[("fairway.test.lose_map_outputs", "stage=0,attempt=0")],
        "1GiB",
    )
    .await;
    assert!(failed >= 1 && tasks > baseline, "{tasks} / {failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_lost_at_every_attempt_fail_the_job_with_a_clear_error() {
    let session = Session::new(config(
        2,
        4,
        &[
            ("fairway.shuffle.memory", "0"),
            ("fairway.test.lose_map_outputs", "stage=0"),
            ("fairway.task.max_failures", "3"),
        ],
    ))
    .unwrap();
    session
        .sql("create table t (k int, v int) as values (1, 10), (2, 20), (3, 30)")
        .await
        .unwrap();
    let err = session
        .sql("select k, sum(v) from t group by k")
        .await
        .expect_err("stage 0's outputs are always lost")
        .to_string();
    assert!(
        err.contains("shuffle output") && err.contains("stage 0") && !err.contains("External"),
        "{err}"
    );
    assert_eq!(session.scheduler().metrics().running_tasks, 0);
    assert!(no_job_folders(&session));
}
