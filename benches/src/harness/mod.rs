//! TPC-H benchmarks: fairway's stage engine against plain DataFusion, in the
//! same process, alternating, with every answer checked.
//!
//! [`prepare_data`] generates the tables (or reuses them), [`run_tpch`] runs
//! either the *power* test (each query `iterations` times per engine, the
//! engines taking turns) or the *throughput* test (`streams` concurrent query
//! streams, each the 22 queries in the TPC-H specification's order for that
//! stream, see [`STREAM_ORDER`]). The resulting [`TpchBenchReport`] prints as
//! a table, serialises to JSON with the machine and settings, and draws as a
//! self-contained SVG chart. `fairway bench tpch` drives it.
//!
//! Both engines get the same resources: fairway runs tasks on `slots` slots;
//! plain DataFusion runs on a tokio runtime of `slots` worker threads, with
//! the same number of target partitions (see
//! [`fairway_engine::plain_datafusion_context`]). Planning is included in every time.
//!
//! Answers are checked outside the timed region: every answer of a query
//! must equal the first answer of that query (sorted rows, floats rounded,
//! see [`fairway_engine::rows_as_text`]), so with both engines each engine's answers
//! are compared with the other's; at scale factor 1 every answer is also
//! compared with the published TPC-H answer ([`fairway_tpch::check_sf1_answer`]).
//! A difference does not stop the run: it is recorded in
//! [`TpchBenchReport::mismatches`] (and reported through the progress
//! callback), and the caller decides (the CLI exits with status 1).

pub mod features;
mod plot;
mod report;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fairway_engine::datafusion::arrow::record_batch::RecordBatch;
use fairway_engine::datafusion::prelude::SessionContext;

use fairway_engine::{EngineConfig, EngineError, Session};
use fairway_tpch::{self as tpch, GenerateSummary, TpchError};

pub use report::{MachineInfo, Stats, ThroughputSummary};

