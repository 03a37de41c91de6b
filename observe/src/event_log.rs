//! The JSON-lines event log (`--event-log FILE`): one [`Event`] per line
//! for every job, stage and task the scheduler runs (the schema and its
//! table of fields are in [`crate::events`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use fairway_files::{FileError, Result};
use fairway_scheduler::{JobId, JobStatus, SchedulerEvent, SchedulerListener, TaskContext};

use crate::events::{Event, TaskRef, status};

/// Writes scheduler events as JSON lines. The file is created (truncated)
/// when the log opens; lines are flushed at the start and end of every job and when
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
            std::fs::create_dir_all(parent).map_err(|e| FileError::io(parent, e))?;
        }
        let file = File::create(path).map_err(|e| FileError::io(path, e))?;
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

    /// Writes one event that the scheduler does not report (the engine's
    /// stage metrics, the configured pools); `event` gets the time.
    pub fn record(&self, event: impl FnOnce(u64) -> Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let time_us = self.start.elapsed().as_micros() as u64;
        let mut text = event(time_us).to_line();
        text.push('\n');
        let Some(out) = &mut state.out else {
            return;
        };
        if let Err(e) = out.write_all(text.as_bytes()) {
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

fn task_ref(task: &TaskContext, pool: &str) -> TaskRef {
    TaskRef {
        job: task.id.job,
        stage: task.id.stage as u64,
        partition: task.id.partition as u64,
        attempt: u64::from(task.id.attempt),
        pool: pool.to_string(),
        slot: task.slot as u64,
    }
}

impl SchedulerListener for EventLog {
    fn on_event(&self, event: &SchedulerEvent) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Taken under the lock, so the times in the file never go back.
        let time_us = self.start.elapsed().as_micros() as u64;
        let line = match event {
            SchedulerEvent::JobStart {
                job,
                description,
                pool,
                ..
            } => {
                state.jobs.insert(*job, (pool.clone(), description.clone()));
                Event::JobStart {
                    time_us,
                    job: *job,
                    pool: pool.clone(),
                    description: description.clone(),
                }
            }
            SchedulerEvent::JobEnd { job, status } => {
                let (pool, description) = state.jobs.remove(job).unwrap_or_default();
                let status = match status {
                    JobStatus::Succeeded => status::SUCCEEDED,
                    JobStatus::Failed => status::FAILED,
                    JobStatus::Cancelled => status::CANCELLED,
                    JobStatus::TimedOut => status::TIMED_OUT,
                }
                .to_string();
                Event::JobEnd {
                    time_us,
                    job: *job,
                    pool,
                    description,
                    status,
                }
            }
            SchedulerEvent::JobQueued {
                job,
                pool,
                position,
            } => Event::JobQueued {
                time_us,
                job: *job,
                pool: pool.clone(),
                position: *position as u64,
            },
            SchedulerEvent::JobAdmitted { job, pool, waited } => Event::JobAdmitted {
                time_us,
                job: *job,
                pool: pool.clone(),
                waited_us: waited.as_micros() as u64,
            },
            SchedulerEvent::JobTimedOut {
                job,
                pool,
                limit,
                queued,
            } => Event::JobTimedOut {
                time_us,
                job: *job,
                pool: pool.clone(),
                limit_us: limit.as_micros() as u64,
                queued: *queued,
            },
            SchedulerEvent::StageSubmitted { job, stage, tasks } => Event::StageSubmitted {
                time_us,
                job: *job,
                stage: *stage as u64,
                tasks: *tasks as u64,
            },
            SchedulerEvent::StageCompleted { job, stage } => Event::StageCompleted {
                time_us,
                job: *job,
                stage: *stage as u64,
            },
            SchedulerEvent::TaskStart { task, pool } => Event::TaskStart {
                time_us,
                task: task_ref(task, pool),
            },
            SchedulerEvent::TaskYield { task, pool } => Event::TaskYield {
                time_us,
                task: task_ref(task, pool),
            },
            SchedulerEvent::TaskResume { task, pool } => Event::TaskResume {
                time_us,
                task: task_ref(task, pool),
            },
            SchedulerEvent::TaskEnd {
                task,
                duration,
                outcome,
                pool,
            } => {
                let (rows, bytes, status, error) = match outcome {
                    Ok(o) => (o.rows, o.bytes, status::SUCCEEDED, None),
                    Err(e) => (0, 0, status::FAILED, Some(e.clone())),
                };
                Event::TaskEnd {
                    time_us,
                    task: task_ref(task, pool),
                    duration_us: duration.as_micros() as u64,
                    rows,
                    bytes,
                    status: status.to_string(),
                    error,
                }
            }
        };
        // Flushed at every job's start and end, so that a long-lived
        // server's log shows what runs now.
        let job_ended = matches!(line, Event::JobEnd { .. } | Event::JobStart { .. });
        let mut text = line.to_line();
        text.push('\n');
        let Some(out) = &mut state.out else {
            return;
        };
        let written = out
            .write_all(text.as_bytes())
            .and_then(|_| if job_ended { out.flush() } else { Ok(()) });
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
            stages: 0,
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
            .map(|l| Event::parse_line(l).unwrap().unwrap().time_us())
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
