//! Building a feature table: check and plan everything, compute the shared
//! views, run the methods as concurrent jobs in their pools, materialise
//! each result in the stage area, merge them on the key and write the output
//! atomically.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use fairway_scheduler::SchedulingMode;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::cache::{
    self, FileStamp, Lineage, Manifest, ManifestEntry, RESULT_FILE, fingerprint, lineage,
};
use super::fuse::{self, FusedGroup, Fusion, MemberMap};
use super::guard::{self, OutputPaths};
pub use super::options::BuildOptions;
use super::progress::{BuildProgress, fused_job, method_job, shared_job, view_job};
use super::share::{self, SharedSubplan, Sharing};
use super::spec::{Body, Definition, FeatureSpec, OutputCompression};
use crate::error::{FeatureError, Result};
use fairway_engine::EngineConfig;
use fairway_engine::EngineError;
use fairway_engine::{MergeHow, merge_frames};
use fairway_engine::{QueryOutput, Session};
use fairway_files as files;

/// What one method did in a build.
#[derive(Debug, Clone)]
pub struct MethodReport {
    pub name: String,
    pub pool: String,
    pub rows: usize,
    /// Feature columns (key columns not counted).
    pub columns: usize,
    /// Time from its start to its materialised result (0 when reused).
    pub elapsed: Duration,
    /// The part of `elapsed` its job waited for its first slot.
    pub queued: Duration,
    pub reused: bool,
}

/// What one shared view did in a build.
#[derive(Debug, Clone)]
pub struct ViewReport {
    pub name: String,
    /// The methods that read it.
    pub methods: Vec<String>,
    pub rows: usize,
    pub bytes: usize,
    /// Kept in memory (`true`) or written to the stage area.
    pub in_memory: bool,
    pub elapsed: Duration,
    /// A view the spec declares, or what the build found to share.
    pub kind: ViewKind,
}

/// What a [`ViewReport`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// A `[[view]]` of the spec read by two or more methods.
    Declared,
    /// A join that two or more methods compute the same way.
    SharedSubplan,
    /// The one aggregate pass of methods that aggregate the same input by
    /// the same keys.
    FusedAggregate,
}

/// The outcome of a successful build.
#[derive(Debug, Clone)]
pub struct BuildSummary {
    pub output: PathBuf,
    pub rows: usize,
    /// The output's columns: the key column(s), then each method's features.
    pub columns: Vec<String>,
    pub methods: Vec<MethodReport>,
    pub views: Vec<ViewReport>,
    /// Time of the merge and the output write.
    pub merge_elapsed: Duration,
    pub elapsed: Duration,
}

impl BuildSummary {
    /// Names of the methods whose earlier result was reused.
    pub fn reused(&self) -> Vec<&str> {
        self.methods
            .iter()
            .filter(|m| m.reused)
            .map(|m| m.name.as_str())
            .collect()
    }

    /// Names of the methods that ran.
    pub fn built(&self) -> Vec<&str> {
        self.methods
            .iter()
            .filter(|m| !m.reused)
            .map(|m| m.name.as_str())
            .collect()
    }
}

impl fmt::Display for BuildSummary {
    /// A table: method, pool, rows, columns, seconds, reused|built; then the
    /// shared views and one line for the output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |header: &str, cells: Vec<usize>| {
            cells.into_iter().max().unwrap_or(0).max(header.len())
        };
        let wn = width(
            "method",
            self.methods.iter().map(|m| m.name.len()).collect(),
        );
        let wp = width("pool", self.methods.iter().map(|m| m.pool.len()).collect());
        let wr = width(
            "rows",
            self.methods
                .iter()
                .map(|m| m.rows.to_string().len())
                .collect(),
        );
        writeln!(
            f,
            "{:<wn$}  {:<wp$}  {:>wr$}  {:>7}  {:>8}  {:>5}  status",
            "method", "pool", "rows", "columns", "queued s", "ran s"
        )?;
        for m in &self.methods {
            writeln!(
                f,
                "{:<wn$}  {:<wp$}  {:>wr$}  {:>7}  {:>8.2}  {:>5.2}  {}",
                m.name,
                m.pool,
                m.rows,
                m.columns,
                m.queued.as_secs_f64(),
                m.elapsed.saturating_sub(m.queued).as_secs_f64(),
                if m.reused { "reused" } else { "built" }
            )?;
        }
        for v in &self.views {
            writeln!(
                f,
                "{} {}: {} rows, {} ({}) in {:.2} s, read by {}",
                match v.kind {
                    ViewKind::Declared => "shared view",
                    ViewKind::SharedSubplan => "shared subplan",
                    ViewKind::FusedAggregate => "fused aggregate",
                },
                v.name,
                v.rows,
                fairway_engine::format_size(v.bytes as u64),
                if v.in_memory {
                    "in memory"
                } else {
                    "spilled to the stage area"
                },
                v.elapsed.as_secs_f64(),
                v.methods.join(", ")
            )?;
        }
        let reused = self.reused();
        write!(
            f,
            "{}: {} rows, {} columns; merged and written in {:.2} s; total {:.2} s; {} built, {} reused{}",
            self.output.display(),
            self.rows,
            self.columns.len(),
            self.merge_elapsed.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.methods.len() - reused.len(),
            reused.len(),
            if reused.is_empty() {
                String::new()
            } else {
                format!(" ({})", reused.join(", "))
            }
        )
    }
}

/// The engine settings of a build: FAIR by default, then the spec's
/// `[scheduler]` and `[build] conf`, then the options.
pub(crate) fn engine_config(spec: &FeatureSpec, options: &BuildOptions) -> Result<EngineConfig> {
    let mut config = EngineConfig::default();
    config.scheduler_mode = SchedulingMode::Fair;
    let s = &spec.scheduler;
    let spec_err = |e: EngineError| spec.error(None, e.to_string());
    if let Some(mode) = s.mode {
        config.scheduler_mode = mode;
    }
    if let Some(file) = &s.allocation_file {
        config.allocation_file = Some(file.clone());
    }
    if let Some(slots) = s.slots {
        config
            .set("fairway.scheduler.slots", &slots.to_string())
            .map_err(spec_err)?;
    }
    if let Some(partitions) = s.partitions {
        config
            .set("fairway.shuffle.partitions", &partitions.to_string())
            .map_err(spec_err)?;
    }
    if let Some(pool) = &s.default_pool {
        config
            .set("fairway.scheduler.pool", pool)
            .map_err(spec_err)?;
    }
    for (key, value) in &spec.build.conf {
        config.set(key, value).map_err(spec_err)?;
    }
    for (key, value) in &options.conf {
        config.set(key, value)?;
    }
    if let Some(slots) = options.slots {
        config.set("fairway.scheduler.slots", &slots.to_string())?;
    }
    if let Some(partitions) = options.partitions {
        config.set("fairway.shuffle.partitions", &partitions.to_string())?;
    }
    if let Some(mode) = options.scheduler_mode {
        config.scheduler_mode = mode;
    }
    if let Some(file) = &options.allocation_file {
        config.allocation_file = Some(file.clone());
    }
    if let Some(pool) = &options.default_pool {
        config.set("fairway.scheduler.pool", pool)?;
    }
    if options.event_log.is_some() {
        config.event_log = options.event_log.clone();
    }
    if options.cluster.is_some() {
        config.cluster = options.cluster.clone();
    }
    if options.cluster_slots.is_some() {
        config.cluster_slots = options.cluster_slots;
    }
    // The build's default pool shares its slots fairly among the methods
    // in it (a pool named on first use would be FIFO, running them one
    // after another), unless an allocation file defines it.
    if config.default_pool != fairway_scheduler::DEFAULT_POOL {
        config.pools.push(fairway_scheduler::PoolConfig {
            mode: SchedulingMode::Fair,
            ..fairway_scheduler::PoolConfig::new(config.default_pool.clone())
        });
    }
    // The build draws its own lines per method instead of per stage.
    config.progress = false;
    Ok(config)
}

