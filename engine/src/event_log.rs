//! The JSON-lines event log (`--event-log FILE`): one object per line for
//! every job, stage and task the scheduler runs.
//!
//! Every line has `event` (its name) and `time_us` (microseconds since the
//! log was opened). The names and fields below are stable: other tools
//! (`fairway timeline`, notebooks) read them.
//!
//! | event | fields |
//! |---|---|
//! | `job_start` | `job`, `pool`, `description` |
//! | `job_end` | `job`, `pool`, `description`, `status` (`succeeded`, `failed`, `cancelled`) |
//! | `stage_submitted` | `job`, `stage`, `tasks` |
//! | `stage_completed` | `job`, `stage` |
//! | `task_start` | `job`, `stage`, `partition`, `attempt`, `pool`, `slot` |
//! | `task_yield` | as `task_start`: the task gave up `slot` to a fairer pool |
//! | `task_resume` | as `task_start`: the task continues on `slot` |
//! | `task_end` | as `task_start`, plus `duration_us`, `rows`, `bytes`, `status` (`succeeded`, `failed`) and `error` when failed |

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use fairway_scheduler::{JobId, JobStatus, SchedulerEvent, SchedulerListener, TaskContext};
use serde_json::{Value, json};

use crate::error::{EngineError, Result};

/// Writes scheduler events as JSON lines. The file is created (truncated)
/// when the log opens; lines are flushed at the end of every job and when
/// the log is dropped.
///
/// A log is never left truncated silently: the first write that fails
/// (a full disk, a file that became unwritable) prints one warning on
/// stderr naming the file and the error, the log stops writing (so it holds
/// no gap in the middle), and [`EventLog::error`] (for this log) and
/// [`EventLog::failures`] (for every log of the process) report it, so
/// that the command can end with an error after its results.
pub struct EventLog {
    path: PathBuf,
    start: Instant,
    state: Mutex<LogState>,
}

struct LogState {
    /// `None` once a write failed.
    out: Option<BufWriter<File>>,
    jobs: HashMap<JobId, (String, String)>,
    error: Option<String>,
}

