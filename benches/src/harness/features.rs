//! `fairway bench features`: one feature spec built sequentially (the
//! baseline: no shared subplans, one method after another, a left-deep
//! merge that shuffles at every level), in parallel under FIFO and under
//! FAIR with fused aggregations, automatic shared subplans and the
//! co-partitioned tournament merge, and under FAIR with each of them off,
//! on the same slots, with slot utilisation from each run's event log.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{BenchError, canonical_rows, median};
use fairway_engine::SchedulingMode;
use fairway_features::{BuildOptions, FeatureSpec, build_features};

/// What `fairway bench features` measures.
#[derive(Debug, Clone)]
pub struct FeatureBenchOptions {
    pub specs: Vec<PathBuf>,
    /// Folder every source of every spec is read from (`--sources-dir`).
    pub data: PathBuf,
    pub iterations: usize,
    pub slots: usize,
    pub partitions: Option<usize>,
    /// Folder for outputs, stage areas and event logs.
    pub work: PathBuf,
    pub conf: Vec<(String, String)>,
}

/// How a build runs its methods and merges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    /// One method after another, each computing its own joins, then a
    /// left-deep merge, tournament and co-partitioning off.
    Sequential,
    /// All methods at once under the FIFO scheduler, fused aggregations
    /// and shared subplans, balanced merge.
    ParallelFifo,
    /// All methods at once in a FAIR pool, fused aggregations and shared
    /// subplans, balanced (tournament) merge: the default build.
    ParallelFair,
    /// As `ParallelFair`, but every method runs its own aggregate.
    ParallelFairUnfused,
    /// As `ParallelFair`, but the merge shuffles its output again at every
    /// level (`fairway.optimizer.co_partitioned_joins = false`).
    ParallelFairReshuffled,
    /// As `ParallelFair`, but every method computes its own joins and
    /// aggregate and the merge shuffles at every level: the build before
    /// sharing, fusion and co-partitioning.
    ParallelFairUnshared,
}

impl BuildMode {
    pub const ALL: [BuildMode; 6] = [
        BuildMode::Sequential,
        BuildMode::ParallelFifo,
        BuildMode::ParallelFair,
        BuildMode::ParallelFairUnfused,
        BuildMode::ParallelFairReshuffled,
        BuildMode::ParallelFairUnshared,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuildMode::Sequential => "sequential, unshared",
            BuildMode::ParallelFifo => "FIFO + fused + shared",
            BuildMode::ParallelFair => "FAIR + fused + shared (default)",
            BuildMode::ParallelFairUnfused => "FAIR + shared, unfused",
            BuildMode::ParallelFairReshuffled => "FAIR + fused + shared, re-shuffled",
            BuildMode::ParallelFairUnshared => "FAIR, none of them",
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            BuildMode::Sequential => "sequential",
            BuildMode::ParallelFifo => "fifo",
            BuildMode::ParallelFair => "fair",
            BuildMode::ParallelFairUnfused => "fair-unfused",
            BuildMode::ParallelFairReshuffled => "fair-reshuffled",
            BuildMode::ParallelFairUnshared => "fair-unshared",
        }
    }

    fn shares_subplans(self) -> bool {
        !matches!(
            self,
            BuildMode::Sequential | BuildMode::ParallelFairUnshared
        )
    }

    fn fuses_aggregations(self) -> bool {
        matches!(
            self,
            BuildMode::ParallelFifo | BuildMode::ParallelFair | BuildMode::ParallelFairReshuffled
        )
    }

    fn co_partitions_merge(self) -> bool {
        !matches!(
            self,
            BuildMode::Sequential
                | BuildMode::ParallelFairReshuffled
                | BuildMode::ParallelFairUnshared
        )
    }
}

/// The runs of one spec in one mode.
#[derive(Debug, Clone)]
pub struct ModeRuns {
    pub spec: String,
    pub mode: BuildMode,
    pub times: Vec<Duration>,
    /// Busy slot-time / (slots x wall time) of each run, in percent.
    pub utilisation: Vec<f64>,
}

