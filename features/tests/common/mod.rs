//! Helpers of the feature-table tests: the engine tests' helpers (TPC-H
//! data, plain DataFusion references, row comparison), shared from
//! `engine/tests/common` rather than copied, and the feature specs'.
#![allow(dead_code, unused_imports)]

#[path = "../../../engine/tests/common/mod.rs"]
mod engine;
pub mod features;

pub use engine::*;
