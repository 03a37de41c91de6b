//! The session: DataFusion for planning, the planner for stages, the
//! scheduler for tasks and the shuffle for data between stages.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::analyze::AnalyzeExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{CopyToSource, DFParser, Statement};
use datafusion::sql::sqlparser::ast::{ObjectName, VisitMut};
use datafusion::sql::sqlparser::dialect::dialect_from_str;
use fairway_planner::{
    BroadcastJoinSafety, CoPartitionedJoins, FilteredJoinsFirst, RuleSwitch, SemiJoinReduction,
    StageGraph, StandardUsingJoins, TournamentJoins, split_into_stages,
};
use fairway_scheduler::{
    JobAdmission, JobSpec, Scheduler, SchedulerConfig, SchedulerListener, SchedulingMode,
    StageSpec, parse_allocation_file,
};
use fairway_shuffle::{ShuffleConfig, ShuffleService};

use fairway_observe::{ConsoleProgress, EventLog, Listeners};

use crate::config::{EngineConfig, FairwayOptions};
use crate::error::{EngineError, Result};
use crate::stage_metrics::StageMetrics;
use crate::stage_tasks::{ActiveJob, ActiveJobs, JobGuard, StageTaskRunner, StageTasks};
use crate::temp_views::{OverlayCatalogList, TempViews};

/// What one statement returned.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The schema of `batches` (the physical plan's, which can differ from
    /// the logical plan's: decimal arithmetic's precision, say).
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub elapsed: Duration,
    /// Stages the statement ran as (0 for statements that run no job, such
    /// as `SET` or `CREATE EXTERNAL TABLE`).
    pub stages: usize,
}

impl QueryOutput {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// The front door of fairway: tables, SQL and DataFrames, run as stage
/// graphs on a slot-bounded scheduler.
///
/// Cheap to clone; clones share everything, so jobs submitted from several
/// tokio tasks or threads share the slots. [`Session::client`] makes a
/// session that shares the tables, the scheduler and the shuffle but has its
/// own settings, so a `SET` in one client (a script of `fairway run`, say)
/// does not change the others.
#[derive(Clone)]
pub struct Session {
    ctx: SessionContext,
    shared: Arc<Shared>,
    /// This client's own temporary views (see [`Session::isolated_client`]);
    /// `None`: temporary views go to the shared catalog like other views.
    temp: Option<Arc<TempViews>>,
}

/// What all clients of one session share.
struct Shared {
    scheduler: Scheduler,
    shuffle: ShuffleService,
    config: EngineConfig,
    next_job: AtomicU64,
    event_log: Option<Arc<EventLog>>,
    warnings: Vec<String>,
    active: Arc<ActiveJobs>,
    /// On a cluster (`fairway.cluster`): how many statements of each pool
    /// may run there at once. `None` runs on the stage engine.
    cluster: Option<JobAdmission>,
    /// The own memory of each pool with a `<memory>` budget; jobs of other
    /// pools use the session's shared pool.
    pool_memory: PoolMemories,
    /// `COPY` statements planned to write a temporary, by that temporary's
    /// URL: committed to their target when their job succeeds.
    staged: std::sync::Mutex<HashMap<String, crate::writes::Pending>>,
}

/// The own memory pool of each FAIR pool with a `<memory>` budget, by name.
type PoolMemories = HashMap<String, Arc<dyn datafusion::execution::memory_pool::MemoryPool>>;

/// DataFusion settings under which every plan can be cut into stages and
/// run as independent tasks (see ARCHITECTURE.md, "Invariants").
fn stage_engine_config(config: &EngineConfig) -> Result<SessionConfig> {
    let mut session = SessionConfig::new()
        .with_target_partitions(config.partitions)
        .with_information_schema(true)
        .with_round_robin_repartition(false)
        .with_option_extension(FairwayOptions::from_config(config));
    {
        let options = session.options_mut();
        // Round-robin repartitions are removed by the splitter; without them
        // scans still split into `partitions` file ranges.
        options.optimizer.enable_round_robin_repartition = false;
        // The join dynamic filter is a barrier across all partitions of one
        // join instance: with fewer slots than partitions it would deadlock.
        options.optimizer.enable_join_dynamic_filter_pushdown = false;
        // Each task runs one partition of its own copy of the scan: siblings
        // must not steal each other's files.
        options.execution.enable_file_stream_work_stealing = false;
        // Uncorrelated scalar subqueries stay ScalarSubqueryExec (DataFusion's
        // default): the stage engine runs them first (crate::subqueries).
        // Ballista cannot ship one to its executors: on a cluster they are
        // planned as joins.
        if config.cluster.is_some() {
            options
                .optimizer
                .enable_physical_uncorrelated_scalar_subquery = false;
        }
        options.optimizer.prefer_existing_sort = false;
        for (key, value) in &config.datafusion {
            options
                .set(key, value)
                .map_err(|e| EngineError::config(key, e.to_string()))?;
        }
    }
    Ok(session)
}

/// DataFusion's runtime: with a memory limit, a fair spill pool of
/// `pool_memory` bytes (spillable operators each get an equal share of
/// what non-spillable ones leave; errors name the largest consumers) and
/// spill files under the shuffle folder; otherwise DataFusion's defaults
/// (unbounded pool, spill files in the OS temporary folder).
fn runtime_env(
    config: &EngineConfig,
    pool_memory: Option<usize>,
    spill_to_shuffle_dir: bool,
) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
    use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;

    // No cached directory listings: a long-lived session (a `fairway
    // connect` server) must see a folder as it is now, after a write
    // replaced its files, as Spark does.
    let mut builder = RuntimeEnvBuilder::new()
        .with_cache_manager(
            datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
                .with_list_files_cache_limit(0),
        )
        // S3, GCS, Azure and HTTP(S) stores, made per bucket on first use.
        .with_object_store_registry(Arc::new(crate::stores::StoreRegistry::new(
            config.stores.clone(),
        )));
    if let Some(bytes) = pool_memory {
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(bytes),
            std::num::NonZeroUsize::new(3).expect("3 is not zero"),
        );
        builder = builder.with_memory_pool(Arc::new(pool));
    }
    if pool_memory.is_some() || spill_to_shuffle_dir {
        builder = builder.with_disk_manager_builder(DiskManagerBuilder::default().with_mode(
            DiskManagerMode::Directories(vec![config.shuffle_dir.clone()]),
        ));
    }
    Ok(builder.build_arc()?)
}

