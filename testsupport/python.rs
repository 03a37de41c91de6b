//! Test support: a Python virtual environment with pinned packages, made
//! on first use in the cargo target folder (pip, from PyPI), for the test
//! suites that drive real Python tools (the PySpark client, moto's S3
//! server). Included with `#[path]` by the tests that need it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cmd`; its output is the error when it fails.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The interpreter of the virtual environment `venv`, with the packages
/// of `requirements` (a copy of which, inside it, says it is complete),
/// made if needed. Tests running in parallel make it once: a file lock
/// beside it orders them.
pub fn venv(venv: &Path, requirements: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.txt");
    let wanted = std::fs::read_to_string(requirements).map_err(|e| e.to_string())?;
    let ready = || {
        std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists()
    };
    if ready() {
        return Ok(python);
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(venv.with_extension("lock"))
        .map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if ready() {
        return Ok(python);
    }
    eprintln!(
        "making {} (pip install -r {})",
        venv.display(),
        requirements.display()
    );
    run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(venv))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements))?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}