/// A view's or method's rows as a DataFrame planned in `client` (so its job
/// goes to `client`'s pool).
pub(crate) async fn plan_definition(client: &Session, def: &Definition) -> Result<DataFrame> {
    match &def.body {
        Body::Sql { .. } => {
            let statement = def
                .statement()
                .map_err(|m| FeatureError::config(&def.name, m))?
                .expect("an SQL body has a statement");
            Ok(client.plan_statement(statement).await?)
        }
        Body::Steps(steps) => {
            let mut df = client.context().table(steps.from.as_str()).await?;
            if let Some(filter) = &steps.filter {
                let predicate = df.parse_sql_expr(filter)?;
                df = df.filter(predicate)?;
            }
            if !steps.aggregate.is_empty() {
                let group = parse_all(&df, &steps.group_by)?;
                let aggregates = parse_all(&df, &steps.aggregate)?;
                df = df.aggregate(group, aggregates)?;
            }
            if !steps.select.is_empty() {
                let columns = parse_all(&df, &steps.select)?;
                df = df.select(columns)?;
            }
            Ok(df)
        }
    }
}

/// A method's rows as a DataFrame planned in `client`, with its key
/// columns cast as `[build] key_cast` says (other columns untouched, in
/// their order).
pub(crate) async fn plan_method(
    client: &Session,
    spec: &FeatureSpec,
    def: &Definition,
) -> Result<DataFrame> {
    use datafusion::arrow::compute::can_cast_types;
    use datafusion::common::Column;
    use datafusion::logical_expr::{Expr, cast};
    let df = plan_definition(client, def).await?;
    if spec.build.key_cast.is_empty() {
        return Ok(df);
    }
    let mut changed = false;
    let mut columns = Vec::with_capacity(df.schema().fields().len());
    for (qualifier, field) in df.schema().iter() {
        let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
        match spec.build.key_cast_of(field.name()) {
            Some(to) if to != field.data_type() => {
                if !can_cast_types(field.data_type(), to) {
                    return Err(FeatureError::config(
                        "key_cast",
                        format!(
                            "key '{}' of type {} cannot be cast to {to}",
                            field.name(),
                            field.data_type()
                        ),
                    ));
                }
                changed = true;
                columns.push(cast(column, to.clone()).alias(field.name()));
            }
            _ => columns.push(column),
        }
    }
    if !changed {
        return Ok(df);
    }
    Ok(df.select(columns)?)
}

fn parse_all(df: &DataFrame, exprs: &[String]) -> Result<Vec<datafusion::prelude::Expr>> {
    exprs
        .iter()
        .map(|e| df.parse_sql_expr(e).map_err(FeatureError::from))
        .collect()
}

/// What checking and planning a spec found out, before anything ran.
pub(crate) struct Checked {
    pub session: Session,
    pub default_pool: String,
    /// Per method: what it reads through views, its feature columns.
    pub lineages: Vec<Lineage>,
    pub features: Vec<Vec<String>>,
    pub files: BTreeMap<String, Vec<FileStamp>>,
    /// The Arrow type of each key column, the same in every method.
    pub key_types: Vec<DataType>,
    /// Per method, its unoptimised plan as checked (views not yet
    /// materialised): what [`discover_automatic`] compares.
    pub plans: Vec<LogicalPlan>,
    /// The views' unoptimised plans, by registered name.
    pub view_plans: Arc<share::ViewPlans>,
}

/// Direct reads (lower-case table names) of every view, by view name, and
/// of every method, in spec order.
pub(crate) struct Reads {
    pub views: BTreeMap<String, Vec<String>>,
    pub methods: Vec<Vec<String>>,
}

