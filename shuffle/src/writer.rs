//! [`write_map_output`]: how a map task splits its output into buckets for
//! the consumer stage and stores them in memory or in one data file.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::compute::BatchCoalescer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::metrics::Time;
use datafusion::physical_plan::repartition::BatchPartitioner;
use datafusion::physical_plan::{Partitioning, SendableRecordBatchStream};
use futures::StreamExt;

use crate::error::ShuffleError;
use crate::store::{JobShuffle, MapOutput, Reservation, create_new_file};

/// How a map task splits its output for the consumer stage.
#[derive(Debug, Clone)]
pub enum MapPartitioning {
    /// By a DataFusion partitioning (hash or range) into its partition count.
    Partitioned(Partitioning),
    /// Everything into one bucket: the consumer reads each map output whole
    /// (below a coalesce or sort-preserving merge, or a broadcast side).
    Single,
}

impl MapPartitioning {
    pub fn buckets(&self) -> usize {
        match self {
            MapPartitioning::Partitioned(p) => p.partition_count(),
            MapPartitioning::Single => 1,
        }
    }
}

/// What one map task wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapStats {
    pub rows: u64,
    /// Bytes of the stored output: in-memory size, or data-file size.
    pub bytes: u64,
    /// Whether the output went to a file.
    pub spilled: bool,
}

/// Runs a map task's output stream to completion and stores it in `job` as
/// map output `map` of `stage`.
///
/// Batches are routed to buckets (DataFusion's own partitioner, so hashing
/// agrees with DataFusion's), re-assembled into batches of `batch_size` rows
/// per bucket, and kept in memory while the shuffle budget allows. As soon as
/// a reservation fails, everything buffered so far and all later batches go
/// to one temporary IPC stream per bucket; at the end those are concatenated
/// into ONE data file, bucket after bucket, with an index of byte offsets
/// (Spark's sort-shuffle layout, written the way its bypass-merge writer does).
pub async fn write_map_output(
    job: &Arc<JobShuffle>,
    stage: usize,
    map: usize,
    attempt: u32,
    mut input: SendableRecordBatchStream,
    partitioning: &MapPartitioning,
    batch_size: usize,
) -> Result<MapStats, ShuffleError> {
    let schema = input.schema();
    let buckets = partitioning.buckets();
    let mut partitioner = match partitioning {
        MapPartitioning::Partitioned(p) => {
            Some(BatchPartitioner::try_new(p.clone(), Time::new(), map, 1)?)
        }
        MapPartitioning::Single => None,
    };
    let mut coalescers: Vec<BatchCoalescer> = (0..buckets)
        .map(|_| BatchCoalescer::new(Arc::clone(&schema), batch_size.max(1)))
        .collect();
    let mut sink = Sink::new(job, stage, map, attempt, &schema, buckets);

    while let Some(batch) = input.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        match partitioner.as_mut() {
            Some(partitioner) => {
                for piece in partitioner.partition_iter(batch)? {
                    let (bucket, piece) = piece?;
                    push(&mut coalescers[bucket], bucket, piece, &mut sink)?;
                }
            }
            None => push(&mut coalescers[0], 0, batch, &mut sink)?,
        }
    }
    for (bucket, coalescer) in coalescers.iter_mut().enumerate() {
        coalescer
            .finish_buffered_batch()
            .map_err(|e| sink.arrow(e))?;
        while let Some(done) = coalescer.next_completed_batch() {
            sink.push(bucket, done)?;
        }
    }
    let (output, stats) = sink.finish()?;
    job.put(stage, map, output);
    Ok(stats)
}

fn push(
    coalescer: &mut BatchCoalescer,
    bucket: usize,
    batch: RecordBatch,
    sink: &mut Sink<'_>,
) -> Result<(), ShuffleError> {
    coalescer.push_batch(batch).map_err(|e| sink.arrow(e))?;
    while let Some(done) = coalescer.next_completed_batch() {
        sink.push(bucket, done)?;
    }
    Ok(())
}

