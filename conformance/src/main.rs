//! `slt`: DataFusion's own sqllogictest suite (the `.slt` files published
//! with `datafusion-sqllogictest` 55.2.0, found through `cargo metadata`)
//! run record by record through plain DataFusion (the suite's own driver
//! and per-file `SessionContext`) and through fairway's stage engine (a
//! `Session` at 2 slots and 3 partitions, with the same tables and
//! functions; with `--all-settings` also at 1 slot and 5 partitions).
//!
//! Every statement and query record is classified: passes on both, only
//! on DataFusion, only on fairway, on neither, or skipped (it asserts plan
//! text or DataFusion-internal settings). The last line printed is
//!
//! `slt summary: files F, records R, both B, datafusion-only D, fairway-only X, neither N, skipped S`
//!
//! and every record that is not "both" or "skipped" is written, with its
//! file, line, SQL and both engines' outcomes, to a JSON file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use datafusion_sqllogictest::{
    DFColumnType, DataFusion, TestContext, df_value_validator, is_spark_path, setup_scratch_dir,
    value_normalizer,
};
use sqllogictest::{AsyncDB, Record, parse_file, strict_column_validator};

mod fairway_db;
mod suite;

use fairway_db::{Fairway, fairway_session};
use suite::{SUITE_PACKAGE, SUITE_VERSION, slt_files, target_dir, working_copy};

#[derive(Parser, Debug)]
#[command(
    name = "slt",
    about = "DataFusion's sqllogictest suite through plain DataFusion and fairway's stage engine",
    after_help = "Example:\n  cargo run --release -p fairway-conformance --bin slt -- --summary\n  \
                  cargo run -p fairway-conformance --bin slt -- --files joins --files window"
)]
struct Args {
    /// Print each file's counts (the summary line is always printed last).
    #[arg(long)]
    summary: bool,
    /// Run only these files: a path under test_files/ ending in .slt names
    /// one file, other text runs every file whose path contains it;
    /// repeatable.
    #[arg(long = "files", value_name = "TEXT")]
    files: Vec<String>,
    /// Where the details of every record that does not pass on both go.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also run fairway at 1 slot and 5 partitions: a record passes on
    /// fairway only if it passes under both settings.
    #[arg(long)]
    all_settings: bool,
    /// The longest one record may run, in seconds (then the rest of its
    /// file counts as failed on that engine).
    #[arg(long, default_value_t = 60)]
    record_timeout: u64,
}

/// What one engine did with one record.
#[derive(Debug, Clone)]
enum Outcome {
    Pass,
    Fail(String),
}

impl Outcome {
    fn passed(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
    fn text(&self) -> String {
        match self {
            Outcome::Pass => "pass".to_string(),
            Outcome::Fail(why) => why.clone(),
        }
    }
}

/// A statement or query record, as counted.
#[derive(Debug, Clone)]
struct Counted {
    line: u32,
    sql: String,
    /// Why it is skipped (plan text, settings), if it is.
    skipped: Option<&'static str>,
}

/// Why a record is skipped: it asserts DataFusion's plan text or its
/// internal settings, which fairway's stage engine changes by design.
fn skip_reason(sql: &str) -> Option<&'static str> {
    let lower = sql.trim_start().to_ascii_lowercase();
    if lower.starts_with("explain") {
        return Some("asserts plan text (EXPLAIN)");
    }
    if lower.starts_with("show")
        || lower.contains("information_schema.df_settings")
        || lower.contains("datafusion.execution.target_partitions")
    {
        return Some("asserts DataFusion-internal settings");
    }
    None
}

fn counted(record: &Record<DFColumnType>) -> Option<Counted> {
    match record {
        Record::Statement { loc, sql, .. } | Record::Query { loc, sql, .. } => Some(Counted {
            line: loc.line(),
            sql: sql.clone(),
            skipped: skip_reason(sql),
        }),
        _ => None,
    }
}

