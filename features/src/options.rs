//! The options of one feature build, from the command line or a caller:
//! everything here overrides the spec.

use std::path::PathBuf;

use fairway_scheduler::SchedulingMode;

/// How [`crate::build_features`] runs a spec; everything here overrides the spec.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The output file (`--out`); else the spec's `[output] path`. An
    /// object store URL (`s3://bucket/features.parquet`) is built locally
    /// and uploaded as one object at the end, its stage area mirrored to
    /// `<url>.fairway-stage/` (see `cache_dir`).
    pub out: Option<PathBuf>,
    /// Where the local copy and cache of an output on an object store live
    /// (`--cache-dir`; default `$XDG_CACHE_HOME/fairway/features-remote`,
    /// else `~/.cache/fairway/features-remote`), one folder per URL.
    pub cache_dir: Option<PathBuf>,
    /// Rebuild every method even when its materialised result is current.
    pub force: bool,
    pub slots: Option<usize>,
    pub partitions: Option<usize>,
    pub scheduler_mode: Option<SchedulingMode>,
    pub allocation_file: Option<PathBuf>,
    /// Pool of methods and views that name none.
    pub default_pool: Option<String>,
    pub event_log: Option<PathBuf>,
    /// `fairway.*` / `datafusion.*` settings, after the spec's `[build] conf`.
    pub conf: Vec<(String, String)>,
    /// Draw a live line per method on stderr.
    pub progress: bool,
    /// Run on Apache DataFusion Ballista (`--cluster`) instead of the stage
    /// engine; shared views then always go to the stage area as parquet.
    pub cluster: Option<fairway_engine::ClusterTarget>,
    /// With `cluster`: methods that may run there at once
    /// (`--cluster-slots`; default: slots).
    pub cluster_slots: Option<usize>,
    /// Run the methods one after another and merge them as a left-deep
    /// chain with the tournament rule off: the baseline of the benchmark.
    pub sequential: bool,
    /// Overrides `[build] share_subplans` (`Some(false)`: every method
    /// computes its own joins).
    pub share_subplans: Option<bool>,
    /// Overrides `[build] fuse_aggregations` (`Some(false)`: every method
    /// runs its own aggregate).
    pub fuse_aggregations: Option<bool>,
}
