//! `fairway connect`: a Spark Connect server on fairway's stage engine.

pub mod cache;
pub mod codec;
pub mod conf;
pub mod error;
pub mod execute;
pub mod functions;
pub mod proto;
pub mod relation;
pub mod server;
pub mod session;
pub mod show;
pub mod spark_sql;
pub mod types;
pub mod udf;
pub mod write;

pub use error::SparkError;
pub use server::{ConnectOptions, SPARK_VERSION, serve};
