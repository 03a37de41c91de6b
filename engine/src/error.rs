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
    /// An error with what it was about: `writing URL` (a `COPY`, `INSERT
    /// INTO` a folder or `CREATE TABLE ... LOCATION` that failed, so
    /// nothing was written to its target), `table 'NAME' (LOCATION)` (a
    /// `CREATE EXTERNAL TABLE`). The error itself stays as it was, for
    /// callers that look at its kind.
    #[error("{what}: {source}")]
    Context {
        what: String,
        #[source]
        source: Box<EngineError>,
    },
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
        match self {
            EngineError::Context { source, .. } => source.is_cancelled(),
            other => matches!(
                other,
                EngineError::Scheduler(SchedulerError::Cancelled { .. })
                    | EngineError::Cancelled(_)
            ),
        }
    }

    /// The error under any [`EngineError::Context`].
    pub fn innermost(&self) -> &EngineError {
        match self {
            EngineError::Context { source, .. } => source.innermost(),
            other => other,
        }
    }

    /// The same error, with what it was about in front.
    pub fn context(self, what: impl Into<String>) -> Self {
        EngineError::Context {
            what: what.into(),
            source: Box::new(self),
        }
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
        DataFusionError::ObjectStore(inner) => describe_store(inner),
        // A sink's failed upload arrives as an I/O error around the store's.
        DataFusionError::IoError(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<object_store::Error>().is_some()) =>
        {
            let inner = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<object_store::Error>());
            describe_store(inner.expect("checked above"))
        }
        DataFusionError::External(inner) => match inner.downcast_ref::<object_store::Error>() {
            Some(store) => describe_store(store),
            None => inner.to_string(),
        },
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

/// What an object store's error means for the user, in one line: not
/// found, access denied, the credentials refused, no such bucket, the
/// endpoint unreachable; then the store's code and message (S3's
/// `<Code>`), or the innermost cause.
pub(crate) fn describe_store(e: &object_store::Error) -> String {
    use object_store::Error;
    // The whole chain, for the store's codes (`NoSuchBucket`) and the
    // transport's failures; the innermost cause says it shortest.
    let mut chain = e.to_string();
    let mut innermost = chain.clone();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        innermost = inner.to_string();
        chain.push_str(": ");
        chain.push_str(&innermost);
        source = inner.source();
    }
    let flat = chain.replace('\n', " ");
    let between = |open: &str, close: &str| {
        let start = flat.find(open)? + open.len();
        let end = start + flat[start..].find(close)?;
        Some(flat[start..end].trim().to_string())
    };
    let detail = match (
        between("<Code>", "</Code>"),
        between("<Message>", "</Message>"),
    ) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => innermost.trim().to_string(),
    };
    let has = |word: &str| flat.contains(word);
    let what = if has("NoSuchBucket") || has("The specified bucket does not exist") {
        "no such bucket".to_string()
    } else if has("ContainerNotFound") {
        "no such container".to_string()
    } else if has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("InvalidToken")
        || has("ExpiredToken")
        || matches!(e, Error::Unauthenticated { .. })
    {
        "the credentials were refused".to_string()
    } else if has("AccessDenied") || matches!(e, Error::PermissionDenied { .. }) {
        "access denied".to_string()
    } else if matches!(e, Error::NotFound { .. }) {
        "not found".to_string()
    } else if has("error sending request")
        || has("onnection refused")
        || has("dns error")
        || has("timed out")
        || has("tcp connect error")
    {
        // The endpoint, as the request named it.
        let endpoint = ["http://", "https://"].iter().find_map(|scheme| {
            let start = flat.find(scheme)?;
            let rest = &flat[start + scheme.len()..];
            let end = rest.find(['/', ' ', '?']).unwrap_or(rest.len());
            Some(format!("{scheme}{}", &rest[..end]))
        });
        match endpoint {
            Some(endpoint) => format!("cannot reach the endpoint {endpoint}"),
            None => "cannot reach the endpoint".to_string(),
        }
    } else {
        return detail;
    };
    format!("{what} ({detail})")
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
