//! `fairway bench tpch|features`: TPC-H against plain DataFusion, and a
//! feature build sequential vs FIFO vs FAIR.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use fairway_benches::harness::features::{FeatureBenchOptions, run_feature_bench};
use fairway_benches::harness::{BenchEngine, TpchBenchOptions, run_tpch};

use super::{base_config, prepare_tpch_data, write_report};
use crate::args::{BenchCommand, BenchFeaturesArgs, BenchTpchArgs, TpchDataArgs};

/// Slots of `bench features` without --slots: fixed, so that runs on
/// different machines compare.
const FEATURE_BENCH_SLOTS: usize = 2;

pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Tpch(args) => tpch(args).await,
        BenchCommand::Features(args) => features(args).await,
    }
}

impl TpchDataArgs {
    /// --data, or the default folder of the scale factor.
    fn dir(&self) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(|| TpchBenchOptions::default_data_dir(self.sf))
    }
}

/// `fairway bench tpch`.
async fn tpch(args: BenchTpchArgs) -> Result<()> {
    let config = base_config(
        &args.conf,
        args.slots,
        args.shuffle_memory.shuffle_memory,
        args.mode,
    )?;
    let engines = args
        .engines
        .iter()
        .map(|e| e.parse::<BenchEngine>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|m| anyhow!("option --engines: {m}"))?;
    let mut unique = engines.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != engines.len() {
        bail!("option --engines: an engine is named twice");
    }
    let options = TpchBenchOptions {
        scale_factor: args.data.sf,
        data: args.data.dir(),
        queries: if args.queries.is_empty() {
            (1..=22).collect()
        } else {
            args.queries.clone()
        },
        iterations: args.iterations,
        engines,
        streams: args.streams,
        fairway: config,
    };
    options.validate()?;
    prepare_tpch_data(options.scale_factor, &options.data).await?;

    let report = run_tpch(&options, &|line| eprintln!("{line}")).await?;
    print!("{}", report.table());
    std::io::stdout().flush()?;
    if let Some(path) = &args.json.json {
        write_report(path, report.to_json_pretty())?;
    }
    if let Some(path) = &args.plot {
        write_report(path, report.to_svg())?;
    }
    if !report.verified() {
        for problem in &report.mismatches {
            eprintln!("MISMATCH: {problem}");
        }
        bail!(
            "{} of {} answers did not match",
            report.mismatches.len(),
            report.answers_checked
        );
    }
    Ok(())
}

/// `fairway bench features`.
async fn features(args: BenchFeaturesArgs) -> Result<()> {
    let data = args.data.dir();
    prepare_tpch_data(args.data.sf, &data).await?;
    let conf = args.conf.pairs()?;
    let work = match &args.work {
        Some(dir) => WorkDir::Kept(dir.clone()),
        None => WorkDir::fresh()?,
    };
    let options = FeatureBenchOptions {
        specs: args.specs.clone(),
        data,
        iterations: args.iterations,
        slots: args.slots.slots.unwrap_or(FEATURE_BENCH_SLOTS),
        partitions: args.slots.partitions,
        work: work.path().to_path_buf(),
        conf,
    };
    let report = run_feature_bench(&options, &|line| eprintln!("{line}")).await;
    drop(work);
    let report = report?;
    print!("{}", report.table());
    std::io::stdout().flush()?;
    if let Some(path) = &args.json.json {
        write_report(path, report.to_json_pretty())?;
    }
    if !report.mismatches.is_empty() {
        for problem in &report.mismatches {
            eprintln!("MISMATCH: {problem}");
        }
        bail!(
            "{} outputs differed from the sequential build",
            report.mismatches.len()
        );
    }
    Ok(())
}

/// The folder of a feature benchmark's outputs: --work, kept, or a new
/// folder in the system temp folder, removed when dropped.
enum WorkDir {
    Kept(PathBuf),
    Temporary(PathBuf),
}

impl WorkDir {
    /// Creates `fairway-bench-features-PID-N` in the temp folder; creation
    /// fails if it exists, so the folder is this run's alone (0700 on
    /// Unix).
    fn fresh() -> Result<Self> {
        let base = std::env::temp_dir();
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        for n in 0..1000 {
            let dir = base.join(format!("fairway-bench-features-{}-{n}", std::process::id()));
            match builder.create(&dir) {
                Ok(()) => return Ok(Self::Temporary(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", dir.display()));
                }
            }
        }
        bail!(
            "cannot create a work folder in {}: pass --work DIR",
            base.display()
        )
    }

    fn path(&self) -> &Path {
        match self {
            WorkDir::Kept(dir) | WorkDir::Temporary(dir) => dir,
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let WorkDir::Temporary(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
