//! Golden stage graphs: `fairway explain` of the 22 TPC-H queries against the
//! checked-in `testdata/stages/qNN.txt`. With `UPDATE_EXPECT=1` the files are
//! rewritten from the current output instead (see testdata/stages/README.md).

use std::path::{Path, PathBuf};

mod common;
use common::{fairway, text, workspace};

/// Stands for the workspace's absolute path in the checked-in files.
const WORKSPACE: &str = "<workspace>";

/// Lines shown around the first difference.
const CONTEXT: usize = 3;

/// `fairway explain` of one query with every setting that could differ by
/// machine pinned: slots, partitions (the default of both is the number of
/// cores) and the tables.
fn explain(query: &Path) -> String {
    let query = query.to_str().expect("query path is UTF-8");
    let out = fairway(&[
        "explain",
        "--tables",
        "testdata/tpch-sf0.01",
        "--slots",
        "2",
        "--partitions",
        "4",
        "-f",
        query,
    ]);
    assert!(
        out.status.success(),
        "fairway explain -f {query} failed: {}",
        text(&out.stderr)
    );
    let output = normalise(&text(&out.stdout));
    // The graph itself, from its first stage (or the first scalar
    // subquery's, which runs first): `explain` echoes the statement first,
    // whose text is the query file's.
    let start = [output.find(SUBQUERY_HEADER), output.find(STAGE_HEADER)]
        .into_iter()
        .flatten()
        .min();
    match start {
        Some(start) => output[start..].to_string(),
        None => output,
    }
}

const STAGE_HEADER: &str = "Stage 0 [tasks=";
const SUBQUERY_HEADER: &str = "scalar subquery 1, run first:";

/// Replaces the workspace's absolute path (scans print file paths without
/// the leading `/`, as object store paths) by [`WORKSPACE`].
fn normalise(output: &str) -> String {
    let mut output = output.to_string();
    let root = workspace();
    for root in [root.canonicalize().expect("workspace exists"), root] {
        let root = root.to_str().expect("workspace path is UTF-8");
        let root = root.trim_start_matches('/').trim_end_matches('/');
        if !root.is_empty() {
            output = output.replace(&format!("{root}/"), &format!("{WORKSPACE}/"));
        }
    }
    output
}

/// The first line where `expected` and `actual` differ, with a few lines of
/// each around it; `None` when they are equal.
fn first_difference(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let line = e
        .iter()
        .zip(&a)
        .position(|(e, a)| e != a)
        .unwrap_or(e.len().min(a.len()));
    let show = |lines: &[&str]| {
        let end = lines.len().min(line + CONTEXT);
        if line >= lines.len() {
            return "    (end of text)".to_string();
        }
        lines[line..end]
            .iter()
            .enumerate()
            .map(|(i, l)| format!("    {:>4} | {l}", line + i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut report = format!(
        "first difference at line {}:\n  expected:\n{}\n  actual:\n{}",
        line + 1,
        show(&e),
        show(&a)
    );
    if e.len() == a.len() && line == e.len() {
        // Same lines, different line endings or a missing final newline.
        report = "the texts differ only in line endings or the final newline".to_string();
    }
    Some(report)
}

fn queries() -> Vec<(String, PathBuf)> {
    (1..=22)
        .map(|n| {
            let name = format!("q{n:02}");
            let path = PathBuf::from(format!("testdata/tpch/queries/{name}.sql"));
            (name, path)
        })
        .collect()
}

#[test]
fn tpch_stage_graphs_match_the_checked_in_files() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1");
    let folder = workspace().join("testdata/stages");
    let mut failures = Vec::new();
    for (name, query) in queries() {
        let actual = explain(&query);
        assert!(
            actual.starts_with(STAGE_HEADER) || actual.starts_with(SUBQUERY_HEADER),
            "{name}: no stage graph in:\n{actual}"
        );
        let file = folder.join(format!("{name}.txt"));
        if update {
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(&file, &actual).unwrap();
            eprintln!("UPDATE_EXPECT=1: rewrote testdata/stages/{name}.txt");
            continue;
        }
        let expected = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{name}: cannot read {}: {e} (run with UPDATE_EXPECT=1 to write it)",
                file.display()
            )
        });
        if let Some(difference) = first_difference(&expected, &actual) {
            failures.push(format!(
                "{name}: stage graph differs from testdata/stages/{name}.txt; {difference}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 22 stage graphs changed (re-bless with UPDATE_EXPECT=1 if intended, \
         see testdata/stages/README.md):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn first_difference_names_the_line_and_shows_both_sides() {
    assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
    let report = first_difference("a\nb\nc\n", "a\nB\nc\n").unwrap();
    assert!(
        report.starts_with("first difference at line 2:"),
        "{report}"
    );
    assert!(
        report.contains("   2 | b") && report.contains("   2 | B"),
        "{report}"
    );
    let report = first_difference("a\nb\n", "a\n").unwrap();
    assert!(
        report.contains("at line 2") && report.contains("(end of text)"),
        "{report}"
    );
    let report = first_difference("a\n", "a").unwrap();
    assert!(report.contains("final newline"), "{report}");
}

#[test]
fn normalise_replaces_the_workspace_path() {
    let root = workspace().canonicalize().unwrap();
    let root = root.to_str().unwrap().trim_start_matches('/');
    let line = format!("file_groups={{[[{root}/testdata/x.parquet:0..10]]}}");
    assert_eq!(
        normalise(&line),
        "file_groups={[[<workspace>/testdata/x.parquet:0..10]]}"
    );
}