/// The TPC-H specification's query order for streams 0 to 40 (stream 0 is
/// the power test; throughput stream `s` uses row `s`). From the TPC-H
/// specification (revisions 2.17 to 3.0), Appendix A "Ordered Sets"; checked
/// against several independent transcriptions in public benchmark drivers,
/// and every row is a permutation of 1..=22 (a unit test checks that).
pub const STREAM_ORDER: [[usize; 22]; 41] = [
    [
        14, 2, 9, 20, 6, 17, 18, 8, 21, 13, 3, 22, 16, 4, 11, 15, 1, 10, 19, 5, 7, 12,
    ],
    [
        21, 3, 18, 5, 11, 7, 6, 20, 17, 12, 16, 15, 13, 10, 2, 8, 14, 19, 9, 22, 1, 4,
    ],
    [
        6, 17, 14, 16, 19, 10, 9, 2, 15, 8, 5, 22, 12, 7, 13, 18, 1, 4, 20, 3, 11, 21,
    ],
    [
        8, 5, 4, 6, 17, 7, 1, 18, 22, 14, 9, 10, 15, 11, 20, 2, 21, 19, 13, 16, 12, 3,
    ],
    [
        5, 21, 14, 19, 15, 17, 12, 6, 4, 9, 8, 16, 11, 2, 10, 18, 1, 13, 7, 22, 3, 20,
    ],
    [
        21, 15, 4, 6, 7, 16, 19, 18, 14, 22, 11, 13, 3, 1, 2, 5, 8, 20, 12, 17, 10, 9,
    ],
    [
        10, 3, 15, 13, 6, 8, 9, 7, 4, 11, 22, 18, 12, 1, 5, 16, 2, 14, 19, 20, 17, 21,
    ],
    [
        18, 8, 20, 21, 2, 4, 22, 17, 1, 11, 9, 19, 3, 13, 5, 7, 10, 16, 6, 14, 15, 12,
    ],
    [
        19, 1, 15, 17, 5, 8, 9, 12, 14, 7, 4, 3, 20, 16, 6, 22, 10, 13, 2, 21, 18, 11,
    ],
    [
        8, 13, 2, 20, 17, 3, 6, 21, 18, 11, 19, 10, 15, 4, 22, 1, 7, 12, 9, 14, 5, 16,
    ],
    [
        6, 15, 18, 17, 12, 1, 7, 2, 22, 13, 21, 10, 14, 9, 3, 16, 20, 19, 11, 4, 8, 5,
    ],
    [
        15, 14, 18, 17, 10, 20, 16, 11, 1, 8, 4, 22, 5, 12, 3, 9, 21, 2, 13, 6, 19, 7,
    ],
    [
        1, 7, 16, 17, 18, 22, 12, 6, 8, 9, 11, 4, 2, 5, 20, 21, 13, 10, 19, 3, 14, 15,
    ],
    [
        21, 17, 7, 3, 1, 10, 12, 22, 9, 16, 6, 11, 2, 4, 5, 14, 8, 20, 13, 18, 15, 19,
    ],
    [
        2, 9, 5, 4, 18, 1, 20, 15, 16, 17, 7, 21, 13, 14, 19, 8, 22, 11, 10, 3, 12, 6,
    ],
    [
        16, 9, 17, 8, 14, 11, 10, 12, 6, 21, 7, 3, 15, 5, 22, 20, 1, 13, 19, 2, 4, 18,
    ],
    [
        1, 3, 6, 5, 2, 16, 14, 22, 17, 20, 4, 9, 10, 11, 15, 8, 12, 19, 18, 13, 7, 21,
    ],
    [
        3, 16, 5, 11, 21, 9, 2, 15, 10, 18, 17, 7, 8, 19, 14, 13, 1, 4, 22, 20, 6, 12,
    ],
    [
        14, 4, 13, 5, 21, 11, 8, 6, 3, 17, 2, 20, 1, 19, 10, 9, 12, 18, 15, 7, 22, 16,
    ],
    [
        4, 12, 22, 14, 5, 15, 16, 2, 8, 10, 17, 9, 21, 7, 3, 6, 13, 18, 11, 20, 19, 1,
    ],
    [
        16, 15, 14, 13, 4, 22, 18, 19, 7, 1, 12, 17, 5, 10, 20, 3, 9, 21, 11, 2, 6, 8,
    ],
    [
        20, 14, 21, 12, 15, 17, 4, 19, 13, 10, 11, 1, 16, 5, 18, 7, 8, 22, 9, 6, 3, 2,
    ],
    [
        16, 14, 13, 2, 21, 10, 11, 4, 1, 22, 18, 12, 19, 5, 7, 8, 6, 3, 15, 20, 9, 17,
    ],
    [
        18, 15, 9, 14, 12, 2, 8, 11, 22, 21, 16, 1, 6, 17, 5, 10, 19, 4, 20, 13, 3, 7,
    ],
    [
        7, 3, 10, 14, 13, 21, 18, 6, 20, 4, 9, 8, 22, 15, 2, 1, 5, 12, 19, 17, 11, 16,
    ],
    [
        18, 1, 13, 7, 16, 10, 14, 2, 19, 5, 21, 11, 22, 15, 8, 17, 20, 3, 4, 12, 6, 9,
    ],
    [
        13, 2, 22, 5, 11, 21, 20, 14, 7, 10, 4, 9, 19, 18, 6, 3, 1, 8, 15, 12, 17, 16,
    ],
    [
        14, 17, 21, 8, 2, 9, 6, 4, 5, 13, 22, 7, 15, 3, 1, 18, 16, 11, 10, 12, 20, 19,
    ],
    [
        10, 22, 1, 12, 13, 18, 21, 20, 2, 14, 16, 7, 15, 3, 4, 17, 5, 19, 6, 8, 9, 11,
    ],
    [
        10, 8, 9, 18, 12, 6, 1, 5, 20, 11, 17, 22, 16, 3, 13, 2, 15, 21, 14, 19, 7, 4,
    ],
    [
        7, 17, 22, 5, 3, 10, 13, 18, 9, 1, 14, 15, 21, 19, 16, 12, 8, 6, 11, 20, 4, 2,
    ],
    [
        2, 9, 21, 3, 4, 7, 1, 11, 16, 5, 20, 19, 18, 8, 17, 13, 10, 12, 15, 6, 14, 22,
    ],
    [
        15, 12, 8, 4, 22, 13, 16, 17, 18, 3, 7, 5, 6, 1, 9, 11, 21, 10, 14, 20, 19, 2,
    ],
    [
        15, 16, 2, 11, 17, 7, 5, 14, 20, 4, 21, 3, 10, 9, 12, 8, 13, 6, 18, 19, 22, 1,
    ],
    [
        1, 13, 11, 3, 4, 21, 6, 14, 15, 22, 18, 9, 7, 5, 10, 20, 12, 16, 17, 8, 19, 2,
    ],
    [
        14, 17, 22, 20, 8, 16, 5, 10, 1, 13, 2, 21, 12, 9, 4, 18, 3, 7, 6, 19, 15, 11,
    ],
    [
        9, 17, 7, 4, 5, 13, 21, 18, 11, 3, 22, 1, 6, 16, 20, 14, 15, 10, 8, 2, 12, 19,
    ],
    [
        13, 14, 5, 22, 19, 11, 9, 6, 18, 15, 8, 10, 7, 4, 17, 16, 3, 1, 12, 2, 21, 20,
    ],
    [
        20, 5, 4, 14, 11, 1, 6, 16, 8, 22, 7, 3, 2, 12, 21, 19, 17, 13, 10, 15, 18, 9,
    ],
    [
        3, 7, 14, 15, 6, 5, 21, 20, 18, 10, 4, 16, 19, 1, 13, 9, 8, 17, 11, 12, 22, 2,
    ],
    [
        13, 15, 17, 1, 22, 11, 3, 4, 7, 20, 14, 21, 9, 8, 2, 18, 16, 6, 10, 12, 5, 19,
    ],
];

