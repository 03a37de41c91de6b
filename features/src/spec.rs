//! The feature spec: a TOML file read into [`FeatureSpec`], every relative
//! path resolved against the spec's folder, every key checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use serde::Deserialize;

use crate::error::{FeatureError, Result};
use fairway_engine::EngineError;
use fairway_engine::parse_size;
use fairway_scheduler::SchedulingMode;

/// A feature table's definition, as read from a spec file.
///
/// ```toml
/// key = "c_custkey"                 # or ["k1", "k2"]
/// [sources]
/// orders = "../tpch-sf0.01/orders.parquet"   # file, folder or glob; parquet, csv or json
/// [scheduler]                       # all optional
/// mode = "fair"                     # fair (default) or fifo
/// slots = 2
/// [output]
/// path = "../../target/features/customer.parquet"
/// [[method]]
/// name = "order_stats"
/// sql = "select o_custkey as c_custkey, count(*) as n_orders from orders group by o_custkey"
/// ```
#[derive(Debug, Clone)]
pub struct FeatureSpec {
    /// The spec file.
    pub file: PathBuf,
    /// Key column(s) every method returns once per row.
    pub key: Vec<String>,
    /// Tables the views and methods read, in name order.
    pub sources: Vec<Source>,
    pub scheduler: SchedulerSettings,
    pub build: BuildSettings,
    pub output: OutputSettings,
    /// Shared inputs, in spec order; a view may read sources and earlier views.
    pub views: Vec<Definition>,
    /// Feature methods, in spec order (the output's column order).
    pub methods: Vec<Definition>,
    text: String,
}

/// A `[sources]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    /// The path as resolved against the spec's folder (or overridden).
    pub path: String,
}

/// `[scheduler]`: how the build's jobs share slots.
#[derive(Debug, Clone, Default)]
pub struct SchedulerSettings {
    /// FIFO or FAIR; the builder uses FAIR when the spec says nothing.
    pub mode: Option<SchedulingMode>,
    pub allocation_file: Option<PathBuf>,
    pub slots: Option<usize>,
    pub partitions: Option<usize>,
    /// Pool of methods and views that name none.
    pub default_pool: Option<String>,
}

/// `[build]`: how the build keeps shared views and which settings it uses.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// Bytes of a shared view kept in memory; a bigger view is written to
    /// the stage area as parquet and read from there (default 1 GiB).
    pub view_memory: usize,
    /// `fairway.*` / `datafusion.*` settings of the build's session.
    pub conf: Vec<(String, String)>,
    /// `key_cast`: the Arrow type every method's key column is cast to,
    /// per key column. Empty (the default): every method must return each
    /// key column with the same type, or the build is refused.
    pub key_cast: Vec<(String, DataType)>,
    /// `share_subplans`: compute a join that several methods compute the
    /// same way once per build (default `true`).
    pub share_subplans: bool,
    /// `fuse_aggregations`: run the aggregates of methods that aggregate
    /// the same input by the same keys as one pass (default `true`).
    pub fuse_aggregations: bool,
}

impl Default for BuildSettings {
    fn default() -> Self {
        Self {
            view_memory: 1 << 30,
            conf: Vec::new(),
            key_cast: Vec::new(),
            share_subplans: true,
            fuse_aggregations: true,
        }
    }
}

impl BuildSettings {
    /// The type key column `key` is cast to, if `key_cast` names one.
    pub fn key_cast_of(&self, key: &str) -> Option<&DataType> {
        self.key_cast.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }
}

/// `[output]`: where and how the feature table is written.
#[derive(Debug, Clone, Default)]
pub struct OutputSettings {
    pub path: Option<PathBuf>,
    pub compression: OutputCompression,
    pub row_group_size: Option<usize>,
}

/// Parquet compression of the output (`[output] compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputCompression {
    None,
    #[default]
    Snappy,
    Lz4,
    Zstd,
    Gzip,
}

impl std::str::FromStr for OutputCompression {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Ok(Self::None),
            "snappy" => Ok(Self::Snappy),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd),
            "gzip" => Ok(Self::Gzip),
            other => Err(format!(
                "unknown compression '{other}' (expected none, snappy, lz4, zstd or gzip)"
            )),
        }
    }
}

