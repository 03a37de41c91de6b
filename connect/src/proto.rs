//! The Spark Connect protocol (generated from `proto/spark/connect`), and the
//! two `google.rpc` messages that carry Spark's error shape in a gRPC status.

#![allow(clippy::all, missing_docs, rust_2018_idioms)]

pub mod spark {
    pub mod connect {
        tonic::include_proto!("spark.connect");
    }
}

pub use spark::connect::*;

/// `google.rpc.Status`: what a gRPC status's `grpc-status-details-bin`
/// holds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// `google.rpc.ErrorInfo`: Spark puts the exception class in `reason` and
/// `classes`, `errorClass`, `sqlState`, `messageParameters` in `metadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(map = "string, string", tag = "3")]
    pub metadata: std::collections::HashMap<String, String>,
}

pub const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
