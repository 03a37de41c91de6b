//! `fairway timeline`: reads an event log (see [`crate::event_log`]) and
//! renders one self-contained HTML page with a Gantt chart of the slots,
//! stage markers, each pool's share of the busy slots over time, a job
//! legend and totals.
//!
//! The page is plain HTML with inline CSS and one inline SVG; tooltips are
//! SVG `<title>` elements, so it needs no script and no network.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::io::{BufRead, Read as _, Write as _};
use std::path::{Path, PathBuf};

use fairway_files::{self as files, FileError};

pub use crate::events::{Event, MAX_SLOT, MAX_TASKS, MAX_TIME_US, TaskRef};

/// The longest line a log may hold (a job's description is on its line).
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Reading an event log or writing its page failed.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("cannot read event log {}: {source}", printable(&path.display().to_string()))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("event log {}, line {line}: {message}", printable(&path.display().to_string()))]
    Parse {
        path: PathBuf,
        line: usize,
        /// Control characters of the log are escaped in it.
        message: String,
    },
    /// The page could not be written, or its output is refused.
    #[error(transparent)]
    Write(#[from] FileError),
}

/// Reads a JSON-lines event log. Blank lines and events with unknown names
/// are skipped; anything else that cannot be read (not JSON, a missing
/// field, a number out of range, invalid UTF-8, a line over
/// [`MAX_LINE_BYTES`]) is an error naming the file and the line. Events
/// come back in the order of the file.
pub fn read_event_log(path: &Path) -> Result<Vec<Event>, TimelineError> {
    let file = std::fs::File::open(path).map_err(|source| TimelineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_lines(path, std::io::BufReader::new(file), MAX_LINE_BYTES)
}

/// The events of `reader`, the log at `path`, whose lines hold at most
/// `max_line` bytes.
fn read_lines(
    path: &Path,
    mut reader: impl BufRead,
    max_line: usize,
) -> Result<Vec<Event>, TimelineError> {
    let io = |source| TimelineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let parse = |line: usize, message: String| TimelineError::Parse {
        path: path.to_path_buf(),
        line,
        message: printable(&message).into_owned(),
    };
    let mut events = Vec::new();
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        // A line is read up to one byte past the limit, never further.
        let read = (&mut reader)
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if read == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > max_line {
            return Err(parse(number, format!("line longer than {max_line} bytes")));
        }
        let line = std::str::from_utf8(&buf)
            .map_err(|e| parse(number, format!("not valid UTF-8: {e}")))?;
        match Event::parse_line(line) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(message) => return Err(parse(number, message)),
        }
    }
    Ok(events)
}

/// The headline numbers of a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    /// First to last event, in microseconds.
    pub wall_us: u64,
    /// Sum of the intervals in which tasks held slots, in microseconds.
    pub busy_us: u64,
    /// Slots seen in the log (highest slot number + 1).
    pub slots: u64,
    /// busy / (slots x wall), in percent.
    pub utilisation_pct: f64,
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wall time {}, busy slot-time {}, {} slot{}, utilisation {:.1}%",
            seconds(self.wall_us),
            seconds(self.busy_us),
            self.slots,
            if self.slots == 1 { "" } else { "s" },
            self.utilisation_pct
        )
    }
}

/// Totals of a log: wall time, busy slot-time, slots, utilisation.
pub fn totals(events: &[Event]) -> Totals {
    Timeline::build(events).totals()
}

/// One interval in which a task held a slot.
#[derive(Debug, Clone)]
struct Bar {
    task: TaskRef,
    /// Index of the task's pool in [`Timeline::pools`].
    pool: usize,
    start: u64,
    end: u64,
}

#[derive(Debug, Clone, Default)]
struct JobInfo {
    pool: String,
    description: String,
    status: Option<String>,
    start: Option<u64>,
    end: Option<u64>,
    /// Slot-time its tasks held, in microseconds.
    busy_us: u64,
    /// Its place among the jobs (by number), which picks its colour.
    index: usize,
    /// When its first task got a slot.
    first_task: Option<u64>,
    /// Times its tasks gave up a slot to a fairer pool.
    yields: u64,
    /// Time it waited in its pool's queue (`maxRunningJobs`), once
    /// admitted.
    pool_queue_us: Option<u64>,
    /// The timeout it passed, if it timed out.
    timed_out_after_us: Option<u64>,
}

/// What one stage of a job did, from its events and its `stage_metrics`.
#[derive(Debug, Clone, Default)]
struct StageInfo {
    tasks: u64,
    submitted: Option<u64>,
    completed: Option<u64>,
    first_start: Option<u64>,
    last_end: Option<u64>,
    /// Slot-time its tasks held.
    busy_us: u64,
    /// Run time of each successful task attempt.
    durations: Vec<u64>,
    yields: u64,
    metrics: Option<StageCounters>,
}

#[derive(Debug, Clone, Default)]
struct StageCounters {
    parents: Vec<u64>,
    rows_in: u64,
    rows_out: u64,
    shuffle_read: u64,
    shuffle_written: u64,
    spilled: u64,
}

/// A pool's settings from its `pool` event.
#[derive(Debug, Clone)]
struct PoolSettings {
    mode: String,
    weight: u64,
    min_share: u64,
}

struct TaskEndInfo {
    duration_us: u64,
    rows: u64,
    status: String,
    error: Option<String>,
}

type TaskKey = (u64, u64, u64, u64);

/// A log turned into what the page draws. Built in one pass over the
/// events in time order, with a map lookup per event, so it takes time
/// linear in the log (after an n log n sort).
struct Timeline {
    t0: u64,
    t1: u64,
    bars: Vec<Bar>,
    slots: u64,
    jobs: BTreeMap<u64, JobInfo>,
    /// Pool names, sorted; the empty name is among them only if used.
    pools: Vec<String>,
    /// Slot-time each pool's tasks held, by index into `pools`.
    pool_busy_us: Vec<u64>,
    ends: HashMap<TaskKey, TaskEndInfo>,
    /// (time, job, stage, submitted, tasks), in time order.
    stages: Vec<(u64, u64, u64, bool, u64)>,
    /// Per (job, stage): what the stage did.
    stage_info: BTreeMap<(u64, u64), StageInfo>,
    /// Settings of the pools the log lists (FAIR scheduling only).
    pool_settings: HashMap<String, PoolSettings>,
}

/// The slot-holding intervals while they are being found: no two tasks
/// hold one slot at once, so intervals never overlap on a slot and the
/// busy slot-time never exceeds slots x wall time.
#[derive(Default)]
struct OpenTasks {
    /// Task → (the task, when it took its slot).
    open: HashMap<TaskKey, (TaskRef, u64)>,
    /// Slot → the task holding it.
    holder: HashMap<u64, TaskKey>,
    bars: Vec<(TaskRef, u64, u64)>,
}

impl OpenTasks {
    /// Ends `key`'s interval at `time`, if it holds a slot.
    fn close(&mut self, key: &TaskKey, time: u64) {
        if let Some((task, start)) = self.open.remove(key) {
            if self.holder.get(&task.slot) == Some(key) {
                self.holder.remove(&task.slot);
            }
            self.bars.push((task, start, time.max(start)));
        }
    }

    /// `task` takes its slot at `time`. A task of its own still open (a
    /// start without an end) is closed first, and so is another task that
    /// a log without its end shows on the same slot: the slot changed hands.
    fn open(&mut self, task: &TaskRef, time: u64) {
        let key = task.key();
        self.close(&key, time);
        if let Some(other) = self.holder.get(&task.slot).copied() {
            self.close(&other, time);
        }
        self.holder.insert(task.slot, key);
        self.open.insert(key, (task.clone(), time));
    }
}

