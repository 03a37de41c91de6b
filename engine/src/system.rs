//! Live state in SQL: the system tables `fairway.jobs` and `fairway.pools`,
//! and `CANCEL JOB n` / `CANCEL JOBS WITH TAG 'x'`.
//!
//! The tables are a schema `fairway` in the session's default catalog,
//! shared by every client. Each scan takes a snapshot: the scheduler's job
//! list and pool table (a short copy under its lock, never waiting for a
//! job) joined with the engine's tags and memory counters. A statement does
//! not see its own job: it is planned, and so scanned, before it is
//! submitted.
//!
//! `CANCEL ...` is not SQL that DataFusion parses, so
//! [`rewrite_cancel`] turns it into a call of a table function
//! (`fairway_cancel_job(n)`, `fairway_cancel_jobs_with_tag('x')`), which
//! cancels while the statement is planned and returns what it cancelled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, ListBuilder, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    MemTable, SchemaProvider, Session as CatalogSession, TableFunctionArgs, TableFunctionImpl,
    TableProvider,
};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use fairway_scheduler::{JobInfo, JobState, Scheduler};

use crate::stage_tasks::ActiveJobs;

/// The schema that holds the system tables.
pub const SYSTEM_SCHEMA: &str = "fairway";

/// What the system tables read.
#[derive(Clone)]
pub(crate) struct SystemState {
    pub(crate) scheduler: Scheduler,
    pub(crate) active: Arc<ActiveJobs>,
}

impl std::fmt::Debug for SystemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemState").finish_non_exhaustive()
    }
}

/// Registers the `fairway` schema and the cancel functions in `ctx`.
pub(crate) fn register(
    ctx: &datafusion::prelude::SessionContext,
    state: SystemState,
) -> Result<()> {
    let catalog_name = ctx.state().config_options().catalog.default_catalog.clone();
    let catalog = ctx
        .catalog(&catalog_name)
        .ok_or_else(|| DataFusionError::Plan(format!("no default catalog '{catalog_name}'")))?;
    catalog.register_schema(
        SYSTEM_SCHEMA,
        Arc::new(SystemSchema {
            state: state.clone(),
        }),
    )?;
    ctx.register_udtf(
        "fairway_cancel_job",
        Arc::new(CancelJob {
            state: state.clone(),
        }),
    );
    ctx.register_udtf(
        "fairway_cancel_jobs_with_tag",
        Arc::new(CancelTagged { state }),
    );
    Ok(())
}

/// `CANCEL JOB n` and `CANCEL JOBS WITH TAG 'x'` (any case, an optional
/// `;`) as the SQL query that does it; `None` for any other text.
pub(crate) fn rewrite_cancel(sql: &str) -> Result<Option<String>> {
    let text = sql.trim().trim_end_matches(';').trim();
    let mut words = text.split_whitespace();
    if !words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("cancel"))
    {
        return Ok(None);
    }
    let usage = "expected CANCEL JOB <id> or CANCEL JOBS WITH TAG '<tag>'";
    match words.next() {
        Some(w) if w.eq_ignore_ascii_case("job") => {
            let id = words.next().unwrap_or("");
            if words.next().is_some() || id.is_empty() {
                return Err(DataFusionError::Plan(format!("{usage}, got: {text}")));
            }
            let id: u64 = id.parse().map_err(|_| {
                DataFusionError::Plan(format!(
                    "CANCEL JOB takes a job id (a number from fairway.jobs), got '{id}'"
                ))
            })?;
            Ok(Some(format!("SELECT * FROM fairway_cancel_job({id})")))
        }
        Some(w) if w.eq_ignore_ascii_case("jobs") => {
            let (with, tag) = (words.next(), words.next());
            if !with.is_some_and(|w| w.eq_ignore_ascii_case("with"))
                || !tag.is_some_and(|w| w.eq_ignore_ascii_case("tag"))
            {
                return Err(DataFusionError::Plan(format!("{usage}, got: {text}")));
            }
            // The rest, after the word TAG, must be one quoted string.
            let at = text
                .to_ascii_lowercase()
                .find(" tag")
                .map(|i| i + 4)
                .unwrap_or(text.len());
            let literal = text[at..].trim();
            let inner = literal
                .strip_prefix('\'')
                .and_then(|l| l.strip_suffix('\''))
                .filter(|inner| !inner.replace("''", "").contains('\''))
                .ok_or_else(|| {
                    DataFusionError::Plan(format!(
                        "CANCEL JOBS WITH TAG takes the tag as a quoted string ('nightly'), \
                         got: {literal}"
                    ))
                })?;
            Ok(Some(format!(
                "SELECT * FROM fairway_cancel_jobs_with_tag('{inner}')"
            )))
        }
        _ => Err(DataFusionError::Plan(format!("{usage}, got: {text}"))),
    }
}

