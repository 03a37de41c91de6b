//! Test support, included by the object store tests of several crates
//! (`#[path = ".../testsupport/stores.rs"] mod stores;`): a real
//! S3-compatible server (moto, `testsupport/s3/server.py`) and a static
//! HTTP server with range requests (`testsupport/s3/http_server.py`), both
//! on loopback and stopped when dropped.
//!
//! `.ci/run` starts one S3 server for the whole run and exports
//! `FAIRWAY_TEST_S3_ENDPOINT`, `FAIRWAY_TEST_S3_KEY_ID`,
//! `FAIRWAY_TEST_S3_SECRET` and the `_DENIED_` pair; without them a test starts its own, from a
//! virtual environment `s3-venv` made in the target folder on first use
//! (pip, from PyPI), or from `$FAIRWAY_S3_PYTHON`. Where that cannot work
//! (no `python3`, no network) a test says why and passes, except under
//! `CI=true`, where it fails.

#![allow(dead_code)]

#[path = "python.rs"]
mod python;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The bucket every S3 server of the tests has; tests keep apart by
/// prefix.
pub const BUCKET: &str = "fairway-test";

fn workspace() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("testsupport").is_dir() {
        assert!(
            dir.pop(),
            "no testsupport folder above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    dir
}

/// A running S3 server and the credentials it accepts.
pub struct S3Server {
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
    /// Valid keys of a user that may do nothing (for "access denied").
    pub denied_key_id: String,
    pub denied_secret: String,
    child: Option<Child>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl S3Server {
    /// The `fairway.store.s3.*` settings that reach this server.
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("fairway.store.s3.endpoint".into(), self.endpoint.clone()),
            ("fairway.store.s3.allow_http".into(), "true".into()),
            ("fairway.store.s3.region".into(), "us-east-1".into()),
            ("fairway.store.s3.access_key_id".into(), self.key_id.clone()),
            (
                "fairway.store.s3.secret_access_key".into(),
                self.secret.clone(),
            ),
        ]
    }
}

/// An interpreter with moto, made if needed.
fn s3_python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("FAIRWAY_S3_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("s3-venv"))
        .ok_or("no target folder")?;
    python::venv(&venv, &workspace().join("testsupport/s3/requirements.txt"))
}

/// The S3 server: the run's (from the environment) or a new one.
pub fn s3_server() -> Result<S3Server, String> {
    if let (Ok(endpoint), Ok(key_id), Ok(secret), Ok(denied_key_id), Ok(denied_secret)) = (
        std::env::var("FAIRWAY_TEST_S3_ENDPOINT"),
        std::env::var("FAIRWAY_TEST_S3_KEY_ID"),
        std::env::var("FAIRWAY_TEST_S3_SECRET"),
        std::env::var("FAIRWAY_TEST_S3_DENIED_KEY_ID"),
        std::env::var("FAIRWAY_TEST_S3_DENIED_SECRET"),
    ) {
        return Ok(S3Server {
            endpoint,
            key_id,
            secret,
            denied_key_id,
            denied_secret,
            child: None,
        });
    }
    let python = s3_python()?;
    let mut child = Command::new(python)
        .arg(workspace().join("testsupport/s3/server.py"))
        .arg(BUCKET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the S3 server: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut server = S3Server {
        endpoint: String::new(),
        key_id: String::new(),
        secret: String::new(),
        denied_key_id: String::new(),
        denied_secret: String::new(),
        child: Some(child),
    };
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
            let field = |k: &str| value[k].as_str().unwrap_or_default().to_string();
            server.endpoint = field("endpoint");
            server.key_id = field("access_key_id");
            server.secret = field("secret_access_key");
            server.denied_key_id = field("denied_access_key_id");
            server.denied_secret = field("denied_secret_access_key");
            return Ok(server);
        }
    }
    Err("the S3 server stopped before it printed its endpoint".into())
}

/// The S3 server, or `None` (with a note) where none can run outside CI.
pub fn s3_server_or_skip() -> Option<S3Server> {
    match s3_server() {
        Ok(server) => Some(server),
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI must run the object store tests, but no S3 server starts: {why}");
            }
            eprintln!("SKIPPED: the object store tests need Python and PyPI: {why}");
            None
        }
    }
}

/// A prefix of the test bucket no other test (or run) uses.
pub fn fresh_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// A client of the test bucket on `server`.
pub fn bucket_store(server: &S3Server) -> std::sync::Arc<dyn object_store::ObjectStore> {
    std::sync::Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&server.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .with_access_key_id(&server.key_id)
            .with_secret_access_key(&server.secret)
            .build()
            .expect("S3 client"),
    )
}

/// Puts every file under `dir` at `prefix/<its path under dir>`.
pub async fn upload(store: &dyn object_store::ObjectStore, dir: &Path, prefix: &str) {
    use object_store::ObjectStoreExt as _;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let bytes = std::fs::read(&path).unwrap();
            store
                .put(
                    &object_store::path::Path::from(format!("{prefix}/{relative}")),
                    bytes.into(),
                )
                .await
                .unwrap();
        }
    }
}

/// A static HTTP server of `dir` that answers range requests.
pub struct HttpServer {
    pub base: String,
    child: Child,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http_server(dir: &Path) -> HttpServer {
    let mut child = Command::new("python3")
        .arg(workspace().join("testsupport/s3/http_server.py"))
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the HTTP server");
    let stdout = child.stdout.take().expect("stdout");
    let mut port = String::new();
    BufReader::new(stdout)
        .read_line(&mut port)
        .expect("the HTTP server prints its port");
    HttpServer {
        base: format!("http://127.0.0.1:{}", port.trim()),
        child,
    }
}
