//! Bounds on settings that would otherwise end the process or turn a tiny
//! query into minutes: slots (worker threads) and shuffle partitions.

use std::path::PathBuf;
use std::time::Instant;

use fairway_engine::{EngineConfig, MAX_PARTITIONS, MAX_SLOTS, Session};

fn config_error(key: &str, value: &str) -> String {
    let mut config = EngineConfig::with_slots(2);
    match config.set(key, value) {
        Ok(()) => panic!("{key}={value} accepted"),
        Err(error) => error.to_string(),
    }
}

fn assert_names(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} missing in: {message}");
    }
}

#[test]
fn maxima_are_the_documented_ones() {
    assert_eq!(MAX_SLOTS, 1024);
    assert_eq!(MAX_PARTITIONS, 10_000);
}

#[test]
fn too_many_slots_is_an_error_naming_the_option_and_the_maximum() {
    let message = config_error("fairway.scheduler.slots", "100000");
    assert_names(
        &message,
        &["fairway.scheduler.slots", "--slots", "100000", "1024"],
    );
    let message = config_error("fairway.scheduler.slots", "0");
    assert_names(
        &message,
        &["fairway.scheduler.slots", "--slots", "at least 1"],
    );
    let message = config_error("fairway.scheduler.slots", "many");
    assert_names(&message, &["fairway.scheduler.slots", "'many'", "1024"]);

    let mut config = EngineConfig::with_slots(2);
    config.set("fairway.scheduler.slots", "1024").unwrap();
    assert_eq!(config.slots, MAX_SLOTS);
    assert_eq!(config.partitions, 2048, "partitions follow, within bounds");

    // Set directly, past the setter: the session refuses it before it
    // starts a single worker thread.
    for slots in [100_000, 0] {
        let mut config = EngineConfig::with_slots(2);
        config.slots = slots;
        let message = Session::new(config).err().expect("refused").to_string();
        assert_names(&message, &["fairway.scheduler.slots", "--slots"]);
    }
}

#[test]
fn too_many_partitions_is_an_error_naming_the_option_and_the_maximum() {
    for key in [
        "fairway.shuffle.partitions",
        "datafusion.execution.target_partitions",
    ] {
        let message = config_error(key, "1000000");
        assert_names(&message, &[key, "--partitions", "1000000", "10000"]);
        let message = config_error(key, "0");
        assert_names(&message, &[key, "at least 1"]);
    }
    let mut config = EngineConfig::with_slots(2);
    config.set("fairway.shuffle.partitions", "10000").unwrap();
    assert_eq!(config.partitions, MAX_PARTITIONS);

    let config = EngineConfig::with_slots(2).partitions(1_000_000);
    let message = Session::new(config).err().expect("refused").to_string();
    assert_names(
        &message,
        &[
            "fairway.shuffle.partitions",
            "--partitions",
            "1000000",
            "10000",
        ],
    );
}

/// A 25-row CSV table in a fresh folder.
fn tiny_table() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..25).map(|i| format!("{},{}", i % 5, i)).collect();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, format!("k,v\n{}\n", rows.join("\n"))).unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

async fn group_by(partitions: usize) -> std::time::Duration {
    let (_dir, path) = tiny_table();
    let mut config = EngineConfig::with_slots(2).partitions(partitions);
    config.shuffle_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let session = Session::new(config).expect("session");
    session.register_table("t", &path).await.unwrap();
    let began = Instant::now();
    let output = session
        .sql("SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k ORDER BY k")
        .await
        .expect("query");
    let elapsed = began.elapsed();
    assert_eq!(output.rows(), 5);
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_group_by_runs_at_the_maximum_partitions() {
    let elapsed = group_by(MAX_PARTITIONS).await;
    eprintln!("GROUP BY of 25 rows at {MAX_PARTITIONS} partitions: {elapsed:?}");
}

/// Prints what a 25-row GROUP BY costs at each partition count in
/// `FAIRWAY_PARTITIONS` (default 16,1024,4096,10000): `cargo test -p
/// fairway-engine --test limits -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn measure_group_by_partitions() {
    let counts =
        std::env::var("FAIRWAY_PARTITIONS").unwrap_or_else(|_| "16,1024,4096,10000".into());
    for partitions in counts.split(',') {
        let partitions: usize = partitions.trim().parse().unwrap();
        let elapsed = group_by(partitions).await;
        eprintln!("GROUP BY of 25 rows at {partitions} partitions: {elapsed:?}");
    }
}