/// The failures of every event log of this process, one message each.
static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl EventLog {
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, e))?;
        }
        let file = File::create(path).map_err(|e| EngineError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            start: Instant::now(),
            state: Mutex::new(LogState {
                out: Some(BufWriter::new(file)),
                jobs: HashMap::new(),
                error: None,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the buffered lines to the file; a failure is recorded as by
    /// a failed event.
    pub fn flush(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let flushed = match &mut state.out {
            Some(out) => out.flush(),
            None => Ok(()),
        };
        if let Err(e) = flushed {
            self.fail(&mut state, &e);
        }
    }

    /// Why this log is incomplete, if a write to it failed: `cannot write
    /// event log FILE: ERROR`.
    pub fn error(&self) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.error.clone()
    }

    /// The errors of every event log of this process that could not be
    /// written completely, in the order they failed: a command checks this
    /// at its end, after flushing, and fails if it is not empty.
    pub fn failures() -> Vec<String> {
        FAILURES.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The first failure: warn once, stop writing (a log with a hole in
    /// the middle would read as complete), remember the error.
    fn fail(&self, state: &mut LogState, e: &std::io::Error) {
        if state.error.is_some() {
            return;
        }
        let message = format!("cannot write event log {}: {e}", self.path.display());
        eprintln!("warning: {message}; the log is incomplete and the command will fail at its end");
        // Drop the writer without the flush that its `Drop` would retry.
        if let Some(out) = state.out.take() {
            let _ = out.into_parts();
        }
        FAILURES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message.clone());
        state.error = Some(message);
    }
}

type Fields = Vec<(&'static str, Value)>;

fn task_fields(task: &TaskContext, pool: &str) -> Fields {
    vec![
        ("job", json!(task.id.job)),
        ("stage", json!(task.id.stage)),
        ("partition", json!(task.id.partition)),
        ("attempt", json!(task.id.attempt)),
        ("pool", json!(pool)),
        ("slot", json!(task.slot)),
    ]
}

impl SchedulerListener for EventLog {
    fn on_event(&self, event: &SchedulerEvent) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Taken under the lock, so the times in the file never go back.
        let time_us = self.start.elapsed().as_micros() as u64;
        let (name, fields): (&str, Fields) = match event {
            SchedulerEvent::JobStart {
                job,
                description,
                pool,
            } => {
                state.jobs.insert(*job, (pool.clone(), description.clone()));
                (
                    "job_start",
                    vec![
                        ("job", json!(job)),
                        ("pool", json!(pool)),
                        ("description", json!(description)),
                    ],
                )
            }
            SchedulerEvent::JobEnd { job, status } => {
                let (pool, description) = state.jobs.remove(job).unwrap_or_default();
                let status = match status {
                    JobStatus::Succeeded => "succeeded",
                    JobStatus::Failed => "failed",
                    JobStatus::Cancelled => "cancelled",
                };
                (
                    "job_end",
                    vec![
                        ("job", json!(job)),
                        ("pool", json!(pool)),
                        ("description", json!(description)),
                        ("status", json!(status)),
                    ],
                )
            }
            SchedulerEvent::StageSubmitted { job, stage, tasks } => (
                "stage_submitted",
                vec![
                    ("job", json!(job)),
                    ("stage", json!(stage)),
                    ("tasks", json!(tasks)),
                ],
            ),
            SchedulerEvent::StageCompleted { job, stage } => (
                "stage_completed",
                vec![("job", json!(job)), ("stage", json!(stage))],
            ),
            SchedulerEvent::TaskStart { task, pool } => ("task_start", task_fields(task, pool)),
            SchedulerEvent::TaskYield { task, pool } => ("task_yield", task_fields(task, pool)),
            SchedulerEvent::TaskResume { task, pool } => ("task_resume", task_fields(task, pool)),
            SchedulerEvent::TaskEnd {
                task,
                duration,
                outcome,
                pool,
            } => {
                let mut m = task_fields(task, pool);
                m.push(("duration_us", json!(duration.as_micros() as u64)));
                match outcome {
                    Ok(o) => m.extend([
                        ("rows", json!(o.rows)),
                        ("bytes", json!(o.bytes)),
                        ("status", json!("succeeded")),
                    ]),
                    Err(e) => m.extend([
                        ("rows", json!(0)),
                        ("bytes", json!(0)),
                        ("status", json!("failed")),
                        ("error", json!(e)),
                    ]),
                }
                ("task_end", m)
            }
        };
        // `event` and `time_us` first, then the fields in a fixed order.
        let mut line = format!("{{\"event\":\"{name}\",\"time_us\":{time_us}");
        for (key, value) in fields {
            line.push_str(&format!(",\"{key}\":{value}"));
        }
        line.push_str("}\n");
        let Some(out) = &mut state.out else {
            return;
        };
        let written = out.write_all(line.as_bytes()).and_then(|_| {
            if name == "job_end" {
                out.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            self.fail(&mut state, &e);
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(log: &EventLog, job: JobId) {
        log.on_event(&SchedulerEvent::JobStart {
            job,
            description: format!("job {job}"),
            pool: "default".into(),
        });
        log.on_event(&SchedulerEvent::JobEnd {
            job,
            status: JobStatus::Succeeded,
        });
    }

    #[test]
    fn lines_are_written_and_times_never_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = EventLog::create(&path).unwrap();
        for j in 1..=50 {
            job(&log, j);
        }
        log.flush();
        assert_eq!(log.error(), None);
        let text = std::fs::read_to_string(&path).unwrap();
        let times: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["time_us"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(times.len(), 100);
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    /// `/dev/full` accepts the open and fails every write with ENOSPC.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_is_recorded_once_and_the_log_stops() {
        let path = Path::new("/dev/full");
        let log = EventLog::create(path).unwrap();
        job(&log, 1);
        let error = log.error().expect("the write to /dev/full failed");
        assert!(error.contains("/dev/full"), "{error}");
        assert!(error.contains("No space left"), "{error}");
        // Later events and flushes neither panic nor replace the first error.
        job(&log, 2);
        log.flush();
        assert_eq!(log.error().as_deref(), Some(error.as_str()));
        let failures = EventLog::failures();
        assert_eq!(failures.iter().filter(|f| **f == error).count(), 1);
        assert!(log.state.lock().unwrap().out.is_none());
    }
}