/// The query order of throughput stream `stream` (0-based): the
/// specification's stream `stream + 1` (stream 0 being the power test's),
/// wrapping around after stream 40 as the specification does.
pub fn stream_order(stream: usize) -> &'static [usize; 22] {
    &STREAM_ORDER[1 + stream % 40]
}

/// An engine under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BenchEngine {
    /// fairway's stage engine (a [`Session`]).
    Fairway,
    /// Plain DataFusion (a `SessionContext`), the baseline.
    DataFusion,
}

impl BenchEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            BenchEngine::Fairway => "fairway",
            BenchEngine::DataFusion => "datafusion",
        }
    }
}

impl fmt::Display for BenchEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BenchEngine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fairway" => Ok(BenchEngine::Fairway),
            "datafusion" | "df" => Ok(BenchEngine::DataFusion),
            other => Err(format!(
                "unknown engine '{other}' (expected fairway or datafusion)"
            )),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct TpchBenchOptions {
    /// Scale factor of the data (published answers exist for 1 only).
    pub scale_factor: f64,
    /// Folder with `<table>.parquet` for every TPC-H table.
    pub data: PathBuf,
    /// Queries (1..=22) to run, in this order (power test); the throughput
    /// test keeps these queries in each stream's specified order.
    pub queries: Vec<usize>,
    /// Runs per query and engine (power) or per engine (throughput).
    pub iterations: usize,
    /// Engines, in the order of the first iteration; later iterations
    /// rotate the order so that no engine always goes first.
    pub engines: Vec<BenchEngine>,
    /// `Some(s)`: the throughput test with `s` concurrent streams.
    pub streams: Option<usize>,
    /// fairway's settings; plain DataFusion gets `slots` worker threads and
    /// `partitions` target partitions from it.
    pub fairway: EngineConfig,
}

impl TpchBenchOptions {
    /// Checks the options, naming the one at fault.
    pub fn validate(&self) -> Result<(), BenchError> {
        if !self.scale_factor.is_finite() || self.scale_factor <= 0.0 {
            return Err(BenchError::option(
                "--sf",
                format!("{} is not a number greater than 0", self.scale_factor),
            ));
        }
        if self.queries.is_empty() {
            return Err(BenchError::option("--queries", "no query given"));
        }
        if let Some(q) = self.queries.iter().find(|q| !(1..=22).contains(*q)) {
            return Err(BenchError::option(
                "--queries",
                format!("there is no TPC-H query {q} (queries are 1 to 22)"),
            ));
        }
        if self.iterations == 0 {
            return Err(BenchError::option("--iterations", "must be at least 1"));
        }
        if self.engines.is_empty() {
            return Err(BenchError::option("--engines", "no engine given"));
        }
        if self.streams == Some(0) {
            return Err(BenchError::option("--streams", "must be at least 1"));
        }
        Ok(())
    }

