//! TPC-H data generation and the bundled TPC-H query texts.
//!
//! [`generate_parquet`] writes the eight TPC-H tables as parquet files using
//! the `tpchgen` / `tpchgen-arrow` generators, and [`query`] returns the text
//! of one of the 22 TPC-H queries (with the specification's validation
//! parameters) from `testdata/tpch/queries/`.
//!
//! # File layout
//!
//! `generate_parquet(sf, out)` produces `<out>/<table>.parquet` for every name
//! in [`TABLES`], plus a marker file `<out>/_tpch_sf` holding the scale factor
//! the files were generated at and a lock file `<out>/.tpch.lock`. Both
//! auxiliary names start with `_` or `.`, which DataFusion's file listing
//! skips.
//!
//! # Parquet layout
//!
//! * ZSTD level 1 compression for every column.
//! * Row groups of at most about [`ROW_GROUP_ROWS`] (512 Ki) rows: each table
//!   is split into the fewest equal generator parts that stay within that
//!   bound, and every part becomes exactly one row group. `lineitem` is split
//!   by orders (1 to 7 lines per order, 4 on average), so its row groups vary
//!   by a few tenths of a percent; every row group stays far below 1 M rows.
//!   At SF 1 this gives `lineitem` 12 row groups of about 500 K rows,
//!   `orders` 3 and `partsupp` 2, so a scan can use a dozen cores even at
//!   that small scale.
//! * Column types are whatever `tpchgen-arrow` produces (`Int64` keys,
//!   `Decimal128(15, 2)` money, `Date32` dates, `Utf8View` strings); the
//!   Arrow schema is embedded in the file so readers get those types back.
//!
//! Parts are generated and encoded on up to
//! [`std::thread::available_parallelism`] threads; the file itself is written
//! by the calling thread. Generation is blocking: from async code call it via
//! `tokio::task::spawn_blocking`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

/// The eight TPC-H tables, in alphabetical order.
pub const TABLES: [&str; 8] = [
    "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier",
];

/// Target (and, up to `lineitem`'s small statistical spread, maximum) number
/// of rows in one parquet row group.
pub const ROW_GROUP_ROWS: usize = 512 * 1024;

/// Name of the file in the output directory that records the scale factor.
pub const SCALE_FACTOR_MARKER: &str = "_tpch_sf";

/// Name of the lock file that serialises concurrent generators on one directory.
const LOCK_FILE: &str = ".tpch.lock";

/// Rows per Arrow batch handed from the generator to the parquet encoder.
const BATCH_ROWS: usize = 8192;

/// The 22 TPC-H queries, bundled at compile time.
const QUERIES: [&str; 22] = [
    include_str!("../../testdata/tpch/queries/q01.sql"),
    include_str!("../../testdata/tpch/queries/q02.sql"),
    include_str!("../../testdata/tpch/queries/q03.sql"),
    include_str!("../../testdata/tpch/queries/q04.sql"),
    include_str!("../../testdata/tpch/queries/q05.sql"),
    include_str!("../../testdata/tpch/queries/q06.sql"),
    include_str!("../../testdata/tpch/queries/q07.sql"),
    include_str!("../../testdata/tpch/queries/q08.sql"),
    include_str!("../../testdata/tpch/queries/q09.sql"),
    include_str!("../../testdata/tpch/queries/q10.sql"),
    include_str!("../../testdata/tpch/queries/q11.sql"),
    include_str!("../../testdata/tpch/queries/q12.sql"),
    include_str!("../../testdata/tpch/queries/q13.sql"),
    include_str!("../../testdata/tpch/queries/q14.sql"),
    include_str!("../../testdata/tpch/queries/q15.sql"),
    include_str!("../../testdata/tpch/queries/q16.sql"),
    include_str!("../../testdata/tpch/queries/q17.sql"),
    include_str!("../../testdata/tpch/queries/q18.sql"),
    include_str!("../../testdata/tpch/queries/q19.sql"),
    include_str!("../../testdata/tpch/queries/q20.sql"),
    include_str!("../../testdata/tpch/queries/q21.sql"),
    include_str!("../../testdata/tpch/queries/q22.sql"),
];

