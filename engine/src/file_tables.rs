//! Files queried directly in SQL: `SELECT * FROM 'data/x.parquet'`, `FROM
//! 's3://bucket/events/*.json'`, and the table functions `read_parquet`,
//! `read_csv`, `read_json`, `read_avro` and `read_arrow` (with DuckDB's names
//! `parquet_scan`, `read_csv_auto`, `read_json_auto`, `read_ndjson`; `read_ipc`).
//!
//! DataFusion plans table functions synchronously, but reading a file's
//! schema is I/O. So a call such as `read_csv('x.csv', header => false)`
//! is turned, before planning, into a table name that holds the call's
//! text; the catalog resolves names that look like files or such calls
//! through [`FileTables`], asynchronously, with the same rules as
//! `--table` ([`crate::tables::table_provider`]).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{TableProvider, UrlTableFactory};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::sql::sqlparser::ast::{
    self, Expr as SqlExpr, FunctionArg, FunctionArgExpr, Ident, ObjectName, TableFactor, Value,
    VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::tables::{ReadOptions, TableFormat};

/// The table functions, with the format each reads (`None`: from the
/// extension).
const READ_FUNCTIONS: &[(&str, Option<TableFormat>)] = &[
    ("read_parquet", Some(TableFormat::Parquet)),
    ("parquet_scan", Some(TableFormat::Parquet)),
    ("read_csv", Some(TableFormat::Csv)),
    ("read_csv_auto", Some(TableFormat::Csv)),
    ("read_json", Some(TableFormat::Json)),
    ("read_json_auto", Some(TableFormat::Json)),
    ("read_ndjson", Some(TableFormat::Json)),
    ("read_avro", Some(TableFormat::Avro)),
    ("read_arrow", Some(TableFormat::Arrow)),
    ("read_ipc", Some(TableFormat::Arrow)),
    ("read_files", None),
];

fn read_function(name: &str) -> Option<Option<TableFormat>> {
    let name = name.to_ascii_lowercase();
    READ_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, format)| *format)
}

/// The options each function takes, for errors.
const OPTIONS: &str = "header, delimiter (delim, sep), quote, escape, comment, \
                       hive_partitioning, format";

/// Rewrites the calls of the read functions in `statement` into table
/// names [`FileTables`] resolves.
pub(crate) fn rewrite_read_calls<T: VisitMut>(node: &mut T) {
    struct Rewriter;
    impl VisitorMut for Rewriter {
        type Break = ();
        fn pre_visit_table_factor(
            &mut self,
            factor: &mut TableFactor,
        ) -> std::ops::ControlFlow<Self::Break> {
            if let TableFactor::Table { name, args, .. } = factor
                && let Some(call_args) = args
                && name.0.len() == 1
                && let Some(ident) = name.0[0].as_ident()
                && ident.quote_style.is_none()
                && read_function(&ident.value).is_some()
            {
                let text = format!(
                    "{}({})",
                    ident.value.to_ascii_lowercase(),
                    call_args
                        .args
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                *name = ObjectName::from(vec![Ident::with_quote('"', text)]);
                *args = None;
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let _ = node.visit(&mut Rewriter);
}

/// [`rewrite_read_calls`] on a parsed statement: its query, a `COPY`'s
/// query, an `EXPLAIN`'s statement.
pub(crate) fn rewrite_statement(statement: &mut datafusion::sql::parser::Statement) {
    use datafusion::sql::parser::{CopyToSource, Statement};
    match statement {
        Statement::Statement(s) => rewrite_read_calls(s.as_mut()),
        Statement::CopyTo(copy) => {
            if let CopyToSource::Query(q) = &mut copy.source {
                rewrite_read_calls(q.as_mut());
            }
        }
        Statement::Explain(explain) => rewrite_statement(explain.statement.as_mut()),
        _ => {}
    }
}

/// A read call or a path, as a table: the catalog's last resort for names
/// it does not know.
#[derive(Debug)]
pub(crate) struct FileTables {
    /// For schema inference and listing: the session's configuration and
    /// object stores.
    state: SessionState,
}

impl FileTables {
    pub(crate) fn new(state: SessionState) -> Self {
        Self { state }
    }
}

/// Whether a table name not in the catalog should be read as a file:
/// a URL, or a path with a data file's extension, a glob, or a folder.
fn looks_like_path(name: &str) -> bool {
    if crate::stores::is_remote(name) || name.starts_with("file://") {
        return true;
    }
    TableFormat::from_extension(std::path::Path::new(name)).is_some()
        || (name.contains('/') && name.contains(['*', '?', '[']))
        || (name.contains('/') && std::path::Path::new(name).is_dir())
}

#[async_trait]
impl UrlTableFactory for FileTables {
    async fn try_new(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let (paths, read) = match parse_read_call(name) {
            Some(parsed) => parsed.map_err(|m| DataFusionError::Plan(format!("{name}: {m}")))?,
            None if looks_like_path(name) => (vec![name.to_string()], ReadOptions::default()),
            None => return Ok(None),
        };
        let provider = crate::tables::table_provider(&self.state, name, &paths, &read)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(provider))
    }
}

type ParsedCall = std::result::Result<(Vec<String>, ReadOptions), String>;

/// The paths and options of a read call's text (`read_csv('a.csv',
/// header => false)`), or `None` if `text` is no such call.
fn parse_read_call(text: &str) -> Option<ParsedCall> {
    let open = text.find('(')?;
    let function = text[..open].trim();
    let format = read_function(function)?;
    let dialect = GenericDialect {};
    let factor = Parser::new(&dialect)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_table_factor());
    let args = match factor {
        Ok(TableFactor::Table {
            args: Some(args), ..
        }) => args.args,
        Ok(_) => return Some(Err("not a function call".to_string())),
        Err(e) => return Some(Err(e.to_string())),
    };
    Some(read_call_args(function, format, &args))
}

fn read_call_args(function: &str, format: Option<TableFormat>, args: &[FunctionArg]) -> ParsedCall {
    let mut paths = Vec::new();
    let mut read = ReadOptions {
        format,
        ..ReadOptions::default()
    };
    for (i, arg) in args.iter().enumerate() {
        let (name, value) = match arg {
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(value),
                ..
            } => (Some(name.value.to_ascii_lowercase()), value),
            FunctionArg::ExprNamed {
                name: SqlExpr::Identifier(name),
                arg: FunctionArgExpr::Expr(value),
                ..
            } => (Some(name.value.to_ascii_lowercase()), value),
            // DuckDB's `header = true`.
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::BinaryOp {
                left,
                op: ast::BinaryOperator::Eq,
                right,
            })) if matches!(left.as_ref(), SqlExpr::Identifier(_)) => {
                let SqlExpr::Identifier(name) = left.as_ref() else {
                    unreachable!("checked above")
                };
                (Some(name.value.to_ascii_lowercase()), right.as_ref())
            }
            FunctionArg::Unnamed(FunctionArgExpr::Expr(value)) => (None, value),
            other => return Err(format!("unsupported argument {other}")),
        };
        match name {
            None if i == 0 => paths = path_list(value)?,
            None => {
                return Err(format!(
                    "only the first argument (the path, or a list of paths) is positional; \
                     name the others: {function}(path, header => true)"
                ));
            }
            Some(option) => set_option(&mut read, &option, value)?,
        }
    }
    if paths.is_empty() {
        return Err(format!(
            "{function} needs a path, a glob, a URL or a list of them"
        ));
    }
    Ok((paths, read))
}

