//! End-to-end benchmarks of fairway that are not part of the `fairway`
//! command.
//!
//! [`latency::measure`] (binary `fair-latency`) submits a short query while a
//! long one runs and reports its response time under FIFO and FAIR
//! scheduling. The TPC-H comparison with plain DataFusion is
//! `fairway bench tpch` (logic in `fairway_engine::bench`). See
//! `benches/README.md`.

pub mod latency;
