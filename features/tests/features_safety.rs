//! Feature builds never destroy what is not theirs: an output onto one of
//! the build's inputs is refused before any job runs; the stage folder
//! loses only fairway's own entries; links are never followed; temporaries
//! are fresh random names; concurrent builds of one output are serialised
//! by a lock; keys have one exact type and no NULLs unless allowed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::features::{options, tpch_file, workspace, write_spec};
use common::read_parquet;
use fairway_engine::arrow::datatypes::DataType;
use fairway_features::{BuildOptions, FeatureSpec, build_features};
use fairway_files::LockFile;

const SPEND: &str = r#"
[[method]]
name = "spend"
sql = "select o_custkey as c_custkey, sum(o_totalprice) as spend from orders group by o_custkey"
"#;

/// `dir/data/` with copies of the TPC-H `tables`.
fn data_dir(dir: &Path, tables: &[&str]) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for table in tables {
        std::fs::copy(tpch_file(table), data.join(format!("{table}.parquet"))).unwrap();
    }
    data
}

/// Every file under `dir` (links not followed) with its bytes, and every
/// link with its target: to tell that nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(path, target.to_string_lossy().as_bytes().to_vec());
            } else if meta.is_dir() {
                out.insert(path.clone(), b"<dir>".to_vec());
                todo.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Builds `spec` into `out` expecting an error; checks that no job ran
/// (the event log, kept outside the spec's folder, has none). Returns the
/// error's text.
async fn refused(spec: &Path, out: &Path) -> String {
    refused_with(spec, options(out)).await
}

async fn refused_with(spec: &Path, mut opts: BuildOptions) -> String {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("events.jsonl");
    opts.event_log = Some(log.clone());
    let spec = FeatureSpec::load(spec).unwrap();
    let e = build_features(&spec, &opts)
        .await
        .expect_err("the build must be refused")
        .to_string();
    let events = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!events.contains("job_start"), "a job ran before: {e}");
    e
}

