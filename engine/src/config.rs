//! Engine settings: the typed [`EngineConfig`] read at session start, and the
//! `fairway.*` namespace that `SET`, `SHOW` and `--conf` see.

use std::any::Any;
use std::path::PathBuf;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::DataFusionError;
use fairway_scheduler::SchedulingMode;
use fairway_shuffle::ShuffleCompression;

use crate::error::{EngineError, Result};
use crate::faults::FaultInjection;

/// Settings fixed when a [`crate::Session`] starts.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Tasks that may run at once across all jobs (`--slots`).
    pub slots: usize,
    /// Partitions of every shuffle and of file scans (`--partitions`);
    /// DataFusion's `target_partitions`.
    pub partitions: usize,
    /// Bytes of shuffle output kept in memory before map outputs go to files.
    pub shuffle_memory: usize,
    /// Folder for shuffle files (a per-session folder is made inside).
    pub shuffle_dir: PathBuf,
    /// Compression of shuffle files.
    pub shuffle_compression: ShuffleCompression,
    /// How the root pool orders its children (`--scheduler-mode`): FIFO
    /// (jobs in submission order, pools ignored) or FAIR (weighted pools).
    pub scheduler_mode: SchedulingMode,
    /// Spark `fair-scheduler.xml` defining pools (`--allocation-file`); read
    /// in FAIR mode only, as Spark does.
    pub allocation_file: Option<PathBuf>,
    /// Whether values Spark silently replaces by defaults (a non-numeric
    /// weight, an unknown mode, an empty value) are errors (`true`) or
    /// warnings with Spark's fallback (`false`).
    pub allocation_strict: bool,
    /// Whether, in FAIR mode, a task gives its slot to a pool below its fair
    /// share at the next batch boundary (`fairway.scheduler.preemption`,
    /// default true). `false` gives exactly Spark's behaviour, where a pool
    /// waits until running tasks end.
    pub preemption: bool,
    /// Pool of jobs that name none (`--pool`, `fairway.scheduler.pool`).
    pub default_pool: String,
    /// Where to write the JSON-lines event log (`--event-log`).
    pub event_log: Option<PathBuf>,
    /// Rewrite chains of joins on a common key into balanced trees
    /// (`fairway.optimizer.tournament_joins`, default true; also `SET` per
    /// client).
    pub tournament_joins: bool,
    /// Draw live progress bars of running stages on stderr (the CLI turns
    /// this on when stderr is a terminal).
    pub progress: bool,
    /// `datafusion.*` settings to apply, in order.
    pub datafusion: Vec<(String, String)>,
    /// Bound on the memory of all running queries (`--memory-limit`,
    /// `fairway.memory.limit`); `None` (the default) is unbounded. The
    /// shuffle keeps at most a quarter of it in memory (less if
    /// `shuffle_memory` is smaller); DataFusion's operators share the rest
    /// in a fair spill pool, and sorts, aggregations and sort-merge joins
    /// spill to files beyond it. See [`EngineConfig::memory_budgets`].
    pub memory_limit: Option<usize>,
    /// Attempts of a task before its job fails (`fairway.task.max_failures`,
    /// default 4, Spark's `spark.task.maxFailures`); 1 means no retries.
    pub task_max_failures: u32,
    /// Test-only: task attempts that fail on purpose
    /// (`fairway.test.fail_tasks`, `fairway.test.fail_probability`,
    /// `fairway.test.fail_seed`).
    pub faults: FaultInjection,
    /// Run statements on Apache DataFusion Ballista instead of the stage
    /// engine (`--cluster`, `fairway.cluster`): `standalone` or
    /// `df://HOST:PORT`. Needs [`crate::Session::start`].
    pub cluster: Option<crate::cluster::ClusterTarget>,
    /// Statements that may run at once on the cluster, shared by the pools
    /// (`--cluster-slots`, `fairway.cluster.slots`); `None` means `slots`.
    pub cluster_slots: Option<usize>,
    /// Whether `partitions` was chosen; until then it follows `2 x slots`.
    partitions_chosen: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let slots = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_SLOTS);
        Self {
            slots,
            partitions: 2 * slots,
            shuffle_memory: 1 << 30,
            shuffle_dir: std::env::temp_dir(),
            shuffle_compression: ShuffleCompression::Lz4,
            scheduler_mode: SchedulingMode::Fifo,
            allocation_file: None,
            allocation_strict: true,
            preemption: true,
            default_pool: fairway_scheduler::DEFAULT_POOL.to_string(),
            event_log: None,
            tournament_joins: true,
            progress: false,
            datafusion: Vec::new(),
            memory_limit: None,
            task_max_failures: 4,
            faults: FaultInjection::default(),
            cluster: None,
            cluster_slots: None,
            partitions_chosen: false,
        }
    }
}

