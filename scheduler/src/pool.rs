//! Public types of scheduler pools: modes, pool settings, pool status.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::SchedulerError;

/// Name of the pool that jobs without [`JobSpec::pool`](crate::JobSpec::pool)
/// go to when the root mode is [`SchedulingMode::Fair`] (Spark's `default`).
pub const DEFAULT_POOL: &str = "default";

/// How a pool orders its children (Spark's `spark.scheduler.mode` for the
/// root, `schedulingMode` of a pool in the allocation file).
///
/// * `Fifo`: by job id, then stage id: all runnable stages of an earlier job
///   come before any stage of a later job. Pools compared under FIFO always
///   tie and keep their order.
/// * `Fair`: children running fewer tasks than their `minShare` ("needy")
///   first, the one with the smallest `running / minShare` among them; then
///   the smallest `running / weight`; ties by name.
///
/// Spark's third value, `NONE`, is only the mode of a leaf and cannot be
/// given to a pool, so it does not exist here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SchedulingMode {
    /// First in, first out.
    #[default]
    Fifo,
    /// Weighted fair sharing.
    Fair,
}

impl SchedulingMode {
    /// `"FIFO"` or `"FAIR"`, as Spark writes them.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fifo => "FIFO",
            Self::Fair => "FAIR",
        }
    }
}

impl fmt::Display for SchedulingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchedulingMode {
    type Err = SchedulerError;

    /// Accepts `fifo` and `fair` in any case, with surrounding whitespace
    /// (characters up to U+0020, as Java's `String.trim`); fails with
    /// [`SchedulerError::InvalidConfig`] naming the value otherwise.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match java_trim(text).to_uppercase().as_str() {
            "FIFO" => Ok(Self::Fifo),
            "FAIR" => Ok(Self::Fair),
            _ => Err(SchedulerError::InvalidConfig(format!(
                "unknown scheduling mode {text:?}: expected FIFO or FAIR"
            ))),
        }
    }
}

/// Settings of one pool, as a `<pool>` element of an allocation file gives
/// them (see [`parse_allocation_file`](crate::parse_allocation_file)).
///
/// The defaults are Spark's for a pool the file does not mention: FIFO,
/// weight 1, minShare 0. The limits after `min_share` are fairway's own
/// (Spark ignores their elements): all `None` by default, which is Spark's
/// behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolConfig {
    /// The name jobs use in [`JobSpec::pool`](crate::JobSpec::pool). Used
    /// as-is (case-sensitive, not trimmed); may be empty.
    pub name: String,
    /// How the pool orders its jobs' stages.
    pub mode: SchedulingMode,
    /// Share of the slots relative to the other pools, once every pool has
    /// its minimum share. Spark accepts any integer; 0 or less gives
    /// degenerate (infinite or NaN) share ratios.
    pub weight: i32,
    /// Number of running tasks below which the pool goes before every pool
    /// that has reached its own minimum. A priority boost, not a guarantee:
    /// running tasks are not preempted, and with
    /// [`SchedulerConfig::preemption`](crate::SchedulerConfig::preemption)
    /// a needy pool takes a slot from another pool only when that makes the
    /// shares strictly fairer by the FAIR comparator.
    pub min_share: i32,
    /// Most tasks of the pool holding slots at once (`<maxShare>`, at
    /// least one). Slots the pool cannot use go to other pools; preemption
    /// never gives the pool more. `None`: no cap (Spark).
    pub max_share: Option<usize>,
    /// Most jobs of the pool running at once (`<maxRunningJobs>`, at least
    /// one). Later jobs wait in the pool's queue, in submission order, and are
    /// admitted as running ones end. `None`: no bound.
    pub max_running_jobs: Option<usize>,
    /// Most jobs waiting in the pool's queue (`<maxQueuedJobs>`); a job
    /// submitted beyond it fails at once with
    /// [`SchedulerError::QueueFull`]. Only counts with `max_running_jobs`.
    /// `None`: no bound.
    pub max_queued_jobs: Option<usize>,
    /// The pool's own memory budget in bytes (`<memory>`): the scheduler
    /// only carries it, the engine gives the pool's jobs a spill pool of
    /// that size. `None`: the pool shares the session's memory.
    pub memory: Option<u64>,
    /// Longest run of one of the pool's jobs (`<timeout>`), from its
    /// admission; a job's own [`JobSpec::timeout`](crate::JobSpec::timeout)
    /// wins. `None`: no timeout.
    pub timeout: Option<Duration>,
}

