//! fairway's benchmarks: the TPC-H harness behind `fairway bench tpch`
//! (power and throughput runs against plain DataFusion, reports, plots),
//! the feature-build benchmark behind `fairway bench features`, and the
//! FIFO-vs-FAIR latency benchmark (binary `fair-latency`), the pool-cap
//! benchmark (binary `pool-cap`). The TPC-H data
//! generator, query texts and published answers are in `fairway-tpch`.
//! See `benches/README.md`.

pub mod harness;
pub mod latency;
pub mod pool_cap;