impl EngineConfig {
    /// A config with `slots` slots and the default `2 x slots` partitions.
    pub fn with_slots(slots: usize) -> Self {
        Self {
            slots,
            partitions: 2 * slots,
            ..Self::default()
        }
    }

    pub fn partitions(mut self, partitions: usize) -> Self {
        self.partitions = partitions;
        self.partitions_chosen = true;
        self
    }

    pub fn shuffle_memory(mut self, bytes: usize) -> Self {
        self.shuffle_memory = bytes;
        self
    }

    /// Applies one `KEY=VALUE` setting: a `fairway.*` key of this struct or
    /// any `datafusion.*` key (checked when the session starts). Setting the
    /// slots also sets the partitions to `2 x slots` unless they were set.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        match key {
            "fairway.scheduler.slots" => {
                self.slots = parse_bounded(key, value, &SLOTS_BOUND)?;
                if !self.partitions_chosen {
                    self.partitions = 2 * self.slots;
                }
            }
            "fairway.shuffle.partitions" | "datafusion.execution.target_partitions" => {
                self.partitions = parse_bounded(key, value, &PARTITIONS_BOUND)?;
                self.partitions_chosen = true;
            }
            "fairway.shuffle.memory" => {
                self.shuffle_memory = parse_size(value).map_err(|m| EngineError::config(key, m))?;
            }
            "fairway.shuffle.dir" => self.shuffle_dir = PathBuf::from(value),
            "fairway.shuffle.compression" => {
                self.shuffle_compression = value
                    .parse()
                    .map_err(|m: String| EngineError::config(key, m))?;
            }
            "fairway.scheduler.mode" => {
                self.scheduler_mode =
                    value
                        .parse()
                        .map_err(|e: fairway_scheduler::SchedulerError| {
                            EngineError::config(key, format!("{e} (expected fifo or fair)"))
                        })?;
            }
            "fairway.scheduler.allocation.file" => {
                self.allocation_file = (!value.is_empty()).then(|| PathBuf::from(value));
            }
            "fairway.scheduler.allocation.strict" => {
                self.allocation_strict = parse_bool(key, value)?;
            }
            "fairway.scheduler.preemption" => {
                self.preemption = parse_bool(key, value)?;
            }
            "fairway.job.group" => {
                return Err(EngineError::config(
                    key,
                    "a job group is chosen per client: SET fairway.job.group = 'name' \
                     or Session::with_job_group",
                ));
            }
            "fairway.scheduler.pool" => {
                if value.is_empty() {
                    return Err(EngineError::config(key, "a pool name cannot be empty"));
                }
                self.default_pool = value.trim_matches('\'').to_string();
            }
            "fairway.event_log" => {
                self.event_log = (!value.is_empty()).then(|| PathBuf::from(value));
            }
            "fairway.optimizer.tournament_joins" => {
                self.tournament_joins = parse_bool(key, value)?;
            }
            crate::cluster::CLUSTER_KEY => {
                self.cluster = crate::cluster::parse_cluster(value)?;
            }
            "fairway.cluster.slots" => {
                self.cluster_slots = Some(parse_count(key, value)?);
            }
            "fairway.memory.limit" => {
                self.memory_limit = match value.trim_matches('\'') {
                    "" | "none" | "unlimited" => None,
                    size => Some(parse_size(size).map_err(|m| EngineError::config(key, m))?),
                };
            }
            "fairway.task.max_failures" => {
                self.task_max_failures = u32::try_from(parse_count(key, value)?)
                    .map_err(|_| EngineError::config(key, "too large"))?;
            }
            "fairway.test.fail_tasks" => {
                self.faults.tasks = FaultInjection::parse_tasks(value.trim_matches('\''))
                    .map_err(|m| EngineError::config(key, m))?;
            }
            "fairway.test.lose_map_outputs" => {
                self.faults.lose_outputs = FaultInjection::parse_tasks(value.trim_matches('\''))
                    .map_err(|m| EngineError::config(key, m))?;
            }
            "fairway.test.corrupt_map_outputs" => {
                self.faults.corrupt_outputs = FaultInjection::parse_tasks(value.trim_matches('\''))
                    .map_err(|m| EngineError::config(key, m))?;
            }
            "fairway.test.fail_probability" => {
                self.faults.probability = value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| {
                        EngineError::config(
                            key,
                            format!("expected a probability from 0 to 1, got '{value}'"),
                        )
                    })?;
            }
            "fairway.test.fail_seed" => {
                self.faults.seed = value.parse::<u64>().map_err(|_| {
                    EngineError::config(key, format!("expected an integer, got '{value}'"))
                })?;
            }
            k if k.starts_with("datafusion.") => {
                self.datafusion.push((k.to_string(), value.to_string()))
            }
            k if k.starts_with("fairway.") => {
                return Err(EngineError::config(
                    k,
                    format!("unknown setting; known: {}", FairwayOptions::all_keys()),
                ));
            }
            k => {
                return Err(EngineError::config(
                    k,
                    "settings start with 'fairway.' or 'datafusion.'",
                ));
            }
        }
        Ok(())
    }

    /// Applies a `KEY=VALUE` string as given to `--conf`.
    pub fn set_pair(&mut self, pair: &str) -> Result<()> {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| EngineError::config(pair, "expected KEY=VALUE"))?;
        self.set(key.trim(), value)
    }

    /// Bytes for the shuffle's in-memory map outputs and for DataFusion's
    /// memory pool (`None`: unbounded). Without a memory limit, the shuffle
    /// keeps `shuffle_memory` and the pool is unbounded. With a limit `L`,
    /// the shuffle keeps `min(shuffle_memory, L / 4)` and the pool gets the
    /// rest, so that the two together stay within `L`.
    pub fn memory_budgets(&self) -> (usize, Option<usize>) {
        match self.memory_limit {
            None => (self.shuffle_memory, None),
            Some(limit) => {
                let shuffle = self.shuffle_memory.min(limit / 4);
                (shuffle, Some(limit - shuffle))
            }
        }
    }

    /// Statements that may run at once on a cluster: `cluster_slots`, or
    /// `slots` if that is not set.
    pub fn cluster_slots(&self) -> usize {
        self.cluster_slots.unwrap_or(self.slots)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(limit) = self.memory_limit
            && limit < 16 << 20
        {
            return Err(EngineError::config(
                "fairway.memory.limit",
                format!(
                    "{} is too small to run queries (at least 16MiB)",
                    format_size(limit as u64)
                ),
            ));
        }
        SLOTS_BOUND.check("fairway.scheduler.slots", self.slots)?;
        PARTITIONS_BOUND.check("fairway.shuffle.partitions", self.partitions)?;
        Ok(())
    }
}

