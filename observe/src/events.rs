//! The one schema of the JSON-lines event log: [`Event`], written by
//! [`crate::EventLog`], read by [`crate::timeline`] and by the tests.
//!
//! Every line is one object whose `event` names the kind and whose
//! `time_us` (microseconds since the log was opened) comes second; the
//! other fields follow in the order they are declared here. The names and
//! fields are stable: other tools (notebooks, dashboards) read them.
//!
//! | event | fields |
//! |---|---|
//! | `job_start` | `job`, `pool`, `description` |
//! | `job_end` | `job`, `pool`, `description`, `status` (`succeeded`, `failed`, `cancelled`, `timed_out`) |
//! | `stage_submitted` | `job`, `stage`, `tasks` |
//! | `stage_completed` | `job`, `stage` |
//! | `task_start` | `job`, `stage`, `partition`, `attempt`, `pool`, `slot` |
//! | `task_yield` | as `task_start`: the task gave up `slot` to a fairer pool |
//! | `task_resume` | as `task_start`: the task continues on `slot` |
//! | `task_end` | as `task_start`, plus `duration_us`, `rows`, `bytes`, `status` (`succeeded`, `failed`) and `error` when failed |
//! | `stage_metrics` | `job`, `stage`, `parents`, `rows_in`, `rows_out`, `bytes_in`, `bytes_out`, `shuffle_read`, `shuffle_written`, `spilled` (after the job ends) |
//! | `pool` | `name`, `mode`, `weight`, `min_share` (a configured pool, when the log opens) |
//! | `job_queued` | `job`, `pool`, `position` (its pool runs `maxRunningJobs` jobs: it waits, 1 = next) |
//! | `job_admitted` | `job`, `pool`, `waited_us` (a queued job may now run) |
//! | `job_timed_out` | `job`, `pool`, `limit_us`, `queued` (true: while it waited); its `job_end` says `timed_out` |
//!
//! Reading is strict about what a timeline must trust (a slot number sizes
//! the page, a time its axis): every number is checked against the bounds
//! below, and a value of the wrong type is an error naming its field.

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The highest slot number a log may name: a timeline draws one row per
/// slot, so a slot number sizes the page.
pub const MAX_SLOT: u64 = 9_999;
/// The latest time (and longest duration) a log may hold: ten years, in
/// microseconds.
pub const MAX_TIME_US: u64 = 10 * 366 * 24 * 3_600 * 1_000_000;
/// The most tasks a stage may have.
pub const MAX_TASKS: u64 = u32::MAX as u64;
/// The most parents a stage may list (a timeline draws an edge for each).
pub const MAX_PARENTS: usize = 10_000;

/// The values of `status`. A reader keeps any other text as it is (a
/// newer writer may add one), so statuses are strings rather than an enum.
pub mod status {
    /// A job or task that completed.
    pub const SUCCEEDED: &str = "succeeded";
    /// A job or task that failed.
    pub const FAILED: &str = "failed";
    /// A job that was cancelled.
    pub const CANCELLED: &str = "cancelled";
    /// A job cancelled by its timeout.
    pub const TIMED_OUT: &str = "timed_out";
}

/// The task fields shared by `task_start`, `task_yield`, `task_resume` and
/// `task_end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    #[serde(deserialize_with = "job")]
    pub job: u64,
    #[serde(deserialize_with = "stage")]
    pub stage: u64,
    #[serde(deserialize_with = "partition")]
    pub partition: u64,
    #[serde(deserialize_with = "attempt")]
    pub attempt: u64,
    #[serde(deserialize_with = "pool")]
    pub pool: String,
    #[serde(deserialize_with = "slot")]
    pub slot: u64,
}