/// Text of TPC-H query `n` (1..=22) with the specification's validation
/// parameters, or `None` for any other `n`.
pub fn query(n: usize) -> Option<&'static str> {
    n.checked_sub(1).and_then(|i| QUERIES.get(i)).copied()
}

/// Checks a result of query `n` (1..=22) at scale factor 1 against the
/// published TPC-H answer shipped in the `tpchgen` crate.
///
/// Rows are compared in order. Text cells must be equal after trimming;
/// numeric cells may differ by the answer's rounding to cents (0.01), plus
/// one part in 10^9 for float noise. The published Q17 average (348406.02)
/// is 0.034 below the exact value of its own sum and count, so Q17 alone is
/// allowed 0.05. The published Q11 answer cuts
/// `ps_partkey` to its first four digits, so a shorter all-digit answer cell
/// matches a key that starts with it.
pub fn check_sf1_answer(n: usize, batches: &[RecordBatch]) -> Result<(), String> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let answer = tpchgen::q_and_a::answers_sf1::answer(n as i32)
        .ok_or_else(|| format!("no published answer for query {n}"))?;
    let expected: Vec<Vec<String>> = answer
        .lines()
        .filter(|l| !l.trim().is_empty())
        .skip(1)
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect();
    let options = FormatOptions::default().with_null("NULL");
    let mut actual = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        for row in 0..batch.num_rows() {
            actual.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect::<Vec<_>>(),
            );
        }
    }
    if actual.len() != expected.len() {
        return Err(format!(
            "Q{n}: {} rows, the published answer has {}",
            actual.len(),
            expected.len()
        ));
    }
    for (i, (got, want)) in actual.iter().zip(&expected).enumerate() {
        if got.len() != want.len() {
            return Err(format!(
                "Q{n} row {i}: {} columns, the published answer has {}",
                got.len(),
                want.len()
            ));
        }
        let tolerance = if n == 17 { 0.05 } else { 0.01 };
        for (g, w) in got.iter().zip(want) {
            if !cell_matches(g, w, tolerance) {
                return Err(format!(
                    "Q{n} row {i}: got {got:?}, the published answer is {want:?}"
                ));
            }
        }
    }
    Ok(())
}

fn cell_matches(got: &str, want: &str, tolerance: f64) -> bool {
    let got = got.trim();
    if got == want {
        return true;
    }
    if let (Ok(g), Ok(w)) = (got.parse::<f64>(), want.parse::<f64>())
        && (g - w).abs() <= tolerance + w.abs() * 1e-9
    {
        return true;
    }
    !want.is_empty()
        && want.len() < got.len()
        && want.bytes().all(|b| b.is_ascii_digit())
        && got.bytes().all(|b| b.is_ascii_digit())
        && got.starts_with(want)
}

/// What [`generate_parquet`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    /// `(table name, row count)` for each of [`TABLES`], in that order.
    pub tables: Vec<(String, u64)>,
    /// True when every table was already present at this scale factor and
    /// nothing was generated.
    pub reused: bool,
}

