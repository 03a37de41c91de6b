//! Spark's error shape: every failure goes back to the client as a gRPC
//! status whose details carry a `google.rpc.ErrorInfo` with the Java
//! exception class (`reason`), its superclasses (`classes`), Spark's error
//! class and SQL state, so that PySpark raises `AnalysisException`,
//! `ParseException`, ... with fairway's message.

use std::collections::HashMap;

use fairway_engine::EngineError;
use fairway_engine::datafusion::error::DataFusionError;
use prost::Message;

use crate::proto::{ERROR_INFO_TYPE, ErrorInfo, RpcStatus};

const ANALYSIS: &[&str] = &[
    "org.apache.spark.sql.AnalysisException",
    "org.apache.spark.sql.ExtendedAnalysisException",
    "java.lang.Exception",
    "java.lang.Throwable",
];
const PARSE: &[&str] = &[
    "org.apache.spark.sql.catalyst.parser.ParseException",
    "org.apache.spark.sql.AnalysisException",
    "java.lang.Exception",
    "java.lang.Throwable",
];
const SPARK: &[&str] = &[
    "org.apache.spark.SparkException",
    "java.lang.Exception",
    "java.lang.Throwable",
];
const RUNTIME: &[&str] = &[
    "org.apache.spark.SparkRuntimeException",
    "java.lang.RuntimeException",
    "java.lang.Exception",
    "java.lang.Throwable",
];
const ARITHMETIC: &[&str] = &[
    "org.apache.spark.SparkArithmeticException",
    "java.lang.ArithmeticException",
    "java.lang.RuntimeException",
    "java.lang.Throwable",
];
const NO_SUCH_ELEMENT: &[&str] = &[
    "org.apache.spark.SparkNoSuchElementException",
    "java.util.NoSuchElementException",
    "java.lang.RuntimeException",
    "java.lang.Throwable",
];
const ILLEGAL_ARGUMENT: &[&str] = &[
    "org.apache.spark.SparkIllegalArgumentException",
    "java.lang.IllegalArgumentException",
    "java.lang.RuntimeException",
    "java.lang.Throwable",
];
const UNSUPPORTED: &[&str] = &[
    "org.apache.spark.SparkUnsupportedOperationException",
    "java.lang.UnsupportedOperationException",
    "java.lang.RuntimeException",
    "java.lang.Throwable",
];
const INVALID_PLAN: &[&str] = &[
    "org.apache.spark.sql.connect.common.InvalidPlanInput",
    "java.lang.Exception",
    "java.lang.Throwable",
];

/// One failure as Spark reports it.
#[derive(Debug, Clone)]
pub struct SparkError {
    /// The exception class first, then its superclasses.
    pub classes: &'static [&'static str],
    /// Spark's error class (`TABLE_OR_VIEW_NOT_FOUND`, ...).
    pub error_class: String,
    pub sql_state: String,
    /// The message, without the `[ERROR_CLASS]` prefix.
    pub message: String,
    pub code: tonic::Code,
}

pub type Result<T, E = SparkError> = std::result::Result<T, E>;