impl TaskRef {
    /// Which attempt of which task this is.
    pub fn key(&self) -> (u64, u64, u64, u64) {
        (self.job, self.stage, self.partition, self.attempt)
    }
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A job was accepted.
    JobStart {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "job")]
        job: u64,
        #[serde(deserialize_with = "pool")]
        pool: String,
        #[serde(deserialize_with = "description")]
        description: String,
    },
    /// A job ended; no more events come for it.
    JobEnd {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "job")]
        job: u64,
        #[serde(deserialize_with = "pool")]
        pool: String,
        #[serde(deserialize_with = "description")]
        description: String,
        /// One of [`status`]'s values.
        #[serde(deserialize_with = "status")]
        status: String,
    },
    /// All parents of a stage completed: its tasks may now get slots.
    StageSubmitted {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "job")]
        job: u64,
        #[serde(deserialize_with = "stage")]
        stage: u64,
        #[serde(deserialize_with = "tasks")]
        tasks: u64,
    },
    /// Every task of a stage succeeded.
    StageCompleted {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "job")]
        job: u64,
        #[serde(deserialize_with = "stage")]
        stage: u64,
    },
    /// A task got a slot and was started.
    TaskStart {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(flatten)]
        task: TaskRef,
    },
    /// A task gave up its slot to a fairer pool.
    TaskYield {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(flatten)]
        task: TaskRef,
    },
    /// A task that yielded continues on a slot.
    TaskResume {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(flatten)]
        task: TaskRef,
    },
    /// A task attempt ended.
    TaskEnd {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(flatten)]
        task: TaskRef,
        #[serde(deserialize_with = "duration_us")]
        duration_us: u64,
        #[serde(deserialize_with = "rows")]
        rows: u64,
        #[serde(deserialize_with = "bytes")]
        bytes: u64,
        /// [`status::SUCCEEDED`] or [`status::FAILED`].
        #[serde(deserialize_with = "status")]
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// What a stage of a finished job did, over its successful task
    /// attempts (the engine writes one per stage after the job ends).
    StageMetrics {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "job")]
        job: u64,
        #[serde(deserialize_with = "stage")]
        stage: u64,
        /// The stages whose output it reads.
        #[serde(deserialize_with = "parents")]
        parents: Vec<u64>,
        #[serde(deserialize_with = "rows_in")]
        rows_in: u64,
        #[serde(deserialize_with = "rows_out")]
        rows_out: u64,
        #[serde(deserialize_with = "bytes_in")]
        bytes_in: u64,
        #[serde(deserialize_with = "bytes_out")]
        bytes_out: u64,
        #[serde(deserialize_with = "shuffle_read")]
        shuffle_read: u64,
        #[serde(deserialize_with = "shuffle_written")]
        shuffle_written: u64,
        #[serde(deserialize_with = "spilled")]
        spilled: u64,
    },
    /// A configured pool (FAIR scheduling), written when the log opens.
    Pool {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "name")]
        name: String,
        /// `FIFO` or `FAIR`: how the pool orders its own jobs.
        #[serde(deserialize_with = "mode")]
        mode: String,
        #[serde(deserialize_with = "weight")]
        weight: u64,
        #[serde(deserialize_with = "min_share")]
        min_share: u64,
    },
    /// A job waits in its pool's queue (`maxRunningJobs`).
    JobQueued {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "job")]
        job: u64,
        #[serde(deserialize_with = "pool")]
        pool: String,
        /// Its place in the queue, from 1.
        #[serde(deserialize_with = "position")]
        position: u64,
    },
    /// A queued job was admitted.
    JobAdmitted {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "job")]
        job: u64,
        #[serde(deserialize_with = "pool")]
        pool: String,
        /// How long it waited in the queue.
        #[serde(deserialize_with = "duration_us")]
        waited_us: u64,
    },
    /// A job passed its timeout and is cancelled.
    JobTimedOut {
        #[serde(deserialize_with = "time_us")]
        time_us: u64,
        #[serde(deserialize_with = "job")]
        job: u64,
        #[serde(deserialize_with = "pool")]
        pool: String,
        /// The timeout.
        #[serde(deserialize_with = "duration_us")]
        limit_us: u64,
        /// Whether it timed out waiting in the queue.
        queued: bool,
    },
}

/// The `event` names of [`Event`], in declaration order.
pub const EVENT_NAMES: [&str; 13] = [
    "job_start",
    "job_end",
    "stage_submitted",
    "stage_completed",
    "task_start",
    "task_yield",
    "task_resume",
    "task_end",
    "stage_metrics",
    "pool",
    "job_queued",
    "job_admitted",
    "job_timed_out",
];

