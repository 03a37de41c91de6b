//! `tpch-compare`: TPC-H on fairway and on plain DataFusion, alternating.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use fairway_benches::tpch::{CompareOptions, compare, geometric_mean};

#[derive(Parser)]
#[command(about = "Run TPC-H queries alternately on fairway and plain DataFusion and compare")]
struct Args {
    /// Folder with <table>.parquet files (`fairway tpch gen --sf 1 --out DIR`).
    #[arg(long)]
    data: PathBuf,
    /// Queries to run, e.g. 1,6,21 [default: all 22].
    #[arg(long, value_delimiter = ',')]
    queries: Vec<usize>,
    /// Runs per query and engine; the median is reported.
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// Slots for fairway and worker threads for DataFusion.
    #[arg(long, default_value_t = 2)]
    slots: usize,
    /// Target partitions for both engines [default: 2 x slots].
    #[arg(long)]
    partitions: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let options = CompareOptions {
        data: args.data,
        queries: if args.queries.is_empty() {
            (1..=22).collect()
        } else {
            args.queries
        },
        iterations: args.iterations.max(1),
        slots: args.slots,
        partitions: args.partitions.unwrap_or(2 * args.slots),
    };
    println!(
        "TPC-H from {}: {} slots, {} partitions, median of {} runs",
        options.data.display(),
        options.slots,
        options.partitions,
        options.iterations
    );
    let results = compare(&options)?;
    let fairway = geometric_mean(results.iter().map(|r| r.fairway_median().as_secs_f64()));
    let datafusion = geometric_mean(results.iter().map(|r| r.datafusion_median().as_secs_f64()));
    println!(
        "geometric mean: fairway {fairway:.3} s, datafusion {datafusion:.3} s, ratio {:.3}",
        geometric_mean(results.iter().map(|r| r.ratio()))
    );
    Ok(())
}
