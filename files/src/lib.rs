//! Files fairway writes, replaces and deletes, and the rules that keep a
//! user's own files safe from it.
//!
//! Every output is written to a temporary file (or folder) beside it,
//! created exclusively under a random name (`.NAME.PID.RANDOM.fairway-tmp`),
//! and renamed over the destination at the end; a failed write removes the
//! temporary and leaves the destination untouched. Temporaries left by a
//! process that died are recognised by that name and removed by
//! [`remove_stale_temporaries`] only when their PID is gone. Nothing here
//! follows a symbolic link into something fairway did not create: an
//! output, a lock or a cache folder that is a link is refused.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// A file fairway could not read or write, or refuses to touch.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The operating system refused a read, write, rename or remove.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A path fairway refuses to write, replace, delete or read: a link, an
    /// input the output would overwrite, a lock held by another process.
    #[error("{}: {message}", path.display())]
    Refused { path: PathBuf, message: String },
}

impl FileError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn refused(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        FileError::Refused {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = FileError> = std::result::Result<T, E>;

/// The suffix of every temporary file or folder fairway creates beside an
/// output.
pub const TEMP_SUFFIX: &str = ".fairway-tmp";

/// Whether `name` is one of fairway's own working files or folders (a
/// temporary, a lock, a feature build's stage folder, a shuffle folder),
/// which readers of a user's folder skip.
pub fn is_fairway_own(name: &str) -> bool {
    name.ends_with(TEMP_SUFFIX)
        || name.ends_with(".fairway-stage")
        || name.ends_with(".fairway-lock")
        || name.starts_with("fairway-shuffle-")
}

/// A temporary file beside `dest`, created exclusively (O_EXCL) under a
/// random name that records this process's PID.
pub fn temp_file_beside(dest: &Path) -> Result<tempfile::NamedTempFile> {
    let (dir, builder_prefix) = temp_parts(dest);
    tempfile::Builder::new()
        .prefix(&builder_prefix)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(10)
        .tempfile_in(&dir)
        .map_err(|e| FileError::io(&dir, e))
}

/// A temporary folder beside `dest` (mode 0700, random name, created
/// exclusively); it is removed when dropped unless kept.
pub fn temp_dir_beside(dest: &Path) -> Result<tempfile::TempDir> {
    let (dir, builder_prefix) = temp_parts(dest);
    tempfile::Builder::new()
        .prefix(&builder_prefix)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(10)
        .tempdir_in(&dir)
        .map_err(|e| FileError::io(&dir, e))
}

fn temp_parts(dest: &Path) -> (PathBuf, String) {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, format!(".{name}.{}.", std::process::id()))
}

/// Writes `dest` atomically: `write` fills a fresh temporary beside it,
/// which is then renamed over `dest`. If `write` or the rename fails, the
/// temporary is removed and `dest` is left as it was. A `dest` that is a
/// symbolic link or a folder is refused before anything is written.
pub fn write_atomically<T, E: From<FileError>>(
    dest: &Path,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    let mut temp = start_output(dest)?;
    let value = write(temp.as_file_mut())?;
    temp.as_file_mut()
        .flush()
        .map_err(|e| FileError::io(temp.path(), e))?;
    finish_output(temp, dest)?;
    Ok(value)
}

/// [`write_atomically`] for a writer that opens files by path (a parquet
/// or IPC writer of its own): `write` gets the path of the fresh, empty
/// temporary and may truncate or rewrite it; the same rename and the same
/// guarantees follow.
pub fn write_atomically_at<T, E: From<FileError>>(
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let temp = start_output(dest)?;
    let value = write(temp.path())?;
    finish_output(temp, dest)?;
    Ok(value)
}

fn start_output(dest: &Path) -> Result<tempfile::NamedTempFile> {
    refuse_link_or_dir(dest, "output")?;
    temp_file_beside(dest)
}

fn finish_output(temp: tempfile::NamedTempFile, dest: &Path) -> Result<()> {
    give_output_mode(temp.as_file(), dest);
    temp.persist(dest)
        .map_err(|e| FileError::io(dest, e.error))?;
    Ok(())
}

/// Gives a temporary about to be renamed over `dest` the mode an output
/// should have: `dest`'s own mode when it is replaced, otherwise 0644 (a
/// temporary is created 0600, which would hide a new output from the
/// user's group). Best effort: a failure leaves the temporary's mode.
pub fn give_output_mode(temp: &File, dest: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        let _ = temp.set_permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (temp, dest);
}

/// Refuses a path that is a symbolic link, or (unless it is absent) not a
/// regular file: fairway replaces only plain files.
pub fn refuse_link_or_dir(path: &Path, what: &str) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(FileError::refused(
            path,
            format!("{what} is a symbolic link; fairway does not write through links"),
        )),
        Ok(meta) if meta.is_dir() => Err(FileError::refused(
            path,
            format!("{what} is a folder, not a file"),
        )),
        Ok(meta) if !meta.is_file() => Err(FileError::refused(
            path,
            format!("{what} is not a regular file"),
        )),
        _ => Ok(()),
    }
}

