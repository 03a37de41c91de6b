//! Feature outputs on object stores (`--out s3://bucket/features.parquet`).
//!
//! The build runs exactly as for a local output, against a local shadow of
//! the output in fairway's cache folder
//! (`$XDG_CACHE_HOME/fairway/features-remote/<hash of the URL>/`, else
//! `~/.cache/...`): its stage folder, manifest and lock live there, so an
//! incremental rebuild reuses what the last build on this machine
//! computed. The stage area is also kept on the store, beside the output
//! (`<url>.fairway-stage/`): a machine without a local copy restores it
//! from there first, so a rebuild anywhere reuses the unchanged methods.
//! When the build succeeded, the stage area is mirrored up (the manifest
//! last) and then the output file is uploaded as one object (in parts,
//! completed last), so readers of the URL see the old table or the new
//! one, never a part of it. The lock stays local: two machines building
//! the same URL at once are not kept apart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fairway_engine::EngineConfig;
use fairway_engine::datafusion::datasource::listing::ListingTableUrl;
use fairway_engine::datafusion::execution::object_store::ObjectStoreRegistry;

use crate::error::{FeatureError, Result};
use crate::spec::FeatureSpec;

/// The URL of an output on an object store, or `None` for a local path.
pub(crate) fn remote_output(output: &Path) -> Option<String> {
    let text = output.to_str()?;
    fairway_engine::is_remote(text).then(|| text.to_string())
}

/// The local shadow of output `url`: `<cache folder>/<16 hex digits of
/// the URL's hash>/<the object's name>`.
pub(crate) fn shadow(url: &str, cache_dir: Option<&Path>) -> Result<PathBuf> {
    let default = || {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|cache| cache.join("fairway/features-remote"))
    };
    let cache = cache_dir
        .map(Path::to_path_buf)
        .or_else(default)
        .ok_or_else(|| {
            FeatureError::config(
                "--out",
                format!("{url}: no cache folder for its local copy (set XDG_CACHE_HOME or HOME)"),
            )
        })?;
    let hash = blake3::hash(url.as_bytes()).to_hex();
    let name = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("features.parquet");
    let dir = cache.join(&hash.as_str()[..16]);
    std::fs::create_dir_all(&dir).map_err(|e| FeatureError::io(&dir, e))?;
    Ok(dir.join(name))
}

/// Refuses an output URL that is one of the spec's sources or lies under
/// one (the build would overwrite what it reads).
pub(crate) fn refuse_onto_source(spec: &FeatureSpec, url: &str) -> Result<()> {
    for source in &spec.sources {
        let base = source.path.trim_end_matches('/');
        if url == base || url.starts_with(&format!("{base}/")) {
            return Err(FeatureError::refused(
                PathBuf::from(url),
                format!(
                    "the output would overwrite source '{}' ({}); choose another output",
                    source.name, source.path
                ),
            ));
        }
    }
    Ok(())
}

/// Uploads the built `local` file to `url` as one object, with the
/// stores of `config` (`fairway.store.*` and the environment).
pub(crate) async fn upload(local: &Path, url: &str, config: &EngineConfig) -> Result<()> {
    let (store, location) = store_of(url, config)?;
    fairway_engine::upload_file(store, location, local)
        .await
        .map_err(|e| {
            FeatureError::from(fairway_engine::EngineError::Table {
                table: "output".to_string(),
                path: url.to_string(),
                message: e.to_string(),
            })
        })
}

/// The store and location of `url`, with the stores of `config`.
fn store_of(
    url: &str,
    config: &EngineConfig,
) -> Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
    let failed = |message: String| {
        FeatureError::from(fairway_engine::EngineError::Table {
            table: "output".to_string(),
            path: url.to_string(),
            message,
        })
    };
    let table_url = ListingTableUrl::parse(url).map_err(|e| failed(e.to_string()))?;
    let registry = fairway_engine::StoreRegistry::new(config.stores.clone());
    let store = registry
        .get_store(table_url.get_url())
        .map_err(|e| failed(fairway_engine::EngineError::from(e).to_string()))?;
    Ok((store, table_url.prefix().clone()))
}

fn store_failed(url: &str, e: impl std::fmt::Display) -> FeatureError {
    FeatureError::from(fairway_engine::EngineError::Table {
        table: "stage area".to_string(),
        path: url.to_string(),
        message: e.to_string(),
    })
}

/// The stage area of output `url` on the store.
fn remote_stage(url: &str) -> String {
    format!("{}.fairway-stage/", url.trim_end_matches('/'))
}