/// The memory of the pools whose allocation-file entry has a `<memory>`
/// budget: a fair spill pool of that size each. With a memory limit the
/// budgets are carved out of what operators get (`shared`), which must
/// keep some memory for the pools without one; returns what is left for
/// those.
fn pool_memories(
    pools: &[fairway_scheduler::PoolConfig],
    shared: Option<usize>,
) -> Result<(PoolMemories, Option<usize>)> {
    use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
    let budgets: Vec<(&str, usize)> = pools
        .iter()
        .filter_map(|p| p.memory.map(|m| (p.name.as_str(), m as usize)))
        .collect();
    let total: usize = budgets.iter().map(|(_, m)| m).sum();
    let left = match shared {
        Some(operators) if !budgets.is_empty() && total >= operators => {
            let list: Vec<String> = budgets
                .iter()
                .map(|(name, m)| format!("'{name}' {}", crate::config::format_size(*m as u64)))
                .collect();
            return Err(EngineError::config(
                "fairway.scheduler.allocation.file",
                format!(
                    "the pools' <memory> budgets ({}) add up to {}, which leaves nothing of the \
                     {} that --memory-limit gives queries (the limit less the shuffle's share) \
                     for the other pools; lower them or raise --memory-limit",
                    list.join(", "),
                    crate::config::format_size(total as u64),
                    crate::config::format_size(operators as u64)
                ),
            ));
        }
        Some(operators) => Some(operators - total),
        None => None,
    };
    let memories = budgets
        .into_iter()
        .map(|(name, bytes)| {
            let pool: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(bytes),
                std::num::NonZeroUsize::new(3).expect("3 is not zero"),
            ));
            (name.to_string(), pool)
        })
        .collect();
    Ok((memories, left))
}

/// DataFusion's physical optimizer rules with [`BroadcastJoinSafety`] right
/// after `JoinSelection`, before distribution requirements are enforced, and
/// [`CoPartitionedJoins`] last before `SanityCheckPlan`, once every exchange
/// is in place; it is on unless the session's
/// `fairway.optimizer.co_partitioned_joins` is `false`.
fn physical_rules()
-> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(BroadcastJoinSafety));
    let at = rules
        .iter()
        .position(|r| r.name() == "SanityCheckPlan")
        .unwrap_or(rules.len());
    let switch = fairway_switch("optimizer.co_partitioned_joins");
    rules.insert(at, Arc::new(CoPartitionedJoins::with_switch(switch)));
    rules
}

/// A rule switch that is on unless the session's `fairway.<key>` is `false`.
fn fairway_switch(key: &'static str) -> RuleSwitch {
    Arc::new(move |options: &datafusion::config::ConfigOptions| FairwayOptions::is_on(options, key))
}

/// DataFusion's analyzer rules with [`StandardUsingJoins`] first, so that
/// type coercion sees the merged `USING` keys it adds.
fn analyzer_rules() -> Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> {
    let mut rules = datafusion::optimizer::Analyzer::new().rules;
    rules.insert(0, Arc::new(StandardUsingJoins));
    rules
}

/// DataFusion's logical optimizer rules with [`TournamentJoins`] after
/// `eliminate_outer_join` (so after `eliminate_cross_join`, which rebuilds
/// inner joins left-deep). It is on unless the session's
/// `fairway.optimizer.tournament_joins` is `false`.
fn optimizer_rules() -> Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>> {
    let mut rules = datafusion::optimizer::Optimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "eliminate_outer_join")
        .map_or(rules.len(), |i| i + 1);
    let switch = fairway_switch("optimizer.tournament_joins");
    rules.insert(at, Arc::new(TournamentJoins::with_switch(switch)));
    let at = rules
        .iter()
        .position(|r| r.name() == "push_down_filter")
        .map_or(rules.len(), |i| i + 1);
    let switch = fairway_switch("optimizer.semi_join_reduction");
    rules.insert(at, Arc::new(SemiJoinReduction::with_switch(switch)));
    let switch = fairway_switch("optimizer.filtered_joins_first");
    rules.insert(at + 1, Arc::new(FilteredJoinsFirst::with_switch(switch)));
    rules
}

impl Session {
    /// Starts a session: a scheduler with `config.slots` slots (and as many
    /// worker threads), a shuffle with `config.shuffle_memory` bytes of
    /// memory, and a DataFusion context configured for stage execution.
    ///
    /// A session with `config.cluster` set needs [`Session::start`].
    pub fn new(config: EngineConfig) -> Result<Self> {
        if let Some(target) = &config.cluster {
            return Err(EngineError::config(
                crate::cluster::CLUSTER_KEY,
                format!("a session on a cluster ({target}) starts with Session::start"),
            ));
        }
        let (state, shared) = Self::parts(config, None)?;
        Self::with_system_tables(SessionContext::new_with_state(state), shared)
    }

    /// The session over `ctx`, with the system tables (`fairway.jobs`,
    /// `fairway.pools`) and the cancel functions registered on the stage
    /// engine.
    fn with_system_tables(ctx: SessionContext, shared: Shared) -> Result<Self> {
        if shared.config.cluster.is_none() {
            crate::system::register(
                &ctx,
                crate::system::SystemState {
                    scheduler: shared.scheduler.clone(),
                    active: Arc::clone(&shared.active),
                },
            )?;
        }
        Ok(Self {
            ctx,
            shared: Arc::new(shared),
            temp: None,
        })
    }

    /// Starts a session like [`Session::new`], or, with `config.cluster`
    /// set, a session whose statements run on Apache DataFusion Ballista:
    /// the same tables, settings and logical rules (tournament joins,
    /// SQL-standard `USING`), planned and run by the Ballista scheduler
    /// (see [`crate::ClusterTarget`]). `standalone` starts Ballista's
    /// scheduler and an executor with `config.slots` slots on the current
    /// tokio runtime, which must outlive the session.
    pub async fn start(config: EngineConfig) -> Result<Self> {
        Self::start_with_listener(config, None).await
    }