/// Errors from TPC-H data generation.
#[derive(Debug, thiserror::Error)]
pub enum TpchError {
    /// The scale factor is not a finite number greater than zero.
    #[error("invalid TPC-H scale factor {0}: it must be a finite number greater than 0")]
    InvalidScaleFactor(f64),
    /// A file system operation on `path` failed.
    #[error("TPC-H generator: {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The generator failed to produce a batch of `table`.
    #[error("generating TPC-H table {table}: {source}")]
    Generate {
        table: &'static str,
        #[source]
        source: ArrowError,
    },
    /// Encoding or writing `table` to the parquet file at `path` failed.
    #[error("writing TPC-H table {table} to {path}: {source}")]
    Parquet {
        table: &'static str,
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    /// A table's file could not be written in place, or is refused (a link,
    /// a folder).
    #[error("TPC-H generator: {0}")]
    File(#[from] fairway_files::FileError),
    /// A thread generating part of `table` panicked.
    #[error("a generator thread for TPC-H table {table} panicked")]
    WorkerPanicked { table: &'static str },
}

impl TpchError {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes the eight TPC-H tables at scale factor `sf` as
/// `<out>/<table>.parquet`, creating `out` if needed.
///
/// Every file is first written under a temporary name in `out` and renamed
/// into place once complete, so an interrupted run never leaves a
/// half-written table behind. A table is kept as it is (not regenerated) when
/// its file exists and `<out>/_tpch_sf` records the same scale factor; when
/// the marker is missing or names another scale factor, all eight tables are
/// removed and regenerated. Concurrent calls on the same directory (threads
/// or processes) are serialised with a lock file.
///
/// This blocks the calling thread for the whole generation.
pub fn generate_parquet(sf: f64, out: &Path) -> Result<GenerateSummary, TpchError> {
    if !sf.is_finite() || sf <= 0.0 {
        return Err(TpchError::InvalidScaleFactor(sf));
    }
    fs::create_dir_all(out).map_err(|e| TpchError::io("creating directory", out, e))?;

    let lock_path = out.join(LOCK_FILE);
    if fs::symlink_metadata(&lock_path).is_ok_and(|m| !m.is_file()) {
        return Err(TpchError::io(
            "opening lock file",
            &lock_path,
            io::Error::other("it is a link or not a regular file; fairway does not follow it"),
        ));
    }
    // Opened without truncating: the lock file holds nothing, and a file
    // put there by someone else is left as it was.
    let lock = match fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
    {
        Ok(lock) => lock,
        Err(e) => {
            // A read-only directory can still serve data generated earlier.
            return match reusable_tables(out, sf) {
                Some(tables) => Ok(GenerateSummary {
                    tables,
                    reused: true,
                }),
                None => Err(TpchError::io("creating lock file", &lock_path, e)),
            };
        }
    };
    lock.lock()
        .map_err(|e| TpchError::io("locking", &lock_path, e))?;
    // The lock is released when `lock` is dropped at the end of this function.

    fairway_files::remove_stale_temporaries(out);

    let marker = out.join(SCALE_FACTOR_MARKER);
    let marker_matches = read_marker(&marker) == Some(sf);
    if read_marker(&marker).is_none() {
        // Without a marker fairway did not generate this folder's tables:
        // a table file there is the user's, never to be replaced.
        for table in Table::ALL {
            let path = table_path(out, table);
            if fs::symlink_metadata(&path).is_ok() {
                return Err(TpchError::io(
                    "refusing to replace",
                    &path,
                    io::Error::other(format!(
                        "{} has no {SCALE_FACTOR_MARKER} marker, so fairway did not generate \
                         it; choose an empty folder",
                        out.display()
                    )),
                ));
            }
        }
    }
    if !marker_matches {
        // Drop everything generated at another (or an unknown) scale factor
        // before recording the new one: from here on, every table file in
        // `out` is complete and was generated at the marker's scale factor.
        remove_if_exists(&marker)?;
        for table in Table::ALL {
            remove_if_exists(&table_path(out, table))?;
        }
        write_marker(&marker, sf)?;
    }

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut tables = Vec::with_capacity(Table::ALL.len());
    let mut reused = true;
    for table in Table::ALL {
        let path = table_path(out, table);
        let existing = if marker_matches {
            existing_row_count(&path)
        } else {
            None
        };
        let rows = match existing {
            Some(rows) => rows,
            None => {
                reused = false;
                // A fresh temporary (exclusive, random name), renamed
                // over the table's file, removed if the write fails.
                fairway_files::write_atomically_at(&path, |temp| {
                    write_table(table, sf, temp, ROW_GROUP_ROWS, threads)
                })?
            }
        };
        tables.push((table.name().to_string(), rows));
    }
    drop(lock);
    Ok(GenerateSummary { tables, reused })
}

fn table_path(out: &Path, table: Table) -> PathBuf {
    out.join(format!("{}.parquet", table.name()))
}

fn remove_if_exists(path: &Path) -> Result<(), TpchError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(TpchError::io("removing stale file", path, e))
        }
        _ => Ok(()),
    }
}

/// The scale factor recorded in the marker file, if it exists and parses.
fn read_marker(marker: &Path) -> Option<f64> {
    fs::read_to_string(marker).ok()?.trim().parse().ok()
}

fn write_marker(marker: &Path, sf: f64) -> Result<(), TpchError> {
    // `{}` on f64 prints the shortest text that parses back to the same value.
    fairway_files::write_atomically(marker, |file| {
        use std::io::Write;
        file.write_all(format!("{sf}\n").as_bytes())
            .map_err(|e| fairway_files::FileError::io(marker, e))
    })
    .map_err(|e| {
        TpchError::io(
            "writing scale factor marker",
            marker,
            io::Error::other(e.to_string()),
        )
    })
}

/// Row counts of all tables when the marker records `sf` and every table
/// file is present and readable.
fn reusable_tables(out: &Path, sf: f64) -> Option<Vec<(String, u64)>> {
    if read_marker(&out.join(SCALE_FACTOR_MARKER)) != Some(sf) {
        return None;
    }
    Table::ALL
        .iter()
        .map(|&table| {
            existing_row_count(&table_path(out, table)).map(|rows| (table.name().to_string(), rows))
        })
        .collect()
}

/// Row count from the footer of an existing parquet file, or `None` when the
/// file is missing or unreadable (so that it gets regenerated).
fn existing_row_count(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let reader = SerializedFileReader::new(file).ok()?;
    u64::try_from(reader.metadata().file_metadata().num_rows()).ok()
}

fn writer_properties() -> Result<WriterProperties, ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        // Row groups are formed by hand (one per generator part, see
        // `write_table`); this only documents the intended bound.
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build())
}

