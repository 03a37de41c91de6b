//! Live console progress per active stage, like Spark's console progress
//! bar: `[Stage 3 (pool etl): ====>      (12 + 2) / 40]`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fairway_scheduler::{JobId, SchedulerEvent, SchedulerListener, StageId};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars being drawn, so that other output can hide them meanwhile.
static DRAWN: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Runs `f`, which writes to the terminal, with the progress bars hidden and
/// redrawn after it, so no stale bar is left between output lines. Without
/// bars it just runs `f`.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let multi = DRAWN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match multi {
        Some(multi) => multi.suspend(f),
        None => f(),
    }
}

/// A stage is drawn once it has been active this long, so quick statements
/// print nothing (Spark waits 500 ms too).
const SHOW_AFTER: Duration = Duration::from_millis(500);
const REFRESH: Duration = Duration::from_millis(100);

struct StageProgress {
    pool: String,
    tasks: usize,
    done: usize,
    running: usize,
    since: Instant,
    bar: Option<ProgressBar>,
}

#[derive(Default)]
struct State {
    stages: BTreeMap<(JobId, StageId), StageProgress>,
    pools: BTreeMap<JobId, String>,
}

/// Draws one bar per stage that has been running for more than half a
/// second, on stderr, refreshed ten times a second: the stage's id and pool,
/// then `(finished + running) / tasks`. Bars disappear when their stage
/// ends. The session creates one only when stderr is a terminal.
pub struct ConsoleProgress {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl ConsoleProgress {
    pub fn new() -> Self {
        let state: Arc<Mutex<State>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        *DRAWN.lock().unwrap_or_else(|e| e.into_inner()) = Some(multi.clone());
        let (s, stop_flag) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("fairway-progress".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(REFRESH);
                    refresh(&s, &multi);
                }
                let mut state = s.lock().unwrap_or_else(|e| e.into_inner());
                for stage in state.stages.values_mut() {
                    if let Some(bar) = stage.bar.take() {
                        bar.finish_and_clear();
                    }
                }
            })
            .expect("start the progress thread");
        Self { state, stop }
    }
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        Self::new()
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("[{prefix}: {bar:30}{msg}]")
        .expect("valid template")
        .progress_chars("=> ")
}

fn refresh(state: &Mutex<State>, multi: &MultiProgress) {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    for ((_, stage_id), stage) in state.stages.iter_mut() {
        if stage.bar.is_none() && stage.since.elapsed() >= SHOW_AFTER {
            let bar = multi.add(ProgressBar::new(stage.tasks as u64));
            bar.set_style(style());
            bar.set_prefix(format!("Stage {stage_id} (pool {})", stage.pool));
            stage.bar = Some(bar);
        }
        if let Some(bar) = &stage.bar {
            bar.set_position(stage.done as u64);
            bar.set_message(message(stage));
        }
    }
}

/// ` (done + running) / tasks`, or ` queued, 0 / tasks` before the stage's
/// first task got a slot.
fn message(stage: &StageProgress) -> String {
    if stage.done == 0 && stage.running == 0 {
        format!(" queued, 0 / {}", stage.tasks)
    } else {
        format!(" ({} + {}) / {}", stage.done, stage.running, stage.tasks)
    }
}

impl SchedulerListener for ConsoleProgress {
    fn on_event(&self, event: &SchedulerEvent) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut update = |job: JobId, stage: StageId, f: &dyn Fn(&mut StageProgress)| {
            if let Some(s) = state.stages.get_mut(&(job, stage)) {
                f(s);
            }
        };
        match event {
            SchedulerEvent::JobStart { job, pool, .. } => {
                state.pools.insert(*job, pool.clone());
            }
            SchedulerEvent::StageSubmitted { job, stage, tasks } => {
                let pool = state.pools.get(job).cloned().unwrap_or_default();
                state.stages.insert(
                    (*job, *stage),
                    StageProgress {
                        pool,
                        tasks: *tasks,
                        done: 0,
                        running: 0,
                        since: Instant::now(),
                        bar: None,
                    },
                );
            }
            SchedulerEvent::TaskStart { task, .. } | SchedulerEvent::TaskResume { task, .. } => {
                update(task.id.job, task.id.stage, &|s| s.running += 1)
            }
            SchedulerEvent::TaskYield { task, .. } => update(task.id.job, task.id.stage, &|s| {
                s.running = s.running.saturating_sub(1)
            }),
            SchedulerEvent::TaskEnd { task, outcome, .. } => {
                let succeeded = outcome.is_ok();
                update(task.id.job, task.id.stage, &|s| {
                    s.running = s.running.saturating_sub(1);
                    if succeeded {
                        s.done += 1;
                    }
                })
            }
            SchedulerEvent::StageCompleted { job, stage } => {
                if let Some(bar) = state.stages.remove(&(*job, *stage)).and_then(|s| s.bar) {
                    bar.finish_and_clear();
                }
            }
            // A queued job has no stage bars until it is admitted and its
            // stages are submitted.
            SchedulerEvent::JobQueued { .. }
            | SchedulerEvent::JobAdmitted { .. }
            | SchedulerEvent::JobTimedOut { .. } => {}
            SchedulerEvent::JobEnd { job, .. } => {
                state.pools.remove(job);
                let ended: Vec<_> = state
                    .stages
                    .keys()
                    .filter(|(j, _)| j == job)
                    .copied()
                    .collect();
                for key in ended {
                    if let Some(bar) = state.stages.remove(&key).and_then(|s| s.bar) {
                        bar.finish_and_clear();
                    }
                }
            }
        }
    }
}

impl Drop for ConsoleProgress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        *DRAWN.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairway_scheduler::{TaskContext, TaskId, TaskOutcome};

    fn task(stage: usize, partition: usize) -> TaskContext {
        TaskContext {
            id: TaskId {
                job: 1,
                stage,
                partition,
                attempt: 0,
            },
            slot: 0,
        }
    }

    #[test]
    fn counts_follow_the_events() {
        let progress = ConsoleProgress::new();
        let pool = "etl".to_string();
        progress.on_event(&SchedulerEvent::JobStart {
            job: 1,
            description: "q".into(),
            pool: pool.clone(),
            stages: 1,
        });
        progress.on_event(&SchedulerEvent::StageSubmitted {
            job: 1,
            stage: 3,
            tasks: 40,
        });
        {
            let state = progress.state.lock().unwrap();
            assert_eq!(message(&state.stages[&(1, 3)]), " queued, 0 / 40");
        }
        for p in 0..3 {
            progress.on_event(&SchedulerEvent::TaskStart {
                task: task(3, p),
                pool: pool.clone(),
            });
        }
        progress.on_event(&SchedulerEvent::TaskYield {
            task: task(3, 2),
            pool: pool.clone(),
        });
        progress.on_event(&SchedulerEvent::TaskEnd {
            task: task(3, 0),
            duration: Duration::from_millis(5),
            outcome: Ok(TaskOutcome::default()),
            pool: pool.clone(),
        });
        {
            let state = progress.state.lock().unwrap();
            let stage = &state.stages[&(1, 3)];
            assert_eq!((stage.done, stage.running, stage.tasks), (1, 1, 40));
            assert_eq!(stage.pool, "etl");
            assert_eq!(message(stage), " (1 + 1) / 40");
        }
        progress.on_event(&SchedulerEvent::StageCompleted { job: 1, stage: 3 });
        assert!(progress.state.lock().unwrap().stages.is_empty());
    }
}
