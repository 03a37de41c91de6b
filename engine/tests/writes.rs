//! `COPY ... TO` is written beside its target and committed when its job
//! succeeds: a write that fails half-way leaves no file at the target and
//! the target's earlier contents untouched; links are refused.

mod common;

use std::path::{Path, PathBuf};

use common::{plain_rows, plain_tpch, sorted_rows};
use fairway_engine::{EngineConfig, Session};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/tpch-sf0.01")
}

fn session() -> Session {
    let mut config = EngineConfig::with_slots(2).partitions(3);
    config.shuffle_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // One attempt: the failing row fails the job at once.
    config.set("fairway.task.max_failures", "1").unwrap();
    Session::new(config).unwrap()
}

/// A query over all of orders whose one row with key 59975 fails at run
/// time (a cast of 'x' to INT), after the other partitions wrote theirs.
fn failing_query() -> String {
    format!(
        "SELECT o_orderkey, CASE WHEN o_orderkey = 59975 THEN CAST(o_comment || 'x' AS INT) \
         ELSE 0 END AS boom FROM '{}'",
        testdata().join("orders.parquet").display()
    )
}

fn good_query() -> String {
    format!(
        "SELECT o_orderkey, o_totalprice FROM '{}' WHERE o_orderkey % 5 = 0",
        testdata().join("orders.parquet").display()
    )
}