    /// The default data folder for a scale factor, in the user's cache
    /// rather than wherever the command runs: `$XDG_CACHE_HOME/fairway/tpch/
    /// sf<SF>`, else `$HOME/.cache/fairway/tpch/sf<SF>`, else under the
    /// system temp folder.
    pub fn default_data_dir(scale_factor: f64) -> PathBuf {
        let non_empty = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
        let cache = non_empty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache
            .join("fairway")
            .join("tpch")
            .join(format!("sf{scale_factor}"))
    }

    fn published_answers(&self) -> bool {
        self.scale_factor == 1.0
    }
}

/// Failures of a benchmark run (an answer that differs is not one: see
/// [`TpchBenchReport::mismatches`]).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("option {option}: {message}")]
    Option { option: String, message: String },
    #[error("TPC-H data in {}: {message}", path.display())]
    Data { path: PathBuf, message: String },
    #[error(transparent)]
    Generate(#[from] TpchError),
    #[error("Q{query} on {engine}: {source}")]
    Query {
        query: usize,
        engine: BenchEngine,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Features(#[from] fairway_features::FeatureError),
    #[error("cannot start the DataFusion runtime: {0}")]
    Runtime(std::io::Error),
}

impl BenchError {
    fn option(option: &str, message: impl Into<String>) -> Self {
        BenchError::Option {
            option: option.to_string(),
            message: message.into(),
        }
    }
}

/// Makes sure `dir` holds the TPC-H tables at `scale_factor`: generates
/// them when missing, reuses them when the scale-factor marker
/// ([`tpch::SCALE_FACTOR_MARKER`]) matches. A folder that holds TPC-H data
/// of another scale factor, or table files without a marker, is an error
/// rather than being overwritten. Blocking.
pub fn prepare_data(scale_factor: f64, dir: &Path) -> Result<GenerateSummary, BenchError> {
    let marker = dir.join(tpch::SCALE_FACTOR_MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(sf) if sf == scale_factor => {}
            Ok(sf) => {
                return Err(BenchError::Data {
                    path: dir.to_path_buf(),
                    message: format!(
                        "the folder holds scale factor {sf}, not {scale_factor}; \
                         pass --sf {sf} or another --data folder"
                    ),
                });
            }
            Err(_) => {
                return Err(BenchError::Data {
                    path: dir.to_path_buf(),
                    message: format!("{} is not a scale factor", marker.display()),
                });
            }
        },
        Err(_) => {
            if let Some(table) = tpch::TABLES
                .iter()
                .find(|t| dir.join(format!("{t}.parquet")).exists())
            {
                return Err(BenchError::Data {
                    path: dir.to_path_buf(),
                    message: format!(
                        "{table}.parquet exists but {} does not say its scale factor; \
                         use `fairway tpch gen` or an empty folder",
                        tpch::SCALE_FACTOR_MARKER
                    ),
                });
            }
        }
    }
    Ok(tpch::generate_parquet(scale_factor, dir)?)
}

/// One timed run of one query on one engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub engine: BenchEngine,
    pub query: usize,
    /// Iteration (0-based) of the power or throughput test.
    pub iteration: usize,
    /// Throughput stream (0-based), `None` in the power test.
    pub stream: Option<usize>,
    /// When the query was submitted, from the start of its test run.
    pub start: Duration,
    /// From submission (planning included) to the last row collected.
    pub elapsed: Duration,
    pub rows: usize,
}

/// One run of the throughput test on one engine.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputRun {
    pub engine: BenchEngine,
    pub iteration: usize,
    /// From the first query's submission to the last stream's end.
    pub elapsed: Duration,
}

/// Everything one benchmark run measured.
#[derive(Debug, Clone)]
pub struct TpchBenchReport {
    pub options: TpchBenchOptions,
    pub measurements: Vec<Measurement>,
    /// Throughput test only.
    pub throughput_runs: Vec<ThroughputRun>,
    /// Every answer that differed from the other engine's or from the
    /// published one, as a sentence. Empty when all matched.
    pub mismatches: Vec<String>,
    /// Answers compared (each with the first answer of its query, and with
    /// the published answer at SF 1).
    pub answers_checked: usize,
    pub machine: MachineInfo,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
}

