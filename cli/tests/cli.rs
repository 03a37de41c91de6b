//! The `fairway` binary end to end: output, summary lines, errors, REPL.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod common;
use common::{fairway, finish, text, workspace};

/// An error is one `error:` line and exit status 1, never a panic.
fn assert_clean_error(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[test]
fn sql_prints_results_and_a_summary_line_per_statement() {
    let out = fairway(&[
        "sql",
        "--slots",
        "2",
        "--tables",
        "testdata/tpch-sf0.01",
        "--format",
        "csv",
        "-c",
        "select n_regionkey, count(*) as n from nation group by n_regionkey order by 1; select 42 as answer",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout, "n_regionkey,n\n0,5\n1,5\n2,5\n3,5\n4,5\nanswer\n42\n",
        "{stderr}"
    );
    let summaries: Vec<_> = stderr.lines().filter(|l| l.starts_with("-- ")).collect();
    assert_eq!(summaries.len(), 2, "{stderr}");
    assert!(summaries[0].contains(": 5 rows in "), "{stderr}");
    assert!(summaries[0].contains("stages)"), "{stderr}");
    assert!(summaries[1].contains(": 1 row in "), "{stderr}");
}

#[test]
fn files_run_before_commands_and_ddl_and_set_work() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("setup.sql");
    std::fs::write(
        &script,
        "-- a comment\nCREATE EXTERNAL TABLE r STORED AS PARQUET LOCATION 'testdata/tpch-sf0.01/region.parquet';\n\
         SET datafusion.execution.batch_size = 1024;\n",
    )
    .unwrap();
    let out = fairway(&[
        "sql",
        "--format",
        "ndjson",
        "-f",
        script.to_str().unwrap(),
        "-c",
        "select count(*) as n from r",
        "-c",
        "show datafusion.execution.batch_size",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("{\"n\":5}"), "{stdout}");
    assert!(stdout.contains("\"value\":\"1024\""), "{stdout}");
}

#[test]
fn json_format_is_an_array() {
    let out = fairway(&["sql", "--format", "json", "-c", "select 1 as a, 'x' as b"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), "[{\"a\":1,\"b\":\"x\"}]");
}

#[test]
fn explain_prints_stages() {
    let out = fairway(&[
        "explain",
        "--tables",
        "testdata/tpch-sf0.01",
        "--partitions",
        "3",
        "-c",
        "select o_orderstatus, count(*) from orders group by o_orderstatus",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("Stage 0 [tasks="), "{stdout}");
    assert!(
        stdout.contains("output=shuffle Hash([o_orderstatus@0], 3)"),
        "{stdout}"
    );
    assert!(stdout.contains("ShuffleReaderExec: stage=0"), "{stdout}");
    assert!(stdout.contains("output=result]"), "{stdout}");
}

#[test]
fn bad_input_gives_one_clear_error() {
    assert_clean_error(
        &fairway(&["sql", "-c", "select * from missing_table"]),
        "missing_table",
    );
    assert_clean_error(&fairway(&["sql", "-c", "selec 1"]), "SQL syntax error");
    assert_clean_error(
        &fairway(&[
            "sql",
            "--table",
            "t=/no/such/file.parquet",
            "-c",
            "select 1",
        ]),
        "/no/such/file.parquet",
    );
    assert_clean_error(
        &fairway(&["sql", "--table", "t", "-c", "select 1"]),
        "NAME=PATH",
    );
    assert_clean_error(
        &fairway(&["sql", "-f", "/no/such/script.sql"]),
        "/no/such/script.sql",
    );
    assert_clean_error(
        &fairway(&["sql", "--conf", "fairway.nope=1", "-c", "select 1"]),
        "fairway.nope",
    );
    assert_clean_error(
        &fairway(&["sql", "--shuffle-memory", "lots", "-c", "select 1"]),
        "--shuffle-memory",
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, b"this is not parquet").unwrap();
    assert_clean_error(
        &fairway(&[
            "sql",
            "--table",
            &format!("t={}", bad.display()),
            "-c",
            "select * from t",
        ]),
        "bad.parquet",
    );
}

#[test]
fn the_shell_reads_multi_line_statements() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fairway"))
        .args(["sql", "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"select 1\n  + 1 as two;\nselect nope;\nselect 'still here' as s;\n\\q\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("two\n2\n"), "{stdout}");
    assert!(
        stdout.contains("still here"),
        "the shell survives errors: {stdout}"
    );
    assert!(stderr.contains("error: "), "{stderr}");
}

#[test]
fn tpch_gen_writes_parquet_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("sf");
    let out = fairway(&[
        "tpch",
        "gen",
        "--sf",
        "0.001",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for table in [
        "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier",
    ] {
        assert!(out_dir.join(format!("{table}.parquet")).exists(), "{table}");
    }
    let count = fairway(&[
        "sql",
        "--tables",
        out_dir.to_str().unwrap(),
        "--format",
        "csv",
        "-c",
        "select count(*) as n from nation",
    ]);
    assert_eq!(text(&count.stdout), "n\n25\n");
    assert_clean_error(
        &fairway(&[
            "tpch",
            "gen",
            "--sf",
            "0",
            "--out",
            out_dir.to_str().unwrap(),
        ]),
        "scale factor",
    );
}

#[test]
fn run_executes_scripts_concurrently_with_their_own_pools() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.sql");
    let b = dir.path().join("b.sql");
    std::fs::write(
        &a,
        "select count(*) from orders;\nSET fairway.scheduler.pool = 'dash';\nselect count(*) from lineitem;\n",
    )
    .unwrap();
    std::fs::write(&b, "select count(*) from nation;\n").unwrap();
    let log = dir.path().join("events.jsonl");
    let out = fairway(&[
        "run",
        "--tables",
        "testdata/tpch-sf0.01",
        "--scheduler-mode",
        "fair",
        "--pool",
        "etl",
        "--event-log",
        log.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Each line names its statement; the SET line is quiet.
    assert!(
        stdout.contains("a.sql #1 [pool etl] SELECT count(*) FROM orders: 1 row in"),
        "{stdout}"
    );
    assert!(!stdout.contains("a.sql #2"), "{stdout}");
    assert!(
        stdout.contains("a.sql #3 [pool dash] SELECT count(*) FROM lineitem: 1 row in"),
        "{stdout}"
    );
    assert!(
        stdout.contains("b.sql #1 [pool etl] SELECT count(*) FROM nation: 1 row in"),
        "{stdout}"
    );
    let events = std::fs::read_to_string(&log).unwrap();
    let starts: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("\"job_start\""))
        .collect();
    assert_eq!(starts.len(), 3, "{events}");
    assert!(
        starts.iter().any(|l| l.contains("\"pool\":\"dash\"")),
        "{events}"
    );
    for line in events.lines() {
        assert!(line.starts_with("{\"event\":\""), "{line}");
        assert!(line.contains("\"time_us\":"), "{line}");
    }
    assert!(events.contains("\"event\":\"task_end\""));
    assert!(events.contains("\"event\":\"stage_completed\""));
}

#[test]
fn allocation_file_problems_are_reported_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("fair.xml");
    std::fs::write(
        &xml,
        "<allocations>\n<pool name=\"etl\">\n<schedulingMode>ROUND_ROBIN</schedulingMode>\n</pool>\n</allocations>\n",
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut v = vec![
            "sql".to_string(),
            "--scheduler-mode".into(),
            "fair".into(),
            "--allocation-file".into(),
            xml.to_str().unwrap().into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["-c".to_string(), "select 1".to_string()]);
        v
    };
    let strict = fairway(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_clean_error(&strict, "etl");
    let stderr = text(&strict.stderr);
    assert!(
        stderr.contains("schedulingMode") && stderr.contains("ROUND_ROBIN"),
        "{stderr}"
    );
    assert!(stderr.contains("fair.xml"), "{stderr}");

    let lenient = fairway(
        &args(&["--conf", "fairway.scheduler.allocation.strict=false"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(lenient.status.success(), "{}", text(&lenient.stderr));
    assert!(
        text(&lenient.stderr).contains("warning: "),
        "{}",
        text(&lenient.stderr)
    );

    std::fs::write(&xml, "<allocations>\n<pool name=\"x\">\n</allocations>\n").unwrap();
    let malformed = fairway(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_clean_error(&malformed, "fair.xml");
    assert!(
        text(&malformed.stderr).contains("line"),
        "{}",
        text(&malformed.stderr)
    );

    assert_clean_error(
        &fairway(&["sql", "--scheduler-mode", "roundrobin", "-c", "select 1"]),
        "--scheduler-mode",
    );
}

#[test]
fn timeline_renders_an_event_log_as_html() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let html = dir.path().join("timeline.html");
    let out = fairway(&[
        "sql",
        "--event-log",
        log.to_str().unwrap(),
        "-c",
        "select o_orderstatus, count(*) as n from orders group by o_orderstatus",
        "--tables",
        "testdata/tpch-sf0.01",
        "--slots",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = fairway(&[
        "timeline",
        log.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("timeline.html"), "{stderr}");
    assert!(stderr.contains("utilisation"), "{stderr}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"), "{page}");
    assert!(page.contains("utilisation"), "{page}");
    assert!(page.contains("<rect class=\"task\""), "{page}");
    // Only the page is left in the folder: the temp file was renamed.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let missing = dir.path().join("no-such-log.jsonl");
    assert_clean_error(
        &fairway(&[
            "timeline",
            missing.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
        ]),
        "no-such-log.jsonl",
    );
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"event\":\"job_start\"\n").unwrap();
    assert_clean_error(
        &fairway(&[
            "timeline",
            bad.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
        ]),
        "line 1",
    );
}

#[test]
fn bench_tpch_checks_answers_and_writes_json_and_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sf0.01");
    let json = dir.path().join("bench.json");
    let plot = dir.path().join("bench.svg");
    let out = fairway(&[
        "bench",
        "tpch",
        "--sf",
        "0.01",
        "--data",
        data.to_str().unwrap(),
        "--queries",
        "1,6,13",
        "--iterations",
        "1",
        "--slots",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("TPC-H SF 0.01 generated in"), "{stderr}");
    assert!(
        stdout.contains("TPC-H SF 0.01: 2 slots, 4 partitions, median of 1 run"),
        "{stdout}"
    );
    for line in ["Q01", "Q06", "Q13", "geomean"] {
        assert!(stdout.contains(line), "{stdout}");
    }
    assert!(
        stdout.contains("answers: 6 checked against each other: all match"),
        "{stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["test"], "power");
    assert_eq!(report["settings"]["scale_factor"], 0.01);
    assert_eq!(report["settings"]["queries"], serde_json::json!([1, 6, 13]));
    assert_eq!(report["settings"]["slots"], 2);
    assert_eq!(report["settings"]["partitions"], 4);
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(
        report["versions"]["datafusion"]
            .as_str()
            .unwrap()
            .starts_with("55.")
    );
    assert_eq!(report["verification"]["all_match"], true);
    let measurements = report["measurements"].as_array().unwrap();
    assert_eq!(measurements.len(), 6);
    for engine in ["fairway", "datafusion"] {
        for query in [1, 6, 13] {
            let m = measurements
                .iter()
                .find(|m| m["engine"] == engine && m["query"] == query)
                .unwrap_or_else(|| panic!("no measurement of Q{query} on {engine}"));
            assert!(m["elapsed_s"].as_f64().unwrap() > 0.0);
        }
    }
    // Q1 has 4 groups at any scale factor.
    assert!(
        measurements
            .iter()
            .all(|m| m["query"] != 1 || m["rows"] == 4)
    );
    let ratio = report["summary"]["ratio"].as_f64().unwrap();
    let geo = &report["summary"]["geometric_mean_s"];
    let expected = geo["fairway"].as_f64().unwrap() / geo["datafusion"].as_f64().unwrap();
    assert!((ratio - expected).abs() < 1e-9);

    let svg = std::fs::read_to_string(&plot).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the chart parses as XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let bars = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("bar"))
        .count();
    assert_eq!(bars, 6);

    // The throughput test reuses the data: 2 streams of 2 queries per engine.
    let out = fairway(&[
        "bench",
        "tpch",
        "--sf",
        "0.01",
        "--data",
        data.to_str().unwrap(),
        "--queries",
        "3,6",
        "--iterations",
        "1",
        "--slots",
        "2",
        "--streams",
        "2",
        "--scheduler-mode",
        "fair",
        "--json",
        json.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("TPC-H SF 0.01 reused from"), "{stderr}");
    assert!(
        stdout.contains("throughput: 2 concurrent streams"),
        "{stdout}"
    );
    assert!(stdout.contains("fairway: 4 queries per run"), "{stdout}");
    assert!(stdout.contains("queries/hour"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["test"], "throughput");
    assert_eq!(report["settings"]["scheduler_mode"], "fair");
    let measurements = report["measurements"].as_array().unwrap();
    assert_eq!(measurements.len(), 8);
    // Stream 1 runs the specification's stream-1 order (21, 3, 18, 5, 11,
    // 7, 6, ...), stream 2 its stream-2 order (6, 17, 14, ..., 3, ...).
    let first = |stream: u64| {
        measurements
            .iter()
            .filter(|m| m["engine"] == "fairway" && m["stream"] == stream)
            .min_by(|a, b| {
                a["start_s"]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b["start_s"].as_f64().unwrap())
            })
            .unwrap()["query"]
            .clone()
    };
    assert_eq!(first(0), 3);
    assert_eq!(first(1), 6);
    assert_eq!(report["summary"]["throughput"].as_array().unwrap().len(), 2);
}

#[test]
fn bench_tpch_rejects_bad_options() {
    assert_clean_error(
        &fairway(&["bench", "tpch", "--sf", "0.01", "--queries", "1,23"]),
        "option --queries: there is no TPC-H query 23",
    );
    assert_clean_error(
        &fairway(&[
            "bench",
            "tpch",
            "--sf",
            "0.01",
            "--engines",
            "fairway,spark",
        ]),
        "option --engines: unknown engine 'spark'",
    );
    assert_clean_error(
        &fairway(&["bench", "tpch", "--sf", "0.01", "--iterations", "0"]),
        "option --iterations",
    );
}

#[test]
fn ctrl_c_cancels_the_running_statement_and_the_shell_stays() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fairway"))
        .args(["sql", "--format", "csv", "--slots", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Runs for minutes unless cancelled.
    stdin
        .write_all(
            b"select k % 7 as g, count(*) from (select value as k from \
              generate_series(1, 30000000000)) group by 1;\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    // Give the shell time to read the statement and start it: nothing it
    // prints shows that from outside (the event log is written at job
    // ends). Too short a wait fails the test (the signal is lost and the
    // statement runs past DEADLINE); it cannot make it pass.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    stdin
        .write_all(b"select 'still here' as s;\n\\q\n")
        .unwrap();
    drop(stdin);
    let out = finish(child, "the shell after Ctrl-C");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "the shell exits normally: {stderr}");
    assert!(
        stderr.contains("cancelled by Ctrl-C"),
        "the statement was cancelled: {stderr}"
    );
    // The long statement printed nothing: it was cancelled, not finished;
    // then the next statement ran.
    assert_eq!(stdout, "s\nstill here\n", "the shell went on: {stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Runs fairway with `args` and checks for a clean failure: non-zero exit,
/// an `error:` line naming `source`, and no panic anywhere.
fn assert_names_source(args: &[&str], source: &str) -> String {
    let out = fairway(args);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "{args:?} must fail; stdout: {}",
        text(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        stderr.contains("error: ") && stderr.contains(source),
        "{args:?}: the error names {source}: {stderr}"
    );
    stderr
}

#[test]
fn bad_input_corpus_gives_clear_errors() {
    let bad = "testdata/bad";
    // Table files that cannot be read: at registration or while reading.
    for (file, query) in [
        ("truncated.parquet", "select * from t"),
        ("corrupt.parquet", "select * from t"),
        ("ragged.csv", "select * from t"),
        ("ragged_late.csv", "select sum(a) from t"),
        ("mixed_schema", "select * from t"),
        ("no_such_file.parquet", "select * from t"),
    ] {
        let table = format!("t={bad}/{file}");
        for slots in ["1", "2"] {
            assert_names_source(
                &["sql", "--slots", slots, "--table", &table, "-c", query],
                file,
            );
        }
    }
    // --tables DIR stops at the first parquet or CSV table that cannot be
    // registered; a JSON file that is no table (the event log that is not
    // UTF-8) is skipped with a warning naming it.
    let stderr = assert_names_source(&["sql", "--tables", bad, "-c", "select 1"], "mixed_schema");
    assert!(
        stderr.contains("events_invalid_utf8.jsonl is not read as a table"),
        "{stderr}"
    );
    let folder = assert_names_source(
        &[
            "sql",
            "--table",
            &format!("t={bad}/mixed_schema"),
            "-c",
            "select 1",
        ],
        "mixed_schema",
    );
    assert_eq!(folder.lines().count(), 1, "one line: {folder}");
    let stderr = assert_names_source(
        &[
            "sql",
            "--table",
            &format!("t={bad}/corrupt.parquet"),
            "-c",
            "select * from t",
        ],
        "stage 0 task 0 (reading",
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    // A row found wrong while reading names its line too.
    let stderr = assert_names_source(
        &[
            "sql",
            "--table",
            &format!("t={bad}/ragged_late.csv"),
            "-c",
            "select sum(a) from t",
        ],
        "line 1051",
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    // SQL files.
    assert_names_source(
        &[
            "sql",
            "--tables",
            "testdata/tpch-sf0.01",
            "-f",
            &format!("{bad}/syntax_error.sql"),
        ],
        "syntax_error.sql",
    );
    assert_names_source(
        &[
            "sql",
            "--tables",
            "testdata/tpch-sf0.01",
            "-f",
            &format!("{bad}/unknown_column.sql"),
        ],
        "no_such_column",
    );
    assert_names_source(
        &["sql", "-f", &format!("{bad}/no_such_script.sql")],
        "no_such_script.sql",
    );
    assert_names_source(
        &["run", &format!("{bad}/syntax_error.sql")],
        "syntax_error.sql",
    );
    // Allocation files.
    for file in ["malformed_allocation.xml", "bad_weight_allocation.xml"] {
        let path = format!("{bad}/{file}");
        assert_names_source(
            &[
                "sql",
                "--scheduler-mode",
                "fair",
                "--allocation-file",
                &path,
                "-c",
                "select 1",
            ],
            file,
        );
    }
    assert_names_source(
        &["sql", "--table", "t=testdata/bad", "-c", "select * from t"],
        "testdata/bad",
    );
    // Feature specs: the spec, its line and the method at fault.
    let stderr = assert_names_source(
        &["features", "build", &format!("{bad}/invalid_features.toml")],
        "invalid_features.toml:17: method 'spend' reads unknown table 'orderz'",
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert_names_source(
        &[
            "features",
            "build",
            &format!("{bad}/invalid_features_syntax.toml"),
        ],
        "invalid_features_syntax.toml:3",
    );
    assert!(
        !workspace()
            .join("target/bad/invalid_features.parquet")
            .exists(),
        "no output from a spec that fails its checks"
    );
}

#[test]
fn an_unreadable_folder_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("t.csv"), "a\n1\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&locked).is_ok() {
        // Root reads whatever the mode says: nothing to test.
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: this user can read a folder with mode 000 (root?)");
        return;
    }
    let table = format!("t={}", locked.display());
    assert_names_source(
        &["sql", "--table", &table, "-c", "select * from t"],
        "locked",
    );
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn cluster_standalone_runs_the_same_sql_as_the_local_engine() {
    let args = |cluster: bool| {
        let mut args = vec![
            "sql",
            "--slots",
            "2",
            "--format",
            "csv",
            "--tables",
            "testdata/tpch-sf0.01",
            "-f",
            "testdata/tpch/queries/q05.sql",
            "-f",
            "testdata/tpch/queries/q18.sql",
        ];
        if cluster {
            args.extend(["--cluster", "standalone"]);
        }
        args
    };
    let local = fairway(&args(false));
    assert!(local.status.success(), "{}", text(&local.stderr));
    let on_cluster = fairway(&args(true));
    let stderr = text(&on_cluster.stderr);
    assert!(on_cluster.status.success(), "{stderr}");
    assert!(!text(&local.stdout).is_empty());
    assert_eq!(text(&on_cluster.stdout), text(&local.stdout));

    assert_clean_error(
        &fairway(&["sql", "--cluster", "spark://x:7077", "-c", "select 1"]),
        "option --cluster: 'spark://x:7077': expected 'standalone' or df://HOST:PORT",
    );
    assert_clean_error(
        &fairway(&[
            "sql",
            "--cluster",
            "standalone",
            "--cluster-slots",
            "0",
            "-c",
            "select 1",
        ]),
        "option --cluster-slots: must be at least 1",
    );
}

#[test]
fn option_errors_name_the_option_typed_not_the_setting() {
    for (args, needle) in [
        (&["--slots", "0"][..], "'--slots <N>'"),
        (&["--slots", "5000"][..], "'--slots <N>'"),
        (&["--partitions", "0"][..], "'--partitions <N>'"),
        (
            &["--memory-limit", "lots"][..],
            "option --memory-limit: expected a size",
        ),
        (
            &["--pool", ""][..],
            "option --pool: a pool name cannot be empty",
        ),
    ] {
        let mut all = vec!["sql"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-c", "select 1"]);
        let out = fairway(&all);
        assert_clean_error(&out, needle);
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("fairway."), "{args:?}: {stderr}");
    }
}

#[test]
fn features_build_prints_a_summary_and_reuses_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("customer.parquet");
    let out_arg = out.to_string_lossy().to_string();
    let build = |extra: &[&str]| {
        let mut args = vec![
            "features",
            "build",
            "testdata/features/customer.toml",
            "--out",
            &out_arg,
            "--slots",
            "2",
        ];
        args.extend_from_slice(extra);
        fairway(&args)
    };
    let first = build(&[]);
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        stdout.starts_with("method           pool      rows  columns  queued s  ran s  status"),
        "{stdout}"
    );
    assert!(
        stdout.contains("order_stats      features  1000        4"),
        "{stdout}"
    );
    assert!(stdout.contains("12 built, 0 reused"), "{stdout}");
    assert!(stdout.contains("shared view customer_orders"), "{stdout}");
    assert!(out.is_file());

    let second = build(&[]);
    let stdout = text(&second.stdout);
    assert!(stdout.contains("0 built, 12 reused"), "{stdout}");
    assert!(stdout.contains("  reused\n"), "{stdout}");

    let log = dir.path().join("events.jsonl");
    let log_arg = log.to_string_lossy().to_string();
    let third = build(&["--force", "--event-log", &log_arg]);
    assert!(text(&third.stdout).contains("12 built, 0 reused"));
    // Read through the one event schema: the method's job is found by its
    // description, then followed by its id to its end.
    let events = fairway_observe::timeline::read_event_log(&log).expect("a valid event log");
    let brands = events
        .iter()
        .find_map(|e| match e {
            fairway_observe::Event::JobStart {
                job,
                description,
                pool,
                ..
            } if description == "feature method brands" => Some((*job, pool.clone())),
            _ => None,
        })
        .expect("jobs are named after methods");
    assert_eq!(brands.1, "features", "the method ran in its pool");
    assert!(
        events.iter().any(|e| matches!(e,
            fairway_observe::Event::JobEnd { job, status, .. }
                if *job == brands.0 && status == fairway_observe::events::status::SUCCEEDED)),
        "the method's job succeeded"
    );
}

#[test]
fn features_sources_can_be_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.parquet");
    let out_arg = out.to_string_lossy().to_string();
    let result = fairway(&[
        "features",
        "explain",
        "testdata/features/customer.toml",
        "--sources-dir",
        "/data/tpch-sf1",
        "--source",
        "nation=other/nation.csv",
        "--out",
        &out_arg,
    ]);
    let stdout = text(&result.stdout);
    assert!(
        stdout.contains("orders    /data/tpch-sf1/orders.parquet"),
        "{stdout}"
    );
    assert!(stdout.contains("nation    other/nation.csv"), "{stdout}");
    assert_clean_error(
        &fairway(&[
            "features",
            "explain",
            "testdata/features/customer.toml",
            "--source",
            "ordrs=x.parquet",
        ]),
        "the spec has no source 'ordrs'",
    );
}

#[test]
fn features_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("s.toml");
    std::fs::write(
        &spec,
        "key = \"k\"\n[[method]]\nname = \"m\"\nsql = \"select from\"\n",
    )
    .unwrap();
    assert_clean_error(
        &fairway(&["features", "build", &spec.to_string_lossy()]),
        "s.toml:3: method 'm': SQL does not parse",
    );
    assert_clean_error(
        &fairway(&["features", "explain", "no/such/spec.toml"]),
        "no/such/spec.toml",
    );
}

#[test]
fn every_help_has_an_example_and_explain_offers_no_cluster() {
    for command in [
        "",
        "sql",
        "run",
        "explain",
        "timeline",
        "features",
        "features build",
        "features explain",
        "tpch",
        "tpch gen",
        "connect",
        "bench",
        "bench tpch",
        "bench features",
    ] {
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.push("--help");
        let out = fairway(&args);
        let help = text(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(
            help.contains("Example:\n  fairway ") || help.contains("Examples:\n  fairway "),
            "{args:?} --help has no example:\n{help}"
        );
    }
    let explain = text(&fairway(&["explain", "--help"]).stdout);
    assert!(!explain.contains("--cluster <"), "{explain}");
    let sql = text(&fairway(&["sql", "--help"]).stdout);
    assert!(
        sql.contains("--cluster") && sql.contains("--maxrows"),
        "{sql}"
    );
    // --format lists its values.
    assert!(sql.contains("table") && sql.contains("ndjson"), "{sql}");
}

#[test]
fn warnings_reach_stderr_by_default() {
    let out = fairway(&[
        "sql",
        "--scheduler-mode",
        "fair",
        "--format",
        "csv",
        "-c",
        "set fairway.scheduler.pool = 'newpool'; select 1 as x",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: a job was submitted with scheduler pool \"newpool\""),
        "{stderr}"
    );
    // FAIRWAY_LOG=error silences them.
    let quiet = Command::new(env!("CARGO_BIN_EXE_fairway"))
        .args([
            "sql",
            "--scheduler-mode",
            "fair",
            "-c",
            "set fairway.scheduler.pool = 'newpool'; select 1 as x",
        ])
        .env("FAIRWAY_LOG", "error")
        .output()
        .unwrap();
    assert!(
        !text(&quiet.stderr).contains("warning:"),
        "{}",
        text(&quiet.stderr)
    );
}
