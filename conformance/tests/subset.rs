//! A fast subset of DataFusion's own sqllogictest suite on every test run
//! (and so on every CI run): files covering aggregates, joins (inner,
//! outer, semi/anti, null-aware), windows, subqueries, unions and NULL
//! semantics, each record run on plain DataFusion and on fairway's stage
//! engine. Every record that passes on DataFusion must pass on fairway.
//! The full suite is `cargo run --release -p fairway-conformance --bin
//! slt -- --summary` (see the README).

use std::process::Command;

const SUBSET: &[&str] = &[
    "aggregate.slt",
    "join_only.slt",
    "null_aware_anti_join.slt",
    "eliminate_outer_join.slt",
    "join_is_not_distinct_from.slt",
    "window_limits.slt",
    "in_list.slt",
    "subquery_sort.slt",
    "union_by_name.slt",
    "coalesce.slt",
    "nullif.slt",
    "pg_compat/pg_compat_null.slt",
    "limit.slt",
    "expr.slt",
    "subquery.slt",
    "cte.slt",
    "window_topn.slt",
    "repartition_subset_satisfaction.slt",
];

/// The numbers of the summary line, by name.
fn summary(line: &str) -> Vec<(String, usize)> {
    line.trim_start_matches("slt summary: ")
        .split(", ")
        .filter_map(|part| {
            let (name, n) = part.rsplit_once(' ')?;
            Some((name.to_string(), n.parse().ok()?))
        })
        .collect()
}

#[test]
fn the_subset_passes_on_fairway_wherever_it_passes_on_datafusion() {
    let details = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slt"));
    cmd.arg("--json").arg(details.path());
    for file in SUBSET {
        cmd.args(["--files", file]);
    }
    let out = cmd.output().expect("run slt");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "slt failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("slt summary: files "), "{stdout}");
    let counts = summary(last);
    let get = |name: &str| {
        counts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {name} in {last}"))
    };
    assert_eq!(get("files"), SUBSET.len(), "{last}");
    assert!(
        get("both") > 2000,
        "the subset runs thousands of records: {last}"
    );
    if get("datafusion-only") > 0 {
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(details.path()).unwrap()).unwrap();
        let failing: Vec<String> = report["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["class"] == "datafusion-only")
            .map(|r| {
                format!(
                    "{}:{}: {}\n    fairway: {}",
                    r["file"].as_str().unwrap_or_default(),
                    r["line"],
                    r["sql"].as_str().unwrap_or_default(),
                    r["fairway"][0].as_str().unwrap_or_default()
                )
            })
            .collect();
        panic!(
            "{last}\nrecords that pass on DataFusion but not on fairway:\n{}",
            failing.join("\n")
        );
    }
}