/// Checks answers: each against the first answer of its query, and against
/// the published answer at SF 1.
struct Verifier {
    published: bool,
    first: HashMap<usize, (BenchEngine, Vec<String>)>,
    mismatches: Vec<String>,
    checked: usize,
}

impl Verifier {
    fn new(published: bool) -> Self {
        Self {
            published,
            first: HashMap::new(),
            mismatches: Vec::new(),
            checked: 0,
        }
    }

    /// Returns the mismatch found, if any (already recorded).
    fn check(
        &mut self,
        engine: BenchEngine,
        query: usize,
        run: &str,
        batches: &[RecordBatch],
    ) -> Result<Option<String>, BenchError> {
        self.checked += 1;
        let mut problems = Vec::new();
        if self.published
            && let Err(e) = tpch::check_sf1_answer(query, batches)
        {
            problems.push(format!(
                "Q{query} on {engine} ({run}) differs from the published SF 1 answer: {e}"
            ));
        }
        let rows = canonical_rows(batches).map_err(|source| BenchError::Query {
            query,
            engine,
            source,
        })?;
        match self.first.get(&query) {
            None => {
                self.first.insert(query, (engine, rows));
            }
            Some((first_engine, expected)) if *expected != rows => {
                problems.push(format!(
                    "Q{query} on {engine} ({run}) differs from {first_engine}'s answer: {}",
                    first_difference(expected, &rows)
                ));
            }
            Some(_) => {}
        }
        if problems.is_empty() {
            return Ok(None);
        }
        let text = problems.join("; ");
        self.mismatches.push(text.clone());
        Ok(Some(text))
    }
}

/// Checks one run's answer (reporting a mismatch at once) and records its
/// measurement.
fn record(
    verifier: &mut Verifier,
    report: &mut TpchBenchReport,
    progress: &(dyn Fn(&str) + Sync),
    run: &str,
    batches: &[RecordBatch],
    measurement: Measurement,
) -> Result<(), BenchError> {
    if let Some(problem) = verifier.check(measurement.engine, measurement.query, run, batches)? {
        progress(&format!("MISMATCH: {problem}"));
    }
    report.measurements.push(measurement);
    Ok(())
}

fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// A DataFusion query task that panicked or was cancelled.
fn task_failed(query: usize, e: tokio::task::JoinError) -> BenchError {
    BenchError::Query {
        query,
        engine: BenchEngine::DataFusion,
        source: EngineError::DataFusion(datafusion::error::DataFusionError::External(Box::new(e))),
    }
}

fn first_difference(expected: &[String], got: &[String]) -> String {
    let cut = |s: &str| {
        if s.chars().count() > 120 {
            s.chars().take(119).collect::<String>() + "…"
        } else {
            s.to_string()
        }
    };
    if expected.len() != got.len() {
        return format!("{} rows instead of {}", got.len(), expected.len());
    }
    match expected.iter().zip(got).position(|(e, g)| e != g) {
        Some(i) => format!(
            "sorted row {i} is [{}], expected [{}]",
            cut(&got[i]),
            cut(&expected[i])
        ),
        None => "same rows".to_string(),
    }
}

/// Rows as sorted text (see [`fairway_engine::rows_as_text`]), so that answers that
/// differ only in row order or float noise compare equal.
pub fn canonical_rows(batches: &[RecordBatch]) -> fairway_engine::Result<Vec<String>> {
    let mut rows = fairway_engine::rows_as_text(batches)?;
    rows.sort();
    Ok(rows)
}

