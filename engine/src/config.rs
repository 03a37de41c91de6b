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
    /// Drop the hash exchange above a partitioned join whose output is
    /// already partitioned by the next join's merged key (`COALESCE(l.k,
    /// r.k)`), so a FULL OUTER merge tree runs in one stage
    /// (`fairway.optimizer.co_partitioned_joins`, default true; also `SET`
    /// per client).
    pub co_partitioned_joins: bool,
    /// Restrict an aggregate joined on its grouping key to the keys of a
    /// filtered scan on the other side before aggregating (a decorrelated
    /// subquery such as TPC-H Q17's; `fairway.optimizer.semi_join_reduction`,
    /// default true; also `SET` per client).
    pub semi_join_reduction: bool,
    /// Join a scan with a point filter (`n_name = 'SAUDI ARABIA'`) to the
    /// unfiltered table its join keys come from before that table's other
    /// inner joins (TPC-H Q21's `nation` to `supplier`;
    /// `fairway.optimizer.filtered_joins_first`, default true; also `SET`
    /// per client).
    pub filtered_joins_first: bool,
    /// When a stage starts, swap the sides of a partitioned hash join
    /// whose build side wrote many times the rows of its probe side
    /// (`fairway.adaptive.build_side`, default true; also `SET` per
    /// client).
    pub adaptive_build_side: bool,
    /// Longest a job may run (`fairway.job.timeout`; also `SET` per
    /// client); a pool's `<timeout>` applies to jobs without one. `None`:
    /// no timeout.
    pub job_timeout: Option<std::time::Duration>,
    /// Longest a job may wait in its pool's queue
    /// (`fairway.job.queue_timeout`; also `SET` per client).
    pub queue_timeout: Option<std::time::Duration>,
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
    /// Pools defined in code (FAIR mode), added after those of the
    /// allocation file; where the file defines a pool of the same name,
    /// the file's wins. The feature builder gives its default pool FAIR
    /// here, so that its methods share the slots.
    pub pools: Vec<fairway_scheduler::PoolConfig>,
    /// Object store settings (`fairway.store.<store>.<key>`; see
    /// [`crate::stores`]), applied over the stores' environment variables.
    pub stores: crate::stores::StoreOptions,
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
            co_partitioned_joins: true,
            semi_join_reduction: true,
            filtered_joins_first: true,
            adaptive_build_side: true,
            job_timeout: None,
            queue_timeout: None,
            progress: false,
            datafusion: Vec::new(),
            memory_limit: None,
            task_max_failures: 4,
            faults: FaultInjection::default(),
            cluster: None,
            cluster_slots: None,
            pools: Vec::new(),
            stores: crate::stores::StoreOptions::default(),
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

    /// Applies one `KEY=VALUE` setting: a `fairway.*` key of [`SETTINGS`]
    /// or any `datafusion.*` key (checked when the session starts). Setting
    /// the slots also sets the partitions to `2 x slots` unless they were
    /// set.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        // DataFusion's own name for the partitions is the same setting.
        let setting = if key == "datafusion.execution.target_partitions" {
            Setting::find("fairway.shuffle.partitions")
        } else {
            Setting::find(key)
        };
        match setting {
            Some(setting) => (setting.apply)(self, key, value),
            None if key.starts_with(crate::stores::STORE_PREFIX) => self
                .stores
                .set(key, value)
                .map_err(|m| EngineError::config(key, m)),
            None if key.starts_with("datafusion.") => {
                self.datafusion.push((key.to_string(), value.to_string()));
                Ok(())
            }
            None if key.starts_with("fairway.") => Err(EngineError::config(
                key,
                format!("unknown setting; known: {}", FairwayOptions::all_keys()),
            )),
            None => Err(EngineError::config(
                key,
                "settings start with 'fairway.' or 'datafusion.'",
            )),
        }
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