    /// [`Session::start`] with one more scheduler listener (besides the
    /// event log and the console progress the config asks for), e.g. the
    /// feature builder's per-method progress.
    pub async fn start_with_listener(
        config: EngineConfig,
        extra: Option<Arc<dyn SchedulerListener>>,
    ) -> Result<Self> {
        let target = config.cluster.clone();
        let slots = config.slots;
        let (state, shared) = Self::parts(config, extra)?;
        let ctx = match &target {
            None => SessionContext::new_with_state(state),
            Some(target) => crate::cluster::connect(target, state, slots).await?,
        };
        Self::with_system_tables(ctx, shared)
    }

    /// Where this session runs its statements: `None` for the stage
    /// engine, else the cluster.
    pub fn cluster(&self) -> Option<&crate::ClusterTarget> {
        self.shared.config.cluster.as_ref()
    }

    /// On a cluster: the job slots per pool that statements wait for.
    pub fn cluster_admission(&self) -> Option<&JobAdmission> {
        self.shared.cluster.as_ref()
    }

    /// The planning state and everything clients share.
    fn parts(
        config: EngineConfig,
        extra: Option<Arc<dyn SchedulerListener>>,
    ) -> Result<(datafusion::execution::SessionState, Shared)> {
        config.validate()?;
        let session_config = stage_engine_config(&config)?;
        let (shuffle_memory, operator_memory) = config.memory_budgets();
        let mut warnings = Vec::new();
        let mut pools = Vec::new();
        if let Some(path) = &config.allocation_file {
            // Read and checked in any mode, so a broken file is reported
            // at once; used in FAIR mode only, as Spark does.
            let allocation =
                parse_allocation_file(path, config.allocation_strict).map_err(|e| {
                    EngineError::config("fairway.scheduler.allocation.file", e.to_string())
                })?;
            warnings.extend(allocation.warnings);
            if config.scheduler_mode == SchedulingMode::Fair {
                pools = allocation.pools;
            } else {
                warnings.push(format!(
                    "allocation file {} is not used: the scheduler mode is FIFO \
                     (--scheduler-mode fair uses it)",
                    path.display()
                ));
            }
        }
        if config.scheduler_mode == SchedulingMode::Fair {
            for pool in &config.pools {
                if !pools.iter().any(|p| p.name == pool.name) {
                    pools.push(pool.clone());
                }
            }
        }
        let (pool_memory, shared_memory) = if config.cluster.is_some() {
            if pools.iter().any(|p| p.memory.is_some()) {
                warnings.push(
                    "pool <memory> budgets apply on the stage engine only; the cluster's \
                     executors manage their own memory"
                        .to_string(),
                );
            }
            (HashMap::new(), operator_memory)
        } else {
            pool_memories(&pools, operator_memory)?
        };
        let runtime = runtime_env(&config, shared_memory, !pool_memory.is_empty())?;
        // Names the catalog does not know that look like files
        // (`'data/x.parquet'`, `'s3://b/k/'`, a rewritten `read_csv(...)`)
        // are read as tables, with the session's settings and stores.
        let files_state = SessionStateBuilder::new()
            .with_config(session_config.clone())
            .with_runtime_env(Arc::clone(&runtime))
            .with_default_features()
            .build();
        let catalogs =
            crate::file_tables::session_catalogs(crate::file_tables::FileTables::new(files_state));
        let state = SessionStateBuilder::new()
            .with_config(session_config)
            .with_runtime_env(runtime)
            .with_catalog_list(catalogs)
            .with_default_features()
            .with_analyzer_rules(analyzer_rules())
            .with_optimizer_rules(optimizer_rules())
            .with_physical_optimizer_rules(physical_rules())
            .build();
        let scheduler = Scheduler::new(SchedulerConfig {
            slots: config.slots,
            mode: config.scheduler_mode,
            allocation_file_loaded: config.allocation_file.is_some()
                && config.scheduler_mode == SchedulingMode::Fair,
            pools: pools.clone(),
            preemption: config.preemption,
            max_task_attempts: config.task_max_failures,
            ..SchedulerConfig::default()
        })?;
        let event_log = match &config.event_log {
            Some(path) => Some(Arc::new(EventLog::create(path)?)),
            None => None,
        };
        if let Some(log) = &event_log
            && config.scheduler_mode == SchedulingMode::Fair
        {
            // The pools' settings, for the timeline's fair shares.
            for p in scheduler.pools() {
                log.record(|time_us| fairway_observe::Event::Pool {
                    time_us,
                    name: p.name.clone(),
                    mode: p.mode.as_str().to_string(),
                    weight: p.weight.max(0) as u64,
                    min_share: p.min_share.max(0) as u64,
                });
            }
        }
        let mut listeners: Vec<Arc<dyn SchedulerListener>> = Vec::new();
        if let Some(log) = &event_log {
            listeners.push(Arc::clone(log) as _);
        }
        if config.progress {
            listeners.push(Arc::new(ConsoleProgress::new()));
        }
        listeners.extend(extra);
        if !listeners.is_empty() {
            scheduler.set_listener(Some(Arc::new(Listeners(listeners))));
        }
        let shuffle = ShuffleService::new(ShuffleConfig {
            memory_limit: shuffle_memory,
            dir: config.shuffle_dir.clone(),
            compression: config.shuffle_compression,
        });
        // `pools` is empty unless the mode is FAIR.
        let cluster = config
            .cluster
            .as_ref()
            .map(|_| JobAdmission::new(config.cluster_slots(), config.scheduler_mode, pools));
        Ok((
            state,
            Shared {
                scheduler,
                shuffle,
                config,
                next_job: AtomicU64::new(1),
                event_log,
                warnings,
                active: Arc::default(),
                cluster,
                pool_memory,
                staged: std::sync::Mutex::default(),
            },
        ))
    }

    /// Warnings raised while the session started (allocation file values
    /// replaced by Spark's defaults in non-strict mode, an unused file).
    pub fn warnings(&self) -> &[String] {
        &self.shared.warnings
    }

    /// Writes buffered event-log lines to the file.
    pub fn flush_event_log(&self) {
        if let Some(log) = &self.shared.event_log {
            log.flush();
        }
    }