impl OutputCompression {
    pub(crate) fn parquet(self) -> parquet::basic::Compression {
        use parquet::basic::{Compression, GzipLevel, ZstdLevel};
        match self {
            Self::None => Compression::UNCOMPRESSED,
            Self::Snappy => Compression::SNAPPY,
            Self::Lz4 => Compression::LZ4_RAW,
            Self::Zstd => Compression::ZSTD(ZstdLevel::default()),
            Self::Gzip => Compression::GZIP(GzipLevel::default()),
        }
    }
}

/// A `[[view]]` or `[[method]]`: a name and how its rows are computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: String,
    /// The pool its job goes to (the spec's default pool when `None`).
    pub pool: Option<String>,
    pub body: Body,
    /// Whether several rows per key are allowed (methods only).
    pub allow_duplicate_keys: bool,
    /// Whether rows whose key (a key column) is NULL are allowed (methods
    /// only).
    pub allow_null_keys: bool,
    /// Line of its `name = ` in the spec, for messages.
    pub line: Option<usize>,
}

/// How a view or method computes its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// One SQL query (inline or from `sql_file`, then `file` is set).
    Sql { text: String, file: Option<PathBuf> },
    /// DataFrame steps.
    Steps(Steps),
}

/// DataFrame steps, applied in this order: `from` a table (source or view),
/// `filter` rows, `group_by` + `aggregate` (DataFrame::aggregate), `select`.
/// Every entry is a SQL expression, with `AS name` where a name is wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Steps {
    pub from: String,
    pub filter: Option<String>,
    pub group_by: Vec<String>,
    pub aggregate: Vec<String>,
    pub select: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    key: RawKey,
    #[serde(default)]
    sources: BTreeMap<String, String>,
    #[serde(default)]
    scheduler: RawScheduler,
    #[serde(default)]
    build: RawBuild,
    #[serde(default)]
    output: RawOutput,
    #[serde(default)]
    view: Vec<RawDefinition>,
    #[serde(default)]
    method: Vec<RawDefinition>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawKey {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    mode: Option<String>,
    allocation_file: Option<String>,
    slots: Option<usize>,
    partitions: Option<usize>,
    default_pool: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    view_memory: Option<String>,
    #[serde(default)]
    conf: BTreeMap<String, String>,
    key_cast: Option<RawKeyCast>,
    share_subplans: Option<bool>,
    fuse_aggregations: Option<bool>,
}

/// `key_cast = "Int64"` (every key column) or `key_cast = { k = "Int64" }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawKeyCast {
    All(String),
    Each(BTreeMap<String, String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    path: Option<String>,
    compression: Option<String>,
    row_group_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: String,
    pool: Option<String>,
    sql: Option<String>,
    sql_file: Option<String>,
    from: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default)]
    aggregate: Vec<String>,
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    allow_duplicate_keys: bool,
    #[serde(default)]
    allow_null_keys: bool,
}

/// `base/path` with `.` and `name/..` removed without touching the file
/// system (so globs and missing files resolve too).
fn lexical_join(base: &Path, path: &str) -> String {
    use std::path::Component;
    let mut parts: Vec<Component<'_>> = Vec::new();
    let joined = base.join(path);
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return ".".to_string();
    }
    parts
        .iter()
        .collect::<PathBuf>()
        .to_string_lossy()
        .to_string()
}

