//! TPC-H: fairway's stage engine against plain DataFusion, alternating.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fairway_engine::arrow::record_batch::RecordBatch;
use fairway_engine::datafusion::prelude::SessionContext;
use fairway_engine::{EngineConfig, Session, plain_datafusion_context, rows_as_text, tpch};

/// What to run.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Folder with the 8 tables as `<table>.parquet` (see `fairway tpch gen`).
    pub data: PathBuf,
    pub queries: Vec<usize>,
    pub iterations: usize,
    pub slots: usize,
    pub partitions: usize,
}

/// Timings of one query on both engines.
#[derive(Debug, Clone)]
pub struct QueryTimings {
    pub query: usize,
    pub fairway: Vec<Duration>,
    pub datafusion: Vec<Duration>,
    pub rows: usize,
}

impl QueryTimings {
    pub fn fairway_median(&self) -> Duration {
        median(&self.fairway)
    }

    pub fn datafusion_median(&self) -> Duration {
        median(&self.datafusion)
    }

    pub fn ratio(&self) -> f64 {
        self.fairway_median().as_secs_f64() / self.datafusion_median().as_secs_f64()
    }
}

pub fn median(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// Geometric mean of positive values.
pub fn geometric_mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    if n == 0 {
        f64::NAN
    } else {
        (sum / n as f64).exp()
    }
}

async fn register_both(session: &Session, plain: &SessionContext, data: &str) -> Result<()> {
    for table in tpch::TABLES {
        let path = format!("{data}/{table}.parquet");
        session
            .register_table(table, &path)
            .await
            .with_context(|| format!("registering {path}"))?;
        fairway_engine::register_table(plain, table, &path).await?;
    }
    Ok(())
}

/// Rows as sorted text (see [`rows_as_text`]), so that results that differ
/// only in row order or float noise compare equal.
pub fn canonical_rows(batches: &[RecordBatch]) -> Result<Vec<String>> {
    let mut rows = rows_as_text(batches)?;
    rows.sort();
    Ok(rows)
}

/// Runs the comparison, printing one line per query as it finishes.
pub fn compare(options: &CompareOptions) -> Result<Vec<QueryTimings>> {
    let data = options.data.display().to_string();
    for table in tpch::TABLES {
        let path = options.data.join(format!("{table}.parquet"));
        if !path.exists() {
            bail!(
                "{} is missing; generate the data with `fairway tpch gen --sf 1 --out {}`",
                path.display(),
                data
            );
        }
    }
    // Both engines get `slots` worker threads: fairway through its
    // scheduler, plain DataFusion through a runtime of that size.
    let plain_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.slots)
        .thread_name("datafusion-worker")
        .enable_all()
        .build()?;
    let driver = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let session =
        Session::new(EngineConfig::with_slots(options.slots).partitions(options.partitions))?;
    let plain = plain_datafusion_context(options.partitions);
    driver.block_on(register_both(&session, &plain, &data))?;
    let plain = Arc::new(plain);
    // Published answers exist at scale factor 1 only.
    let sf1 = std::fs::read_to_string(options.data.join(tpch::SCALE_FACTOR_MARKER))
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        == Some(1.0);

    let mut results = Vec::new();
    for &query in &options.queries {
        let sql = tpch::query(query).with_context(|| format!("no TPC-H query {query}"))?;
        let mut timings = QueryTimings {
            query,
            fairway: Vec::new(),
            datafusion: Vec::new(),
            rows: 0,
        };
        for iteration in 0..options.iterations {
            // Alternate which engine goes first, so neither always finds a
            // warm page cache.
            let order = if iteration % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            let mut fairway_rows = None;
            let mut plain_rows = None;
            for fairway_turn in order {
                if fairway_turn {
                    let start = Instant::now();
                    let out = driver.block_on(session.sql(sql))?;
                    timings.fairway.push(start.elapsed());
                    if sf1 && iteration == 0 {
                        tpch::check_sf1_answer(query, &out.batches)
                            .map_err(|e| anyhow::anyhow!("published answer: {e}"))?;
                    }
                    fairway_rows = Some(canonical_rows(&out.batches)?);
                } else {
                    let ctx = Arc::clone(&plain);
                    let sql = sql.to_string();
                    let start = Instant::now();
                    let task =
                        plain_runtime.spawn(async move { plain_runtime_collect(&ctx, &sql).await });
                    let batches = plain_runtime.block_on(task)??;
                    timings.datafusion.push(start.elapsed());
                    plain_rows = Some(canonical_rows(&batches)?);
                }
            }
            let (f, p) = (
                fairway_rows.unwrap_or_default(),
                plain_rows.unwrap_or_default(),
            );
            if f != p {
                bail!(
                    "Q{query}: fairway returned {} rows, DataFusion {} rows, or their values differ",
                    f.len(),
                    p.len()
                );
            }
            timings.rows = f.len();
        }
        println!(
            "Q{:02}  fairway {:>8.3} s  datafusion {:>8.3} s  ratio {:>5.2}  ({} rows{})",
            query,
            timings.fairway_median().as_secs_f64(),
            timings.datafusion_median().as_secs_f64(),
            timings.ratio(),
            timings.rows,
            if sf1 {
                ", matches the published answer"
            } else {
                ""
            }
        );
        results.push(timings);
    }
    Ok(results)
}

async fn plain_runtime_collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let mut last = Vec::new();
    // Q15-style scripts may hold several statements.
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if statement
            .lines()
            .all(|l| l.trim().is_empty() || l.trim().starts_with("--"))
        {
            continue;
        }
        last = ctx.sql(statement).await?.collect().await?;
    }
    Ok(last)
}
