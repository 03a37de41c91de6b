//! `df.write.parquet/csv/json(path, mode=...)`: a folder of part files and
//! a `_SUCCESS` marker, as Spark writes, under fairway's file rules.
//!
//! - The new folder is filled beside the target under a random temporary
//!   name and renamed into place, so a failed write leaves nothing behind
//!   and earlier outputs untouched.
//! - `error` (the default) refuses an existing path; `ignore` leaves it.
//! - `overwrite` replaces only a folder that fairway wrote (its
//!   `_SUCCESS` says so and it holds nothing but part files); anything
//!   else is refused, never deleted.
//! - `append` adds part files under fresh names to an existing folder.
//! - Links are never followed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fairway_engine::arrow::array::RecordBatch;
use fairway_engine::arrow::datatypes::SchemaRef;
use fairway_files::{TEMP_SUFFIX, temp_dir_beside};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Result, SparkError};
use crate::types::{spark_arrow_schema, to_spark_batch};

/// What `_SUCCESS` holds in a folder fairway wrote.
pub const SUCCESS_TEXT: &str = "written by fairway connect\n";

/// The save modes of `DataFrameWriter.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    ErrorIfExists,
    Ignore,
    Overwrite,
    Append,
}

/// The file formats `write` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFormat {
    Parquet,
    Csv,
    Json,
}

impl WriteFormat {
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "parquet" | "" => Ok(Self::Parquet),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(SparkError::unsupported(format!(
                "writing the format '{other}' (parquet, csv and json are supported)"
            ))),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "snappy.parquet",
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

/// Options of one write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub format: WriteFormat,
    pub mode: SaveMode,
    /// CSV: write a header line (Spark's `header` option, off by default).
    pub header: bool,
    pub delimiter: u8,
}

fn refused(path: &Path, message: impl std::fmt::Display) -> SparkError {
    SparkError::analysis(
        "PATH_ALREADY_EXISTS",
        format!("Path file:{} {message}", path.display()),
    )
}

/// Whether `dir` is a folder fairway wrote: its `_SUCCESS` is fairway's
/// and every entry is a part file or the marker.
fn written_by_fairway(dir: &Path) -> bool {
    let Ok(marker) = std::fs::read_to_string(dir.join("_SUCCESS")) else {
        return false;
    };
    if marker != SUCCESS_TEXT {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().all(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let plain_file = e.file_type().is_ok_and(|t| t.is_file());
        plain_file && (name == "_SUCCESS" || name.starts_with("part-"))
    })
}

/// Whether a write in `mode` may go to `path`: an error for what the mode
/// refuses (an existing path for `error`, a folder fairway did not write
/// for `overwrite`, a file for `append`, any link), `false` when `ignore`
/// finds the path. Called before the job runs, so that a refused write
/// costs nothing, and again before the files are written.
pub fn check_target(path: &Path, mode: SaveMode) -> Result<bool> {
    let meta = std::fs::symlink_metadata(path);
    let exists = meta.is_ok();
    if let Ok(m) = &meta
        && m.file_type().is_symlink()
    {
        return Err(refused(
            path,
            "is a symbolic link; fairway does not write through links.",
        ));
    }
    match mode {
        SaveMode::ErrorIfExists if exists => Err(refused(
            path,
            "already exists. Set mode as \"overwrite\" to overwrite the existing path.",
        )),
        SaveMode::Ignore if exists => Ok(false),
        SaveMode::Overwrite if exists && !(path.is_dir() && written_by_fairway(path)) => {
            Err(refused(
                path,
                "already exists and fairway did not write it (no fairway _SUCCESS marker, or \
                 files other than part files): fairway only replaces its own outputs. Remove it \
                 yourself or write elsewhere.",
            ))
        }
        SaveMode::Append if exists && !path.is_dir() => Err(refused(
            path,
            "is not a folder; cannot append part files to it.",
        )),
        _ => Ok(true),
    }
}