/// Median (mean of the middle two for an even count); zero when empty.
pub fn median(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// Nearest-rank percentile `p` (0 < p <= 100) of `values`; zero when empty.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Geometric mean of positive values; NaN when there are none.
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

/// Plain DataFusion on its own runtime of `slots` worker threads.
struct PlainEngine {
    runtime: Option<tokio::runtime::Runtime>,
    ctx: Arc<SessionContext>,
}

impl PlainEngine {
    fn new(slots: usize, partitions: usize) -> Result<Self, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(slots.max(1))
            .thread_name("datafusion-worker")
            .enable_all()
            .build()
            .map_err(BenchError::Runtime)?;
        Ok(Self {
            runtime: Some(runtime),
            ctx: Arc::new(fairway_engine::plain_datafusion_context(partitions)),
        })
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.as_ref().expect("runtime").handle().clone()
    }

    async fn run(&self, query: usize, sql: &'static str) -> Result<Vec<RecordBatch>, BenchError> {
        let ctx = Arc::clone(&self.ctx);
        self.handle()
            .spawn(async move { plain_collect(&ctx, sql).await })
            .await
            .map_err(|e| task_failed(query, e))?
            .map_err(|source| BenchError::Query {
                query,
                engine: BenchEngine::DataFusion,
                source,
            })
    }
}