/// Direct reads of every view and method, each checked to be a source or
/// a view (for a view: one defined before it).
pub(crate) fn check_reads(spec: &FeatureSpec) -> Result<Reads> {
    let sources: BTreeSet<String> = spec
        .sources
        .iter()
        .map(|s| s.name.to_ascii_lowercase())
        .collect();
    // The direct reads of `def`, each a source or a view in `views`.
    let direct = |kind: &str, def: &Definition, views: &BTreeMap<String, Vec<String>>| {
        let reads = def
            .reads()
            .map_err(|m| spec.error(def.line, format!("{kind} '{}': {m}", def.name)))?;
        if let Some(name) = reads
            .iter()
            .find(|n| !sources.contains(*n) && !views.contains_key(*n))
        {
            let hint = if kind == "view" && spec.view(name).is_some() {
                " (a view may read only views defined before it)"
            } else {
                ""
            };
            let names: Vec<&str> = views.keys().map(String::as_str).collect();
            return Err(spec.error(
                def.line,
                format!(
                    "{kind} '{}' reads unknown table '{name}'{hint} (sources: {}; views: {})",
                    def.name,
                    spec.source_names(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        Ok(reads)
    };
    let mut view_reads = BTreeMap::new();
    for view in &spec.views {
        let reads = direct("view", view, &view_reads)?;
        view_reads.insert(view.name.to_ascii_lowercase(), reads);
    }
    let method_reads = spec
        .methods
        .iter()
        .map(|method| direct("method", method, &view_reads))
        .collect::<Result<Vec<_>>>()?;
    Ok(Reads {
        views: view_reads,
        methods: method_reads,
    })
}

/// Checks everything that can be checked before running anything: source
/// files, table names, SQL, key columns, feature names. Plans every view
/// and method (logical planning only) in a new session.
pub(crate) async fn check(
    spec: &FeatureSpec,
    options: &BuildOptions,
    listener: Option<Arc<dyn fairway_scheduler::SchedulerListener>>,
) -> Result<Checked> {
    let Reads {
        views: view_reads,
        methods: method_reads,
    } = check_reads(spec)?;
    let config = engine_config(spec, options)?;
    let default_pool = config.default_pool.clone();
    let session = Session::start_with_listener(config, listener).await?;
    // Each source's files as the scan will read them (DataFusion's own
    // listing of the registered table), for the methods' fingerprints.
    let mut files = BTreeMap::new();
    for source in &spec.sources {
        let name = source.name.to_ascii_lowercase();
        let source_error = |e: &EngineError| {
            spec.error(
                spec.line_of(&source.name),
                format!("source '{}': {}", source.name, strip_table(e)),
            )
        };
        session
            .register_table(&name, &source.path)
            .await
            .map_err(|e| source_error(&e))?;
        let stamps: Vec<FileStamp> = session
            .table_files(&name)
            .await
            .map_err(|e| source_error(&e))?
            .into_iter()
            .map(|f| FileStamp {
                path: f.location,
                size: f.size,
                modified_ns: f.modified_ns,
                e_tag: f.e_tag,
            })
            .collect();
        if stamps.is_empty() {
            return Err(spec.error(
                spec.line_of(&source.name),
                format!("source '{}': {}: matches no file", source.name, source.path),
            ));
        }
        files.insert(name, stamps);
    }
    let mut view_plans = share::ViewPlans::new();
    for view in &spec.views {
        let df = plan_definition(&session, view)
            .await
            .map_err(|e| spec.error(view.line, format!("view '{}': {e}", view.name)))?;
        let name = view.name.to_ascii_lowercase();
        view_plans.insert(name.clone(), df.logical_plan().clone());
        session
            .context()
            .register_table(name.as_str(), df.into_view())?;
    }
    let mut plans = Vec::with_capacity(spec.methods.len());
    let mut features: Vec<Vec<String>> = Vec::new();
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    // Per key column: the first method's name and the type it returns.
    let mut key_types: Vec<(&str, DataType)> = Vec::new();
    for method in &spec.methods {
        let df = plan_method(&session, spec, method)
            .await
            .map_err(|e| spec.error(method.line, format!("method '{}': {e}", method.name)))?;
        let names: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for key in &spec.key {
            if !names.contains(key) {
                return Err(spec.error(
                    method.line,
                    format!(
                        "method '{}' does not return the key column '{key}' (its columns: {})",
                        method.name,
                        names.join(", ")
                    ),
                ));
            }
        }
        for (k, key) in spec.key.iter().enumerate() {
            let field = df
                .schema()
                .fields()
                .iter()
                .find(|f| f.name() == key)
                .expect("the key column is there");
            let ty = field.data_type();
            match key_types.get(k) {
                None => key_types.push((&method.name, ty.clone())),
                Some((first, first_ty)) if first_ty != ty => {
                    return Err(spec.error(
                        method.line,
                        format!(
                            "key '{key}': method '{first}' returns {first_ty}, method '{}' \
                             returns {ty}; every method must return the key with one type \
                             (cast it in the method, or set [build] key_cast = \"{first_ty}\")",
                            method.name
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let mine: Vec<String> = names
            .into_iter()
            .filter(|n| !spec.key.contains(n))
            .collect();
        let mut seen = HashSet::new();
        for column in &mine {
            if !seen.insert(column.as_str()) {
                return Err(spec.error(
                    method.line,
                    format!("method '{}' returns column '{column}' twice", method.name),
                ));
            }
            if let Some(other) = owner.insert(column.clone(), &method.name) {
                return Err(spec.error(
                    method.line,
                    format!(
                        "feature column '{column}' is returned by methods '{other}' and '{}'; \
                         rename one of them",
                        method.name
                    ),
                ));
            }
        }
        features.push(mine);
        plans.push(df.into_unoptimized_plan());
    }
    let lineages = method_reads
        .iter()
        .map(|reads| lineage(reads, &view_reads))
        .collect();
    Ok(Checked {
        session,
        default_pool,
        lineages,
        features,
        files,
        key_types: key_types.into_iter().map(|(_, t)| t).collect(),
        plans,
        view_plans: Arc::new(view_plans),
    })
}

/// A table error's message without its `table 'x' (path):` prefix when the
/// caller names the source itself, keeping the path.
fn strip_table(e: &EngineError) -> String {
    match e {
        EngineError::Table { path, message, .. } => format!("{path}: {message}"),
        other => other.to_string(),
    }
}

/// Views to materialise once for `methods`: those read (directly or through
/// other views) by two or more of them, with the names of those methods.
pub(crate) fn shared_views(
    spec: &FeatureSpec,
    lineages: &[Lineage],
    methods: &[usize],
) -> Vec<(String, Vec<String>)> {
    spec.views
        .iter()
        .filter_map(|view| {
            let name = view.name.to_ascii_lowercase();
            let readers: Vec<String> = methods
                .iter()
                .filter(|&&i| lineages[i].views.contains(&name))
                .map(|&i| spec.methods[i].name.clone())
                .collect();
            (readers.len() >= 2).then_some((name, readers))
        })
        .collect()
}

/// What a build computes once for several methods: the fused aggregate
/// passes (see `fuse`) and the shared joins (see `share`), found in the
/// unoptimised plans of the methods to build.
#[derive(Debug, Clone, Default)]
pub(crate) struct Automatic {
    pub fusion: Fusion,
    /// Its readers index `spec.methods`, then `fusion.groups` (from
    /// `spec.methods.len()` on): a fused pass reads shared joins too.
    pub sharing: Sharing,
}

impl Automatic {
    /// The name of reader `index` of a shared subplan.
    pub fn reader_name<'a>(&'a self, spec: &'a FeatureSpec, index: usize) -> &'a str {
        match index.checked_sub(spec.methods.len()) {
            Some(g) => &self.fusion.groups[g].name,
            None => &spec.methods[index].name,
        }
    }
}

/// Whether a build of `spec` with `options` shares joins and fuses
/// aggregates.
pub(crate) fn automatic_settings(spec: &FeatureSpec, options: &BuildOptions) -> (bool, bool) {
    (
        options.share_subplans.unwrap_or(spec.build.share_subplans),
        options
            .fuse_aggregations
            .unwrap_or(spec.build.fuse_aggregations),
    )
}

/// Finds what `methods` (indexes into the spec's methods) can compute
/// once: first the groups of methods whose aggregates fuse, then the joins
/// that two or more of the other methods and of the fused passes compute
/// the same way. Nothing when `[build] share_subplans` and
/// `fuse_aggregations` (or the options) turn both off. Compares the plans
/// [`check`] made, planning nothing again.
pub(crate) fn discover_automatic(
    spec: &FeatureSpec,
    options: &BuildOptions,
    checked: &Checked,
    methods: &[usize],
) -> Result<Automatic> {
    let (share_on, fuse_on) = automatic_settings(spec, options);
    if !(share_on || fuse_on) || methods.len() < 2 {
        return Ok(Automatic::default());
    }
    let plans: Vec<(usize, LogicalPlan)> = methods
        .iter()
        .map(|&i| (i, checked.plans[i].clone()))
        .collect();
    // The views' plans, to recognise them inlined in the methods' plans.
    let views = &checked.view_plans;
    let mut names: Vec<String> = spec.methods.iter().map(|m| m.name.clone()).collect();
    let fusion = if fuse_on {
        fuse::discover(&plans, &names, views)
    } else {
        Fusion::default()
    };
    if !share_on {
        return Ok(Automatic {
            fusion,
            sharing: Sharing::default(),
        });
    }
    let mut inputs: Vec<(usize, LogicalPlan)> = plans
        .iter()
        .filter(|(i, _)| fusion.group_of(*i).is_none())
        .cloned()
        .collect();
    for (g, group) in fusion.groups.iter().enumerate() {
        let members: Vec<(usize, &LogicalPlan)> = plans
            .iter()
            .filter(|(i, _)| group.members.contains(i))
            .map(|(i, p)| (*i, p))
            .collect();
        if let Some((plan, _)) = fuse::fused_plan(&members, group)? {
            inputs.push((spec.methods.len() + g, plan));
        }
        names.push(group.name.clone());
    }
    let sharing = share::discover(&inputs, &names, views);
    Ok(Automatic { fusion, sharing })
}

/// The fused aggregate of `group`, from its members planned now (so that
/// they read the views as materialised), with how each member reads it;
/// `None` when a member's plan no longer has the group's shape.
async fn plan_fused(
    client: &Session,
    spec: &FeatureSpec,
    group: &FusedGroup,
) -> Result<Option<(SessionState, LogicalPlan, Vec<MemberMap>)>> {
    let mut state = None;
    let mut plans = Vec::with_capacity(group.members.len());
    for &i in &group.members {
        let (s, plan) = plan_method(client, spec, &spec.methods[i])
            .await?
            .into_parts();
        state.get_or_insert(s);
        plans.push((i, plan));
    }
    let refs: Vec<(usize, &LogicalPlan)> = plans.iter().map(|(i, p)| (*i, p)).collect();
    Ok(match (state, fuse::fused_plan(&refs, group)?) {
        (Some(state), Some((plan, maps))) => Some((state, plan, maps)),
        _ => None,
    })
}

/// The plan of reader `index` of a shared subplan (see [`Automatic`]).
async fn reader_plan(
    client: &Session,
    spec: &FeatureSpec,
    automatic: &Automatic,
    index: usize,
) -> Result<Option<(SessionState, LogicalPlan)>> {
    match index.checked_sub(spec.methods.len()) {
        None => Ok(Some(
            plan_method(client, spec, &spec.methods[index])
                .await?
                .into_parts(),
        )),
        Some(g) => Ok(plan_fused(client, spec, &automatic.fusion.groups[g])
            .await?
            .map(|(state, plan, _)| (state, plan))),
    }
}

/// The position of the last of the spec's views that the methods `readers`
/// read (a fused group's index, see [`Automatic`], stands for its members).
fn last_view_read(
    spec: &FeatureSpec,
    checked: &Checked,
    automatic: &Automatic,
    readers: &[usize],
) -> Option<usize> {
    let mut methods = Vec::new();
    for &r in readers {
        match r.checked_sub(spec.methods.len()) {
            Some(g) => methods.extend(&automatic.fusion.groups[g].members),
            None => methods.push(r),
        }
    }
    spec.views.iter().rposition(|v| {
        let name = v.name.to_ascii_lowercase();
        methods
            .iter()
            .any(|&m| checked.lineages[m].views.contains(&name))
    })
}

/// The shared subplans `reader` reads, each with its cell.
fn shared_reads<'a>(
    sharing: &'a Sharing,
    cells: &[SharedCell],
    reader: usize,
) -> Vec<(
    &'a SharedSubplan,
    tokio::sync::watch::Receiver<Option<Option<LogicalPlan>>>,
)> {
    sharing
        .shared
        .iter()
        .zip(cells)
        .filter(|(s, _)| s.readers.contains(&reader))
        .map(|(s, cell)| (s, cell.subscribe()))
        .collect()
}

/// Waits for the cells of `reads` and returns the shared subplans that
/// were computed, each with the plan of a scan of its result.
async fn wait_shared<'a>(
    reads: &mut [(
        &'a SharedSubplan,
        tokio::sync::watch::Receiver<Option<Option<LogicalPlan>>>,
    )],
) -> Vec<(&'a SharedSubplan, LogicalPlan)> {
    let mut shared = Vec::new();
    for (subplan, cell) in reads {
        // An error means the computation failed and is reporting it.
        if let Ok(scan) = cell.wait_for(Option::is_some).await
            && let Some(Some(scan)) = scan.clone()
        {
            shared.push((*subplan, scan));
        }
    }
    shared
}

/// Holds, once computed, the plan of a scan of a shared subplan's result
/// (`None` when it could not be made: its readers compute it themselves).
type SharedCell = tokio::sync::watch::Sender<Option<Option<LogicalPlan>>>;

/// Holds, once computed, the plan of a scan of a fused pass's result and
/// how each member reads it (`None`: its members run on their own).
type FusedCell = tokio::sync::watch::Sender<Option<Option<(LogicalPlan, Vec<MemberMap>)>>>;

/// Builds the feature table of `spec`: see the module documentation of
/// [`crate`]. On failure the previous output is untouched and the
/// error names the method or view at fault.
pub async fn build_features(spec: &FeatureSpec, options: &BuildOptions) -> Result<BuildSummary> {
    let start = Instant::now();
    let output = options
        .out
        .clone()
        .or_else(|| spec.output.path.clone())
        .ok_or_else(|| {
            spec.error(
                None,
                "no output path: give [output] path in the spec or --out",
            )
        })?;
    let progress = {
        let mut entries: Vec<(String, String)> = spec
            .views
            .iter()
            .map(|v| (view_job(&v.name), format!("view {}", v.name)))
            .collect();
        entries.extend(
            spec.methods
                .iter()
                .map(|m| (method_job(&m.name), m.name.clone())),
        );
        // Drawn on a terminal only; always counting the queue waits.
        Arc::new(BuildProgress::new(&entries, options.progress))
    };
    let listener = Arc::clone(&progress) as Arc<dyn fairway_scheduler::SchedulerListener>;
    // An output on an object store is built into a local shadow (with its
    // cache) and uploaded as one object when the build succeeded.
    let remote = match crate::remote::remote_output(&output) {
        Some(url) => Some((url, engine_config(spec, options)?)),
        None => None,
    };
    let local = match &remote {
        Some((url, config)) => {
            crate::remote::refuse_onto_source(spec, url)?;
            let local = crate::remote::shadow(url, options.cache_dir.as_deref())?;
            crate::remote::restore_stage(&local, url, config).await?;
            local
        }
        None => output.clone(),
    };
    let mut result = build_checked(
        spec,
        options,
        &local,
        Some(listener),
        Some(&progress),
        start,
    )
    .await;
    progress.close();
    if let (Some((url, config)), Ok(summary)) = (&remote, &mut result) {
        crate::remote::save_stage(&local, url, config).await?;
        crate::remote::upload(&local, url, config).await?;
        summary.output = output;
    }
    result
}

async fn build_checked(
    spec: &FeatureSpec,
    options: &BuildOptions,
    output: &Path,
    listener: Option<Arc<dyn fairway_scheduler::SchedulerListener>>,
    progress: Option<&BuildProgress>,
    start: Instant,
) -> Result<BuildSummary> {
    // The output must not be (or lie inside) an input, nor be a link or a
    // folder: refused before anything is planned or run.
    let paths = OutputPaths::new(output)?;
    guard::check_output(spec, options, &paths)?;
    let checked = check(spec, options, listener).await?;
    let session = &checked.session;
    // One build at a time per output; released (and its file removed)
    // when the build ends, whichever way.
    let _lock = paths.lock_and_prepare()?;
    let stage = paths.stage.clone();
    let previous = Manifest::read(&stage);
    let manifest = if options.force {
        Manifest::default()
    } else {
        previous.clone()
    };
    let fingerprints: Vec<String> = spec
        .methods
        .iter()
        .zip(&checked.lineages)
        .map(|(m, l)| fingerprint(spec, m, l, &checked.files))
        .collect();
    let mut reports: Vec<Option<MethodReport>> = vec![None; spec.methods.len()];
    let mut folders: Vec<String> = vec![String::new(); spec.methods.len()];
    let mut to_build = Vec::new();
    for (i, method) in spec.methods.iter().enumerate() {
        let pool = method.pool_or(&checked.default_pool).to_string();
        match manifest.reusable(&stage, &method.name, &fingerprints[i]) {
            Some(entry) => {
                folders[i] = entry.folder.clone();
                reports[i] = Some(MethodReport {
                    name: method.name.clone(),
                    pool,
                    rows: entry.rows,
                    columns: checked.features[i].len(),
                    elapsed: Duration::ZERO,
                    queued: Duration::ZERO,
                    reused: true,
                });
                if let Some(p) = progress {
                    p.finish(&method_job(&method.name), "reused".to_string());
                }
            }
            None => to_build.push(i),
        }
    }
    // Record the result folders about to be written as fairway's before any
    // is created, so that a build that fails still knows them; an entry of
    // the stage folder under such a name that is not fairway's is refused.
    let mut owned = previous.owned.clone();
    for &i in &to_build {
        let folder = format!("{}-{}", spec.methods[i].name, fingerprints[i]);
        cache::check_result_folder(&stage, &folder, &previous.owned)?;
        owned.insert(folder);
    }
    if owned != previous.owned {
        Manifest {
            methods: previous.methods.clone(),
            owned: owned.clone(),
        }
        .write(&stage)?;
    }
    // Views spilled to the stage area, removed when the build ends.
    let spilled = std::sync::Mutex::new(Vec::new());
    let shared = shared_views(spec, &checked.lineages, &to_build);
    let needed: BTreeSet<String> = to_build
        .iter()
        .flat_map(|&i| checked.lineages[i].views.iter().cloned())
        .collect();
    // Views are (re)registered in spec order by one task; `views_done`
    // counts the views it has finished, so a method waits only for the
    // views it reads and starts while later views are still computed.
    let (views_done, views_progress) = tokio::sync::watch::channel(0usize);
    // Joins several methods compute the same way, each computed once: its
    // cell holds, once it ran, the plan of a scan of its result (`None`
    // when it could not be made, and its readers compute it themselves).
    let automatic = discover_automatic(spec, options, &checked, &to_build)?;
    let (sharing, fusion) = (&automatic.sharing, &automatic.fusion);
    let cells: Vec<SharedCell> = sharing
        .shared
        .iter()
        .map(|_| tokio::sync::watch::channel(None).0)
        .collect();
    let fused_cells: Vec<FusedCell> = fusion
        .groups
        .iter()
        .map(|_| tokio::sync::watch::channel(None).0)
        .collect();
    let checked = &checked;
    let default_pool = checked.default_pool.as_str();
    let shared_phase = async {
        let computations = sharing.shared.iter().zip(&cells).map(|(subplan, cell)| {
            let mut views_progress = views_progress.clone();
            let (stage, spilled, automatic) = (&stage, &spilled, &automatic);
            async move {
                if let Some(last) = last_view_read(spec, checked, automatic, &subplan.readers) {
                    let _ = views_progress.wait_for(|&done| done > last).await;
                }
                let computed = compute_shared(SharedStep {
                    session,
                    spec,
                    default_pool,
                    automatic,
                    subplan,
                    stage,
                    spilled,
                })
                .await
                .map_err(|e| FeatureError::Step {
                    kind: "shared subplan",
                    name: format!("{} ({})", subplan.name, subplan.description),
                    message: format!(
                        "{e} ([build] share_subplans = false computes it in each method)"
                    ),
                })?;
                let (report, scan) = match computed {
                    Some((report, scan)) => (Some(report), Some(scan)),
                    None => (None, None),
                };
                cell.send_replace(Some(scan));
                Ok::<_, FeatureError>(report)
            }
        });
        let reports = futures::future::try_join_all(computations).await?;
        Ok::<_, FeatureError>(reports.into_iter().flatten().collect::<Vec<_>>())
    };
    let fused_phase = async {
        let computations =
            fusion
                .groups
                .iter()
                .enumerate()
                .zip(&fused_cells)
                .map(|((g, group), cell)| {
                    let mut views_progress = views_progress.clone();
                    let mut reads = shared_reads(sharing, &cells, spec.methods.len() + g);
                    let (stage, spilled, automatic) = (&stage, &spilled, &automatic);
                    async move {
                        if let Some(last) = last_view_read(spec, checked, automatic, &group.members)
                        {
                            let _ = views_progress.wait_for(|&done| done > last).await;
                        }
                        let shared = wait_shared(&mut reads).await;
                        let computed = compute_fused(FusedStep {
                            session,
                            spec,
                            default_pool,
                            group,
                            shared: &shared,
                            stage,
                            spilled,
                        })
                        .await
                        .map_err(|e| FeatureError::Step {
                            kind: "fused aggregate",
                            name: format!("{} ({})", group.name, group.description),
                            message: format!(
                                "{e} ([build] fuse_aggregations = false runs each method's own \
                             aggregate)"
                            ),
                        })?;
                        let (report, result) = match computed {
                            Some((report, scan, maps)) => (Some(report), Some((scan, maps))),
                            None => (None, None),
                        };
                        cell.send_replace(Some(result));
                        Ok::<_, FeatureError>(report)
                    }
                });
        let reports = futures::future::try_join_all(computations).await?;
        Ok::<_, FeatureError>(reports.into_iter().flatten().collect::<Vec<_>>())
    };
    let views_phase = async {
        let mut view_reports = Vec::new();
        for (index, view) in spec.views.iter().enumerate() {
            compute_view(ViewStep {
                session,
                spec,
                view,
                default_pool: &checked.default_pool,
                needed: needed.contains(&view.name.to_ascii_lowercase()),
                shared: &shared,
                stage: &stage,
                spilled: &spilled,
                progress,
                reports: &mut view_reports,
            })
            .await?;
            views_done.send_replace(index + 1);
        }
        Ok::<_, FeatureError>(view_reports)
    };
    let checked_ref = &checked;
    let runs = to_build.iter().map(|&i| {
        let method = &spec.methods[i];
        let pool = method.pool_or(&checked.default_pool).to_string();
        let folder = format!("{}-{}", method.name, fingerprints[i]);
        let stage = stage.clone();
        // The last view (in spec order) this method reads, through views.
        let last_view = spec.views.iter().rposition(|v| {
            checked.lineages[i]
                .views
                .contains(&v.name.to_ascii_lowercase())
        });
        let mut views_progress = views_progress.clone();
        let mut reads = shared_reads(sharing, &cells, i);
        let mut fused = fusion.group_of(i).map(|g| fused_cells[g].subscribe());
        async move {
            if let Some(last) = last_view {
                // An error means the views task failed and is reporting it.
                let _ = views_progress.wait_for(|&done| done > last).await;
            }
            // Likewise for the shared subplans it reads and its fused pass.
            let shared = wait_shared(&mut reads).await;
            let mut fused_result = None;
            if let Some(cell) = &mut fused
                && let Ok(result) = cell.wait_for(Option::is_some).await
                && let Some(Some((scan, maps))) = result.clone()
            {
                fused_result = maps
                    .into_iter()
                    .find(|m| m.method == i)
                    .map(|map| (scan, map));
            }
            let started = Instant::now();
            let rows = run_method(
                MethodStep {
                    session,
                    spec,
                    checked: checked_ref,
                    method,
                    pool: &pool,
                    stage: &stage,
                    folder: &folder,
                },
                &shared,
                fused_result.as_ref(),
            )
            .await
            .map_err(|e| {
                if let Some(p) = progress {
                    p.finish(&method_job(&method.name), format!("failed: {e}"));
                }
                match e {
                    e @ FeatureError::Step { .. } => e,
                    e => FeatureError::Step {
                        kind: "method",
                        name: method.name.clone(),
                        message: e.to_string(),
                    },
                }
            })?;
            let elapsed = started.elapsed();
            let queued = progress.map_or(Duration::ZERO, |p| p.queued(&method_job(&method.name)));
            if let Some(p) = progress {
                p.finish(
                    &method_job(&method.name),
                    format!("built: {rows} rows in {:.2} s", elapsed.as_secs_f64()),
                );
            }
            Ok::<_, FeatureError>((i, folder, rows, pool, elapsed, queued))
        }
    });
    // try_join drops the other futures as soon as one fails, which cancels
    // their jobs and frees their slots at once.
    let (mut view_reports, (shared_reports, fused_reports), done) = if options.sequential {
        let view_reports = views_phase.await?;
        let shared_reports = shared_phase.await?;
        let fused_reports = fused_phase.await?;
        let mut done = Vec::new();
        for run in runs {
            done.push(run.await?);
        }
        (view_reports, (shared_reports, fused_reports), done)
    } else {
        futures::future::try_join3(
            views_phase,
            futures::future::try_join(shared_phase, fused_phase),
            futures::future::try_join_all(runs),
        )
        .await?
    };
    view_reports.extend(shared_reports);
    view_reports.extend(fused_reports);
    for (i, folder, rows, pool, elapsed, queued) in done {
        folders[i] = folder;
        reports[i] = Some(MethodReport {
            name: spec.methods[i].name.clone(),
            pool,
            rows,
            columns: checked.features[i].len(),
            elapsed,
            queued: queued.min(elapsed),
            reused: false,
        });
    }
    let merge_start = Instant::now();
    let (rows, columns) = merge_and_write(session, spec, options, output, &stage, &folders).await?;
    let mut new_manifest = Manifest::default();
    drop(spilled);
    for (i, method) in spec.methods.iter().enumerate() {
        let report = reports[i].as_ref().expect("every method built or reused");
        new_manifest.methods.insert(
            method.name.clone(),
            ManifestEntry {
                fingerprint: fingerprints[i].clone(),
                folder: folders[i].clone(),
                rows: report.rows,
            },
        );
    }
    let keep: BTreeSet<String> = folders.iter().cloned().collect();
    new_manifest.owned = cache::remove_stale(&stage, &owned, &keep);
    new_manifest.write(&stage)?;
    session.flush_event_log();
    Ok(BuildSummary {
        output: output.to_path_buf(),
        rows,
        columns,
        methods: reports.into_iter().map(|r| r.expect("reported")).collect(),
        views: view_reports,
        merge_elapsed: merge_start.elapsed(),
        elapsed: start.elapsed(),
    })
}

/// What [`compute_view`] needs to bring one view up to date for the build.
struct ViewStep<'a> {
    session: &'a Session,
    spec: &'a FeatureSpec,
    view: &'a Definition,
    default_pool: &'a str,
    /// Whether a method to build reads it.
    needed: bool,
    /// Views to materialise, with the methods reading each.
    shared: &'a [(String, Vec<String>)],
    stage: &'a Path,
    spilled: &'a std::sync::Mutex<Vec<tempfile::TempDir>>,
    progress: Option<&'a BuildProgress>,
    reports: &'a mut Vec<ViewReport>,
}

/// Re-plans a needed view against the views before it (which may now be
/// materialised) and registers it: materialised when shared, else as a
/// logical view the planner inlines.
async fn compute_view(step: ViewStep<'_>) -> Result<()> {
    let ViewStep {
        session,
        spec,
        view,
        default_pool,
        needed,
        shared,
        stage,
        spilled,
        progress,
        reports,
    } = step;
    let name = view.name.to_ascii_lowercase();
    let job = view_job(&view.name);
    let readers = shared.iter().find(|(v, _)| *v == name).map(|(_, r)| r);
    if let (true, Some(p)) = (!needed || readers.is_none(), progress) {
        p.finish(
            &job,
            "not materialised (read by fewer than two methods to build)".into(),
        );
    }
    if !needed {
        return Ok(());
    }
    session.context().deregister_table(name.as_str())?;
    let client = session.with_pool(view.pool_or(default_pool))?;
    let df = plan_definition(&client, view).await?;
    let Some(readers) = readers else {
        session
            .context()
            .register_table(name.as_str(), df.into_view())?;
        return Ok(());
    };
    let target = Materialise {
        table: &name,
        job: &view_job(&view.name),
        label: &view.name,
        readers,
        spec,
        stage,
    };
    let (report, folder) = materialise(session, &client, df, target)
        .await
        .map_err(|e| FeatureError::Step {
            kind: "view",
            name: view.name.clone(),
            message: e.to_string(),
        })?;
    if let Some(folder) = folder {
        spilled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(folder);
    }
    if let Some(p) = progress {
        p.finish(
            &job,
            format!(
                "materialised: {} rows in {:.2} s",
                report.rows,
                report.elapsed.as_secs_f64()
            ),
        );
    }
    reports.push(report);
    Ok(())
}

/// Where [`materialise`] registers a shared result, and for whom.
struct Materialise<'a> {
    /// The table name it is registered under (lower-case).
    table: &'a str,
    /// The job's description.
    job: &'a str,
    /// The view's name, or the shared subplan's.
    label: &'a str,
    readers: &'a [String],
    spec: &'a FeatureSpec,
    stage: &'a Path,
}

/// Runs a shared view or subplan once and registers its rows under its
/// table name: in memory within the spec's `view_memory`, else as parquet
/// in a temporary folder of the stage area, returned to be removed when
/// the build ends.
async fn materialise(
    session: &Session,
    client: &Session,
    df: DataFrame,
    target: Materialise<'_>,
) -> Result<(ViewReport, Option<tempfile::TempDir>)> {
    let Materialise {
        table: name,
        job,
        label,
        readers,
        spec,
        stage,
    } = target;
    let started = Instant::now();
    let out = client.execute(df, job).await?;
    let rows = out.rows();
    let bytes: usize = out.batches.iter().map(|b| b.get_array_memory_size()).sum();
    // On a cluster the executors read the view, so it must be files.
    let in_memory = bytes <= spec.build.view_memory && session.cluster().is_none();
    let mut spilled = None;
    if in_memory {
        let partitions = session.config().partitions.max(1);
        let schema = result_schema(&out);
        let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
        for (i, batch) in out.batches.into_iter().enumerate() {
            parts[i % partitions].push(batch);
        }
        let table = MemTable::try_new(schema, parts)?;
        session.context().register_table(name, Arc::new(table))?;
    } else {
        // A fresh folder of its own (random name, removed when the build
        // ends; by the next build if this process dies).
        let folder = files::temp_dir_beside(&stage.join(format!("view-{label}")))?;
        let file = folder.path().join(RESULT_FILE);
        write_parquet_new(&file, &out, OutputCompression::Lz4, None)?;
        session
            .register_table(name, &file.to_string_lossy())
            .await?;
        spilled = Some(folder);
    }
    let report = ViewReport {
        name: label.to_string(),
        methods: readers.to_vec(),
        rows,
        bytes,
        in_memory,
        elapsed: started.elapsed(),
        kind: ViewKind::Declared,
    };
    Ok((report, spilled))
}

/// What [`compute_shared`] needs to compute one shared subplan.
struct SharedStep<'a> {
    session: &'a Session,
    spec: &'a FeatureSpec,
    default_pool: &'a str,
    automatic: &'a Automatic,
    subplan: &'a SharedSubplan,
    stage: &'a Path,
    spilled: &'a std::sync::Mutex<Vec<tempfile::TempDir>>,
}

/// Computes a shared subplan once, as a job in the default pool, from its
/// first reader's plan (planned now, so it reads the views as they are
/// materialised), and registers it like a shared view. Returns its report
/// and the plan of a scan of it; `None` if the reader's plan no longer
/// holds it.
async fn compute_shared(step: SharedStep<'_>) -> Result<Option<(ViewReport, LogicalPlan)>> {
    let SharedStep {
        session,
        spec,
        default_pool,
        automatic,
        subplan,
        stage,
        spilled,
    } = step;
    let client = session.with_pool(default_pool)?;
    let Some((state, plan)) = reader_plan(&client, spec, automatic, subplan.readers[0]).await?
    else {
        return Ok(None);
    };
    let Some(plan) = share::shared_plan(&plan, subplan)? else {
        return Ok(None);
    };
    let readers: Vec<String> = subplan
        .readers
        .iter()
        .map(|&i| automatic.reader_name(spec, i).to_string())
        .collect();
    let target = Materialise {
        table: &subplan.table,
        job: &shared_job(&subplan.name),
        label: &subplan.name,
        readers: &readers,
        spec,
        stage,
    };
    let df = DataFrame::new(state, plan);
    let kind = (ViewKind::SharedSubplan, subplan.description.as_str());
    Ok(Some(
        keep(session, &client, df, target, spilled, kind).await?,
    ))
}

/// Materialises a shared subplan or fused pass (`kind`, with the
/// description its report name carries) as [`materialise`] does, the build
/// removing its folder (if it went to the stage area) when it ends, and
/// returns its report and the plan of a scan of it.
async fn keep(
    session: &Session,
    client: &Session,
    df: DataFrame,
    target: Materialise<'_>,
    spilled: &std::sync::Mutex<Vec<tempfile::TempDir>>,
    (kind, description): (ViewKind, &str),
) -> Result<(ViewReport, LogicalPlan)> {
    let table = target.table.to_string();
    let name = format!("{} ({description})", target.label);
    let (mut report, folder) = materialise(session, client, df, target).await?;
    report.name = name;
    report.kind = kind;
    if let Some(folder) = folder {
        spilled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(folder);
    }
    let scan = session
        .context()
        .table(table.as_str())
        .await?
        .into_unoptimized_plan();
    Ok((report, scan))
}

/// What [`compute_fused`] needs to run one fused aggregate pass.
struct FusedStep<'a> {
    session: &'a Session,
    spec: &'a FeatureSpec,
    default_pool: &'a str,
    group: &'a FusedGroup,
    /// The shared subplans computed for it.
    shared: &'a [(&'a SharedSubplan, LogicalPlan)],
    stage: &'a Path,
    spilled: &'a std::sync::Mutex<Vec<tempfile::TempDir>>,
}

/// Runs the aggregates of a fused group as one pass, a job in the default
/// pool, over the shared subplans it reads, and registers its result like
/// a shared view (it has one row per key of the input). Returns its report,
/// the plan of a scan of it and how each member reads it; `None` when a
/// member's plan no longer has the group's shape.
async fn compute_fused(
    step: FusedStep<'_>,
) -> Result<Option<(ViewReport, LogicalPlan, Vec<MemberMap>)>> {
    let FusedStep {
        session,
        spec,
        default_pool,
        group,
        shared,
        stage,
        spilled,
    } = step;
    let client = session.with_pool(default_pool)?;
    let Some((state, plan, maps)) = plan_fused(&client, spec, group).await? else {
        return Ok(None);
    };
    let plan = match shared.is_empty() {
        true => plan,
        false => share::rewrite(plan, shared)?.0,
    };
    let readers: Vec<String> = group
        .members
        .iter()
        .map(|&i| spec.methods[i].name.clone())
        .collect();
    let target = Materialise {
        table: &group.table,
        job: &fused_job(&group.name),
        label: &group.name,
        readers: &readers,
        spec,
        stage,
    };
    let df = DataFrame::new(state, plan);
    let kind = (ViewKind::FusedAggregate, group.description.as_str());
    let (report, scan) = keep(session, &client, df, target, spilled, kind).await?;
    Ok(Some((report, scan, maps)))
}

/// One method to run (see [`run_method`]).
struct MethodStep<'a> {
    session: &'a Session,
    spec: &'a FeatureSpec,
    checked: &'a Checked,
    method: &'a Definition,
    pool: &'a str,
    stage: &'a Path,
    folder: &'a str,
}

/// Runs one method as a job in its pool, reading the `shared` subplans (each
/// with the plan of a scan of its result) where its plan computes them and
/// its columns of a `fused` pass (a scan of it, and how to read it) in
/// place of its aggregate,
/// checks its keys (the planned types, no NULL and unique, unless allowed)
/// and materialises it as `<stage>/<folder>/part-0.parquet`. Returns its
/// row count.
async fn run_method(
    step: MethodStep<'_>,
    shared: &[(&SharedSubplan, LogicalPlan)],
    fused: Option<&(LogicalPlan, MemberMap)>,
) -> Result<usize> {
    let MethodStep {
        session,
        spec,
        checked,
        method,
        pool,
        stage,
        folder,
    } = step;
    let client = session.with_pool(pool)?;
    let mut df = plan_method(&client, spec, method).await?;
    if let Some((scan, map)) = fused {
        let (state, plan) = df.into_parts();
        let (plan, _) = fuse::rewrite(plan, map, scan)?;
        df = DataFrame::new(state, plan);
    }
    if !shared.is_empty() {
        let (state, plan) = df.into_parts();
        let (plan, _) = share::rewrite(plan, shared)?;
        df = DataFrame::new(state, plan);
    }
    let out = client.execute(df, &method_job(&method.name)).await?;
    let schema = result_schema(&out);
    for (key, planned) in spec.key.iter().zip(&checked.key_types) {
        let ty = schema
            .field_with_name(key)
            .map_err(datafusion::error::DataFusionError::from)?
            .data_type();
        if ty != planned {
            return Err(FeatureError::Step {
                kind: "method",
                name: method.name.clone(),
                message: format!("key '{key}' is {ty} in its result, {planned} when planned"),
            });
        }
    }
    if !method.allow_null_keys
        && let Some((key, rows)) = null_key(&out, &spec.key)
    {
        return Err(FeatureError::Step {
            kind: "method",
            name: method.name.clone(),
            message: format!(
                "it returns a NULL key: '{key}' is NULL in {rows} row{}; a key identifies \
                 a row (set allow_null_keys = true to allow this)",
                if rows == 1 { "" } else { "s" }
            ),
        });
    }
    let duplicate = match method.allow_duplicate_keys {
        true => None,
        false => duplicate_key(&out, &spec.key)?,
    };
    if let Some(sample) = duplicate {
        return Err(FeatureError::Step {
            kind: "method",
            name: method.name.clone(),
            message: format!(
                "duplicate key: more than one row has {sample}; a method returns one row \
                 per key (set allow_duplicate_keys = true to allow this)"
            ),
        });
    }
    write_parquet_dir(&stage.join(folder), &out, OutputCompression::Lz4, None)?;
    Ok(out.rows())
}

/// The first key column holding NULLs in `out`, with how many rows it is
/// NULL in.
fn null_key(out: &QueryOutput, key: &[String]) -> Option<(String, usize)> {
    key.iter().find_map(|k| {
        let rows: usize = out
            .batches
            .iter()
            .filter_map(|b| b.column_by_name(k))
            .map(|c| c.logical_null_count())
            .sum();
        (rows > 0).then(|| (k.clone(), rows))
    })
}

fn result_schema(out: &QueryOutput) -> SchemaRef {
    out.batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::clone(&out.schema))
}

/// The first key that occurs twice in `out`, as `k1=v1, k2=v2`.
fn duplicate_key(out: &QueryOutput, key: &[String]) -> Result<Option<String>> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let schema = result_schema(out);
    let indices: Vec<usize> = key
        .iter()
        .map(|k| schema.index_of(k))
        .collect::<std::result::Result<_, _>>()
        .map_err(datafusion::error::DataFusionError::from)?;
    let fields = indices
        .iter()
        .map(|&i| SortField::new(schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields).map_err(datafusion::error::DataFusionError::from)?;
    let mut seen = HashSet::new();
    for batch in &out.batches {
        let columns: Vec<_> = indices
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let rows = converter
            .convert_columns(&columns)
            .map_err(datafusion::error::DataFusionError::from)?;
        for (r, row) in rows.iter().enumerate() {
            // NULL keys never match one another (see `null_key`).
            if columns.iter().any(|c| c.is_null(r)) {
                continue;
            }
            if !seen.insert(row.owned()) {
                let options = FormatOptions::default().with_null("NULL");
                let cells: Vec<String> = indices
                    .iter()
                    .zip(key)
                    .map(|(&i, name)| {
                        let value = ArrayFormatter::try_new(batch.column(i).as_ref(), &options)
                            .map(|f| f.value(r).to_string())
                            .unwrap_or_default();
                        format!("{name}={value}")
                    })
                    .collect();
                return Ok(Some(cells.join(", ")));
            }
        }
    }
    Ok(None)
}

/// Writes `out` as `<folder>/part-0.parquet`, through a fresh temporary
/// folder beside it (random name) renamed at the end, so a folder that
/// exists is complete. A folder already at `folder` is replaced only when
/// it is a real folder (the caller checked it is fairway's, see
/// [`cache::check_result_folder`]); a link or a file there is refused.
fn write_parquet_dir(
    folder: &Path,
    out: &QueryOutput,
    compression: OutputCompression,
    row_group_size: Option<usize>,
) -> Result<()> {
    let temp = files::temp_dir_beside(folder)?;
    write_parquet_new(
        &temp.path().join(RESULT_FILE),
        out,
        compression,
        row_group_size,
    )?;
    match std::fs::symlink_metadata(folder) {
        Err(_) => {}
        Ok(meta) if meta.is_dir() => {
            // `remove_dir_all` does not follow links inside the folder.
            std::fs::remove_dir_all(folder).map_err(|e| FeatureError::io(folder, e))?
        }
        Ok(_) => {
            return Err(FeatureError::refused(
                folder,
                "not a folder fairway wrote; fairway does not replace it",
            ));
        }
    }
    let path = temp.keep();
    std::fs::rename(&path, folder).map_err(|e| {
        let _ = std::fs::remove_dir_all(&path);
        FeatureError::io(folder, e)
    })
}

/// Writes `out` as a new parquet file at `path` (which must not exist).
fn write_parquet_new(
    path: &Path,
    out: &QueryOutput,
    compression: OutputCompression,
    row_group_size: Option<usize>,
) -> Result<()> {
    let file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| FeatureError::io(path, e))?;
    write_parquet(file, path, out, compression, row_group_size)
}

