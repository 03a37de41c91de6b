//! `tournament-merge`: a FULL OUTER merge of many feature frames on one key,
//! with the tournament join rule off (left-deep chain) and on (balanced
//! tree), each with the co-partitioned join rule off (every join level
//! shuffles its output again) and on (each input shuffled once, the whole
//! merge in one stage), on fairway's stage engine. Every measurement runs
//! in a fresh child process so that its peak memory (VmHWM) is its own.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use fairway_engine::arrow::array::{Float64Array, Int64Array};
use fairway_engine::arrow::datatypes::{DataType, Field, Schema};
use fairway_engine::arrow::record_batch::RecordBatch;
use fairway_engine::datafusion::datasource::MemTable;
use fairway_engine::{EngineConfig, Session};

#[derive(Parser)]
#[command(
    about = "FULL OUTER merge of N frames on one key: tournament and co-partitioned join rules off vs on"
)]
struct Args {
    /// Frame counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32")]
    frames: Vec<usize>,
    /// Keys per frame (about 90% of them shared with any other frame).
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    #[arg(long, default_value_t = 2)]
    slots: usize,
    /// Run one measurement (used by the driver): the tournament rule's
    /// setting, `true` or `false`.
    #[arg(long, hide = true)]
    child: Option<String>,
    /// With --child: the co-partitioned join rule's setting.
    #[arg(long, hide = true, default_value = "true")]
    co_partitioned: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(rule) = &args.child {
        let frames = args.frames[0];
        let runtime = tokio::runtime::Runtime::new()?;
        let (seconds, rows, stages) = runtime.block_on(run_once(
            frames,
            args.keys,
            args.slots,
            rule,
            &args.co_partitioned,
        ))?;
        println!("{seconds} {rows} {stages} {}", peak_rss()?);
        return Ok(());
    }
    println!(
        "FULL OUTER merge on the stage engine, {} slots, {} keys per frame, median of {} \
         (stages in brackets)",
        args.slots, args.keys, args.iterations
    );
    println!(
        "| frames | left-deep, re-shuffled (s) | left-deep, co-partitioned (s) | \
         balanced, re-shuffled (s) | balanced, co-partitioned (s) | balanced + co-partitioned \
         vs left-deep re-shuffled | balanced vs left-deep, both co-partitioned | peak RSS \
         (4 modes) | rows |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    let exe = std::env::current_exe()?;
    // (tournament rule, co-partitioned rule), in the table's order.
    let modes = [
        ("false", "false"),
        ("false", "true"),
        ("true", "false"),
        ("true", "true"),
    ];
    for &frames in &args.frames {
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); modes.len()];
        for _ in 0..args.iterations {
            for (i, (rule, co)) in modes.iter().enumerate() {
                let out = Command::new(&exe)
                    .args(["--child", rule, "--co-partitioned", co])
                    .args(["--frames", &frames.to_string()])
                    .args(["--keys", &args.keys.to_string()])
                    .args(["--slots", &args.slots.to_string()])
                    .output()?;
                if !out.status.success() {
                    bail!("{}", String::from_utf8_lossy(&out.stderr));
                }
                let text = String::from_utf8(out.stdout)?;
                let v: Vec<&str> = text.split_whitespace().collect();
                runs[i].push(Run {
                    seconds: v[0].parse()?,
                    rows: v[1].parse()?,
                    stages: v[2].parse()?,
                    peak: v[3].parse()?,
                });
            }
        }
        let medians: Vec<Run> = runs
            .iter_mut()
            .map(|v| {
                v.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
                v[v.len() / 2]
            })
            .collect();
        if let Some(m) = medians.iter().find(|m| m.rows != medians[0].rows) {
            bail!(
                "{frames} frames: {} rows in one mode, {} in another",
                medians[0].rows,
                m.rows
            );
        }
        let cell = |m: &Run| format!("{:.2} [{}]", m.seconds, m.stages);
        println!(
            "| {frames} | {} | {} | {} | {} | {:.2}x | {:.2}x | {} MiB | {} |",
            cell(&medians[0]),
            cell(&medians[1]),
            cell(&medians[2]),
            cell(&medians[3]),
            medians[0].seconds / medians[3].seconds,
            medians[1].seconds / medians[3].seconds,
            medians
                .iter()
                .map(|m| (m.peak >> 20).to_string())
                .collect::<Vec<_>>()
                .join(" / "),
            medians[0].rows
        );
    }
    Ok(())
}

/// One measurement: seconds, result rows, stages run, peak RSS in bytes.
#[derive(Clone, Copy)]
struct Run {
    seconds: f64,
    rows: u64,
    stages: u64,
    peak: u64,
}

/// Frame `i` holds the keys of `0..keys*10/9` whose hash with `i` is not
/// 0 mod 10, so two frames share about 90% of their keys.
fn frame(i: usize, keys: usize, partitions: usize) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new(format!("x{i}"), DataType::Float64, false),
    ]));
    let universe = keys * 10 / 9;
    let mut parts = vec![Vec::new(); partitions];
    let chunk = universe.div_ceil(partitions);
    for (p, part) in parts.iter_mut().enumerate() {
        let range = (p * chunk)..((p + 1) * chunk).min(universe);
        let k: Vec<i64> = range
            .filter(|&key| {
                let h = (key as u64 ^ ((i as u64) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                !(h >> 32).is_multiple_of(10)
            })
            .map(|key| key as i64)
            .collect();
        let x: Vec<f64> = k.iter().map(|&key| key as f64 * 0.5 + i as f64).collect();
        for start in (0..k.len()).step_by(8192) {
            let end = (start + 8192).min(k.len());
            part.push(RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(k[start..end].to_vec())),
                    Arc::new(Float64Array::from(x[start..end].to_vec())),
                ],
            )?);
        }
    }
    Ok(MemTable::try_new(schema, parts)?)
}

async fn run_once(
    frames: usize,
    keys: usize,
    slots: usize,
    rule: &str,
    co_partitioned: &str,
) -> Result<(f64, usize, usize)> {
    let mut config = EngineConfig::with_slots(slots);
    config.set("fairway.optimizer.tournament_joins", rule)?;
    config.set("fairway.optimizer.co_partitioned_joins", co_partitioned)?;
    let partitions = config.partitions;
    let session = Session::new(config)?;
    for i in 0..frames {
        session
            .context()
            .register_table(format!("f{i}"), Arc::new(frame(i, keys, partitions)?))
            .context("register frame")?;
    }
    let mut sql = "select * from f0".to_string();
    for i in 1..frames {
        sql.push_str(&format!(" full join f{i} using (k)"));
    }
    let start = Instant::now();
    let out = session.sql(&sql).await?;
    Ok((start.elapsed().as_secs_f64(), out.rows(), out.stages))
}

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kib * 1024)
}
