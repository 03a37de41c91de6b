//! The live display of a feature build on a terminal: one line per method
//! (and per shared view), `queued`, `running` with its stages and tasks, then
//! `built` with rows and seconds, or `reused`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fairway_scheduler::{JobId, SchedulerEvent, SchedulerListener};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Descriptions of the build's jobs, which the display recognises.
pub(crate) fn method_job(name: &str) -> String {
    format!("feature method {name}")
}

pub(crate) fn view_job(name: &str) -> String {
    format!("feature view {name}")
}

pub(crate) fn shared_job(name: &str) -> String {
    format!("feature shared subplan {name}")
}

pub(crate) fn fused_job(name: &str) -> String {
    format!("feature fused aggregate {name}")
}

#[derive(Default)]
struct Line {
    /// Stages of the job, from its start.
    stages_total: usize,
    stages_done: usize,
    /// Active stages: tasks and tasks done.
    active: HashMap<usize, (usize, usize)>,
    running: usize,
    /// When the job started and when its first task got a slot.
    submitted: Option<Instant>,
    first_task: Option<Instant>,
}

impl Line {
    /// `queued`, or `running (stage 2/3, 12/40 tasks)`: the stages done
    /// plus one over the job's stages, and the tasks done over the tasks of
    /// the stages running now.
    fn message(&self) -> String {
        if self.first_task.is_none() {
            return "queued".to_string();
        }
        let (tasks, done) = self
            .active
            .values()
            .fold((0, 0), |(t, d), (tasks, done)| (t + tasks, d + done));
        format!(
            "running (stage {}/{}, {done}/{tasks} tasks)",
            (self.stages_done + 1).min(self.stages_total.max(1)),
            self.stages_total.max(1),
        )
    }
}

/// A scheduler listener that keeps one line per method or view up to date
/// (drawn on a terminal only) and remembers how long each waited for its
/// first slot.
pub(crate) struct BuildProgress {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, String>,
    lines: HashMap<String, Line>,
}

impl BuildProgress {
    /// Lines for `entries` (job description, label), drawn on stderr when
    /// `draw`.
    pub(crate) fn new(entries: &[(String, String)], draw: bool) -> Self {
        let target = if draw {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let width = entries.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg}")
            .expect("valid template")
            .tick_chars("|/-\\ ");
        let mut bars = HashMap::new();
        for (job, label) in entries {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(format!("{label:<width$}"));
            bar.set_message("queued");
            bars.insert(job.clone(), bar);
        }
        Self {
            multi,
            bars,
            state: Mutex::default(),
        }
    }

    /// Marks a line finished with `message` (built, reused, failed).
    pub(crate) fn finish(&self, job: &str, message: String) {
        if let Some(bar) = self.bars.get(job) {
            bar.disable_steady_tick();
            bar.finish_with_message(message);
        }
    }

    /// How long the job `job` (a description) waited from its start to its
    /// first task's slot; zero if it never started.
    pub(crate) fn queued(&self, job: &str) -> Duration {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.lines.get(job) {
            Some(Line {
                submitted: Some(s),
                first_task: Some(f),
                ..
            }) => f.saturating_duration_since(*s),
            _ => Duration::ZERO,
        }
    }

    fn redraw(&self, job: &str, line: &Line) {
        if let Some(bar) = self.bars.get(job) {
            if bar.is_finished() {
                return;
            }
            bar.set_message(line.message());
        }
    }

    /// Removes the lines from the terminal: the summary table follows.
    pub(crate) fn close(&self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
        let _ = self.multi.clear();
    }
}

impl SchedulerListener for BuildProgress {
    fn on_event(&self, event: &SchedulerEvent) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let job = match event {
            SchedulerEvent::JobStart {
                job, description, ..
            } => {
                if !self.bars.contains_key(description) {
                    return;
                }
                state.jobs.insert(*job, description.clone());
                if let Some(bar) = self.bars.get(description) {
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
                *job
            }
            SchedulerEvent::StageSubmitted { job, .. }
            | SchedulerEvent::StageCompleted { job, .. }
            | SchedulerEvent::JobQueued { job, .. }
            | SchedulerEvent::JobAdmitted { job, .. }
            | SchedulerEvent::JobTimedOut { job, .. }
            | SchedulerEvent::JobEnd { job, .. } => *job,
            SchedulerEvent::TaskStart { task, .. }
            | SchedulerEvent::TaskResume { task, .. }
            | SchedulerEvent::TaskYield { task, .. }
            | SchedulerEvent::TaskEnd { task, .. } => task.id.job,
        };
        let Some(name) = state.jobs.get(&job).cloned() else {
            return;
        };
        let line = state.lines.entry(name.clone()).or_default();
        match event {
            SchedulerEvent::JobStart { stages, .. } => {
                line.stages_total = *stages;
                line.submitted = Some(Instant::now());
            }
            SchedulerEvent::StageSubmitted { stage, tasks, .. } => {
                line.active.insert(*stage, (*tasks, 0));
            }
            SchedulerEvent::StageCompleted { stage, .. } => {
                line.active.remove(stage);
                line.stages_done += 1;
            }
            SchedulerEvent::TaskStart { .. } | SchedulerEvent::TaskResume { .. } => {
                line.first_task.get_or_insert_with(Instant::now);
                line.running += 1
            }
            SchedulerEvent::TaskYield { .. } => line.running = line.running.saturating_sub(1),
            SchedulerEvent::TaskEnd { task, outcome, .. } => {
                line.running = line.running.saturating_sub(1);
                if outcome.is_ok()
                    && let Some((_, done)) = line.active.get_mut(&task.id.stage)
                {
                    *done += 1;
                }
            }
            _ => {}
        }
        self.redraw(&name, line);
        if matches!(event, SchedulerEvent::JobEnd { .. }) {
            state.jobs.remove(&job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairway_scheduler::{TaskContext, TaskId, TaskOutcome};

    fn task(stage: usize, partition: usize) -> TaskContext {
        TaskContext {
            id: TaskId {
                job: 7,
                stage,
                partition,
                attempt: 0,
            },
            slot: 0,
        }
    }

    #[test]
    fn lines_say_queued_then_running_with_stage_and_tasks() {
        let job = method_job("m");
        let progress = BuildProgress::new(&[(job.clone(), "m".into())], false);
        let message = |p: &BuildProgress| p.state.lock().unwrap().lines[&job].message();
        let pool = "features".to_string();
        progress.on_event(&SchedulerEvent::JobStart {
            job: 7,
            description: job.clone(),
            pool: pool.clone(),
            stages: 3,
        });
        progress.on_event(&SchedulerEvent::StageSubmitted {
            job: 7,
            stage: 0,
            tasks: 40,
        });
        assert_eq!(message(&progress), "queued");
        for p in 0..13 {
            progress.on_event(&SchedulerEvent::TaskStart {
                task: task(0, p),
                pool: pool.clone(),
            });
        }
        for p in 0..12 {
            progress.on_event(&SchedulerEvent::TaskEnd {
                task: task(0, p),
                duration: Duration::from_millis(1),
                outcome: Ok(TaskOutcome::default()),
                pool: pool.clone(),
            });
        }
        assert_eq!(message(&progress), "running (stage 1/3, 12/40 tasks)");
        progress.on_event(&SchedulerEvent::StageCompleted { job: 7, stage: 0 });
        progress.on_event(&SchedulerEvent::StageSubmitted {
            job: 7,
            stage: 1,
            tasks: 4,
        });
        assert_eq!(message(&progress), "running (stage 2/3, 0/4 tasks)");
        assert!(progress.queued(&job) <= Duration::from_secs(60));
    }
}
