//! `pool-cap`: an interactive query's latency while a batch pool is busy,
//! with and without `maxShare` on the batch pool.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use fairway_benches::pool_cap::{PoolCapOptions, measure};

#[derive(Parser)]
#[command(
    about = "Latency of an interactive query while batch jobs run, with and without maxShare on the batch pool",
    after_help = "Example:\n  pool-cap --data data/tpch-sf1 --batch-query 9 --interactive-query 6 --slots 2"
)]
struct Args {
    /// TPC-H tables of both queries (`fairway tpch gen --out DIR`).
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 9)]
    batch_query: usize,
    #[arg(long, default_value_t = 6)]
    interactive_query: usize,
    /// Batch statements running at once.
    #[arg(long, default_value_t = 2)]
    batch_jobs: usize,
    /// Interactive statements per scenario and round.
    #[arg(long, default_value_t = 5)]
    probes: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value_t = 2)]
    slots: usize,
    /// Shuffle and scan partitions [default: 2 x slots].
    #[arg(long)]
    partitions: Option<usize>,
    /// Turn cooperative preemption off (Spark's behaviour).
    #[arg(long)]
    no_preemption: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let options = PoolCapOptions {
        data: args.data,
        batch_query: args.batch_query,
        interactive_query: args.interactive_query,
        batch_jobs: args.batch_jobs.max(1),
        probes: args.probes.max(1),
        rounds: args.rounds.max(1),
        slots: args.slots,
        partitions: args.partitions.unwrap_or(2 * args.slots),
        preemption: !args.no_preemption,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let r = runtime.block_on(measure(&options))?;
    println!(
        "medians of {} probes ({} slots, {} partitions, preemption {}, {} batch Q{} at once):",
        options.probes * options.rounds,
        options.slots,
        options.partitions,
        if options.preemption { "on" } else { "off" },
        options.batch_jobs,
        options.batch_query
    );
    let alone = r.alone.as_secs_f64();
    for (label, time) in [
        ("alone".to_string(), r.alone),
        ("batch pool uncapped".to_string(), r.uncapped),
        (format!("batch pool maxShare {}", r.cap), r.capped),
    ] {
        println!(
            "  interactive Q{} {label:<24} {:8.3} s  ({:.2} x alone)",
            options.interactive_query,
            time.as_secs_f64(),
            time.as_secs_f64() / alone
        );
    }
    println!(
        "  capped / uncapped: {:.2}",
        r.capped.as_secs_f64() / r.uncapped.as_secs_f64()
    );
    Ok(())
}