    /// A client whose jobs go to `pool` (like Spark's
    /// `sc.setLocalProperty("spark.scheduler.pool", pool)`, without the
    /// thread): same tables, scheduler and shuffle.
    pub fn with_pool(&self, pool: &str) -> Result<Session> {
        self.client_with("fairway.scheduler.pool", pool)
    }

    /// A client whose jobs belong to job group `group` (like Spark's
    /// `sc.setJobGroup`), so that [`Session::cancel_group`] cancels them
    /// together; same as `SET fairway.job.group = 'group'` in that client.
    pub fn with_job_group(&self, group: &str) -> Result<Session> {
        self.client_with("fairway.job.group", group)
    }

    /// A new client with one runtime setting changed.
    fn client_with(&self, key: &str, value: &str) -> Result<Session> {
        let client = self.client();
        client
            .ctx
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .set(key, value)
            .map_err(|e| EngineError::config(key, e.to_string()))?;
        Ok(client)
    }

    /// The job group of this client's next job, if any.
    pub fn job_group(&self) -> Option<String> {
        group_of(self.ctx.state().config())
    }

    /// Cancels every running job of `group`, from any client of this
    /// session, and returns how many it cancelled. As in Spark, only jobs
    /// that run now are cancelled: a statement still being planned, or one
    /// that starts later, runs. A cancelled job frees its slots at once,
    /// its shuffle data is removed, and its statement fails with an error
    /// for which [`EngineError::is_cancelled`] is true.
    pub fn cancel_group(&self, group: &str) -> usize {
        self.shared.active.cancel_group(group)
    }

    /// The jobs that are queued or run now, from every client of this
    /// session, in the order they were submitted.
    pub fn active_jobs(&self) -> Vec<ActiveJob> {
        self.shared.active.list()
    }

    /// Every job of the session the scheduler knows (queued, running and
    /// the last ended ones): the rows of `fairway.jobs` without the
    /// engine's columns.
    pub fn jobs(&self) -> Vec<fairway_scheduler::JobInfo> {
        self.shared.scheduler.jobs()
    }

    /// Cancels job `id` (queued or running) from any client, as `CANCEL
    /// JOB id` does; false when no such job is live.
    pub fn cancel_job(&self, id: u64) -> bool {
        self.shared.scheduler.cancel(id)
    }

    /// Cancels every queued or running job tagged `tag`
    /// (`fairway.job.tags`), as `CANCEL JOBS WITH TAG 'tag'` does; returns
    /// their ids.
    pub fn cancel_tagged(&self, tag: &str) -> Vec<u64> {
        self.shared.active.cancel_tagged(tag)
    }

