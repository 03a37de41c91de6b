//! `fair-latency`: a short query submitted while a long one runs, under FIFO
//! and FAIR scheduling.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use fairway_benches::latency::{LatencyOptions, measure};

#[derive(Parser)]
#[command(about = "Response time of a short query submitted during a long one, FIFO vs FAIR")]
struct Args {
    /// Tables of the long query (e.g. TPC-H SF10).
    #[arg(long)]
    long_data: PathBuf,
    /// Tables of the short query (e.g. TPC-H SF1).
    #[arg(long)]
    short_data: PathBuf,
    #[arg(long, default_value_t = 21)]
    long_query: usize,
    #[arg(long, default_value_t = 6)]
    short_query: usize,
    /// Seconds between the long and the short query's submission.
    #[arg(long, default_value_t = 2.0)]
    delay: f64,
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    #[arg(long, default_value_t = 2)]
    slots: usize,
    /// Shuffle and scan partitions [default: 2 x slots].
    #[arg(long)]
    partitions: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let options = LatencyOptions {
        long_data: args.long_data,
        short_data: args.short_data,
        long_query: args.long_query,
        short_query: args.short_query,
        delay: Duration::from_secs_f64(args.delay),
        iterations: args.iterations.max(1),
        slots: args.slots,
        partitions: args.partitions.unwrap_or(2 * args.slots),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let r = runtime.block_on(measure(&options))?;
    println!(
        "medians of {} runs ({} slots, {} partitions):",
        options.iterations, options.slots, options.partitions
    );
    let long = format!("long Q{}", options.long_query);
    let short = format!("short Q{}", options.short_query);
    let lines = [
        (format!("{long} alone"), r.long_alone, None),
        (format!("{short} alone"), r.short_alone, None),
        (
            format!("{short} under FIFO"),
            r.short_fifo,
            Some(r.short_alone),
        ),
        (
            format!("{short} under FAIR"),
            r.short_fair,
            Some(r.short_alone),
        ),
        (
            format!("{short} under FAIR, no yielding"),
            r.short_fair_no_yield,
            Some(r.short_alone),
        ),
        (
            format!("{long} under FIFO"),
            r.long_fifo,
            Some(r.long_alone),
        ),
        (
            format!("{long} under FAIR"),
            r.long_fair,
            Some(r.long_alone),
        ),
        (
            format!("{long} under FAIR, no yielding"),
            r.long_fair_no_yield,
            Some(r.long_alone),
        ),
    ];
    for (label, time, alone) in lines {
        let versus = alone
            .map(|a| format!("  ({:.2} x alone)", time.as_secs_f64() / a.as_secs_f64()))
            .unwrap_or_default();
        println!("  {label:<34} {:8.3} s{versus}", time.as_secs_f64());
    }
    Ok(())
}
