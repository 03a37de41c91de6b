//! Registering parquet and CSV files, folders and globs as tables.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::datasource::file_format::options::ReadOptions as _;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::SessionState;
use datafusion::prelude::{
    AvroReadOptions, CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext,
};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{EngineError, Result};

/// File formats fairway reads as tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Parquet,
    Csv,
    /// JSON (`.json`, `.ndjson`, `.jsonl`): one object per line, as Spark's
    /// `spark.read.json` reads it, or one array of objects.
    Json,
    /// Avro object container files (`.avro`).
    Avro,
    /// Arrow IPC files (`.arrow`, `.feather`, `.ipc`), as `COPY ... STORED AS
    /// ARROW` writes them and Polars' `write_ipc` does.
    Arrow,
}

/// The extensions of the formats, as errors list them.
const EXTENSIONS: &str = ".parquet, .csv, .json, .avro or .arrow";

impl TableFormat {
    /// The formats' names, as errors list them.
    pub const NAMES: &str = "parquet, csv, json, avro, arrow";

    /// The format of a file's extension: a format's name (see
    /// [`TableFormat::from_name`]) or `.parq`.
    pub(crate) fn from_extension(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?;
        if extension.eq_ignore_ascii_case("parq") {
            return Some(TableFormat::Parquet);
        }
        Self::from_name(extension)
    }

    /// The format's name, as `read_csv(..., format => 'csv')` and errors
    /// say it.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Csv => "csv",
            TableFormat::Json => "json",
            TableFormat::Avro => "avro",
            TableFormat::Arrow => "arrow",
        }
    }

    /// The format of a name (`parquet`, `csv`, `json`, `ndjson`, `avro`,
    /// `arrow`, `ipc`, `feather`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "parquet" => Some(TableFormat::Parquet),
            "csv" => Some(TableFormat::Csv),
            "json" | "ndjson" | "jsonl" => Some(TableFormat::Json),
            "avro" => Some(TableFormat::Avro),
            "arrow" | "ipc" | "feather" => Some(TableFormat::Arrow),
            _ => None,
        }
    }

    fn default_extension(self) -> &'static str {
        match self {
            TableFormat::Parquet => ".parquet",
            TableFormat::Csv => ".csv",
            TableFormat::Json => ".json",
            TableFormat::Avro => ".avro",
            TableFormat::Arrow => ".arrow",
        }
    }
}

fn table_error(table: &str, path: &str, message: impl Into<String>) -> EngineError {
    EngineError::Table {
        table: table.to_string(),
        path: path.to_string(),
        message: message.into(),
    }
}

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Finds the format of a file, of the files in a folder (searched
/// recursively, hidden and `_` files skipped), or of a glob's extension.
pub fn detect_format(table: &str, path: &str) -> Result<TableFormat> {
    if is_glob(path) {
        return TableFormat::from_extension(Path::new(path))
            .ok_or_else(|| table_error(table, path, format!("a glob must end in {EXTENSIONS}")));
    }
    let p = Path::new(path);
    let meta = std::fs::metadata(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            table_error(table, path, "no such file or folder")
        } else {
            table_error(table, path, e.to_string())
        }
    })?;
    if meta.is_file() {
        let format = TableFormat::from_extension(p).ok_or_else(|| {
            table_error(
                table,
                path,
                format!("not a {EXTENSIONS} file (also .parq, .ndjson, .jsonl, .feather, .ipc)"),
            )
        })?;
        if format == TableFormat::Parquet && meta.len() == 0 {
            return Err(table_error(
                table,
                path,
                "the file is empty (0 bytes), not a parquet file",
            ));
        }
        return Ok(format);
    }
    if !meta.is_dir() {
        return Err(table_error(
            table,
            path,
            "not a regular file or folder (a pipe, socket or device?)",
        ));
    }
    let mut found = None;
    find_format(p, &mut found).map_err(|e| table_error(table, path, e.to_string()))?;
    let format = found
        .ok_or_else(|| table_error(table, path, format!("folder holds no {EXTENSIONS} files")))?;
    if format == TableFormat::Parquet
        && let Some(empty) =
            find_empty_parquet(p).map_err(|e| table_error(table, path, e.to_string()))?
    {
        return Err(table_error(
            table,
            path,
            format!("{} is empty (0 bytes), not a parquet file", empty.display()),
        ));
    }
    Ok(format)
}