/// Generates `table` into a new parquet file at `path`, one row group per
/// generator part of about `group_rows` rows, encoding up to `threads` parts
/// at a time. Returns the number of rows written.
fn write_table(
    table: Table,
    sf: f64,
    path: &Path,
    group_rows: usize,
    threads: usize,
) -> Result<u64, TpchError> {
    let name = table.name();
    let parquet_err = |source: ParquetError| TpchError::Parquet {
        table: name,
        path: path.to_path_buf(),
        source,
    };

    let file = File::create(path).map_err(|e| TpchError::io("creating", path, e))?;
    let schema = table.schema();
    let props = writer_properties().map_err(parquet_err)?;
    // `ArrowWriter` derives the parquet schema and embeds the Arrow schema in
    // the footer; the lower-level writer it converts into lets whole row
    // groups be encoded on other threads.
    let (mut writer, factory) = ArrowWriter::try_new(file, schema.clone(), Some(props))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(parquet_err)?;

    let parts = table.part_count(sf, group_rows);
    let part_numbers: Vec<i32> = (1..=parts).collect();
    for wave in part_numbers.chunks(threads.max(1)) {
        let mut jobs = Vec::with_capacity(wave.len());
        for &part in wave {
            // Row group indexes are 0-based, generator parts 1-based.
            let index = usize::try_from(part - 1).unwrap_or_default();
            let writers = factory.create_column_writers(index).map_err(parquet_err)?;
            jobs.push((part, writers));
        }
        let encoded = std::thread::scope(|scope| {
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|(part, writers)| {
                    let schema = &schema;
                    scope.spawn(move || encode_part(table, sf, part, parts, schema, writers))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or(Err(PartError::Panicked)))
                .collect::<Vec<_>>()
        });
        for result in encoded {
            let (chunks, rows) = result.map_err(|e| match e {
                PartError::Generate(source) => TpchError::Generate {
                    table: name,
                    source,
                },
                PartError::Parquet(source) => parquet_err(source),
                PartError::Panicked => TpchError::WorkerPanicked { table: name },
            })?;
            if rows == 0 {
                continue;
            }
            let mut row_group = writer.next_row_group().map_err(parquet_err)?;
            for chunk in chunks {
                chunk
                    .append_to_row_group(&mut row_group)
                    .map_err(parquet_err)?;
            }
            row_group.close().map_err(parquet_err)?;
        }
    }

    let metadata = writer.finish().map_err(parquet_err)?;
    writer
        .inner_mut()
        .sync_all()
        .map_err(|e| TpchError::io("syncing", path, e))?;
    Ok(u64::try_from(metadata.file_metadata().num_rows()).unwrap_or_default())
}

