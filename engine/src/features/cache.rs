//! The stage area beside the output: each method's materialised result in
//! a folder named after its fingerprint, and a manifest of the last
//! successful build, which lets an unchanged method reuse its result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use super::spec::{Body, FeatureSpec};
use crate::error::{EngineError, Result};

/// Bumped when the way results are materialised changes, so old stage
/// folders are never reused by a newer fairway.
const FORMAT: &str = "fairway-features-1";

/// One file of a source as seen when the build was planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub path: String,
    pub size: u64,
    pub modified_ns: u128,
}

/// The files a source reads: the file itself, every parquet/CSV file under
/// a folder (hidden and `_` files skipped, as the table scan does), or every
/// file a glob matches. Errors name the source and the path.
pub(crate) fn source_files(name: &str, path: &str) -> Result<Vec<FileStamp>> {
    let table_error = |message: String| EngineError::Table {
        table: name.to_string(),
        path: path.to_string(),
        message,
    };
    let mut files = Vec::new();
    if path.contains(['*', '?', '[']) {
        let start = path.find(['*', '?', '[']).expect("a glob character");
        let base = match path[..start].rfind('/') {
            Some(i) => &path[..=i],
            None => "./",
        };
        let mut found = Vec::new();
        walk(Path::new(base), &mut found).map_err(|e| table_error(e.to_string()))?;
        for file in found {
            let text = file.to_string_lossy();
            let candidate = if base == "./" && !path.starts_with("./") {
                text.trim_start_matches("./").to_string()
            } else {
                text.to_string()
            };
            if glob_matches(path, &candidate) {
                files.push(file);
            }
        }
        if files.is_empty() {
            return Err(table_error("the glob matches no file".to_string()));
        }
    } else {
        let p = Path::new(path);
        let meta = std::fs::metadata(p).map_err(|e| {
            table_error(if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or folder".to_string()
            } else {
                e.to_string()
            })
        })?;
        if meta.is_dir() {
            walk(p, &mut files).map_err(|e| table_error(e.to_string()))?;
            files.retain(|f| {
                matches!(
                    f.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()),
                    Some(e) if e == "parquet" || e == "parq" || e == "csv"
                )
            });
            if files.is_empty() {
                return Err(table_error(
                    "folder holds no .parquet or .csv files".to_string(),
                ));
            }
        } else {
            files.push(p.to_path_buf());
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).map_err(|e| EngineError::io(&f, e))?;
            let modified_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            Ok(FileStamp {
                path: f.to_string_lossy().to_string(),
                size: meta.len(),
                modified_ns,
            })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Shell-style matching: `*` any run of characters except `/`, `**` any
/// run including `/`, `?` one character, `[abc]` one of the set.
fn glob_matches(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => {
                let deep = p.get(1) == Some(&'*');
                let rest = if deep { &p[2..] } else { &p[1..] };
                (0..=t.len())
                    .take_while(|&i| deep || i == 0 || t[i - 1] != '/')
                    .any(|i| go(rest, &t[i..]))
            }
            Some('?') => !t.is_empty() && t[0] != '/' && go(&p[1..], &t[1..]),
            Some('[') => match p.iter().position(|&c| c == ']') {
                Some(end) if !t.is_empty() => {
                    p[1..end].contains(&t[0]) && go(&p[end + 1..], &t[1..])
                }
                _ => false,
            },
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
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
    for view in &lineage.views {
        if let Some(def) = spec.view(view) {
            put("view", &format!("{view}={}", def.normalised()));
        }
    }
    for source in &lineage.sources {
        put("source", source);
        for file in files.get(source).into_iter().flatten() {
            put(
                "file",
                &format!("{}|{}|{}", file.path, file.size, file.modified_ns),
            );
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

/// `<stage>/manifest.json`: the methods of the last successful build.
#[derive(Debug, Clone, Default)]
pub(crate) struct Manifest {
    pub methods: BTreeMap<String, ManifestEntry>,
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
        if let Some(map) = value["methods"].as_object() {
            for (name, entry) in map {
                if let (Some(fingerprint), Some(folder), Some(rows)) = (
                    entry["fingerprint"].as_str(),
                    entry["folder"].as_str(),
                    entry["rows"].as_u64(),
                ) {
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
        Manifest { methods }
    }

    /// Writes the manifest atomically (temporary file, then rename).
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
        let text = serde_json::to_string_pretty(&json!({"format": FORMAT, "methods": methods}))
            .expect("JSON of strings and numbers");
        let path = Self::path(stage);
        let temp = stage.join(format!(".manifest.json.{}.tmp", std::process::id()));
        std::fs::write(&temp, text).map_err(|e| EngineError::io(&temp, e))?;
        std::fs::rename(&temp, &path).map_err(|e| EngineError::io(&path, e))
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
            .filter(|e| stage.join(&e.folder).join(RESULT_FILE).is_file())
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

/// Removes folders of the stage area that the manifest does not name
/// (results of older builds, views spilled by this one).
pub(crate) fn remove_stale(stage: &Path, manifest: &Manifest) {
    let keep: BTreeSet<&str> = manifest
        .methods
        .values()
        .map(|e| e.folder.as_str())
        .collect();
    let Ok(entries) = std::fs::read_dir(stage) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.path().is_dir() && !keep.contains(name.as_str()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
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
    fn globs_match_like_a_shell() {
        assert!(glob_matches("d/*.parquet", "d/a.parquet"));
        assert!(!glob_matches("d/*.parquet", "d/x/a.parquet"));
        assert!(glob_matches("d/**.parquet", "d/x/a.parquet"));
        assert!(glob_matches("d/part-?.csv", "d/part-1.csv"));
        assert!(glob_matches("d/part-[12].csv", "d/part-2.csv"));
        assert!(!glob_matches("d/part-[12].csv", "d/part-3.csv"));
    }

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

    #[test]
    fn the_manifest_round_trips_and_checks_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.methods.insert(
            "m".into(),
            ManifestEntry {
                fingerprint: "abc".into(),
                folder: "m-abc".into(),
                rows: 3,
            },
        );
        m.write(dir.path()).unwrap();
        let read = Manifest::read(dir.path());
        assert_eq!(read.methods, m.methods);
        assert!(
            read.reusable(dir.path(), "m", "abc").is_none(),
            "no data file yet"
        );
        std::fs::create_dir(dir.path().join("m-abc")).unwrap();
        std::fs::write(dir.path().join("m-abc").join(RESULT_FILE), b"x").unwrap();
        assert!(read.reusable(dir.path(), "m", "abc").is_some());
        assert!(read.reusable(dir.path(), "m", "abd").is_none());
    }
}