/// 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl FeatureSpec {
    /// Reads and checks a spec file (syntax, keys, definitions; not the
    /// data: see [`crate::build_features`], which plans everything before
    /// it runs anything).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| FeatureError::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Parses spec `text` as if read from `file` (relative paths resolve
    /// against `file`'s folder).
    pub fn parse(file: &Path, text: &str) -> Result<Self> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| FeatureError::Spec {
            file: file.to_path_buf(),
            line: e.span().map(|s| line_at(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let mut spec = FeatureSpec {
            file: file.to_path_buf(),
            key: Vec::new(),
            sources: Vec::new(),
            scheduler: SchedulerSettings::default(),
            build: BuildSettings::default(),
            output: OutputSettings::default(),
            views: Vec::new(),
            methods: Vec::new(),
            text: text.to_string(),
        };
        spec.key = match raw.key {
            RawKey::One(k) => vec![k],
            RawKey::Many(ks) => ks,
        };
        if spec.key.is_empty() || spec.key.iter().any(|k| k.trim().is_empty()) {
            return Err(spec.error(spec.line_of("key"), "key: give a column name or a list"));
        }
        for (name, path) in raw.sources {
            let resolved = spec.resolve(&path);
            spec.sources.push(Source {
                name,
                path: resolved,
            });
        }
        let s = raw.scheduler;
        spec.scheduler = SchedulerSettings {
            mode: match s.mode {
                Some(m) => Some(m.parse().map_err(|_| {
                    spec.error(
                        spec.line_of("mode"),
                        format!("[scheduler] mode: '{m}' (expected fifo or fair)"),
                    )
                })?),
                None => None,
            },
            allocation_file: s.allocation_file.map(|f| PathBuf::from(spec.resolve(&f))),
            slots: s.slots,
            partitions: s.partitions,
            default_pool: s.default_pool,
        };
        if let Some(size) = raw.build.view_memory {
            spec.build.view_memory = parse_size(&size).map_err(|m| {
                spec.error(
                    spec.line_of("view_memory"),
                    format!("[build] view_memory: {m}"),
                )
            })?;
        }
        spec.build.conf = raw.build.conf.into_iter().collect();
        if let Some(share) = raw.build.share_subplans {
            spec.build.share_subplans = share;
        }
        if let Some(fuse) = raw.build.fuse_aggregations {
            spec.build.fuse_aggregations = fuse;
        }
        if let Some(cast) = raw.build.key_cast {
            spec.build.key_cast = spec.key_cast(cast)?;
        }
        spec.output = OutputSettings {
            path: raw.output.path.map(|p| PathBuf::from(spec.resolve(&p))),
            compression: match raw.output.compression {
                Some(c) => c.parse().map_err(|m: String| {
                    spec.error(
                        spec.line_of("compression"),
                        format!("[output] compression: {m}"),
                    )
                })?,
                None => OutputCompression::default(),
            },
            row_group_size: raw.output.row_group_size,
        };
        if spec.output.row_group_size == Some(0) {
            return Err(spec.error(
                spec.line_of("row_group_size"),
                "[output] row_group_size: must be at least 1",
            ));
        }
        for raw in raw.view {
            let def = spec.definition("view", raw)?;
            spec.views.push(def);
        }
        for raw in raw.method {
            let def = spec.definition("method", raw)?;
            spec.methods.push(def);
        }
        spec.check_names()?;
        Ok(spec)
    }

    /// `[build] key_cast` checked: known key columns, known Arrow types.
    fn key_cast(&self, raw: RawKeyCast) -> Result<Vec<(String, DataType)>> {
        let line = self.line_of("key_cast");
        let pairs: Vec<(String, String)> = match raw {
            RawKeyCast::All(t) => self.key.iter().map(|k| (k.clone(), t.clone())).collect(),
            RawKeyCast::Each(map) => map.into_iter().collect(),
        };
        pairs
            .into_iter()
            .map(|(key, name)| {
                if !self.key.contains(&key) {
                    return Err(self.error(
                        line,
                        format!(
                            "[build] key_cast: '{key}' is not a key column (key: {})",
                            self.key.join(", ")
                        ),
                    ));
                }
                let ty = name.trim().parse::<DataType>().map_err(|_| {
                    self.error(
                        line,
                        format!(
                            "[build] key_cast: '{name}' is not an Arrow type (e.g. Int64, \
                             Int32, Utf8, Date32)"
                        ),
                    )
                })?;
                Ok((key, ty))
            })
            .collect()
    }

    /// The spec's folder, against which relative paths resolve.
    pub fn dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn resolve(&self, path: &str) -> String {
        // Absolute paths and URLs (s3://, https://, file://) as given.
        if Path::new(path).is_absolute() || path.contains("://") {
            path.to_string()
        } else {
            lexical_join(&self.dir(), path)
        }
    }

    /// Replaces source `name`'s path (`--source NAME=PATH`); relative paths
    /// are taken as given (relative to the working folder).
    pub fn set_source(&mut self, name: &str, path: &str) -> Result<()> {
        let known = self.source_names();
        match self.sources.iter_mut().find(|s| s.name == name) {
            Some(source) => {
                source.path = path.to_string();
                Ok(())
            }
            None => Err(self.error(
                None,
                format!("--source {name}: the spec has no source '{name}' (sources: {known})"),
            )),
        }
    }

    /// Reads every source from `dir` instead (`--sources-dir DIR`): each
    /// source's file or folder name (the last part of its path) is looked up
    /// in `dir`.
    pub fn use_sources_dir(&mut self, dir: &Path) {
        for source in &mut self.sources {
            if let Some(name) = Path::new(&source.path).file_name() {
                source.path = dir.join(name).to_string_lossy().to_string();
            }
        }
    }

    pub(crate) fn source_names(&self) -> String {
        let names: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    }

    /// A spec error at `line`.
    pub(crate) fn error(&self, line: Option<usize>, message: impl Into<String>) -> FeatureError {
        FeatureError::Spec {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    /// The first line that sets `key` (`key =` at the start of a line).
    pub(crate) fn line_of(&self, key: &str) -> Option<usize> {
        self.text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map(|i| i + 1)
    }

    /// The line of `name = "<name>"` of a view or method.
    fn line_of_name(&self, name: &str) -> Option<usize> {
        self.text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.starts_with("name")
                    && (l.contains(&format!("\"{name}\"")) || l.contains(&format!("'{name}'")))
            })
            .map(|i| i + 1)
    }

    fn definition(&self, kind: &str, raw: RawDefinition) -> Result<Definition> {
        let line = self.line_of_name(&raw.name);
        let err = |message: String| self.error(line, format!("{kind} '{}': {message}", raw.name));
        if raw.name.is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(err(
                "name: use letters, digits and '_' only (it names a table and a folder)"
                    .to_string(),
            ));
        }
        let has_steps = raw.from.is_some()
            || raw.filter.is_some()
            || !raw.group_by.is_empty()
            || !raw.aggregate.is_empty()
            || !raw.select.is_empty();
        let body = match (raw.sql, raw.sql_file, has_steps) {
            (Some(text), None, false) => Body::Sql { text, file: None },
            (None, Some(file), false) => {
                let path = PathBuf::from(self.resolve(&file));
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| err(format!("sql_file {}: {e}", path.display())))?;
                Body::Sql {
                    text,
                    file: Some(path),
                }
            }
            (None, None, true) => {
                let Some(from) = raw.from else {
                    return Err(err("DataFrame steps need 'from' (a source or view)".into()));
                };
                if raw.aggregate.is_empty() && !raw.group_by.is_empty() {
                    return Err(err("group_by needs aggregate".into()));
                }
                Body::Steps(Steps {
                    from,
                    filter: raw.filter,
                    group_by: raw.group_by,
                    aggregate: raw.aggregate,
                    select: raw.select,
                })
            }
            (None, None, false) => {
                return Err(err(
                    "give one of sql, sql_file or DataFrame steps (from, filter, group_by, \
                     aggregate, select)"
                        .into(),
                ));
            }
            _ => {
                return Err(err(
                    "give only one of sql, sql_file or DataFrame steps (from, filter, group_by, \
                     aggregate, select)"
                        .into(),
                ));
            }
        };
        if kind == "view" && raw.allow_duplicate_keys {
            return Err(err(
                "allow_duplicate_keys is a method option (views may have any rows)".into(),
            ));
        }
        if kind == "view" && raw.allow_null_keys {
            return Err(err(
                "allow_null_keys is a method option (views may have any rows)".into(),
            ));
        }
        let def = Definition {
            name: raw.name,
            pool: raw.pool,
            body,
            allow_duplicate_keys: raw.allow_duplicate_keys,
            allow_null_keys: raw.allow_null_keys,
            line,
        };
        // Syntax errors are reported now, before any data is touched.
        def.statement()
            .map_err(|m| self.error(line, format!("{kind} '{}': {m}", def.name)))?;
        Ok(def)
    }

    /// Names are unique across sources, views and methods (they name tables
    /// and stage folders).
    fn check_names(&self) -> Result<()> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for s in &self.sources {
            seen.insert(s.name.to_ascii_lowercase(), "source");
        }
        for (kind, defs) in [("view", &self.views), ("method", &self.methods)] {
            for d in defs.iter() {
                if let Some(other) = seen.insert(d.name.to_ascii_lowercase(), kind) {
                    return Err(self.error(
                        d.line,
                        format!("{kind} '{}': the name is already used by a {other}", d.name),
                    ));
                }
            }
        }
        if self.methods.is_empty() {
            return Err(self.error(None, "no [[method]] entries"));
        }
        Ok(())
    }

    /// The view named `name`, if any.
    pub fn view(&self, name: &str) -> Option<&Definition> {
        self.views
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
    }

    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