fn spec_text(sources: &str, methods: &str) -> String {
    format!("key = \"c_custkey\"\n[sources]\n{sources}\n{methods}")
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_onto_a_source_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path(), &["orders"]);
    let spec = dir.path().join("f.toml");
    std::fs::write(&spec, spec_text("orders = \"data/orders.parquet\"", SPEND)).unwrap();
    let before = snapshot(dir.path());
    let source = data.join("orders.parquet");
    let e = refused(&spec, &source).await;
    assert!(
        e.contains("would overwrite source 'orders'") && e.contains(&show(&source)),
        "{e}"
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "nothing changed, nothing added"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_inside_a_source_folder_or_a_globs_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path(), &["orders"]);
    let spec = dir.path().join("f.toml");
    let out = data.join("features.parquet");
    for source in ["data", "data/*.parquet", "data/o*s.parquet"] {
        std::fs::write(&spec, spec_text(&format!("orders = \"{source}\""), SPEND)).unwrap();
        let before = snapshot(dir.path());
        let e = refused(&spec, &out).await;
        assert!(
            e.contains(&show(&out))
                && e.contains("would lie inside source 'orders'")
                && e.contains(&show(&dir.path().join(source))),
            "{source}: {e}"
        );
        assert_eq!(snapshot(dir.path()), before, "{source}");
    }
    // Its stage folder and lock may not land in the folder either.
    let e = refused(&spec, &data.join("sub/features.parquet")).await;
    assert!(e.contains("inside source 'orders'"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_onto_the_spec_or_a_sql_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    data_dir(dir.path(), &["orders"]);
    std::fs::create_dir(dir.path().join("sql")).unwrap();
    let sql_file = dir.path().join("sql/spend.sql");
    std::fs::write(
        &sql_file,
        "select o_custkey as c_custkey, count(*) as n from v group by o_custkey",
    )
    .unwrap();
    let view_sql = dir.path().join("sql/v.sql");
    std::fs::write(&view_sql, "select * from orders").unwrap();
    let spec = dir.path().join("f.toml");
    std::fs::write(
        &spec,
        spec_text(
            "orders = \"data/orders.parquet\"",
            "[[view]]\nname = \"v\"\nsql_file = \"sql/v.sql\"\n\
             [[method]]\nname = \"spend\"\nsql_file = \"sql/spend.sql\"\n",
        ),
    )
    .unwrap();
    let before = snapshot(dir.path());
    let e = refused(&spec, &spec).await;
    assert!(
        e.contains("would overwrite the spec") && e.matches(&show(&spec)).count() == 2,
        "{e}"
    );
    let e = refused(&spec, &sql_file).await;
    assert!(
        e.contains("would overwrite the sql_file of method 'spend'")
            && e.contains(&show(&sql_file)),
        "{e}"
    );
    let e = refused(&spec, &view_sql).await;
    assert!(
        e.contains("would overwrite the sql_file of view 'v'") && e.contains(&show(&view_sql)),
        "{e}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_onto_a_source_through_a_link_or_dots_is_refused_naming_both() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path(), &["orders"]);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    symlink(&data, dir.path().join("alias")).unwrap();
    symlink(data.join("orders.parquet"), dir.path().join("link.parquet")).unwrap();
    let spec = dir.path().join("f.toml");
    std::fs::write(&spec, spec_text("orders = \"data/orders.parquet\"", SPEND)).unwrap();
    let source = data.join("orders.parquet");
    let before = snapshot(dir.path());
    for out in [
        dir.path().join("alias/orders.parquet"),
        dir.path().join("link.parquet"),
        dir.path().join("sub/../data/orders.parquet"),
        dir.path().join("alias/../data/./orders.parquet"),
    ] {
        let e = refused(&spec, &out).await;
        assert!(
            e.starts_with(&show(&out))
                && e.contains("would overwrite source 'orders'")
                && e.contains(&show(&source)),
            "{}: {e}",
            out.display()
        );
        assert_eq!(snapshot(dir.path()), before, "{}", out.display());
    }
    // --source NAME=PATH (relative to the working folder) is checked too.
    let mut spec_value = FeatureSpec::load(&spec).unwrap();
    spec_value
        .set_source("orders", &show(&dir.path().join("alias/orders.parquet")))
        .unwrap();
    let e = build_features(&spec_value, &options(&source))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("would overwrite source 'orders'"), "{e}");
    assert_eq!(snapshot(dir.path()), before);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_or_a_stage_folder_that_is_a_link_is_refused() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "f.toml",
        &format!("key = \"c_custkey\"\n{SPEND}"),
    );
    let precious = tempfile::tempdir().unwrap();
    std::fs::write(precious.path().join("mine.txt"), b"precious").unwrap();
    let keep = snapshot(precious.path());

    let out = dir.path().join("out.parquet");
    symlink(precious.path().join("mine.txt"), &out).unwrap();
    let e = refused(&spec, &out).await;
    assert!(e.contains("output is a symbolic link"), "{e}");
    std::fs::remove_file(&out).unwrap();

    std::fs::create_dir(&out).unwrap();
    let e = refused(&spec, &out).await;
    assert!(e.contains("output is a folder"), "{e}");
    std::fs::remove_dir(&out).unwrap();

    let stage = dir.path().join("out.parquet.fairway-stage");
    symlink(precious.path(), &stage).unwrap();
    let e = refused(&spec, &out).await;
    assert!(
        e.contains(&show(&stage)) && e.contains("stage folder is a symbolic link"),
        "{e}"
    );
    assert!(!out.exists());
    assert_eq!(snapshot(precious.path()), keep);
}