/// Refuses a path that is a symbolic link (of any kind).
pub fn refuse_link(path: &Path, what: &str) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(FileError::refused(
            path,
            format!("{what} is a symbolic link; fairway does not follow it"),
        )),
        _ => Ok(()),
    }
}

/// Every regular file under `dir` (searched recursively, links not
/// followed), as paths relative to `dir` with their sizes, sorted. A
/// folder that vanishes meanwhile (or `dir` itself, absent) holds none.
pub fn files_under(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let entries = match std::fs::read_dir(dir.join(&relative)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let rel = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(rel);
            } else if kind.is_file() {
                found.push((rel, entry.metadata()?.len()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Moves file `from` to `to`, which must not exist: a hard link made at
/// `to` (which fails if anything is there, even something that appeared a
/// moment ago), then `from` removed. Both must be on one file system.
pub fn move_new(from: &Path, to: &Path) -> Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from).map_err(|e| FileError::io(from, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(FileError::refused(
            to,
            "exists; fairway does not replace it",
        )),
        Err(e) => Err(FileError::io(to, e)),
    }
}

/// Whether process `pid` is still running. Where that cannot be told (no
/// `/proc`), every process is taken to be alive, so nothing is removed.
pub fn pid_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    pid == std::process::id() || proc.join(pid.to_string()).exists()
}

/// The PID recorded in the name of one of fairway's temporaries
/// (`.NAME.PID.RANDOM.fairway-tmp`), if `name` is one.
pub fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let mut parts = rest.rsplitn(3, '.');
    let random = parts.next()?;
    let pid = parts.next()?;
    parts.next()?;
    if random.is_empty() || !random.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes from `dir` the temporaries (files or folders, never links) that
/// fairway processes which are gone left behind. Returns how many it
/// removed. Anything else in `dir` is left alone.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let gone = if meta.is_file() {
            std::fs::remove_file(entry.path()).is_ok()
        } else if meta.is_dir() {
            // `remove_dir_all` never follows links inside the folder.
            std::fs::remove_dir_all(entry.path()).is_ok()
        } else {
            false
        };
        removed += usize::from(gone);
    }
    removed
}

/// `path` made absolute, with symbolic links and `..` resolved as far as
/// the path exists (the rest is normalised lexically), so two spellings of
/// one file compare equal.
pub fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    // Find the longest prefix that exists and canonicalise it.
    let components: Vec<Component<'_>> = absolute.components().collect();
    for split in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..split].iter().collect();
        if let Ok(canonical) = std::fs::canonicalize(&prefix) {
            let mut out = canonical;
            for c in &components[split..] {
                match c {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
    }
    absolute
}

/// Whether `path` is `other` or lies inside it: both resolved (links and
/// `..`), and, for two paths that exist, the same file under another name
/// (a hard link).
pub fn is_same_or_inside(path: &Path, other: &Path) -> bool {
    resolve(path).starts_with(resolve(other)) || same_inode(path, other)
}

#[cfg(unix)]
fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_a: &Path, _b: &Path) -> bool {
    false
}

/// An exclusive lock on a path, held while this value lives: one fairway
/// process at a time writes a given output. The lock is the OS's file lock
/// on `PATH` (released by the kernel if the process dies, so a lock left by
/// a dead process is taken over at once); the file records the holder's PID
/// for the message another process prints, and is removed on drop.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    file: File,
}

impl LockFile {
    /// Takes the lock at `path`, or fails at once naming the process that
    /// holds it. `what` names the thing locked in the message.
    pub fn acquire(path: &Path, what: &str) -> Result<LockFile> {
        use std::io::{Read, Seek};
        loop {
            refuse_link_or_dir(path, "lock file")?;
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| FileError::io(path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    let who = if holder.is_empty() {
                        "another fairway process".to_string()
                    } else {
                        format!("fairway process {holder}")
                    };
                    return Err(FileError::refused(
                        path,
                        format!("{what} is being written by {who}; wait for it to finish"),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(FileError::io(path, e)),
            }
            // The holder before us may have removed the file between our
            // open and our lock: then we hold a lock on a deleted file, and
            // must start again on the one now at `path`.
            if !same_file(&file, path) {
                continue;
            }
            file.set_len(0).map_err(|e| FileError::io(path, e))?;
            file.rewind().map_err(|e| FileError::io(path, e))?;
            write!(file, "{}", std::process::id()).map_err(|e| FileError::io(path, e))?;
            return Ok(LockFile {
                path: path.to_path_buf(),
                file,
            });
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Removed while still locked, so no process can lock the old file
        // after we let go and believe it holds the lock.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    #[test]
    fn move_new_never_replaces_and_files_under_skips_links() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a"), dir.path().join("sub/b"));
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(&from, "new").unwrap();
        std::fs::write(&to, "theirs").unwrap();
        let err = super::move_new(&from, &to).unwrap_err().to_string();
        assert!(err.contains("does not replace"), "{err}");
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "theirs");
        assert_eq!(std::fs::read_to_string(&from).unwrap(), "new");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&to, dir.path().join("link")).unwrap();
        let files = super::files_under(dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|(p, n)| (p.display().to_string(), *n))
            .collect();
        assert_eq!(names, [("a".to_string(), 3), ("sub/b".to_string(), 6)]);
        std::fs::remove_file(&to).unwrap();
        super::move_new(&from, &to).unwrap();
        assert!(!from.exists());
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "new");
        assert!(
            super::files_under(&dir.path().join("gone"))
                .unwrap()
                .is_empty()
        );
    }