enum PartError {
    Generate(ArrowError),
    Parquet(ParquetError),
    Panicked,
}

/// Generates generator part `part` of `parts` and encodes it into one column
/// chunk per column. Returns the chunks and the number of rows.
fn encode_part(
    table: Table,
    sf: f64,
    part: i32,
    parts: i32,
    schema: &SchemaRef,
    mut writers: Vec<ArrowColumnWriter>,
) -> Result<(Vec<ArrowColumnChunk>, u64), PartError> {
    let mut rows = 0u64;
    for batch in table.batches(sf, part, parts) {
        let batch = batch.map_err(PartError::Generate)?;
        rows += batch.num_rows() as u64;
        let mut leaves = Vec::with_capacity(writers.len());
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column).map_err(PartError::Parquet)?);
        }
        if leaves.len() != writers.len() {
            return Err(PartError::Parquet(ParquetError::General(format!(
                "batch has {} leaf columns, the parquet schema {}",
                leaves.len(),
                writers.len()
            ))));
        }
        for (writer, leaf) in writers.iter_mut().zip(&leaves) {
            writer.write(leaf).map_err(PartError::Parquet)?;
        }
    }
    let chunks = writers
        .into_iter()
        .map(ArrowColumnWriter::close)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PartError::Parquet)?;
    Ok((chunks, rows))
}

/// One TPC-H table and how to generate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Customer,
    Lineitem,
    Nation,
    Orders,
    Part,
    Partsupp,
    Region,
    Supplier,
}

