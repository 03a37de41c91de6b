//! An interactive query's latency while batch jobs run, with and without a
//! `maxShare` cap on the batch pool (fairway's allocation-file element that
//! Spark ignores).
//!
//! Every scenario runs on its own FAIR session: pool `batch` (weight 1)
//! and pool `interactive` (weight 1). The batch pool runs `batch_jobs`
//! copies of the long query at once, over and over; while they run, the
//! short query is submitted `probes` times in a row in `interactive`, and
//! each response time is kept. Alone: the short query with nothing else
//! running. The cap is `maxShare` = half the slots (at least 1).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fairway_engine::{EngineConfig, SchedulingMode, Session};
use fairway_tpch as tpch;

use crate::harness::median;

/// What to run.
#[derive(Debug, Clone)]
pub struct PoolCapOptions {
    /// Tables (`<table>.parquet`) of both queries.
    pub data: PathBuf,
    pub batch_query: usize,
    pub interactive_query: usize,
    /// Batch statements running at once.
    pub batch_jobs: usize,
    /// Interactive statements measured per scenario and round.
    pub probes: usize,
    /// Rounds; the scenarios alternate within each.
    pub rounds: usize,
    pub slots: usize,
    pub partitions: usize,
    /// Cooperative preemption (fairway's default); `false` is Spark's
    /// behaviour, where a pool waits for running tasks to end.
    pub preemption: bool,
}

/// Medians of the interactive response times.
#[derive(Debug, Clone, Default)]
pub struct PoolCapReport {
    pub alone: Duration,
    pub uncapped: Duration,
    pub capped: Duration,
    /// The batch pool's cap in the capped scenario.
    pub cap: usize,
}

async fn session(
    options: &PoolCapOptions,
    cap: Option<usize>,
    dir: &std::path::Path,
) -> Result<Session> {
    let max_share = cap.map_or(String::new(), |c| format!("<maxShare>{c}</maxShare>"));
    let file = dir.join(format!(
        "fairway-pool-cap-{}-{}.xml",
        std::process::id(),
        cap.unwrap_or(0)
    ));
    // Created exclusively: an existing file of that name is never replaced.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    std::io::Write::write_all(
        &mut out,
        format!(
            "<allocations>\n  <pool name=\"batch\"><schedulingMode>FAIR</schedulingMode>{max_share}</pool>\n  \
             <pool name=\"interactive\"><schedulingMode>FAIR</schedulingMode></pool>\n</allocations>\n"
        )
        .as_bytes(),
    )?;
    drop(out);
    let mut config = EngineConfig::with_slots(options.slots).partitions(options.partitions);
    config.scheduler_mode = SchedulingMode::Fair;
    config.preemption = options.preemption;
    config.allocation_file = Some(file.clone());
    let session = Session::new(config);
    std::fs::remove_file(&file)?;
    let session = session?;
    for table in tpch::TABLES {
        let path = options.data.join(format!("{table}.parquet"));
        session
            .register_table(table, &path.to_string_lossy())
            .await?;
    }
    Ok(session)
}

/// The interactive query's response times while the batch pool is busy
/// (`batch`), or alone.
async fn probe(
    session: &Session,
    options: &PoolCapOptions,
    batch_sql: &str,
    interactive_sql: &str,
    batch: bool,
) -> Result<Vec<Duration>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut runners = Vec::new();
    if batch {
        for _ in 0..options.batch_jobs {
            let client = session.with_pool("batch")?;
            let (stop, sql) = (Arc::clone(&stop), batch_sql.to_string());
            runners.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    client.sql(&sql).await?;
                }
                anyhow::Ok(())
            }));
        }
        // Let the batch jobs take the slots first.
        let deadline = Instant::now() + Duration::from_secs(30);
        while session.scheduler().metrics().running_tasks == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let interactive = session.with_pool("interactive")?;
    let mut times = Vec::with_capacity(options.probes);
    for _ in 0..options.probes {
        let start = Instant::now();
        interactive.sql(interactive_sql).await?;
        times.push(start.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for runner in runners {
        runner.await??;
    }
    Ok(times)
}

/// Runs the three scenarios `rounds` times, alternating, and returns the
/// medians over every probe.
pub async fn measure(options: &PoolCapOptions) -> Result<PoolCapReport> {
    let batch_sql = tpch::query(options.batch_query)
        .with_context(|| format!("no TPC-H query {}", options.batch_query))?;
    let interactive_sql = tpch::query(options.interactive_query)
        .with_context(|| format!("no TPC-H query {}", options.interactive_query))?;
    let cap = (options.slots / 2).max(1);
    // The allocation files are read when a session starts: written to the
    // temporary folder under this process's id, removed once read.
    let dir = std::env::temp_dir();
    let uncapped = session(options, None, &dir).await?;
    let capped = session(options, Some(cap), &dir).await?;
    let mut runs: [Vec<Duration>; 3] = Default::default();
    for round in 1..=options.rounds {
        let alone = probe(&uncapped, options, batch_sql, interactive_sql, false).await?;
        let without = probe(&uncapped, options, batch_sql, interactive_sql, true).await?;
        let with = probe(&capped, options, batch_sql, interactive_sql, true).await?;
        println!(
            "round {round}: interactive Q{} alone {:.3} s, batch uncapped {:.3} s, batch capped at {cap} {:.3} s (medians of {})",
            options.interactive_query,
            median(&alone).as_secs_f64(),
            median(&without).as_secs_f64(),
            median(&with).as_secs_f64(),
            options.probes
        );
        runs[0].extend(alone);
        runs[1].extend(without);
        runs[2].extend(with);
    }
    Ok(PoolCapReport {
        alone: median(&runs[0]),
        uncapped: median(&runs[1]),
        capped: median(&runs[2]),
        cap,
    })
}
