use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::ShuffleError;
use crate::memory::ShuffleMemory;

/// Compression of shuffle files (in-memory map outputs are never compressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShuffleCompression {
    None,
    #[default]
    Lz4,
    Zstd,
}

impl ShuffleCompression {
    pub(crate) fn ipc(self) -> Option<CompressionType> {
        match self {
            ShuffleCompression::None => None,
            ShuffleCompression::Lz4 => Some(CompressionType::LZ4_FRAME),
            ShuffleCompression::Zstd => Some(CompressionType::ZSTD),
        }
    }
}

impl std::str::FromStr for ShuffleCompression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Ok(Self::None),
            "lz4" | "lz4_frame" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd),
            other => Err(format!(
                "unknown shuffle compression '{other}' (expected lz4, zstd or none)"
            )),
        }
    }
}

impl fmt::Display for ShuffleCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShuffleCompression::None => "none",
            ShuffleCompression::Lz4 => "lz4",
            ShuffleCompression::Zstd => "zstd",
        })
    }
}

/// Settings of a [`ShuffleService`].
#[derive(Debug, Clone)]
pub struct ShuffleConfig {
    /// Bytes of map output kept in memory across all running jobs.
    pub memory_limit: usize,
    /// Folder under which each service creates its own work folder.
    pub dir: PathBuf,
    /// Compression of spilled map outputs.
    pub compression: ShuffleCompression,
}

impl Default for ShuffleConfig {
    fn default() -> Self {
        Self {
            memory_limit: 1 << 30,
            dir: std::env::temp_dir(),
            compression: ShuffleCompression::Lz4,
        }
    }
}

/// Counters over the life of a [`ShuffleService`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShuffleStats {
    /// Map outputs kept in memory.
    pub memory_outputs: u64,
    /// Map outputs written to a data file.
    pub file_outputs: u64,
    /// Bytes written to shuffle data files.
    pub file_bytes: u64,
    /// Bytes of map output currently held in memory.
    pub memory_used: usize,
    /// Highest `memory_used` seen.
    pub memory_peak: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) memory_outputs: AtomicU64,
    pub(crate) file_outputs: AtomicU64,
    pub(crate) file_bytes: AtomicU64,
}

/// The process-wide shuffle: one memory budget and one work folder, shared
/// by every job of a session.
#[derive(Debug)]
pub struct ShuffleService {
    config: ShuffleConfig,
    root: PathBuf,
    memory: Arc<ShuffleMemory>,
    counters: Arc<Counters>,
}

static SERVICE_SEQ: AtomicU64 = AtomicU64::new(0);

impl ShuffleService {
    pub fn new(config: ShuffleConfig) -> Self {
        let root = config.dir.join(format!(
            "fairway-shuffle-{}-{}",
            std::process::id(),
            SERVICE_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        Self {
            memory: Arc::new(ShuffleMemory::new(config.memory_limit)),
            root,
            config,
            counters: Arc::default(),
        }
    }

    pub fn config(&self) -> &ShuffleConfig {
        &self.config
    }

    /// The folder that holds this service's job folders (created on demand).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn memory(&self) -> &Arc<ShuffleMemory> {
        &self.memory
    }

    /// The shuffle store of one job. Dropping the last reference removes the
    /// job's files and releases its memory.
    pub fn create_job(&self, job: u64) -> Arc<JobShuffle> {
        Arc::new(JobShuffle {
            job,
            dir: self.root.join(format!("job-{job}")),
            compression: self.config.compression,
            memory: Arc::clone(&self.memory),
            counters: Arc::clone(&self.counters),
            outputs: Mutex::default(),
            closed: AtomicBool::new(false),
        })
    }

    pub fn stats(&self) -> ShuffleStats {
        ShuffleStats {
            memory_outputs: self.counters.memory_outputs.load(Ordering::Relaxed),
            file_outputs: self.counters.file_outputs.load(Ordering::Relaxed),
            file_bytes: self.counters.file_bytes.load(Ordering::Relaxed),
            memory_used: self.memory.used(),
            memory_peak: self.memory.peak(),
        }
    }
}

impl Drop for ShuffleService {
    fn drop(&mut self) {
        // Job folders are removed by their JobShuffle; the root is only
        // removed here, and only if nothing else is left in it.
        let _ = std::fs::remove_dir(&self.root);
    }
}

/// Bytes of the shuffle budget held by one in-memory map output; given back
/// when dropped.
#[derive(Debug)]
pub struct Reservation {
    pub(crate) memory: Arc<ShuffleMemory>,
    pub(crate) bytes: usize,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.memory.release(self.bytes);
    }
}

/// The output of one map task, split into the consumer stage's buckets.
#[derive(Debug)]
pub enum MapOutput {
    /// Batches per bucket, held in memory within the shuffle budget.
    Memory {
        buckets: Vec<Vec<RecordBatch>>,
        reservation: Reservation,
    },
    /// One Arrow IPC data file; bucket `b` is the IPC stream stored in bytes
    /// `offsets[b]..offsets[b + 1]` (the same offsets are written next to it
    /// in an `.index` file of little-endian u64s, as Spark's sort shuffle does).
    File {
        data: PathBuf,
        index: PathBuf,
        offsets: Vec<u64>,
    },
}

