//! Shuffle write + read throughput against plain Arrow IPC.
//!
//! The same lineitem-like batches (about 200 MB in memory, 8192 rows each)
//! go through one map task's `write_map_output` and are read back through a
//! `ShuffleReaderExec`, bucket by bucket, on one thread (a current-thread
//! tokio runtime), so bytes/s are per core:
//!
//! * `shuffle_memory`: kept in memory (the budget is larger than the data);
//! * `shuffle_spilled`: a zero memory budget, so every batch goes to the
//!   map task's Arrow IPC data file (LZ4, the default, or uncompressed) and
//!   is decoded again when read;
//!
//! with 1 bucket (no partitioning) and 4 buckets (hash of the order key, as
//! a 4-partition exchange). The baselines write the same batches with a
//! plain `arrow::ipc::writer::StreamWriter` to a `Vec<u8>` or to a file
//! (uncompressed or LZ4) and read them back with a `StreamReader`.
//! Throughput is the input's in-memory Arrow size per second.
//!
//! `cargo bench --workspace --bench shuffle` (see benches/README.md).

use std::fs::File;
use std::io::{BufReader, BufWriter, Cursor};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::common::collect;
use datafusion::physical_plan::expressions::col;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use datafusion::prelude::SessionConfig;
use divan::Bencher;
use divan::counter::BytesCount;
use fairway_shuffle::{
    MapPartitioning, ReadMode, ShuffleCompression, ShuffleConfig, ShuffleReaderExec,
    ShuffleService, write_map_output,
};

const BATCH_ROWS: usize = 8192;
const TARGET_BYTES: usize = 200_000_000;

fn main() {
    divan::main();
}