/// The most slots (`fairway.scheduler.slots`, `--slots`): the scheduler's
/// [`fairway_scheduler::MAX_SLOTS`], since every slot is a worker thread.
pub const MAX_SLOTS: usize = fairway_scheduler::MAX_SLOTS;

/// The most partitions (`fairway.shuffle.partitions`, `--partitions`).
///
/// Every shuffle has `partitions` reduce tasks and every map task writes
/// `partitions` buckets, so a stage's cost grows with the partitions
/// whatever the data. Measured with `fairway sql --slots 2` (dev build,
/// 2-core machine under load) on TPC-H's 25-row `nation`, `GROUP BY
/// n_regionkey`: 0.09 s at 16 partitions, 0.11 s at 1,000, 0.35 s at
/// 4,096, 0.97 s at 10,000; the issue measured minutes at 1,000,000.
/// 10,000 keeps every sane setting (a few per core of the largest
/// machines) and refuses the ones that turn a tiny query into minutes.
pub const MAX_PARTITIONS: usize = 10_000;

/// The range of a count setting, for its checks and errors.
struct Bound {
    /// The command-line option that sets it too.
    option: &'static str,
    max: usize,
    /// Why there is a maximum, for the error.
    why: &'static str,
}

const SLOTS_BOUND: Bound = Bound {
    option: "--slots",
    max: MAX_SLOTS,
    why: "every slot is a worker thread",
};

const PARTITIONS_BOUND: Bound = Bound {
    option: "--partitions",
    max: MAX_PARTITIONS,
    why: "every shuffle runs one task per partition, and each map task writes one bucket per \
          partition",
};

impl Bound {
    /// Checks that `count`, the value of `key`, is from 1 to the maximum.
    fn check(&self, key: &str, count: usize) -> Result<()> {
        let Self { option, max, why } = self;
        if count == 0 {
            return Err(EngineError::config(
                key,
                format!("must be at least 1, got 0 ({option})"),
            ));
        }
        if count > *max {
            return Err(EngineError::config(
                key,
                format!("{count} is above the maximum of {max} ({option}; {why})"),
            ));
        }
        Ok(())
    }
}