/// When a setting may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Fixed when the session starts (`--conf`, a spec's `conf`,
    /// [`EngineConfig::set`]); a later `SET` is an error that says so.
    Startup,
    /// May also be `SET` between statements; it applies to the statements
    /// that follow in the same client.
    Runtime,
    /// Chosen per client with `SET` only; refused at startup.
    SetOnly,
}

impl Change {
    /// How the settings table in the README and `--help` say it.
    pub fn describe(self) -> &'static str {
        match self {
            Change::Startup => "at startup",
            Change::Runtime => "at startup or with `SET`",
            Change::SetOnly => "with `SET` only",
        }
    }
}

/// The type of a setting's value, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A positive integer, with a maximum when there is one.
    Count { max: Option<usize> },
    /// A non-negative integer.
    Integer,
    /// A byte size such as `512MiB` (see [`parse_size`]).
    Size,
    /// A byte size, or `unlimited`.
    SizeOrUnlimited,
    /// `true` or `false`.
    Bool,
    /// A file or folder path; empty for none where that makes sense.
    Path,
    /// A non-empty name.
    Name,
    /// A name, or empty for none.
    OptionalName,
    /// One of a few words.
    Choice(&'static str),
    /// `standalone`, `df://HOST:PORT`, or empty for none.
    Cluster,
    /// Task patterns such as `stage=1,partition=0,attempt=0;stage=2`.
    Patterns,
    /// A number from 0 to 1.
    Probability,
    /// A duration such as `30s` or `500ms`; `0` or empty for none.
    Duration,
}

impl Kind {
    /// The type as the settings table shows it.
    pub fn describe(self) -> String {
        match self {
            Kind::Count { max: Some(max) } => format!("integer, 1 to {max}"),
            Kind::Count { max: None } => "integer, at least 1".to_string(),
            Kind::Integer => "integer".to_string(),
            Kind::Size => "size".to_string(),
            Kind::SizeOrUnlimited => "size or `unlimited`".to_string(),
            Kind::Bool => "`true` or `false`".to_string(),
            Kind::Path => "path".to_string(),
            Kind::Name => "name".to_string(),
            Kind::OptionalName => "name, empty for none".to_string(),
            Kind::Choice(words) => words.to_string(),
            Kind::Cluster => "`standalone` or `df://HOST:PORT`".to_string(),
            Kind::Patterns => "task patterns".to_string(),
            Kind::Probability => "number, 0 to 1".to_string(),
            Kind::Duration => "duration (`30s`, `5m`), `0` for none".to_string(),
        }
    }
}

/// A setting's default, as documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// A value that setting it to gives the same config as leaving it
    /// alone (checked by a test).
    Value(&'static str),
    /// A default described in words (it depends on the machine or on
    /// another setting, or is "none").
    About(&'static str),
}

impl DefaultValue {
    fn describe(self) -> String {
        match self {
            DefaultValue::Value(v) => format!("`{v}`"),
            DefaultValue::About(words) => words.to_string(),
        }
    }
}

/// One `fairway.*` setting: everything fairway knows about it, declared once
/// in [`SETTINGS`].
pub struct Setting {
    /// The full key, `fairway.…`.
    pub key: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    pub change: Change,
    /// One sentence for people (`SHOW ALL VERBOSE`, `--help`, the README).
    pub description: &'static str,
    /// Checks a value and stores it in the config; the key is the one the
    /// caller used, for errors.
    apply: fn(&mut EngineConfig, &str, &str) -> Result<()>,
    /// The value of the setting in a config, as `SHOW` prints it.
    show: fn(&EngineConfig) -> String,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("default", &self.default)
            .field("change", &self.change)
            .finish_non_exhaustive()
    }
}

impl Setting {
    /// The setting of `key` (with the `fairway.` prefix), if any.
    pub fn find(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key == key)
    }

    /// The key without the `fairway.` prefix, as DataFusion's extension
    /// sees it.
    fn short_key(&self) -> &'static str {
        &self.key["fairway.".len()..]
    }
}