/// Whether a folder entry is skipped when a folder is read as tables:
/// hidden and `_` files (Spark's `_SUCCESS`, `_metadata`) and fairway's own
/// working files.
fn skipped(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_') || fairway_files::is_fairway_own(name)
}

/// Calls `visit` with every regular file under `dir` (sorted by name,
/// links followed to what they name, skipped entries and pipes, sockets
/// and devices left out) until it breaks.
fn walk_files(
    dir: &Path,
    visit: &mut impl FnMut(&Path, &std::fs::Metadata) -> ControlFlow<()>,
) -> std::io::Result<ControlFlow<()>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if skipped(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let flow = if meta.is_dir() {
            walk_files(&path, visit)?
        } else if meta.is_file() {
            visit(&path, &meta)
        } else {
            ControlFlow::Continue(())
        };
        if flow.is_break() {
            return Ok(flow);
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// The first 0-byte parquet file under `dir`, if any.
fn find_empty_parquet(dir: &Path) -> std::io::Result<Option<std::path::PathBuf>> {
    let mut empty = None;
    let _stopped = walk_files(dir, &mut |path, meta| {
        if meta.len() == 0 && TableFormat::from_extension(path) == Some(TableFormat::Parquet) {
            empty = Some(path.to_path_buf());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    Ok(empty)
}

/// The first JSON file (`.json`, `.ndjson` or `.jsonl`) under folder
/// `dir`: the one whose extension its table reads.
fn first_json_file(dir: &Path) -> Option<std::path::PathBuf> {
    let mut found = None;
    let _ = walk_files(dir, &mut |path, _| {
        if TableFormat::from_extension(path) == Some(TableFormat::Json) {
            found = Some(path.to_path_buf());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// Whether the file starts with `[` after white space: a JSON array.
fn opens_with_bracket(file: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 256];
    let Ok(read) = std::fs::File::open(file).and_then(|mut f| f.read(&mut head)) else {
        return false;
    };
    head[..read]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'[')
}

/// The format of the first parquet, CSV or JSON file under `dir`.
fn find_format(dir: &Path, found: &mut Option<TableFormat>) -> std::io::Result<()> {
    let _stopped = walk_files(
        dir,
        &mut |path, _| match TableFormat::from_extension(path) {
            Some(format) => {
                *found = Some(format);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        },
    )?;
    Ok(())
}

/// How a file table is read: the options of `read_csv(...)` and its
/// siblings. Unset fields take fairway's defaults (the format from the
/// extension, CSV with a header row and commas, hive-style partition
/// folders detected).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// The format, where the extension does not tell it.
    pub format: Option<TableFormat>,
    /// CSV: whether the first row names the columns (default true).
    pub header: Option<bool>,
    /// CSV: the field separator (default `,`).
    pub delimiter: Option<u8>,
    /// CSV: the quote character (default `"`).
    pub quote: Option<u8>,
    /// CSV: the escape character (default none).
    pub escape: Option<u8>,
    /// CSV: lines starting with this character are skipped.
    pub comment: Option<u8>,
    /// Whether `key=value` folders become partition columns (default: yes
    /// where every file sits under the same keys).
    pub hive_partitioning: Option<bool>,
}

/// Registers `path` (a parquet, CSV, JSON, Avro or Arrow file, a folder of them,
/// or a glob; a local path or an object store URL) as table `name` of
/// `ctx`. CSV files must have a header row; a JSON table's schema is
/// inferred from its rows; `key=value` folders become partition columns.
pub async fn register_table(ctx: &SessionContext, name: &str, path: &str) -> Result<()> {
    let provider = table_provider(
        &ctx.state(),
        name,
        &[path.to_string()],
        &ReadOptions::default(),
    )
    .await?;
    ctx.register_table(name, provider)
        .map_err(|e| table_error(name, path, crate::error::describe_datafusion(&e)))?;
    Ok(())
}

/// Where one path of a table is and what it holds.
struct Source {
    url: ListingTableUrl,
    /// The format its extension (or its first data file's) tells.
    format: Option<TableFormat>,
    /// The extension its files are listed by (`.parquet`, or the file's
    /// own); `None` for a folder, whose format's default applies.
    extension: Option<String>,
    /// A file to look at for a JSON table's layout (one array, or one
    /// object per line).
    first: Option<FirstFile>,
    /// Whether the path is a folder or glob (so it may have partitions).
    collection: bool,
}

enum FirstFile {
    Local(std::path::PathBuf),
    Remote(Arc<dyn ObjectStore>, object_store::path::Path),
}

impl FirstFile {
    async fn opens_with_bracket(&self) -> bool {
        match self {
            FirstFile::Local(path) => opens_with_bracket(path),
            FirstFile::Remote(store, location) => {
                let head = match store.head(location).await {
                    Ok(meta) => meta.size.min(256),
                    Err(_) => return false,
                };
                match store.get_range(location, 0..head).await {
                    Ok(bytes) => bytes
                        .iter()
                        .find(|b| !b.is_ascii_whitespace())
                        .is_some_and(|&b| b == b'['),
                    Err(_) => false,
                }
            }
        }
    }
}

fn extension_of(path: &str) -> Option<String> {
    let name = path.rsplit('/').next()?;
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty()).then(|| format!(".{ext}"))
}

/// A local path or `file://` URL as a path, else `None`.
fn as_local(path: &str) -> Option<String> {
    if crate::stores::is_remote(path) {
        return None;
    }
    match path.strip_prefix("file://") {
        Some(rest) => url::Url::parse(path)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .map(|p| p.to_string_lossy().to_string())
            .or_else(|| Some(rest.to_string())),
        None => Some(path.to_string()),
    }
}

async fn local_source(table: &str, path: &str, read: &ReadOptions) -> Result<Source> {
    let p = Path::new(path);
    let detected = match read.format {
        // An explicit format still needs the path to exist.
        Some(format) if !is_glob(path) => {
            if !p.exists() {
                return Err(table_error(table, path, "no such file or folder"));
            }
            Some(format)
        }
        Some(format) => Some(format),
        None => Some(detect_format(table, path)?),
    };
    let is_dir = !is_glob(path) && p.is_dir();
    let mut location = path.to_string();
    if is_dir && !location.ends_with('/') {
        location.push('/');
    }
    let url = ListingTableUrl::parse(&location)
        .map_err(|e| table_error(table, path, crate::error::describe_datafusion(&e)))?;
    let own = (!is_dir).then(|| extension_of(path)).flatten();
    let first = if is_dir {
        first_json_file(p)
    } else if is_glob(path) {
        None
    } else {
        Some(p.to_path_buf())
    };
    let extension = match (&own, detected) {
        (Some(own), _) => Some(own.clone()),
        (None, Some(TableFormat::Json)) => first
            .as_deref()
            .and_then(|f| f.extension().map(|e| format!(".{}", e.to_string_lossy()))),
        _ => None,
    };
    Ok(Source {
        url,
        format: detected,
        extension,
        first: first.map(FirstFile::Local),
        collection: is_dir || is_glob(path),
    })
}

/// The URL of `path`: a folder gets its trailing `/`; a glob in the path
/// part is split off, as DataFusion does for local paths.
fn remote_url(path: &str, folder: bool) -> datafusion::error::Result<ListingTableUrl> {
    let (scheme_host, rest) = match path.split_once("://") {
        Some((scheme, rest)) => match rest.find('/') {
            Some(i) => (format!("{scheme}://{}", &rest[..i]), &rest[i..]),
            None => (format!("{scheme}://{rest}"), "/"),
        },
        None => (String::new(), path),
    };
    let http = scheme_host.starts_with("http");
    if !http && let Some(i) = rest.find(['*', '?', '[']) {
        let cut = rest[..i].rfind('/').map_or(0, |c| c + 1);
        let base = ListingTableUrl::parse(format!("{scheme_host}{}", &rest[..cut]))?;
        return base.with_glob(&rest[cut..]);
    }
    let mut location = format!("{scheme_host}{rest}");
    if folder && !location.ends_with('/') {
        location.push('/');
    }
    ListingTableUrl::parse(location)
}

/// Whether an object's name (relative to the table's URL) is skipped:
/// a hidden or `_` file or folder on its way, or fairway's own.
fn skipped_object(relative: &str) -> bool {
    relative
        .split('/')
        .any(|part| !part.is_empty() && skipped(part))
}

/// The first data object under `url` (one whose extension names a format,
/// or any with `format` given; skipped names left out), and whether the
/// prefix holds any object at all.
async fn first_data_object(
    state: &SessionState,
    url: &ListingTableUrl,
    store: &dyn ObjectStore,
    format: Option<TableFormat>,
) -> datafusion::error::Result<(
    Option<(object_store::ObjectMeta, Option<TableFormat>)>,
    bool,
)> {
    let mut listed = url.list_all_files(state, store, "").await?;
    let mut any = false;
    while let Some(meta) = listed.try_next().await? {
        any = true;
        let relative: String = url
            .strip_prefix(&meta.location)
            .map(|parts| parts.collect::<Vec<_>>().join("/"))
            .unwrap_or_default();
        if skipped_object(&relative) {
            continue;
        }
        let found = TableFormat::from_extension(Path::new(meta.location.as_ref()));
        let wanted = match format {
            Some(f) => found.is_none_or(|g| g == f),
            None => found.is_some(),
        };
        if wanted {
            return Ok((Some((meta, found.or(format))), true));
        }
    }
    Ok((None, any))
}

async fn remote_source(
    state: &SessionState,
    table: &str,
    path: &str,
    read: &ReadOptions,
) -> Result<Source> {
    let error = |e: &datafusion::error::DataFusionError| {
        table_error(table, path, crate::error::describe_datafusion(e))
    };
    let glob_url = remote_url(path, false).map_err(|e| error(&e))?;
    let store = state
        .runtime_env()
        .object_store(&glob_url)
        .map_err(|e| error(&e))?;
    let is_glob = glob_url.get_glob().is_some();
    // A path without a glob is a file if the store has an object there,
    // else a folder (a prefix).
    if !is_glob && !path.ends_with('/') {
        let location = glob_url.prefix().clone();
        match store.head(&location).await {
            Ok(meta) => {
                let format = read
                    .format
                    .or_else(|| TableFormat::from_extension(Path::new(path)));
                let Some(format) = format else {
                    return Err(table_error(
                        table,
                        path,
                        format!(
                            "not a {EXTENSIONS} object (read_csv(...) and its siblings read \
                             other names)"
                        ),
                    ));
                };
                if format == TableFormat::Parquet && meta.size == 0 {
                    return Err(table_error(
                        table,
                        path,
                        "the object is empty (0 bytes), not a parquet file",
                    ));
                }
                return Ok(Source {
                    url: glob_url,
                    format: Some(format),
                    extension: extension_of(path),
                    first: Some(FirstFile::Remote(store, location)),
                    collection: false,
                });
            }
            Err(object_store::Error::NotFound { .. }) if path.starts_with("http") => {
                return Err(table_error(table, path, "not found (HTTP 404)"));
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) if path.starts_with("http") => {
                return Err(table_error(table, path, crate::error::describe_store(&e)));
            }
            Err(e) => {
                // A HEAD answer has no body, so no error code: a listing
                // of the same prefix says what is wrong (a missing bucket,
                // refused credentials) where it fails too.
                let folder = remote_url(path, true).map_err(|e| error(&e))?;
                if let Err(listed) = first_data_object(state, &folder, store.as_ref(), None).await {
                    return Err(error(&listed));
                }
                return Err(table_error(table, path, crate::error::describe_store(&e)));
            }
        }
    }
    if path.starts_with("http") {
        return Err(table_error(
            table,
            path,
            "an HTTP(S) URL names one file: HTTP servers cannot list folders or globs",
        ));
    }
    let url = if is_glob {
        glob_url
    } else {
        remote_url(path, true).map_err(|e| error(&e))?
    };
    let (first, any) = first_data_object(state, &url, store.as_ref(), read.format)
        .await
        .map_err(|e| error(&e))?;
    let Some((meta, format)) = first else {
        return Err(table_error(
            table,
            path,
            if any {
                format!("holds no {EXTENSIONS} objects")
            } else {
                "no such object, and no objects under this prefix".to_string()
            },
        ));
    };
    let extension = extension_of(meta.location.as_ref());
    Ok(Source {
        url,
        format,
        extension: if is_glob { None } else { extension },
        first: Some(FirstFile::Remote(store, meta.location)),
        collection: true,
    })
}

/// The table of `paths` (local paths, globs or object store URLs; all of
/// one format), read as `read` says: DataFusion's listing table with
/// fairway's rules for formats, JSON layouts and partition folders.
pub async fn table_provider(
    state: &SessionState,
    table: &str,
    paths: &[String],
    read: &ReadOptions,
) -> Result<Arc<dyn TableProvider>> {
    let shown = paths.join(", ");
    let Some(first_path) = paths.first() else {
        return Err(table_error(table, "", "no path given"));
    };
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        let source = match as_local(path) {
            Some(local) => local_source(table, &local, read).await?,
            None => remote_source(state, table, path, read).await?,
        };
        sources.push(source);
    }
    let format = match read.format.or(sources[0].format) {
        Some(format) => format,
        None => {
            return Err(table_error(
                table,
                first_path,
                "cannot tell the file format",
            ));
        }
    };
    if let Some(other) = sources
        .iter()
        .find(|s| s.format.is_some_and(|f| f != format))
    {
        return Err(table_error(
            table,
            &shown,
            format!(
                "the paths hold different formats ({} and {})",
                format.name(),
                other.format.map_or("?", TableFormat::name)
            ),
        ));
    }
    let source = &sources[0];
    let extension = match (&source.extension, read.format) {
        // An explicit format reads a folder's files whatever their names.
        (None, Some(_)) if source.collection => String::new(),
        (Some(ext), _) => ext.clone(),
        (None, _) => format.default_extension().to_string(),
    };
    let config = state.config();
    let table_options = state.default_table_options();
    let mut options = match format {
        TableFormat::Parquet => ParquetReadOptions::default()
            .file_extension(&extension)
            .to_listing_options(config, table_options),
        TableFormat::Csv => {
            let mut csv = CsvReadOptions::new()
                .has_header(read.header.unwrap_or(true))
                .file_extension(&extension);
            if let Some(d) = read.delimiter {
                csv = csv.delimiter(d);
            }
            if let Some(q) = read.quote {
                csv = csv.quote(q);
            }
            csv.escape = read.escape;
            csv.comment = read.comment;
            csv.to_listing_options(config, table_options)
        }
        TableFormat::Json => {
            let mut json = JsonReadOptions::default().file_extension(&extension);
            // A file that opens with `[` holds one JSON array of objects;
            // otherwise one object per line.
            let array = match &source.first {
                Some(first) => first.opens_with_bracket().await,
                None => false,
            };
            json.newline_delimited = !array;
            json.to_listing_options(config, table_options)
        }
        TableFormat::Avro => AvroReadOptions {
            file_extension: &extension,
            ..AvroReadOptions::default()
        }
        .to_listing_options(config, table_options),
        TableFormat::Arrow => ArrowReadOptions {
            file_extension: &extension,
            ..ArrowReadOptions::default()
        }
        .to_listing_options(config, table_options),
    };
    let urls: Vec<ListingTableUrl> = sources.iter().map(|s| s.url.clone()).collect();
    if read.hive_partitioning != Some(false) && source.collection {
        let columns = partition_columns(state, &urls[0], &options)
            .await
            .map_err(|e| table_error(table, first_path, e))?;
        options = options.with_table_partition_cols(columns);
    }
    let schema = options
        .infer_schema(state, &urls[0])
        .await
        .map_err(|e| table_error(table, &shown, crate::error::describe_datafusion(&e)))?;
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    let provider = ListingTable::try_new(config)
        .map_err(|e| table_error(table, &shown, crate::error::describe_datafusion(&e)))?;
    Ok(Arc::new(provider))
}

/// The hive-style partition columns (`year=2024/month=1/`) under `url`:
/// the `key=value` folders every data file sits in, in order, typed
/// BIGINT where every value is an integer, DATE where every value is a
/// `YYYY-MM-DD` date, else strings. Files under different keys are an
/// error that names two of them.
async fn partition_columns(
    state: &SessionState,
    url: &ListingTableUrl,
    options: &datafusion::datasource::listing::ListingOptions,
) -> std::result::Result<Vec<(String, DataType)>, String> {
    let store = state
        .runtime_env()
        .object_store(url)
        .map_err(|e| crate::error::describe_datafusion(&e))?;
    let mut listed = url
        .list_all_files(state, store.as_ref(), &options.file_extension)
        .await
        .map_err(|e| crate::error::describe_datafusion(&e))?;
    let mut keys: Option<(Vec<String>, String)> = None;
    let mut values: Vec<Vec<String>> = Vec::new();
    while let Some(meta) = listed
        .try_next()
        .await
        .map_err(|e| crate::error::describe_datafusion(&e))?
    {
        let Some(parts) = url.strip_prefix(&meta.location) else {
            continue;
        };
        let parts: Vec<&str> = parts.collect();
        let relative = parts.join("/");
        if skipped_object(&relative) {
            continue;
        }
        let folders = &parts[..parts.len().saturating_sub(1)];
        let pairs: Vec<(&str, &str)> = folders.iter().filter_map(|f| f.split_once('=')).collect();
        let names: Vec<String> = pairs.iter().map(|(k, _)| k.to_string()).collect();
        match &keys {
            None => {
                values = vec![Vec::new(); names.len()];
                keys = Some((names, relative.clone()));
            }
            Some((known, example)) if *known != names => {
                return Err(format!(
                    "partition folders differ: {example} is under [{}] but {relative} under [{}]",
                    known.join(", "),
                    names.join(", ")
                ));
            }
            Some(_) => {}
        }
        for (i, (_, value)) in pairs.iter().enumerate() {
            values[i].push(value.to_string());
        }
    }
    let Some((names, _)) = keys else {
        return Ok(Vec::new());
    };
    Ok(names
        .into_iter()
        .zip(values)
        .map(|(name, values)| {
            let ty = if !values.is_empty() && values.iter().all(|v| v.parse::<i64>().is_ok()) {
                DataType::Int64
            } else if !values.is_empty() && values.iter().all(|v| is_date(v)) {
                DataType::Date32
            } else {
                DataType::Utf8
            };
            (name, ty)
        })
        .collect())
}

/// Whether `v` is a `YYYY-MM-DD` date.
fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    let digits = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    digits
        && v[5..7].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        && v[8..10].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
}

/// One file a table's scan reads, as DataFusion lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// Its URL (`file:///...` for a local file).
    pub location: String,
    pub size: u64,
    /// Modification time, in nanoseconds since the Unix epoch (0 if the
    /// store does not know it).
    pub modified_ns: u128,
    /// The object's ETag on an object store (changes with its content);
    /// `None` for local files, whose size and time tell.
    pub e_tag: Option<String>,
}

/// The files a scan of table `name` reads, in URL order: DataFusion's own
/// listing of the registered table's paths (with its rules for folders,
/// globs, extensions and subfolders), so that whatever fingerprints them
/// covers exactly those files. A table that is not a listing of files (a
/// view, a memory table) has none.
pub async fn table_files(ctx: &SessionContext, name: &str) -> Result<Vec<TableFile>> {
    let provider = ctx.table_provider(name).await?;
    let Some(listing) = provider.downcast_ref::<ListingTable>() else {
        return Ok(Vec::new());
    };
    let state = ctx.state();
    let extension = &listing.options().file_extension;
    let mut files = Vec::new();
    for url in listing.table_paths() {
        let store = state.runtime_env().object_store(url)?;
        let base = url.object_store();
        let mut listed = url
            .list_all_files(&state, store.as_ref(), extension)
            .await?;
        while let Some(meta) = listed.try_next().await? {
            files.push(TableFile {
                location: format!("{}{}", base.as_str(), meta.location),
                size: meta.size,
                modified_ns: meta
                    .last_modified
                    .timestamp_nanos_opt()
                    .map_or(0, |ns| ns.max(0) as u128),
                e_tag: (base.as_str() != "file:///")
                    .then_some(meta.e_tag)
                    .flatten(),
            });
        }
    }
    files.sort_by(|a, b| a.location.cmp(&b.location));
    files.dedup_by(|a, b| a.location == b.location);
    Ok(files)
}

/// Registers every parquet, CSV or JSON file and every folder holding such files
/// in `dir` as a table named after its file stem (`lineitem.parquet` and
/// `lineitem/` both become `lineitem`). Hidden and `_` entries, fairway's
/// own working files and folders (feature stage folders, temporaries,
/// locks, shuffle folders) and anything that is not a regular file or a
/// folder (a pipe, say) are skipped, and so are JSON files that cannot be
/// read as a table (with a warning). Returns the table names.
pub async fn register_tables_in(ctx: &SessionContext, dir: &str) -> Result<Vec<String>> {
    if crate::stores::is_remote(dir) {
        return register_tables_under(ctx, dir).await;
    }
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    let mut paths: Vec<_> = entries
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| EngineError::io(dir, e))?
        .into_iter()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let mut names = Vec::new();
    for path in paths {
        let file_name = path.file_name().map(|n| n.to_string_lossy().to_string());
        let Some(file_name) = file_name else { continue };
        if skipped(&file_name) {
            continue;
        }
        // Pipes, sockets, devices and dangling links are not tables.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let format = if meta.is_dir() {
            let mut found = None;
            find_format(&path, &mut found).map_err(|e| EngineError::io(&path, e))?;
            found
        } else if meta.is_file() {
            TableFormat::from_extension(&path)
        } else {
            None
        };
        let Some(format) = format else {
            continue;
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or(file_name);
        let registered = register_table(ctx, &stem, &path.to_string_lossy()).await;
        match registered {
            Ok(()) => names.push(stem),
            // A JSON file beside the data (a schema, a log) need not be a
            // table: it is skipped with a warning, where a parquet or CSV
            // table that cannot be read stops the registration.
            Err(e) if format == TableFormat::Json => {
                log::warn!("{} is not read as a table: {e}", path.display());
            }
            Err(e) => return Err(e),
        }
    }
    if names.is_empty() {
        return Err(EngineError::Table {
            table: "*".to_string(),
            path: dir.to_string(),
            message: "no .parquet, .csv or .json files or folders found".to_string(),
        });
    }
    Ok(names)
}

/// [`register_tables_in`] for an object store prefix (`s3://bucket/tpch/`):
/// every data object and every "folder" holding data objects directly
/// under it becomes a table named after its stem.
async fn register_tables_under(ctx: &SessionContext, prefix: &str) -> Result<Vec<String>> {
    let state = ctx.state();
    let error = |e: &datafusion::error::DataFusionError| {
        table_error("*", prefix, crate::error::describe_datafusion(e))
    };
    if prefix.starts_with("http") {
        return Err(table_error(
            "*",
            prefix,
            "HTTP(S) servers cannot list folders: name each file with --table",
        ));
    }
    let url = remote_url(prefix, true).map_err(|e| error(&e))?;
    let store = state
        .runtime_env()
        .object_store(&url)
        .map_err(|e| error(&e))?;
    let base = url.object_store();
    let listing = store
        .list_with_delimiter(Some(url.prefix()))
        .await
        .map_err(|e| table_error("*", prefix, crate::error::describe_store(&e)))?;
    // (name, URL, is a folder)
    let mut entries: Vec<(String, String, bool)> = Vec::new();
    for folder in &listing.common_prefixes {
        let name = folder.filename().unwrap_or_default().to_string();
        entries.push((name, format!("{}{folder}/", base.as_str()), true));
    }
    for object in &listing.objects {
        let name = object.location.filename().unwrap_or_default().to_string();
        entries.push((name, format!("{}{}", base.as_str(), object.location), false));
    }
    entries.sort();
    let mut names = Vec::new();
    for (name, location, folder) in entries {
        if skipped(&name) {
            continue;
        }
        let (stem, format) = if folder {
            let folder_url = ListingTableUrl::parse(&location).map_err(|e| error(&e))?;
            let (first, _) = first_data_object(&state, &folder_url, store.as_ref(), None)
                .await
                .map_err(|e| error(&e))?;
            let Some((_, format)) = first else { continue };
            (name, format)
        } else {
            let Some(format) = TableFormat::from_extension(Path::new(&name)) else {
                continue;
            };
            let stem = name
                .rsplit_once('.')
                .map_or(name.clone(), |(s, _)| s.to_string());
            (stem, Some(format))
        };
        match register_table(ctx, &stem, &location).await {
            Ok(()) => names.push(stem),
            Err(e) if format == Some(TableFormat::Json) => {
                log::warn!("{location} is not read as a table: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    if names.is_empty() {
        return Err(table_error(
            "*",
            prefix,
            format!("no {EXTENSIONS} objects or folders found"),
        ));
    }
    Ok(names)
}
