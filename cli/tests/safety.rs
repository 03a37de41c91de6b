//! Issue 14: hostile input gets a result or a clean error (never an abort
//! or a hang), signals clean up, COPY never writes into its own input, and
//! `--tables` reads only what is a table.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{fairway, spawn, text, wait_until, workspace};

/// A copy of TPC-H's 25-row `nation` table at `dest`.
fn copy_nation(dest: impl AsRef<Path>) {
    std::fs::copy(
        workspace().join("testdata/tpch-sf0.01/nation.parquet"),
        dest,
    )
    .unwrap();
}

/// Either the statement's result, or one clean `error:` line with exit
/// status 1: never a signal (an abort is 134, a stack overflow SIGSEGV).
fn assert_result_or_clean_error(out: &Output, result: &str, error: &str) {
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert!(
        out.status.code().is_some(),
        "killed by a signal ({:?}): {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
    if out.status.success() {
        assert!(stdout.contains(result), "expected {result} in {stdout}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(error), "expected '{error}' in: {stderr}");
    }
}

/// Runs one SQL text from a file (a 10,000-term statement is longer than
/// one command-line argument may be).
fn sql_file(sql: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("statement.sql");
    std::fs::write(&file, sql).unwrap();
    let file = file.display().to_string();
    let mut args = vec!["sql", "--format", "csv"];
    args.extend_from_slice(extra);
    args.extend(["-f", &file]);
    fairway(&args)
}

#[test]
fn ten_thousand_terms_and_ten_thousand_ors_never_abort() {
    let terms = std::iter::repeat_n("1", 10_001)
        .collect::<Vec<_>>()
        .join("+");
    let out = sql_file(&format!("select {terms} as s"), &[]);
    assert_result_or_clean_error(&out, "10001", "nested too deeply");

    let ors: Vec<String> = (0..10_000).map(|i| format!("n_nationkey = {i}")).collect();
    let sql = format!(
        "select count(*) as n from nation where {}",
        ors.join(" or ")
    );
    let out = sql_file(&sql, &["--tables", "testdata/tpch-sf0.01"]);
    assert_result_or_clean_error(&out, "25", "nested too deeply");
    // The same nesting within the limit still runs.
    let terms = std::iter::repeat_n("1", 500).collect::<Vec<_>>().join("+");
    let out = sql_file(&format!("select {terms} as s"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("500"), "{}", text(&out.stdout));
}

/// `select count(*) from nation t0 join nation t1 on t0.k = t1.k join ...`
fn join_chain(n: usize) -> String {
    let mut sql = String::from("select count(*) as n from nation t0");
    for i in 1..n {
        sql.push_str(&format!(
            " join nation t{i} on t{}.n_nationkey = t{i}.n_nationkey",
            i - 1
        ));
    }
    sql
}

#[test]
fn long_join_chains_never_abort_or_hang() {
    // Within the limit a long chain runs; past it, a clear error at once.
    let out = fairway(&[
        "sql",
        "--format",
        "csv",
        "--slots",
        "2",
        "--tables",
        "testdata/tpch-sf0.01",
        "-c",
        &join_chain(60),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("25"), "{}", text(&out.stdout));
    for n in [300, 1000] {
        let out = fairway(&[
            "sql",
            "--format",
            "csv",
            "--slots",
            "2",
            "--tables",
            "testdata/tpch-sf0.01",
            "-c",
            &join_chain(n),
        ]);
        assert_result_or_clean_error(&out, "25", "more than 256 tables");
    }
}

#[test]
fn absurd_slots_and_partitions_are_clean_errors() {
    for args in [
        ["sql", "--slots", "100000", "-c", "select 1"],
        ["sql", "--partitions", "1000000", "-c", "select 1"],
    ] {
        let out = fairway(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains("maximum"), "names the maximum: {stderr}");
    }
}

#[test]
fn copy_onto_a_table_it_reads_is_refused_and_the_table_kept() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("nation.parquet");
    copy_nation(&table);
    let before = std::fs::read(&table).unwrap();
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink(dir.path(), &alias).unwrap();
    let spellings = [
        table.display().to_string(),
        format!(
            "{}/../{}/nation.parquet",
            dir.path().display(),
            dir.path().file_name().unwrap().to_string_lossy()
        ),
        alias.join("nation.parquet").display().to_string(),
    ];
    for target in &spellings {
        let out = fairway(&[
            "sql",
            "--table",
            &format!("t={}", table.display()),
            "-c",
            &format!(
                "copy (select * from t where n_nationkey < 3) to '{target}' stored as parquet"
            ),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{target}: {stderr}");
        assert!(
            stderr.contains("COPY would write into table 't'"),
            "{stderr}"
        );
        assert!(stderr.contains("nation.parquet"), "{stderr}");
        assert_eq!(std::fs::read(&table).unwrap(), before, "{target}");
    }
    // Into the folder of a folder table, too.
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&table, folder.join("part-0.parquet")).unwrap();
    let out = fairway(&[
        "sql",
        "--table",
        &format!("t={}", folder.display()),
        "-c",
        &format!(
            "copy (select * from t) to '{}' stored as parquet",
            folder.join("more.parquet").display()
        ),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1);
    // Elsewhere it works.
    let elsewhere = dir.path().join("copy.parquet");
    let out = fairway(&[
        "sql",
        "--table",
        &format!("t={}", table.display()),
        "-c",
        &format!(
            "copy (select * from t) to '{}' stored as parquet",
            elsewhere.display()
        ),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(elsewhere.exists());
}

#[test]
fn a_zero_byte_parquet_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.parquet");
    std::fs::write(&empty, b"").unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    copy_nation(folder.join("part-0.parquet"));
    std::fs::write(folder.join("part-1.parquet"), b"").unwrap();
    for (path, named) in [
        (empty.as_path(), "empty.parquet"),
        (folder.as_path(), "part-1.parquet"),
        (
            Path::new("testdata/bad/zero_bytes.parquet"),
            "zero_bytes.parquet",
        ),
    ] {
        let out = fairway(&[
            "sql",
            "--table",
            &format!("t={}", path.display()),
            "-c",
            "select * from t",
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("0 bytes"),
            "{stderr}"
        );
    }
}

#[test]
fn tables_dir_skips_pipes_hidden_files_and_fairways_own_folders() {
    let dir = tempfile::tempdir().unwrap();
    copy_nation(dir.path().join("nation.parquet"));
    let fifo = dir.path().join("pipe.parquet");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    std::fs::write(dir.path().join(".hidden.parquet"), b"not parquet").unwrap();
    let stage = dir.path().join("features.parquet.fairway-stage");
    std::fs::create_dir(&stage).unwrap();
    std::fs::write(stage.join("part-0.parquet"), b"not parquet").unwrap();
    std::fs::write(
        dir.path().join(".out.parquet.999999999.abc.fairway-tmp"),
        b"x",
    )
    .unwrap();
    let out = fairway(&[
        "sql",
        "--format",
        "csv",
        "--tables",
        &dir.path().display().to_string(),
        "-c",
        "show tables",
    ]);
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(",nation,"), "{stdout}");
    assert!(!stdout.contains("pipe"), "{stdout}");
    // fairway's own folders are no tables (the system schema `fairway`
    // lists `jobs` and `pools`, which are).
    assert!(!stdout.contains("public,fairway"), "{stdout}");
    assert!(!stdout.contains("hidden"), "{stdout}");
    // A pipe named as a table is a clear error, not a hang.
    let out = fairway(&[
        "sql",
        "--table",
        &format!("t={}", fifo.display()),
        "-c",
        "select 1",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pipe.parquet") && stderr.contains("not a regular file"),
        "{stderr}"
    );
}

fn shuffle_folders(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a file exists in a job folder of a shuffle work folder in `dir`
/// (`dir/fairway-shuffle-*/job-*/FILE`).
fn spilled(dir: &Path) -> bool {
    let entries = |path: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    entries(dir).iter().any(|work| {
        entries(work).iter().any(|job| {
            job.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("job-"))
                && entries(job).iter().any(|file| file.is_file())
        })
    })
}

/// SIGTERM and SIGHUP during a query that spills its shuffle: the jobs are
/// cancelled, the shuffle folder is removed, a message is printed and the
/// exit status is 128 + the signal.
#[test]
fn sigterm_and_sighup_cancel_and_clean_up() {
    for (signal, status) in [("TERM", 143), ("HUP", 129)] {
        let dir = tempfile::tempdir().unwrap();
        let shuffle = dir.path().display().to_string();
        let mut child = spawn(&[
            "sql",
            "--slots",
            "2",
            "--shuffle-memory",
            "0",
            "--conf",
            &format!("fairway.shuffle.dir={shuffle}"),
            "--tables",
            "testdata/tpch-sf0.01",
            "-c",
            "select count(*) from (select l_orderkey, count(*) from lineitem group by l_orderkey) a \
             cross join (select l_partkey, count(*) from lineitem group by l_partkey) b \
             where a.l_orderkey + b.l_partkey < 0",
        ]);
        // Wait until a job has spilled shuffle data: a file in a job folder
        // of the shuffle folder.
        wait_until("spilled shuffle data", || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "ended before the signal"
            );
            spilled(dir.path())
        });
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before the signal"
        );
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        wait_until(&format!("the exit after SIG{signal}"), || {
            child.try_wait().unwrap().is_some()
        });
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "SIG{signal}: {stderr}");
        assert!(stderr.contains(&format!("SIG{signal}")), "{stderr}");
        assert!(stderr.contains("cancelled"), "{stderr}");
        assert_eq!(
            shuffle_folders(dir.path()),
            Vec::<String>::new(),
            "SIG{signal} left shuffle data behind"
        );
    }
}