fn optional_path(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn parse_patterns(key: &str, value: &str) -> Result<Vec<crate::faults::TaskPattern>> {
    FaultInjection::parse_tasks(value.trim_matches('\'')).map_err(|m| EngineError::config(key, m))
}

/// Every `fairway.*` setting, in the order `SHOW ALL` and the
/// documentation list them. [`EngineConfig::set`], `SET`, the key lists,
/// `SHOW ALL VERBOSE`, the CLI's `--conf` help and the README's settings
/// table are all derived from it.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "fairway.scheduler.slots",
        kind: Kind::Count {
            max: Some(MAX_SLOTS),
        },
        default: DefaultValue::About("number of cores"),
        change: Change::Startup,
        description: "Tasks that may run at once across all jobs, one worker thread each \
                      (`--slots`).",
        apply: |c, key, value| {
            c.slots = parse_bounded(key, value, &SLOTS_BOUND)?;
            if !c.partitions_chosen {
                c.partitions = 2 * c.slots;
            }
            Ok(())
        },
        show: |c| c.slots.to_string(),
    },
    Setting {
        key: "fairway.scheduler.mode",
        kind: Kind::Choice("`fifo` or `fair`"),
        default: DefaultValue::Value("fifo"),
        change: Change::Startup,
        description: "How free slots are shared between jobs: in submission order, or by \
                      weighted pools as Spark's FAIR scheduler (`--scheduler-mode`).",
        apply: |c, key, value| {
            c.scheduler_mode = value
                .parse()
                .map_err(|e: fairway_scheduler::SchedulerError| {
                    EngineError::config(key, format!("{e} (expected fifo or fair)"))
                })?;
            Ok(())
        },
        show: |c| c.scheduler_mode.to_string(),
    },
    Setting {
        key: "fairway.scheduler.preemption",
        kind: Kind::Bool,
        default: DefaultValue::Value("true"),
        change: Change::Startup,
        description: "In FAIR mode, whether a task gives its slot to a pool below its fair \
                      share at the next batch boundary; `false` waits for running tasks to \
                      end, as Spark does.",
        apply: |c, key, value| {
            c.preemption = parse_bool(key, value)?;
            Ok(())
        },
        show: |c| c.preemption.to_string(),
    },
    Setting {
        key: "fairway.scheduler.allocation.file",
        kind: Kind::Path,
        default: DefaultValue::About("none"),
        change: Change::Startup,
        description: "Spark `fair-scheduler.xml` defining the pools, read in FAIR mode only \
                      (`--allocation-file`).",
        apply: |c, _, value| {
            c.allocation_file = (!value.is_empty()).then(|| PathBuf::from(value));
            Ok(())
        },
        show: |c| optional_path(&c.allocation_file),
    },
    Setting {
        key: "fairway.scheduler.allocation.strict",
        kind: Kind::Bool,
        default: DefaultValue::Value("true"),
        change: Change::Startup,
        description: "Whether allocation-file values that Spark silently replaces by defaults \
                      are errors; `false` warns and uses Spark's fallback.",
        apply: |c, key, value| {
            c.allocation_strict = parse_bool(key, value)?;
            Ok(())
        },
        show: |c| c.allocation_strict.to_string(),
    },
    Setting {
        key: "fairway.scheduler.pool",
        kind: Kind::Name,
        default: DefaultValue::Value("default"),
        change: Change::Runtime,
        description: "Pool of the jobs of the client's statements, like Spark's \
                      `spark.scheduler.pool`; at startup, that of every client (`--pool`).",
        apply: |c, key, value| {
            if value.is_empty() {
                return Err(EngineError::config(key, "a pool name cannot be empty"));
            }
            c.default_pool = value.trim_matches('\'').to_string();
            Ok(())
        },
        show: |c| c.default_pool.clone(),
    },
    Setting {
        key: "fairway.job.group",
        kind: Kind::OptionalName,
        default: DefaultValue::About("none"),
        change: Change::SetOnly,
        description: "Job group of the client's statements that follow, so that they can be \
                      cancelled together.",
        apply: |_, key, _| {
            Err(EngineError::config(
                key,
                "a job group is chosen per client: SET fairway.job.group = 'name' \
                 or Session::with_job_group",
            ))
        },
        show: |_| String::new(),
    },
    Setting {
        key: "fairway.job.tags",
        kind: Kind::OptionalName,
        default: DefaultValue::About("none"),
        change: Change::SetOnly,
        description: "Comma-separated tags of the client's statements that follow, shown in \
                      `fairway.jobs`; `CANCEL JOBS WITH TAG 'x'` cancels the running ones.",
        apply: |_, key, _| {
            Err(EngineError::config(
                key,
                "job tags are chosen per client: SET fairway.job.tags = 'nightly,etl'",
            ))
        },
        show: |_| String::new(),
    },
    Setting {
        key: "fairway.job.timeout",
        kind: Kind::Duration,
        default: DefaultValue::Value("0"),
        change: Change::Runtime,
        description: "Longest a job may run before it is cancelled with `job N timed out \
                      after ...`; a pool's `<timeout>` applies when this is 0.",
        apply: |c, key, value| {
            c.job_timeout = parse_timeout(key, value)?;
            Ok(())
        },
        show: |c| c.job_timeout.map_or("0".to_string(), format_duration),
    },
    Setting {
        key: "fairway.job.queue_timeout",
        kind: Kind::Duration,
        default: DefaultValue::Value("0"),
        change: Change::Runtime,
        description: "Longest a job may wait in its pool's queue (`<maxRunningJobs>`) before \
                      it fails; counted apart from `fairway.job.timeout`.",
        apply: |c, key, value| {
            c.queue_timeout = parse_timeout(key, value)?;
            Ok(())
        },
        show: |c| c.queue_timeout.map_or("0".to_string(), format_duration),
    },
    Setting {
        key: "fairway.optimizer.tournament_joins",
        kind: Kind::Bool,
        default: DefaultValue::Value("true"),
        change: Change::Runtime,
        description: "Whether chains of joins on a common key are rewritten into balanced \
                      trees.",
        apply: |c, key, value| {
            c.tournament_joins = parse_bool(key, value)?;
            Ok(())
        },
        show: |c| c.tournament_joins.to_string(),
    },
    Setting {
        key: "fairway.optimizer.co_partitioned_joins",
        kind: Kind::Bool,
        default: DefaultValue::Value("true"),
        change: Change::Runtime,
        description: "Whether a join's output that is already hash-partitioned by the next \
                      join's merged key (COALESCE of both sides' keys, as FULL JOIN ... USING \
                      and feature merges meet it) skips the shuffle, so a merge tree runs in \
                      one stage.",
        apply: |c, key, value| {
            c.co_partitioned_joins = parse_bool(key, value)?;
            Ok(())
        },
        show: |c| c.co_partitioned_joins.to_string(),
    },
    Setting {
        key: "fairway.optimizer.semi_join_reduction",
        kind: Kind::Bool,
        default: DefaultValue::Value("true"),
        change: Change::Runtime,
        description: "Whether an aggregate joined on its grouping key (a decorrelated \
                      subquery, as in TPC-H Q17, Q20 and Q2) first keeps only the keys of a \
                      filtered scan on the other side of the join.",
        apply: |c, key, value| {
            c.semi_join_reduction = parse_bool(key, value)?;
            Ok(())
        },
        show: |c| c.semi_join_reduction.to_string(),
    },
    Setting {
        key: "fairway.optimizer.filtered_joins_first",
        kind: Kind::Bool,
        default: DefaultValue::Value("true"),
        change: Change::Runtime,
        description: "Whether an inner join with a point-filtered scan (TPC-H Q21's \
                      `nation` with `n_name = 'SAUDI ARABIA'`) moves down the join tree onto \
                      the unfiltered table its keys come from (`supplier`), so the filter \
                      drops rows before that table meets the others.",
        apply: |c, key, value| {
            c.filtered_joins_first = parse_bool(key, value)?;
            Ok(())
        },
        show: |c| c.filtered_joins_first.to_string(),
    },
    Setting {
        key: "fairway.adaptive.build_side",
        kind: Kind::Bool,
        default: DefaultValue::Value("true"),
        change: Change::Runtime,
        description: "Whether a partitioned hash join swaps its sides when its stage starts, \
                      if the input stages wrote more than twice the rows for its build side as \
                      for its probe side (TPC-H Q21's anti join then builds from the rows the \
                      other joins leave, not 3.8 M late line items); `EXPLAIN ANALYZE` names \
                      every swap.",
        apply: |c, key, value| {
            c.adaptive_build_side = parse_bool(key, value)?;
            Ok(())
        },
        show: |c| c.adaptive_build_side.to_string(),
    },
    Setting {
        key: "fairway.shuffle.partitions",
        kind: Kind::Count {
            max: Some(MAX_PARTITIONS),
        },
        default: DefaultValue::About("2 x slots"),
        change: Change::Startup,
        description: "Partitions of every shuffle and file scan, DataFusion's \
                      `target_partitions` (`--partitions`).",
        apply: |c, key, value| {
            c.partitions = parse_bounded(key, value, &PARTITIONS_BOUND)?;
            c.partitions_chosen = true;
            Ok(())
        },
        show: |c| c.partitions.to_string(),
    },
    Setting {
        key: "fairway.shuffle.memory",
        kind: Kind::Size,
        default: DefaultValue::Value("1GiB"),
        change: Change::Startup,
        description: "Bytes of shuffle output kept in memory before map outputs spill to \
                      files; `0` spills everything (`--shuffle-memory`).",
        apply: |c, key, value| {
            c.shuffle_memory = parse_size(value).map_err(|m| EngineError::config(key, m))?;
            Ok(())
        },
        show: |c| c.shuffle_memory.to_string(),
    },
    Setting {
        key: "fairway.shuffle.dir",
        kind: Kind::Path,
        default: DefaultValue::About("the system temp folder"),
        change: Change::Startup,
        description: "Folder in which each session makes its own folder of shuffle and spill \
                      files.",
        apply: |c, _, value| {
            c.shuffle_dir = PathBuf::from(value);
            Ok(())
        },
        show: |c| c.shuffle_dir.display().to_string(),
    },
    Setting {
        key: "fairway.shuffle.compression",
        kind: Kind::Choice("`lz4`, `zstd` or `none`"),
        default: DefaultValue::Value("lz4"),
        change: Change::Startup,
        description: "Compression of shuffle files.",
        apply: |c, key, value| {
            c.shuffle_compression = value
                .parse()
                .map_err(|m: String| EngineError::config(key, m))?;
            Ok(())
        },
        show: |c| c.shuffle_compression.to_string(),
    },
    Setting {
        key: "fairway.event_log",
        kind: Kind::Path,
        default: DefaultValue::About("none"),
        change: Change::Startup,
        description: "File to which every job, stage and task event is written as a JSON \
                      line (`--event-log`).",
        apply: |c, _, value| {
            c.event_log = (!value.is_empty()).then(|| PathBuf::from(value));
            Ok(())
        },
        show: |c| optional_path(&c.event_log),
    },
    Setting {
        key: "fairway.memory.limit",
        kind: Kind::SizeOrUnlimited,
        default: DefaultValue::Value("unlimited"),
        change: Change::Startup,
        description: "Bound on the memory of all running queries: the shuffle keeps at most a \
                      quarter of it, and operators share the rest and spill beyond it \
                      (`--memory-limit`).",
        apply: |c, key, value| {
            c.memory_limit = match value.trim_matches('\'') {
                "" | "none" | "unlimited" => None,
                size => Some(parse_size(size).map_err(|m| EngineError::config(key, m))?),
            };
            Ok(())
        },
        show: |c| {
            c.memory_limit
                .map(|l| l.to_string())
                .unwrap_or_else(|| "unlimited".to_string())
        },
    },
    Setting {
        key: "fairway.task.max_failures",
        kind: Kind::Count { max: None },
        default: DefaultValue::Value("4"),
        change: Change::Startup,
        description: "Attempts of a task before its job fails, as Spark's \
                      `spark.task.maxFailures`; `1` means no retries.",
        apply: |c, key, value| {
            c.task_max_failures = u32::try_from(parse_count(key, value)?)
                .map_err(|_| EngineError::config(key, "too large"))?;
            Ok(())
        },
        show: |c| c.task_max_failures.to_string(),
    },
    Setting {
        key: crate::cluster::CLUSTER_KEY,
        kind: Kind::Cluster,
        default: DefaultValue::About("none: the stage engine"),
        change: Change::Startup,
        description: "Run statements on Apache DataFusion Ballista instead of the stage \
                      engine: in this process, or on a running scheduler (`--cluster`).",
        apply: |c, _, value| {
            c.cluster = crate::cluster::parse_cluster(value)?;
            Ok(())
        },
        show: |c| {
            c.cluster
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        },
    },
    Setting {
        key: "fairway.cluster.slots",
        kind: Kind::Count { max: None },
        default: DefaultValue::About("the slots"),
        change: Change::Startup,
        description: "Statements that may run at once on the cluster, shared by the pools \
                      (`--cluster-slots`).",
        apply: |c, key, value| {
            c.cluster_slots = Some(parse_count(key, value)?);
            Ok(())
        },
        show: |c| c.cluster_slots().to_string(),
    },
    Setting {
        key: "fairway.test.fail_tasks",
        kind: Kind::Patterns,
        default: DefaultValue::About("none"),
        change: Change::Startup,
        description: "Test only: task attempts matching these patterns fail on purpose.",
        apply: |c, key, value| {
            c.faults.tasks = parse_patterns(key, value)?;
            Ok(())
        },
        show: |c| patterns(&c.faults.tasks),
    },
    Setting {
        key: "fairway.test.fail_probability",
        kind: Kind::Probability,
        default: DefaultValue::Value("0"),
        change: Change::Startup,
        description: "Test only: each task attempt that `fairway.test.fail_tasks` does \
                      not match fails with this probability.",
        apply: |c, key, value| {
            c.faults.probability = value
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| {
                    EngineError::config(
                        key,
                        format!("expected a probability from 0 to 1, got '{value}'"),
                    )
                })?;
            Ok(())
        },
        show: |c| c.faults.probability.to_string(),
    },
    Setting {
        key: "fairway.test.fail_seed",
        kind: Kind::Integer,
        default: DefaultValue::Value("0"),
        change: Change::Startup,
        description: "Test only: seed of the failures of `fairway.test.fail_probability`, so \
                      that they repeat.",
        apply: |c, key, value| {
            c.faults.seed = value.parse::<u64>().map_err(|_| {
                EngineError::config(key, format!("expected an integer, got '{value}'"))
            })?;
            Ok(())
        },
        show: |c| c.faults.seed.to_string(),
    },
    Setting {
        key: "fairway.test.lose_map_outputs",
        kind: Kind::Patterns,
        default: DefaultValue::About("none"),
        change: Change::Startup,
        description: "Test only: the outputs of map tasks matching these patterns are deleted \
                      right after they are written.",
        apply: |c, key, value| {
            c.faults.lose_outputs = parse_patterns(key, value)?;
            Ok(())
        },
        show: |c| patterns(&c.faults.lose_outputs),
    },
    Setting {
        key: "fairway.test.corrupt_map_outputs",
        kind: Kind::Patterns,
        default: DefaultValue::About("none"),
        change: Change::Startup,
        description: "Test only: the spilled data files of map tasks matching these patterns \
                      get garbage in the middle right after they are written.",
        apply: |c, key, value| {
            c.faults.corrupt_outputs = parse_patterns(key, value)?;
            Ok(())
        },
        show: |c| patterns(&c.faults.corrupt_outputs),
    },
];

