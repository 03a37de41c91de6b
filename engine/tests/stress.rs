//! Under load: 50 concurrent jobs of mixed sizes in 5 FAIR pools, with
//! random cancellations (from handles and by job group), injected task
//! failures and lost shuffle outputs. Every job that completes must give DataFusion's answer, and
//! nothing may leak: slots, shuffle memory and files, DataFusion memory.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_same_rows, is_ordered, plain_rows, plain_tpch, register_tpch};
use fairway_engine::{EngineConfig, Session};
use fairway_tpch as tpch;

/// A small deterministic random source (splitmix64), so a failure can be
/// replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Regular files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// What the test asked of a job.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Run,
    /// Cancel from its handle after this many milliseconds.
    CancelAfter(u64),
    /// In the job group that is cancelled as a whole.
    InCancelledGroup,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_jobs_in_five_pools_with_cancellations_and_failures() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/tpch-sf0.01");
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut config = EngineConfig::with_slots(2).partitions(4);
    config.shuffle_dir = work.path().to_path_buf();
    for (key, value) in [
        ("fairway.scheduler.mode", "fair"),
        // DataFusion's operators share 48 - 1 MiB; the shuffle keeps 1 MiB
        // in memory and spills the rest to files.
        ("fairway.memory.limit", "48MiB"),
        ("fairway.shuffle.memory", "1MiB"),
        ("fairway.test.fail_probability", "0.03"),
        ("fairway.test.fail_seed", "2024"),
        ("fairway.task.max_failures", "4"),
        // Every job loses a map output of its first stage once: readers
        // fail to fetch it and it is recomputed, while other jobs run and
        // are cancelled.
        (
            "fairway.test.lose_map_outputs",
            "stage=0,partition=1,attempt=0",
        ),
    ] {
        config.set(key, value).unwrap();
    }
    let session = Session::new(config).unwrap();
    register_tpch(&session, &data).await;

    // Mixed sizes: one-stage scans, joins of 3 to 6 tables, a big
    // aggregation that spills.
    let mut queries: Vec<String> = [1, 3, 5, 6, 10, 12, 14, 18, 19]
        .iter()
        .map(|&q| tpch::query(q).unwrap().to_string())
        .collect();
    queries.push("select n_regionkey, count(*) as n from nation group by 1 order by 1".into());
    queries.push(
        "select value % 50000 as k, count(*) as c from generate_series(1, 1500000) \
         group by 1 order by c desc, k limit 3"
            .into(),
    );
    queries.push(tpch::query(21).unwrap().to_string());
    let plain = plain_tpch(&data, 4).await;
    let mut expected = Vec::new();
    for sql in &queries {
        expected.push(plain_rows(&plain, sql).await);
    }

    let mut random = Random(8);
    let started = Instant::now();
    let mut jobs = Vec::new();
    let mut timers = Vec::new();
    for i in 0..50 {
        let query = random.below(queries.len() as u64) as usize;
        let pool = format!("pool{}", i % 5);
        let fate = match random.below(10) {
            0 | 1 => Fate::CancelAfter(random.below(150)),
            2 => Fate::InCancelledGroup,
            _ => Fate::Run,
        };
        let mut client = session.with_pool(&pool).unwrap();
        if fate == Fate::InCancelledGroup {
            client = client.with_job_group("doomed").unwrap();
        }
        let handle = client.submit_sql(&queries[query]);
        if let Fate::CancelAfter(ms) = fate {
            let canceller = handle.canceller();
            timers.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                canceller.cancel();
            }));
        }
        jobs.push((i, query, fate, handle));
        if i == 30 {
            // The group's jobs submitted so far are cancelled; later ones
            // run (Spark's semantics: only active jobs are cancelled).
            session.cancel_group("doomed");
        }
        // Jobs arrive over time, not all at once.
        tokio::time::sleep(Duration::from_millis(random.below(12))).await;
    }
    for timer in timers {
        timer.await.unwrap();
    }

    let mut outcomes: HashMap<&str, usize> = HashMap::new();
    for (i, query, fate, handle) in jobs {
        match handle.wait().await {
            Ok(out) => {
                let sql = &queries[query];
                assert_same_rows(
                    &format!("job {i} (query {query})"),
                    &out.batches,
                    &expected[query],
                    is_ordered(sql),
                );
                *outcomes.entry("completed").or_default() += 1;
            }
            Err(e) if e.is_cancelled() => {
                assert_ne!(fate, Fate::Run, "job {i} was never cancelled: {e}");
                if fate == Fate::InCancelledGroup {
                    assert!(i <= 30, "job {i} started after the group was cancelled");
                }
                *outcomes.entry("cancelled").or_default() += 1;
            }
            Err(e) => {
                // A task may fail all its attempts (p = 0.03^4 each).
                let message = e.to_string();
                assert!(
                    message.contains("injected failure"),
                    "job {i} failed for a reason of its own: {message}"
                );
                *outcomes.entry("failed").or_default() += 1;
            }
        }
    }
    eprintln!(
        "50 jobs in {:.1} s: {outcomes:?}, {:?}",
        started.elapsed().as_secs_f64(),
        session.scheduler().metrics()
    );
    assert!(
        outcomes.get("completed").copied().unwrap_or(0) >= 25,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("cancelled").copied().unwrap_or(0) >= 3,
        "{outcomes:?}"
    );
    assert!(
        session.scheduler().metrics().tasks_failed > 0,
        "failures were injected"
    );

    // Nothing leaked. Aborted tasks may still be unwinding: wait for them,
    // within the shared deadline.
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let m = session.scheduler().metrics();
        let clean = m.running_tasks == 0
            && m.suspended_tasks == 0
            && m.jobs_active == 0
            && session.active_jobs().is_empty()
            && session.shuffle().stats().memory_used == 0
            && session.memory_reserved() == 0
            && files_under(work.path()).is_empty();
        if clean {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leak: {m:?}, active jobs {:?}, shuffle memory {} B, DataFusion memory {} B, files {:?}",
            session.active_jobs(),
            session.shuffle().stats().memory_used,
            session.memory_reserved(),
            files_under(work.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pool in session.scheduler().pools() {
        assert_eq!(pool.running_tasks, 0, "{pool:?}");
        assert_eq!(pool.active_stages, 0, "{pool:?}");
    }
    assert!(
        session.shuffle().stats().file_outputs > 0,
        "the shuffle spilled to files under load"
    );
}
