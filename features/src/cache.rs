//! The stage area beside the output: each method's materialised result in
//! a folder named after its fingerprint, and a manifest of the last
//! successful build, which lets an unchanged method reuse its result.
//!
//! The stage area may hold a user's files too: fairway deletes only the
//! entries it recorded in the manifest as its own (result folders, named
//! `<method>-<16 hex digits>`), never follows a link there, and leaves
//! everything else alone. Temporaries (spilled views, folders being
//! written) have the random names of [`fairway_files`] and are removed when
//! the build ends or, if it died, by the next build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::spec::{Body, FeatureSpec};
use crate::error::{FeatureError, Result};

/// Bumped when the way results are materialised changes, so old stage
/// folders are never reused by a newer fairway.
const FORMAT: &str = "fairway-features-1";

/// One file of a source as seen when the build was planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub path: String,
    pub size: u64,
    pub modified_ns: u128,
    /// An object store's ETag (none for local files).
    pub e_tag: Option<String>,
}

/// Every source and view a definition reads, directly or through views
/// (names in lower case).
#[derive(Debug, Clone, Default)]
pub(crate) struct Lineage {
    pub sources: BTreeSet<String>,
    pub views: BTreeSet<String>,
}

/// The lineage of `reads` (a definition's direct reads) through the views
/// of `spec`; `direct` maps each view to its direct reads.
pub(crate) fn lineage(reads: &[String], direct: &BTreeMap<String, Vec<String>>) -> Lineage {
    let mut lineage = Lineage::default();
    let mut todo: Vec<String> = reads.to_vec();
    while let Some(name) = todo.pop() {
        if let Some(next) = direct.get(&name) {
            if lineage.views.insert(name) {
                todo.extend(next.iter().cloned());
            }
        } else {
            lineage.sources.insert(name);
        }
    }
    lineage
}

/// A stable hash of everything a method's result depends on: the format,
/// the key, the method's normalised definition, the definitions of the views
/// it reads (transitively) and, for every source it reads, each file's path,
/// size and modification time.
pub(crate) fn fingerprint(
    spec: &FeatureSpec,
    method: &super::spec::Definition,
    lineage: &Lineage,
    files: &BTreeMap<String, Vec<FileStamp>>,
) -> String {
    let mut hasher = blake3::Hasher::new();
    let mut put = |label: &str, value: &str| {
        hasher.update(label.as_bytes());
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    };
    put("format", FORMAT);
    put("key", &spec.key.join("\u{1}"));
    put("method", &method.normalised());
    put(
        "duplicates",
        if method.allow_duplicate_keys {
            "allowed"
        } else {
            "refused"
        },
    );
    put(
        "nulls",
        if method.allow_null_keys {
            "allowed"
        } else {
            "refused"
        },
    );
    let casts: Vec<String> = spec
        .build
        .key_cast
        .iter()
        .map(|(k, t)| format!("{k}={t}"))
        .collect();
    put("key_cast", &casts.join("\u{1}"));
    for view in &lineage.views {
        if let Some(def) = spec.view(view) {
            put("view", &format!("{view}={}", def.normalised()));
        }
    }
    for source in &lineage.sources {
        put("source", source);
        for file in files.get(source).into_iter().flatten() {
            let mut stamp = format!("{}|{}|{}", file.path, file.size, file.modified_ns);
            if let Some(tag) = &file.e_tag {
                stamp.push('|');
                stamp.push_str(tag);
            }
            put("file", &stamp);
        }
    }
    hasher.finalize().to_hex()[..16].to_string()
}

/// What the last successful build recorded for one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestEntry {
    pub fingerprint: String,
    pub folder: String,
    pub rows: usize,
}

/// `<stage>/manifest.json`: the methods of the last successful build, and
/// the stage entries fairway created and has not deleted yet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Manifest {
    pub methods: BTreeMap<String, ManifestEntry>,
    /// Result folders fairway created (the methods' and older ones): the
    /// only entries of the stage area it may replace or delete. Written
    /// before a build creates one, so a failed build's are known too.
    pub owned: BTreeSet<String>,
}

