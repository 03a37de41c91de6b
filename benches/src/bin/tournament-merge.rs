//! `tournament-merge`: a FULL OUTER merge of many feature frames on one key,
//! with the tournament join rule off (left-deep chain) and on (balanced
//! tree), on fairway's stage engine. Every measurement runs in a fresh
//! child process so that its peak memory (VmHWM) is its own.

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
#[command(about = "FULL OUTER merge of N frames on one key: tournament rule off vs on")]
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
    /// Run one measurement (used by the driver): the rule setting, `true`
    /// or `false`.
    #[arg(long, hide = true)]
    child: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(rule) = &args.child {
        let frames = args.frames[0];
        let runtime = tokio::runtime::Runtime::new()?;
        let (seconds, rows) = runtime.block_on(run_once(frames, args.keys, args.slots, rule))?;
        println!("{seconds} {rows} {}", peak_rss()?);
        return Ok(());
    }
    println!(
        "FULL OUTER merge on the stage engine, {} slots, {} keys per frame, median of {}",
        args.slots, args.keys, args.iterations
    );
    println!(
        "| frames | rule off (s) | rule on (s) | speed-up | peak RSS off | peak RSS on | rows |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let exe = std::env::current_exe()?;
    for &frames in &args.frames {
        let mut runs: [Vec<(f64, u64, u64)>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..args.iterations {
            for (i, rule) in ["false", "true"].iter().enumerate() {
                let out = Command::new(&exe)
                    .args(["--child", rule, "--frames", &frames.to_string()])
                    .args(["--keys", &args.keys.to_string()])
                    .args(["--slots", &args.slots.to_string()])
                    .output()?;
                if !out.status.success() {
                    bail!("{}", String::from_utf8_lossy(&out.stderr));
                }
                let text = String::from_utf8(out.stdout)?;
                let v: Vec<&str> = text.split_whitespace().collect();
                runs[i].push((v[0].parse()?, v[1].parse()?, v[2].parse()?));
            }
        }
        let median = |v: &mut Vec<(f64, u64, u64)>| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            v[v.len() / 2]
        };
        let off = median(&mut runs[0]);
        let on = median(&mut runs[1]);
        if off.1 != on.1 {
            bail!(
                "{frames} frames: {} rows with the rule off, {} on",
                off.1,
                on.1
            );
        }
        println!(
            "| {frames} | {:.2} | {:.2} | {:.2}x | {} MiB | {} MiB | {} |",
            off.0,
            on.0,
            off.0 / on.0,
            off.2 >> 20,
            on.2 >> 20,
            on.1
        );
    }
    Ok(())
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

async fn run_once(frames: usize, keys: usize, slots: usize, rule: &str) -> Result<(f64, usize)> {
    let mut config = EngineConfig::with_slots(slots);
    config.set("fairway.optimizer.tournament_joins", rule)?;
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
    Ok((start.elapsed().as_secs_f64(), out.rows()))
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