impl SparkError {
    fn new(
        classes: &'static [&'static str],
        error_class: &str,
        sql_state: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            classes,
            error_class: error_class.to_string(),
            sql_state: sql_state.to_string(),
            message: message.into(),
            code: tonic::Code::Internal,
        }
    }

    /// A plan or name that does not resolve (`AnalysisException`).
    pub fn analysis(error_class: &str, message: impl Into<String>) -> Self {
        let state = match error_class {
            "TABLE_OR_VIEW_NOT_FOUND" => "42P01",
            "UNRESOLVED_COLUMN.WITH_SUGGESTION" | "UNRESOLVED_COLUMN.WITHOUT_SUGGESTION" => "42703",
            "AMBIGUOUS_REFERENCE" => "42704",
            "PATH_NOT_FOUND" => "42K03",
            "PATH_ALREADY_EXISTS" => "42K04",
            "TEMP_TABLE_OR_VIEW_ALREADY_EXISTS" => "42P07",
            _ => "42000",
        };
        Self::new(ANALYSIS, error_class, state, message)
    }

    /// SQL that does not parse (`ParseException`).
    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(PARSE, "PARSE_SYNTAX_ERROR", "42601", message)
    }

    /// Something the protocol allows that fairway does not do yet: an
    /// `AnalysisException` (as Spark's `UNSUPPORTED_FEATURE.*`) naming it.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(
            ANALYSIS,
            "UNSUPPORTED_FEATURE",
            "0A000",
            format!("fairway connect does not support {}", what.into()),
        )
    }

    /// A plan the server cannot read (`InvalidPlanInput`).
    pub fn invalid_plan(message: impl Into<String>) -> Self {
        let mut e = Self::new(INVALID_PLAN, "INTERNAL_ERROR", "XX000", message);
        e.code = tonic::Code::InvalidArgument;
        e
    }

    /// A failure inside the server (a cache file it could not write).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(RUNTIME, "INTERNAL_ERROR", "XX000", message)
    }

    /// A bad argument (a config value, a save mode).
    pub fn illegal_argument(message: impl Into<String>) -> Self {
        Self::new(
            ILLEGAL_ARGUMENT,
            "INVALID_PARAMETER_VALUE",
            "22023",
            message,
        )
    }

    /// `spark.conf.get` of a key that has no value.
    pub fn conf_not_found(key: &str) -> Self {
        Self::new(
            NO_SUCH_ELEMENT,
            "SQL_CONF_NOT_FOUND",
            "42K0I",
            format!(
                "The SQL config \"{key}\" cannot be found. Please verify that the config exists."
            ),
        )
    }

    /// The operation was interrupted (`interruptAll`, `interruptTag`,
    /// `interruptOperation`) or released while it ran.
    pub fn cancelled() -> Self {
        Self::new(
            SPARK,
            "OPERATION_CANCELED",
            "HY008",
            "Operation has been canceled.",
        )
    }

    /// A session or operation handle the server does not know.
    pub fn invalid_handle(kind: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(SPARK, &format!("INVALID_HANDLE.{kind}"), "HY000", message);
        e.code = tonic::Code::FailedPrecondition;
        e
    }

    /// The same failure under another Spark error class.
    pub fn with_class(mut self, error_class: &str) -> Self {
        self.error_class = error_class.to_string();
        self
    }

    /// The message as Spark prints it: `[ERROR_CLASS] message`.
    pub fn full_message(&self) -> String {
        format!("[{}] {}", self.error_class, self.message)
    }

    /// The exception class (the first of `classes`).
    pub fn class(&self) -> &'static str {
        self.classes[0]
    }

    /// The gRPC status the client turns into this exception; `error_id`
    /// lets it fetch the details with `FetchErrorDetails`.
    pub fn to_status(&self, error_id: Option<&str>) -> tonic::Status {
        let mut metadata = HashMap::new();
        metadata.insert(
            "classes".to_string(),
            serde_json::to_string(self.classes).unwrap_or_else(|_| "[]".to_string()),
        );
        metadata.insert("errorClass".to_string(), self.error_class.clone());
        metadata.insert("sqlState".to_string(), self.sql_state.clone());
        metadata.insert("messageParameters".to_string(), "{}".to_string());
        if let Some(id) = error_id {
            metadata.insert("errorId".to_string(), id.to_string());
        }
        let info = ErrorInfo {
            reason: self.class().to_string(),
            domain: "org.apache.spark".to_string(),
            metadata,
        };
        let message = self.full_message();
        let status = RpcStatus {
            code: self.code as i32,
            message: message.clone(),
            details: vec![prost_types::Any {
                type_url: ERROR_INFO_TYPE.to_string(),
                value: info.encode_to_vec(),
            }],
        };
        tonic::Status::with_details(self.code, message, status.encode_to_vec().into())
    }
}

impl std::fmt::Display for SparkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class(), self.full_message())
    }
}

impl std::error::Error for SparkError {}

impl From<EngineError> for SparkError {
    fn from(e: EngineError) -> Self {
        if e.is_cancelled() {
            return SparkError::cancelled();
        }
        match e {
            EngineError::DataFusion(df) => SparkError::from(df),
            EngineError::File(file) => SparkError::analysis("FILE_REFUSED", file.to_string()),
            EngineError::Config { .. } => SparkError::illegal_argument(e.to_string()),
            EngineError::Table { .. } => SparkError::analysis("TABLE_ERROR", e.to_string()),
            // Classified by what went wrong, told with what it was about.
            EngineError::Context { what, source } => {
                let mut error = SparkError::from(*source);
                error.message = format!("{what}: {}", error.message);
                error
            }
            other => SparkError::new(RUNTIME, "FAIRWAY_ERROR", "XX000", other.to_string()),
        }
    }
}

impl From<DataFusionError> for SparkError {
    fn from(e: DataFusionError) -> Self {
        let parse = matches!(e.find_root(), DataFusionError::SQL(..));
        let message = EngineError::DataFusion(e).to_string();
        if parse {
            return SparkError::parse(message);
        }
        classify(&message)
    }
}

/// Sorts a DataFusion message into Spark's classes by what it says.
fn classify(message: &str) -> SparkError {
    let lower = message.to_ascii_lowercase();
    if lower.starts_with("sql syntax error") {
        return SparkError::parse(message);
    }
    if lower.contains("table") && lower.contains("not found") {
        return SparkError::analysis("TABLE_OR_VIEW_NOT_FOUND", message);
    }
    if lower.contains("no field named") || lower.contains("field not found") {
        return SparkError::analysis("UNRESOLVED_COLUMN.WITH_SUGGESTION", message);
    }
    if lower.contains("ambiguous") {
        return SparkError::analysis("AMBIGUOUS_REFERENCE", message);
    }
    if lower.contains("divide by zero") || lower.contains("overflow") {
        return SparkError::new(ARITHMETIC, "ARITHMETIC_OVERFLOW", "22003", message);
    }
    if lower.contains("not implemented") || lower.contains("unsupported") {
        return SparkError::new(UNSUPPORTED, "UNSUPPORTED_FEATURE", "0A000", message);
    }
    if lower.starts_with("error during planning")
        || lower.starts_with("schema error")
        || lower.contains("invalid function")
        || lower.contains("already exists")
        || lower.contains("cannot be cast")
        || lower.contains("no function matches")
    {
        return SparkError::analysis("DATATYPE_MISMATCH", message);
    }
    SparkError::new(RUNTIME, "FAIRWAY_EXECUTION_ERROR", "XX000", message)
}
