//! `COPY ... TO` written beside its target, then committed: a failed or
//! cancelled write leaves nothing at the target, and what was there stays
//! as it was.
//!
//! DataFusion writes a `COPY` straight into its target, so a job that
//! fails half-way leaves some files there. fairway plans the statement with
//! a temporary target instead, `.NAME.PID.RANDOM.fairway-tmp` in the same
//! folder (or under the same prefix of an object store), and moves what the
//! job wrote into place only once the job succeeded:
//!
//! - a single file (`TO 'out.parquet'`): renamed over the target (an
//!   object store's rename is a copy and a delete);
//! - a folder (`TO 'out/'`, `PARTITIONED BY`): renamed as a whole where
//!   the target does not exist; into an existing folder, every new file is
//!   moved in, and none may replace a file already there.
//!
//! `INSERT INTO` a folder table is the same write ([`insert_as_copy`]):
//! its new files appear together when the job succeeds.
//!
//! A failed job's temporary is removed. Readers of a folder skip fairway's
//! temporaries, so a write in progress is never read as data.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::SessionState;
use datafusion::logical_expr::dml::CopyTo;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{EngineError, Result};

/// A staged write and what follows its commit.
#[derive(Debug)]
pub(crate) struct Pending {
    pub staged: Staged,
    /// `CREATE TABLE ... LOCATION ... AS`: the table to register over the
    /// written location once committed (name, location, replacing one).
    pub register: Option<(String, String, bool)>,
}

/// A `COPY` whose output goes to a temporary until [`Staged::commit`].
pub(crate) enum Staged {
    LocalFile {
        temp: tempfile::NamedTempFile,
        dest: PathBuf,
    },
    LocalDir {
        temp: tempfile::TempDir,
        dest: PathBuf,
    },
    Remote {
        store: Arc<dyn ObjectStore>,
        temp: object_store::path::Path,
        dest: object_store::path::Path,
        single: bool,
        shown: String,
    },
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staged::LocalFile { dest, .. } | Staged::LocalDir { dest, .. } => {
                write!(f, "Staged({})", dest.display())
            }
            Staged::Remote { shown, .. } => write!(f, "Staged({shown})"),
        }
    }
}

/// Whether DataFusion writes `copy` as one file (see its
/// `FileOutputMode`): `single_file_output` if given, else a target that is
/// not a folder (`/` at the end) and has an extension, without
/// `PARTITIONED BY`.
fn single_file(copy: &CopyTo) -> bool {
    match copy.options.get("single_file_output").map(|v| v.trim()) {
        Some("true") => true,
        Some("false") => false,
        _ => {
            copy.partition_by.is_empty()
                && !copy.output_url.ends_with('/')
                && Path::new(copy.output_url.trim_end_matches('/'))
                    .extension()
                    .is_some()
        }
    }
}

fn random_name(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let unique = format!("{:08x}{:08x}", nanos, rand_u32());
    format!(
        ".{name}.{}.{unique}{}",
        std::process::id(),
        fairway_files::TEMP_SUFFIX
    )
}

/// A random number from the standard library's hasher seeds.
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish() as u32
}

/// Prepares `copy`: checks its target, makes the temporary and returns the
/// URL to write instead, with what commits it.
pub(crate) fn stage(state: &SessionState, copy: &CopyTo) -> Result<(String, Staged)> {
    let single = single_file(copy);
    let url = &copy.output_url;
    if crate::stores::is_remote(url) {
        let table_url = ListingTableUrl::parse(url)?;
        let store = state.runtime_env().object_store(&table_url)?;
        let dest = table_url.prefix().clone();
        let name = dest.filename().unwrap_or("output").to_string();
        let parent: Vec<_> = dest.parts().collect();
        let parent = object_store::path::Path::from_iter(
            parent[..parent.len().saturating_sub(1)].iter().cloned(),
        );
        let temp = parent.join(random_name(&name).as_str());
        let base = table_url.object_store();
        let mut temp_url = format!("{}{temp}", base.as_str());
        if !single {
            temp_url.push('/');
        }
        return Ok((
            temp_url,
            Staged::Remote {
                store,
                temp,
                dest,
                single,
                shown: url.clone(),
            },
        ));
    }
    let dest = local_path(url)
        .ok_or_else(|| EngineError::config(url.clone(), "not a local path or a known URL"))?;
    let what = "COPY target";
    fairway_files::refuse_link(&dest, what)?;
    if single {
        fairway_files::refuse_link_or_dir(&dest, what)?;
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent
            && !parent.exists()
        {
            std::fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, e))?;
        }
        let temp = fairway_files::temp_file_beside(&dest)?;
        let temp_url = temp.path().to_string_lossy().to_string();
        return Ok((temp_url, Staged::LocalFile { temp, dest }));
    }
    if dest.exists() && !dest.is_dir() {
        return Err(EngineError::file(
            &dest,
            "COPY target is a file, but the statement writes a folder (end the path with \
             '/' or name a file with an extension)",
        ));
    }
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent
        && !parent.exists()
    {
        std::fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, e))?;
    }
    let temp = fairway_files::temp_dir_beside(&dest)?;
    let temp_url = format!("{}/", temp.path().display());
    Ok((temp_url, Staged::LocalDir { temp, dest }))
}

