//! The live display of a feature build on a terminal: one line per method
//! (and per shared view), `queued`, `running` with its stages and tasks, then
//! `built` with rows and seconds, or `reused`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use fairway_scheduler::{JobId, SchedulerEvent, SchedulerListener};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Descriptions of the build's jobs, which the display recognises.
pub(crate) fn method_job(name: &str) -> String {
    format!("feature method {name}")
}

pub(crate) fn view_job(name: &str) -> String {
    format!("feature view {name}")
}

#[derive(Default)]
struct Line {
    stages_submitted: usize,
    stages_done: usize,
    tasks_done: usize,
    running: usize,
}

/// A scheduler listener that keeps one line per method or view up to date.
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
    /// Lines for `entries` (job description, label), drawn on stderr.
    pub(crate) fn new(entries: &[(String, String)]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
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

    fn redraw(&self, job: &str, line: &Line) {
        if let Some(bar) = self.bars.get(job) {
            if bar.is_finished() {
                return;
            }
            bar.set_message(format!(
                "running: {}/{} stages done, {} tasks done, {} running",
                line.stages_done, line.stages_submitted, line.tasks_done, line.running
            ));
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
            SchedulerEvent::StageSubmitted { .. } => line.stages_submitted += 1,
            SchedulerEvent::StageCompleted { .. } => line.stages_done += 1,
            SchedulerEvent::TaskStart { .. } | SchedulerEvent::TaskResume { .. } => {
                line.running += 1
            }
            SchedulerEvent::TaskYield { .. } => line.running = line.running.saturating_sub(1),
            SchedulerEvent::TaskEnd { outcome, .. } => {
                line.running = line.running.saturating_sub(1);
                if outcome.is_ok() {
                    line.tasks_done += 1;
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
