//! Where the suite's files are: the published `datafusion-sqllogictest`
//! package (found through `cargo metadata`), copied at run time into the
//! target folder, laid out as in DataFusion's repository.

use std::path::{Path, PathBuf};

/// The published release whose suite is run.
pub const SUITE_PACKAGE: &str = "datafusion-sqllogictest";
pub const SUITE_VERSION: &str = "55.2.0";

/// The folder of the published `datafusion-sqllogictest` package.
pub fn suite_dir() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Without a platform filter, cargo metadata wants every package of
    // every platform, which a build for this one never downloaded.
    let mut args = vec!["metadata", "--format-version", "1"];
    let host = host_triple();
    if let Some(host) = &host {
        args.extend(["--filter-platform", host.as_str()]);
    }
    let run = |offline: bool| {
        let mut command = std::process::Command::new(&cargo);
        command.args(&args).current_dir(env!("CARGO_MANIFEST_DIR"));
        if offline {
            command.arg("--offline");
        }
        command.output().map_err(|e| format!("cargo metadata: {e}"))
    };
    // Offline first (no network wanted once the build has the packages);
    // a checkout that built only the binaries lacks the packages of
    // dev-dependencies that metadata also reads, so then once online.
    let mut out = run(true)?;
    if !out.status.success() {
        out = run(false)?;
    }
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let package = packages
        .iter()
        .find(|p| p["name"] == SUITE_PACKAGE && p["version"] == SUITE_VERSION)
        .ok_or_else(|| format!("{SUITE_PACKAGE} {SUITE_VERSION} is not in cargo metadata"))?;
    let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
    manifest
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no folder for {}", manifest.display()))
}

/// This machine's target triple, as rustc names it.
fn host_triple() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc).arg("-vV").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The cargo target folder (`CARGO_TARGET_DIR`, else the workspace's).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A working copy of the suite's files in the target folder (a fresh
/// folder per run, removed when the returned guard drops), laid out as in
/// DataFusion's repository (`datafusion/sqllogictest/`), so that the files'
/// relative paths and scratch folders resolve as they do there. Returns
/// the guard and the folder to run in.
pub fn working_copy(suite: &Path) -> Result<(tempfile::TempDir, PathBuf), String> {
    let parent = target_dir().join("conformance");
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let guard = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(&parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    let work = guard.path().join("datafusion/sqllogictest");
    for part in ["test_files", "data"] {
        let from = suite.join(part);
        if from.is_dir() {
            copy_tree(&from, &work.join(part)).map_err(|e| format!("{}: {e}", from.display()))?;
        }
    }
    Ok((guard, work))
}

/// Every `.slt` file under `dir`, sorted.
pub fn slt_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "slt") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