/// Where a map task's finished batches go: memory until the budget says no,
/// then one temporary stream file per bucket.
struct Sink<'a> {
    job: &'a Arc<JobShuffle>,
    stage: usize,
    map: usize,
    attempt: u32,
    schema: SchemaRef,
    rows: u64,
    memory: Vec<Vec<RecordBatch>>,
    reserved: usize,
    /// Set once the task has switched to files.
    spill: Option<Vec<Option<BucketFile>>>,
}

struct BucketFile {
    path: PathBuf,
    writer: StreamWriter<BufWriter<File>>,
}

impl<'a> Sink<'a> {
    fn new(
        job: &'a Arc<JobShuffle>,
        stage: usize,
        map: usize,
        attempt: u32,
        schema: &SchemaRef,
        buckets: usize,
    ) -> Self {
        Self {
            job,
            stage,
            map,
            attempt,
            schema: Arc::clone(schema),
            rows: 0,
            memory: vec![Vec::new(); buckets],
            reserved: 0,
            spill: None,
        }
    }

    fn arrow(&self, source: datafusion::arrow::error::ArrowError) -> ShuffleError {
        ShuffleError::Arrow {
            stage: self.stage,
            map: self.map,
            source,
        }
    }

    fn file_stem(&self) -> String {
        format!(
            "stage-{}-map-{}-attempt-{}",
            self.stage, self.map, self.attempt
        )
    }

    fn push(&mut self, bucket: usize, batch: RecordBatch) -> Result<(), ShuffleError> {
        self.rows += batch.num_rows() as u64;
        if self.spill.is_none() {
            let size = batch.get_array_memory_size();
            if self.job.memory.try_reserve(size) {
                self.reserved += size;
                self.memory[bucket].push(batch);
                return Ok(());
            }
            self.start_spilling()?;
        }
        self.write_to_file(bucket, &batch)
    }

    /// Moves everything buffered so far to the bucket files and gives the
    /// memory back.
    fn start_spilling(&mut self) -> Result<(), ShuffleError> {
        self.spill = Some((0..self.memory.len()).map(|_| None).collect());
        let buffered = std::mem::take(&mut self.memory);
        self.job.memory.release(std::mem::take(&mut self.reserved));
        for (bucket, batches) in buffered.into_iter().enumerate() {
            for batch in batches {
                self.write_to_file(bucket, &batch)?;
            }
        }
        Ok(())
    }

    fn write_to_file(&mut self, bucket: usize, batch: &RecordBatch) -> Result<(), ShuffleError> {
        let (stage, map) = (self.stage, self.map);
        if self.spill.as_ref().expect("spilling")[bucket].is_none() {
            let compression = self.job.compression().ipc();
            let path = self
                .job
                .ensure_dir()?
                .join(format!("{}.bucket-{bucket}.tmp", self.file_stem()));
            let file = create_new_file(&path).map_err(|e| exists_error(&path, e))?;
            let options = IpcWriteOptions::default()
                .try_with_compression(compression)
                .map_err(|source| ShuffleError::Arrow { stage, map, source })?;
            let writer = StreamWriter::try_new_with_options(
                BufWriter::with_capacity(64 * 1024, file),
                &self.schema,
                options,
            )
            .map_err(|source| ShuffleError::Arrow { stage, map, source })?;
            self.spill.as_mut().expect("spilling")[bucket] = Some(BucketFile { path, writer });
        }
        let file = self.spill.as_mut().expect("spilling")[bucket]
            .as_mut()
            .expect("bucket file");
        file.writer
            .write(batch)
            .map_err(|source| ShuffleError::Arrow { stage, map, source })
    }

