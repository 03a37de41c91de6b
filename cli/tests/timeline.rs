//! `fairway timeline` on hostile event logs, and `--event-log` when the log
//! cannot be written.

use std::path::Path;
use std::process::Output;
use std::time::Instant;

mod common;
use common::{fairway, text, workspace};

fn timeline(log: &Path, html: &Path) -> Output {
    fairway(&[
        "timeline",
        log.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ])
}

/// An error is one `error:` line and exit status 1, never a panic.
fn assert_clean_error(out: &Output, needle: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

const LOG: &str = r#"{"event":"job_start","time_us":0,"job":1,"pool":"default","description":"select 1"}
{"event":"task_start","time_us":0,"job":1,"stage":0,"partition":0,"attempt":0,"pool":"default","slot":0}
{"event":"task_end","time_us":100,"job":1,"stage":0,"partition":0,"attempt":0,"pool":"default","slot":0,"duration_us":100,"rows":1,"bytes":8,"status":"succeeded"}
{"event":"job_end","time_us":100,"job":1,"pool":"default","description":"select 1","status":"succeeded"}
"#;

#[cfg(unix)]
#[test]
fn timeline_refuses_to_write_over_its_own_event_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    std::fs::write(&log, LOG).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let link = dir.path().join("page.html");
    std::os::unix::fs::symlink(&log, &link).unwrap();
    for output in [log.clone(), dir.path().join("sub/../events.jsonl"), link] {
        let stderr = assert_clean_error(&timeline(&log, &output), "is the event log");
        assert!(stderr.contains(output.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains(log.to_str().unwrap()), "{stderr}");
        assert_eq!(
            std::fs::read(&log).unwrap(),
            LOG.as_bytes(),
            "the log is intact"
        );
    }
    // Nothing else was left in the folder.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["events.jsonl", "page.html", "sub"]);
}

/// Every hostile log of testdata/bad (see its README) gives one clear error
/// naming the file and line, or renders within bounds.
#[test]
fn hostile_event_logs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("page.html");
    for (file, needle) in [
        (
            "events_slot_out_of_range.jsonl",
            "line 2: task_start: field `slot` is 4000000000, out of range: at most 9999",
        ),
        (
            "events_huge_time.jsonl",
            "line 2: job_end: field `time_us` is 18446744073709551615, out of range",
        ),
        (
            "events_huge_tasks.jsonl",
            "line 2: stage_submitted: field `tasks` is 1000000000000000, out of range",
        ),
        ("events_truncated_line.jsonl", "line 3: invalid JSON"),
        ("events_invalid_utf8.jsonl", "line 2: not valid UTF-8"),
        (
            "events_control_in_error.jsonl",
            "line 1: task_start: field `slot` must be a non-negative integer, got \"\\u{202e}\\u001b[2J\"",
        ),
    ] {
        let log = workspace().join("testdata/bad").join(file);
        // `timeline` fails the test if the command outlives DEADLINE.
        let stderr = assert_clean_error(&timeline(&log, &html), needle);
        assert!(stderr.contains(file), "{stderr}");
        assert!(
            !stderr.contains('\u{1b}') && !stderr.contains('\u{202e}'),
            "{stderr:?}"
        );
        assert!(!html.exists(), "{file}: no page");
    }
}

#[test]
fn overlapping_and_out_of_order_logs_render_within_100_percent() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("page.html");
    let log = workspace().join("testdata/bad/events_overlap_out_of_order.jsonl");
    let out = timeline(&log, &html);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Two tasks claim slot 0 for 0-1000 us: one slot, busy 1000 of 1000.
    assert!(
        stderr.contains("wall time 0.001 s, busy slot-time 0.001 s, 1 slot, utilisation 100.0%"),
        "{stderr}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("utilisation</span><span class=\"v\">100.0%"));
}

#[test]
fn control_characters_of_a_log_are_escaped_in_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("page.html");
    let log = workspace().join("testdata/bad/events_control_characters.jsonl");
    let out = timeline(&log, &html);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t')
                || ('\u{202a}'..='\u{202e}').contains(&c))
    );
    assert!(page.contains("select \\u{1b}[31mred\\u{1b}[0m \\u{202e}evil\\u{202c} from t\\u{0}"));
    assert!(page.contains("fail\\u{1b}]0;x\\u{7}ed"), "{page}");
}

