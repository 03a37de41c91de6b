//! Helpers shared by the `fairway` binary's test files.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `fairway ARGS` in the workspace root and collects its output.
pub fn fairway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fairway"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run fairway")
}

/// The workspace root (where `testdata/` is).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}