impl Timeline {
    fn build(events: &[Event]) -> Self {
        // Time order (a stable sort keeps the file's order within one
        // microsecond); a log written by fairway is in order already.
        let mut order: Vec<&Event> = events.iter().collect();
        order.sort_by_key(|e| e.time_us());
        let t0 = order.first().map_or(0, |e| e.time_us());
        let t1 = order.last().map_or(0, |e| e.time_us());
        let mut tasks = OpenTasks::default();
        let mut jobs: BTreeMap<u64, JobInfo> = BTreeMap::new();
        let mut pools: BTreeSet<&str> = BTreeSet::new();
        let mut ends = HashMap::new();
        let mut stages = Vec::new();
        let mut stage_info: BTreeMap<(u64, u64), StageInfo> = BTreeMap::new();
        let mut pool_settings = HashMap::new();
        let mut max_slot: Option<u64> = None;
        for event in order {
            let time = event.time_us();
            match event {
                Event::JobStart {
                    job,
                    pool,
                    description,
                    ..
                } => {
                    let info = jobs.entry(*job).or_default();
                    info.pool = pool.clone();
                    info.description = description.clone();
                    info.start = Some(time);
                    pools.insert(pool);
                }
                Event::JobEnd {
                    job,
                    pool,
                    description,
                    status,
                    ..
                } => {
                    let info = jobs.entry(*job).or_default();
                    if info.pool.is_empty() {
                        info.pool = pool.clone();
                    }
                    if info.description.is_empty() {
                        info.description = description.clone();
                    }
                    info.status = Some(status.clone());
                    info.end = Some(time);
                }
                Event::StageSubmitted {
                    job, stage, tasks, ..
                } => {
                    stages.push((time, *job, *stage, true, *tasks));
                    let info = stage_info.entry((*job, *stage)).or_default();
                    info.tasks = *tasks;
                    info.submitted.get_or_insert(time);
                }
                Event::StageCompleted { job, stage, .. } => {
                    stages.push((time, *job, *stage, false, 0));
                    stage_info.entry((*job, *stage)).or_default().completed = Some(time);
                }
                Event::StageMetrics {
                    job,
                    stage,
                    parents,
                    rows_in,
                    rows_out,
                    shuffle_read,
                    shuffle_written,
                    spilled,
                    ..
                } => {
                    stage_info.entry((*job, *stage)).or_default().metrics = Some(StageCounters {
                        parents: parents.clone(),
                        rows_in: *rows_in,
                        rows_out: *rows_out,
                        shuffle_read: *shuffle_read,
                        shuffle_written: *shuffle_written,
                        spilled: *spilled,
                    });
                }
                Event::JobQueued { .. } => {}
                Event::JobAdmitted { job, waited_us, .. } => {
                    jobs.entry(*job).or_default().pool_queue_us = Some(*waited_us);
                }
                Event::JobTimedOut { job, limit_us, .. } => {
                    jobs.entry(*job).or_default().timed_out_after_us = Some(*limit_us);
                }
                Event::Pool {
                    name,
                    mode,
                    weight,
                    min_share,
                    ..
                } => {
                    pool_settings.insert(
                        name.clone(),
                        PoolSettings {
                            mode: mode.clone(),
                            weight: *weight,
                            min_share: *min_share,
                        },
                    );
                }
                Event::TaskStart { task, .. } | Event::TaskResume { task, .. } => {
                    if matches!(event, Event::TaskStart { .. }) {
                        let info = stage_info.entry((task.job, task.stage)).or_default();
                        info.first_start.get_or_insert(time);
                        let job = jobs.entry(task.job).or_default();
                        job.first_task.get_or_insert(time);
                    }
                    tasks.open(task, time);
                    max_slot = max_slot.max(Some(task.slot));
                    pools.insert(&task.pool);
                    // A job known only from its tasks takes their pool.
                    let info = jobs.entry(task.job).or_default();
                    if info.pool.is_empty() {
                        info.pool = task.pool.clone();
                    }
                }
                Event::TaskYield { task, .. } => {
                    tasks.close(&task.key(), time);
                    stage_info.entry((task.job, task.stage)).or_default().yields += 1;
                    jobs.entry(task.job).or_default().yields += 1;
                }
                Event::TaskEnd {
                    task,
                    duration_us,
                    rows,
                    status,
                    error,
                    ..
                } => {
                    tasks.close(&task.key(), time);
                    let info = stage_info.entry((task.job, task.stage)).or_default();
                    info.last_end = Some(info.last_end.map_or(time, |t| t.max(time)));
                    if status == "succeeded" {
                        info.durations.push(*duration_us);
                    }
                    ends.insert(
                        task.key(),
                        TaskEndInfo {
                            duration_us: *duration_us,
                            rows: *rows,
                            status: status.clone(),
                            error: error.clone(),
                        },
                    );
                }
            }
        }
        // Tasks still holding a slot when the log ends hold it to the end.
        let mut still_open: Vec<_> = tasks.open.drain().map(|(_, v)| v).collect();
        still_open.sort_by_key(|(t, start)| (*start, t.key()));
        tasks.bars.extend(
            still_open
                .into_iter()
                .map(|(task, start)| (task, start, t1)),
        );

        let pools: Vec<String> = pools
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let pool_index: HashMap<&str, usize> = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect();
        for (index, info) in jobs.values_mut().enumerate() {
            info.index = index;
        }
        let mut pool_busy_us = vec![0; pools.len()];
        let mut bars = Vec::with_capacity(tasks.bars.len());
        for (task, start, end) in tasks.bars {
            let held = end - start;
            // An empty pool name has no lane and no legend entry.
            let pool = pool_index
                .get(task.pool.as_str())
                .copied()
                .unwrap_or(usize::MAX);
            if let Some(busy) = pool_busy_us.get_mut(pool) {
                *busy += held;
            }
            if let Some(info) = jobs.get_mut(&task.job) {
                info.busy_us += held;
            }
            if let Some(info) = stage_info.get_mut(&(task.job, task.stage)) {
                info.busy_us += held;
            }
            bars.push(Bar {
                task,
                pool,
                start,
                end,
            });
        }
        Self {
            t0,
            t1,
            bars,
            slots: max_slot.map_or(0, |s| s + 1),
            jobs,
            pools,
            pool_busy_us,
            ends,
            stages,
            stage_info,
            pool_settings,
        }
    }

    fn wall_us(&self) -> u64 {
        self.t1 - self.t0
    }

    fn totals(&self) -> Totals {
        let wall_us = self.wall_us();
        let busy_us: u64 = self.bars.iter().map(|b| b.end - b.start).sum();
        let capacity = self.slots as f64 * wall_us as f64;
        Totals {
            wall_us,
            busy_us,
            slots: self.slots,
            utilisation_pct: if capacity > 0.0 {
                100.0 * busy_us as f64 / capacity
            } else {
                0.0
            },
        }
    }

    fn job_colour(&self, job: u64) -> &'static str {
        let index = self.jobs.get(&job).map_or(0, |info| info.index);
        JOB_PALETTE[index % JOB_PALETTE.len()]
    }

    fn pool_colour(&self, pool: usize) -> &'static str {
        POOL_PALETTE[pool % POOL_PALETTE.len()]
    }
}

const JOB_PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Dark hues none of the job colours is close to, so a pool's lane never
/// reads as a job.
const POOL_PALETTE: [&str; 6] = [
    "#264653", "#8338ec", "#6b705c", "#003049", "#9d0208", "#5f0f40",
];

/// Whether `c` must not reach a page or a terminal as it is: control
/// characters (C0, DEL, C1) and the invisible ones that reorder or break
/// the text shown around them (bidirectional overrides and isolates, line
/// and paragraph separators).
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
        )
}

/// `\u{1b}` for a hidden character.
fn push_visible(out: &mut String, c: char) {
    let _ = write!(out, "\\u{{{:x}}}", c as u32);
}

/// Text for a message on a terminal: every control or invisible character
/// (newlines too) written as `\u{..}`.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Escapes text for HTML and XML content and attribute values: markup
/// characters as entities, control and invisible characters other than
/// newline and tab as visible `\u{..}` (no entity can stand for them).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if is_hidden(c) => push_visible(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Microseconds as seconds with three decimals.
fn seconds(us: u64) -> String {
    format!("{:.3} s", us as f64 / 1e6)
}

/// A duration for people: µs, ms or s.
fn duration(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.3} s", us as f64 / 1e6)
    }
}

/// Whitespace collapsed, cut to `max` characters with an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        flat.chars().take(max - 1).collect::<String>() + "…"
    } else {
        flat
    }
}

/// A round tick step (1, 2 or 5 x 10^k microseconds) giving about `target`
/// ticks over `span`.
fn tick_step(span: u64, target: u64) -> u64 {
    let raw = (span / target.max(1)).max(1);
    let mut magnitude = 1u64;
    while magnitude.saturating_mul(10) <= raw {
        magnitude *= 10;
    }
    for m in [1, 2, 5, 10] {
        if magnitude * m >= raw {
            return magnitude * m;
        }
    }
    magnitude * 10
}

fn tick_label(us: u64, step: u64) -> String {
    let decimals = match step {
        s if s >= 1_000_000 => 0,
        s if s >= 100_000 => 1,
        s if s >= 10_000 => 2,
        s if s >= 1_000 => 3,
        _ => 6,
    };
    format!("{:.*} s", decimals, us as f64 / 1e6)
}

