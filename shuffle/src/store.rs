//! Where shuffle data lives: the [`ShuffleService`] with its work folder and
//! settings, each job's [`JobShuffle`] of registered map outputs, and the
//! memory reservations and files they own.

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
///
/// # The work folder
///
/// [`ShuffleService::new`] creates the folder at once, inside
/// [`ShuffleConfig::dir`], as `fairway-shuffle-<pid>-<random>`: the PID
/// tells which process it belongs to, the random part (16 hex digits from a
/// randomly keyed hash) makes it unguessable. It is made with `mkdir` and
/// mode 0700, which fails if anything (a folder, a file, a symbolic link)
/// is already there: such a name is never reused, another one is drawn.
/// Job folders (`job-<id>`, mode 0700) and the files in them are created
/// exclusively too (`create_new`), so nothing planted at a predictable path
/// is ever followed or written through; a name that exists is an error.
///
/// Before creating its folder, `new` removes the work folders that fairway
/// processes which are gone left in the same `dir`
/// ([`ShuffleService::remove_stale_folders`]).
#[derive(Debug)]
pub struct ShuffleService {
    config: ShuffleConfig,
    root: PathBuf,
    /// Why the work folder could not be created; reported by the first
    /// spill that needs it.
    root_error: Option<(std::io::ErrorKind, String)>,
    memory: Arc<ShuffleMemory>,
    counters: Arc<Counters>,
}

/// Names of work folders start with this, then `<pid>-<random>`.
pub const SHUFFLE_FOLDER_PREFIX: &str = "fairway-shuffle-";

/// Names drawn for a work folder before giving up: each fails only if the
/// name exists, which a random name almost never does.
const NAME_ATTEMPTS: usize = 64;

impl ShuffleService {
    /// A service whose work folder is created at once inside `config.dir`
    /// (see the type docs). Never fails: if the folder cannot be created
    /// (no such `dir`, no permission), the error is logged and returned by
    /// the first map output that has to go to a file; in-memory shuffles
    /// work without it.
    pub fn new(config: ShuffleConfig) -> Self {
        let removed = Self::remove_stale_folders(&config.dir);
        if removed > 0 {
            log::info!(
                "removed {removed} shuffle folder(s) of fairway processes that are gone from {}",
                config.dir.display()
            );
        }
        let (root, root_error) =
            match create_work_folder(&config.dir, std::iter::repeat_with(random_folder_name)) {
                Ok(root) => (root, None),
                Err((root, error)) => {
                    log::warn!("cannot create a shuffle folder {}: {error}", root.display());
                    (root, Some((error.kind(), error.to_string())))
                }
            };
        Self {
            memory: Arc::new(ShuffleMemory::new(config.memory_limit)),
            root,
            root_error,
            config,
            counters: Arc::default(),
        }
    }

    /// Removes from `dir` the work folders of fairway processes that are no
    /// longer running, and returns how many it removed.
    ///
    /// Only entries that are real folders (not symbolic links) named
    /// `fairway-shuffle-<pid>-<letters or digits>` are considered, and only
    /// when `/proc/<pid>` does not exist (where there is no `/proc`,
    /// nothing is removed) and the folder belongs to the user running this
    /// process. Folders of live processes, this one included, and
    /// everything else in `dir` are left alone. The removal does not follow
    /// links inside the folder.
    pub fn remove_stale_folders(dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let ours = current_uid();
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(folder_owner) else {
                continue;
            };
            if process_alive(pid) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_dir() || meta.file_type().is_symlink() || !owned_by(&meta, ours) {
                continue;
            }
            match std::fs::remove_dir_all(&path) {
                Ok(()) => removed += 1,
                Err(e) => log::warn!(
                    "could not remove stale shuffle folder {}: {e}",
                    path.display()
                ),
            }
        }
        removed
    }

    pub fn config(&self) -> &ShuffleConfig {
        &self.config
    }

    /// The folder that holds this service's job folders (created by
    /// [`ShuffleService::new`]).
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
            root_error: self.root_error.clone(),
            dir_created: Mutex::new(false),
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
        // Job folders are removed by their JobShuffle. The root was created
        // by this service (exclusively, mode 0700), so whatever is still in
        // it is ours too: a job whose tasks were aborted mid-write (Ctrl-C,
        // SIGTERM) or DataFusion's spill files. `remove_dir_all` does not
        // follow links inside it.
        if self.root_error.is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A fresh work folder name: `fairway-shuffle-<pid>-<16 hex digits>`.
fn random_folder_name() -> String {
    format!(
        "{SHUFFLE_FOLDER_PREFIX}{}-{:016x}",
        std::process::id(),
        random_u64()
    )
}