impl ModeRuns {
    pub fn median(&self) -> Duration {
        median(&self.times)
    }

    pub fn median_utilisation(&self) -> f64 {
        let mut u = self.utilisation.clone();
        u.sort_by(f64::total_cmp);
        match u.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => u[n / 2],
            n => (u[n / 2 - 1] + u[n / 2]) / 2.0,
        }
    }
}

/// Everything `fairway bench features` measured.
#[derive(Debug, Clone)]
pub struct FeatureBenchReport {
    pub slots: usize,
    pub partitions: usize,
    pub runs: Vec<ModeRuns>,
    /// Outputs that differed from the sequential build's.
    pub mismatches: Vec<String>,
}

impl FeatureBenchReport {
    /// Per spec and mode: median, min, max seconds, ratio to sequential,
    /// median utilisation.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<22} {:<36} {:>8} {:>8} {:>8} {:>12} {:>12}",
            "spec", "mode", "median s", "min s", "max s", "vs sequential", "utilisation"
        );
        for run in &self.runs {
            let sequential = self
                .runs
                .iter()
                .find(|r| r.spec == run.spec && r.mode == BuildMode::Sequential)
                .map(|r| r.median().as_secs_f64());
            let ratio = sequential.map_or(f64::NAN, |s| s / run.median().as_secs_f64());
            let min = run.times.iter().min().copied().unwrap_or_default();
            let max = run.times.iter().max().copied().unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<22} {:<36} {:>8.2} {:>8.2} {:>8.2} {:>12.2}x {:>11.1}%",
                run.spec,
                run.mode.as_str(),
                run.median().as_secs_f64(),
                min.as_secs_f64(),
                max.as_secs_f64(),
                ratio,
                run.median_utilisation()
            );
        }
        let _ = writeln!(
            out,
            "({} slots, {} partitions; median of {} runs per mode, modes alternated)",
            self.slots,
            self.partitions,
            self.runs.first().map_or(0, |r| r.times.len())
        );
        out
    }

    pub fn to_json_pretty(&self) -> String {
        let runs: Vec<_> = self
            .runs
            .iter()
            .map(|r| {
                json!({
                    "spec": r.spec,
                    "mode": r.mode.as_str(),
                    "seconds": r.times.iter().map(|t| t.as_secs_f64()).collect::<Vec<_>>(),
                    "median_seconds": r.median().as_secs_f64(),
                    "utilisation_pct": r.utilisation,
                })
            })
            .collect();
        serde_json::to_string_pretty(&json!({
            "slots": self.slots,
            "partitions": self.partitions,
            "runs": runs,
            "mismatches": self.mismatches,
        }))
        .expect("JSON of numbers and strings")
    }
}