/// `INSERT INTO t ...` where `t` is a folder table: the same write as a
/// `COPY` of the rows into that folder (with its format and partition
/// columns), so that it is staged and committed like one. `None` for any
/// other insert (a memory table, a single-file table, a glob), which
/// DataFusion runs as it is.
pub(crate) fn insert_as_copy(
    state: &SessionState,
    dml: &datafusion::logical_expr::DmlStatement,
) -> Result<Option<CopyTo>> {
    use datafusion::datasource::listing::ListingTable;
    use datafusion::datasource::source_as_provider;
    use datafusion::logical_expr::WriteOp;
    use datafusion::logical_expr::dml::InsertOp;
    if !matches!(dml.op, WriteOp::Insert(InsertOp::Append)) {
        return Ok(None);
    }
    let Ok(provider) = source_as_provider(&dml.target) else {
        return Ok(None);
    };
    let Some(listing) = provider.downcast_ref::<ListingTable>() else {
        return Ok(None);
    };
    let [path] = listing.table_paths().as_slice() else {
        return Ok(None);
    };
    if !path.is_collection() || path.get_glob().is_some() {
        return Ok(None);
    }
    let options = listing.options();
    let Some(factory) = state.get_file_format_factory(&options.format.get_ext()) else {
        return Ok(None);
    };
    let file_type = datafusion::datasource::file_format::format_as_file_type(factory);
    let table_schema = datafusion::catalog::TableProvider::schema(listing);
    let input = insert_input(dml, &table_schema, &options.file_sort_order)?;
    Ok(Some(CopyTo::new(
        input,
        path.as_str().to_string(),
        options
            .table_partition_cols
            .iter()
            .map(|(name, _)| name.clone())
            .collect(),
        file_type,
        Default::default(),
    )))
}

/// What DataFusion's own INSERT does on the way into a table's files, on
/// the input of the COPY that replaces it: rows sorted by the table's
/// declared order (`WITH ORDER`, which later scans trust), and a NULL in a
/// column the table declares `NOT NULL` an error (DataFusion's wording).
fn insert_input(
    dml: &datafusion::logical_expr::DmlStatement,
    table: &datafusion::arrow::datatypes::SchemaRef,
    sort_order: &[Vec<datafusion::logical_expr::SortExpr>],
) -> Result<Arc<datafusion::logical_expr::LogicalPlan>> {
    use datafusion::logical_expr::{Expr, LogicalPlanBuilder, ScalarUDF};
    let input = dml.input.as_ref();
    let mut checked = false;
    let columns: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .zip(input.schema().fields().iter())
        .zip(table.fields().iter())
        .enumerate()
        .map(|(i, ((column, given), target))| {
            let expr = Expr::Column(column);
            if !target.is_nullable() && given.is_nullable() {
                checked = true;
                let check = ScalarUDF::new_from_impl(NotNull::new(i));
                check.call(vec![expr]).alias(given.name())
            } else {
                expr
            }
        })
        .collect();
    let mut plan = LogicalPlanBuilder::from(input.clone());
    if checked {
        plan = plan.project(columns)?;
    }
    if let Some(order) = sort_order.first().filter(|o| !o.is_empty()) {
        plan = plan.sort(order.clone())?;
    }
    Ok(Arc::new(plan.build()?))
}

/// Passes its argument through, failing on a NULL: column `index` of an
/// INSERT's target is `NOT NULL`. Volatile, so that planning never folds
/// it into a constant.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NotNull {
    index: usize,
    signature: datafusion::logical_expr::Signature,
}