/// Writes `batches` to `path` as `options` say. Returns the number of part
/// files written (0 when `ignore` found the path).
pub fn write(
    path: &Path,
    batches: &[RecordBatch],
    schema: &SchemaRef,
    options: &WriteOptions,
) -> Result<usize> {
    // Checked again here: the path may have changed while the job ran.
    if !check_target(path, options.mode)? {
        return Ok(0);
    }
    let exists = std::fs::symlink_metadata(path).is_ok();
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    }
    let temp =
        temp_dir_beside(path).map_err(|e| SparkError::analysis("FILE_ERROR", e.to_string()))?;
    let target = spark_arrow_schema(schema);
    let batches = batches
        .iter()
        .map(|b| to_spark_batch(b, &target))
        .collect::<Result<Vec<_>>>()?;
    let id = uuid::Uuid::new_v4();
    let part = format!("part-00000-{id}-c000.{}", options.format.extension());
    let part_path = temp.path().join(&part);
    write_part(&part_path, &batches, &target, options)?;
    match options.mode {
        SaveMode::Append if exists => {
            let dest = path.join(&part);
            if std::fs::symlink_metadata(&dest).is_ok() {
                return Err(refused(&dest, "already exists."));
            }
            std::fs::rename(&part_path, &dest).map_err(|e| io_error(&dest, e))?;
        }
        _ => {
            std::fs::write(temp.path().join("_SUCCESS"), SUCCESS_TEXT)
                .map_err(|e| io_error(temp.path(), e))?;
            let done = temp.keep();
            if exists {
                // Overwrite: move the old folder aside, the new one in,
                // then remove the old one (fairway's own, checked above).
                let old = aside_name(path);
                std::fs::rename(path, &old).map_err(|e| io_error(path, e))?;
                if let Err(e) = std::fs::rename(&done, path) {
                    let _ = std::fs::rename(&old, path);
                    let _ = std::fs::remove_dir_all(&done);
                    return Err(io_error(path, e));
                }
                let _ = std::fs::remove_dir_all(&old);
            } else if let Err(e) = rename_new(&done, path) {
                let _ = std::fs::remove_dir_all(&done);
                return Err(e);
            }
        }
    }
    Ok(1)
}

/// Whether a write in `mode` may go to the object store folder `prefix`
/// (as [`check_target`] for a local path): an error for what the mode
/// refuses, `None` when `ignore` finds objects there, else the objects
/// there now (which `overwrite` replaces).
pub async fn check_remote(
    url: &str,
    store: &dyn object_store::ObjectStore,
    prefix: &object_store::path::Path,
    mode: SaveMode,
) -> Result<Option<Vec<object_store::ObjectMeta>>> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let failed =
        |e: &dyn std::fmt::Display| SparkError::analysis("FILE_ERROR", format!("{url}: {e}"));
    let existing: Vec<object_store::ObjectMeta> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| failed(&e))?;
    let marker = prefix.clone().join("_SUCCESS");
    if !existing.is_empty() {
        match mode {
            SaveMode::Ignore => return Ok(None),
            SaveMode::ErrorIfExists => {
                return Err(SparkError::analysis(
                    "PATH_ALREADY_EXISTS",
                    format!(
                        "Path {url} already exists. Set mode as \"overwrite\" to overwrite \
                         the existing path."
                    ),
                ));
            }
            SaveMode::Overwrite => {
                let depth = prefix.parts().count();
                let ours = existing.iter().all(|o| {
                    let rest: Vec<_> = o.location.parts().skip(depth).collect();
                    matches!(rest.as_slice(), [name]
                        if name.as_ref() == "_SUCCESS" || name.as_ref().starts_with("part-"))
                });
                let marked = match store.get(&marker).await {
                    Ok(got) => {
                        got.bytes().await.map_err(|e| failed(&e))?.as_ref()
                            == SUCCESS_TEXT.as_bytes()
                    }
                    Err(_) => false,
                };
                if !(ours && marked) {
                    return Err(SparkError::analysis(
                        "PATH_ALREADY_EXISTS",
                        format!(
                            "Path {url} is not a folder fairway wrote (no fairway _SUCCESS \
                             marker, or other objects in it); fairway overwrites only its own \
                             output."
                        ),
                    ));
                }
            }
            SaveMode::Append => {}
        }
    }
    Ok(Some(existing))
}

/// [`write`] to an object store folder (`s3a://bucket/out`): the part
/// file is written locally, then uploaded as one object (an object
/// appears whole or not at all), then the `_SUCCESS` marker. `overwrite`
/// replaces only a folder fairway wrote (its `_SUCCESS` and part files
/// only): the new part goes up first and the old ones are deleted after,
/// so a failure never loses the old data. Returns the number of part
/// files written (0 when `ignore` found the folder).
pub async fn write_remote(
    url: &str,
    store: Arc<dyn object_store::ObjectStore>,
    prefix: object_store::path::Path,
    batches: &[RecordBatch],
    schema: &SchemaRef,
    options: &WriteOptions,
) -> Result<usize> {
    use object_store::ObjectStoreExt;
    let failed =
        |e: &dyn std::fmt::Display| SparkError::analysis("FILE_ERROR", format!("{url}: {e}"));
    let Some(existing) = check_remote(url, store.as_ref(), &prefix, options.mode).await? else {
        return Ok(0);
    };
    let marker = prefix.clone().join("_SUCCESS");
    let temp = tempfile::tempdir().map_err(|e| failed(&e))?;
    let target = spark_arrow_schema(schema);
    let batches = batches
        .iter()
        .map(|b| to_spark_batch(b, &target))
        .collect::<Result<Vec<_>>>()?;
    let part = format!(
        "part-00000-{}-c000.{}",
        uuid::Uuid::new_v4(),
        options.format.extension()
    );
    let local = temp.path().join(&part);
    write_part(&local, &batches, &target, options)?;
    // Uploaded in parts, so an output of any size is one object.
    let location = prefix.clone().join(part.as_str());
    fairway_engine::upload_file(Arc::clone(&store), location.clone(), &local)
        .await
        .map_err(|e| failed(&e))?;
    if options.mode == SaveMode::Overwrite {
        for old in existing.iter().filter(|o| o.location != marker) {
            store.delete(&old.location).await.map_err(|e| failed(&e))?;
        }
    }
    if options.mode != SaveMode::Append || existing.is_empty() {
        store
            .put(&marker, SUCCESS_TEXT.as_bytes().to_vec().into())
            .await
            .map_err(|e| failed(&e))?;
    }
    Ok(1)
}