/// The names of a stage folder's entries.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_entries_of_the_stage_folder_survive_builds() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let stage = dir.path().join("out.parquet.fairway-stage");
    let body = |sql: &str| {
        format!(
            "key = \"c_custkey\"\n[[method]]\nname = \"spend\"\nsql = \"{sql}\"\n\
             [[method]]\nname = \"balance\"\nsql = \"select c_custkey, c_acctbal from customer\"\n"
        )
    };
    let spec = write_spec(
        dir.path(),
        "f.toml",
        &body("select o_custkey as c_custkey, sum(o_totalprice) as spend from orders group by 1"),
    );
    build_features(&FeatureSpec::load(&spec).unwrap(), &options(&out))
        .await
        .unwrap();
    let first = entries(&stage);
    assert_eq!(first.len(), 3, "two results and the manifest: {first:?}");

    // A user's folder, file, link to a folder outside, and a folder named
    // like a result that fairway never recorded.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious.txt"), b"precious").unwrap();
    std::fs::create_dir(stage.join("mine")).unwrap();
    std::fs::write(stage.join("mine/notes.txt"), b"mine").unwrap();
    std::fs::write(stage.join("notes.txt"), b"also mine").unwrap();
    symlink(outside.path(), stage.join("link")).unwrap();
    std::fs::create_dir(stage.join("spend-0123456789abcdef")).unwrap();
    std::fs::write(stage.join("spend-0123456789abcdef/part-0.parquet"), b"x").unwrap();
    let planted = ["mine", "notes.txt", "link", "spend-0123456789abcdef"];
    let keep_outside = snapshot(outside.path());
    let planted_snapshot = |stage: &Path| {
        let all = snapshot(stage);
        all.into_iter()
            .filter(|(p, _)| {
                let rel = p.strip_prefix(stage).unwrap().to_string_lossy().to_string();
                planted
                    .iter()
                    .any(|n| rel == *n || rel.starts_with(&format!("{n}/")))
            })
            .collect::<BTreeMap<_, _>>()
    };
    let keep = planted_snapshot(&stage);
    assert_eq!(keep.len(), 6);

    // A changed method (its old result is stale), then a forced rebuild.
    let spec = write_spec(
        dir.path(),
        "f.toml",
        &body("select o_custkey as c_custkey, max(o_totalprice) as spend from orders group by 1"),
    );
    for force in [false, true] {
        let mut opts = options(&out);
        opts.force = force;
        let summary = build_features(&FeatureSpec::load(&spec).unwrap(), &opts)
            .await
            .unwrap();
        assert_eq!(summary.rows, 1500);
        assert_eq!(planted_snapshot(&stage), keep, "force={force}");
        assert!(
            std::fs::symlink_metadata(stage.join("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(snapshot(outside.path()), keep_outside);
        let names = entries(&stage);
        assert_eq!(
            names.len(),
            3 + planted.len(),
            "old results removed: {names:?}"
        );
    }
    let names = entries(&stage);
    let old_spend = first.iter().find(|n| n.starts_with("spend-")).unwrap();
    assert!(
        !names.contains(old_spend),
        "the stale result is gone: {names:?}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_at_old_predictable_temporary_names_are_not_followed() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    let outside = tempfile::tempdir().unwrap();
    for name in ["a.txt", "b.txt"] {
        std::fs::write(outside.path().join(name), b"precious").unwrap();
    }
    std::fs::create_dir(outside.path().join("folder")).unwrap();
    std::fs::write(outside.path().join("folder/c.txt"), b"precious").unwrap();
    let keep = snapshot(outside.path());
    let out = dir.path().join("out.parquet");
    let stage = dir.path().join("out.parquet.fairway-stage");
    std::fs::create_dir(&stage).unwrap();
    // The names fairway used to write through: `.OUT.PID.tmp` beside the
    // output, `.manifest.json.PID.tmp` and `view-NAME-PID` in the stage.
    let links = [
        (dir.path().join(format!(".out.parquet.{pid}.tmp")), "a.txt"),
        (stage.join(format!(".manifest.json.{pid}.tmp")), "b.txt"),
        (stage.join(format!("view-o-{pid}")), "folder"),
    ];
    for (link, target) in &links {
        symlink(outside.path().join(target), link).unwrap();
    }
    let spec = write_spec(
        dir.path(),
        "f.toml",
        r#"key = "c_custkey"
[build]
view_memory = "1KiB"
[[view]]
name = "o"
sql = "select o_custkey as c_custkey, o_totalprice from orders"
[[method]]
name = "spend"
sql = "select c_custkey, sum(o_totalprice) as spend from o group by c_custkey"
[[method]]
name = "largest"
sql = "select c_custkey, max(o_totalprice) as largest from o group by c_custkey"
"#,
    );
    let summary = build_features(&FeatureSpec::load(&spec).unwrap(), &options(&out))
        .await
        .unwrap();
    assert!(
        !summary.views[0].in_memory,
        "the view went to the stage area"
    );
    assert_eq!(summary.rows, 1000);
    assert_eq!(
        snapshot(outside.path()),
        keep,
        "the links' targets unchanged"
    );
    for (link, _) in &links {
        assert!(
            std::fs::symlink_metadata(link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{} is left alone",
            link.display()
        );
    }
    assert_eq!(
        read_parquet(&out)
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>(),
        1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_while_another_holds_the_output_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let spec = write_spec(
        dir.path(),
        "f.toml",
        &format!("key = \"c_custkey\"\n{SPEND}"),
    );
    let lock_path = dir.path().join("out.parquet.fairway-lock");
    let held = LockFile::acquire(&lock_path, "test").unwrap();
    let start = Instant::now();
    let e = refused(&spec, &out).await;
    assert!(start.elapsed() < Duration::from_secs(20), "at once");
    assert!(
        e.contains(&format!(
            "output {} is being written by fairway process {}",
            show(&out),
            std::process::id()
        )),
        "{e}"
    );
    assert!(!out.exists());
    assert!(
        !dir.path().join("out.parquet.fairway-stage").exists(),
        "stage untouched"
    );
    drop(held);
    build_features(&FeatureSpec::load(&spec).unwrap(), &options(&out))
        .await
        .unwrap();
    assert!(!lock_path.exists(), "the lock is removed after a build");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_builds_of_one_output_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let spec = write_spec(
        dir.path(),
        "f.toml",
        &format!(
            "key = \"c_custkey\"\n{SPEND}[[method]]\nname = \"balance\"\n\
             sql = \"select c_custkey, c_acctbal from customer\"\n"
        ),
    );
    let spec = FeatureSpec::load(&spec).unwrap();
    let mut built = 0;
    for round in 0..3 {
        let mut opts = options(&out);
        opts.force = true;
        let (a, b, c) = tokio::join!(
            build_features(&spec, &opts),
            build_features(&spec, &opts),
            build_features(&spec, &opts)
        );
        for result in [a, b, c] {
            match result {
                Ok(summary) => {
                    assert_eq!(summary.rows, 1500);
                    built += 1;
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.contains(&format!(
                            "output {} is being written by fairway process",
                            show(&out)
                        )),
                        "round {round}: {e}"
                    );
                }
            }
        }
        let rows: usize = read_parquet(&out).await.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 1500, "round {round}");
    }
    assert!(
        built >= 3,
        "at least one build of each round wrote the output"
    );
    assert!(!dir.path().join("out.parquet.fairway-lock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_different_types_are_refused_unless_cast() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let body = |build: &str, ty: &str| {
        format!(
            "key = \"c_custkey\"\n{build}[[method]]\nname = \"a\"\n\
             sql = \"select cast(c_custkey as bigint) as c_custkey, c_acctbal from customer\"\n\
             [[method]]\nname = \"b\"\n\
             sql = \"select cast(o_custkey as {ty}) as c_custkey, count(*) as n from orders group by 1\"\n"
        )
    };
    for (ty, arrow) in [("double", "Float64"), ("int", "Int32")] {
        let spec = write_spec(dir.path(), "k.toml", &body("", ty));
        let e = refused(&spec, &out).await;
        assert!(
            e.contains(&format!(
                "key 'c_custkey': method 'a' returns Int64, method 'b' returns {arrow}"
            )),
            "{e}"
        );
        assert!(e.contains("k.toml:"), "names the spec: {e}");
        assert!(e.contains("key_cast"), "names the opt-in: {e}");
        assert!(!out.exists());
    }
    for key_cast in [
        "key_cast = \"Int64\"",
        "key_cast = { c_custkey = \"Int64\" }",
    ] {
        let spec = write_spec(
            dir.path(),
            "k.toml",
            &body(&format!("[build]\n{key_cast}\n"), "double"),
        );
        let summary = build_features(&FeatureSpec::load(&spec).unwrap(), &options(&out))
            .await
            .unwrap();
        assert_eq!(summary.rows, 1500);
        let batches = read_parquet(&out).await;
        let schema = batches[0].schema();
        assert_eq!(
            schema.field_with_name("c_custkey").unwrap().data_type(),
            &DataType::Int64
        );
    }
    let spec = write_spec(
        dir.path(),
        "k.toml",
        &body("[build]\nkey_cast = \"Integer\"\n", "int"),
    );
    let e = FeatureSpec::load(&spec).unwrap_err().to_string();
    assert!(
        e.contains("key_cast: 'Integer' is not an Arrow type"),
        "{e}"
    );
    let spec = write_spec(
        dir.path(),
        "k.toml",
        &body("[build]\nkey_cast = { id = \"Int64\" }\n", "int"),
    );
    let e = FeatureSpec::load(&spec).unwrap_err().to_string();
    assert!(e.contains("'id' is not a key column"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_keys_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let body = "key = \"c_custkey\"\n[[method]]\nname = \"n\"\n\
        sql = \"select case when c_custkey % 10 = 0 then null else c_custkey end as c_custkey, \
        c_acctbal from customer\"\n";
    let spec = write_spec(dir.path(), "n.toml", body);
    let e = build_features(&FeatureSpec::load(&spec).unwrap(), &options(&out))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("method 'n' failed: it returns a NULL key"),
        "{e}"
    );
    assert!(e.contains("'c_custkey' is NULL in 150 rows"), "{e}");
    assert!(e.contains("allow_null_keys = true"), "{e}");
    assert!(!out.exists());
    let spec = write_spec(
        dir.path(),
        "n.toml",
        &format!("{body}allow_null_keys = true\n"),
    );
    let summary = build_features(&FeatureSpec::load(&spec).unwrap(), &options(&out))
        .await
        .unwrap();
    assert_eq!(
        summary.rows, 1500,
        "NULL keys kept, and not duplicates of each other"
    );
    let spec = write_spec(
        dir.path(),
        "n.toml",
        &format!(
            "key = \"c_custkey\"\n[[view]]\nname = \"v\"\nsql = \"select 1\"\nallow_null_keys = true\n{SPEND}"
        ),
    );
    let e = FeatureSpec::load(&spec).unwrap_err().to_string();
    assert!(e.contains("allow_null_keys is a method option"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_temporaries_of_dead_processes_only_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let stage = dir.path().join("out.parquet.fairway-stage");
    std::fs::create_dir(&stage).unwrap();
    // PIDs never exceed 2^22 on Linux: 999999999 is a dead process.
    let dead = [
        dir.path().join(".out.parquet.999999999.aB3x9.fairway-tmp"),
        stage.join(".view-o.999999999.Qw12e.fairway-tmp"),
        stage.join(".spend-0123456789abcdef.999999999.zz.fairway-tmp"),
    ];
    std::fs::write(&dead[0], b"half a parquet file").unwrap();
    for folder in &dead[1..] {
        std::fs::create_dir(folder).unwrap();
        std::fs::write(folder.join("part-0.parquet"), b"x").unwrap();
    }
    let alive = [
        dir.path().join(format!(
            ".out.parquet.{}.live1.fairway-tmp",
            std::process::id()
        )),
        stage.join(".other.1.live2.fairway-tmp"),
        dir.path().join(".out.parquet.999999999.tmp"),
    ];
    for file in &alive {
        std::fs::write(file, b"in use").unwrap();
    }
    let spec = write_spec(
        dir.path(),
        "f.toml",
        &format!("key = \"c_custkey\"\n{SPEND}"),
    );
    build_features(&FeatureSpec::load(&spec).unwrap(), &options(&out))
        .await
        .unwrap();
    for path in &dead {
        assert!(!path.exists(), "{} removed", path.display());
    }
    for path in &alive {
        assert_eq!(
            std::fs::read(path).unwrap(),
            b"in use",
            "{} kept",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_corpus_specs_are_refused_before_any_work() {
    let bad = workspace().join("testdata/bad");
    // The spec runs from a copy of its folder layout, so that a regression
    // overwrites a copy, never the checked-in test data.
    let copy = tempfile::tempdir().unwrap();
    std::fs::create_dir(copy.path().join("bad")).unwrap();
    std::fs::create_dir(copy.path().join("tpch-sf0.01")).unwrap();
    let spec = copy.path().join("bad/output_is_source.toml");
    std::fs::copy(bad.join("output_is_source.toml"), &spec).unwrap();
    let source = copy.path().join("tpch-sf0.01/nation.parquet");
    std::fs::copy(
        workspace().join("testdata/tpch-sf0.01/nation.parquet"),
        &source,
    )
    .unwrap();
    let before = std::fs::read(&source).unwrap();
    let e = refused_with(&spec, BuildOptions::default()).await;
    assert!(
        e.contains("would overwrite source 'nation'") && e.contains("tpch-sf0.01/nation.parquet"),
        "{e}"
    );
    assert_eq!(std::fs::read(&source).unwrap(), before);
    let e = refused_with(&bad.join("mixed_key_types.toml"), BuildOptions::default()).await;
    assert!(
        e.contains("mixed_key_types.toml:")
            && e.contains(
                "key 'c_custkey': method 'profile' returns Int64, method 'spend' returns Float64"
            ),
        "{e}"
    );
}
