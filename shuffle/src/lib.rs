//! Shuffle exchange for fairway: how data moves from one stage to the next.
//!
//! A *map task* (one task of a producer stage) runs its stage plan for one
//! partition and hands the resulting batches to [`write_map_output`], which
//! splits them into the consumer stage's partitions ("buckets") and keeps them
//! in memory as long as the process-wide [`ShuffleMemory`] budget allows.
//! When the budget is exhausted, the map task's whole output goes to ONE Arrow
//! IPC data file plus an index of each bucket's byte range, the layout of
//! Spark's sort shuffle (see [`MapOutput`]). A *reduce task* reads its bucket
//! from every map output of the producer stage through a
//! [`ShuffleReaderExec`] leaf, which streams from memory or from the files.
//!
//! All shuffle data of one job lives in a [`JobShuffle`]; dropping it (when
//! the job ends, whatever the outcome) removes the job's files and gives its
//! memory back to the budget.
//!
//! This crate knows nothing of stages graphs or scheduling: it is given stage
//! and map-partition numbers and stores what it is given.
//!
//! ```
//! # use std::sync::Arc;
//! # use datafusion::arrow::array::Int64Array;
//! # use datafusion::arrow::datatypes::{DataType, Field, Schema};
//! # use datafusion::arrow::record_batch::RecordBatch;
//! # use datafusion::physical_plan::{ExecutionPlan, common::collect};
//! # use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
//! # use datafusion::execution::TaskContext;
//! # use datafusion::prelude::SessionConfig;
//! use fairway_shuffle::{
//!     MapPartitioning, ReadMode, ShuffleConfig, ShuffleReaderExec, ShuffleService,
//!     write_map_output,
//! };
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
//! let batch = RecordBatch::try_new(
//!     schema.clone(),
//!     vec![Arc::new(Int64Array::from((0..100).collect::<Vec<_>>()))],
//! )?;
//! let service = ShuffleService::new(ShuffleConfig::default());
//! let job = service.create_job(1);
//! // One map task of stage 0 writes its output into a single bucket.
//! let input = Box::pin(RecordBatchStreamAdapter::new(
//!     schema.clone(),
//!     futures::stream::iter(vec![Ok(batch)]),
//! ));
//! write_map_output(&job, 0, 0, 1, input, &MapPartitioning::Single, 8192).await?;
//! // A reduce task reads it back through the reader leaf.
//! let reader = ShuffleReaderExec::new(0, schema, ReadMode::All { maps: 1 }, None);
//! let ctx = Arc::new(TaskContext::default().with_session_config(
//!     SessionConfig::new().with_extension(job.clone()),
//! ));
//! let batches = collect(reader.execute(0, ctx)?).await?;
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
//! # Ok(())
//! # }
//! ```

mod error;
mod memory;
mod reader;
mod store;
mod writer;

pub use error::ShuffleError;
pub use memory::ShuffleMemory;
pub use reader::{ReadMode, ShuffleReaderExec};
pub use store::{
    JobShuffle, MapOutput, Reservation, ShuffleCompression, ShuffleConfig, ShuffleService,
    ShuffleStats,
};
pub use writer::{MapPartitioning, MapStats, write_map_output};