impl Drop for PlainEngine {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs every statement of `sql` on a plain context, returning the last
/// one's rows.
async fn plain_collect(
    ctx: &SessionContext,
    sql: &str,
) -> fairway_engine::Result<Vec<RecordBatch>> {
    let mut last = Vec::new();
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

/// The engines under test, set up with the tables.
struct Engines {
    fairway: Option<Session>,
    plain: Option<PlainEngine>,
}

impl Engines {
    async fn start(options: &TpchBenchOptions) -> Result<Self, BenchError> {
        let data = options.data.display().to_string();
        for table in tpch::TABLES {
            let path = options.data.join(format!("{table}.parquet"));
            if !path.exists() {
                return Err(BenchError::Data {
                    path: options.data.clone(),
                    message: format!("{table}.parquet is missing"),
                });
            }
        }
        let mut engines = Engines {
            fairway: None,
            plain: None,
        };
        if options.engines.contains(&BenchEngine::Fairway) {
            let session = Session::new(options.fairway.clone())?;
            for table in tpch::TABLES {
                session
                    .register_table(table, &format!("{data}/{table}.parquet"))
                    .await?;
            }
            engines.fairway = Some(session);
        }
        if options.engines.contains(&BenchEngine::DataFusion) {
            let plain = PlainEngine::new(options.fairway.slots, options.fairway.partitions)?;
            for table in tpch::TABLES {
                fairway_engine::register_table(
                    &plain.ctx,
                    table,
                    &format!("{data}/{table}.parquet"),
                )
                .await?;
            }
            engines.plain = Some(plain);
        }
        Ok(engines)
    }

    /// Runs `query` once on `engine` (a client of the session for fairway),
    /// returning its rows and elapsed time.
    async fn run(
        &self,
        engine: BenchEngine,
        client: Option<&Session>,
        query: usize,
    ) -> Result<(Vec<RecordBatch>, Duration), BenchError> {
        let sql = tpch::query(query).expect("validated query number");
        let start = Instant::now();
        let batches = match engine {
            BenchEngine::Fairway => {
                let session = client.or(self.fairway.as_ref()).expect("fairway session");
                session
                    .sql(sql)
                    .await
                    .map_err(|source| BenchError::Query {
                        query,
                        engine,
                        source,
                    })?
                    .batches
            }
            BenchEngine::DataFusion => {
                self.plain
                    .as_ref()
                    .expect("datafusion context")
                    .run(query, sql)
                    .await?
            }
        };
        Ok((batches, start.elapsed()))
    }
}

/// Engines in the order of iteration `iteration`: the given order rotated.
fn engine_order(engines: &[BenchEngine], iteration: usize) -> Vec<BenchEngine> {
    let mut order = engines.to_vec();
    let n = order.len();
    order.rotate_left(iteration % n);
    order
}

/// Runs the benchmark described by `options` on data already prepared
/// ([`prepare_data`]). `progress` receives one line per finished query (or
/// throughput run) and every mismatch as it is found.
pub async fn run_tpch(
    options: &TpchBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<TpchBenchReport, BenchError> {
    options.validate()?;
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let engines = Engines::start(options).await?;
    let mut verifier = Verifier::new(options.published_answers());
    let mut report = TpchBenchReport {
        options: options.clone(),
        measurements: Vec::new(),
        throughput_runs: Vec::new(),
        mismatches: Vec::new(),
        answers_checked: 0,
        machine: MachineInfo::current(),
        started_unix,
    };
    match options.streams {
        None => power(options, &engines, &mut verifier, &mut report, progress).await?,
        Some(streams) => {
            throughput(
                options,
                streams,
                &engines,
                &mut verifier,
                &mut report,
                progress,
            )
            .await?
        }
    }
    report.mismatches = verifier.mismatches;
    report.answers_checked = verifier.checked;
    Ok(report)
}

async fn power(
    options: &TpchBenchOptions,
    engines: &Engines,
    verifier: &mut Verifier,
    report: &mut TpchBenchReport,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), BenchError> {
    let run_start = Instant::now();
    for &query in &options.queries {
        for iteration in 0..options.iterations {
            for engine in engine_order(&options.engines, iteration) {
                let start = run_start.elapsed();
                let (batches, elapsed) = engines.run(engine, None, query).await?;
                let run = format!("run {}", iteration + 1);
                let measurement = Measurement {
                    engine,
                    query,
                    iteration,
                    stream: None,
                    start,
                    elapsed,
                    rows: row_count(&batches),
                };
                record(verifier, report, progress, &run, &batches, measurement)?;
            }
        }
        progress(&report.query_line(query));
    }
    Ok(())
}

async fn throughput(
    options: &TpchBenchOptions,
    streams: usize,
    engines: &Engines,
    verifier: &mut Verifier,
    report: &mut TpchBenchReport,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), BenchError> {
    // Each stream runs the chosen queries in its specified order.
    let orders: Vec<Vec<usize>> = (0..streams)
        .map(|s| {
            stream_order(s)
                .iter()
                .copied()
                .filter(|q| options.queries.contains(q))
                .collect()
        })
        .collect();
    for iteration in 0..options.iterations {
        for engine in engine_order(&options.engines, iteration) {
            let run_start = Instant::now();
            // (stream, query, start, elapsed, batches) of every query run;
            // answers are checked after the timed run.
            let results: Vec<(usize, usize, Duration, Duration, Vec<RecordBatch>)> = match engine {
                BenchEngine::Fairway => {
                    let session = engines.fairway.as_ref().expect("fairway session");
                    let mut clients = Vec::with_capacity(streams);
                    for stream in 0..streams {
                        // Under FAIR, every stream is a pool of its own, as
                        // concurrent users would be; under FIFO pools are
                        // ignored.
                        clients.push(session.with_pool(&format!("stream{stream}"))?);
                    }
                    let runs = clients.iter().enumerate().map(|(stream, client)| {
                        let order = &orders[stream];
                        async move {
                            let mut out = Vec::with_capacity(order.len());
                            for &query in order {
                                let start = run_start.elapsed();
                                let (batches, elapsed) =
                                    engines.run(engine, Some(client), query).await?;
                                out.push((stream, query, start, elapsed, batches));
                            }
                            Ok::<_, BenchError>(out)
                        }
                    });
                    let mut all = Vec::new();
                    for stream in futures::future::join_all(runs).await {
                        all.extend(stream?);
                    }
                    all
                }
                BenchEngine::DataFusion => {
                    let plain = engines.plain.as_ref().expect("datafusion context");
                    let handle = plain.handle();
                    let tasks: Vec<_> = orders
                        .iter()
                        .enumerate()
                        .map(|(stream, order)| {
                            let ctx = Arc::clone(&plain.ctx);
                            let order = order.clone();
                            handle.spawn(async move {
                                let mut out = Vec::with_capacity(order.len());
                                for query in order {
                                    let sql = tpch::query(query).expect("validated query");
                                    let start = run_start.elapsed();
                                    let t = Instant::now();
                                    let batches =
                                        plain_collect(&ctx, sql).await.map_err(|source| {
                                            BenchError::Query {
                                                query,
                                                engine,
                                                source,
                                            }
                                        })?;
                                    out.push((stream, query, start, t.elapsed(), batches));
                                }
                                Ok::<_, BenchError>(out)
                            })
                        })
                        .collect();
                    let mut all = Vec::new();
                    for task in tasks {
                        let stream = task.await.map_err(|e| task_failed(0, e))?;
                        all.extend(stream?);
                    }
                    all
                }
            };
            let elapsed = run_start.elapsed();
            report.throughput_runs.push(ThroughputRun {
                engine,
                iteration,
                elapsed,
            });
            for (stream, query, start, took, batches) in results {
                let run = format!("run {}, stream {}", iteration + 1, stream + 1);
                let measurement = Measurement {
                    engine,
                    query,
                    iteration,
                    stream: Some(stream),
                    start,
                    elapsed: took,
                    rows: row_count(&batches),
                };
                record(verifier, report, progress, &run, &batches, measurement)?;
            }
            let queries: usize = orders.iter().map(Vec::len).sum();
            progress(&format!(
                "run {} {engine}: {streams} streams, {queries} queries in {:.3} s",
                iteration + 1,
                elapsed.as_secs_f64()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_order_is_a_permutation_of_the_22_queries() {
        for (i, row) in STREAM_ORDER.iter().enumerate() {
            let mut sorted = row.to_vec();
            sorted.sort();
            assert_eq!(sorted, (1..=22).collect::<Vec<_>>(), "stream {i}");
        }
        assert_eq!(STREAM_ORDER[0][..3], [14, 2, 9]);
        assert_eq!(stream_order(0)[..3], [21, 3, 18]);
        assert_eq!(stream_order(40), stream_order(0));
    }

    #[test]
    fn statistics() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
        assert_eq!(median(&[]), Duration::ZERO);
        let values: Vec<_> = (1..=10).map(ms).collect();
        assert_eq!(percentile(&values, 50.0), ms(5));
        assert_eq!(percentile(&values, 90.0), ms(9));
        assert_eq!(percentile(&values, 99.0), ms(10));
        assert_eq!(percentile(&values, 100.0), ms(10));
        assert!((geometric_mean([1.0, 4.0]) - 2.0).abs() < 1e-12);
        assert!(geometric_mean([]).is_nan());
    }

    #[test]
    fn engines_take_turns() {
        let both = [BenchEngine::Fairway, BenchEngine::DataFusion];
        assert_eq!(engine_order(&both, 0), both);
        assert_eq!(
            engine_order(&both, 1),
            [BenchEngine::DataFusion, BenchEngine::Fairway]
        );
        assert_eq!(
            "DataFusion".parse::<BenchEngine>(),
            Ok(BenchEngine::DataFusion)
        );
        assert!(
            "spark"
                .parse::<BenchEngine>()
                .unwrap_err()
                .contains("spark")
        );
    }

    #[test]
    fn data_of_another_scale_factor_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(tpch::SCALE_FACTOR_MARKER), "10\n").unwrap();
        let err = prepare_data(1.0, dir.path()).unwrap_err().to_string();
        assert!(err.contains("scale factor 10, not 1"), "{err}");
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("lineitem.parquet"), "x").unwrap();
        let err = prepare_data(1.0, other.path()).unwrap_err().to_string();
        assert!(err.contains("lineitem.parquet exists"), "{err}");
        assert!(other.path().join("lineitem.parquet").exists());
    }

    #[test]
    fn verifier_compares_with_the_first_answer() {
        use fairway_engine::datafusion::arrow::array::Int64Array;
        use fairway_engine::datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = |v: Vec<i64>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(v))]).unwrap()
        };
        let mut v = Verifier::new(false);
        let fw = BenchEngine::Fairway;
        let df = BenchEngine::DataFusion;
        assert_eq!(v.check(fw, 3, "run 1", &[batch(vec![2, 1])]).unwrap(), None);
        // Row order does not matter.
        assert_eq!(v.check(df, 3, "run 1", &[batch(vec![1, 2])]).unwrap(), None);
        let problem = v
            .check(df, 3, "run 2", &[batch(vec![1, 3])])
            .unwrap()
            .unwrap();
        assert!(
            problem.contains("Q3 on datafusion (run 2) differs from fairway's"),
            "{problem}"
        );
        assert!(
            problem.contains("sorted row 1 is [3], expected [2]"),
            "{problem}"
        );
        assert_eq!(v.mismatches.len(), 1);
        assert_eq!(v.checked, 3);
    }
}