impl NotNull {
    fn new(index: usize) -> Self {
        Self {
            index,
            signature: datafusion::logical_expr::Signature::any(
                1,
                datafusion::logical_expr::Volatility::Volatile,
            ),
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for NotNull {
    fn name(&self) -> &str {
        "fairway_insert_not_null"
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        args: &[datafusion::arrow::datatypes::DataType],
    ) -> datafusion::error::Result<datafusion::arrow::datatypes::DataType> {
        Ok(args[0].clone())
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs<'_>,
    ) -> datafusion::error::Result<datafusion::arrow::datatypes::FieldRef> {
        Ok(Arc::new(
            args.arg_fields[0].as_ref().clone().with_nullable(false),
        ))
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::logical_expr::ColumnarValue;
        let value = args.args.into_iter().next().expect("one argument");
        let nulls = match &value {
            ColumnarValue::Array(array) => array.logical_nulls().map_or(0, |n| n.null_count()) > 0,
            ColumnarValue::Scalar(scalar) => scalar.is_null() && args.number_rows > 0,
        };
        if nulls {
            return Err(datafusion::error::DataFusionError::Execution(format!(
                "Invalid batch column at '{}' has null but schema specifies non-nullable",
                self.index
            )));
        }
        Ok(value)
    }
}

/// The local file system path of a table or COPY location (`file://` URL
/// or plain path); `None` for an object store URL.
pub(crate) fn local_path(location: &str) -> Option<std::path::PathBuf> {
    let url = datafusion::datasource::listing::ListingTableUrl::parse(location).ok()?;
    local_file(&url)
}

pub(crate) fn local_file(
    url: &datafusion::datasource::listing::ListingTableUrl,
) -> Option<std::path::PathBuf> {
    if url.scheme() != "file" {
        return None;
    }
    url.get_url().to_file_path().ok()
}

impl Staged {
    /// The target, as the statement named it.
    pub(crate) fn target(&self) -> String {
        match self {
            Staged::LocalFile { dest, .. } | Staged::LocalDir { dest, .. } => {
                dest.display().to_string()
            }
            Staged::Remote { shown, .. } => shown.clone(),
        }
    }

    /// Moves what the job wrote into place.
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Staged::LocalFile { temp, dest } => {
                fairway_files::refuse_link_or_dir(&dest, "COPY target")?;
                fairway_files::give_output_mode(temp.as_file(), &dest);
                temp.persist(&dest)
                    .map_err(|e| EngineError::io(&dest, e.error))?;
                Ok(())
            }
            Staged::LocalDir { temp, dest } => {
                fairway_files::refuse_link(&dest, "COPY target")?;
                if !dest.exists() {
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        let _ = std::fs::set_permissions(
                            temp.path(),
                            std::fs::Permissions::from_mode(0o755),
                        );
                    }
                    let path = temp.keep();
                    return std::fs::rename(&path, &dest).map_err(|e| {
                        let _ = std::fs::remove_dir_all(&path);
                        EngineError::io(&dest, e)
                    });
                }
                let files: Vec<PathBuf> = fairway_files::files_under(temp.path())
                    .map_err(|e| EngineError::io(temp.path(), e))?
                    .into_iter()
                    .map(|(file, _)| file)
                    .collect();
                // Nothing is moved if anything would replace a file.
                if let Some(taken) = files.iter().find(|f| dest.join(f).exists()) {
                    return Err(EngineError::file(
                        dest.join(taken),
                        "COPY would replace this file; fairway adds files to a folder, it \
                         never overwrites one",
                    ));
                }
                for file in files {
                    let target = dest.join(&file);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, e))?;
                    }
                    // Never over a file that appeared meanwhile.
                    fairway_files::move_new(&temp.path().join(&file), &target)?;
                }
                Ok(())
            }
            Staged::Remote {
                store,
                temp,
                dest,
                single,
                shown,
            } => {
                let failed = |e: object_store::Error| EngineError::Table {
                    table: "COPY".to_string(),
                    path: shown.clone(),
                    message: crate::error::describe_store(&e),
                };
                if single {
                    return store.rename(&temp, &dest).await.map_err(failed);
                }
                let written: Vec<_> = store
                    .list(Some(&temp))
                    .try_collect()
                    .await
                    .map_err(failed)?;
                let temp_parts = temp.parts().count();
                for object in written {
                    let relative: Vec<_> = object.location.parts().skip(temp_parts).collect();
                    let mut target = dest.clone();
                    for part in relative {
                        target = target.join(part);
                    }
                    store
                        .rename(&object.location, &target)
                        .await
                        .map_err(failed)?;
                }
                Ok(())
            }
        }
    }

    /// Removes what a failed job wrote (the local temporaries remove
    /// themselves when dropped).
    pub(crate) async fn abandon(self) {
        if let Staged::Remote {
            store,
            temp,
            single,
            ..
        } = self
        {
            if single {
                let _ = store.delete(&temp).await;
                return;
            }
            let written: Vec<_> = store
                .list(Some(&temp))
                .try_collect()
                .await
                .unwrap_or_default();
            for object in written {
                let _ = store.delete(&object.location).await;
            }
        }
    }
}

