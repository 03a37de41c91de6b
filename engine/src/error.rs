//! The engine's errors: each names the table, file, option or stage at fault.

use std::path::PathBuf;

use datafusion::error::DataFusionError;
use fairway_files::FileError;
use fairway_planner::PlannerError;
use fairway_scheduler::SchedulerError;

/// Kinds of failure of the engine. Each carries the table, file, option or
/// stage at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A setting has a bad value or is unknown.
    #[error("option {key}: {message}")]
    Config { key: String, message: String },
    /// A table could not be registered.
    #[error("table '{table}' ({path}): {message}")]
    Table {
        table: String,
        path: String,
        message: String,
    },
    /// A file or folder could not be read or written
    /// ([`FileError::Io`]), or fairway refuses to touch it: a link, an input
    /// the output would overwrite, a lock held by another process
    /// ([`FileError::Refused`]).
    #[error(transparent)]
    File(#[from] FileError),
    /// Planning or execution failed inside DataFusion (bad SQL, unknown
    /// table, a failing task).
    #[error("{}", describe_datafusion(.0))]
    DataFusion(DataFusionError),
    /// The plan cannot be cut into stages.
    #[error(transparent)]
    Planner(#[from] PlannerError),
    /// The job failed or was cancelled in the scheduler.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The statement was cancelled (from its [`crate::QueryHandle`], its
    /// job group, or Ctrl-C) before its job started or ended.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

impl EngineError {
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::File(FileError::io(path, source))
    }

    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        EngineError::File(FileError::refused(path, message))
    }

    /// Whether the job was cancelled rather than failed.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            EngineError::Scheduler(SchedulerError::Cancelled { .. }) | EngineError::Cancelled(_)
        )
    }
}

impl From<DataFusionError> for EngineError {
    fn from(e: DataFusionError) -> Self {
        EngineError::DataFusion(e)
    }
}

/// DataFusion's message without Rust debug noise (a parser error prints as
/// `SQL error: ParserError("...")` otherwise). The DataFusion error is not
/// exposed as a `source`, so callers that print the chain print it once.
pub(crate) fn describe_datafusion(e: &DataFusionError) -> String {
    use datafusion::sql::sqlparser::parser::ParserError;
    match e {
        DataFusionError::SQL(inner, _) => match inner.as_ref() {
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                format!("SQL syntax error: {m}")
            }
            ParserError::RecursionLimitExceeded => {
                "SQL syntax error: statement nested too deeply".to_string()
            }
        },
        DataFusionError::External(inner) => inner.to_string(),
        DataFusionError::Context(context, inner) => {
            format!("{context}: {}", describe_datafusion(inner))
        }
        // One line: DataFusion puts causes on lines of their own.
        other => other
            .to_string()
            .replace("\ncaused by\n", ": ")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