impl Event {
    /// Microseconds since the log was opened.
    pub fn time_us(&self) -> u64 {
        match self {
            Event::JobStart { time_us, .. }
            | Event::JobEnd { time_us, .. }
            | Event::StageSubmitted { time_us, .. }
            | Event::StageCompleted { time_us, .. }
            | Event::TaskStart { time_us, .. }
            | Event::TaskYield { time_us, .. }
            | Event::TaskResume { time_us, .. }
            | Event::TaskEnd { time_us, .. }
            | Event::StageMetrics { time_us, .. }
            | Event::Pool { time_us, .. }
            | Event::JobQueued { time_us, .. }
            | Event::JobAdmitted { time_us, .. }
            | Event::JobTimedOut { time_us, .. } => *time_us,
        }
    }

    /// Its `event` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::JobStart { .. } => "job_start",
            Event::JobEnd { .. } => "job_end",
            Event::StageSubmitted { .. } => "stage_submitted",
            Event::StageCompleted { .. } => "stage_completed",
            Event::TaskStart { .. } => "task_start",
            Event::TaskYield { .. } => "task_yield",
            Event::TaskResume { .. } => "task_resume",
            Event::TaskEnd { .. } => "task_end",
            Event::StageMetrics { .. } => "stage_metrics",
            Event::Pool { .. } => "pool",
            Event::JobQueued { .. } => "job_queued",
            Event::JobAdmitted { .. } => "job_admitted",
            Event::JobTimedOut { .. } => "job_timed_out",
        }
    }

    /// The job the event belongs to (0 for a `pool` event, which belongs
    /// to none).
    pub fn job(&self) -> u64 {
        match self {
            Event::JobStart { job, .. }
            | Event::JobEnd { job, .. }
            | Event::StageSubmitted { job, .. }
            | Event::StageCompleted { job, .. }
            | Event::StageMetrics { job, .. }
            | Event::JobQueued { job, .. }
            | Event::JobAdmitted { job, .. }
            | Event::JobTimedOut { job, .. } => *job,
            Event::Pool { .. } => 0,
            Event::TaskStart { task, .. }
            | Event::TaskYield { task, .. }
            | Event::TaskResume { task, .. }
            | Event::TaskEnd { task, .. } => task.job,
        }
    }

    /// The task fields, for the four task events.
    pub fn task(&self) -> Option<&TaskRef> {
        match self {
            Event::TaskStart { task, .. }
            | Event::TaskYield { task, .. }
            | Event::TaskResume { task, .. }
            | Event::TaskEnd { task, .. } => Some(task),
            _ => None,
        }
    }

    /// One line of the log, without its newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an event always serialises")
    }

    /// One line of a log: `Ok(None)` for a blank line or an event this
    /// version does not know (a newer writer's), an error message for
    /// anything else that is not a valid event.
    pub fn parse_line(line: &str) -> Result<Option<Event>, String> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(map) = &value else {
            return Err("expected a JSON object".to_string());
        };
        let name = map
            .get("event")
            .and_then(Value::as_str)
            .ok_or("missing string field `event`")?
            .to_string();
        if !EVENT_NAMES.contains(&name.as_str()) {
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| format!("{name}: {e}"))
    }
}

/// A non-negative integer no greater than `max` (`unit` follows `max` in
/// the message), else an error naming `field` and the value.
fn bounded<'de, D: Deserializer<'de>>(
    d: D,
    field: &str,
    max: u64,
    unit: &str,
) -> Result<u64, D::Error> {
    let value = Value::deserialize(d)?;
    let n = value.as_u64().ok_or_else(|| {
        D::Error::custom(format!(
            "field `{field}` must be a non-negative integer, got {value}"
        ))
    })?;
    if n > max {
        return Err(D::Error::custom(format!(
            "field `{field}` is {n}, out of range: at most {max} {unit}"
        )));
    }
    Ok(n)
}

fn text<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        other => Err(D::Error::custom(format!(
            "field `{field}` must be a string, got {other}"
        ))),
    }
}

