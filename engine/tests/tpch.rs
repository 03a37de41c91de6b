//! All 22 TPC-H queries at SF 0.1 through the stage engine under several
//! settings, each compared with plain DataFusion (no stage split) on the
//! same data.

mod common;

use common::{
    assert_same_rows, is_ordered, plain_rows, plain_tpch, register_tpch, session, tpch_data,
};
use fairway_tpch as tpch;

async fn check_all_queries(slots: usize, partitions: usize, shuffle_memory: usize) {
    let dir = tpch_data(0.1);
    let session = session(slots, partitions, shuffle_memory);
    register_tpch(&session, &dir).await;
    let plain = plain_tpch(&dir, partitions).await;
    for q in 1..=22 {
        let sql = tpch::query(q).expect("query text");
        let label = format!(
            "Q{q} ({slots} slots, {partitions} partitions, shuffle memory {shuffle_memory})"
        );
        let ours = session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let expected = plain_rows(&plain, sql).await;
        assert!(!expected.is_empty(), "{label}: reference returned nothing");
        assert_same_rows(&label, &ours.batches, &expected, is_ordered(sql));
        assert!(ours.stages >= 2, "{label}: ran as {} stage(s)", ours.stages);
    }
    let stats = session.shuffle().stats();
    assert_eq!(
        stats.memory_used, 0,
        "shuffle memory released after every job"
    );
    if shuffle_memory == 0 {
        // Only empty map outputs may stay "in memory" (they hold 0 bytes).
        assert_eq!(stats.memory_peak, 0, "nothing kept in memory");
        assert!(stats.file_outputs > 0, "everything spilled to files");
    } else {
        assert!(stats.memory_outputs > 0);
    }
    let leftovers = common::job_folders(&session);
    assert!(
        leftovers.is_empty(),
        "job folders left behind: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_one_slot() {
    check_all_queries(1, 2, 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_two_slots_three_partitions() {
    check_all_queries(2, 3, 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_four_slots_eight_partitions() {
    check_all_queries(4, 8, 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_everything_spills() {
    check_all_queries(2, 4, 0).await;
}

/// SF 1 against the published TPC-H answers (shipped in the tpchgen crate):
/// a reference independent of DataFusion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_sf1_matches_published_answers() {
    let dir = tpch_data(1.0);
    let session = session(2, 4, 1 << 30);
    register_tpch(&session, &dir).await;
    for q in 1..=22 {
        let out = session
            .sql(tpch::query(q).unwrap())
            .await
            .unwrap_or_else(|e| panic!("Q{q}: {e}"));
        tpch::check_sf1_answer(q, &out.batches).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Q18 and Q21 at SF 1 under a 512 MiB memory limit (the shuffle keeps 128
/// MiB, DataFusion's operators share 384 MiB and spill beyond it) still
/// give the published answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_sf1_q18_q21_under_a_512_mib_memory_limit() {
    let dir = tpch_data(1.0);
    let mut config = fairway_engine::EngineConfig::with_slots(2).partitions(4);
    config.shuffle_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    config.set("fairway.memory.limit", "512MiB").unwrap();
    let session = fairway_engine::Session::new(config).unwrap();
    register_tpch(&session, &dir).await;
    for q in [18, 21] {
        let out = session
            .sql(tpch::query(q).unwrap())
            .await
            .unwrap_or_else(|e| panic!("Q{q}: {e}"));
        tpch::check_sf1_answer(q, &out.batches).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(session.memory_reserved(), 0);
}