/// Whether `name` is a result folder's: `<method>-<16 hex digits>`.
pub(crate) fn is_result_folder(name: &str) -> bool {
    let Some((method, hash)) = name.rsplit_once('-') else {
        return false;
    };
    !method.is_empty()
        && method
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && hash.len() == 16
        && hash.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

impl Manifest {
    pub fn path(stage: &Path) -> PathBuf {
        stage.join("manifest.json")
    }

    /// The manifest in `stage`, or an empty one when there is none or it
    /// cannot be read (then nothing is reused).
    pub fn read(stage: &Path) -> Manifest {
        let Ok(text) = std::fs::read_to_string(Self::path(stage)) else {
            return Manifest::default();
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            return Manifest::default();
        };
        if value["format"] != FORMAT {
            return Manifest::default();
        }
        let mut methods = BTreeMap::new();
        let mut owned = BTreeSet::new();
        if let Some(names) = value["owned"].as_array() {
            owned.extend(
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|n| is_result_folder(n))
                    .map(str::to_string),
            );
        }
        if let Some(map) = value["methods"].as_object() {
            for (name, entry) in map {
                if let (Some(fingerprint), Some(folder), Some(rows)) = (
                    entry["fingerprint"].as_str(),
                    entry["folder"].as_str(),
                    entry["rows"].as_u64(),
                ) {
                    if !is_result_folder(folder) {
                        continue;
                    }
                    owned.insert(folder.to_string());
                    methods.insert(
                        name.clone(),
                        ManifestEntry {
                            fingerprint: fingerprint.to_string(),
                            folder: folder.to_string(),
                            rows: rows as usize,
                        },
                    );
                }
            }
        }
        Manifest { methods, owned }
    }

    /// Writes the manifest atomically (a fresh temporary, then rename); a
    /// manifest that is a link or a folder is refused.
    pub fn write(&self, stage: &Path) -> Result<()> {
        let methods: serde_json::Map<String, Value> = self
            .methods
            .iter()
            .map(|(name, e)| {
                (
                    name.clone(),
                    json!({"fingerprint": e.fingerprint, "folder": e.folder, "rows": e.rows}),
                )
            })
            .collect();
        let owned: Vec<&str> = self.owned.iter().map(String::as_str).collect();
        let text = serde_json::to_string_pretty(
            &json!({"format": FORMAT, "methods": methods, "owned": owned}),
        )
        .expect("JSON of strings and numbers");
        let path = Self::path(stage);
        fairway_files::write_atomically(&path, |file| {
            use std::io::Write;
            file.write_all(text.as_bytes())
                .map_err(|e| FeatureError::io(&path, e))
        })
    }

    /// The folder of `method`'s reusable result for `fingerprint`, if the
    /// last build recorded it and its data file is still there.
    pub fn reusable(
        &self,
        stage: &Path,
        method: &str,
        fingerprint: &str,
    ) -> Option<&ManifestEntry> {
        self.methods
            .get(method)
            .filter(|e| e.fingerprint == fingerprint)
            .filter(|e| is_own_folder(&stage.join(&e.folder)))
            .filter(|e| {
                std::fs::symlink_metadata(stage.join(&e.folder).join(RESULT_FILE))
                    .is_ok_and(|m| m.is_file())
            })
    }
}

/// The file holding a materialised result inside its folder.
pub(crate) const RESULT_FILE: &str = "part-0.parquet";

/// The stage area of an output file: `<output>.fairway-stage/`.
pub(crate) fn stage_dir(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".fairway-stage");
    output.with_file_name(name)
}