/// One checked reader per field, so that an error names its field.
macro_rules! fields {
    ($($name:ident: u64 <= $max:expr, $unit:literal;)* $(; $text:ident: String)*) => {
        $(fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
            bounded(d, stringify!($name), $max, $unit)
        })*
        $(fn $text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
            text(d, stringify!($text))
        })*
    };
}

fields! {
    time_us: u64 <= MAX_TIME_US, "µs, ten years";
    duration_us: u64 <= MAX_TIME_US, "µs, ten years";
    slot: u64 <= MAX_SLOT, "(a timeline draws one row per slot)";
    tasks: u64 <= MAX_TASKS, "tasks";
    job: u64 <= u64::MAX, "";
    stage: u64 <= u64::MAX, "";
    partition: u64 <= u64::MAX, "";
    attempt: u64 <= u64::MAX, "";
    rows: u64 <= u64::MAX, "";
    bytes: u64 <= u64::MAX, "";
    rows_in: u64 <= u64::MAX, "";
    rows_out: u64 <= u64::MAX, "";
    bytes_in: u64 <= u64::MAX, "";
    bytes_out: u64 <= u64::MAX, "";
    shuffle_read: u64 <= u64::MAX, "";
    shuffle_written: u64 <= u64::MAX, "";
    spilled: u64 <= u64::MAX, "";
    weight: u64 <= u64::MAX, "";
    min_share: u64 <= u64::MAX, "";
    position: u64 <= u64::MAX, "";
    ; pool: String
    ; description: String
    ; status: String
    ; name: String
    ; mode: String
}