#[derive(Debug)]
struct SystemSchema {
    state: SystemState,
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        vec!["jobs".to_string(), "pools".to_string()]
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let kind = match name {
            "jobs" => SystemTableKind::Jobs,
            "pools" => SystemTableKind::Pools,
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(SystemTable {
            kind,
            state: self.state.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        matches!(name, "jobs" | "pools")
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "schema '{SYSTEM_SCHEMA}' holds fairway's system tables: cannot create \
             '{SYSTEM_SCHEMA}.{name}' there"
        )))
    }
}

#[derive(Debug, Clone, Copy)]
enum SystemTableKind {
    Jobs,
    Pools,
}

#[derive(Debug)]
struct SystemTable {
    kind: SystemTableKind,
    state: SystemState,
}

fn jobs_schema() -> SchemaRef {
    let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let tags = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new("job", DataType::Int64, false),
        Field::new("pool", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
        Field::new("submitted", time(), false),
        Field::new("started", time(), true),
        Field::new("finished", time(), true),
        Field::new("queued_ms", DataType::Int64, false),
        Field::new("run_ms", DataType::Int64, false),
        Field::new("running_tasks", DataType::Int64, false),
        Field::new("tasks_done", DataType::Int64, false),
        Field::new("tasks_total", DataType::Int64, false),
        Field::new("memory_bytes", DataType::Int64, false),
        Field::new("peak_memory_bytes", DataType::Int64, false),
        Field::new("tags", tags, false),
        Field::new("error", DataType::Utf8, true),
    ]))
}

fn pools_schema() -> SchemaRef {
    let int = |name: &str, nullable: bool| Field::new(name, DataType::Int64, nullable);
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        int("weight", false),
        int("min_share", false),
        int("max_share", true),
        int("max_running_jobs", true),
        int("max_queued_jobs", true),
        int("running_jobs", false),
        int("queued_jobs", false),
        int("running_tasks", false),
        int("memory_limit", true),
        int("memory_used", false),
        int("timeout_ms", true),
    ]))
}

fn micros(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn millis(duration: Duration) -> i64 {
    duration.as_millis() as i64
}

fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl SystemState {
    fn jobs_batch(&self) -> Result<RecordBatch> {
        let jobs: Vec<JobInfo> = self.scheduler.jobs();
        let extras = self.active.extras();
        let extra = |id: u64| extras.get(&id).cloned().unwrap_or_default();
        let mut tags = ListBuilder::new(StringBuilder::new());
        for job in &jobs {
            for tag in extra(job.id).tags {
                tags.values().append_value(tag);
            }
            tags.append(true);
        }
        let int = |f: &dyn Fn(&JobInfo) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(jobs.iter().map(f)))
        };
        let time = |f: &dyn Fn(&JobInfo) -> Option<SystemTime>| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from(
                    jobs.iter().map(|j| f(j).map(micros)).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            )
        };
        let text = |f: &dyn Fn(&JobInfo) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(jobs.iter().map(f)))
        };
        let columns: Vec<ArrayRef> = vec![
            int(&|j| count(j.id)),
            text(&|j| j.pool.clone()),
            text(&|j| j.state.as_str().to_string()),
            text(&|j| j.description.clone()),
            time(&|j| Some(j.submitted)),
            time(&|j| j.started),
            time(&|j| j.finished),
            int(&|j| millis(j.queued)),
            int(&|j| millis(j.run)),
            int(&|j| count(j.running_tasks)),
            int(&|j| count(j.tasks_done)),
            int(&|j| count(j.tasks_total)),
            int(&|j| count(extra(j.id).memory)),
            int(&|j| count(extra(j.id).peak_memory)),
            Arc::new(tags.finish()),
            Arc::new(StringArray::from(
                jobs.iter().map(|j| j.error.clone()).collect::<Vec<_>>(),
            )),
        ];
        Ok(RecordBatch::try_new(jobs_schema(), columns)?)
    }

    fn pools_batch(&self) -> Result<RecordBatch> {
        let pools = self.scheduler.pools();
        let extras = self.active.extras();
        let mut used: HashMap<String, usize> = HashMap::new();
        for job in self.scheduler.jobs() {
            if !job.state.is_final() {
                *used.entry(job.pool).or_default() += extras.get(&job.id).map_or(0, |e| e.memory);
            }
        }
        let int = |f: &dyn Fn(&fairway_scheduler::PoolStatus) -> Option<i64>| -> ArrayRef {
            Arc::new(Int64Array::from(pools.iter().map(f).collect::<Vec<_>>()))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                pools.iter().map(|p| p.name.clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                pools.iter().map(|p| p.mode.as_str()),
            )),
            int(&|p| Some(i64::from(p.weight))),
            int(&|p| Some(i64::from(p.min_share))),
            int(&|p| p.max_share.map(count)),
            int(&|p| p.max_running_jobs.map(count)),
            int(&|p| p.max_queued_jobs.map(count)),
            int(&|p| Some(count(p.running_jobs))),
            int(&|p| Some(count(p.queued_jobs))),
            int(&|p| Some(count(p.running_tasks))),
            int(&|p| p.memory.map(count)),
            int(&|p| Some(count(used.get(&p.name).copied().unwrap_or(0)))),
            int(&|p| p.timeout.map(millis)),
        ];
        Ok(RecordBatch::try_new(pools_schema(), columns)?)
    }
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        match self.kind {
            SystemTableKind::Jobs => jobs_schema(),
            SystemTableKind::Pools => pools_schema(),
        }
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = match self.kind {
            SystemTableKind::Jobs => self.state.jobs_batch()?,
            SystemTableKind::Pools => self.state.pools_batch()?,
        };
        MemTable::try_new(batch.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// `fairway_cancel_job(n)`: cancels live job `n` of the session.
#[derive(Debug)]
struct CancelJob {
    state: SystemState,
}

/// `fairway_cancel_jobs_with_tag('x')`: cancels the live jobs tagged `x`.
#[derive(Debug)]
struct CancelTagged {
    state: SystemState,
}

fn literal(args: &TableFunctionArgs<'_, '_>, function: &str) -> Result<ScalarValue> {
    match args.exprs() {
        [Expr::Literal(value, _)] => Ok(value.clone()),
        _ => Err(DataFusionError::Plan(format!(
            "{function} takes one literal argument"
        ))),
    }
}

/// The cancelled jobs as a table: `job`, `pool`, `was` (queued or
/// running).
fn cancelled_table(rows: Vec<(u64, String, JobState)>) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("job", DataType::Int64, false),
        Field::new("pool", DataType::Utf8, false),
        Field::new("was", DataType::Utf8, false),
        Field::new("cancelled", DataType::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| count(r.0)),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.2.as_str()),
            )),
            Arc::new(BooleanArray::from(vec![true; rows.len()])),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

