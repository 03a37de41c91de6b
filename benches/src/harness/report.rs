//! What a benchmark run reports: statistics, the text table, JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::{BenchEngine, TpchBenchReport, geometric_mean, median, percentile};

/// The machine a run was measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineInfo {
    /// Hardware threads available to the process.
    pub cores: usize,
    /// Total memory (Linux `/proc/meminfo`), when known.
    pub memory_bytes: Option<u64>,
    /// CPU model (Linux `/proc/cpuinfo`), when known.
    pub cpu: Option<String>,
    pub os: &'static str,
    pub arch: &'static str,
    /// 1-minute load average when the run started (Linux), a hint of how
    /// busy the machine was.
    pub load_average: Option<f64>,
}

impl MachineInfo {
    pub fn current() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let memory_bytes = read("/proc/meminfo").and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
        });
        let cpu = read("/proc/cpuinfo").and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        let load_average = read("/proc/loadavg")
            .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok());
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            cpu,
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            load_average,
        }
    }
}

/// Times of one query on one engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub runs: usize,
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
    /// 90th percentile (nearest rank).
    pub p90: Duration,
}

/// One engine's throughput test.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputSummary {
    pub engine: BenchEngine,
    /// Elapsed time of each run.
    pub runs: Vec<Duration>,
    pub median_elapsed: Duration,
    /// Queries finished in one run (all streams).
    pub queries_per_run: usize,
    /// `queries_per_run` per hour at the median elapsed time.
    pub queries_per_hour: f64,
    /// Response-time percentiles over every query of every run.
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl TpchBenchReport {
    /// Queries in the order given.
    pub fn queries(&self) -> &[usize] {
        &self.options.queries
    }

    /// Engines in the order given.
    pub fn engines(&self) -> &[BenchEngine] {
        &self.options.engines
    }

    fn times(&self, engine: BenchEngine, query: Option<usize>) -> Vec<Duration> {
        self.measurements
            .iter()
            .filter(|m| m.engine == engine && query.is_none_or(|q| m.query == q))
            .map(|m| m.elapsed)
            .collect()
    }

    /// Times of `query` on `engine` over all runs (and streams).
    pub fn stats(&self, engine: BenchEngine, query: usize) -> Option<Stats> {
        let times = self.times(engine, Some(query));
        Some(Stats {
            runs: times.len(),
            median: median(&times),
            min: *times.iter().min()?,
            max: *times.iter().max()?,
            p90: percentile(&times, 90.0),
        })
    }

    /// Geometric mean of the per-query medians of `engine`, in seconds.
    pub fn geometric_mean(&self, engine: BenchEngine) -> Option<f64> {
        let medians: Vec<f64> = self
            .queries()
            .iter()
            .filter_map(|&q| self.stats(engine, q))
            .map(|s| secs(s.median).max(1e-9))
            .collect();
        (!medians.is_empty()).then(|| geometric_mean(medians))
    }

    /// fairway's geometric mean over plain DataFusion's, when both ran.
    pub fn ratio(&self) -> Option<f64> {
        Some(
            self.geometric_mean(BenchEngine::Fairway)?
                / self.geometric_mean(BenchEngine::DataFusion)?,
        )
    }

    /// Whether every answer matched.
    pub fn verified(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// The throughput summary of `engine` (throughput test only).
    pub fn throughput(&self, engine: BenchEngine) -> Option<ThroughputSummary> {
        let runs: Vec<Duration> = self
            .throughput_runs
            .iter()
            .filter(|r| r.engine == engine)
            .map(|r| r.elapsed)
            .collect();
        if runs.is_empty() {
            return None;
        }
        let times = self.times(engine, None);
        let queries_per_run = times.len() / runs.len();
        let median_elapsed = median(&runs);
        Some(ThroughputSummary {
            engine,
            queries_per_run,
            queries_per_hour: queries_per_run as f64 * 3600.0 / secs(median_elapsed).max(1e-9),
            median_elapsed,
            runs,
            p50: percentile(&times, 50.0),
            p90: percentile(&times, 90.0),
            p99: percentile(&times, 99.0),
            max: times.iter().copied().max().unwrap_or_default(),
        })
    }

    /// One line for `query`, as printed while the power test runs.
    pub fn query_line(&self, query: usize) -> String {
        let mut line = format!("Q{query:02}");
        for &engine in self.engines() {
            if let Some(s) = self.stats(engine, query) {
                let _ = write!(line, "  {engine} {:.3} s", secs(s.median));
            }
        }
        if let (Some(f), Some(d)) = (
            self.stats(BenchEngine::Fairway, query),
            self.stats(BenchEngine::DataFusion, query),
        ) {
            let _ = write!(line, "  ratio {:.2}", secs(f.median) / secs(d.median));
        }
        line
    }

    /// A sentence about the settings.
    pub fn title(&self) -> String {
        let o = &self.options;
        let runs = match o.streams {
            None => format!("median of {} run{}", o.iterations, plural(o.iterations)),
            Some(s) => format!(
                "throughput: {s} concurrent stream{}, {} run{}, fairway {}",
                plural(s),
                o.iterations,
                plural(o.iterations),
                o.fairway.scheduler_mode.as_str().to_ascii_lowercase()
            ),
        };
        format!(
            "TPC-H SF {}: {} slots, {} partitions, {runs}",
            o.scale_factor, o.fairway.slots, o.fairway.partitions
        )
    }

    /// The results as a text table with the geometric means, the
    /// throughput summary and the verification outcome.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title());
        if cfg!(debug_assertions) {
            let _ = writeln!(
                out,
                "WARNING: a debug build; build with --release for figures worth quoting"
            );
        }
        let throughput = self.options.streams.is_some();
        let _ = write!(out, "{:<6}", "query");
        for engine in self.engines() {
            let head = if throughput {
                format!("{engine} median/p90 s")
            } else {
                format!("{engine} median (min-max) s")
            };
            let _ = write!(out, "  {head:<30}");
        }
        let both = self.engines().len() == 2;
        if both {
            let _ = write!(out, "  {:>6}", "ratio");
        }
        let _ = writeln!(out, "  rows");
        for &query in self.queries() {
            let _ = write!(out, "Q{query:02}   ");
            let mut rows = 0;
            for &engine in self.engines() {
                let cell = match self.stats(engine, query) {
                    Some(s) if throughput => {
                        format!("{:.3} / {:.3}", secs(s.median), secs(s.p90))
                    }
                    Some(s) => format!(
                        "{:.3} ({:.3}-{:.3})",
                        secs(s.median),
                        secs(s.min),
                        secs(s.max)
                    ),
                    None => "-".to_string(),
                };
                rows = self
                    .measurements
                    .iter()
                    .find(|m| m.query == query)
                    .map_or(0, |m| m.rows);
                let _ = write!(out, "  {cell:<30}");
            }
            if both
                && let (Some(f), Some(d)) = (
                    self.stats(BenchEngine::Fairway, query),
                    self.stats(BenchEngine::DataFusion, query),
                )
            {
                let _ = write!(out, "  {:>6.2}", secs(f.median) / secs(d.median));
            }
            let _ = writeln!(out, "  {rows}");
        }
        let _ = write!(out, "{:<6}", "geomean");
        for &engine in self.engines() {
            let cell = self
                .geometric_mean(engine)
                .map_or("-".to_string(), |g| format!("{g:.3}"));
            let _ = write!(out, "  {cell:<30}");
        }
        if let Some(r) = self.ratio() {
            let _ = write!(out, "  {r:>6.3}");
        }
        let _ = writeln!(out);
        for &engine in self.engines() {
            if let Some(t) = self.throughput(engine) {
                let _ = writeln!(
                    out,
                    "{engine}: {} queries per run, elapsed median {:.3} s (runs: {}), \
                     {:.0} queries/hour, response p50 {:.3} s, p90 {:.3} s, p99 {:.3} s, max {:.3} s",
                    t.queries_per_run,
                    secs(t.median_elapsed),
                    t.runs
                        .iter()
                        .map(|r| format!("{:.3}", secs(*r)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    t.queries_per_hour,
                    secs(t.p50),
                    secs(t.p90),
                    secs(t.p99),
                    secs(t.max)
                );
            }
        }
        if let (Some(f), Some(d)) = (
            self.throughput(BenchEngine::Fairway),
            self.throughput(BenchEngine::DataFusion),
        ) {
            let _ = writeln!(
                out,
                "throughput ratio (fairway elapsed / datafusion elapsed): {:.3}",
                secs(f.median_elapsed) / secs(d.median_elapsed)
            );
        }
        let _ = writeln!(out, "{}", self.verification_line());
        out
    }

    /// How the answers were checked and whether they matched.
    pub fn verification_line(&self) -> String {
        let mut against = Vec::new();
        if self.engines().len() > 1 {
            against.push("each other");
        } else {
            against.push("the first answer of each query");
        }
        if self.options.published_answers() {
            against.push("the published SF 1 answers");
        }
        let against = against.join(" and ");
        if self.verified() {
            format!(
                "answers: {} checked against {against}: all match",
                self.answers_checked
            )
        } else {
            format!(
                "ANSWERS DIFFER: {} of {} answers checked against {against} did not match",
                self.mismatches.len(),
                self.answers_checked
            )
        }
    }

    /// [`to_json`](Self::to_json) as indented text with a final newline.
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Every measurement with the machine, versions and settings.
    pub fn to_json(&self) -> Value {
        let o = &self.options;
        let d = |d: Duration| secs(d);
        let per_query: Vec<Value> = self
            .queries()
            .iter()
            .map(|&q| {
                let mut engines = serde_json::Map::new();
                for &engine in self.engines() {
                    if let Some(s) = self.stats(engine, q) {
                        engines.insert(
                            engine.to_string(),
                            json!({
                                "runs": s.runs,
                                "median_s": d(s.median),
                                "min_s": d(s.min),
                                "max_s": d(s.max),
                                "p90_s": d(s.p90),
                            }),
                        );
                    }
                }
                let ratio = match (
                    self.stats(BenchEngine::Fairway, q),
                    self.stats(BenchEngine::DataFusion, q),
                ) {
                    (Some(f), Some(df)) => json!(secs(f.median) / secs(df.median)),
                    _ => Value::Null,
                };
                json!({ "query": q, "engines": engines, "ratio": ratio })
            })
            .collect();
        let mut geo = serde_json::Map::new();
        for &engine in self.engines() {
            geo.insert(
                engine.to_string(),
                json!(self.geometric_mean(engine).unwrap_or(f64::NAN)),
            );
        }
        let throughput: Vec<Value> = self
            .engines()
            .iter()
            .filter_map(|&e| self.throughput(e))
            .map(|t| {
                json!({
                    "engine": t.engine.to_string(),
                    "runs_s": t.runs.iter().map(|r| d(*r)).collect::<Vec<_>>(),
                    "median_elapsed_s": d(t.median_elapsed),
                    "queries_per_run": t.queries_per_run,
                    "queries_per_hour": t.queries_per_hour,
                    "response_p50_s": d(t.p50),
                    "response_p90_s": d(t.p90),
                    "response_p99_s": d(t.p99),
                    "response_max_s": d(t.max),
                })
            })
            .collect();
        let measurements: Vec<Value> = self
            .measurements
            .iter()
            .map(|m| {
                json!({
                    "engine": m.engine.to_string(),
                    "query": m.query,
                    "iteration": m.iteration,
                    "stream": m.stream,
                    "start_s": d(m.start),
                    "elapsed_s": d(m.elapsed),
                    "rows": m.rows,
                })
            })
            .collect();
        let m = &self.machine;
        json!({
            "benchmark": "tpch",
            "test": if o.streams.is_some() { "throughput" } else { "power" },
            "started_unix": self.started_unix,
            "machine": {
                "cores": m.cores,
                "memory_bytes": m.memory_bytes,
                "cpu": m.cpu,
                "os": m.os,
                "arch": m.arch,
                "load_average_1m": m.load_average,
            },
            "versions": {
                "fairway": env!("CARGO_PKG_VERSION"),
                "datafusion": datafusion::DATAFUSION_VERSION,
                "arrow": datafusion::arrow::ARROW_VERSION,
                "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            },
            "settings": {
                "scale_factor": o.scale_factor,
                "data": o.data.display().to_string(),
                "queries": o.queries,
                "iterations": o.iterations,
                "engines": o.engines.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                "streams": o.streams,
                "slots": o.fairway.slots,
                "partitions": o.fairway.partitions,
                "scheduler_mode": o.fairway.scheduler_mode.as_str().to_ascii_lowercase(),
                "shuffle_memory_bytes": o.fairway.shuffle_memory,
                "shuffle_compression": o.fairway.shuffle_compression.to_string(),
                "preemption": o.fairway.preemption,
                "datafusion_settings": o
                    .fairway
                    .datafusion
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            },
            "verification": {
                "answers_checked": self.answers_checked,
                "cross_engine": self.engines().len() > 1,
                "published_answers": o.published_answers(),
                "all_match": self.verified(),
                "mismatches": self.mismatches,
            },
            "summary": {
                "per_query": per_query,
                "geometric_mean_s": geo,
                "ratio": self.ratio(),
                "throughput": throughput,
            },
            "measurements": measurements,
        })
    }
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
