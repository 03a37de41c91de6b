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
pub struct EventLog {
    path: PathBuf,
    start: Instant,
    state: Mutex<LogState>,
}

struct LogState {
    out: BufWriter<File>,
    jobs: HashMap<JobId, (String, String)>,
    failed: bool,
}

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
                out: BufWriter::new(file),
                jobs: HashMap::new(),
                failed: false,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn flush(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let _ = state.out.flush();
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
        let time_us = self.start.elapsed().as_micros() as u64;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
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
        let written = state.out.write_all(line.as_bytes()).and_then(|_| {
            if name == "job_end" {
                state.out.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written
            && !state.failed
        {
            state.failed = true;
            log::error!("cannot write event log {}: {e}", self.path.display());
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.flush();
    }
}