/// A count from 1 to the maximum of `bound`, for `key`.
fn parse_bounded(key: &str, value: &str, bound: &Bound) -> Result<usize> {
    let count = value.parse::<usize>().map_err(|_| {
        EngineError::config(
            key,
            format!(
                "expected an integer from 1 to {}, got '{value}' ({})",
                bound.max, bound.option
            ),
        )
    })?;
    bound.check(key, count)?;
    Ok(count)
}

fn patterns(patterns: &[crate::faults::TaskPattern]) -> String {
    patterns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";")
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(EngineError::config(
            key,
            format!("expected true or false, got '{other}'"),
        )),
    }
}

fn parse_count(key: &str, value: &str) -> Result<usize> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            EngineError::config(key, format!("expected a positive integer, got '{value}'"))
        })
}

/// Parses a byte size: `0`, `512`, `64KiB`, `100MB`, `1.5GiB`, `2g`, `1t`.
/// Units are powers of 1024 (`k`, `m`, `g`, `t`, with or without `iB`/`B`).
pub fn parse_size(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a size like 512MiB or 2GiB, got '{text}'"))?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        other => return Err(format!("unknown size unit '{other}' in '{text}'")),
    };
    Ok((number * multiplier).round() as usize)
}

/// Formats a byte count for people: `1.5 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The `fairway.*` settings as DataFusion sees them, so that `SHOW
/// fairway.scheduler.slots` answers and `SET fairway.x = ...` is checked.
/// Settings that shape the session (slots, shuffle) are fixed when it starts:
/// setting one afterwards is an error that says so. Per-statement settings
/// ([`FairwayOptions::RUNTIME_KEYS`]) can be `SET` at any time and apply to
/// the statements that follow in the same client.
#[derive(Debug, Clone, Default)]
pub struct FairwayOptions {
    values: Vec<(String, String)>,
}

impl FairwayOptions {
    /// Settings fixed at session start.
    pub const STARTUP_KEYS: [&'static str; 19] = [
        "fairway.scheduler.slots",
        "fairway.scheduler.mode",
        "fairway.scheduler.preemption",
        "fairway.scheduler.allocation.file",
        "fairway.scheduler.allocation.strict",
        "fairway.shuffle.partitions",
        "fairway.shuffle.memory",
        "fairway.shuffle.dir",
        "fairway.shuffle.compression",
        "fairway.event_log",
        "fairway.memory.limit",
        "fairway.task.max_failures",
        "fairway.cluster",
        "fairway.cluster.slots",
        "fairway.test.fail_tasks",
        "fairway.test.fail_probability",
        "fairway.test.fail_seed",
        "fairway.test.lose_map_outputs",
        "fairway.test.corrupt_map_outputs",
    ];

    /// Settings that may change between statements.
    pub const RUNTIME_KEYS: [&'static str; 3] = [
        "fairway.scheduler.pool",
        "fairway.optimizer.tournament_joins",
        "fairway.job.group",
    ];

    fn known(full: &str) -> bool {
        Self::STARTUP_KEYS.contains(&full) || Self::RUNTIME_KEYS.contains(&full)
    }