const WIDTH: f64 = 1340.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 48.0;
const STAGE_BAND: f64 = 92.0;
const LANE_HEIGHT: f64 = 96.0;
const BUCKETS: usize = 160;

/// Renders the whole page: one self-contained HTML document.
pub fn render_html(events: &[Event], title: &str) -> String {
    render_page(&Timeline::build(events), title)
}

/// `fairway timeline EVENTS -o OUTPUT`: reads the log, renders its page and
/// writes it to `output` atomically (see [`files::write_atomically`]);
/// returns the log's totals. An output that is the log itself (by another
/// spelling, a link or a hard link) is refused before anything is read.
pub fn write_page(events: &Path, output: &Path, title: &str) -> Result<Totals, TimelineError> {
    refuse_log_as_output(events, output)?;
    let log = read_event_log(events)?;
    let timeline = Timeline::build(&log);
    drop(log);
    let html = render_page(&timeline, title);
    // A page replaced keeps its permissions; a new one is readable by all,
    // as a page written in place would be (the temporary is 0600).
    let permissions = std::fs::metadata(output).map(|m| m.permissions()).ok();
    files::write_atomically(output, |file| {
        file.write_all(html.as_bytes())
            .map_err(|e| FileError::io(output, e))?;
        #[cfg(unix)]
        let permissions = permissions.or_else(|| {
            use std::os::unix::fs::PermissionsExt;
            Some(std::fs::Permissions::from_mode(0o644))
        });
        match permissions {
            Some(p) => file
                .set_permissions(p)
                .map_err(|e| FileError::io(output, e)),
            None => Ok(()),
        }
    })?;
    Ok(timeline.totals())
}

fn refuse_log_as_output(events: &Path, output: &Path) -> Result<(), FileError> {
    if files::is_same_or_inside(output, events) {
        return Err(FileError::refused(
            output,
            format!(
                "the output is the event log {} itself; writing the page would replace \
                 the log: choose another output",
                printable(&events.display().to_string())
            ),
        ));
    }
    Ok(())
}

fn render_page(tl: &Timeline, title: &str) -> String {
    let totals = tl.totals();
    let mut html = String::new();
    let title = escape(title);
    let _ = writeln!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>"
    );
    let _ = writeln!(
        html,
        "<div class=\"totals\">\
         <div><span class=\"k\">wall time</span><span class=\"v\">{}</span></div>\
         <div><span class=\"k\">busy slot-time</span><span class=\"v\">{}</span></div>\
         <div><span class=\"k\">slots</span><span class=\"v\">{}</span></div>\
         <div><span class=\"k\">utilisation</span><span class=\"v\">{:.1}%</span></div>\
         <div><span class=\"k\">jobs</span><span class=\"v\">{}</span></div>\
         <div><span class=\"k\">task slices</span><span class=\"v\">{}</span></div>\
         </div>",
        seconds(totals.wall_us),
        seconds(totals.busy_us),
        totals.slots,
        totals.utilisation_pct,
        tl.jobs.len(),
        tl.bars.len(),
    );
    render_svg(tl, &mut html);
    render_pool_legend(tl, &mut html);
    render_job_legend(tl, &mut html);
    html.push_str(
        "<p class=\"note\">Bars: the intervals in which a task held a slot (a task that \
         yielded has several). Solid lines: stage submitted; dashed lines: stage completed. \
         In the pool lane, dashed lines: each pool's weighted fair share (FAIR scheduling). \
         Hover for details.</p>\n",
    );
    render_job_details(tl, &mut html);
    html.push_str("</body>\n</html>\n");
    html
}

fn render_svg(tl: &Timeline, html: &mut String) {
    let slots = tl.slots.max(1);
    let row = if slots <= 4 {
        40.0
    } else if slots <= 12 {
        30.0
    } else {
        (480.0 / slots as f64).clamp(6.0, 30.0)
    };
    let gantt_top = STAGE_BAND;
    let gantt_height = row * slots as f64;
    let axis_y = gantt_top + gantt_height;
    let lane_top = axis_y + 40.0;
    let height = lane_top + LANE_HEIGHT + 24.0;
    let plot = WIDTH - LEFT - RIGHT;
    let wall = tl.wall_us().max(1) as f64;
    let x = |t: u64| LEFT + plot * (t.saturating_sub(tl.t0) as f64 / wall);

    let _ = writeln!(
        html,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    // Row stripes and slot labels.
    for s in 0..slots {
        let y = gantt_top + row * s as f64;
        let _ = writeln!(
            html,
            "<rect class=\"row{}\" x=\"{LEFT}\" y=\"{y:.1}\" width=\"{plot:.1}\" height=\"{row:.1}\"/>",
            if s % 2 == 0 { " even" } else { "" }
        );
        if row >= 10.0 || s % (12.0 / row).ceil() as u64 == 0 {
            let _ = writeln!(
                html,
                "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" \
                 dominant-baseline=\"middle\">slot {s}</text>",
                LEFT - 6.0,
                y + row / 2.0
            );
        }
    }
    // Time axis: grid lines through the chart and the pool lane.
    let step = tick_step(tl.wall_us().max(1), 10);
    let mut t = 0;
    while t <= tl.wall_us() {
        let tx = x(tl.t0 + t);
        let _ = writeln!(
            html,
            "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{gantt_top:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            lane_top + LANE_HEIGHT,
            axis_y + 16.0,
            tick_label(t, step)
        );
        t += step;
    }
    // Task bars.
    let bar_h = (row - 4.0).max(row * 0.7);
    for bar in &tl.bars {
        let t = &bar.task;
        let bx = x(bar.start);
        let bw = (x(bar.end) - bx).max(1.0);
        let y = gantt_top + row * t.slot as f64 + (row - bar_h) / 2.0;
        let end = tl.ends.get(&t.key());
        let slice = bar.end - bar.start;
        let mut tip = format!(
            "job {} · stage {} · partition {} · attempt {}\npool {} · slot {}\n",
            t.job, t.stage, t.partition, t.attempt, t.pool, t.slot
        );
        match end {
            Some(e) => {
                let _ = write!(
                    tip,
                    "rows {} · duration {}{} · {}",
                    e.rows,
                    duration(e.duration_us),
                    if slice != e.duration_us {
                        format!(" (this slice {})", duration(slice))
                    } else {
                        String::new()
                    },
                    e.status
                );
                if let Some(error) = &e.error {
                    let _ = write!(tip, "\nerror: {}", truncate(error, 200));
                }
            }
            None => {
                let _ = write!(tip, "slice {} · no task_end", duration(slice));
            }
        }
        let failed = end.is_some_and(|e| e.status != "succeeded");
        let _ = writeln!(
            html,
            "<rect class=\"task\" x=\"{bx:.2}\" y=\"{y:.1}\" width=\"{bw:.2}\" height=\"{bar_h:.1}\" \
             fill=\"{}\"{}><title>{}</title></rect>",
            tl.job_colour(t.job),
            if failed {
                " stroke=\"#c00\" stroke-width=\"2\""
            } else {
                ""
            },
            escape(&tip)
        );
    }
    // Stage markers: solid for submitted, dashed for completed; labels for
    // submissions, merged when they would overlap.
    let mut labels: Vec<(f64, Vec<String>, String)> = Vec::new();
    for &(time, job, stage, submitted, tasks) in &tl.stages {
        let sx = x(time);
        let tip = if submitted {
            format!(
                "job {job} stage {stage} submitted ({tasks} task{}) at {}",
                if tasks == 1 { "" } else { "s" },
                seconds(time - tl.t0)
            )
        } else {
            format!(
                "job {job} stage {stage} completed at {}",
                seconds(time - tl.t0)
            )
        };
        let _ = writeln!(
            html,
            "<line class=\"stage{}\" x1=\"{sx:.1}\" y1=\"{:.1}\" x2=\"{sx:.1}\" y2=\"{axis_y:.1}\" \
             stroke=\"{}\"><title>{}</title></line>",
            if submitted { "" } else { " done" },
            gantt_top - 4.0,
            tl.job_colour(job),
            escape(&tip)
        );
        if submitted {
            let text = format!("J{job} S{stage}");
            match labels.last_mut() {
                Some((lx, texts, _)) if (sx - *lx).abs() < 11.0 => texts.push(text),
                _ => labels.push((sx, vec![text], tl.job_colour(job).to_string())),
            }
        }
    }
    for (lx, texts, colour) in labels {
        let mut text = texts.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
        if texts.len() > 2 {
            let _ = write!(text, " +{}", texts.len() - 2);
        }
        let _ = writeln!(
            html,
            "<text class=\"stage-label\" transform=\"translate({:.1},{:.1}) rotate(-60)\" \
             fill=\"{colour}\">{}</text>",
            lx + 3.0,
            gantt_top - 6.0,
            escape(&text)
        );
    }
    // Pool lane: each pool's busy slots per time bucket, stacked.
    let _ = writeln!(
        html,
        "<rect class=\"lane\" x=\"{LEFT}\" y=\"{lane_top:.1}\" width=\"{plot:.1}\" \
         height=\"{LANE_HEIGHT}\"/>\
         <text class=\"label\" x=\"{LEFT}\" y=\"{:.1}\">busy slots by pool</text>\
         <text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" \
         dominant-baseline=\"middle\">{slots}</text>\
         <text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" \
         dominant-baseline=\"middle\">0</text>",
        lane_top - 6.0,
        LEFT - 6.0,
        lane_top + 2.0,
        LEFT - 6.0,
        lane_top + LANE_HEIGHT - 2.0,
    );
    let bucket_us = wall / BUCKETS as f64;
    // Per bucket, the busy slot-time of each pool that has some there: a
    // bar touches at most BUCKETS buckets, and the lane holds no cell for
    // a pool that is idle in a bucket.
    let mut busy: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); BUCKETS];
    for bar in &tl.bars {
        if bar.pool >= tl.pools.len() {
            continue;
        }
        let (s, e) = (
            (bar.start - tl.t0) as f64,
            (bar.end.saturating_sub(tl.t0)) as f64,
        );
        let first = ((s / bucket_us) as usize).min(BUCKETS - 1);
        let last = ((e / bucket_us) as usize).min(BUCKETS - 1);
        for (b, bucket) in busy.iter_mut().enumerate().take(last + 1).skip(first) {
            let lo = b as f64 * bucket_us;
            let hi = lo + bucket_us;
            let overlap = e.min(hi) - s.max(lo);
            if overlap > 0.0 {
                *bucket.entry(bar.pool).or_default() += overlap;
            }
        }
    }
    let bucket_w = plot / BUCKETS as f64;
    for (b, bucket) in busy.iter().enumerate() {
        let mut y = lane_top + LANE_HEIGHT;
        let bx = LEFT + bucket_w * b as f64;
        for (&p, pool_busy) in bucket {
            let share = pool_busy / bucket_us;
            if share <= 0.0 {
                continue;
            }
            let h = LANE_HEIGHT * (share / slots as f64).min(1.0);
            y -= h;
            let _ = writeln!(
                html,
                "<rect class=\"pool\" x=\"{bx:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{h:.2}\" \
                 fill=\"{}\"><title>pool {} · {:.2} busy slots at {}</title></rect>",
                bucket_w + 0.3,
                tl.pool_colour(p),
                escape(&tl.pools[p]),
                share,
                seconds((b as f64 * bucket_us) as u64)
            );
        }
    }
    render_fair_shares(tl, html, lane_top, bucket_us, bucket_w, slots);
    html.push_str("</svg>\n");
}

