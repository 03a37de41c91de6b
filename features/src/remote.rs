//! Feature outputs on object stores (`--out s3://bucket/features.parquet`).
//!
//! The build runs exactly as for a local output, against a local shadow of
//! the output in fairway's cache folder
//! (`$XDG_CACHE_HOME/fairway/features-remote/<hash of the URL>/`, else
//! `~/.cache/...`): its stage folder, manifest and lock live there, so an
//! incremental rebuild reuses what the last build on this machine
//! computed. When the build succeeded, the output file is uploaded as one
//! object (in parts, completed last), so readers of the URL see the old
//! table or the new one, never a part of it.

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
    use tokio::io::AsyncWriteExt;
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
    let location = table_url.prefix().clone();
    let mut upload = object_store::buffered::BufWriter::new(Arc::clone(&store), location);
    let mut file = tokio::fs::File::open(local)
        .await
        .map_err(|e| FeatureError::io(local, e))?;
    let copied = async {
        tokio::io::copy(&mut file, &mut upload).await?;
        upload.shutdown().await
    };
    copied.await.map_err(|e| failed(e.to_string()))?;
    Ok(())
}
