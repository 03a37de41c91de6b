//! End-to-end benchmarks of fairway against plain DataFusion.
//!
//! [`tpch::compare`] runs TPC-H queries alternately on a fairway session and
//! on a plain DataFusion context with the same number of partitions and the
//! same number of worker threads, checks that both return the same rows, and
//! reports medians and the geometric-mean ratio. The binary `tpch-compare`
//! drives it from the command line. [`latency::measure`] (binary
//! `fair-latency`) submits a short query while a long one runs and reports
//! its response time under FIFO and FAIR scheduling. See `benches/README.md`.

pub mod latency;
pub mod tpch;