/// Whether `path` is a real folder (not a link) with a result folder's name.
fn is_own_folder(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_result_folder)
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Deletes the result folders in `owned` (recorded as fairway's) that
/// `keep` does not name; only real folders with a result folder's name are
/// deleted, never a link or a file. Returns the entries of `owned` still
/// there (kept, or not deletable), which stay recorded.
pub(crate) fn remove_stale(
    stage: &Path,
    owned: &BTreeSet<String>,
    keep: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut left = BTreeSet::new();
    for name in owned {
        if keep.contains(name) {
            left.insert(name.clone());
            continue;
        }
        let path = stage.join(name);
        let gone = match std::fs::symlink_metadata(&path) {
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            // `remove_dir_all` does not follow links inside the folder.
            Ok(_) if is_own_folder(&path) => std::fs::remove_dir_all(&path).is_ok(),
            // A file or link under a recorded name is not ours: leave it.
            Ok(_) => true,
        };
        if !gone {
            left.insert(name.clone());
        }
    }
    left
}

/// Makes way for a result folder about to be written at `stage/name`: an
/// absent one is fine, one recorded in `owned` (a real folder) is ours to
/// replace; anything else there is a user's, and the build is refused
/// before it starts.
pub(crate) fn check_result_folder(
    stage: &Path,
    name: &str,
    owned: &BTreeSet<String>,
) -> Result<()> {
    let path = stage.join(name);
    match std::fs::symlink_metadata(&path) {
        Err(_) => Ok(()),
        Ok(_) if owned.contains(name) && is_own_folder(&path) => Ok(()),
        Ok(_) => Err(FeatureError::refused(
            &path,
            "a result folder is to be written here, but this entry of the stage folder is \
             not one fairway recorded as its own; fairway does not replace it (move it away)",
        )),
    }
}

/// Whether a spec's definition is SQL read from a file (for explain).
pub(crate) fn sql_file(body: &Body) -> Option<&Path> {
    match body {
        Body::Sql { file, .. } => file.as_deref(),
        Body::Steps(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_follows_views() {
        let direct = BTreeMap::from([
            ("v1".to_string(), vec!["a".to_string()]),
            ("v2".to_string(), vec!["v1".to_string(), "b".to_string()]),
        ]);
        let l = lineage(&["v2".to_string(), "c".to_string()], &direct);
        assert_eq!(l.views, BTreeSet::from(["v1".into(), "v2".into()]));
        assert_eq!(
            l.sources,
            BTreeSet::from(["a".into(), "b".into(), "c".into()])
        );
    }

    const FOLDER: &str = "m-0123456789abcdef";

    #[test]
    fn the_manifest_round_trips_and_checks_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.methods.insert(
            "m".into(),
            ManifestEntry {
                fingerprint: "abc".into(),
                folder: FOLDER.into(),
                rows: 3,
            },
        );
        m.owned.insert("old-fedcba9876543210".into());
        m.write(dir.path()).unwrap();
        let read = Manifest::read(dir.path());
        assert_eq!(read.methods, m.methods);
        assert_eq!(
            read.owned,
            BTreeSet::from([FOLDER.to_string(), "old-fedcba9876543210".to_string()]),
            "the methods' folders are owned too"
        );
        assert!(
            read.reusable(dir.path(), "m", "abc").is_none(),
            "no data file yet"
        );
        std::fs::create_dir(dir.path().join(FOLDER)).unwrap();
        std::fs::write(dir.path().join(FOLDER).join(RESULT_FILE), b"x").unwrap();
        assert!(read.reusable(dir.path(), "m", "abc").is_some());
        assert!(read.reusable(dir.path(), "m", "abd").is_none());
    }

    #[test]
    fn result_folders_are_recognised_by_name() {
        assert!(is_result_folder(FOLDER));
        assert!(is_result_folder("order_stats-0123456789abcdef"));
        assert!(!is_result_folder("m-0123456789abcde"));
        assert!(!is_result_folder("m-0123456789ABCDEF"));
        assert!(!is_result_folder("-0123456789abcdef"));
        assert!(!is_result_folder("my files-0123456789abcdef"));
        assert!(!is_result_folder("mine"));
    }

    #[test]
    fn a_manifest_cannot_make_fairway_delete_what_is_not_a_result_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            Manifest::path(dir.path()),
            format!(
                r#"{{"format": "{FORMAT}", "owned": ["mine", "{FOLDER}"], "methods":
                {{"m": {{"fingerprint": "f", "folder": "..", "rows": 1}}}}}}"#
            ),
        )
        .unwrap();
        let read = Manifest::read(dir.path());
        assert!(read.methods.is_empty(), "'..' is no result folder");
        assert_eq!(read.owned, BTreeSet::from([FOLDER.to_string()]));
        std::fs::create_dir(dir.path().join("mine")).unwrap();
        let owned = BTreeSet::from(["mine".to_string(), FOLDER.to_string()]);
        // A file under a recorded name is not fairway's: left, and forgotten.
        std::fs::write(dir.path().join(FOLDER), b"user's").unwrap();
        let left = remove_stale(dir.path(), &owned, &BTreeSet::new());
        assert!(dir.path().join("mine").is_dir());
        assert_eq!(std::fs::read(dir.path().join(FOLDER)).unwrap(), b"user's");
        assert!(left.is_empty(), "neither is fairway's: {left:?}");
        assert!(check_result_folder(dir.path(), FOLDER, &owned).is_err());
        assert!(check_result_folder(dir.path(), "n-0123456789abcdef", &owned).is_ok());
    }
}