/// The local stage area of the shadow output `local`.
fn local_stage(local: &Path) -> PathBuf {
    let mut name = local.as_os_str().to_owned();
    name.push(".fairway-stage");
    PathBuf::from(name)
}

/// Every file of the stage area `dir` (relative, `/`-separated) with its
/// size; fairway's own working files (temporaries) left out.
fn local_files(dir: &Path) -> std::io::Result<Vec<(String, u64)>> {
    Ok(fairway_files::files_under(dir)?
        .into_iter()
        .filter(|(file, _)| {
            !file
                .file_name()
                .is_some_and(|n| fairway_files::is_fairway_own(&n.to_string_lossy()))
        })
        .map(|(file, size)| (file.to_string_lossy().replace('\\', "/"), size))
        .collect())
}

/// The objects of the stage area beside `url` on the store, each with its
/// path parts under the stage area.
async fn stage_objects(
    url: &str,
    config: &EngineConfig,
) -> Result<(
    Arc<dyn object_store::ObjectStore>,
    object_store::path::Path,
    Vec<(Vec<String>, object_store::ObjectMeta)>,
)> {
    use futures::TryStreamExt;
    let remote = remote_stage(url);
    let (store, prefix) = store_of(&remote, config)?;
    let objects: Vec<object_store::ObjectMeta> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| store_failed(&remote, e))?;
    let depth = prefix.parts().count();
    let objects = objects
        .into_iter()
        .map(|o| {
            let parts = o
                .location
                .parts()
                .skip(depth)
                .map(|p| p.as_ref().to_string())
                .collect();
            (parts, o)
        })
        .collect();
    Ok((store, prefix, objects))
}

/// Restores the stage area of `url` from the store into the local shadow
/// `local`'s, when there is none here yet. Returns the files fetched.
pub(crate) async fn restore_stage(local: &Path, url: &str, config: &EngineConfig) -> Result<usize> {
    use object_store::ObjectStoreExt;
    let stage = local_stage(local);
    if stage.join("manifest.json").is_file() {
        return Ok(0);
    }
    let remote = remote_stage(url);
    let (store, _, objects) = stage_objects(url, config).await?;
    let mut fetched = 0;
    for (parts, object) in objects {
        if parts.is_empty() || parts.iter().any(|p| p == ".." || p.starts_with('.')) {
            continue;
        }
        let target = parts
            .iter()
            .fold(stage.clone(), |path, part| path.join(part));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FeatureError::io(parent, e))?;
        }
        let bytes = store
            .get(&object.location)
            .await
            .map_err(|e| store_failed(&remote, e))?
            .bytes()
            .await
            .map_err(|e| store_failed(&remote, e))?;
        fairway_files::write_atomically(&target, |file| {
            use std::io::Write;
            file.write_all(&bytes)
                .map_err(|e| FeatureError::io(&target, e))
        })?;
        fetched += 1;
    }
    Ok(fetched)
}

/// Mirrors the local stage area of `local` to the store beside `url`:
/// new and changed files up (the manifest last), files the build removed
/// deleted there.
pub(crate) async fn save_stage(local: &Path, url: &str, config: &EngineConfig) -> Result<()> {
    use object_store::ObjectStoreExt;
    let stage = local_stage(local);
    let remote = remote_stage(url);
    let (store, prefix, objects) = stage_objects(url, config).await?;
    let files = local_files(&stage).map_err(|e| FeatureError::io(&stage, e))?;
    let there: std::collections::HashMap<String, u64> = objects
        .iter()
        .map(|(parts, o)| (parts.join("/"), o.size))
        .collect();
    let location = |rel: &str| {
        rel.split('/')
            .fold(prefix.clone(), |path, part| path.join(part))
    };
    let (manifest, rest): (Vec<_>, Vec<_>) =
        files.iter().partition(|(rel, _)| rel == "manifest.json");
    for (rel, size) in rest.into_iter().chain(manifest) {
        if rel != "manifest.json" && there.get(rel) == Some(size) {
            continue;
        }
        fairway_engine::upload_file(Arc::clone(&store), location(rel), &stage.join(rel))
            .await
            .map_err(|e| store_failed(&remote, e))?;
    }
    let kept: std::collections::HashSet<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
    for (parts, object) in &objects {
        if !kept.contains(parts.join("/").as_str()) {
            store
                .delete(&object.location)
                .await
                .map_err(|e| store_failed(&remote, e))?;
        }
    }
    Ok(())
}