/// The settings table of the README: one row per setting of [`SETTINGS`].
pub fn settings_markdown() -> String {
    let mut out = String::from("| setting | type | default | may change | meaning |\n");
    out.push_str("|---|---|---|---|---|\n");
    for s in SETTINGS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            s.key,
            s.kind.describe().replace('|', "\\|"),
            s.default.describe(),
            s.change.describe(),
            s.description.replace('|', "\\|"),
        ));
    }
    out
}

/// The `--conf` help of the CLI: one paragraph per setting of [`SETTINGS`].
pub fn settings_help() -> String {
    let mut out = String::from(
        "Any fairway.* or datafusion.* setting, KEY=VALUE; repeatable. The fairway settings \
         (fixed at startup unless marked [SET]; [SET only]: chosen per client with SET, \
         refused here):\n",
    );
    for s in SETTINGS {
        let plain = |text: &str| text.replace('`', "");
        out.push_str(&format!(
            "\n{}{} ({}; default {}): {}",
            s.key,
            match s.change {
                Change::Startup => "",
                Change::Runtime => " [SET]",
                Change::SetOnly => " [SET only]",
            },
            plain(&s.kind.describe()),
            plain(&s.default.describe()),
            plain(s.description),
        ));
    }
    out.push_str(
        "\n\nfairway.store.<store>.<key> (fixed at startup): object store settings, over the \
         store's own environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
         AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP; \
         GOOGLE_APPLICATION_CREDENTIALS; AZURE_STORAGE_ACCOUNT_NAME, \
         AZURE_STORAGE_ACCOUNT_KEY, ...). <store> is s3, gcs, azure or http; <key> is any key \
         of object_store's builder for it (s3: access_key_id, secret_access_key, \
         session_token, region, endpoint, allow_http, skip_signature, \
         virtual_hosted_style_request; gcs: service_account_path, service_account_key; \
         azure: account_name, access_key, sas_token, use_emulator; any: connect_timeout, \
         timeout, proxy_url), plus instance_metadata=true to let a store without keys ask \
         the cloud's metadata service. Secrets are never shown.",
    );
    out
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

