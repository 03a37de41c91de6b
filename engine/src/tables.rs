//! Registering parquet and CSV files, folders and globs as tables.

use std::ops::ControlFlow;
use std::path::Path;

use datafusion::datasource::listing::ListingTable;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use futures::TryStreamExt;

use crate::error::{EngineError, Result};

/// File formats fairway reads as tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Parquet,
    Csv,
    /// JSON (`.json`, `.ndjson`, `.jsonl`): one object per line, as Spark's
    /// `spark.read.json` reads it, or one array of objects.
    Json,
}

impl TableFormat {
    fn from_extension(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "parquet" | "parq" => Some(TableFormat::Parquet),
            "csv" => Some(TableFormat::Csv),
            "json" | "ndjson" | "jsonl" => Some(TableFormat::Json),
            _ => None,
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
            .ok_or_else(|| table_error(table, path, "a glob must end in .parquet, .csv or .json"));
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
                "not a .parquet, .csv or .json (.ndjson, .jsonl) file",
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
        .ok_or_else(|| table_error(table, path, "folder holds no .parquet, .csv or .json files"))?;
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

/// Registers `path` (a parquet, CSV or newline-delimited JSON file, a
/// folder of them, or a glob) as table `name` of `ctx`. CSV files must have
/// a header row; a JSON table's schema is inferred from its rows.
pub async fn register_table(ctx: &SessionContext, name: &str, path: &str) -> Result<()> {
    let format = detect_format(name, path)?;
    let mut location = path.to_string();
    if !is_glob(path) && Path::new(path).is_dir() && !location.ends_with('/') {
        location.push('/');
    }
    let p = Path::new(path);
    // A file's or glob's own extension; a folder's is its format's (for
    // JSON, that of its first JSON file, which also tells whether it is
    // one array of objects).
    let own = p
        .extension()
        .filter(|_| !p.is_dir())
        .map(|e| format!(".{}", e.to_string_lossy()));
    let result = match format {
        TableFormat::Parquet => {
            let ext = own.unwrap_or_else(|| ".parquet".to_string());
            let options = ParquetReadOptions::default().file_extension(&ext);
            ctx.register_parquet(name, &location, options).await
        }
        TableFormat::Csv => {
            let ext = own.unwrap_or_else(|| ".csv".to_string());
            let options = CsvReadOptions::new().has_header(true).file_extension(&ext);
            ctx.register_csv(name, &location, options).await
        }
        TableFormat::Json => {
            let first = if p.is_dir() {
                first_json_file(p)
            } else {
                Some(p.to_path_buf())
            };
            let ext = own
                .or_else(|| {
                    first
                        .as_ref()
                        .and_then(|f| f.extension().map(|e| format!(".{}", e.to_string_lossy())))
                })
                .unwrap_or_else(|| ".json".to_string());
            let mut options = JsonReadOptions::default().file_extension(&ext);
            // A file that opens with `[` holds one JSON array of objects;
            // otherwise one object per line.
            options.newline_delimited = !first.as_deref().is_some_and(opens_with_bracket);
            ctx.register_json(name, &location, options).await
        }
    };
    result.map_err(|e| table_error(name, path, crate::error::describe_datafusion(&e)))
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