impl TableFunctionImpl for CancelJob {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        let id = match literal(&args, "fairway_cancel_job")? {
            ScalarValue::Int64(Some(n)) if n > 0 => n as u64,
            other => {
                return Err(DataFusionError::Plan(format!(
                    "CANCEL JOB takes a job id from fairway.jobs, got {other}"
                )));
            }
        };
        let jobs = self.state.scheduler.jobs();
        let Some(job) = jobs.iter().find(|j| j.id == id) else {
            return Err(DataFusionError::Plan(format!(
                "there is no job {id} (SELECT * FROM fairway.jobs lists the jobs)"
            )));
        };
        if job.state.is_final() || !self.state.scheduler.cancel(id) {
            let state = self
                .state
                .scheduler
                .jobs()
                .into_iter()
                .find(|j| j.id == id)
                .map_or(job.state, |j| j.state);
            return Err(DataFusionError::Plan(format!(
                "job {id} is not queued or running: it {}",
                match state {
                    JobState::TimedOut => "timed out".to_string(),
                    other => other.as_str().to_string(),
                }
            )));
        }
        cancelled_table(vec![(id, job.pool.clone(), job.state)])
    }
}

impl TableFunctionImpl for CancelTagged {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        let tag = match literal(&args, "fairway_cancel_jobs_with_tag")? {
            ScalarValue::Utf8(Some(tag)) | ScalarValue::Utf8View(Some(tag)) => tag,
            other => {
                return Err(DataFusionError::Plan(format!(
                    "CANCEL JOBS WITH TAG takes a tag, got {other}"
                )));
            }
        };
        let before: HashMap<u64, JobInfo> = self
            .state
            .scheduler
            .jobs()
            .into_iter()
            .map(|j| (j.id, j))
            .collect();
        let rows = self
            .state
            .active
            .cancel_tagged(&tag)
            .into_iter()
            .filter_map(|id| {
                before
                    .get(&id)
                    .filter(|j| !j.state.is_final())
                    .map(|j| (id, j.pool.clone(), j.state))
            })
            .collect();
        cancelled_table(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_statements_become_table_function_calls() {
        let rewrite = |sql: &str| rewrite_cancel(sql).unwrap();
        assert_eq!(
            rewrite("cancel job 12;").as_deref(),
            Some("SELECT * FROM fairway_cancel_job(12)")
        );
        assert_eq!(
            rewrite("  CANCEL  JOBS with TAG 'night''s' ").as_deref(),
            Some("SELECT * FROM fairway_cancel_jobs_with_tag('night''s')")
        );
        assert_eq!(rewrite("select 1"), None);
        assert_eq!(rewrite("cancelled"), None);
        for bad in [
            "cancel job",
            "cancel job x",
            "cancel job 1 2",
            "cancel jobs with tag nightly",
            "cancel jobs with tag 'a' or 1=1 --'",
            "cancel everything",
        ] {
            let error = rewrite_cancel(bad).unwrap_err().to_string();
            assert!(error.contains("CANCEL"), "{bad}: {error}");
        }
    }
}
