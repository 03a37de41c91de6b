//! Feature tables: one wide table per key, built from many independent
//! feature *methods* (SQL or DataFrame steps), the way a PySpark feature
//! mart runs its methods from a thread pool in a FAIR pool and joins the
//! results on the customer id.
//!
//! A build ([`build_features`]) goes through these steps:
//!
//! 1. **Check** ([`FeatureSpec::load`], then planning): the spec's keys and
//!    syntax, every source's files, every table a view or method reads, and
//!    every view and method planned (DataFusion logical planning, nothing
//!    runs) to check it returns the key, with the same Arrow type in every
//!    method (or cast by `[build] key_cast`), and that no two methods return
//!    the same feature column; the output must not be, or lie inside, one of
//!    the build's inputs, nor be a link or a folder (see `guard`). Any error
//!    stops the build before it starts. Then the build takes the output's
//!    lock `<output>.fairway-lock` (a second build of the same output fails
//!    at once) and removes temporaries that dead fairway processes left.
//! 2. **Reuse**: each method's fingerprint (its normalised definition, the
//!    key, the views it reads and the files, sizes and modification times
//!    of the sources it reads) is compared with the manifest of the last
//!    successful build in the stage area `<output>.fairway-stage/`; an
//!    unchanged method keeps its materialised result.
//! 3. **Shared views**: a view read by two or more methods that must run is
//!    computed once, as one job, and registered under its name for the
//!    build: in memory within `[build] view_memory`, else as parquet in the
//!    stage area. Other views stay logical and are inlined by the planner.
//! 4. **Work computed once**, found in the methods' unoptimised plans:
//!    - *fused aggregations* (`fuse`): methods that aggregate the same input
//!      by the same keys, each perhaps with its own `WHERE`, run as one
//!      aggregate pass whose aggregates carry each `WHERE` as a `FILTER
//!      (WHERE ...)` clause; each member reads its columns of the result,
//!      keeping only the keys that had a row passing its `WHERE`. `[build]
//!      fuse_aggregations = false` turns this off.
//!    - *shared subplans* (`share`): joins that two or more of the other
//!      methods and of the fused passes compute the same way (same tables,
//!      join conditions and filters, whatever the aliases and the columns
//!      each reads) are computed once, with the union of the columns their
//!      readers use; each reader's join is replaced by a scan of that
//!      result. `[build] share_subplans = false` turns this off.
//!
//!    Each runs as one job in the default pool, as soon as the views it
//!    reads are ready, and is kept like a shared view.
//! 5. **Methods** run concurrently, each as a job in its pool (FAIR by
//!    default); each result is checked for NULL and duplicate keys and written to
//!    `<stage>/<method>-<fingerprint>/`. When one fails the others' jobs are
//!    cancelled at once.
//! 6. **Merge**: all results are merged on the key with
//!    [`fairway_engine::merge_frames`] (a balanced FULL OUTER tree; see
//!    [`merge_tree`]), written to a temporary file beside the output and
//!    renamed over it; then the manifest is written and results that are no
//!    longer current are removed.

mod build;
mod cache;
mod error;
mod explain;
mod fuse;
mod guard;
mod options;
mod progress;
mod remote;
mod share;
mod spec;

pub use build::{BuildOptions, BuildSummary, MethodReport, ViewKind, ViewReport, build_features};
pub use error::{FeatureError, Result};
pub use explain::{explain_features, explain_shared_work, left_deep_tree, merge_tree};
pub use spec::{
    Body, BuildSettings, Definition, FeatureSpec, OutputCompression, OutputSettings,
    SchedulerSettings, Source, Steps,
};