fn string_of(value: &SqlExpr) -> Option<String> {
    match value {
        SqlExpr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::EscapedStringLiteral(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn path_list(value: &SqlExpr) -> std::result::Result<Vec<String>, String> {
    if let Some(path) = string_of(value) {
        return Ok(vec![path]);
    }
    if let SqlExpr::Array(array) = value {
        return array
            .elem
            .iter()
            .map(|e| string_of(e).ok_or_else(|| format!("{e} is not a string")))
            .collect();
    }
    Err(format!(
        "the path must be a string or a list of strings, not {value}"
    ))
}

fn bool_of(option: &str, value: &SqlExpr) -> std::result::Result<bool, String> {
    let text = match value {
        SqlExpr::Value(v) => match &v.value {
            Value::Boolean(b) => return Ok(*b),
            Value::Number(n, _) => n.clone(),
            _ => string_of(value).unwrap_or_default(),
        },
        SqlExpr::Identifier(i) => i.value.clone(),
        _ => String::new(),
    };
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{option} must be true or false, not {value}")),
    }
}

fn byte_of(option: &str, value: &SqlExpr) -> std::result::Result<u8, String> {
    let text = string_of(value).ok_or_else(|| format!("{option} must be a string"))?;
    let text = match text.as_str() {
        "\\t" => "\t".to_string(),
        _ => text,
    };
    match text.as_bytes() {
        [b] => Ok(*b),
        _ => Err(format!(
            "{option} must be one ASCII character, not '{text}'"
        )),
    }
}

fn set_option(
    read: &mut ReadOptions,
    option: &str,
    value: &SqlExpr,
) -> std::result::Result<(), String> {
    match option {
        "header" => read.header = Some(bool_of(option, value)?),
        "delimiter" | "delim" | "sep" => read.delimiter = Some(byte_of(option, value)?),
        "quote" => read.quote = Some(byte_of(option, value)?),
        "escape" => read.escape = Some(byte_of(option, value)?),
        "comment" => read.comment = Some(byte_of(option, value)?),
        "hive_partitioning" => read.hive_partitioning = Some(bool_of(option, value)?),
        "format" => {
            let name = string_of(value).ok_or("format must be a string")?;
            read.format = Some(
                TableFormat::from_name(&name)
                    .ok_or_else(|| format!("unknown format '{name}' ({})", TableFormat::NAMES))?,
            );
        }
        other => return Err(format!("unknown option '{other}'; known: {OPTIONS}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<String>, ReadOptions) {
        parse_read_call(text).expect("a read call").expect("parses")
    }

    #[test]
    fn calls_give_paths_and_options() {
        let (paths, read) = parse("read_csv('a.csv', header => false, delim => ';')");
        assert_eq!(paths, ["a.csv"]);
        assert_eq!(read.format, Some(TableFormat::Csv));
        assert_eq!(read.header, Some(false));
        assert_eq!(read.delimiter, Some(b';'));
        let (paths, read) =
            parse("read_parquet(['s3://b/x.parquet', 'y.parquet'], hive_partitioning = 0)");
        assert_eq!(paths, ["s3://b/x.parquet", "y.parquet"]);
        assert_eq!(read.hive_partitioning, Some(false));
        let (_, read) = parse("read_files('data/*', format => 'json')");
        assert_eq!(read.format, Some(TableFormat::Json));
        assert!(parse_read_call("lineitem").is_none());
        assert!(parse_read_call("generate_series(1, 3)").is_none());
        let err = parse_read_call("read_csv('a.csv', colour => 'red')")
            .unwrap()
            .unwrap_err();
        assert!(err.contains("unknown option 'colour'"), "{err}");
        let err = parse_read_call("read_csv('a.csv', ';')")
            .unwrap()
            .unwrap_err();
        assert!(err.contains("name the others"), "{err}");
        let err = parse_read_call("read_json()").unwrap().unwrap_err();
        assert!(err.contains("needs a path"), "{err}");
    }

    #[test]
    fn calls_are_rewritten_into_names() {
        let dialect = GenericDialect {};
        let mut statements = Parser::parse_sql(
            &dialect,
            "select * from read_csv('a.csv', header => false) as t join lineitem using (k)",
        )
        .unwrap();
        rewrite_read_calls(&mut statements[0]);
        let text = statements[0].to_string();
        assert!(
            text.contains("FROM \"read_csv('a.csv', header => false)\" AS t"),
            "{text}"
        );
        assert!(text.contains("JOIN lineitem"), "{text}");
    }

    #[test]
    fn names_that_look_like_files() {
        assert!(looks_like_path("data/x.parquet"));
        assert!(looks_like_path("s3://bucket/prefix/"));
        assert!(looks_like_path("x.CSV"));
        assert!(looks_like_path("data/*.json"));
        assert!(!looks_like_path("lineitem"));
        assert!(!looks_like_path("my_table"));
    }
}

/// The session's catalogs: DataFusion's `DynamicFileCatalog` over the
/// in-memory catalogs, so that a name the catalog does not know that looks
/// like a file is read as a table, except that `DROP SCHEMA` reaches the
/// in-memory catalog (DataFusion's wrapper refuses it).
pub(crate) fn session_catalogs(
    files: FileTables,
) -> Arc<dyn datafusion::catalog::CatalogProviderList> {
    let memory = Arc::new(datafusion::catalog::MemoryCatalogProviderList::new());
    let dynamic =
        datafusion::catalog::DynamicFileCatalog::new(Arc::clone(&memory) as _, Arc::new(files));
    Arc::new(FileCatalogs { memory, dynamic })
}

#[derive(Debug)]
struct FileCatalogs {
    memory: Arc<datafusion::catalog::MemoryCatalogProviderList>,
    dynamic: datafusion::catalog::DynamicFileCatalog,
}

impl datafusion::catalog::CatalogProviderList for FileCatalogs {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn datafusion::catalog::CatalogProvider>,
    ) -> Option<Arc<dyn datafusion::catalog::CatalogProvider>> {
        self.dynamic.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.dynamic.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn datafusion::catalog::CatalogProvider>> {
        Some(Arc::new(FileCatalog {
            files: self.dynamic.catalog(name)?,
            memory: self.memory.catalog(name)?,
        }))
    }
}

#[derive(Debug)]
struct FileCatalog {
    files: Arc<dyn datafusion::catalog::CatalogProvider>,
    memory: Arc<dyn datafusion::catalog::CatalogProvider>,
}

impl datafusion::catalog::CatalogProvider for FileCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.files.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn datafusion::catalog::SchemaProvider>> {
        self.files.schema(name)
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn datafusion::catalog::SchemaProvider>,
    ) -> Result<Option<Arc<dyn datafusion::catalog::SchemaProvider>>> {
        self.files.register_schema(name, schema)
    }

    fn deregister_schema(
        &self,
        name: &str,
        cascade: bool,
    ) -> Result<Option<Arc<dyn datafusion::catalog::SchemaProvider>>> {
        self.memory.deregister_schema(name, cascade)
    }
}