/// The stages a stage reads: at most [`MAX_PARENTS`] stage numbers.
fn parents<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    let value = Value::deserialize(d)?;
    let Value::Array(items) = &value else {
        return Err(D::Error::custom(format!(
            "field `parents` must be an array of stage numbers, got {value}"
        )));
    };
    if items.len() > MAX_PARENTS {
        return Err(D::Error::custom(format!(
            "field `parents` has {} stages, out of range: at most {MAX_PARENTS}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|v| {
            v.as_u64().ok_or_else(|| {
                D::Error::custom(format!(
                    "field `parents` must hold non-negative integers, got {v}"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn task() -> TaskRef {
        TaskRef {
            job: 7,
            stage: 1,
            partition: 2,
            attempt: 0,
            pool: "etl".into(),
            slot: 3,
        }
    }

    #[test]
    fn lines_have_event_then_time_then_the_fields_in_order() {
        let end = Event::TaskEnd {
            time_us: 42,
            task: task(),
            duration_us: 5,
            rows: 1,
            bytes: 8,
            status: status::SUCCEEDED.into(),
            error: None,
        };
        assert_eq!(
            end.to_line(),
            r#"{"event":"task_end","time_us":42,"job":7,"stage":1,"partition":2,"attempt":0,"pool":"etl","slot":3,"duration_us":5,"rows":1,"bytes":8,"status":"succeeded"}"#
        );
        let failed = Event::JobEnd {
            time_us: 1,
            job: 7,
            pool: "p".into(),
            description: "q \"x\"".into(),
            status: status::CANCELLED.into(),
        };
        assert_eq!(
            failed.to_line(),
            r#"{"event":"job_end","time_us":1,"job":7,"pool":"p","description":"q \"x\"","status":"cancelled"}"#
        );
    }

    /// One event of every kind.
    fn samples() -> Vec<Event> {
        vec![
            Event::JobStart {
                time_us: 0,
                job: 1,
                pool: "a".into(),
                description: "d".into(),
            },
            Event::StageSubmitted {
                time_us: 1,
                job: 1,
                stage: 0,
                tasks: 4,
            },
            Event::TaskStart {
                time_us: 2,
                task: task(),
            },
            Event::TaskYield {
                time_us: 3,
                task: task(),
            },
            Event::TaskResume {
                time_us: 4,
                task: task(),
            },
            Event::TaskEnd {
                time_us: 5,
                task: task(),
                duration_us: 3,
                rows: 0,
                bytes: 0,
                status: status::FAILED.into(),
                error: Some("boom".into()),
            },
            Event::StageCompleted {
                time_us: 6,
                job: 1,
                stage: 0,
            },
            Event::JobEnd {
                time_us: 7,
                job: 1,
                pool: "a".into(),
                description: "d".into(),
                status: status::FAILED.into(),
            },
            Event::StageMetrics {
                time_us: 8,
                job: 1,
                stage: 1,
                parents: vec![0],
                rows_in: 10,
                rows_out: 2,
                bytes_in: 800,
                bytes_out: 16,
                shuffle_read: 800,
                shuffle_written: 0,
                spilled: 0,
            },
            Event::Pool {
                time_us: 0,
                name: "etl".into(),
                mode: "fair".into(),
                weight: 2,
                min_share: 1,
            },
            Event::JobQueued {
                time_us: 9,
                job: 2,
                pool: "etl".into(),
                position: 1,
            },
            Event::JobAdmitted {
                time_us: 10,
                job: 2,
                pool: "etl".into(),
                waited_us: 1,
            },
            Event::JobTimedOut {
                time_us: 11,
                job: 2,
                pool: "etl".into(),
                limit_us: 1_000,
                queued: false,
            },
        ]
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        let events = samples();
        let mut names = Vec::new();
        for event in &events {
            let line = event.to_line();
            assert_eq!(
                Event::parse_line(&line).unwrap().as_ref(),
                Some(event),
                "{line}"
            );
            names.push(event.name());
        }
        assert_eq!(names.len(), EVENT_NAMES.len());
        assert!(EVENT_NAMES.iter().all(|n| names.contains(n)));
    }

    #[test]
    fn bad_fields_are_named() {
        let err = |line: &str| Event::parse_line(line).unwrap_err();
        assert_eq!(
            err(r#"{"event":"stage_completed","time_us":1,"job":-1,"stage":0}"#),
            "stage_completed: field `job` must be a non-negative integer, got -1"
        );
        assert!(
            err(r#"{"event":"task_start","time_us":1,"job":1}"#).contains("`stage`"),
            "a missing field is named"
        );
        assert!(
            err(r#"{"event":"job_start","time_us":1,"job":1,"pool":3,"description":""}"#)
                .contains("field `pool` must be a string, got 3")
        );
        assert!(
            err(r#"{"event":"task_end","time_us":1,"job":1,"stage":0,"partition":0,"attempt":0,"pool":"p","slot":0,"duration_us":1,"rows":0,"bytes":0,"status":7}"#)
                .contains("field `status` must be a string, got 7")
        );
        assert!(
            err(r#"{"event":"stage_metrics","time_us":1,"job":1,"stage":1,"parents":[-1],"rows_in":0,"rows_out":0,"bytes_in":0,"bytes_out":0,"shuffle_read":0,"shuffle_written":0,"spilled":0}"#)
                .contains("field `parents` must hold non-negative integers")
        );
        assert_eq!(err("[1]"), "expected a JSON object");
        assert!(err("{").starts_with("invalid JSON"));
        assert_eq!(Event::parse_line(r#"{"event":"later","x":1}"#), Ok(None));
        assert_eq!(Event::parse_line("  "), Ok(None));
    }

    /// The README's table of events names every event and every field the
    /// schema writes, so the two cannot drift apart.
    #[test]
    fn the_readme_table_names_every_event_and_field() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let start = readme.find("\n## Event log").expect("an Event log section");
        let section = &readme[start + 1..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let rows: BTreeMap<String, String> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| (l[3..].split('`').next().unwrap().to_string(), l.to_string()))
            .collect();
        let names: BTreeSet<&str> = rows.keys().map(String::as_str).collect();
        assert_eq!(names, EVENT_NAMES.into_iter().collect::<BTreeSet<_>>());
        let task_fields = ["job", "stage", "partition", "attempt", "pool", "slot"];
        for event in samples() {
            let row = &rows[event.name()];
            let Value::Object(map) = serde_json::to_value(&event).unwrap() else {
                panic!("an event is an object");
            };
            for key in map.keys().filter(|k| *k != "event" && *k != "time_us") {
                let named = row.contains(&format!("`{key}`"))
                    || (row.contains("`task_start` fields") && task_fields.contains(&key.as_str()));
                assert!(
                    named,
                    "the README's row of {} lacks `{key}`: {row}",
                    event.name()
                );
            }
        }
    }
}
