//! Helpers of the feature-table tests: specs in temporary folders over the
//! bundled TPC-H sf0.01 tables.

use std::path::{Path, PathBuf};

use fairway_features::BuildOptions;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The bundled TPC-H sf0.01 file of `table` (absolute).
pub fn tpch_file(table: &str) -> String {
    workspace()
        .join("testdata/tpch-sf0.01")
        .join(format!("{table}.parquet"))
        .to_string_lossy()
        .to_string()
}

/// Build options writing `out` with 2 slots.
pub fn options(out: &Path) -> BuildOptions {
    BuildOptions {
        out: Some(out.to_path_buf()),
        slots: Some(2),
        ..BuildOptions::default()
    }
}

/// A spec in `dir` over the bundled TPC-H sf0.01 tables (absolute paths).
/// Top-level keys of `body` (before its first table) stay at the top.
pub fn write_spec(dir: &Path, name: &str, body: &str) -> PathBuf {
    let split = body.find("\n[").map_or(body.len(), |i| i + 1);
    let mut text = body[..split].to_string();
    text.push_str("[sources]\n");
    for table in ["customer", "orders", "lineitem", "nation"] {
        text.push_str(&format!("{table} = \"{}\"\n", tpch_file(table)));
    }
    text.push_str(&body[split..]);
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