    /// Starts `sql` in the background (on the current tokio runtime, or the
    /// scheduler's when called outside one) and returns a handle to wait
    /// for it or cancel it.
    pub fn submit_sql(&self, sql: &str) -> QueryHandle {
        let session = self.clone();
        let sql = sql.to_string();
        let work = async move { session.sql(&sql).await };
        let join = match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.spawn(work),
            Err(_) => self.shared.scheduler.runtime().spawn(work),
        };
        QueryHandle { join }
    }

    /// The pool this client's next job goes to.
    pub fn pool(&self) -> String {
        pool_of(self.ctx.state().config())
    }

    /// A new client of this session: same tables (registered before or
    /// after), scheduler and shuffle; its own copy of the settings.
    pub fn client(&self) -> Session {
        Session {
            ctx: SessionContext::new_with_state(self.ctx.state()),
            shared: Arc::clone(&self.shared),
            temp: self.temp.clone(),
        }
    }

    /// A new client like [`Session::client`] that also has its own
    /// temporary views (Spark's per-session temporary views): `CREATE TEMP
    /// VIEW` and [`Session::register_temp_view`] add to them, names are
    /// looked up there first, `DROP VIEW` drops them first. Tables and
    /// non-temporary views stay shared with every client. Clients made from
    /// this one with [`Session::client`] share its temporary views.
    pub fn isolated_client(&self) -> Session {
        self.isolated_client_with(|builder| builder)
    }

    /// [`Session::isolated_client`], its session state first changed by
    /// `configure` (a front end's own expression planners, say).
    pub fn isolated_client_with(
        &self,
        configure: impl FnOnce(SessionStateBuilder) -> SessionStateBuilder,
    ) -> Session {
        let state = self.ctx.state();
        let temp = Arc::new(TempViews::default());
        let options = state.config_options();
        let catalogs = Arc::new(OverlayCatalogList::new(
            Arc::clone(state.catalog_list()),
            &options.catalog.default_catalog,
            &options.catalog.default_schema,
            Arc::clone(&temp),
        ));
        let state =
            configure(SessionStateBuilder::new_from_existing(state).with_catalog_list(catalogs))
                .build();
        Session {
            ctx: SessionContext::new_with_state(state),
            shared: Arc::clone(&self.shared),
            temp: Some(temp),
        }
    }

    /// Registers `plan` as temporary view `name` (already normalised, as
    /// an unquoted SQL identifier would be): in this client's own views
    /// when it has them ([`Session::isolated_client`]), else in the shared
    /// catalog. Without `replace`, an existing view or table of that name
    /// is an error that names it.
    pub fn register_temp_view(&self, name: &str, plan: LogicalPlan, replace: bool) -> Result<()> {
        let view = Arc::new(datafusion::catalog::view::ViewTable::new(plan, None));
        match &self.temp {
            Some(temp) => Ok(temp.insert(name, view, replace)?),
            None => {
                if self.ctx.table_exist(name)? {
                    if !replace {
                        return Err(EngineError::DataFusion(
                            datafusion::error::DataFusionError::Plan(format!(
                                "view '{name}' already exists"
                            )),
                        ));
                    }
                    self.ctx.deregister_table(name)?;
                }
                self.ctx.register_table(name, view)?;
                Ok(())
            }
        }
    }

    /// The names of this client's own temporary views, sorted.
    pub fn temp_view_names(&self) -> Vec<String> {
        self.temp.as_ref().map(|t| t.names()).unwrap_or_default()
    }

    /// The DataFusion context used for planning (tables, functions, settings).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.shared.scheduler
    }

    pub fn shuffle(&self) -> &ShuffleService {
        &self.shared.shuffle
    }

    /// Bytes reserved now in DataFusion's memory pool (by operators of
    /// running tasks); 0 when nothing runs.
    pub fn memory_reserved(&self) -> usize {
        self.ctx.runtime_env().memory_pool.reserved()
    }

    /// Registers a parquet or CSV file, folder or glob as a table.
    pub async fn register_table(&self, name: &str, path: &str) -> Result<()> {
        crate::tables::register_table(&self.ctx, name, path).await
    }

    /// The files a scan of table `name` reads (see [`crate::table_files`]).
    pub async fn table_files(&self, name: &str) -> Result<Vec<crate::TableFile>> {
        crate::tables::table_files(&self.ctx, name).await
    }

    /// Registers every parquet/CSV file or folder in `dir` under its stem.
    pub async fn register_tables_in(&self, dir: &str) -> Result<Vec<String>> {
        crate::tables::register_tables_in(&self.ctx, dir).await
    }

    /// Splits `sql` into statements with the session's SQL dialect, and
    /// refuses any nested deeper than [`crate::MAX_EXPRESSION_DEPTH`].
    pub fn parse_statements(&self, sql: &str) -> Result<Vec<Statement>> {
        let rewritten = if self.cluster().is_none() {
            crate::system::rewrite_cancel(sql)?
        } else {
            None
        };
        let sql = rewritten.as_deref().unwrap_or(sql);
        let dialect_name = self
            .ctx
            .state()
            .config_options()
            .sql_parser
            .dialect
            .to_string();
        let dialect = dialect_from_str(&dialect_name).ok_or_else(|| {
            EngineError::config("datafusion.sql_parser.dialect", "unknown SQL dialect")
        })?;
        let statements = DFParser::parse_sql_with_dialect(sql, dialect.as_ref())?
            .into_iter()
            .collect();
        crate::limits::check_depth(statements)
    }

    /// Plans one parsed statement: DDL and `SET` take effect here.
    pub async fn plan_statement(&self, statement: Statement) -> Result<DataFrame> {
        // CREATE EXTERNAL TABLE's errors name the table and its location.
        let external = match &statement {
            Statement::CreateExternalTable(create) => {
                Some((create.name.to_string(), create.locations.join(", ")))
            }
            _ => None,
        };
        let planned = self.plan_statement_inner(statement).await;
        match (planned, external) {
            (Err(e @ EngineError::DataFusion(_)), Some((table, path))) => {
                Err(e.context(format!("table '{table}' ({path})")))
            }
            (planned, _) => planned,
        }
    }

    async fn plan_statement_inner(&self, mut statement: Statement) -> Result<DataFrame> {
        if let Some(create) = crate::writes::create_at_location(&statement)? {
            return self.plan_create_at_location(create).await;
        }
        crate::file_tables::rewrite_statement(&mut statement);
        self.standardize_using(&mut statement).await;
        let state = self.ctx.state();
        let mut plan = state.statement_to_plan(statement).await?;
        // An INSERT into a folder table is staged like a COPY into it; it
        // may read the table it grows (its new files appear only at the
        // commit).
        let mut insert = false;
        if let LogicalPlan::Dml(dml) = &plan
            && self.cluster().is_none()
            && let Some(copy) = crate::writes::insert_as_copy(&state, dml)?
        {
            plan = LogicalPlan::Copy(copy);
            insert = true;
        }
        if let LogicalPlan::Copy(copy) = &plan {
            refuse_copy_to_http(&copy.output_url)?;
            if !insert {
                refuse_copy_onto_input(copy)?;
            }
            // Written beside the target, committed when the job succeeds
            // (on a cluster, executors write where they are: as given).
            if self.cluster().is_none() {
                let (temp_url, staged) = crate::writes::stage(&state, copy)?;
                let staged_copy = datafusion::logical_expr::dml::CopyTo::new(
                    Arc::clone(&copy.input),
                    temp_url.clone(),
                    copy.partition_by.clone(),
                    Arc::clone(&copy.file_type),
                    copy.options.clone(),
                );
                self.shared
                    .staged
                    .lock()
                    .expect("staged writes lock")
                    .insert(
                        temp_url,
                        crate::writes::Pending {
                            staged,
                            register: None,
                        },
                    );
                plan = LogicalPlan::Copy(staged_copy);
            }
        }
        if let LogicalPlan::Ddl(DdlStatement::CreateView(view)) = &plan
            && view.temporary
        {
            // DataFusion refuses temporary views; fairway keeps them with
            // the client (or, for a client without its own, as views).
            let name = view.name.table().to_string();
            self.register_temp_view(&name, view.input.as_ref().clone(), view.or_replace)?;
            let nothing = datafusion::logical_expr::LogicalPlanBuilder::empty(false).build()?;
            return Ok(DataFrame::new(self.ctx.state(), nothing));
        }
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// `CREATE TABLE name [STORED AS fmt] LOCATION 'path' AS query`: a
    /// staged `COPY` of the query to `path`, and `name` registered over it
    /// when the job succeeded (see [`crate::writes::CreateAtLocation`]).
    async fn plan_create_at_location(
        &self,
        create: crate::writes::CreateAtLocation,
    ) -> Result<DataFrame> {
        let refused = |message: &str| EngineError::Table {
            table: create.name.clone(),
            path: create.location.clone(),
            message: message.to_string(),
        };
        if self.cluster().is_some() {
            return Err(refused(
                "CREATE TABLE ... LOCATION ... AS runs on the stage engine only; on a cluster, \
                 COPY the query and CREATE EXTERNAL TABLE over it",
            ));
        }
        let exists = self.ctx.table_exist(create.name.as_str())?;
        if exists && create.if_not_exists {
            let nothing = datafusion::logical_expr::LogicalPlanBuilder::empty(false).build()?;
            return Ok(DataFrame::new(self.ctx.state(), nothing));
        }
        if exists && !create.or_replace {
            return Err(refused(
                "the table already exists (CREATE OR REPLACE replaces it)",
            ));
        }
        if crate::writes::location_in_use(&self.ctx.state(), &create.location).await? {
            return Err(refused(
                "the location already holds files; CREATE TABLE ... AS writes a new table \
                 (COPY or INSERT INTO add files to one)",
            ));
        }
        let mut target = create.location.clone();
        if !target.ends_with('/') && std::path::Path::new(&target).extension().is_none() {
            target.push('/');
        }
        let copy = format!(
            "COPY ({}) TO '{}' STORED AS {}",
            create.query,
            target.replace('\'', "''"),
            create.format
        );
        let mut statements = self.parse_statements(&copy)?;
        let df = Box::pin(self.plan_statement_inner(statements.remove(0))).await?;
        if let LogicalPlan::Copy(copy) = df.logical_plan()
            && let Some(pending) = self
                .shared
                .staged
                .lock()
                .expect("staged writes lock")
                .get_mut(&copy.output_url)
        {
            pending.register = Some((create.name.clone(), target, create.or_replace));
        }
        Ok(df)
    }

    /// Gives `JOIN ... USING` its SQL-standard meaning (one merged key; see
    /// [`fairway_planner::standard_using_joins`]) before DataFusion plans
    /// the statement.
    async fn standardize_using(&self, statement: &mut Statement) {
        match statement {
            Statement::Statement(s) => self.standardize_query(s.as_mut()).await,
            Statement::CopyTo(copy) => {
                if let CopyToSource::Query(q) = &mut copy.source {
                    self.standardize_query(q.as_mut()).await;
                }
            }
            Statement::Explain(explain) => {
                Box::pin(self.standardize_using(explain.statement.as_mut())).await;
            }
            _ => {}
        }
    }

    async fn standardize_query<T: VisitMut + Send>(&self, node: &mut T) {
        let Some(names) = fairway_planner::using_join_relations(node) else {
            return;
        };
        let columns = self.relation_columns(names).await;
        let lookup = |name: &ObjectName| columns.get(&name.to_string()).cloned();
        fairway_planner::standard_using_joins(node, &lookup);
    }

    /// Column names of the catalog tables among `names`.
    async fn relation_columns(&self, names: Vec<ObjectName>) -> HashMap<String, Vec<String>> {
        let mut columns = HashMap::new();
        for name in names {
            if let Ok(provider) = self.ctx.table_provider(name.to_string()).await {
                let fields = provider
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                columns.insert(name.to_string(), fields);
            }
        }
        columns
    }

    /// Runs every statement of `sql` in order and returns the last one's
    /// output.
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput> {
        let statements = self.parse_statements(sql)?;
        if statements.is_empty() {
            return Err(EngineError::DataFusion(
                datafusion::error::DataFusionError::Plan("no SQL statement given".into()),
            ));
        }
        let mut last = None;
        for statement in statements {
            let description = statement.to_string();
            let df = self.plan_statement(statement).await?;
            last = Some(self.execute(df, &description).await?);
        }
        Ok(last.expect("at least one statement"))
    }

    /// The staged write of a planned `COPY`, taken out of the session.
    fn take_staged(&self, df: &DataFrame) -> Option<crate::writes::Pending> {
        match df.logical_plan() {
            LogicalPlan::Copy(copy) => self
                .shared
                .staged
                .lock()
                .expect("staged writes lock")
                .remove(&copy.output_url),
            _ => None,
        }
    }

    /// Runs a DataFrame on the stage engine and collects its result. A
    /// `COPY` planned by [`Session::plan_statement`] is committed to its
    /// target when the job succeeds, and leaves nothing there when it fails.
    pub async fn execute(&self, df: DataFrame, description: &str) -> Result<QueryOutput> {
        let pending = self.take_staged(&df);
        let result = self.execute_unstaged(df, description).await;
        match (result, pending) {
            (Ok(output), Some(pending)) => {
                pending.staged.commit().await?;
                if let Some((name, location, replace)) = pending.register {
                    if replace {
                        self.ctx.deregister_table(name.as_str())?;
                    }
                    crate::tables::register_table(&self.ctx, &name, &location).await?;
                }
                Ok(output)
            }
            (Err(e), Some(pending)) => {
                let target = pending.staged.target();
                pending.staged.abandon().await;
                if e.is_cancelled() {
                    return Err(e);
                }
                Err(e.context(format!("writing {target}")))
            }
            (result, None) => result,
        }
    }

    async fn execute_unstaged(&self, df: DataFrame, description: &str) -> Result<QueryOutput> {
        let start = Instant::now();
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        if matches!(df.logical_plan(), LogicalPlan::EmptyRelation(e) if !e.produce_one_row)
            && schema.fields().is_empty()
        {
            return Ok(QueryOutput {
                schema,
                batches: Vec::new(),
                elapsed: start.elapsed(),
                stages: 0,
            });
        }
        if let Some(admission) = &self.shared.cluster {
            // Ballista plans and runs it; the pool bounds how many
            // statements of this pool run there at once.
            let permit = admission
                .admit(&pool_of(df.task_ctx().session_config()))
                .await?;
            let batches = df.collect().await?;
            drop(permit);
            let schema = batches.first().map_or(schema, |b| b.schema());
            return Ok(QueryOutput {
                schema,
                batches,
                elapsed: start.elapsed(),
                stages: 0,
            });
        }
        let task_ctx = Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        // The physical plan's schema is the one its batches have: a
        // logical schema can differ (decimal arithmetic's precision, say).
        let schema = plan.schema();
        let (batches, stages) = self.execute_plan(plan, task_ctx, description).await?;
        Ok(QueryOutput {
            schema,
            batches,
            elapsed: start.elapsed(),
            stages,
        })
    }

    /// Cuts a physical plan into stages (what `fairway explain` prints).
    pub fn stage_graph(&self, plan: Arc<dyn ExecutionPlan>) -> Result<StageGraph> {
        Ok(split_into_stages(plan)?)
    }

    /// The stage graph of one SQL statement, as text.
    pub async fn explain_stages(&self, sql: &str) -> Result<String> {
        if let Some(target) = self.cluster() {
            return Err(EngineError::config(
                crate::cluster::CLUSTER_KEY,
                format!(
                    "the stage graph is the local engine's; on {target} Ballista plans \
                     the stages: run EXPLAIN <statement> instead"
                ),
            ));
        }
        let mut statements = self.parse_statements(sql)?;
        if statements.len() != 1 {
            return Err(EngineError::DataFusion(
                datafusion::error::DataFusionError::Plan(format!(
                    "explain takes exactly one statement, got {}",
                    statements.len()
                )),
            ));
        }
        let df = self.plan_statement(statements.remove(0)).await?;
        // Shown, not run: a COPY's temporary goes at once.
        drop(self.take_staged(&df));
        let plan = df.create_physical_plan().await?;
        self.stage_graph_text(plan)
    }

    /// The stage graph of `plan` as text, after the graph of every scalar
    /// subquery it runs first (see [`crate::subqueries`]).
    pub fn stage_graph_text(&self, plan: Arc<dyn ExecutionPlan>) -> Result<String> {
        let (plan, found) = crate::subqueries::take_scalar_subqueries(plan)?;
        let mut text = String::new();
        for (n, link) in found.iter().flat_map(|(links, _)| links).enumerate() {
            text.push_str(&format!("scalar subquery {}, run first:\n", n + 1));
            text.push_str(&self.stage_graph_text(Arc::clone(&link.plan))?);
            text.push('\n');
        }
        text.push_str(&self.stage_graph(plan)?.to_string());
        Ok(text)
    }

    /// Runs every uncorrelated scalar subquery of `plan` as a job of its
    /// own, stores its value where the plan's expressions read it, and
    /// returns the plan without the subqueries (see [`crate::subqueries`]).
    fn run_scalar_subqueries<'a>(
        &'a self,
        plan: Arc<dyn ExecutionPlan>,
        task_ctx: &'a Arc<datafusion::execution::TaskContext>,
        description: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Arc<dyn ExecutionPlan>>> {
        Box::pin(async move {
            let (plan, found) = crate::subqueries::take_scalar_subqueries(plan)?;
            for (links, results) in found {
                results.clear();
                for link in links {
                    let sub = self
                        .run_scalar_subqueries(Arc::clone(&link.plan), task_ctx, description)
                        .await?;
                    let graph = self.stage_graph(Arc::clone(&sub))?;
                    let what = format!("{description} (scalar subquery)");
                    let (batches, _) = self.run_job(graph, Arc::clone(task_ctx), &what).await?;
                    let value = crate::subqueries::scalar_value(&sub, &batches)?;
                    results.set(link.index, value)?;
                }
            }
            Ok(plan)
        })
    }

    /// Runs a physical plan as a job: splits it, submits its stages to the
    /// scheduler and waits. Returns the result batches (in partition order)
    /// and the number of stages. Dropping the returned future cancels the
    /// job; its shuffle data is removed whatever the outcome. An
    /// `EXPLAIN ANALYZE` plan runs its query as stages and returns one row
    /// with every stage's metrics (tasks, wall and busy time, rows and bytes
    /// in and out, shuffle bytes written and read, spilled bytes).
    pub async fn execute_plan(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        task_ctx: Arc<datafusion::execution::TaskContext>,
        description: &str,
    ) -> Result<(Vec<RecordBatch>, usize)> {
        if let Some(analyze) = plan.downcast_ref::<AnalyzeExec>() {
            // EXPLAIN ANALYZE: run the query as stages and report what each
            // stage did instead of its rows.
            let input = Arc::clone(analyze.children()[0]);
            let input = self
                .run_scalar_subqueries(input, &task_ctx, description)
                .await?;
            let graph = self.stage_graph(input)?;
            let stages = graph.stages().len();
            let (_, tasks) = self.run_job(graph.clone(), task_ctx, description).await?;
            let report = analyze_report(&graph, &tasks.stage_metrics(), &tasks.stage_plans());
            let batch = RecordBatch::try_new(
                plan.schema(),
                vec![
                    Arc::new(StringArray::from(vec!["Plan with Stage Metrics"])),
                    Arc::new(StringArray::from(vec![report])),
                ],
            )
            .map_err(datafusion::error::DataFusionError::from)?;
            return Ok((vec![batch], stages));
        }
        let plan = self
            .run_scalar_subqueries(plan, &task_ctx, description)
            .await?;
        let graph = self.stage_graph(plan)?;
        let stages = graph.stages().len();
        let (batches, _) = self.run_job(graph, task_ctx, description).await?;
        Ok((batches, stages))
    }

    /// Submits a stage graph to the scheduler and waits for it.
    async fn run_job(
        &self,
        graph: StageGraph,
        task_ctx: Arc<datafusion::execution::TaskContext>,
        description: &str,
    ) -> Result<(Vec<RecordBatch>, Arc<StageTasks>)> {
        let job_seq = self.shared.next_job.fetch_add(1, Ordering::Relaxed);
        let pool_name = pool_of(task_ctx.session_config());
        let options = task_ctx
            .session_config()
            .options()
            .extensions
            .get::<FairwayOptions>();
        let setting = |key: &str| options.and_then(|o| o.get(key)).unwrap_or("");
        let timeout = crate::config::parse_timeout("fairway.job.timeout", setting("job.timeout"))?;
        let queue_timeout = crate::config::parse_timeout(
            "fairway.job.queue_timeout",
            setting("job.queue_timeout"),
        )?;
        let tags: Vec<String> = setting("job.tags")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        // The job's operators reserve memory through a counter over its
        // pool's memory (the pool's own budget, or the shared pool).
        let base = task_ctx.runtime_env();
        let memory = Arc::new(crate::job_memory::JobMemory::new(
            self.shared
                .pool_memory
                .get(&pool_name)
                .cloned()
                .unwrap_or_else(|| Arc::clone(&base.memory_pool)),
        ));
        let runtime =
            datafusion::execution::runtime_env::RuntimeEnvBuilder::from_runtime_env(&base)
                .with_memory_pool(Arc::clone(&memory) as _)
                .build_arc()?;
        let task_ctx = Arc::new(datafusion::execution::TaskContext::new(
            task_ctx.task_id(),
            task_ctx.session_id(),
            task_ctx.session_config().clone(),
            task_ctx.scalar_functions().clone(),
            task_ctx.higher_order_functions().clone(),
            task_ctx.aggregate_functions().clone(),
            task_ctx.window_functions().clone(),
            runtime,
        ));
        let shuffle = self.shared.shuffle.create_job(job_seq);
        let spec = JobSpec {
            pool: Some(pool_name),
            timeout,
            queue_timeout,
            description: description.to_string(),
            stages: graph
                .stages()
                .iter()
                .map(|s| StageSpec {
                    id: s.id,
                    tasks: s.tasks(),
                    parents: s.inputs.clone(),
                })
                .collect(),
        };
        let tasks = StageTasks::new(
            graph,
            Arc::clone(&shuffle),
            &task_ctx,
            self.shared.config.faults.clone(),
        );
        let pool = spec.pool.clone().unwrap_or_default();
        let stage_parents: Vec<(usize, Vec<usize>)> = spec
            .stages
            .iter()
            .map(|s| (s.id, s.parents.clone()))
            .collect();
        let handle = self
            .shared
            .scheduler
            .submit(spec, Arc::new(StageTaskRunner(Arc::clone(&tasks))))?;
        let job_id = handle.id();
        let active = ActiveJob {
            id: handle.id(),
            group: group_of(task_ctx.session_config()),
            pool,
            description: description.to_string(),
            tags,
        };
        let guard = JobGuard::new(
            active,
            handle.canceller(),
            memory,
            Arc::clone(&shuffle),
            Arc::clone(&self.shared.active),
        );
        let outcome = handle.wait().await;
        guard.finish();
        if let Some(log) = &self.shared.event_log {
            // What each stage did, for the timeline's stage tables and DAG.
            for ((stage, parents), m) in stage_parents.iter().zip(tasks.stage_metrics()) {
                log.record(|time_us| fairway_observe::Event::StageMetrics {
                    time_us,
                    job: job_id,
                    stage: *stage as u64,
                    parents: parents.iter().map(|p| *p as u64).collect(),
                    rows_in: m.rows_in,
                    rows_out: m.rows_out,
                    bytes_in: m.bytes_in,
                    bytes_out: m.bytes_out,
                    shuffle_read: m.shuffle_read,
                    shuffle_written: m.shuffle_written,
                    spilled: m.spilled,
                });
            }
        }
        match outcome {
            Ok(_) => Ok((tasks.take_results(), tasks)),
            Err(e) => Err(tasks.job_error(e)),
        }
    }
}

