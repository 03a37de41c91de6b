//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Mutex;

use fairway_engine::arrow::record_batch::RecordBatch;
use fairway_engine::datafusion::prelude::SessionContext;
use fairway_engine::{EngineConfig, Session, plain_datafusion_context, rows_as_text};
use fairway_tpch as tpch;

static GENERATE: Mutex<()> = Mutex::new(());

/// The one bound on how long a test may wait for something that must
/// happen (a job to end, a file to appear): generous, because it only
/// tells a hang from a slow machine, never how fast something is.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// TPC-H data at `sf`, generated once into the ignored target folder.
pub fn tpch_data(sf: f64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tpch-sf{sf}"));
    let _lock = GENERATE.lock().unwrap_or_else(|e| e.into_inner());
    tpch::generate_parquet(sf, &dir).expect("generate TPC-H data");
    dir
}

pub async fn register_tpch(session: &Session, dir: &std::path::Path) {
    for table in tpch::TABLES {
        let path = dir.join(format!("{table}.parquet"));
        session
            .register_table(table, &path.to_string_lossy())
            .await
            .unwrap_or_else(|e| panic!("register {table}: {e}"));
    }
}

pub async fn plain_tpch(dir: &std::path::Path, partitions: usize) -> SessionContext {
    let ctx = plain_datafusion_context(partitions);
    for table in tpch::TABLES {
        let path = dir.join(format!("{table}.parquet"));
        fairway_engine::register_table(&ctx, table, &path.to_string_lossy())
            .await
            .unwrap_or_else(|e| panic!("register {table}: {e}"));
    }
    ctx
}

/// The rows plain DataFusion gives for `sql`: the independent reference.
pub async fn plain_rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("plain DataFusion plans {sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("plain DataFusion runs {sql}: {e}"))
}

/// A parquet file or folder read whole by plain DataFusion.
pub async fn read_parquet(path: &std::path::Path) -> Vec<RecordBatch> {
    let ctx = plain_datafusion_context(2);
    ctx.read_parquet(
        path.to_string_lossy().as_ref(),
        fairway_engine::datafusion::prelude::ParquetReadOptions::default(),
    )
    .await
    .unwrap()
    .collect()
    .await
    .unwrap()
}

pub fn session(slots: usize, partitions: usize, shuffle_memory: usize) -> Session {
    let mut config = EngineConfig::with_slots(slots).partitions(partitions);
    config.shuffle_memory = shuffle_memory;
    config.shuffle_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    Session::new(config).expect("session")
}

/// Asserts that two results hold the same rows: in the same order when
/// `ordered`, as multisets otherwise.
pub fn assert_same_rows(
    label: &str,
    actual: &[RecordBatch],
    expected: &[RecordBatch],
    ordered: bool,
) {
    let mut a = rows_as_text(actual).unwrap();
    let mut e = rows_as_text(expected).unwrap();
    if !ordered {
        a.sort();
        e.sort();
    }
    if a != e {
        let first = a
            .iter()
            .zip(&e)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(e.len()));
        panic!(
            "{label}: results differ ({} vs {} rows); first difference at row {first}:\n  got:      {:?}\n  expected: {:?}",
            a.len(),
            e.len(),
            a.get(first),
            e.get(first)
        );
    }
}

/// Whether the outermost query of `sql` ends with an ORDER BY (the last
/// `order by` is not followed by a closing parenthesis).
pub fn is_ordered(sql: &str) -> bool {
    let lower = sql.to_lowercase();
    lower
        .rfind("order by")
        .is_some_and(|i| !lower[i..].contains(')'))
}

/// Rows as text, sorted: the order-free form two answers are compared in.
pub fn sorted_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = rows_as_text(batches).expect("rows as text");
    rows.sort();
    rows
}

/// The job folders left in the session's shuffle folder. The folder is
/// created with the session and removed only when it drops, so it must
/// exist: a leak check that found no folder at all would prove nothing.
pub fn job_folders(session: &Session) -> Vec<String> {
    let root = session.shuffle().root();
    std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!(
                "the shuffle folder {} of a live session: {e}",
                root.display()
            )
        })
        .map(|e| {
            e.expect("a folder entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}
