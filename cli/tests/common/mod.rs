//! Helpers shared by the `fairway` binary's test files.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The one time limit of these tests, an upper bound only: generous,
/// because CI machines are slow, but a hang still ends the test instead of
/// the run. No test passes or fails by how fast a command ran.
pub const DEADLINE: Duration = Duration::from_secs(180);

/// Starts `fairway ARGS` in the workspace root, stdin empty, stdout and
/// stderr captured.
pub fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fairway"))
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fairway")
}

/// Waits for `child` to exit and collects its output; kills it and fails the
/// test if it outlives [`DEADLINE`].
pub fn finish(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} still ran after {DEADLINE:?}; stderr: {}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `fairway ARGS` in the workspace root and collects its output; fails
/// the test if it outlives [`DEADLINE`].
pub fn fairway(args: &[&str]) -> Output {
    finish(spawn(args), &format!("fairway {args:?}"))
}

/// Polls `condition` every 10 ms until it holds; fails the test if it does
/// not within [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The workspace root (where `testdata/` is).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}