    fn finish(mut self) -> Result<(MapOutput, MapStats), ShuffleError> {
        let Some(files) = self.spill.take() else {
            self.job
                .counters
                .memory_outputs
                .fetch_add(1, Ordering::Relaxed);
            let bytes = self.reserved;
            let output = MapOutput::Memory {
                buckets: std::mem::take(&mut self.memory),
                reservation: Reservation {
                    memory: Arc::clone(&self.job.memory),
                    bytes: std::mem::take(&mut self.reserved),
                },
            };
            let stats = MapStats {
                rows: self.rows,
                bytes: bytes as u64,
                spilled: false,
            };
            return Ok((output, stats));
        };

        let dir = self.job.ensure_dir()?.to_path_buf();
        let stem = self.file_stem();
        let data_path = dir.join(format!("{stem}.data"));
        let index_path = dir.join(format!("{stem}.index"));
        let mut created = Vec::new();
        let written = self.write_data_and_index(files, &data_path, &index_path, &mut created);
        let (offsets, position) = match written {
            Ok(done) => done,
            Err(error) => {
                // Only files this call made: a name that existed is not ours.
                for path in created {
                    let _ = std::fs::remove_file(path);
                }
                return Err(error);
            }
        };

        self.job
            .counters
            .file_outputs
            .fetch_add(1, Ordering::Relaxed);
        self.job
            .counters
            .file_bytes
            .fetch_add(position, Ordering::Relaxed);
        let stats = MapStats {
            rows: self.rows,
            bytes: position,
            spilled: true,
        };
        Ok((
            MapOutput::File {
                data: data_path,
                index: index_path,
                offsets,
            },
            stats,
        ))
    }
}

impl Sink<'_> {
    /// Concatenates the bucket files into a new data file and writes its
    /// index, both created exclusively. Returns the offsets and the data
    /// size. Every file it made or still holds is listed in `created`, so
    /// that a failure can remove them; the bucket files are removed as they
    /// are copied.
    fn write_data_and_index(
        &self,
        files: Vec<Option<BucketFile>>,
        data_path: &Path,
        index_path: &Path,
        created: &mut Vec<PathBuf>,
    ) -> Result<(Vec<u64>, u64), ShuffleError> {
        created.extend(files.iter().flatten().map(|file| file.path.clone()));
        let data_file = create_new_file(data_path).map_err(|e| exists_error(data_path, e))?;
        created.push(data_path.to_path_buf());
        let mut data = BufWriter::with_capacity(256 * 1024, data_file);
        let mut offsets = Vec::with_capacity(files.len() + 1);
        let mut position = 0u64;
        for file in files {
            offsets.push(position);
            let Some(BucketFile { path, mut writer }) = file else {
                continue;
            };
            writer.finish().map_err(|e| self.arrow(e))?;
            let mut inner = writer.into_inner().map_err(|e| self.arrow(e))?;
            inner.flush().map_err(|e| ShuffleError::io(&path, e))?;
            // Read back through the handle written to, never by name again.
            let mut part = inner
                .into_inner()
                .map_err(|e| ShuffleError::io(&path, e.into_error()))?;
            part.seek(SeekFrom::Start(0))
                .map_err(|e| ShuffleError::io(&path, e))?;
            position +=
                std::io::copy(&mut part, &mut data).map_err(|e| ShuffleError::io(data_path, e))?;
            drop(part);
            std::fs::remove_file(&path).map_err(|e| ShuffleError::io(&path, e))?;
            created.retain(|p| p != &path);
        }
        offsets.push(position);
        data.flush().map_err(|e| ShuffleError::io(data_path, e))?;

        let index: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        let mut index_file =
            create_new_file(index_path).map_err(|e| exists_error(index_path, e))?;
        created.push(index_path.to_path_buf());
        index_file
            .write_all(&index)
            .map_err(|e| ShuffleError::io(index_path, e))?;
        Ok((offsets, position))
    }
}

/// The error for a shuffle file that cannot be created; one that exists
/// (a file or link planted there) says so.
fn exists_error(path: &Path, error: std::io::Error) -> ShuffleError {
    if error.kind() == std::io::ErrorKind::AlreadyExists {
        let message = format!("exists already; shuffle files are only ever created new: {error}");
        ShuffleError::io(path, std::io::Error::new(error.kind(), message))
    } else {
        ShuffleError::io(path, error)
    }
}

impl Drop for Sink<'_> {
    fn drop(&mut self) {
        // A task that failed or was cancelled half-way gives its memory back
        // and leaves no temporary files behind.
        self.job.memory.release(std::mem::take(&mut self.reserved));
        if let Some(files) = self.spill.take() {
            for file in files.into_iter().flatten() {
                drop(file.writer);
                let _ = std::fs::remove_file(&file.path);
            }
        }
    }
}