    pub(crate) fn all_keys() -> String {
        Self::STARTUP_KEYS
            .iter()
            .chain(Self::RUNTIME_KEYS.iter())
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn from_config(config: &EngineConfig) -> Self {
        let values = vec![
            ("scheduler.slots", config.slots.to_string()),
            ("scheduler.mode", config.scheduler_mode.to_string()),
            ("scheduler.preemption", config.preemption.to_string()),
            (
                "scheduler.allocation.file",
                config
                    .allocation_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "scheduler.allocation.strict",
                config.allocation_strict.to_string(),
            ),
            ("scheduler.pool", config.default_pool.clone()),
            (
                "optimizer.tournament_joins",
                config.tournament_joins.to_string(),
            ),
            ("job.group", String::new()),
            ("shuffle.partitions", config.partitions.to_string()),
            ("shuffle.memory", config.shuffle_memory.to_string()),
            ("shuffle.dir", config.shuffle_dir.display().to_string()),
            (
                "shuffle.compression",
                config.shuffle_compression.to_string(),
            ),
            (
                "event_log",
                config
                    .event_log
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "memory.limit",
                config
                    .memory_limit
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "unlimited".to_string()),
            ),
            ("task.max_failures", config.task_max_failures.to_string()),
            (
                "cluster",
                config
                    .cluster
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            ("cluster.slots", config.cluster_slots().to_string()),
            ("test.fail_tasks", patterns(&config.faults.tasks)),
            (
                "test.fail_probability",
                config.faults.probability.to_string(),
            ),
            ("test.fail_seed", config.faults.seed.to_string()),
            (
                "test.lose_map_outputs",
                patterns(&config.faults.lose_outputs),
            ),
            (
                "test.corrupt_map_outputs",
                patterns(&config.faults.corrupt_outputs),
            ),
        ];
        Self {
            values: values
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }

    /// The value of `key` (without the `fairway.` prefix).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl ConfigExtension for FairwayOptions {
    const PREFIX: &'static str = "fairway";
}

impl ExtensionOptions for FairwayOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> datafusion::error::Result<()> {
        let full = format!("fairway.{key}");
        if !Self::known(&full) {
            return Err(DataFusionError::Configuration(format!(
                "unknown setting '{full}'; known: {}",
                Self::all_keys()
            )));
        }
        if Self::STARTUP_KEYS.contains(&full.as_str()) {
            return Err(DataFusionError::Configuration(format!(
                "'{full}' is fixed when the session starts; pass it as --conf {full}={value}"
            )));
        }
        let mut value = value.trim().trim_matches('\'').to_string();
        // An empty job group means none; every other setting needs a value.
        if value.is_empty() && full != "fairway.job.group" {
            return Err(DataFusionError::Configuration(format!(
                "'{full}' cannot be empty"
            )));
        }
        if full == "fairway.optimizer.tournament_joins" {
            value = parse_bool(&full, &value)
                .map_err(|e| DataFusionError::Configuration(e.to_string()))?
                .to_string();
        }
        match self.values.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.values.push((key.to_string(), value)),
        }
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        self.values
            .iter()
            .map(|(k, v)| ConfigEntry {
                key: format!("fairway.{k}"),
                value: Some(v.clone()),
                description: "fairway setting",
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64KiB").unwrap(), 64 * 1024);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 3 << 29);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn settings_are_checked() {
        let mut c = EngineConfig::with_slots(2);
        c.set_pair("fairway.scheduler.slots=3").unwrap();
        c.set_pair("datafusion.execution.batch_size = 1024")
            .unwrap();
        c.set_pair("fairway.shuffle.memory=1MiB").unwrap();
        assert_eq!(c.slots, 3);
        assert_eq!(c.partitions, 6, "partitions follow the slots until set");
        c.set_pair("fairway.shuffle.partitions=5").unwrap();
        c.set_pair("fairway.scheduler.slots=4").unwrap();
        assert_eq!(c.partitions, 5, "chosen partitions stay");
        assert_eq!(c.shuffle_memory, 1 << 20);
        assert_eq!(c.datafusion.len(), 1);
        let err = c.set_pair("fairway.nope=1").unwrap_err().to_string();
        assert!(err.contains("fairway.nope"), "{err}");
        assert!(c.set_pair("fairway.scheduler.slots=0").is_err());
        assert!(c.set_pair("spark.sql.x=1").is_err());
        assert!(c.set_pair("novalue").is_err());
    }

    #[test]
    fn fault_and_memory_settings_are_checked() {
        let mut c = EngineConfig::with_slots(2);
        assert_eq!(c.task_max_failures, 4, "Spark's default");
        assert_eq!(c.memory_budgets(), (1 << 30, None));
        c.set_pair("fairway.memory.limit=512MiB").unwrap();
        assert_eq!(c.memory_budgets(), (128 << 20, Some(384 << 20)));
        c.set_pair("fairway.shuffle.memory=64MiB").unwrap();
        assert_eq!(c.memory_budgets(), (64 << 20, Some(448 << 20)));
        c.set_pair("fairway.memory.limit=unlimited").unwrap();
        assert_eq!(c.memory_limit, None);
        assert!(c.set_pair("fairway.memory.limit=lots").is_err());
        c.set_pair("fairway.task.max_failures=2").unwrap();
        assert_eq!(c.task_max_failures, 2);
        assert!(c.set_pair("fairway.task.max_failures=0").is_err());
        c.set_pair("fairway.test.fail_tasks=stage=1,attempt=0")
            .unwrap();
        assert!(c.faults.failure(1, 1, 5, 0).is_some());
        assert!(c.set_pair("fairway.test.fail_probability=1.5").is_err());
        assert!(c.set_pair("fairway.test.lose_map_outputs=stage=x").is_err());
        let err = c.set_pair("fairway.job.group=etl").unwrap_err().to_string();
        assert!(err.contains("SET fairway.job.group"), "{err}");
    }
}