impl MapOutput {
    /// Number of buckets (partitions of the consumer stage).
    pub fn buckets(&self) -> usize {
        match self {
            MapOutput::Memory { buckets, .. } => buckets.len(),
            MapOutput::File { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    /// Whether this output was spilled to a file.
    pub fn is_file(&self) -> bool {
        matches!(self, MapOutput::File { .. })
    }
}

/// All shuffle data of one job: the outputs of its map tasks, by stage and
/// map partition.
///
/// Invariant: nothing of a job outlives its `JobShuffle`: dropping it removes
/// the job's folder and releases the memory of its in-memory outputs (readers
/// that still hold an output keep its memory until they finish).
#[derive(Debug)]
pub struct JobShuffle {
    job: u64,
    dir: PathBuf,
    compression: ShuffleCompression,
    pub(crate) memory: Arc<ShuffleMemory>,
    pub(crate) counters: Arc<Counters>,
    outputs: Mutex<HashMap<(usize, usize), Arc<MapOutput>>>,
    closed: AtomicBool,
}

impl JobShuffle {
    pub fn job_id(&self) -> u64 {
        self.job
    }

    /// The job's folder (it exists only once some map output was spilled).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn compression(&self) -> ShuffleCompression {
        self.compression
    }

    pub(crate) fn ensure_dir(&self) -> Result<&Path, ShuffleError> {
        if self.is_closed() {
            return Err(ShuffleError::Closed { job: self.job });
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| ShuffleError::io(&self.dir, e))?;
        Ok(&self.dir)
    }

    /// Registers the output of `map` in `stage`, replacing an earlier attempt's.
    /// A put after [`JobShuffle::close`] is discarded (its files removed).
    pub fn put(&self, stage: usize, map: usize, output: MapOutput) {
        if self.is_closed() {
            remove_files(&output);
            return;
        }
        let old = self
            .outputs
            .lock()
            .expect("shuffle lock")
            .insert((stage, map), Arc::new(output));
        if let Some(old) = old {
            remove_files(&old);
        }
    }

    /// The output of `map` in `stage`.
    pub fn get(&self, stage: usize, map: usize) -> Result<Arc<MapOutput>, ShuffleError> {
        self.outputs
            .lock()
            .expect("shuffle lock")
            .get(&(stage, map))
            .cloned()
            .ok_or(ShuffleError::MissingMapOutput { stage, map })
    }

    /// The map partitions among `0..maps` of `stage` whose output cannot be
    /// read: not registered, or spilled to a data file that is gone or
    /// shorter than its index says. (A file whose bytes were changed is
    /// found only when it is read.)
    pub fn lost_outputs(&self, stage: usize, maps: usize) -> Vec<usize> {
        let outputs = self.outputs.lock().expect("shuffle lock");
        (0..maps)
            .filter(|&map| match outputs.get(&(stage, map)).map(Arc::as_ref) {
                None => true,
                Some(MapOutput::Memory { .. }) => false,
                Some(MapOutput::File { data, offsets, .. }) => {
                    let expected = offsets.last().copied().unwrap_or(0);
                    std::fs::metadata(data).map_or(true, |m| m.len() < expected)
                }
            })
            .collect()
    }

    /// Unregisters (and deletes) the outputs of these map partitions of
    /// `stage`, so that nothing reads them before they are written again.
    pub fn forget(&self, stage: usize, maps: &[usize]) {
        let removed: Vec<_> = {
            let mut outputs = self.outputs.lock().expect("shuffle lock");
            maps.iter()
                .filter_map(|&map| outputs.remove(&(stage, map)))
                .collect()
        };
        for output in removed {
            remove_files(&output);
        }
    }

    /// Drops every output of `stage` (its consumers have finished).
    pub fn remove_stage(&self, stage: usize) {
        let removed: Vec<_> = {
            let mut outputs = self.outputs.lock().expect("shuffle lock");
            let keys: Vec<_> = outputs
                .keys()
                .filter(|(s, _)| *s == stage)
                .copied()
                .collect();
            keys.into_iter()
                .filter_map(|k| outputs.remove(&k))
                .collect()
        };
        for output in removed {
            remove_files(&output);
        }
    }

    /// Ends the job's shuffle: drops every output, removes the job folder,
    /// and discards anything a still-running task writes later. Called when
    /// the job ends, whatever the outcome; dropping the store does the same.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let removed: Vec<_> = self
            .outputs
            .lock()
            .expect("shuffle lock")
            .drain()
            .map(|(_, o)| o)
            .collect();
        for output in removed {
            remove_files(&output);
        }
        self.remove_dir();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn remove_dir(&self) {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "could not remove shuffle folder {} of job {}: {e}",
                self.dir.display(),
                self.job
            ),
        }
    }

    /// Number of map outputs currently registered.
    pub fn len(&self) -> usize {
        self.outputs.lock().expect("shuffle lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn remove_files(output: &MapOutput) {
    if let MapOutput::File { data, index, .. } = output {
        let _ = std::fs::remove_file(data);
        let _ = std::fs::remove_file(index);
    }
}

impl Drop for JobShuffle {
    fn drop(&mut self) {
        self.close();
    }
}