/// Runs every record of `path` on `db`, in order, and returns the outcome
/// of each counted record (skipped ones are not run when `skip` is set).
async fn run_records<D>(
    records: Vec<Record<DFColumnType>>,
    make: impl FnOnce() -> D + Send + 'static,
    skip: bool,
    timeout: Duration,
) -> Vec<Outcome>
where
    D: AsyncDB<ColumnType = DFColumnType> + Send + 'static,
{
    let total = records.iter().filter(|r| counted(r).is_some()).count();
    let handle = tokio::spawn(async move {
        let mut db = Some(make());
        let mut runner = sqllogictest::Runner::new(move || {
            let db = db.take();
            async move { Ok(db.expect("one connection per file")) }
        });
        runner.add_label("Datafusion");
        runner.with_column_validator(strict_column_validator);
        runner.with_normalizer(value_normalizer);
        runner.with_validator(df_value_validator);
        let mut outcomes = Vec::new();
        for record in records {
            if let Record::Halt { .. } = record {
                break;
            }
            let counted = counted(&record);
            if skip && counted.as_ref().is_some_and(|c| c.skipped.is_some()) {
                outcomes.push(Outcome::Fail("skipped".to_string()));
                continue;
            }
            let result = tokio::time::timeout(timeout, runner.run_async(record)).await;
            let outcome = match result {
                Ok(Ok(_)) => Outcome::Pass,
                Ok(Err(e)) => Outcome::Fail(e.to_string()),
                Err(_) => {
                    if counted.is_some() {
                        outcomes.push(Outcome::Fail(format!("timed out after {timeout:?}")));
                    }
                    break;
                }
            };
            if counted.is_some() {
                outcomes.push(outcome);
            }
        }
        outcomes
    });
    let mut outcomes = match handle.await {
        Ok(outcomes) => outcomes,
        Err(e) => vec![Outcome::Fail(format!("the engine panicked: {e}"))],
    };
    while outcomes.len() < total {
        outcomes.push(Outcome::Fail(
            "not run: an earlier record of the file timed out or panicked".to_string(),
        ));
    }
    outcomes
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    records: usize,
    both: usize,
    datafusion_only: usize,
    fairway_only: usize,
    neither: usize,
    skipped: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.records += other.records;
        self.both += other.both;
        self.datafusion_only += other.datafusion_only;
        self.fairway_only += other.fairway_only;
        self.neither += other.neither;
        self.skipped += other.skipped;
    }
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let suite = suite::suite_dir()?;
    let (_work_guard, work) = working_copy(&suite)?;
    std::env::set_current_dir(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let test_files = Path::new("test_files");
    let files: Vec<PathBuf> = slt_files(test_files)
        .into_iter()
        .filter(|p| {
            let relative = p.strip_prefix(test_files).unwrap_or(p).to_string_lossy();
            // A name ending in .slt is one file (its path under test_files/);
            // other text is matched anywhere in the path.
            args.files.is_empty()
                || args.files.iter().any(|f| {
                    if f.ends_with(".slt") {
                        relative == f.as_str()
                    } else {
                        relative.contains(f.as_str())
                    }
                })
        })
        .collect();
    if files.is_empty() {
        return Err(format!("no .slt files match {:?}", args.files));
    }
    let timeout = Duration::from_secs(args.record_timeout.max(1));
    let mut total = Counts::default();
    let mut per_file: BTreeMap<String, Counts> = BTreeMap::new();
    let mut unsupported_files = Vec::new();
    let mut details = Vec::new();
    let mut skip_reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    for path in &files {
        let relative = path.strip_prefix(test_files).unwrap_or(path).to_path_buf();
        let shown = relative.display().to_string();
        let records: Vec<Record<DFColumnType>> = match parse_file(path) {
            Ok(records) => records,
            Err(e) => {
                unsupported_files.push(format!("{shown}: does not parse ({e})"));
                continue;
            }
        };
        let Some(test_ctx) = TestContext::try_new_for_test_file(&relative).await else {
            unsupported_files.push(format!("{shown}: the suite skips it in this build"));
            continue;
        };
        if let Err(e) = setup_scratch_dir(&relative) {
            unsupported_files.push(format!("{shown}: scratch folder: {e}"));
            continue;
        }
        let list: Vec<Counted> = records.iter().filter_map(counted).collect();

        let ctx = test_ctx.session_ctx().clone();
        let rel = relative.clone();
        let plain = run_records(
            records.clone(),
            move || DataFusion::new(ctx, rel, indicatif::ProgressBar::hidden()),
            false,
            timeout,
        )
        .await;

        let mut settings = vec![(2, 3)];
        if args.all_settings {
            settings.push((1, 5));
        }
        let mut ours: Vec<Vec<Outcome>> = Vec::new();
        for (slots, partitions) in settings {
            setup_scratch_dir(&relative).map_err(|e| e.to_string())?;
            match fairway_session(&relative, slots, partitions).await {
                Ok(Some((session, suite_ctx))) => {
                    let spark = is_spark_path(&relative);
                    let outcomes = run_records(
                        records.clone(),
                        move || Fairway { session, spark },
                        true,
                        timeout,
                    )
                    .await;
                    // The suite's context owns the temporary folders of
                    // some tables it registered (joins.slt's
                    // test_partition_table): kept until the file ran.
                    drop(suite_ctx);
                    ours.push(outcomes);
                }
                Ok(None) => ours.push(vec![Outcome::Fail("no session".into()); list.len()]),
                Err(e) => ours.push(vec![Outcome::Fail(format!("session: {e}")); list.len()]),
            }
        }

        let mut counts = Counts::default();
        for (i, record) in list.iter().enumerate() {
            counts.records += 1;
            if let Some(reason) = record.skipped {
                counts.skipped += 1;
                *skip_reasons.entry(reason).or_default() += 1;
                continue;
            }
            let df = plain
                .get(i)
                .cloned()
                .unwrap_or(Outcome::Fail("missing".into()));
            let fw_all: Vec<Outcome> = ours
                .iter()
                .map(|o| o.get(i).cloned().unwrap_or(Outcome::Fail("missing".into())))
                .collect();
            let fw_ok = fw_all.iter().all(Outcome::passed);
            let class = match (df.passed(), fw_ok) {
                (true, true) => {
                    counts.both += 1;
                    continue;
                }
                (true, false) => {
                    counts.datafusion_only += 1;
                    "datafusion-only"
                }
                (false, true) => {
                    counts.fairway_only += 1;
                    "fairway-only"
                }
                (false, false) => {
                    counts.neither += 1;
                    "neither"
                }
            };
            details.push(serde_json::json!({
                "class": class,
                "file": shown,
                "line": record.line,
                "sql": record.sql,
                "datafusion": df.text(),
                "fairway": fw_all.iter().map(Outcome::text).collect::<Vec<_>>(),
            }));
        }
        if args.summary {
            println!(
                "{shown}: records {}, both {}, datafusion-only {}, fairway-only {}, neither {}, skipped {}",
                counts.records,
                counts.both,
                counts.datafusion_only,
                counts.fairway_only,
                counts.neither,
                counts.skipped
            );
        }
        total.add(&counts);
        per_file.insert(shown, counts);
    }
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| target_dir().join("conformance/slt-details.json"));
    let report = serde_json::json!({
        "suite": format!("{SUITE_PACKAGE} {SUITE_VERSION}"),
        "fairway_settings": if args.all_settings { "2 slots/3 partitions and 1 slot/5 partitions" } else { "2 slots/3 partitions" },
        "files_not_run": unsupported_files,
        "skipped_by_reason": skip_reasons,
        "per_file": per_file.iter().map(|(f, c)| (f.clone(), serde_json::json!({
            "records": c.records, "both": c.both, "datafusion_only": c.datafusion_only,
            "fairway_only": c.fairway_only, "neither": c.neither, "skipped": c.skipped,
        }))).collect::<serde_json::Map<_, _>>(),
        "records": details,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    if args.summary {
        for file in &unsupported_files {
            println!("not run: {file}");
        }
        println!("details: {}", json_path.display());
    }
    println!(
        "slt summary: files {}, records {}, both {}, datafusion-only {}, fairway-only {}, neither {}, skipped {}",
        per_file.len(),
        total.records,
        total.both,
        total.datafusion_only,
        total.fairway_only,
        total.neither,
        total.skipped
    );
    Ok(())
}
