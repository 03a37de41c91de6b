//! fairway's front door: a [`Session`] that registers parquet and CSV tables,
//! plans SQL and DataFrames with DataFusion, cuts the physical plan into a
//! stage graph ([`fairway_planner`]), runs every stage as one task per
//! partition on a slot-bounded scheduler ([`fairway_scheduler`]) and moves
//! data between stages through the shuffle ([`fairway_shuffle`]).
//!
//! `engine` is the only crate that wires those three together, and reports
//! its jobs through [`fairway_observe`] (event log, console progress). The
//! feature builder (`fairway-features`), the benchmarks (`fairway-benches`)
//! and the `fairway` binary sit above it. It does not implement SQL or
//! operators itself: that is DataFusion's job.
//!
//! ```
//! use fairway_engine::{EngineConfig, Session};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fairway_engine::EngineError> {
//! let session = Session::new(EngineConfig::with_slots(2))?;
//! session
//!     .sql("create table t (k int, v int) as values (1, 10), (2, 20), (1, 30)")
//!     .await?;
//! let out = session
//!     .sql("select k, sum(v) as s from t group by k order by k")
//!     .await?;
//! assert_eq!(out.rows(), 2);
//! assert!(out.stages >= 2, "the aggregation ran as several stages");
//! # Ok(())
//! # }
//! ```

mod cluster;
mod config;
mod error;
mod faults;
mod file_tables;
mod job_memory;
mod limits;
mod merge;
mod output;
mod session;
mod stage_metrics;
mod stage_tasks;
mod stores;
mod subqueries;
mod system;
mod tables;
mod temp_views;
mod writes;
mod yield_exec;

pub use cluster::ClusterTarget;
pub use config::{
    Change, DefaultValue, EngineConfig, FairwayOptions, Kind, MAX_PARTITIONS, MAX_SLOTS, SETTINGS,
    Setting, format_duration, format_size, parse_duration, parse_size, settings_help,
    settings_markdown,
};
pub use error::{EngineError, Result};
pub use faults::{FaultInjection, TaskPattern};
pub use limits::{MAX_EXPRESSION_DEPTH, MAX_TABLES};
pub use merge::{MergeHow, merge_frames};
pub use output::{OutputFormat, rows_as_text, write_output};
pub use session::{QueryCanceller, QueryHandle, QueryOutput, Session};
pub use stage_metrics::StageMetrics;
pub use stage_tasks::ActiveJob;
pub use stores::{STORE_PREFIX, StoreOptions, StoreRegistry, is_remote, upload_file};
pub use system::SYSTEM_SCHEMA;
pub use tables::{
    ReadOptions, TableFile, TableFormat, detect_format, register_table, register_tables_in,
    table_files, table_provider,
};

pub use datafusion;
pub use datafusion::arrow;
pub use fairway_planner::{Stage, StageGraph, StageOutput};
pub use fairway_scheduler::{
    JobAdmission, JobInfo, JobState, PoolConfig, PoolStatus, Scheduler, SchedulerMetrics,
    SchedulingMode,
};
pub use fairway_shuffle::{ShuffleCompression, ShuffleStats};

/// A plain DataFusion context with the same number of partitions as a
/// fairway session but none of its settings: the reference that tests and
/// benchmarks compare fairway against.
pub fn plain_datafusion_context(partitions: usize) -> datafusion::prelude::SessionContext {
    let config = datafusion::prelude::SessionConfig::new()
        .with_target_partitions(partitions)
        .with_information_schema(true);
    datafusion::prelude::SessionContext::new_with_config(config)
}
