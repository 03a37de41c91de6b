//! How requests are decoded: tonic's prost codec after a linear scan that
//! refuses messages nested deeper than [`MAX_DEPTH`] levels with an error
//! that says what to do. prost itself stops at that depth (its fixed
//! recursion limit), so no request can exhaust the stack; Spark's server
//! allows 1024 (`spark.connect.grpc.marshallerRecursionLimit`), which
//! would need prost's `no-recursion-limit` feature and this scan as the
//! only guard.

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::Buf;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// Protobuf messages nested deeper than this are refused: prost's limit.
/// A DataFrame call adds two levels (the relation and its operation).
pub const MAX_DEPTH: usize = 100;

/// tonic's prost codec, with the depth check on decoding.
#[derive(Debug, Clone)]
pub struct DepthLimitedCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for DepthLimitedCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for DepthLimitedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = DepthLimitedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        DepthLimitedDecoder { _pd: PhantomData }
    }
}

/// Decodes `U` once [`nesting_depth`] says it is shallow enough.
#[derive(Debug, Clone)]
pub struct DepthLimitedDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: Message + Default> Decoder for DepthLimitedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        let depth = nesting_depth(&bytes, MAX_DEPTH);
        if depth > MAX_DEPTH {
            return Err(Status::invalid_argument(format!(
                "fairway connect: the plan nests more than {MAX_DEPTH} protobuf messages deep \
                 (about {} chained DataFrame calls); break the chain: write an intermediate \
                 result and read it back, or express the steps in one spark.sql query",
                MAX_DEPTH / 2
            )));
        }
        U::decode(bytes)
            .map(Some)
            .map_err(|e| Status::internal(format!("failed to decode the request: {e}")))
    }
}

fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// An upper bound of how deep messages nest in the protobuf `bytes`,
/// found in one pass without knowing the schema: every length-delimited
/// field is read as a message (a string or bytes field that does not parse
/// as one ends its level). Stops counting past `limit`.
pub fn nesting_depth(bytes: &[u8], limit: usize) -> usize {
    let mut ends = vec![bytes.len()];
    let mut deepest = 1;
    let mut pos = 0;
    while let Some(&end) = ends.last() {
        if pos >= end {
            ends.pop();
            continue;
        }
        let Some((key, n)) = varint(&bytes[pos..end]) else {
            pos = end;
            continue;
        };
        pos += n;
        let skip = match key & 7 {
            0 => varint(&bytes[pos..end]).map(|(_, n)| n),
            1 => Some(8),
            5 => Some(4),
            2 => match varint(&bytes[pos..end]) {
                Some((len, n)) if (len as usize) <= end - pos - n => {
                    pos += n;
                    ends.push(pos + len as usize);
                    deepest = deepest.max(ends.len());
                    if deepest > limit {
                        return deepest;
                    }
                    continue;
                }
                _ => None,
            },
            _ => None,
        };
        match skip {
            Some(n) if key >> 3 != 0 && n <= end - pos => pos += n,
            // Not a message: the rest of this level is opaque.
            _ => pos = end,
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto;

    fn nested_filters(levels: usize) -> Vec<u8> {
        let mut relation = proto::Relation {
            common: None,
            rel_type: Some(proto::relation::RelType::Range(proto::Range {
                start: Some(0),
                end: 10,
                step: 1,
                num_partitions: None,
            })),
        };
        for _ in 0..levels {
            relation = proto::Relation {
                common: None,
                rel_type: Some(proto::relation::RelType::Filter(Box::new(proto::Filter {
                    input: Some(Box::new(relation)),
                    condition: None,
                }))),
            };
        }
        relation.encode_to_vec()
    }

    #[test]
    fn depth_is_an_upper_bound_found_in_one_pass() {
        // Each filter is two messages deep (Relation, Filter).
        let depth = nesting_depth(&nested_filters(40), usize::MAX);
        assert!((81..=84).contains(&depth), "{depth}");
        assert!(nesting_depth(&nested_filters(60), MAX_DEPTH) > MAX_DEPTH);
        assert!(nesting_depth(&nested_filters(45), MAX_DEPTH) <= MAX_DEPTH);
        // Strings and garbage end their level, they do not fail the scan.
        assert_eq!(nesting_depth(&[0x0a, 0x03, b'a', b'b', b'c'], 10), 2);
        assert_eq!(nesting_depth(&[0xff, 0xff], 10), 1);
        assert_eq!(nesting_depth(&[], 10), 1);
    }

    #[test]
    fn what_the_scan_lets_through_prost_decodes() {
        let bytes = nested_filters(45);
        assert!(nesting_depth(&bytes, MAX_DEPTH) <= MAX_DEPTH);
        let relation = proto::Relation::decode(bytes.as_slice()).expect("90 levels decode");
        assert!(matches!(
            relation.rel_type,
            Some(proto::relation::RelType::Filter(_))
        ));
    }
}