/// Lineitem-like columns with deterministic pseudo-random values.
fn batches() -> &'static (SchemaRef, Vec<RecordBatch>, usize) {
    static DATA: std::sync::OnceLock<(SchemaRef, Vec<RecordBatch>, usize)> =
        std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let schema = Arc::new(Schema::new(vec![
            Field::new("l_orderkey", DataType::Int64, false),
            Field::new("l_partkey", DataType::Int64, false),
            Field::new("l_suppkey", DataType::Int64, false),
            Field::new("l_quantity", DataType::Float64, false),
            Field::new("l_extendedprice", DataType::Float64, false),
            Field::new("l_discount", DataType::Float64, false),
            Field::new("l_returnflag", DataType::Utf8, false),
            Field::new("l_shipdate", DataType::Date32, false),
            Field::new("l_comment", DataType::Utf8, false),
        ]));
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        const WORDS: [&str; 8] = [
            "carefully",
            "final",
            "deposits",
            "sleep",
            "furiously",
            "regular",
            "packages",
            "ironic",
        ];
        let mut batches = Vec::new();
        let mut bytes = 0;
        let mut row = 0i64;
        while bytes < TARGET_BYTES {
            let n = BATCH_ROWS;
            let orderkey: Vec<i64> = (0..n as i64).map(|i| (row + i) / 4 * 32 + 1).collect();
            let ints = |m: u64, next: &mut dyn FnMut() -> u64| -> Vec<i64> {
                (0..n).map(|_| (next() % m) as i64).collect()
            };
            let partkey = ints(200_000, &mut next);
            let suppkey = ints(10_000, &mut next);
            let quantity: Vec<f64> = (0..n).map(|_| (next() % 50 + 1) as f64).collect();
            let price: Vec<f64> = (0..n)
                .map(|_| (next() % 10_000_000) as f64 / 100.0)
                .collect();
            let discount: Vec<f64> = (0..n).map(|_| (next() % 11) as f64 / 100.0).collect();
            let flag: Vec<&str> = (0..n)
                .map(|_| ["A", "N", "R"][next() as usize % 3])
                .collect();
            let date: Vec<i32> = (0..n).map(|_| 8036 + (next() % 2526) as i32).collect();
            let comment: Vec<String> = (0..n)
                .map(|_| {
                    (0..4)
                        .map(|_| WORDS[next() as usize % WORDS.len()])
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(orderkey)),
                Arc::new(Int64Array::from(partkey)),
                Arc::new(Int64Array::from(suppkey)),
                Arc::new(Float64Array::from(quantity)),
                Arc::new(Float64Array::from(price)),
                Arc::new(Float64Array::from(discount)),
                Arc::new(StringArray::from(flag)),
                Arc::new(Date32Array::from(date)),
                Arc::new(StringArray::from(comment)),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
            bytes += batch.get_array_memory_size();
            row += n as i64;
            batches.push(batch);
        }
        (schema, batches, bytes)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// One map task writes every batch, then each bucket is read back; returns
/// the rows read.
fn shuffle_round_trip(
    rt: &tokio::runtime::Runtime,
    memory_limit: usize,
    compression: ShuffleCompression,
    buckets: usize,
) -> usize {
    let (schema, batches, _) = batches();
    let service = ShuffleService::new(ShuffleConfig {
        memory_limit,
        compression,
        ..ShuffleConfig::default()
    });
    let job = service.create_job(1);
    let partitioning = if buckets == 1 {
        MapPartitioning::Single
    } else {
        MapPartitioning::Partitioned(Partitioning::Hash(
            vec![col("l_orderkey", schema).expect("column")],
            buckets,
        ))
    };
    rt.block_on(async {
        let input = Box::pin(RecordBatchStreamAdapter::new(
            schema.clone(),
            futures::stream::iter(batches.iter().cloned().map(Ok)),
        ));
        let stats = write_map_output(&job, 0, 0, 0, input, &partitioning, BATCH_ROWS)
            .await
            .expect("write");
        assert_eq!(stats.spilled, memory_limit == 0);
        let reader = ShuffleReaderExec::new(
            0,
            schema.clone(),
            ReadMode::Buckets { buckets, maps: 1 },
            None,
        );
        let ctx = Arc::new(
            TaskContext::default()
                .with_session_config(SessionConfig::new().with_extension(job.clone())),
        );
        let mut rows = 0;
        for bucket in 0..buckets {
            let out = collect(reader.execute(bucket, ctx.clone()).expect("execute"))
                .await
                .expect("read");
            rows += out.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        rows
    })
}

fn total_rows() -> usize {
    batches().1.iter().map(|b| b.num_rows()).sum()
}

#[divan::bench(args = [1, 4], sample_count = 10, sample_size = 1)]
fn shuffle_memory(bencher: Bencher<'_, '_>, buckets: usize) {
    let rt = runtime();
    let expected = total_rows();
    bencher
        .counter(BytesCount::new(batches().2))
        .bench_local(|| {
            let rows = shuffle_round_trip(&rt, usize::MAX / 2, ShuffleCompression::Lz4, buckets);
            assert_eq!(rows, expected);
        });
}

#[divan::bench(args = [1, 4], sample_count = 5, sample_size = 1)]
fn shuffle_spilled_lz4(bencher: Bencher<'_, '_>, buckets: usize) {
    let rt = runtime();
    let expected = total_rows();
    bencher
        .counter(BytesCount::new(batches().2))
        .bench_local(|| {
            let rows = shuffle_round_trip(&rt, 0, ShuffleCompression::Lz4, buckets);
            assert_eq!(rows, expected);
        });
}

#[divan::bench(args = [1, 4], sample_count = 5, sample_size = 1)]
fn shuffle_spilled_uncompressed(bencher: Bencher<'_, '_>, buckets: usize) {
    let rt = runtime();
    let expected = total_rows();
    bencher
        .counter(BytesCount::new(batches().2))
        .bench_local(|| {
            let rows = shuffle_round_trip(&rt, 0, ShuffleCompression::None, buckets);
            assert_eq!(rows, expected);
        });
}

fn ipc_write<W: std::io::Write>(out: W, compression: Option<CompressionType>) -> W {
    let (schema, batches, _) = batches();
    let options = IpcWriteOptions::default()
        .try_with_compression(compression)
        .expect("options");
    let mut writer = StreamWriter::try_new_with_options(out, schema, options).expect("writer");
    for batch in batches {
        writer.write(batch).expect("write");
    }
    writer.finish().expect("finish");
    writer.into_inner().expect("into_inner")
}

fn ipc_read<R: std::io::Read>(input: R) -> usize {
    StreamReader::try_new(input, None)
        .expect("reader")
        .map(|b| b.expect("batch").num_rows())
        .sum()
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn ipc_vec(bencher: Bencher<'_, '_>) {
    let expected = total_rows();
    bencher
        .counter(BytesCount::new(batches().2))
        .bench_local(|| {
            let bytes = ipc_write(Vec::new(), None);
            assert_eq!(ipc_read(Cursor::new(&bytes)), expected);
        });
}

fn ipc_file_round_trip(compression: Option<CompressionType>) -> usize {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("batches.arrows");
    let file = File::create(&path).expect("create");
    let writer = ipc_write(BufWriter::with_capacity(256 * 1024, file), compression);
    writer.into_inner().expect("flush");
    let rows = ipc_read(BufReader::with_capacity(
        256 * 1024,
        File::open(&path).expect("open"),
    ));
    drop(dir);
    rows
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn ipc_file_uncompressed(bencher: Bencher<'_, '_>) {
    let expected = total_rows();
    bencher
        .counter(BytesCount::new(batches().2))
        .bench_local(|| assert_eq!(ipc_file_round_trip(None), expected));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn ipc_file_lz4(bencher: Bencher<'_, '_>) {
    let expected = total_rows();
    bencher
        .counter(BytesCount::new(batches().2))
        .bench_local(|| {
            assert_eq!(
                ipc_file_round_trip(Some(CompressionType::LZ4_FRAME)),
                expected
            )
        });
}