/// Every entry under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_copy_leaves_nothing_and_keeps_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let session = session();

    // A new folder: nothing appears, not even the folder.
    let fresh = dir.path().join("fresh");
    let err = session
        .sql(&format!(
            "COPY ({}) TO '{}/' STORED AS PARQUET",
            failing_query(),
            fresh.display()
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Cannot cast") || err.contains("cast"), "{err}");
    assert!(tree(dir.path()).is_empty(), "left: {:?}", tree(dir.path()));

    // An existing folder with a user's file: unchanged by the failure,
    // grown (the user's file kept) by a success.
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), "mine").unwrap();
    for format in ["PARQUET", "CSV", "JSON"] {
        assert!(
            session
                .sql(&format!(
                    "COPY ({}) TO '{}/' STORED AS {format}",
                    failing_query(),
                    existing.display()
                ))
                .await
                .is_err()
        );
        assert_eq!(
            tree(dir.path()),
            ["existing", "existing/notes.txt"],
            "{format}"
        );
    }
    session
        .sql(&format!(
            "COPY ({}) TO '{}/' STORED AS PARQUET",
            good_query(),
            existing.display()
        ))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(existing.join("notes.txt")).unwrap(),
        "mine"
    );
    let plain = plain_tpch(&testdata(), 3).await;
    let reference = plain_rows(
        &plain,
        "SELECT o_orderkey, o_totalprice FROM orders WHERE o_orderkey % 5 = 0",
    )
    .await;
    let back = session
        .sql(&format!(
            "SELECT o_orderkey, o_totalprice FROM read_parquet('{}/*.parquet')",
            existing.display()
        ))
        .await
        .unwrap();
    assert_eq!(sorted_rows(&back.batches), sorted_rows(&reference));
    assert!(
        tree(dir.path()).iter().all(|e| !e.contains("fairway-tmp")),
        "{:?}",
        tree(dir.path())
    );

    // A single file: replaced by a success only.
    let file = dir.path().join("one.csv");
    std::fs::write(&file, "old,contents\n").unwrap();
    assert!(
        session
            .sql(&format!(
                "COPY ({}) TO '{}'",
                failing_query(),
                file.display()
            ))
            .await
            .is_err()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "old,contents\n");
    session
        .sql(&format!("COPY ({}) TO '{}'", good_query(), file.display()))
        .await
        .unwrap();
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.starts_with("o_orderkey,o_totalprice\n"),
        "{written}"
    );
    assert_eq!(
        written.lines().count(),
        reference.iter().map(|b| b.num_rows()).sum::<usize>() + 1
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_refuses_links_and_a_file_in_place_of_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let session = session();
    let real = dir.path().join("real.parquet");
    std::fs::write(&real, "precious").unwrap();
    let link = dir.path().join("link.parquet");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = session
        .sql(&format!("COPY ({}) TO '{}'", good_query(), link.display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("symbolic link") && err.contains("link.parquet"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "precious");
    let err = session
        .sql(&format!(
            "COPY ({}) TO '{}' STORED AS PARQUET PARTITIONED BY (o_orderkey)",
            good_query(),
            real.display()
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a file"), "{err}");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "precious");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_into_a_folder_table_appears_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t");
    let session = session();
    session
        .sql(&format!(
            "CREATE EXTERNAL TABLE t (o_orderkey BIGINT, boom INT) STORED AS PARQUET \
             LOCATION '{}/'",
            table.display()
        ))
        .await
        .unwrap();
    let before = tree(dir.path());
    assert!(
        session
            .sql(&format!("INSERT INTO t {}", failing_query()))
            .await
            .is_err()
    );
    assert_eq!(tree(dir.path()), before, "a failed insert adds nothing");
    session
        .sql(&format!(
            "INSERT INTO t SELECT o_orderkey, 7 AS boom FROM '{}' WHERE o_orderkey < 100",
            testdata().join("orders.parquet").display()
        ))
        .await
        .unwrap();
    // It may read the table it grows.
    session
        .sql("INSERT INTO t SELECT o_orderkey, boom + 1 FROM t")
        .await
        .unwrap();
    let got = session
        .sql("SELECT boom, count(*) FROM t GROUP BY boom ORDER BY boom")
        .await
        .unwrap();
    let plain = plain_tpch(&testdata(), 3).await;
    let n = sorted_rows(
        &plain_rows(&plain, "SELECT count(*) FROM orders WHERE o_orderkey < 100").await,
    )
    .remove(0);
    assert_eq!(
        sorted_rows(&got.batches),
        [format!("7 | {n}"), format!("8 | {n}")]
    );
    assert!(
        tree(dir.path()).iter().all(|e| !e.contains("fairway-tmp")),
        "{:?}",
        tree(dir.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_as_at_a_location_writes_then_registers() {
    let dir = tempfile::tempdir().unwrap();
    let session = session();
    let location = dir.path().join("big");
    session
        .sql(&format!(
            "CREATE TABLE big STORED AS PARQUET LOCATION '{}' AS {}",
            location.display(),
            good_query()
        ))
        .await
        .unwrap();
    let plain = plain_tpch(&testdata(), 3).await;
    let reference = plain_rows(
        &plain,
        "SELECT o_orderkey, o_totalprice FROM orders WHERE o_orderkey % 5 = 0",
    )
    .await;
    let got = session.sql("SELECT * FROM big").await.unwrap();
    assert_eq!(sorted_rows(&got.batches), sorted_rows(&reference));
    // The files are there for any reader, fairway's or not.
    let direct = common::read_parquet(&location).await;
    assert_eq!(sorted_rows(&direct), sorted_rows(&reference));

    let again = format!(
        "CREATE TABLE big STORED AS PARQUET LOCATION '{}/other' AS SELECT 1 AS one",
        dir.path().display()
    );
    let err = session.sql(&again).await.unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    let err = session
        .sql(&format!(
            "CREATE TABLE other STORED AS PARQUET LOCATION '{}' AS SELECT 1 AS one",
            location.display()
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds files"), "{err}");
    // JSON lines, and a failed query: no table, no files.
    let lines = dir.path().join("lines");
    session
        .sql(&format!(
            "CREATE TABLE lines STORED AS JSONFILE LOCATION '{}' AS SELECT 1 AS one, 'x' AS two",
            lines.display()
        ))
        .await
        .unwrap();
    let got = session.sql("SELECT one, two FROM lines").await.unwrap();
    assert_eq!(sorted_rows(&got.batches), ["1 | x"]);
    let broken = dir.path().join("broken");
    assert!(
        session
            .sql(&format!(
                "CREATE TABLE broken STORED AS PARQUET LOCATION '{}' AS {}",
                broken.display(),
                failing_query()
            ))
            .await
            .is_err()
    );
    assert!(!broken.exists());
    let err = session
        .sql("SELECT * FROM broken")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken") && err.contains("not found"), "{err}");
}

/// An INSERT into a folder table does what DataFusion's own INSERT does on
/// the way in: rows sorted by the table's declared order (scans trust it
/// later) and a NULL into a NOT NULL column refused, writing nothing
/// (sqllogictest insert_to_external.slt:140, :607, :648).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_sorts_by_the_declared_order_and_refuses_nulls_in_not_null_columns() {
    let dir = tempfile::tempdir().unwrap();
    let session = session();
    session
        .sql(&format!(
            "CREATE EXTERNAL TABLE ordered (a BIGINT, b BIGINT) STORED AS CSV \
             LOCATION '{}/ordered/' WITH ORDER (a ASC, b DESC)",
            dir.path().display()
        ))
        .await
        .unwrap();
    session
        .sql("INSERT INTO ordered VALUES (5, 1), (4, 2), (7, 7), (7, 9), (7, 8), (3, 3)")
        .await
        .unwrap();
    let files: Vec<String> = tree(&dir.path().join("ordered"));
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(dir.path().join("ordered").join(&files[0])).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows, ["3,3", "4,2", "5,1", "7,9", "7,8", "7,7"]);

    session
        .sql(&format!(
            "CREATE EXTERNAL TABLE strict (k INT NOT NULL, v INT) STORED AS PARQUET \
             LOCATION '{}/strict/'",
            dir.path().display()
        ))
        .await
        .unwrap();
    session
        .sql("INSERT INTO strict VALUES (1, 10)")
        .await
        .unwrap();
    let before = tree(dir.path());
    for sql in [
        "INSERT INTO strict (v) VALUES (20)",
        "INSERT INTO strict VALUES (NULL, 30)",
        "INSERT INTO strict SELECT CASE WHEN v > 5 THEN NULL ELSE 1 END, v FROM strict",
    ] {
        let err = session.sql(sql).await.expect_err(sql).to_string();
        // DataFusion's words: from the NOT NULL check, or (a NULL literal
        // typed by the target column) from building the VALUES batch.
        assert!(
            err.contains("Invalid batch column at '0' has null but schema specifies non-nullable")
                || err.contains("is declared as non-nullable but contains null values"),
            "{sql}: {err}"
        );
    }
    assert_eq!(tree(dir.path()), before, "a refused insert writes nothing");
    let got = session.sql("SELECT k, v FROM strict").await.unwrap();
    assert_eq!(sorted_rows(&got.batches), ["1 | 10"]);
}