/// Refuses a write to an HTTP(S) URL: those stores are read-only.
fn refuse_copy_to_http(target: &str) -> Result<()> {
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(EngineError::config(
            target,
            "HTTP(S) URLs are read-only: COPY writes to a local path or to s3://, gs:// or az://",
        ));
    }
    Ok(())
}

/// Refuses a `COPY ... TO` whose target is, or lies inside, a file or
/// folder of a table the statement reads: writing there would overwrite
/// or grow the input while it is read.
fn refuse_copy_onto_input(copy: &datafusion::logical_expr::dml::CopyTo) -> Result<()> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::listing::ListingTable;
    use datafusion::datasource::source_as_provider;
    let Some(target) = crate::writes::local_path(&copy.output_url) else {
        return Ok(());
    };
    let mut inputs = Vec::new();
    copy.input.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(listing) = provider.downcast_ref::<ListingTable>()
        {
            for url in listing.table_paths() {
                if let Some(path) = crate::writes::local_file(url) {
                    inputs.push((scan.table_name.to_string(), path));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    for (table, input) in inputs {
        if fairway_files::is_same_or_inside(&target, &input) {
            return Err(EngineError::file(
                &target,
                format!(
                    "COPY would write into table '{table}' ({}), which the statement reads; \
                     choose another target",
                    input.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The text of `EXPLAIN ANALYZE`: every stage's header, a line of its
/// metrics, then its operators.
fn analyze_report(
    graph: &StageGraph,
    metrics: &[StageMetrics],
    plans: &[Option<fairway_planner::SwappedPlan>],
) -> String {
    let mut text = String::new();
    for ((stage, metrics), plan) in graph.stages().iter().zip(metrics).zip(plans) {
        text.push_str(&stage.header());
        text.push('\n');
        text.push_str(&format!("  metrics: {}\n", metrics.summary()));
        // The plan the stage ran: with a join's sides swapped when it
        // started, if they were.
        let operators = match plan {
            Some(run) if !run.joins.is_empty() => {
                for swap in &run.joins {
                    text.push_str(&format!("  adaptive: {swap}\n"));
                }
                fairway_planner::operators_text(&run.plan)
            }
            _ => stage.operators(),
        };
        for line in operators.lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// The job group named by `fairway.job.group` in a session config.
fn group_of(config: &SessionConfig) -> Option<String> {
    config
        .options()
        .extensions
        .get::<FairwayOptions>()
        .and_then(|o| o.get("job.group"))
        .filter(|g| !g.is_empty())
        .map(str::to_string)
}

/// A statement started with [`Session::submit_sql`].
#[derive(Debug)]
pub struct QueryHandle {
    join: tokio::task::JoinHandle<Result<QueryOutput>>,
}

impl QueryHandle {
    /// Cancels the statement: its job (if it runs) ends at once, its slots
    /// are free for other jobs and its shuffle data is removed;
    /// [`wait`](Self::wait) then returns an error for which
    /// [`EngineError::is_cancelled`] is true. Does nothing once it ended.
    pub fn cancel(&self) {
        self.join.abort();
    }

    /// A handle that cancels the statement from elsewhere while this one
    /// waits.
    pub fn canceller(&self) -> QueryCanceller {
        QueryCanceller(self.join.abort_handle())
    }

    /// Whether the statement has ended (succeeded, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Waits for the statement's output.
    pub async fn wait(self) -> Result<QueryOutput> {
        match self.join.await {
            Ok(result) => result,
            Err(e) if e.is_cancelled() => Err(EngineError::Cancelled(
                "the statement was cancelled from its handle".to_string(),
            )),
            Err(_) => Err(EngineError::Scheduler(
                fairway_scheduler::SchedulerError::Internal(
                    "the statement's task stopped with an internal error".to_string(),
                ),
            )),
        }
    }
}

/// Cancels one statement started with [`Session::submit_sql`]; cheap to
/// clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct QueryCanceller(tokio::task::AbortHandle);

impl QueryCanceller {
    /// Same as [`QueryHandle::cancel`].
    pub fn cancel(&self) {
        self.0.abort();
    }
}

/// The pool named by `fairway.scheduler.pool` in a session config.
fn pool_of(config: &SessionConfig) -> String {
    config
        .options()
        .extensions
        .get::<FairwayOptions>()
        .and_then(|o| o.get("scheduler.pool"))
        .unwrap_or(fairway_scheduler::DEFAULT_POOL)
        .to_string()
}