/// Writes `out` as parquet to `file` (`path` names it in errors).
fn write_parquet<W: std::io::Write + Send>(
    file: W,
    path: &Path,
    out: &QueryOutput,
    compression: OutputCompression,
    row_group_size: Option<usize>,
) -> Result<()> {
    let parquet_err = |e: parquet::errors::ParquetError| {
        FeatureError::io(path, std::io::Error::other(e.to_string()))
    };
    let mut props = WriterProperties::builder().set_compression(compression.parquet());
    if let Some(size) = row_group_size {
        props = props.set_max_row_group_row_count(Some(size));
    }
    let mut writer =
        ArrowWriter::try_new(file, result_schema(out), Some(props.build())).map_err(parquet_err)?;
    for batch in &out.batches {
        writer.write(batch).map_err(parquet_err)?;
    }
    writer.close().map_err(parquet_err)?;
    Ok(())
}

/// Merges the materialised results on the key (a balanced FULL OUTER tree,
/// or a left-deep chain when sequential) and writes the output under a
/// temporary name beside it, renamed over it at the end.
async fn merge_and_write(
    session: &Session,
    spec: &FeatureSpec,
    options: &BuildOptions,
    output: &Path,
    stage: &Path,
    folders: &[String],
) -> Result<(usize, Vec<String>)> {
    let client = session.client();
    if options.sequential {
        client
            .sql("SET fairway.optimizer.tournament_joins = false")
            .await?;
    }
    let mut frames = Vec::with_capacity(folders.len());
    for (i, folder) in folders.iter().enumerate() {
        let table = format!("__fairway_method_{i}");
        let path = stage.join(folder).join(RESULT_FILE);
        client
            .register_table(&table, &path.to_string_lossy())
            .await?;
        frames.push(client.context().table(table.as_str()).await?);
    }
    let keys: Vec<&str> = spec.key.iter().map(String::as_str).collect();
    let merged = if options.sequential {
        let mut frames = frames.into_iter();
        let mut acc = frames.next().expect("at least one method");
        for next in frames {
            acc = merge_frames(vec![acc, next], &keys, MergeHow::Full)?;
        }
        acc
    } else {
        merge_frames(frames, &keys, MergeHow::Full)?
    };
    let out = client.execute(merged, "feature merge").await?;
    let columns: Vec<String> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    // A fresh temporary beside the output, renamed over it when complete.
    files::write_atomically(output, |file| {
        write_parquet(
            file,
            output,
            &out,
            spec.output.compression,
            spec.output.row_group_size,
        )
    })?;
    Ok((out.rows(), columns))
}