impl Definition {
    /// The parsed SQL query (for SQL bodies), checked to be one query.
    pub(crate) fn statement(&self) -> std::result::Result<Option<Statement>, String> {
        let Body::Sql { text, file } = &self.body else {
            return Ok(None);
        };
        let place = file
            .as_ref()
            .map(|f| format!(" (in {})", f.display()))
            .unwrap_or_default();
        let mut statements = DFParser::parse_sql_with_dialect(text, &GenericDialect {})
            .map_err(|e| format!("SQL does not parse{place}: {}", EngineError::from(e)))?;
        if statements.len() != 1 {
            return Err(format!(
                "SQL must be exactly one query{place}, found {} statements",
                statements.len()
            ));
        }
        let statement = statements.pop_front().expect("one statement");
        match &statement {
            Statement::Statement(s) if matches!(s.as_ref(), ast::Statement::Query(_)) => {
                Ok(Some(statement))
            }
            other => Err(format!(
                "SQL must be a query (SELECT ...){place}, found: {other}"
            )),
        }
    }

    /// The tables it reads directly (lower-case names as the SQL planner
    /// normalises them; CTE names excluded).
    pub(crate) fn reads(&self) -> std::result::Result<Vec<String>, String> {
        let mut names = match self.statement()? {
            Some(statement) => {
                let (refs, _) =
                    datafusion::sql::resolve::resolve_table_references(&statement, true)
                        .map_err(|e| e.to_string())?;
                refs.into_iter().map(|r| r.table().to_string()).collect()
            }
            None => match &self.body {
                Body::Steps(steps) => vec![steps.from.to_ascii_lowercase()],
                Body::Sql { .. } => Vec::new(),
            },
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The definition in a form that changes only when its meaning may:
    /// the SQL re-printed from its syntax tree (comments and layout do not
    /// count) or the steps as JSON.
    pub(crate) fn normalised(&self) -> String {
        match (&self.body, self.statement()) {
            (Body::Sql { .. }, Ok(Some(statement))) => format!("sql:{statement}"),
            (Body::Steps(steps), _) => {
                format!("steps:{}", serde_json::to_string(steps).unwrap_or_default())
            }
            (Body::Sql { text, .. }, _) => format!("sql-text:{text}"),
        }
    }

    /// The pool its job goes to.
    pub fn pool_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.pool.as_deref().unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FeatureSpec> {
        FeatureSpec::parse(Path::new("/specs/f.toml"), text)
    }

    const BASE: &str = r#"
key = "k"
[sources]
t = "data/t.parquet"
[[method]]
name = "m1"
sql = "select k, count(*) as n from t group by k"
[[method]]
name = "m2"
from = "t"
group_by = ["k"]
aggregate = ["sum(v) as total"]
"#;

    #[test]
    fn reads_a_spec_and_resolves_paths() {
        let spec = parse(BASE).unwrap();
        assert_eq!(spec.key, vec!["k"]);
        assert_eq!(spec.sources[0].path, "/specs/data/t.parquet");
        assert_eq!(lexical_join(Path::new("a/b"), "../c/./d.csv"), "a/c/d.csv");
        assert_eq!(lexical_join(Path::new("a"), "../../c"), "../c");
        assert_eq!(spec.methods.len(), 2);
        assert_eq!(spec.methods[1].line, Some(9));
        assert_eq!(spec.methods[0].reads().unwrap(), vec!["t"]);
        assert_eq!(spec.methods[1].reads().unwrap(), vec!["t"]);
        assert!(matches!(spec.methods[1].body, Body::Steps(_)));
    }

    #[test]
    fn unknown_keys_are_errors_listing_the_valid_ones() {
        let text = BASE.replace("name = \"m1\"", "name = \"m1\"\nsqll = \"x\"");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("spec /specs/f.toml:7:"), "{e}");
        assert!(
            e.contains("unknown field `sqll`") && e.contains("`sql_file`"),
            "{e}"
        );
    }

    #[test]
    fn sql_that_does_not_parse_names_the_method() {
        let text = BASE.replace("select k, count(*)", "selec k, count(*)");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("method 'm1': SQL does not parse"), "{e}");
        assert!(e.contains(":6:"), "{e}");
    }

    #[test]
    fn a_method_needs_exactly_one_body() {
        let text = BASE.replace("sql = \"select", "from = \"t\"\nsql = \"select");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("give only one of sql"), "{e}");
    }

    #[test]
    fn normalised_sql_ignores_layout_and_comments() {
        let a = parse(BASE).unwrap();
        let b = parse(&BASE.replace(
            "select k, count(*) as n from t group by k",
            "select k,\\n  count(*)   as n -- c\\n from t group by k",
        ))
        .unwrap();
        assert_eq!(a.methods[0].normalised(), b.methods[0].normalised());
    }
}
