//! What each stage of a job did: tasks, time, rows and bytes in and out,
//! shuffle traffic. `EXPLAIN ANALYZE` prints it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;

use crate::config::format_size;

/// Rows and bytes that came out of a task's leaves, counted by
/// [`crate::yield_exec::YieldExec`]: scans, and shuffle readers separately.
#[derive(Debug, Default)]
pub(crate) struct LeafCounters {
    scan_rows: AtomicU64,
    scan_bytes: AtomicU64,
    shuffle_rows: AtomicU64,
    shuffle_bytes: AtomicU64,
}

impl LeafCounters {
    pub(crate) fn record(&self, from_shuffle: bool, batch: &RecordBatch) {
        let (rows, bytes) = if from_shuffle {
            (&self.shuffle_rows, &self.shuffle_bytes)
        } else {
            (&self.scan_rows, &self.scan_bytes)
        };
        rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        bytes.fetch_add(batch.get_array_memory_size() as u64, Ordering::Relaxed);
    }
}

/// One stage's totals over its tasks (successful attempts only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageMetrics {
    /// Tasks that finished.
    pub tasks: usize,
    /// From the first task's start to the last task's end.
    pub wall: Duration,
    /// Sum of the tasks' run times (slot time, including time a task spent
    /// suspended after yielding its slot).
    pub busy: Duration,
    /// Rows and in-memory Arrow bytes read from scans and shuffles.
    pub rows_in: u64,
    pub bytes_in: u64,
    /// Rows and bytes the tasks produced (written to the shuffle, or
    /// returned as the result).
    pub rows_out: u64,
    pub bytes_out: u64,
    /// Bytes of shuffle output written (in memory or in files).
    pub shuffle_written: u64,
    /// In-memory Arrow bytes read from shuffles.
    pub shuffle_read: u64,
    /// Bytes of shuffle output that went to files, plus bytes that
    /// DataFusion's operators (sorts, aggregations) spilled.
    pub spilled: u64,
}

/// Collects [`StageMetrics`] while a stage's tasks finish.
#[derive(Debug, Default)]
pub(crate) struct StageAccumulator {
    metrics: StageMetrics,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
}

/// What one finished task reports.
pub(crate) struct TaskReport<'a> {
    pub(crate) started: Instant,
    pub(crate) ended: Instant,
    pub(crate) leaves: &'a LeafCounters,
    pub(crate) rows_out: u64,
    pub(crate) bytes_out: u64,
    /// `(bytes, spilled)` when the task wrote to the shuffle.
    pub(crate) shuffle: Option<(u64, bool)>,
    /// Bytes DataFusion's operators spilled (sorts, aggregations).
    pub(crate) operator_spill: u64,
}

impl StageAccumulator {
    pub(crate) fn add(&mut self, report: TaskReport<'_>) {
        let m = &mut self.metrics;
        m.tasks += 1;
        m.busy += report.ended.saturating_duration_since(report.started);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let leaves = report.leaves;
        m.rows_in += load(&leaves.scan_rows) + load(&leaves.shuffle_rows);
        m.bytes_in += load(&leaves.scan_bytes) + load(&leaves.shuffle_bytes);
        m.shuffle_read += load(&leaves.shuffle_bytes);
        m.rows_out += report.rows_out;
        m.bytes_out += report.bytes_out;
        if let Some((bytes, spilled)) = report.shuffle {
            m.shuffle_written += bytes;
            if spilled {
                m.spilled += bytes;
            }
        }
        m.spilled += report.operator_spill;
        let first = self.first_start.get_or_insert(report.started);
        *first = (*first).min(report.started);
        let last = self.last_end.get_or_insert(report.ended);
        *last = (*last).max(report.ended);
        m.wall = last.saturating_duration_since(*first);
    }

    /// Rows the stage's finished tasks produced so far.
    pub(crate) fn rows_out(&self) -> u64 {
        self.metrics.rows_out
    }

    pub(crate) fn metrics(&self) -> StageMetrics {
        self.metrics.clone()
    }
}

impl StageMetrics {
    /// One line for `EXPLAIN ANALYZE`.
    pub fn summary(&self) -> String {
        format!(
            "tasks={}, wall={:.3}s, busy={:.3}s, rows in={} ({}), rows out={} ({}), \
             shuffle written={}, shuffle read={}, spilled={}",
            self.tasks,
            self.wall.as_secs_f64(),
            self.busy.as_secs_f64(),
            self.rows_in,
            format_size(self.bytes_in),
            self.rows_out,
            format_size(self.bytes_out),
            format_size(self.shuffle_written),
            format_size(self.shuffle_read),
            format_size(self.spilled),
        )
    }
}
