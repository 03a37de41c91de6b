//! fairway's benchmarks: the TPC-H harness behind `fairway bench tpch`
//! (power and throughput runs against plain DataFusion, reports, plots),
//! the feature-build benchmark behind `fairway bench features`, and the
//! FIFO-vs-FAIR latency benchmark (binary `fair-latency`). The TPC-H data
//! generator, query texts and published answers are in `fairway-tpch`.
//! See `benches/README.md`.

pub mod harness;
pub mod latency;