/// Each pool's weighted fair share of the slots over time, as a dashed step
/// line over the busy-slots lane: while a pool has a running job its share
/// is slots x weight / (sum of the weights of the pools with running
/// jobs), and at least its minShare. Drawn only for logs of FAIR
/// scheduling (which list their pools).
fn render_fair_shares(
    tl: &Timeline,
    html: &mut String,
    lane_top: f64,
    bucket_us: f64,
    bucket_w: f64,
    slots: u64,
) {
    if tl.pool_settings.is_empty() {
        return;
    }
    let settings = |pool: &str| {
        tl.pool_settings
            .get(pool)
            .map_or((1, 0), |s| (s.weight, s.min_share))
    };
    // Per pool, the intervals in which it had a running job.
    let mut running: Vec<Vec<(u64, u64)>> = vec![Vec::new(); tl.pools.len()];
    for info in tl.jobs.values() {
        if let (Some(p), Some(start)) = (tl.pools.iter().position(|p| *p == info.pool), info.start)
        {
            running[p].push((start, info.end.unwrap_or(tl.t1)));
        }
    }
    let mut lines: Vec<String> = vec![String::new(); tl.pools.len()];
    for b in 0..BUCKETS {
        let t = tl.t0 + ((b as f64 + 0.5) * bucket_us) as u64;
        let active: Vec<usize> = (0..tl.pools.len())
            .filter(|&p| running[p].iter().any(|&(s, e)| s <= t && t < e))
            .collect();
        let total: u64 = active.iter().map(|&p| settings(&tl.pools[p]).0).sum();
        for (p, line) in lines.iter_mut().enumerate() {
            let (weight, min_share) = settings(&tl.pools[p]);
            let share = if active.contains(&p) && total > 0 {
                (slots as f64 * weight as f64 / total as f64).max(min_share.min(slots) as f64)
            } else {
                0.0
            };
            let y = lane_top + LANE_HEIGHT * (1.0 - (share / slots as f64).min(1.0));
            let x0 = LEFT + bucket_w * b as f64;
            let _ = write!(line, "{x0:.1},{y:.1} {:.1},{y:.1} ", x0 + bucket_w);
        }
    }
    for (p, points) in lines.iter().enumerate() {
        let _ = writeln!(
            html,
            "<polyline class=\"share\" points=\"{}\" stroke=\"{}\"><title>pool {}: fair share \
             (weight {}, minShare {})</title></polyline>",
            points.trim_end(),
            tl.pool_colour(p),
            escape(&tl.pools[p]),
            settings(&tl.pools[p]).0,
            settings(&tl.pools[p]).1,
        );
    }
}

fn render_pool_legend(tl: &Timeline, html: &mut String) {
    html.push_str("<div class=\"pools\"><span class=\"k\">pools</span>");
    for (p, pool) in tl.pools.iter().enumerate() {
        let _ = write!(
            html,
            "<span class=\"pool-entry\"><span class=\"swatch\" style=\"background:{}\"></span>{} \
             <span class=\"muted\">({}{} busy)</span></span>",
            tl.pool_colour(p),
            escape(pool),
            match tl.pool_settings.get(pool) {
                Some(s) => format!(
                    "{}, weight {}, minShare {}; ",
                    escape(&s.mode),
                    s.weight,
                    s.min_share
                ),
                None => String::new(),
            },
            seconds(tl.pool_busy_us[p])
        );
    }
    html.push_str("</div>\n");
}

fn render_job_legend(tl: &Timeline, html: &mut String) {
    html.push_str(
        "<table class=\"jobs\">\n<tr><th></th><th>job</th><th>pool</th><th>status</th>\
         <th>elapsed</th><th>busy</th><th>description</th></tr>\n",
    );
    for (job, info) in &tl.jobs {
        let elapsed = match (info.start, info.end) {
            (Some(s), Some(e)) => duration(e.saturating_sub(s)),
            _ => "–".to_string(),
        };
        let status = info.status.as_deref().unwrap_or("unfinished");
        // The class names only the statuses the page styles.
        let class = match status {
            "succeeded" | "failed" | "cancelled" | "unfinished" => status,
            _ => "other",
        };
        let _ = writeln!(
            html,
            "<tr class=\"job\"><td><span class=\"swatch\" style=\"background:{}\"></span></td>\
             <td>{job}</td><td>{}</td><td class=\"status {}\">{}</td><td>{elapsed}</td>\
             <td>{}</td><td class=\"desc\" title=\"{}\">{}</td></tr>",
            tl.job_colour(*job),
            escape(&info.pool),
            class,
            escape(status),
            duration(info.busy_us),
            escape(&truncate(&info.description, 1000)),
            escape(&truncate(&info.description, 80)),
        );
    }
    html.push_str("</table>\n");
}

/// Jobs shown with their stage table and DAG; the legend lists them all.
const MAX_JOB_DETAILS: usize = 300;