/// 64 unpredictable bits: SipHash keyed by the standard library's random
/// per-process keys (from the operating system), over a counter and the
/// time.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Creates `dir` (and its parents, the user's folders) if needed, then the
/// first of `names` that does not exist yet inside it, with `mkdir` and
/// mode 0700. A name that exists, whatever it is, is skipped and never
/// touched. Returns the folder, or the last path tried and the error.
pub(crate) fn create_work_folder(
    dir: &Path,
    names: impl IntoIterator<Item = String>,
) -> Result<PathBuf, (PathBuf, std::io::Error)> {
    if let Err(error) = std::fs::create_dir_all(dir) {
        return Err((dir.to_path_buf(), error));
    }
    let mut last = dir.to_path_buf();
    for name in names.into_iter().take(NAME_ATTEMPTS) {
        let path = dir.join(name);
        match create_private_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                log::debug!(
                    "{} exists; drawing another shuffle folder name",
                    path.display()
                );
                last = path;
            }
            Err(e) => return Err((path, e)),
        }
    }
    Err((
        last,
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{NAME_ATTEMPTS} shuffle folder names in a row exist already"),
        ),
    ))
}

/// `mkdir` with mode 0700 (on Unix): fails if `path` exists in any form,
/// symbolic links included, and never creates parents.
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(false);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Creates a new file for reading and writing: fails if `path` exists in
/// any form (`O_EXCL`: a symbolic link there is not followed), mode 0600 on
/// Unix.
pub(crate) fn create_new_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The PID in a work folder name (`fairway-shuffle-<pid>-<letters or
/// digits>`, the form this and earlier versions of fairway write), if
/// `name` is one.
pub(crate) fn folder_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(SHUFFLE_FOLDER_PREFIX)?;
    let (pid, tail) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is running: this process, or `/proc/<pid>`
/// exists. Without `/proc` every process counts as running.
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    std::fs::symlink_metadata(proc.join(pid.to_string())).is_ok()
}

/// The user that runs this process, as the owner of a file it just made
/// would be: read from `/proc/self` (Unix only).
fn current_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Whether the folder belongs to `uid` (where owners cannot be told, only
/// when that is unknown too).
fn owned_by(meta: &std::fs::Metadata, uid: Option<u32>) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        uid.is_some_and(|uid| meta.uid() == uid)
    }
    #[cfg(not(unix))]
    {
        let _ = (meta, uid);
        false
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
    /// Why the service's work folder is missing, if it is.
    root_error: Option<(std::io::ErrorKind, String)>,
    /// Whether this store made `dir` (once, exclusively).
    dir_created: Mutex<bool>,
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

    /// The job's folder, made on first use: exclusively (`mkdir`, mode
    /// 0700), so a folder, file or link already at that path is an error
    /// and is never used.
    pub(crate) fn ensure_dir(&self) -> Result<&Path, ShuffleError> {
        if self.is_closed() {
            return Err(ShuffleError::Closed { job: self.job });
        }
        if let Some((kind, message)) = &self.root_error {
            let root = self.dir.parent().unwrap_or(&self.dir);
            return Err(ShuffleError::io(
                root,
                std::io::Error::new(*kind, format!("shuffle folder not created: {message}")),
            ));
        }
        let mut created = self.dir_created.lock().expect("shuffle lock");
        if !*created {
            create_private_dir(&self.dir).map_err(|e| {
                let message = if e.kind() == std::io::ErrorKind::AlreadyExists {
                    format!("job folder exists already (not made by this shuffle; not used): {e}")
                } else {
                    format!("cannot create the job folder: {e}")
                };
                ShuffleError::io(&self.dir, std::io::Error::new(e.kind(), message))
            })?;
            *created = true;
        }
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
        // Only a folder this store made: never whatever else is at the path.
        if !*self.dir_created.lock().expect("shuffle lock") {
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_give_their_pid() {
        assert_eq!(
            folder_owner("fairway-shuffle-42-0123456789abcdef"),
            Some(42)
        );
        assert_eq!(
            folder_owner("fairway-shuffle-42-0"),
            Some(42),
            "older names"
        );
        for name in [
            "fairway-shuffle-42",
            "fairway-shuffle-42-",
            "fairway-shuffle--abc",
            "fairway-shuffle-4x2-abc",
            "fairway-shuffle-42-a-b",
            "fairway-shuffle-42-a.b",
            "fairway-shuffle-99999999999-abc",
            "other-42-abc",
        ] {
            assert_eq!(folder_owner(name), None, "{name}");
        }
        let name = random_folder_name();
        assert_eq!(folder_owner(&name), Some(std::process::id()), "{name}");
        assert_ne!(name, random_folder_name());
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_name_is_never_reused() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = tempfile::tempdir().unwrap();
        let victim = tempfile::tempdir().unwrap();
        // A folder (with someone's file), a link and a file at the first
        // three names drawn.
        std::fs::create_dir(dir.path().join("taken")).unwrap();
        std::fs::write(dir.path().join("taken/keep"), "precious").unwrap();
        symlink(victim.path(), dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let names = ["taken", "link", "file", "fresh", "later"].map(String::from);
        let root = create_work_folder(dir.path(), names).unwrap();
        assert_eq!(root, dir.path().join("fresh"));
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("taken/keep")).unwrap(),
            "precious"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("taken")).unwrap().count(),
            1
        );
        assert_eq!(std::fs::read_dir(victim.path()).unwrap().count(), 0);
        // When every name is taken, the error says so and nothing is used.
        let (path, error) = create_work_folder(dir.path(), ["taken".to_string()]).unwrap_err();
        assert_eq!(path, dir.path().join("taken"));
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
    }
}