impl Table {
    /// Same order as [`TABLES`].
    const ALL: [Table; 8] = [
        Table::Customer,
        Table::Lineitem,
        Table::Nation,
        Table::Orders,
        Table::Part,
        Table::Partsupp,
        Table::Region,
        Table::Supplier,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::Customer => TABLES[0],
            Table::Lineitem => TABLES[1],
            Table::Nation => TABLES[2],
            Table::Orders => TABLES[3],
            Table::Part => TABLES[4],
            Table::Partsupp => TABLES[5],
            Table::Region => TABLES[6],
            Table::Supplier => TABLES[7],
        }
    }

    fn schema(self) -> SchemaRef {
        match self {
            Table::Customer => CustomerArrow::schema_ref(),
            Table::Lineitem => LineItemArrow::schema_ref(),
            Table::Nation => NationArrow::schema_ref(),
            Table::Orders => OrderArrow::schema_ref(),
            Table::Part => PartArrow::schema_ref(),
            Table::Partsupp => PartSuppArrow::schema_ref(),
            Table::Region => RegionArrow::schema_ref(),
            Table::Supplier => SupplierArrow::schema_ref(),
        }
    }

    /// Number of generator parts (= row groups) for this table so that each
    /// holds at most about `group_rows` rows.
    ///
    /// The generators split a table by "units" (`floor(base * sf)` of them):
    /// rows for most tables, parts for `partsupp` (4 rows each) and orders
    /// for `lineitem` (4 rows each on average).
    fn part_count(self, sf: f64, group_rows: usize) -> i32 {
        let (base, rows_per_unit) = match self {
            // Fixed size, independent of the scale factor.
            Table::Nation | Table::Region => return 1,
            Table::Customer => (150_000.0, 1.0),
            Table::Lineitem => (1_500_000.0, 4.0),
            Table::Orders => (1_500_000.0, 1.0),
            Table::Part => (200_000.0, 1.0),
            Table::Partsupp => (200_000.0, 4.0),
            Table::Supplier => (10_000.0, 1.0),
        };
        let units = (base * sf).floor();
        let parts = (units * rows_per_unit / group_rows.max(1) as f64).ceil();
        // At least one unit per part; `as` saturates at i32::MAX.
        parts.min(units).max(1.0) as i32
    }

    /// Arrow batches of generator part `part` (1-based) of `parts`.
    fn batches(
        self,
        sf: f64,
        part: i32,
        parts: i32,
    ) -> Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>> {
        match self {
            Table::Customer => Box::new(
                CustomerArrow::new(CustomerGenerator::new(sf, part, parts))
                    .with_batch_size(BATCH_ROWS),
            ),
            Table::Lineitem => Box::new(
                LineItemArrow::new(LineItemGenerator::new(sf, part, parts))
                    .with_batch_size(BATCH_ROWS),
            ),
            Table::Nation => Box::new(
                NationArrow::new(NationGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
            ),
            Table::Orders => Box::new(
                OrderArrow::new(OrderGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
            ),
            Table::Part => Box::new(
                PartArrow::new(PartGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
            ),
            Table::Partsupp => Box::new(
                PartSuppArrow::new(PartSuppGenerator::new(sf, part, parts))
                    .with_batch_size(BATCH_ROWS),
            ),
            Table::Region => Box::new(
                RegionArrow::new(RegionGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
            ),
            Table::Supplier => Box::new(
                SupplierArrow::new(SupplierGenerator::new(sf, part, parts))
                    .with_batch_size(BATCH_ROWS),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    fn q6_batch(revenue: &str) -> RecordBatch {
        use arrow::array::Decimal128Array;
        use arrow::datatypes::{DataType, Field, Schema};
        let cents: i128 = revenue.replace('.', "").parse().unwrap();
        let array = Decimal128Array::from(vec![cents])
            .with_precision_and_scale(25, 2)
            .unwrap();
        RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(vec![Field::new(
                "revenue",
                DataType::Decimal128(25, 2),
                true,
            )])),
            vec![std::sync::Arc::new(array)],
        )
        .unwrap()
    }

    #[test]
    fn published_answers_accept_the_right_result_and_reject_a_wrong_one() {
        assert_eq!(check_sf1_answer(6, &[q6_batch("123141078.23")]), Ok(()));
        let err = check_sf1_answer(6, &[q6_batch("123141079.23")]).unwrap_err();
        assert!(err.contains("Q6 row 0"), "{err}");
        let err = check_sf1_answer(6, &[]).unwrap_err();
        assert!(err.contains("0 rows"), "{err}");
        assert!(cell_matches("129760", "1297", 0.01));
        assert!(!cell_matches("ABC", "AB", 0.01));
        assert!(cell_matches("348406.054", "348406.02", 0.05));
        assert!(!cell_matches("348406.054", "348406.02", 0.01));
        assert!(cell_matches("25.522", "25.52", 0.01));
        assert!(!cell_matches("25.55", "25.52", 0.01));
    }

    use super::*;
    use arrow::compute::concat_batches;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Compression;

    fn rows(summary: &GenerateSummary, table: &str) -> u64 {
        summary
            .tables
            .iter()
            .find(|(name, _)| name == table)
            .map(|(_, rows)| *rows)
            .unwrap_or_else(|| panic!("no table {table} in {summary:?}"))
    }

    fn read_all(path: &Path) -> RecordBatch {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let schema = builder.schema().clone();
        let batches = builder
            .build()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        concat_batches(&schema, &batches).unwrap()
    }

    /// Issue 14: a folder fairway did not generate keeps its files, and a
    /// link planted at the old predictable temporary name or at the lock
    /// is never written through.
    #[cfg(unix)]
    #[test]
    fn user_files_and_planted_links_are_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mine");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("nation.parquet"), b"my own nation table").unwrap();
        let err = generate_parquet(0.01, &out).unwrap_err().to_string();
        assert!(
            err.contains("nation.parquet") && err.contains("did not generate"),
            "{err}"
        );
        assert_eq!(
            fs::read(out.join("nation.parquet")).unwrap(),
            b"my own nation table"
        );

        let precious = dir.path().join("precious");
        fs::write(&precious, b"keep me").unwrap();
        let out = dir.path().join("gen");
        fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&precious, out.join(".region.parquet.tmp")).unwrap();
        std::os::unix::fs::symlink(&precious, out.join(".nation.parquet.tmp")).unwrap();
        generate_parquet(0.01, &out).unwrap();
        assert_eq!(fs::read(&precious).unwrap(), b"keep me");
        std::os::unix::fs::symlink(&precious, out.join("lock-target")).unwrap();
        fs::remove_file(out.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&precious, out.join(LOCK_FILE)).unwrap();
        assert!(
            generate_parquet(0.01, &out).is_err(),
            "a linked lock is refused"
        );
        assert_eq!(fs::read(&precious).unwrap(), b"keep me");
    }

    #[test]
    fn generates_sf_0_01_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tpch-sf0.01");

        let first = generate_parquet(0.01, &out).unwrap();
        assert!(!first.reused);
        let names: Vec<&str> = first.tables.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, TABLES);
        assert_eq!(rows(&first, "nation"), 25);
        assert_eq!(rows(&first, "region"), 5);
        assert_eq!(rows(&first, "customer"), 1500);
        assert_eq!(rows(&first, "supplier"), 100);
        assert_eq!(rows(&first, "part"), 2000);
        assert_eq!(rows(&first, "partsupp"), 8000);
        assert_eq!(rows(&first, "orders"), 15000);
        let lineitem = rows(&first, "lineitem");
        assert!(
            (59_000..61_000).contains(&lineitem),
            "lineitem rows {lineitem}"
        );

        for (table, count) in &first.tables {
            let path = out.join(format!("{table}.parquet"));
            let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
            let metadata = reader.metadata();
            assert_eq!(
                metadata.file_metadata().num_rows(),
                *count as i64,
                "{table}"
            );
            assert_eq!(metadata.num_row_groups(), 1, "{table}");
            for row_group in metadata.row_groups() {
                for column in row_group.columns() {
                    assert!(
                        matches!(column.compression(), Compression::ZSTD(_)),
                        "{table}: {:?}",
                        column.compression()
                    );
                }
            }
        }
        // The Arrow types (Utf8View, Decimal128, Date32) survive the round trip.
        let customer = read_all(&out.join("customer.parquet"));
        assert_eq!(customer.schema(), CustomerArrow::schema_ref());
        assert_eq!(customer.num_rows(), 1500);

        let mut entries: Vec<String> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        let mut expected: Vec<String> = TABLES.iter().map(|t| format!("{t}.parquet")).collect();
        expected.extend([LOCK_FILE.to_string(), SCALE_FACTOR_MARKER.to_string()]);
        expected.sort();
        assert_eq!(entries, expected, "no temporary files are left behind");
        assert_eq!(read_marker(&out.join(SCALE_FACTOR_MARKER)), Some(0.01));

        let second = generate_parquet(0.01, &out).unwrap();
        assert!(second.reused);
        assert_eq!(second.tables, first.tables);

        // A missing table is regenerated, the others are kept.
        let nation = out.join("nation.parquet");
        let lineitem_modified = fs::metadata(out.join("lineitem.parquet"))
            .unwrap()
            .modified()
            .unwrap();
        fs::remove_file(&nation).unwrap();
        let third = generate_parquet(0.01, &out).unwrap();
        assert!(!third.reused);
        assert_eq!(third.tables, first.tables);
        assert!(nation.exists());
        let lineitem_modified_again = fs::metadata(out.join("lineitem.parquet"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(lineitem_modified, lineitem_modified_again);

        // Files recorded at another scale factor are all regenerated.
        fs::write(out.join(SCALE_FACTOR_MARKER), "0.02\n").unwrap();
        let fourth = generate_parquet(0.01, &out).unwrap();
        assert!(!fourth.reused);
        assert_eq!(fourth.tables, first.tables);
        assert_eq!(read_marker(&out.join(SCALE_FACTOR_MARKER)), Some(0.01));
        assert!(generate_parquet(0.01, &out).unwrap().reused);
    }

    #[test]
    fn parts_written_as_row_groups_match_a_single_part() {
        let dir = tempfile::tempdir().unwrap();
        let single = dir.path().join("single.parquet");
        let split = dir.path().join("split.parquet");
        let single_rows = write_table(Table::Lineitem, 0.01, &single, usize::MAX, 1).unwrap();
        let split_rows = write_table(Table::Lineitem, 0.01, &split, 10_000, 3).unwrap();
        assert_eq!(single_rows, split_rows);

        let reader = SerializedFileReader::new(File::open(&split).unwrap()).unwrap();
        let groups = reader.metadata().row_groups();
        assert_eq!(groups.len(), 6);
        for group in groups {
            // 2500 orders per part, 4 lines per order on average.
            assert!(
                (9_000..11_000).contains(&group.num_rows()),
                "{}",
                group.num_rows()
            );
        }

        let single = read_all(&single);
        let split = read_all(&split);
        assert_eq!(single.schema(), LineItemArrow::schema_ref());
        assert_eq!(single.num_rows() as u64, single_rows);
        assert_eq!(single, split);
    }

    #[test]
    fn part_counts_follow_the_row_group_target() {
        assert_eq!(Table::Nation.part_count(1000.0, ROW_GROUP_ROWS), 1);
        assert_eq!(Table::Customer.part_count(0.01, ROW_GROUP_ROWS), 1);
        assert_eq!(Table::Customer.part_count(1.0, ROW_GROUP_ROWS), 1);
        assert_eq!(Table::Orders.part_count(1.0, ROW_GROUP_ROWS), 3);
        assert_eq!(Table::Lineitem.part_count(1.0, ROW_GROUP_ROWS), 12);
        assert_eq!(Table::Partsupp.part_count(1.0, ROW_GROUP_ROWS), 2);
        assert_eq!(Table::Lineitem.part_count(10.0, ROW_GROUP_ROWS), 115);
        // Never more parts than generator units.
        assert_eq!(Table::Supplier.part_count(0.001, 1), 10);
        assert_eq!(Table::Supplier.part_count(0.00001, 1), 1);
    }

    #[test]
    fn rejects_invalid_scale_factors() {
        let dir = tempfile::tempdir().unwrap();
        for sf in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = generate_parquet(sf, dir.path()).unwrap_err();
            assert!(matches!(err, TpchError::InvalidScaleFactor(_)), "{err}");
        }
    }

    #[test]
    fn bundles_the_22_queries() {
        assert_eq!(query(0), None);
        assert_eq!(query(23), None);
        for n in 1..=22 {
            let text = query(n).unwrap();
            assert!(
                text.starts_with(&format!("-- TPC-H Q{n}: ")),
                "q{n} header: {}",
                text.lines().next().unwrap_or_default()
            );
            let body = text.trim_end();
            assert!(body.ends_with(';'), "q{n} ends with ';'");
            assert_eq!(body.matches(';').count(), 1, "q{n} holds one statement");
        }
    }
}