/// 100,000 jobs took 52 s before the build became linear (with a build of
/// every job scanning every job and bar).
#[test]
fn a_log_of_100000_jobs_renders_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let html = dir.path().join("page.html");
    let mut text_log = String::new();
    for j in 0..100_000u64 {
        let t = j * 10;
        let slot = j % 8;
        let task = format!(
            "\"job\":{j},\"stage\":0,\"partition\":0,\"attempt\":0,\"pool\":\"p{}\",\"slot\":{slot}",
            j % 100
        );
        text_log.push_str(&format!(
            "{{\"event\":\"job_start\",\"time_us\":{t},\"job\":{j},\"pool\":\"p{p}\",\"description\":\"select {j}\"}}\n\
             {{\"event\":\"stage_submitted\",\"time_us\":{t},\"job\":{j},\"stage\":0,\"tasks\":1}}\n\
             {{\"event\":\"task_start\",\"time_us\":{t},{task}}}\n\
             {{\"event\":\"task_end\",\"time_us\":{e},{task},\"duration_us\":40,\"rows\":1,\"bytes\":8,\"status\":\"succeeded\"}}\n\
             {{\"event\":\"stage_completed\",\"time_us\":{e},\"job\":{j},\"stage\":0}}\n\
             {{\"event\":\"job_end\",\"time_us\":{e},\"job\":{j},\"pool\":\"p{p}\",\"description\":\"select {j}\",\"status\":\"succeeded\"}}\n",
            p = j % 100,
            e = t + 40,
        ));
    }
    std::fs::write(&log, text_log).unwrap();
    let start = Instant::now();
    let out = timeline(&log, &html);
    let elapsed = start.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // About 18 s for the debug binary on an idle machine; the quadratic
    // build took far longer than this bound.
    assert!(elapsed.as_secs() < 120, "100,000 jobs took {elapsed:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("jobs</span><span class=\"v\">100000<"));
    assert_eq!(page.matches("<tr class=\"job\">").count(), 100_000);
}

/// `/dev/full` opens but fails every write with ENOSPC: the statements still
/// print their results, one warning names the file and the error, and the
/// command ends with an error.
#[cfg(target_os = "linux")]
#[test]
fn an_event_log_that_cannot_be_written_warns_once_and_fails_the_command() {
    let assert_failed_log = |out: &Output| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr
                .matches("warning: cannot write event log /dev/full: No space left on device")
                .count(),
            1,
            "{stderr}"
        );
        let last = stderr.lines().last().unwrap();
        assert!(
            last.starts_with("error: cannot write event log /dev/full")
                && last.ends_with("the event log is incomplete"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let out = fairway(&[
        "sql",
        "--event-log",
        "/dev/full",
        "--tables",
        "testdata/tpch-sf0.01",
        "--format",
        "csv",
        "-c",
        "select count(*) as n from nation",
        "-c",
        "select 42 as answer",
    ]);
    assert_eq!(text(&out.stdout), "n\n25\nanswer\n42\n");
    assert_failed_log(&out);

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("a.sql");
    std::fs::write(&script, "select count(*) from region;").unwrap();
    let out = fairway(&[
        "run",
        "--event-log",
        "/dev/full",
        "--tables",
        "testdata/tpch-sf0.01",
        script.to_str().unwrap(),
    ]);
    assert!(
        text(&out.stdout)
            .contains("a.sql #1 [pool default] SELECT count(*) FROM region: 1 row in ")
    );
    assert_failed_log(&out);

    let table = dir.path().join("features.parquet");
    let out = fairway(&[
        "features",
        "build",
        "testdata/features/customer.toml",
        "--out",
        table.to_str().unwrap(),
        "--slots",
        "2",
        "--event-log",
        "/dev/full",
    ]);
    assert!(
        text(&out.stdout).contains("12 built, 0 reused"),
        "{}",
        text(&out.stderr)
    );
    assert!(table.exists());
    assert_failed_log(&out);
}
