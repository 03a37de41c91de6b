//! The shuffle crate's one error type, [`ShuffleError`], naming the stage,
//! map output or file at fault.

use std::path::PathBuf;

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Kinds of shuffle failure. Each names the stage, map output or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ShuffleError {
    /// Reading or writing a shuffle file failed.
    #[error("shuffle file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Encoding or decoding Arrow IPC data failed.
    #[error("shuffle data of stage {stage}, map {map}: {source}")]
    Arrow {
        stage: usize,
        map: usize,
        #[source]
        source: ArrowError,
    },
    /// A reduce task asked for a map output that was never written (or was lost).
    #[error("missing shuffle output: stage {stage}, map partition {map}")]
    MissingMapOutput { stage: usize, map: usize },
    /// A map output is registered but cannot be read back: its file is
    /// gone, shorter than its index says, or does not decode.
    #[error("shuffle output of stage {stage}, map partition {map} is lost: {reason}")]
    LostMapOutput {
        stage: usize,
        map: usize,
        reason: String,
    },
    /// The reader was executed without a [`crate::JobShuffle`] in its task context.
    #[error("shuffle reader for stage {stage} has no job shuffle in its task context")]
    NoJobShuffle { stage: usize },
    /// The job ended; its shuffle takes no more output.
    #[error("shuffle of job {job} is closed (the job has ended)")]
    Closed { job: u64 },
    /// The plan that produced the map output failed.
    #[error(transparent)]
    Execution(#[from] DataFusionError),
}

impl ShuffleError {
    /// The stage and map partition whose output is missing or lost, for
    /// errors that mean "run that map task again".
    pub fn lost_map_output(&self) -> Option<(usize, usize)> {
        match self {
            ShuffleError::MissingMapOutput { stage, map }
            | ShuffleError::LostMapOutput { stage, map, .. } => Some((*stage, *map)),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ShuffleError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<ShuffleError> for DataFusionError {
    fn from(e: ShuffleError) -> Self {
        match e {
            ShuffleError::Execution(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
