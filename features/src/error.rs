//! What can go wrong in a feature build: a bad spec, a failed method or
//! view, or anything the engine reports.

use std::path::PathBuf;

use fairway_engine::EngineError;
use fairway_engine::datafusion::error::DataFusionError;
use fairway_files::FileError;

/// Kinds of failure of a feature build.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// A feature spec is invalid: the file, the line where known, and what
    /// is wrong (naming the source, view, method or option at fault).
    #[error("spec {}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Spec {
        file: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A feature method or shared view failed while the table was built.
    #[error("{kind} '{name}' failed: {message}")]
    Step {
        /// `method` or `view`.
        kind: &'static str,
        name: String,
        message: String,
    },
    /// The engine failed: a table, a file, a setting, planning or a job.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl FeatureError {
    /// A setting of the spec has a bad value.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        FeatureError::Engine(EngineError::config(key, message))
    }

    /// A file or folder could not be read or written.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError::io(path, source).into()
    }

    /// A path the build refuses to touch.
    pub fn refused(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        FileError::refused(path, message).into()
    }
}

impl From<FileError> for FeatureError {
    fn from(e: FileError) -> Self {
        FeatureError::Engine(e.into())
    }
}

impl From<DataFusionError> for FeatureError {
    fn from(e: DataFusionError) -> Self {
        FeatureError::Engine(e.into())
    }
}

pub type Result<T, E = FeatureError> = std::result::Result<T, E>;
