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
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "medians of {} runs ({} slots, {} partitions):",
        options.iterations, options.slots, options.partitions
    );
    println!(
        "  long Q{} alone           {:8.3} s",
        options.long_query,
        r.long_alone.as_secs_f64()
    );
    println!(
        "  short Q{} alone           {:8.3} s",
        options.short_query,
        r.short_alone.as_secs_f64()
    );
    println!(
        "  short under FIFO         {:8.3} s  ({:.1} x alone)",
        r.short_fifo.as_secs_f64(),
        ratio(r.short_fifo, r.short_alone)
    );
    println!(
        "  short under FAIR         {:8.3} s  ({:.1} x alone)",
        r.short_fair.as_secs_f64(),
        ratio(r.short_fair, r.short_alone)
    );
    println!(
        "  short under FAIR, no yielding {:8.3} s  ({:.1} x alone)",
        r.short_fair_no_yield.as_secs_f64(),
        ratio(r.short_fair_no_yield, r.short_alone)
    );
    println!(
        "  long under FIFO          {:8.3} s  ({:.2} x alone)",
        r.long_fifo.as_secs_f64(),
        ratio(r.long_fifo, r.long_alone)
    );
    println!(
        "  long under FAIR          {:8.3} s  ({:.2} x alone)",
        r.long_fair.as_secs_f64(),
        ratio(r.long_fair, r.long_alone)
    );
    println!(
        "  long under FAIR, no yielding {:8.3} s  ({:.2} x alone)",
        r.long_fair_no_yield.as_secs_f64(),
        ratio(r.long_fair_no_yield, r.long_alone)
    );
    Ok(())
}