/// Renames `from` to a `to` that must not exist (an empty folder created
/// there meanwhile would otherwise be replaced).
fn rename_new(from: &Path, to: &Path) -> Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(refused(to, "appeared while writing; nothing was replaced."));
    }
    std::fs::rename(from, to).map_err(|e| io_error(to, e))
}

fn aside_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}.old{TEMP_SUFFIX}",
        uuid::Uuid::new_v4().simple()
    ))
}

fn io_error(path: &Path, e: std::io::Error) -> SparkError {
    SparkError::analysis("FILE_ERROR", format!("{}: {e}", path.display()))
}

fn write_part(
    path: &Path,
    batches: &[RecordBatch],
    schema: &SchemaRef,
    options: &WriteOptions,
) -> Result<()> {
    let file = File::create_new(path).map_err(|e| io_error(path, e))?;
    let fail = |e: &dyn std::fmt::Display| {
        SparkError::analysis("FILE_ERROR", format!("{}: {e}", path.display()))
    };
    match options.format {
        WriteFormat::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build();
            let mut writer = ArrowWriter::try_new(file, Arc::clone(schema), Some(props))
                .map_err(|e| fail(&e))?;
            for batch in batches {
                writer.write(batch).map_err(|e| fail(&e))?;
            }
            writer.close().map_err(|e| fail(&e))?;
        }
        WriteFormat::Csv => {
            let mut writer = fairway_engine::arrow::csv::WriterBuilder::new()
                .with_header(options.header)
                .with_delimiter(options.delimiter)
                .build(file);
            for batch in batches {
                writer.write(batch).map_err(|e| fail(&e))?;
            }
        }
        WriteFormat::Json => {
            let mut writer = fairway_engine::arrow::json::LineDelimitedWriter::new(file);
            for batch in batches {
                writer.write(batch).map_err(|e| fail(&e))?;
            }
            writer.finish().map_err(|e| fail(&e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use fairway_engine::arrow::array::Int64Array;
    use fairway_engine::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn data() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        (schema, vec![batch])
    }

    fn options(mode: SaveMode) -> WriteOptions {
        WriteOptions {
            format: WriteFormat::Csv,
            mode,
            header: true,
            delimiter: b',',
        }
    }

    #[test]
    fn modes_follow_spark_and_never_touch_foreign_folders() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let (schema, batches) = data();
        write(&out, &batches, &schema, &options(SaveMode::ErrorIfExists)).unwrap();
        assert!(written_by_fairway(&out));
        assert!(write(&out, &batches, &schema, &options(SaveMode::ErrorIfExists)).is_err());
        assert_eq!(
            write(&out, &batches, &schema, &options(SaveMode::Ignore)).unwrap(),
            0
        );
        write(&out, &batches, &schema, &options(SaveMode::Append)).unwrap();
        let parts = || {
            std::fs::read_dir(&out)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("part-")
                })
                .count()
        };
        assert_eq!(parts(), 2);
        write(&out, &batches, &schema, &options(SaveMode::Overwrite)).unwrap();
        assert_eq!(parts(), 1);
        // A folder fairway did not write is never replaced.
        let foreign = dir.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("mine.txt"), "keep").unwrap();
        assert!(write(&foreign, &batches, &schema, &options(SaveMode::Overwrite)).is_err());
        assert_eq!(
            std::fs::read_to_string(foreign.join("mine.txt")).unwrap(),
            "keep"
        );
        // Nothing temporary is left beside the outputs.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (schema, batches) = data();
        assert!(write(&link, &batches, &schema, &options(SaveMode::Overwrite)).is_err());
        assert!(write(&link, &batches, &schema, &options(SaveMode::Append)).is_err());
        assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    }
}