/// Runs every spec in every mode `iterations` times. The order of the
/// modes rotates from one iteration to the next, so no mode always runs
/// first (on a cold cache) or last.
pub async fn run_feature_bench(
    options: &FeatureBenchOptions,
    progress: &dyn Fn(&str),
) -> Result<FeatureBenchReport, BenchError> {
    if options.iterations == 0 {
        return Err(BenchError::option("--iterations", "must be at least 1"));
    }
    if options.slots == 0 {
        return Err(BenchError::option("--slots", "must be at least 1"));
    }
    let partitions = options.partitions.unwrap_or(2 * options.slots);
    let mut report = FeatureBenchReport {
        slots: options.slots,
        partitions,
        runs: Vec::new(),
        mismatches: Vec::new(),
    };
    for spec_path in &options.specs {
        let mut spec = FeatureSpec::load(spec_path)?;
        spec.use_sources_dir(&options.data);
        let stem = spec_path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "spec".to_string());
        let label = spec_path
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let work = options.work.join(&stem);
        std::fs::create_dir_all(&work).map_err(|e| fairway_engine::EngineError::io(&work, e))?;
        let mut runs: Vec<ModeRuns> = BuildMode::ALL
            .iter()
            .map(|&mode| ModeRuns {
                spec: label.clone(),
                mode,
                times: Vec::new(),
                utilisation: Vec::new(),
            })
            .collect();
        for iteration in 0..options.iterations {
            for k in 0..BuildMode::ALL.len() {
                let index = (k + iteration) % BuildMode::ALL.len();
                let mode = BuildMode::ALL[index];
                let out = work.join(format!("{}.parquet", mode.file_stem()));
                let log = work.join(format!("{}-{iteration}.jsonl", mode.file_stem()));
                let build = BuildOptions {
                    out: Some(out),
                    force: true,
                    slots: Some(options.slots),
                    partitions: Some(partitions),
                    scheduler_mode: Some(match mode {
                        BuildMode::ParallelFair
                        | BuildMode::ParallelFairUnfused
                        | BuildMode::ParallelFairReshuffled
                        | BuildMode::ParallelFairUnshared => SchedulingMode::Fair,
                        BuildMode::Sequential | BuildMode::ParallelFifo => SchedulingMode::Fifo,
                    }),
                    share_subplans: Some(mode.shares_subplans()),
                    fuse_aggregations: Some(mode.fuses_aggregations()),
                    event_log: Some(log.clone()),
                    conf: options
                        .conf
                        .iter()
                        .cloned()
                        .chain((!mode.co_partitions_merge()).then(|| {
                            (
                                "fairway.optimizer.co_partitioned_joins".to_string(),
                                "false".to_string(),
                            )
                        }))
                        .collect(),
                    sequential: mode == BuildMode::Sequential,
                    ..BuildOptions::default()
                };
                let start = Instant::now();
                build_features(&spec, &build).await?;
                let wall = start.elapsed();
                let utilisation = utilisation(&log, options.slots, wall)?;
                progress(&format!(
                    "{label} {} run {}: {:.2} s, utilisation {utilisation:.1}%",
                    mode.as_str(),
                    iteration + 1,
                    wall.as_secs_f64()
                ));
                runs[index].times.push(wall);
                runs[index].utilisation.push(utilisation);
            }
            if iteration == 0 {
                let reference = read_sorted(&work.join("sequential.parquet")).await?;
                for mode in &BuildMode::ALL[1..] {
                    let path = work.join(format!("{}.parquet", mode.file_stem()));
                    if read_sorted(&path).await? != reference {
                        report.mismatches.push(format!(
                            "{label}: the {} output differs from the sequential one",
                            mode.as_str()
                        ));
                    }
                }
            }
        }
        report.runs.extend(runs);
    }
    Ok(report)
}

/// Sum of the task intervals of an event log / (slots x `wall`), percent.
fn utilisation(log: &Path, slots: usize, wall: Duration) -> Result<f64, BenchError> {
    let events = fairway_observe::timeline::read_event_log(log).map_err(|e| BenchError::Data {
        path: log.to_path_buf(),
        message: e.to_string(),
    })?;
    let busy = fairway_observe::timeline::totals(&events).busy_us as f64;
    Ok(100.0 * busy / (slots as f64 * wall.as_micros().max(1) as f64))
}

/// A parquet file's rows as sorted text, read with plain DataFusion.
async fn read_sorted(path: &Path) -> Result<Vec<String>, BenchError> {
    let ctx = fairway_engine::plain_datafusion_context(4);
    let df = ctx
        .read_parquet(
            path.to_string_lossy().as_ref(),
            datafusion::prelude::ParquetReadOptions::default(),
        )
        .await
        .map_err(fairway_engine::EngineError::from)?;
    let batches = df
        .collect()
        .await
        .map_err(fairway_engine::EngineError::from)?;
    Ok(canonical_rows(&batches)?)
}