/// A timeout: a duration, with `0` (or nothing) for none.
pub(crate) fn parse_timeout(key: &str, value: &str) -> Result<Option<std::time::Duration>> {
    let value = value.trim().trim_matches('\'');
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let duration = parse_duration(value).map_err(|m| EngineError::config(key, m))?;
    Ok((!duration.is_zero()).then_some(duration))
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

pub use fairway_scheduler::{format_duration, parse_duration, parse_size};

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
/// ([`Change::Runtime`] in [`SETTINGS`]) can be `SET` at any time and apply to
/// the statements that follow in the same client.
#[derive(Debug, Clone, Default)]
pub struct FairwayOptions {
    values: Vec<(String, String)>,
}

impl FairwayOptions {
    /// The keys of the settings that change as `change` says, in
    /// [`SETTINGS`] order.
    pub fn keys(change: Change) -> impl Iterator<Item = &'static str> {
        SETTINGS
            .iter()
            .filter(move |s| s.change == change)
            .map(|s| s.key)
    }

    /// Every key, fixed ones first, for errors.
    pub(crate) fn all_keys() -> String {
        Self::keys(Change::Startup)
            .chain(Self::keys(Change::Runtime))
            .chain(Self::keys(Change::SetOnly))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn from_config(config: &EngineConfig) -> Self {
        Self {
            values: SETTINGS
                .iter()
                .map(|s| (s.short_key().to_string(), (s.show)(config)))
                .collect(),
        }
    }

    /// Whether the switch `fairway.<key>` is on in `options`: anything but
    /// `false` (a key never set is on).
    pub fn is_on(options: &datafusion::config::ConfigOptions, key: &str) -> bool {
        options
            .extensions
            .get::<FairwayOptions>()
            .and_then(|o| o.get(key))
            != Some("false")
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
        if full.starts_with(crate::stores::STORE_PREFIX) {
            return Err(DataFusionError::Configuration(format!(
                "'{full}' is fixed when the session starts; pass it as --conf {full}=..."
            )));
        }
        let Some(setting) = Setting::find(&full) else {
            return Err(DataFusionError::Configuration(format!(
                "unknown setting '{full}'; known: {}",
                Self::all_keys()
            )));
        };
        if setting.change == Change::Startup {
            return Err(DataFusionError::Configuration(format!(
                "'{full}' is fixed when the session starts; pass it as --conf {full}={value}"
            )));
        }
        let mut value = value.trim().trim_matches('\'').to_string();
        // An empty optional name means none; every other setting needs a value.
        if setting.kind == Kind::Duration {
            parse_timeout(&full, &value)
                .map_err(|e| DataFusionError::Configuration(e.to_string()))?;
        }
        if value.is_empty() && !matches!(setting.kind, Kind::OptionalName | Kind::Duration) {
            return Err(DataFusionError::Configuration(format!(
                "'{full}' cannot be empty"
            )));
        }
        if setting.kind == Kind::Bool {
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
                description: Setting::find(&format!("fairway.{k}"))
                    .map_or("fairway setting", |s| s.description),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn every_setting_is_declared_once_and_runtime_ones_are_few() {
        let mut keys: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
        assert!(keys.iter().all(|k| k.starts_with("fairway.")), "{keys:?}");
        assert!(SETTINGS.iter().all(|s| s.description.ends_with('.')));
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SETTINGS.len(), "a key is declared twice");
        let runtime: Vec<_> = FairwayOptions::keys(Change::Runtime)
            .chain(FairwayOptions::keys(Change::SetOnly))
            .collect();
        assert_eq!(
            runtime,
            [
                "fairway.scheduler.pool",
                "fairway.job.timeout",
                "fairway.job.queue_timeout",
                "fairway.optimizer.tournament_joins",
                "fairway.optimizer.co_partitioned_joins",
                "fairway.optimizer.semi_join_reduction",
                "fairway.optimizer.filtered_joins_first",
                "fairway.adaptive.build_side",
                "fairway.job.group",
                "fairway.job.tags"
            ]
        );
        assert_eq!(FairwayOptions::keys(Change::Startup).count(), 19);
    }

    #[test]
    fn documented_default_values_are_the_defaults() {
        let shown = |c: &EngineConfig| SETTINGS.iter().map(|s| (s.show)(c)).collect::<Vec<_>>();
        let defaults = EngineConfig::default();
        for setting in SETTINGS {
            if let DefaultValue::Value(value) = setting.default {
                let mut c = EngineConfig::default();
                c.set(setting.key, value).unwrap();
                assert_eq!(shown(&c), shown(&defaults), "{}", setting.key);
            }
        }
    }

    #[test]
    fn show_all_verbose_describes_every_setting() {
        let options = FairwayOptions::from_config(&EngineConfig::default());
        let entries = options.entries();
        assert_eq!(entries.len(), SETTINGS.len());
        for (entry, setting) in entries.iter().zip(SETTINGS) {
            assert_eq!(entry.key, setting.key);
            assert_eq!(entry.description, setting.description);
        }
    }

    /// The README's settings table is [`settings_markdown`], between
    /// these two lines.
    const README_BEGIN: &str = "<!-- settings table: generated from engine/src/config.rs SETTINGS; \
                                a test checks it -->";
    const README_END: &str = "<!-- end of settings table -->";

    #[test]
    fn readme_settings_table_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let start = readme
            .find(README_BEGIN)
            .unwrap_or_else(|| panic!("README.md has no line {README_BEGIN}"))
            + README_BEGIN.len();
        let end = start
            + readme[start..]
                .find(README_END)
                .unwrap_or_else(|| panic!("README.md has no line {README_END}"));
        let expected = settings_markdown();
        if readme[start..end].trim() == expected.trim() {
            return;
        }
        if std::env::var_os("FAIRWAY_UPDATE_README").is_some() {
            let updated = format!("{}\n{expected}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        panic!(
            "README.md's settings table differs from SETTINGS (rerun with \
             FAIRWAY_UPDATE_README=1 to rewrite it); expected:\n{expected}"
        );
    }
}
