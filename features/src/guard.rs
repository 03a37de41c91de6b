//! What a build may write and delete: its output never lands on one of
//! its own inputs, it writes nothing through a symbolic link, and one build
//! at a time writes a given output (`OUT.fairway-lock`).

use std::path::{Path, PathBuf};

use super::cache::stage_dir;
use super::options::BuildOptions;
use super::spec::{Body, FeatureSpec};

use crate::error::{FeatureError, Result};
use fairway_files::{self as files, LockFile};

/// The paths a build of one output writes: the output, its stage area and
/// its lock file, all beside each other.
#[derive(Debug, Clone)]
pub(crate) struct OutputPaths {
    pub output: PathBuf,
    pub stage: PathBuf,
    pub lock: PathBuf,
}

impl OutputPaths {
    pub fn new(output: &Path) -> Result<Self> {
        if output.file_name().is_none() {
            return Err(FeatureError::refused(
                output,
                "the output must name a file (e.g. features.parquet)",
            ));
        }
        Ok(Self {
            output: output.to_path_buf(),
            stage: stage_dir(output),
            lock: lock_path(output),
        })
    }

    /// The folder holding the output (and its stage area and lock).
    pub fn folder(&self) -> PathBuf {
        match self.output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Creates the output's folder, takes the output's lock (failing at
    /// once, naming the holder, when another build holds it), removes the
    /// temporaries that dead fairway processes left beside the output and
    /// in the stage area, and creates the stage area. The lock is held
    /// until the value is dropped, and its file removed then.
    pub fn lock_and_prepare(&self) -> Result<LockFile> {
        let folder = self.folder();
        std::fs::create_dir_all(&folder).map_err(|e| FeatureError::io(&folder, e))?;
        let lock = LockFile::acquire(&self.lock, &format!("output {}", self.output.display()))?;
        files::refuse_link_or_dir(&self.output, "output")?;
        files::remove_stale_temporaries(&folder);
        files::refuse_link(&self.stage, "stage folder")?;
        match std::fs::symlink_metadata(&self.stage) {
            Ok(meta) if !meta.is_dir() => {
                return Err(FeatureError::refused(
                    &self.stage,
                    "the stage folder is not a folder; fairway does not replace it",
                ));
            }
            Ok(_) => {}
            Err(_) => {
                std::fs::create_dir(&self.stage).map_err(|e| FeatureError::io(&self.stage, e))?
            }
        }
        files::remove_stale_temporaries(&self.stage);
        Ok(lock)
    }
}

/// The lock file of an output: `<output>.fairway-lock`.
pub(crate) fn lock_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".fairway-lock");
    output.with_file_name(name)
}

/// One file or folder a build reads.
struct Input {
    /// What it is, for messages: `source 'orders'`, `the spec`, ...
    what: String,
    /// The path as the spec (or an option) gives it.
    path: PathBuf,
    /// The folder the build reads from, when not `path` itself: a glob's
    /// folder before its first wildcard component.
    folder: Option<PathBuf>,
}

fn inputs(spec: &FeatureSpec, options: &BuildOptions) -> Vec<Input> {
    let mut inputs = Vec::new();
    for source in &spec.sources {
        let folder = glob_folder(&source.path);
        inputs.push(Input {
            what: format!("source '{}'", source.name),
            path: PathBuf::from(&source.path),
            folder,
        });
    }
    inputs.push(Input {
        what: "the spec".to_string(),
        path: spec.file.clone(),
        folder: None,
    });
    for (kind, defs) in [("view", &spec.views), ("method", &spec.methods)] {
        for def in defs.iter() {
            if let Body::Sql {
                file: Some(file), ..
            } = &def.body
            {
                inputs.push(Input {
                    what: format!("the sql_file of {kind} '{}'", def.name),
                    path: file.clone(),
                    folder: None,
                });
            }
        }
    }
    for file in [&spec.scheduler.allocation_file, &options.allocation_file]
        .into_iter()
        .flatten()
    {
        inputs.push(Input {
            what: "the allocation file".to_string(),
            path: file.clone(),
            folder: None,
        });
    }
    inputs
}

/// The folder of a glob before its first wildcard component (`None` when
/// `path` is no glob).
fn glob_folder(path: &str) -> Option<PathBuf> {
    let start = path.find(['*', '?', '['])?;
    Some(match path[..start].rfind('/') {
        Some(0) => PathBuf::from("/"),
        Some(i) => PathBuf::from(&path[..i]),
        None => PathBuf::from("."),
    })
}

/// Refuses, before anything runs, an output (or its stage area or lock)
/// that is, or lies inside, one of the build's inputs (its sources, the
/// spec, a `sql_file`, the allocation file), after links and `..` are
/// resolved, or an input inside the stage area; and an output that is a
/// link or a folder. The error names both paths.
pub(crate) fn check_output(
    spec: &FeatureSpec,
    options: &BuildOptions,
    paths: &OutputPaths,
) -> Result<()> {
    let inputs = inputs(spec, options);
    let targets = [
        ("output", &paths.output),
        ("stage folder", &paths.stage),
        ("lock file", &paths.lock),
    ];
    for (target, path) in targets {
        for input in &inputs {
            let read = input.folder.as_deref().unwrap_or(&input.path);
            if !files::is_same_or_inside(path, read) {
                continue;
            }
            let message = match &input.folder {
                Some(folder) => format!(
                    "the {target} would lie inside {} ({}), in the folder of its glob ({}); \
                     choose an output outside the build's inputs",
                    input.what,
                    input.path.display(),
                    folder.display()
                ),
                None if files::resolve(path) == files::resolve(&input.path) => format!(
                    "the {target} would overwrite {} ({}); choose an output outside the \
                     build's inputs",
                    input.what,
                    input.path.display()
                ),
                None => format!(
                    "the {target} would lie inside {} ({}); choose an output outside the \
                     build's inputs",
                    input.what,
                    input.path.display()
                ),
            };
            return Err(FeatureError::refused(path, message));
        }
    }
    for input in &inputs {
        let read = input.folder.as_deref().unwrap_or(&input.path);
        if files::is_same_or_inside(read, &paths.stage) {
            return Err(FeatureError::refused(
                &paths.stage,
                format!(
                    "{} ({}) lies inside the output's stage folder, whose entries fairway \
                     replaces and deletes; read it from elsewhere",
                    input.what,
                    input.path.display()
                ),
            ));
        }
    }
    files::refuse_link_or_dir(&paths.output, "output")?;
    files::refuse_link(&paths.stage, "stage folder")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glob_reads_the_folder_before_its_first_wildcard() {
        assert_eq!(glob_folder("d/*.parquet"), Some(PathBuf::from("d")));
        assert_eq!(glob_folder("/a/b/x-*/y.csv"), Some(PathBuf::from("/a/b")));
        assert_eq!(glob_folder("/*.csv"), Some(PathBuf::from("/")));
        assert_eq!(glob_folder("p?.csv"), Some(PathBuf::from(".")));
        assert_eq!(glob_folder("d/t.parquet"), None);
    }

    #[test]
    fn the_lock_lies_beside_the_output() {
        let paths = OutputPaths::new(Path::new("out/f.parquet")).unwrap();
        assert_eq!(paths.lock, PathBuf::from("out/f.parquet.fairway-lock"));
        assert_eq!(paths.stage, PathBuf::from("out/f.parquet.fairway-stage"));
        assert_eq!(paths.folder(), PathBuf::from("out"));
        assert!(OutputPaths::new(Path::new("/")).is_err());
    }
}