/// Per job: queue wait and yields, a table of its stages (tasks, wall,
/// busy, rows, shuffle bytes, spill, task times) and a small DAG of them.
fn render_job_details(tl: &Timeline, html: &mut String) {
    if tl.jobs.is_empty() {
        return;
    }
    html.push_str("<h2>Jobs and their stages</h2>\n");
    let open = tl.jobs.len() <= 8;
    for (shown, (job, info)) in tl.jobs.iter().enumerate() {
        if shown == MAX_JOB_DETAILS {
            let _ = writeln!(
                html,
                "<p class=\"note\">{} more jobs: see the table above.</p>",
                tl.jobs.len() - MAX_JOB_DETAILS
            );
            break;
        }
        let stages: Vec<(u64, &StageInfo)> = tl
            .stage_info
            .range((*job, 0)..=(*job, u64::MAX))
            .map(|((_, s), i)| (*s, i))
            .collect();
        let mut queued = match (info.start, info.first_task) {
            (Some(s), Some(f)) => duration(f.saturating_sub(s)),
            _ => "–".to_string(),
        };
        queued.push_str(" (start to first task)");
        if let Some(waited) = info.pool_queue_us {
            queued.push_str(&format!(
                ", {} of it in the pool's job queue",
                duration(waited)
            ));
        }
        if let Some(limit) = info.timed_out_after_us {
            queued.push_str(&format!("; timed out after {}", duration(limit)));
        }
        let elapsed = match (info.start, info.end) {
            (Some(s), Some(e)) => duration(e.saturating_sub(s)),
            _ => "–".to_string(),
        };
        let _ = writeln!(
            html,
            "<details class=\"job-detail\"{}><summary><span class=\"swatch\" \
             style=\"background:{}\"></span><strong>job {job}</strong> · pool {} · {} · {elapsed} · \
             queued {queued} · {} yield{} · {} stage{} \
             <span class=\"desc\">{}</span></summary>",
            if open { " open" } else { "" },
            tl.job_colour(*job),
            escape(&info.pool),
            escape(info.status.as_deref().unwrap_or("unfinished")),
            info.yields,
            if info.yields == 1 { "" } else { "s" },
            stages.len(),
            if stages.len() == 1 { "" } else { "s" },
            escape(&truncate(&info.description, 100)),
        );
        html.push_str("<div class=\"stages\">");
        render_stage_table(&stages, html);
        render_dag(&stages, html);
        html.push_str("</div></details>\n");
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn render_stage_table(stages: &[(u64, &StageInfo)], html: &mut String) {
    html.push_str(
        "<table class=\"stage-table\"><tr><th>stage</th><th>reads</th><th>tasks</th>\
         <th>wall</th><th>busy</th><th>rows in</th><th>rows out</th><th>shuffle read</th>\
         <th>shuffle written</th><th>spilled</th><th>task min</th><th>median</th>\
         <th>max</th><th>yields</th></tr>\n",
    );
    for (stage, info) in stages {
        let wall = match (info.first_start, info.last_end) {
            (Some(s), Some(e)) => duration(e.saturating_sub(s)),
            _ => "–".to_string(),
        };
        let mut times = info.durations.clone();
        times.sort_unstable();
        let pick = |i: usize| times.get(i).map_or("–".to_string(), |t| duration(*t));
        let (min, median, max) = if times.is_empty() {
            ("–".to_string(), "–".to_string(), "–".to_string())
        } else {
            (pick(0), pick(times.len() / 2), pick(times.len() - 1))
        };
        let counter =
            |f: fn(&StageCounters) -> String| info.metrics.as_ref().map_or("–".to_string(), f);
        let _ = writeln!(
            html,
            "<tr><td>{stage}</td><td>{}</td><td>{}</td><td>{wall}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{min}</td><td>{median}</td>\
             <td>{max}</td><td>{}</td></tr>",
            counter(|m| if m.parents.is_empty() {
                "–".to_string()
            } else {
                m.parents
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            info.tasks,
            duration(info.busy_us),
            counter(|m| m.rows_in.to_string()),
            counter(|m| m.rows_out.to_string()),
            counter(|m| bytes(m.shuffle_read)),
            counter(|m| bytes(m.shuffle_written)),
            counter(|m| bytes(m.spilled)),
            info.yields,
        );
    }
    html.push_str("</table>");
}

/// The stages as boxes in columns by depth (a stage sits right of every
/// stage it reads), with an arrow from each input to its reader.
fn render_dag(stages: &[(u64, &StageInfo)], html: &mut String) {
    if stages.iter().all(|(_, i)| i.metrics.is_none()) || stages.len() > 200 {
        return;
    }
    fn parents(info: &StageInfo) -> &[u64] {
        info.metrics.as_ref().map_or(&[][..], |m| &m.parents[..])
    }
    let index: HashMap<u64, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (*s, i))
        .collect();
    // Depth: 0 for stages that read no stage, else 1 + the deepest input.
    // Inputs have lower numbers in fairway's graphs; a log that says
    // otherwise still terminates (an unknown or later input counts as 0).
    let mut depth = vec![0usize; stages.len()];
    for _ in 0..stages.len() {
        let mut changed = false;
        for (i, (_, info)) in stages.iter().enumerate() {
            let d = parents(info)
                .iter()
                .filter_map(|p| index.get(p))
                .map(|&p| depth[p] + 1)
                .max()
                .unwrap_or(0)
                .min(stages.len());
            if d != depth[i] {
                depth[i] = d;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut rows = vec![0usize; stages.len()];
    let mut per_depth: HashMap<usize, usize> = HashMap::new();
    for (i, d) in depth.iter().enumerate() {
        let next = per_depth.entry(*d).or_default();
        rows[i] = *next;
        *next += 1;
    }
    let (box_w, box_h, gap_x, gap_y) = (92.0, 34.0, 40.0, 12.0);
    let columns = depth.iter().max().map_or(1, |d| d + 1);
    let height_rows = per_depth.values().max().copied().unwrap_or(1);
    let width = columns as f64 * (box_w + gap_x) + 8.0;
    let height = height_rows as f64 * (box_h + gap_y) + 8.0;
    let pos = |i: usize| {
        (
            4.0 + depth[i] as f64 * (box_w + gap_x),
            4.0 + rows[i] as f64 * (box_h + gap_y),
        )
    };
    let _ = writeln!(
        html,
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-size=\"11\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" \
         fill=\"#888\"/></marker></defs>"
    );
    for (i, (_, info)) in stages.iter().enumerate() {
        let (x2, y2) = pos(i);
        for p in parents(info).iter().filter_map(|p| index.get(p)) {
            let (x1, y1) = pos(*p);
            let _ = writeln!(
                html,
                "<line class=\"edge\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" \
                 marker-end=\"url(#arrow)\"/>",
                x1 + box_w,
                y1 + box_h / 2.0,
                x2,
                y2 + box_h / 2.0
            );
        }
    }
    for (i, (stage, info)) in stages.iter().enumerate() {
        let (x, y) = pos(i);
        let _ = writeln!(
            html,
            "<g class=\"node\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{box_w}\" \
             height=\"{box_h}\" rx=\"4\"/><text x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"middle\"><tspan font-weight=\"600\">stage {stage}</tspan>\
             <tspan x=\"{:.1}\" dy=\"13\">{} task{}</tspan></text></g>",
            x + box_w / 2.0,
            y + 14.0,
            x + box_w / 2.0,
            info.tasks,
            if info.tasks == 1 { "" } else { "s" },
        );
    }
    html.push_str("</svg>");
}

const CSS: &str = "\
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:16px 24px;color:#222;background:#fff}\
h1{font-size:20px;margin:0 0 10px}\
.totals{display:flex;gap:28px;margin:0 0 6px;flex-wrap:wrap}\
.totals div{display:flex;flex-direction:column}\
.k{font-size:11px;color:#666;text-transform:lowercase}\
.v{font-size:18px;font-weight:600}\
svg{display:block}\
svg .row{fill:#fafafa}\
svg .row.even{fill:#f0f0f0}\
svg .grid{stroke:#ddd;stroke-width:1}\
svg .tick{fill:#555;font-size:11px}\
svg .label{fill:#444;font-size:11px}\
svg .task{stroke:#fff;stroke-width:0.5}\
svg .task:hover{stroke:#000;stroke-width:1.5}\
svg .stage{stroke-width:1;opacity:.8}\
svg .stage.done{stroke-dasharray:3 3;opacity:.6}\
svg .stage-label{font-size:10px;font-weight:600}\
svg .lane{fill:#f6f6f6;stroke:#ddd}svg .pool{shape-rendering:crispEdges}\
.pools{margin:4px 0 12px 64px;display:flex;gap:18px;align-items:center;font-size:13px}\
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}\
.muted{color:#777}\
table.jobs{border-collapse:collapse;font-size:12px;margin-left:64px}\
table.jobs th{text-align:left;color:#666;font-weight:normal;border-bottom:1px solid #ccc;padding:2px 10px 2px 0}\
table.jobs td{padding:2px 10px 2px 0;border-bottom:1px solid #eee;white-space:nowrap}\
table.jobs td.desc{font-family:monospace;white-space:pre}\
td.status.failed,td.status.cancelled{color:#c00;font-weight:600}\
.note{font-size:11px;color:#777;margin-left:64px}\
svg .share{fill:none;stroke-width:1.5;stroke-dasharray:5 3}\
h2{font-size:16px;margin:18px 0 6px 64px}\
details.job-detail{margin:0 0 8px 64px;font-size:12px}\
details.job-detail summary{cursor:pointer;padding:3px 0}\
details.job-detail .desc{font-family:monospace;color:#555;margin-left:6px}\
.stages{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap;margin:4px 0 0 18px}\
table.stage-table{border-collapse:collapse;font-size:12px}\
table.stage-table th{text-align:right;color:#666;font-weight:normal;border-bottom:1px solid #ccc;padding:2px 8px}\
table.stage-table td{text-align:right;padding:2px 8px;border-bottom:1px solid #eee;white-space:nowrap}\
svg.dag .node rect{fill:#f4f6fa;stroke:#8896ab}\
svg.dag .edge{stroke:#888;stroke-width:1.2}\
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::status;

    /// 2 jobs in 2 pools on 2 slots; job 1's partition 1 yields slot 1 to
    /// job 2 at 200 us and resumes on slot 0 at 400 us.
    const LOG: &str = r#"{"event":"job_start","time_us":0,"job":1,"pool":"etl","description":"select <b> & \"x\" from t"}
{"event":"stage_submitted","time_us":0,"job":1,"stage":0,"tasks":2}
{"event":"task_start","time_us":0,"job":1,"stage":0,"partition":0,"attempt":0,"pool":"etl","slot":0}
{"event":"task_start","time_us":0,"job":1,"stage":0,"partition":1,"attempt":0,"pool":"etl","slot":1}
{"event":"job_start","time_us":100,"job":2,"pool":"dash","description":"select 2"}
{"event":"stage_submitted","time_us":100,"job":2,"stage":0,"tasks":1}
{"event":"task_yield","time_us":200,"job":1,"stage":0,"partition":1,"attempt":0,"pool":"etl","slot":1}
{"event":"task_start","time_us":200,"job":2,"stage":0,"partition":0,"attempt":0,"pool":"dash","slot":1}
{"event":"task_end","time_us":400,"job":1,"stage":0,"partition":0,"attempt":0,"pool":"etl","slot":0,"duration_us":400,"rows":10,"bytes":80,"status":"succeeded"}
{"event":"task_resume","time_us":400,"job":1,"stage":0,"partition":1,"attempt":0,"pool":"etl","slot":0}
{"event":"some_future_event","time_us":450,"whatever":true}

{"event":"task_end","time_us":500,"job":2,"stage":0,"partition":0,"attempt":0,"pool":"dash","slot":1,"duration_us":300,"rows":1,"bytes":8,"status":"succeeded"}
{"event":"stage_completed","time_us":500,"job":2,"stage":0}
{"event":"job_end","time_us":500,"job":2,"pool":"dash","description":"select 2","status":"succeeded"}
{"event":"task_end","time_us":600,"job":1,"stage":0,"partition":1,"attempt":0,"pool":"etl","slot":0,"duration_us":400,"rows":5,"bytes":40,"status":"succeeded"}
{"event":"stage_completed","time_us":600,"job":1,"stage":0}
{"event":"job_end","time_us":1000,"job":1,"pool":"etl","description":"select <b> & \"x\" from t","status":"succeeded"}
"#;

    fn write_log(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_events_and_skips_unknown_ones() {
        let (_dir, path) = write_log(LOG);
        let events = read_event_log(&path).unwrap();
        assert_eq!(events.len(), 16);
        assert_eq!(
            events[6],
            Event::TaskYield {
                time_us: 200,
                task: TaskRef {
                    job: 1,
                    stage: 0,
                    partition: 1,
                    attempt: 0,
                    pool: "etl".into(),
                    slot: 1
                }
            }
        );
    }

    #[test]
    fn totals_count_held_intervals() {
        let (_dir, path) = write_log(LOG);
        let t = totals(&read_event_log(&path).unwrap());
        // Held: slot 0 0-400 and 400-600, slot 1 0-200 and 200-500.
        assert_eq!(t.wall_us, 1000);
        assert_eq!(t.busy_us, 400 + 200 + 200 + 300);
        assert_eq!(t.slots, 2);
        // 1100 / (2 x 1000) = 55 %.
        assert!((t.utilisation_pct - 55.0).abs() < 1e-9);
        assert_eq!(
            t.to_string(),
            "wall time 0.001 s, busy slot-time 0.001 s, 2 slots, utilisation 55.0%"
        );
    }

    #[test]
    fn renders_one_self_contained_page() {
        let (_dir, path) = write_log(LOG);
        let html = render_html(&read_event_log(&path).unwrap(), "Run <1> & more");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<svg").count(), 1);
        assert_eq!(html.matches("</svg>").count(), 1);
        assert!(!html.contains("<script"));
        assert!(!html.contains("src=") && !html.contains("href="));
        assert!(html.contains("<h1>Run &lt;1&gt; &amp; more</h1>"));
        // Four slot-holding intervals: partition 1 of job 1 has two.
        assert_eq!(html.matches("<rect class=\"task\"").count(), 4);
        assert!(html.contains("slot 0</text>") && html.contains("slot 1</text>"));
        assert!(!html.contains("slot 2</text>"));
        // Tooltips.
        assert!(html.contains("<title>job 1 · stage 0 · partition 1 · attempt 0\npool etl · slot 0\nrows 5 · duration 400 µs (this slice 200 µs) · succeeded</title>"), "{html}");
        assert!(html.contains("rows 10 · duration 400 µs · succeeded"));
        // Job legend: both jobs, pool, status, escaped description.
        assert_eq!(html.matches("<tr class=\"job\">").count(), 2);
        assert!(html.contains("select &lt;b&gt; &amp; &quot;x&quot; from t"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("<td>dash</td>") && html.contains("<td>etl</td>"));
        assert!(html.contains("succeeded</td>"));
        // Totals.
        assert!(html.contains("utilisation</span><span class=\"v\">55.0%"));
        assert!(html.contains("slots</span><span class=\"v\">2<"));
        assert!(html.contains("wall time</span><span class=\"v\">0.001 s"));
        // Stage markers and the pool lane with its legend.
        assert!(html.contains(">J1 S0</text>") && html.contains(">J2 S0</text>"));
        assert_eq!(html.matches("<line class=\"stage\"").count(), 2);
        assert_eq!(html.matches("<line class=\"stage done\"").count(), 2);
        assert!(html.contains("busy slots by pool"));
        assert!(html.contains("<rect class=\"pool\""));
        assert!(html.contains("<title>pool dash · "));
        assert_eq!(html.matches("<span class=\"pool-entry\">").count(), 2);
    }

    #[test]
    fn jobs_get_stage_tables_dags_queue_waits_and_pools_their_fair_shares() {
        // LOG, plus the pools' settings and job 1 as two stages: stage 1
        // reads stage 0's shuffle output.
        let extra = r#"{"event":"pool","time_us":0,"name":"etl","mode":"fair","weight":3,"min_share":0}
{"event":"pool","time_us":0,"name":"dash","mode":"fifo","weight":1,"min_share":1}
{"event":"stage_metrics","time_us":1000,"job":1,"stage":0,"parents":[],"rows_in":1500,"rows_out":15,"bytes_in":9000,"bytes_out":120,"shuffle_read":0,"shuffle_written":2048,"spilled":0}
{"event":"stage_submitted","time_us":600,"job":1,"stage":1,"tasks":1}
{"event":"stage_metrics","time_us":1000,"job":1,"stage":1,"parents":[0],"rows_in":15,"rows_out":3,"bytes_in":120,"bytes_out":24,"shuffle_read":2048,"shuffle_written":0,"spilled":0}
"#;
        let (_dir, path) = write_log(&format!("{LOG}{extra}"));
        let html = render_html(&read_event_log(&path).unwrap(), "stages");
        assert!(!html.contains("<script"));
        // Job 1: queued 0 µs (its tasks started at once), one yield, two
        // stages; job 2 waited 100 µs for its first task.
        assert!(html.contains("<strong>job 1</strong> · pool etl · succeeded · 1.0 ms · queued 0 µs (start to first task) · 1 yield · 2 stages"), "{html}");
        assert!(
            html.contains(
                "<strong>job 2</strong> · pool dash · succeeded · 400 µs · queued 100 µs"
            ),
            "{html}"
        );
        // Stage 0 of job 1: 2 tasks, wall 600 µs, busy 800 µs (0-400 and
        // 0-200 + 400-600), task times 400 µs each, rows and shuffle bytes
        // from its metrics; stage 1 reads stage 0.
        assert!(html.contains("<tr><td>0</td><td>–</td><td>2</td><td>600 µs</td><td>800 µs</td><td>1500</td><td>15</td><td>0 B</td><td>2.0 KiB</td><td>0 B</td><td>400 µs</td><td>400 µs</td><td>400 µs</td><td>1</td></tr>"), "{html}");
        assert!(
            html.contains("<tr><td>1</td><td>0</td><td>1</td>"),
            "{html}"
        );
        // The DAG of job 1: two boxes and one edge; job 2 has no metrics,
        // so no DAG.
        assert_eq!(html.matches("<svg class=\"dag\"").count(), 1);
        assert_eq!(html.matches("<line class=\"edge\"").count(), 1);
        assert!(html.contains(">stage 1</tspan>"));
        // Pool settings in the legend and a fair-share line per pool.
        assert!(html.contains("(fair, weight 3, minShare 0; "), "{html}");
        assert!(html.contains("(fifo, weight 1, minShare 1; "), "{html}");
        assert_eq!(html.matches("<polyline class=\"share\"").count(), 2);
        // Pool colours are not job colours.
        for colour in POOL_PALETTE {
            assert!(!JOB_PALETTE.contains(&colour));
        }
    }

    #[test]
    fn a_job_that_waited_in_its_pools_queue_and_timed_out_says_so() {
        let log = r#"{"event":"job_start","time_us":0,"job":1,"pool":"etl","description":"a"}
{"event":"job_queued","time_us":0,"job":1,"pool":"etl","position":1}
{"event":"job_admitted","time_us":400,"job":1,"pool":"etl","waited_us":400}
{"event":"stage_submitted","time_us":400,"job":1,"stage":0,"tasks":1}
{"event":"task_start","time_us":500,"job":1,"stage":0,"partition":0,"attempt":0,"pool":"etl","slot":0}
{"event":"job_timed_out","time_us":2500,"job":1,"pool":"etl","limit_us":2000,"queued":false}
{"event":"task_end","time_us":2500,"job":1,"stage":0,"partition":0,"attempt":0,"pool":"etl","slot":0,"duration_us":2000,"rows":0,"bytes":0,"status":"failed","error":"aborted: job timed out"}
{"event":"job_end","time_us":2500,"job":1,"pool":"etl","description":"a","status":"timed_out"}
"#;
        let (_dir, path) = write_log(log);
        let html = render_html(&read_event_log(&path).unwrap(), "queue");
        assert!(
            html.contains("· timed_out · 2.5 ms · queued 500 µs (start to first task), 400 µs of it in the pool's job queue; timed out after 2.0 ms"),
            "{html}"
        );
    }

    #[test]
    fn a_task_without_an_end_holds_its_slot_to_the_end_of_the_log() {
        let log = r#"{"event":"task_start","time_us":10,"job":1,"stage":0,"partition":0,"attempt":0,"pool":"p","slot":3}
{"event":"stage_completed","time_us":110,"job":1,"stage":0}
"#;
        let (_dir, path) = write_log(log);
        let events = read_event_log(&path).unwrap();
        let t = totals(&events);
        assert_eq!((t.wall_us, t.busy_us, t.slots), (100, 100, 4));
        assert!((t.utilisation_pct - 25.0).abs() < 1e-9);
        let html = render_html(&events, "x");
        assert_eq!(html.matches("<rect class=\"task\"").count(), 1);
        assert!(html.contains("no task_end"));
    }

    #[test]
    fn an_empty_log_renders() {
        let html = render_html(&[], "empty");
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(html.contains("utilisation</span><span class=\"v\">0.0%"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let (_dir, path) = write_log(
            "{\"event\":\"job_start\",\"time_us\":0,\"job\":1,\"pool\":\"p\",\"description\":\"d\"}\n\
             \n\
             {\"event\":\"task_start\",\"time_us\":5,\"job\":1\n",
        );
        let err = read_event_log(&path).unwrap_err();
        assert!(
            matches!(err, TimelineError::Parse { line: 3, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("events.jsonl"), "{message}");
        assert!(message.contains("line 3"), "{message}");

        let (_dir, path) = write_log("{\"event\":\"task_start\",\"time_us\":5,\"job\":1}\n");
        let message = read_event_log(&path).unwrap_err().to_string();
        assert!(
            message.contains("line 1") && message.contains("`stage`"),
            "{message}"
        );

        let missing = Path::new("/no/such/events.jsonl");
        let err = read_event_log(missing).unwrap_err();
        assert!(matches!(err, TimelineError::Io { .. }));
        assert!(err.to_string().contains("/no/such/events.jsonl"));
    }

    fn parse_error(text: &str) -> (usize, String) {
        let (_dir, path) = write_log(text);
        match read_event_log(&path).unwrap_err() {
            err @ TimelineError::Parse { line, .. } => (line, err.to_string()),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn a_slot_number_out_of_range_is_an_error_naming_the_line() {
        let (line, message) = parse_error(
            "{\"event\":\"job_start\",\"time_us\":0,\"job\":1,\"pool\":\"p\",\"description\":\"d\"}\n\
             {\"event\":\"task_start\",\"time_us\":5,\"job\":1,\"stage\":0,\"partition\":0,\
             \"attempt\":0,\"pool\":\"p\",\"slot\":4000000000}\n",
        );
        assert_eq!(line, 2, "{message}");
        assert!(message.contains("events.jsonl, line 2"), "{message}");
        assert!(
            message.contains("`slot` is 4000000000, out of range: at most 9999"),
            "{message}"
        );
    }

    #[test]
    fn huge_times_durations_and_counts_are_errors() {
        let (line, message) = parse_error(
            "{\"event\":\"stage_completed\",\"time_us\":18446744073709551615,\"job\":1,\"stage\":0}\n",
        );
        assert_eq!(line, 1);
        assert!(
            message.contains("`time_us` is 18446744073709551615"),
            "{message}"
        );
        let (_, message) = parse_error(
            "{\"event\":\"task_end\",\"time_us\":5,\"job\":1,\"stage\":0,\"partition\":0,\
             \"attempt\":0,\"pool\":\"p\",\"slot\":0,\"duration_us\":18446744073709551615,\
             \"rows\":0,\"bytes\":0,\"status\":\"succeeded\"}\n",
        );
        assert!(
            message.contains("`duration_us` is 18446744073709551615"),
            "{message}"
        );
        let (_, message) = parse_error(
            "{\"event\":\"stage_submitted\",\"time_us\":5,\"job\":1,\"stage\":0,\"tasks\":1000000000000000}\n",
        );
        assert!(message.contains("`tasks` is 1000000000000000"), "{message}");
        // The largest values allowed still render, with bounded work.
        let edge = format!(
            "{{\"event\":\"task_start\",\"time_us\":0,\"job\":1,\"stage\":0,\"partition\":0,\
             \"attempt\":0,\"pool\":\"p\",\"slot\":{MAX_SLOT}}}\n\
             {{\"event\":\"stage_completed\",\"time_us\":{MAX_TIME_US},\"job\":1,\"stage\":0}}\n"
        );
        let (_dir, path) = write_log(&edge);
        let events = read_event_log(&path).unwrap();
        let html = render_html(&events, "edge");
        assert_eq!(totals(&events).slots, MAX_SLOT + 1);
        assert!(html.len() < 8 << 20, "{} bytes", html.len());
    }

    #[test]
    fn invalid_utf8_and_overlong_lines_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(
            &path,
            b"\n{\"event\":\"job_start\",\"description\":\"\xff\"}\n",
        )
        .unwrap();
        let message = read_event_log(&path).unwrap_err().to_string();
        assert!(message.contains("line 2: not valid UTF-8"), "{message}");

        let long = format!("{{\"event\":\"x\",\"pad\":\"{}\"}}\n", "a".repeat(100));
        let file = std::io::BufReader::new(long.as_bytes());
        let err = read_lines(&path, file, 50).unwrap_err().to_string();
        assert!(err.contains("line 1: line longer than 50 bytes"), "{err}");
        let file = std::io::BufReader::new(long.as_bytes());
        assert!(read_lines(&path, file, long.len()).unwrap().is_empty());
    }

    #[test]
    fn events_out_of_order_give_the_timeline_of_the_sorted_log() {
        let (_dir, path) = write_log(LOG);
        let sorted = read_event_log(&path).unwrap();
        let reversed: String = LOG.lines().rev().map(|l| format!("{l}\n")).collect();
        let (_dir2, path2) = write_log(&reversed);
        let shuffled = read_event_log(&path2).unwrap();
        assert_eq!(totals(&shuffled), totals(&sorted));
        let html = render_html(&shuffled, "x");
        assert_eq!(html.matches("<rect class=\"task\"").count(), 4);
        assert!(!html.contains("no task_end"), "{html}");
    }

    /// A log that shows two tasks on one slot at once (which fairway never
    /// writes) cannot make the busy slot-time exceed slots x wall time.
    #[test]
    fn utilisation_never_exceeds_100_percent() {
        let mut log = String::new();
        for p in 0..3 {
            log.push_str(&format!(
                "{{\"event\":\"task_start\",\"time_us\":0,\"job\":1,\"stage\":0,\"partition\":{p},\
                 \"attempt\":0,\"pool\":\"p\",\"slot\":0}}\n"
            ));
        }
        for p in 0..3 {
            log.push_str(&format!(
                "{{\"event\":\"task_end\",\"time_us\":1000,\"job\":1,\"stage\":0,\"partition\":{p},\
                 \"attempt\":0,\"pool\":\"p\",\"slot\":0,\"duration_us\":1000,\"rows\":1,\
                 \"bytes\":1,\"status\":\"succeeded\"}}\n"
            ));
        }
        let (_dir, path) = write_log(&log);
        let events = read_event_log(&path).unwrap();
        let t = totals(&events);
        assert_eq!((t.wall_us, t.busy_us, t.slots), (1000, 1000, 1), "{t}");
        assert!(t.utilisation_pct <= 100.0, "{t}");
        // The pool lane never shows more busy slots than there are.
        let html = render_html(&events, "x");
        let shares: Vec<f64> = html
            .split(" busy slots at ")
            .filter_map(|s| s.rsplit(" · ").next().and_then(|v| v.parse().ok()))
            .collect();
        assert!(!shares.is_empty(), "{html}");
        assert!(shares.iter().all(|s| *s <= 1.0 + 1e-9), "{shares:?}");
        // And the sample log, in any order, stays within bounds too.
        let (_dir, path) = write_log(LOG);
        assert!(totals(&read_event_log(&path).unwrap()).utilisation_pct <= 100.0);
    }

    /// `jobs` jobs in `jobs` pools, each one stage of one task on one of 8
    /// slots.
    fn many_jobs(jobs: u64) -> Vec<Event> {
        let mut events = Vec::new();
        for j in 0..jobs {
            let t = j * 10;
            let pool = format!("pool{j}");
            let task = TaskRef {
                job: j,
                stage: 0,
                partition: 0,
                attempt: 0,
                pool: pool.clone(),
                slot: j % 8,
            };
            let description = format!("select {j} from t where x = 'job {j}'");
            events.extend([
                Event::JobStart {
                    time_us: t,
                    job: j,
                    pool: pool.clone(),
                    description: description.clone(),
                },
                Event::StageSubmitted {
                    time_us: t,
                    job: j,
                    stage: 0,
                    tasks: 1,
                },
                Event::TaskStart {
                    time_us: t,
                    task: task.clone(),
                },
                Event::TaskEnd {
                    time_us: t + 40,
                    task,
                    duration_us: 40,
                    rows: 1,
                    bytes: 8,
                    status: status::SUCCEEDED.into(),
                    error: None,
                },
                Event::StageCompleted {
                    time_us: t + 40,
                    job: j,
                    stage: 0,
                },
                Event::JobEnd {
                    time_us: t + 40,
                    job: j,
                    pool,
                    description,
                    status: status::SUCCEEDED.into(),
                },
            ]);
        }
        events
    }

    /// The page of 100,000 jobs took 52 s when each job scanned every job
    /// and bar; it must grow about linearly: 5x the jobs take well under
    /// the 25x of a quadratic build (best of two runs each).
    #[test]
    fn a_hundred_thousand_jobs_render_in_linear_time() {
        let time = |events: &[Event]| {
            (0..2)
                .map(|_| {
                    let start = std::time::Instant::now();
                    let html = render_html(events, "many");
                    assert!(html.ends_with("</html>\n"));
                    start.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min)
        };
        let small = many_jobs(20_000);
        let large = many_jobs(100_000);
        let (small_s, large_s) = (time(&small), time(&large));
        let ratio = large_s / small_s.max(1e-6);
        eprintln!("render_html: 20,000 jobs {small_s:.3} s, 100,000 jobs {large_s:.3} s");
        assert!(
            ratio < 12.0,
            "20,000 jobs {small_s:.3} s, 100,000 jobs {large_s:.3} s: ratio {ratio:.1}"
        );
        assert!(large_s < 60.0, "100,000 jobs took {large_s:.1} s");
        let html = render_html(&large, "many");
        assert_eq!(html.matches("<tr class=\"job\">").count(), 100_000);
        assert!(html.contains("jobs</span><span class=\"v\">100000<"));
    }

    #[test]
    fn control_characters_are_escaped_in_the_page_and_in_messages() {
        let log = "{\"event\":\"job_start\",\"time_us\":0,\"job\":1,\"pool\":\"p\\u0007ool\",\
                   \"description\":\"select \\u001b[31mred\\u001b[0m \\u202eevil\\u202c from t\\u0000\"}\n\
                   {\"event\":\"task_start\",\"time_us\":0,\"job\":1,\"stage\":0,\"partition\":0,\
                   \"attempt\":0,\"pool\":\"p\\u0007ool\",\"slot\":0}\n\
                   {\"event\":\"task_end\",\"time_us\":10,\"job\":1,\"stage\":0,\"partition\":0,\
                   \"attempt\":0,\"pool\":\"p\\u0007ool\",\"slot\":0,\"duration_us\":10,\"rows\":1,\
                   \"bytes\":8,\"status\":\"fail\\u001bed\",\"error\":\"boom\\u001b[2J\"}\n\
                   {\"event\":\"job_end\",\"time_us\":10,\"job\":1,\"pool\":\"p\",\"description\":\"\",\
                   \"status\":\"odd\\\" onclick=\\\"x\"}\n";
        let (_dir, path) = write_log(log);
        let html = render_html(&read_event_log(&path).unwrap(), "t\u{1b}itle\u{202e}");
        for hidden in ['\u{0}', '\u{7}', '\u{1b}', '\u{202e}', '\u{202c}'] {
            assert!(!html.contains(hidden), "{hidden:?} in the page");
        }
        assert!(
            html.contains("select \\u{1b}[31mred\\u{1b}[0m \\u{202e}evil\\u{202c} from t\\u{0}")
        );
        assert!(html.contains("<td>p\\u{7}ool</td>"), "{html}");
        assert!(html.contains("<h1>t\\u{1b}itle\\u{202e}</h1>"));
        assert!(html.contains("error: boom\\u{1b}[2J"));
        assert!(
            html.contains("· fail\\u{1b}ed\nerror: boom\\u{1b}[2J</title>"),
            "{html}"
        );
        assert!(
            html.contains("status other\">odd&quot; onclick=&quot;x</td>"),
            "{html}"
        );

        let (_, message) = parse_error(
            "{\"event\":\"task_start\",\"time_us\":1,\"job\":2,\"stage\":0,\"partition\":0,\
             \"attempt\":0,\"pool\":\"x\",\"slot\":\"\\u202e\\u001b[2J\"}\n",
        );
        assert!(!message.chars().any(is_hidden), "{message:?}");
        assert!(message.contains("\\u{202e}"), "{message}");
        assert_eq!(printable("a\nb\u{1b}"), "a\\u{a}b\\u{1b}");
        assert!(matches!(printable("plain"), Cow::Borrowed("plain")));
    }

    #[cfg(unix)]
    #[test]
    fn the_page_is_never_written_over_its_own_log() {
        let (dir, path) = write_log(LOG);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let link = dir.path().join("link.html");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let hard = dir.path().join("hard.html");
        std::fs::hard_link(&path, &hard).unwrap();
        for output in [
            path.clone(),
            dir.path().join("sub/../events.jsonl"),
            link,
            hard,
        ] {
            let err = write_page(&path, &output, "x").unwrap_err().to_string();
            assert!(err.contains("is the event log"), "{err}");
            assert!(err.contains(&output.display().to_string()), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), LOG);
        }
        let page = dir.path().join("page.html");
        let t = write_page(&path, &page, "x").unwrap();
        assert!((t.utilisation_pct - 55.0).abs() < 1e-9);
        assert!(
            std::fs::read_to_string(&page)
                .unwrap()
                .starts_with("<!DOCTYPE html>")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&page), 0o644, "a new page is readable by all");
        std::fs::set_permissions(&page, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_page(&path, &page, "y").unwrap();
        assert_eq!(mode(&page), 0o600, "a replaced page keeps its mode");
    }
}
