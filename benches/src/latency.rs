//! A short query submitted while a long one runs: its response time under
//! FIFO and FAIR scheduling, against both queries' standalone times.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fairway_engine::{EngineConfig, SchedulingMode, Session};
use fairway_tpch as tpch;

use crate::harness::median;

/// What to run.
#[derive(Debug, Clone)]
pub struct LatencyOptions {
    /// Tables of the long query (`<table>.parquet`).
    pub long_data: PathBuf,
    /// Tables of the short query, registered with the suffix `_short`.
    pub short_data: PathBuf,
    pub long_query: usize,
    pub short_query: usize,
    /// How long after the long query the short one is submitted.
    pub delay: Duration,
    pub iterations: usize,
    pub slots: usize,
    pub partitions: usize,
}

/// Medians of every measurement.
#[derive(Debug, Clone, Default)]
pub struct LatencyReport {
    pub long_alone: Duration,
    pub short_alone: Duration,
    pub short_fifo: Duration,
    pub long_fifo: Duration,
    pub short_fair: Duration,
    pub long_fair: Duration,
    /// FAIR without yielding between batches: Spark's behaviour.
    pub short_fair_no_yield: Duration,
    pub long_fair_no_yield: Duration,
}

/// The short query's text over the `_short` tables.
fn short_sql(query: usize) -> Result<String> {
    let mut sql = tpch::query(query)
        .with_context(|| format!("no TPC-H query {query}"))?
        .to_string();
    for table in tpch::TABLES {
        sql = replace_word(&sql, table, &format!("{table}_short"));
    }
    Ok(sql)
}

/// Replaces whole-word occurrences of `word` (table names, not columns).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().last();
        let after = rest[i + word.len()..].chars().next();
        let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..i]);
        if is_word(before) || is_word(after) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

async fn session(
    options: &LatencyOptions,
    mode: SchedulingMode,
    preemption: bool,
) -> Result<Session> {
    let mut config = EngineConfig::with_slots(options.slots).partitions(options.partitions);
    config.scheduler_mode = mode;
    config.preemption = preemption;
    let session = Session::new(config)?;
    for table in tpch::TABLES {
        let long = options.long_data.join(format!("{table}.parquet"));
        let short = options.short_data.join(format!("{table}.parquet"));
        session
            .register_table(table, &long.to_string_lossy())
            .await?;
        session
            .register_table(&format!("{table}_short"), &short.to_string_lossy())
            .await?;
    }
    Ok(session)
}

/// One contended run: the long query starts, the short one follows after
/// `delay` in another pool. Returns (short response time, long time).
async fn contended(
    session: &Session,
    long_sql: &str,
    short_sql: &str,
    delay: Duration,
) -> Result<(Duration, Duration)> {
    let long_client = session.with_pool("long")?;
    let short_client = session.with_pool("short")?;
    let long_sql = long_sql.to_string();
    let start = Instant::now();
    let long = tokio::spawn(async move {
        let out = long_client.sql(&long_sql).await;
        (out, start.elapsed())
    });
    tokio::time::sleep(delay).await;
    let short_start = Instant::now();
    short_client.sql(short_sql).await?;
    let short = short_start.elapsed();
    let (out, long_time) = long.await?;
    out?;
    Ok((short, long_time))
}

async fn timed(session: &Session, sql: &str) -> Result<Duration> {
    let start = Instant::now();
    session.sql(sql).await?;
    Ok(start.elapsed())
}

/// Runs every scenario `iterations` times, alternating them, and returns
/// the medians.
pub async fn measure(options: &LatencyOptions) -> Result<LatencyReport> {
    let long_sql = tpch::query(options.long_query)
        .with_context(|| format!("no TPC-H query {}", options.long_query))?;
    let short_sql = short_sql(options.short_query)?;
    let fifo = session(options, SchedulingMode::Fifo, false).await?;
    let fair = session(options, SchedulingMode::Fair, true).await?;
    let fair_no_yield = session(options, SchedulingMode::Fair, false).await?;
    let mut runs: [Vec<Duration>; 8] = Default::default();
    for i in 0..options.iterations {
        runs[0].push(timed(&fifo, long_sql).await?);
        runs[1].push(timed(&fifo, &short_sql).await?);
        let (s, l) = contended(&fifo, long_sql, &short_sql, options.delay).await?;
        runs[2].push(s);
        runs[3].push(l);
        let (s, l) = contended(&fair, long_sql, &short_sql, options.delay).await?;
        runs[4].push(s);
        runs[5].push(l);
        let (s, l) = contended(&fair_no_yield, long_sql, &short_sql, options.delay).await?;
        runs[6].push(s);
        runs[7].push(l);
        println!(
            "run {}: long alone {:.2} s, short alone {:.3} s, FIFO short {:.3} s / long {:.2} s, \
             FAIR short {:.3} s / long {:.2} s, FAIR without yielding short {:.3} s / long {:.2} s",
            i + 1,
            runs[0][i].as_secs_f64(),
            runs[1][i].as_secs_f64(),
            runs[2][i].as_secs_f64(),
            runs[3][i].as_secs_f64(),
            runs[4][i].as_secs_f64(),
            runs[5][i].as_secs_f64(),
            runs[6][i].as_secs_f64(),
            runs[7][i].as_secs_f64()
        );
    }
    Ok(LatencyReport {
        long_alone: median(&runs[0]),
        short_alone: median(&runs[1]),
        short_fifo: median(&runs[2]),
        long_fifo: median(&runs[3]),
        short_fair: median(&runs[4]),
        long_fair: median(&runs[5]),
        short_fair_no_yield: median(&runs[6]),
        long_fair_no_yield: median(&runs[7]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_table_names_are_renamed() {
        assert_eq!(
            replace_word(
                "select l_orderkey from lineitem, orders",
                "lineitem",
                "lineitem_short"
            ),
            "select l_orderkey from lineitem_short, orders"
        );
        let q6 = short_sql(6).unwrap();
        assert!(q6.contains("lineitem_short"));
        assert!(q6.contains("l_extendedprice"), "columns keep their names");
    }
}