    use super::*;

    #[test]
    fn temporaries_are_recognised_by_name() {
        assert_eq!(temp_owner(".out.parquet.123.aB3x9.fairway-tmp"), Some(123));
        assert_eq!(temp_owner(".out.123.x.fairway-tmp"), Some(123));
        assert_eq!(temp_owner("out.123.x.fairway-tmp"), None);
        assert_eq!(temp_owner(".out.abc.x.fairway-tmp"), None);
        assert_eq!(temp_owner(".out.parquet.123.tmp"), None);
        assert_eq!(temp_owner(".123.x.fairway-tmp"), None);
    }

    #[test]
    fn atomic_write_replaces_and_a_failed_one_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        write_atomically::<_, FileError>(&dest, |f| {
            f.write_all(b"one").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"one");
        let failed: Result<()> = write_atomically::<_, FileError>(&dest, |f| {
            f.write_all(b"half").unwrap();
            Err(FileError::refused(&dest, "boom"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&dest).unwrap(), b"one");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary is gone");
    }

    #[test]
    fn a_writer_by_path_gets_the_same_guarantees() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("t.parquet");
        write_atomically_at::<_, FileError>(&dest, |temp| {
            assert_ne!(temp, dest.as_path());
            std::fs::write(temp, b"table").map_err(|e| FileError::io(temp, e))
        })
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"table");
        let failed = write_atomically_at(&dest, |temp| {
            std::fs::write(temp, b"half").unwrap();
            Err::<(), _>(FileError::refused(temp, "boom"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&dest).unwrap(), b"table", "untouched");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_new_output_is_0644_and_a_replaced_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        write_atomically::<_, FileError>(&dest, |_| Ok(())).unwrap();
        assert_eq!(mode(&dest), 0o644);
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically::<_, FileError>(&dest, |_| Ok(())).unwrap();
        assert_eq!(mode(&dest), 0o640);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_as_output_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, b"mine").unwrap();
        let link = dir.path().join("out");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomically::<_, FileError>(&link, |f| {
            f.write_all(b"x").unwrap();
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"mine");
    }

    #[test]
    fn stale_temporaries_of_dead_processes_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // PID 0 is never a user process; ours is alive.
        let dead = dir.path().join(".out.parquet.999999999.abc.fairway-tmp");
        let alive = dir.path().join(format!(
            ".out.parquet.{}.abc.fairway-tmp",
            std::process::id()
        ));
        let foreign = dir.path().join(".out.parquet.999999999.tmp");
        for p in [&dead, &alive, &foreign] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(dir.path()), 1);
        assert!(!dead.exists() && alive.exists() && foreign.exists());
    }

    #[test]
    fn resolve_sees_through_dots_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("t.parquet"), b"").unwrap();
        let dotted = data.join("..").join("data").join("t.parquet");
        assert!(is_same_or_inside(&dotted, &data.join("t.parquet")));
        assert!(is_same_or_inside(&data.join("new.parquet"), &data));
        #[cfg(unix)]
        {
            let link = dir.path().join("alias");
            std::os::unix::fs::symlink(&data, &link).unwrap();
            assert!(is_same_or_inside(&link.join("t.parquet"), &data));
        }
        assert!(!is_same_or_inside(&dir.path().join("other"), &data));
        let hard = dir.path().join("hard.parquet");
        std::fs::hard_link(data.join("t.parquet"), &hard).unwrap();
        assert!(is_same_or_inside(&hard, &data.join("t.parquet")));
    }

    #[test]
    fn a_held_lock_fails_at_once_and_is_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.lock");
        let held = LockFile::acquire(&path, "out").unwrap();
        let err = LockFile::acquire(&path, "out").unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("fairway process {}", std::process::id())),
            "{err}"
        );
        drop(held);
        assert!(!path.exists());
        LockFile::acquire(&path, "out").unwrap();
    }
}