/// `CREATE TABLE name [STORED AS fmt] LOCATION 'path' AS query` (Hive's
/// and Spark's spelling; DataFusion refuses it): the rows written to
/// `path` as a `COPY` would (staged, committed when the job succeeds), then
/// `name` registered over them.
#[derive(Debug, Clone)]
pub(crate) struct CreateAtLocation {
    pub name: String,
    pub location: String,
    pub format: &'static str,
    pub query: String,
    pub or_replace: bool,
    pub if_not_exists: bool,
}

/// The `CREATE TABLE ... LOCATION ... AS` of `statement`, if it is one.
pub(crate) fn create_at_location(
    statement: &datafusion::sql::parser::Statement,
) -> Result<Option<CreateAtLocation>> {
    use datafusion::sql::parser::Statement;
    use datafusion::sql::sqlparser::ast::{FileFormat, HiveIOFormat, Statement as Sql};
    let Statement::Statement(inner) = statement else {
        return Ok(None);
    };
    let Sql::CreateTable(create) = inner.as_ref() else {
        return Ok(None);
    };
    let hive = create.hive_formats.as_ref();
    let location = create
        .location
        .clone()
        .or_else(|| hive.and_then(|h| h.location.clone()));
    let (Some(location), Some(query)) = (location, &create.query) else {
        return Ok(None);
    };
    let stored = create.file_format.or_else(|| {
        hive.and_then(|h| match &h.storage {
            Some(HiveIOFormat::FileFormat { format }) => Some(*format),
            _ => None,
        })
    });
    let name = create.name.to_string();
    let format = match stored {
        None | Some(FileFormat::PARQUET) => "parquet",
        Some(FileFormat::JSONFILE) => "json",
        Some(FileFormat::TEXTFILE) => "csv",
        Some(other) => {
            return Err(EngineError::Table {
                table: name,
                path: location,
                message: format!(
                    "CREATE TABLE ... STORED AS {other} cannot be written: parquet, JSONFILE \
                     (JSON lines) or TEXTFILE (CSV)"
                ),
            });
        }
    };
    if !create.columns.is_empty() {
        return Err(EngineError::Table {
            table: name,
            path: location,
            message: "CREATE TABLE ... AS takes its columns from the query; drop the column list"
                .to_string(),
        });
    }
    let name = create
        .name
        .0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) if ident.quote_style.is_none() => ident.value.to_ascii_lowercase(),
            Some(ident) => ident.value.clone(),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".");
    Ok(Some(CreateAtLocation {
        name,
        location,
        format,
        query: query.to_string(),
        or_replace: create.or_replace,
        if_not_exists: create.if_not_exists,
    }))
}

/// Whether the location of a new table already holds anything: a local
/// file or a non-empty folder, or objects under the prefix.
pub(crate) async fn location_in_use(state: &SessionState, location: &str) -> Result<bool> {
    if !crate::stores::is_remote(location) {
        let Some(path) = local_path(location) else {
            return Ok(false);
        };
        return Ok(match std::fs::symlink_metadata(&path) {
            Err(_) => false,
            Ok(meta) if meta.is_dir() => std::fs::read_dir(&path)
                .map_err(|e| EngineError::io(&path, e))?
                .next()
                .is_some(),
            Ok(_) => true,
        });
    }
    let url = ListingTableUrl::parse(location)?;
    let store = state.runtime_env().object_store(&url)?;
    let mut listed = store.list(Some(url.prefix()));
    let first = listed.try_next().await.map_err(|e| EngineError::Table {
        table: "CREATE TABLE".to_string(),
        path: location.to_string(),
        message: crate::error::describe_store(&e),
    })?;
    Ok(first.is_some())
}