impl PoolConfig {
    /// A pool with Spark's default settings (FIFO, weight 1, minShare 0).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// Pool settings in the order Spark's tests write them, for unit tests.
#[cfg(test)]
pub(crate) fn pool(name: &str, mode: SchedulingMode, min_share: i32, weight: i32) -> PoolConfig {
    PoolConfig {
        name: name.to_string(),
        mode,
        weight,
        min_share,
        ..PoolConfig::default()
    }
}

impl Default for PoolConfig {
    /// An unnamed pool with Spark's default settings and no limits.
    fn default() -> Self {
        Self {
            name: String::new(),
            mode: SchedulingMode::Fifo,
            weight: 1,
            min_share: 0,
            max_share: None,
            max_running_jobs: None,
            max_queued_jobs: None,
            memory: None,
            timeout: None,
        }
    }
}

/// One top-level pool as [`Scheduler::pools`](crate::Scheduler::pools)
/// reports it: the columns of Spark UI's "Fair Scheduler Pools" table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// How the pool orders its stages.
    pub mode: SchedulingMode,
    /// The pool's weight.
    pub weight: i32,
    /// The pool's minimum share (in running tasks).
    pub min_share: i32,
    /// Tasks of the pool's jobs holding slots now.
    pub running_tasks: usize,
    /// Stages of the pool's jobs whose parents have completed and that have
    /// not completed yet (tasks waiting or running).
    pub active_stages: usize,
    /// [`PoolConfig::max_share`].
    pub max_share: Option<usize>,
    /// [`PoolConfig::max_running_jobs`].
    pub max_running_jobs: Option<usize>,
    /// [`PoolConfig::max_queued_jobs`].
    pub max_queued_jobs: Option<usize>,
    /// [`PoolConfig::memory`].
    pub memory: Option<u64>,
    /// [`PoolConfig::timeout`].
    pub timeout: Option<Duration>,
    /// Jobs of the pool admitted and not ended.
    pub running_jobs: usize,
    /// Jobs of the pool waiting in its queue.
    pub queued_jobs: usize,
}

/// Java's `String.trim`: strips leading and trailing characters up to U+0020
/// (space and the ASCII control characters), nothing else.
pub(crate) fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= '\u{20}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_parses_trimmed_and_case_insensitive() {
        assert_eq!(
            " fair\n".parse::<SchedulingMode>(),
            Ok(SchedulingMode::Fair)
        );
        assert_eq!("FiFo".parse::<SchedulingMode>(), Ok(SchedulingMode::Fifo));
        let error = "round_robin".parse::<SchedulingMode>().unwrap_err();
        assert!(error.to_string().contains("\"round_robin\""), "{error}");
        assert!("NONE".parse::<SchedulingMode>().is_err());
        assert!("".parse::<SchedulingMode>().is_err());
        assert_eq!(SchedulingMode::Fair.to_string(), "FAIR");
    }

    #[test]
    fn java_trim_strips_control_characters_only() {
        assert_eq!(java_trim("\u{1}\t 3 \r\n"), "3");
        // U+00A0 (no-break space) is above U+0020: Java keeps it.
        assert_eq!(java_trim("\u{a0}3"), "\u{a0}3");
    }

    #[test]
    fn pool_defaults_are_sparks() {
        let pool = PoolConfig::new("p");
        assert_eq!(
            (pool.name.as_str(), pool.mode, pool.weight, pool.min_share),
            ("p", SchedulingMode::Fifo, 1, 0)
        );
    }
}
