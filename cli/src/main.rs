//! The `fairway` command: SQL over parquet and CSV on the stage engine.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use fairway_engine::{
    ClusterTarget, EngineConfig, OutputFormat, QueryOutput, Session, parse_size, write_output,
};
use fairway_features::{BuildOptions, FeatureSpec};

#[derive(Parser)]
#[command(
    name = "fairway",
    version,
    about = "Run SQL over parquet and CSV as stages, shuffles and tasks on a fixed number of slots",
    long_about = "fairway plans SQL with Apache DataFusion, cuts every plan into a graph of \
stages at its exchanges (like Spark's stages), and runs each stage as one task per \
partition on a fixed number of slots, moving data between stages through an \
in-memory shuffle that spills to Arrow IPC files."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run SQL statements (-c, -f) or start an interactive shell.
    ///
    /// Files given with -f run first, in order, then statements given with
    /// -c. Without either, an interactive shell starts: statements end with
    /// ';' and may span lines; \q or Ctrl-D quits, Ctrl-C cancels the running
    /// statement. For every statement a line with its row count and elapsed
    /// time goes to stderr; results go to stdout.
    Sql {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        engine: EngineArgs,
        /// Output format of results.
        #[arg(long, default_value = "table", value_parser = parse_format)]
        format: OutputFormat,
    },
    /// Run SQL scripts concurrently, each as its own client.
    ///
    /// Statements of one script run in order; all scripts run at once and
    /// share the slots. `SET fairway.scheduler.pool = 'name'` in a script
    /// sends that script's later statements to pool `name` (like Spark's
    /// thread-local spark.scheduler.pool). For every statement a line
    /// `SCRIPT #N [pool P]: R rows in S s` goes to stdout; results are not
    /// printed unless --print is given.
    Run {
        /// SQL script files.
        #[arg(required = true, value_name = "SCRIPT")]
        scripts: Vec<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
        /// Also print each statement's result (as a table, after its line).
        #[arg(long)]
        print: bool,
    },
    /// Print the stage graph of each statement instead of running it.
    ///
    /// For every stage: its id, task count, the stages it reads, how its
    /// output is partitioned, and its operators (indented). DDL statements
    /// (CREATE EXTERNAL TABLE, SET) are executed so that later statements
    /// can use them.
    Explain {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Render an event log (--event-log) as one self-contained HTML page.
    ///
    /// The page shows a Gantt chart with one row per slot and one bar per
    /// interval in which a task held the slot (coloured by job, details on
    /// hover), stage submitted/completed markers, each pool's busy slots over
    /// time, a legend of jobs, and totals: wall time, busy slot-time, slots
    /// and utilisation. It needs no script and no network.
    Timeline {
        /// The JSON-lines event log written by --event-log.
        #[arg(value_name = "EVENTS")]
        events: PathBuf,
        /// The HTML file to write (replaced atomically).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Page title [default: "fairway timeline: EVENTS"].
        #[arg(long)]
        title: Option<String>,
    },
    /// Feature tables: build a wide table from many feature methods.
    Features {
        #[command(subcommand)]
        command: FeaturesCommand,
    },
    /// TPC-H data and queries.
    Tpch {
        #[command(subcommand)]
        command: TpchCommand,
    },
    /// Benchmarks of fairway against plain DataFusion.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum FeaturesCommand {
    /// Build the feature table of SPEC (a TOML file).
    ///
    /// Checks and plans every view and method first (sources, SQL, key
    /// columns, feature names): any error stops before work starts. Then
    /// computes each view read by two or more methods once, runs the methods
    /// concurrently as jobs in their pools (FAIR by default), materialises
    /// each result in the stage area beside the output
    /// (OUT.fairway-stage/), merges them on the key with a balanced FULL
    /// OUTER join and writes OUT as parquet: under a temporary name, renamed
    /// on success, so a failed build leaves the previous output untouched.
    /// A method whose definition and input files (paths, sizes, modification
    /// times) did not change since the last successful build reuses its
    /// result (--force rebuilds all). On a terminal a line per method shows
    /// its progress; at the end a table (method, pool, rows, columns,
    /// seconds, reused or built) goes to stdout.
    Build(FeaturesBuildArgs),
    /// Print what a build of SPEC would do, without reading data.
    ///
    /// The key, output and scheduler settings, the sources, the views (and
    /// which methods share each), every method with its pool and the tables
    /// it reads, and the merge tree: the balanced bracket of FULL OUTER
    /// joins over the methods in spec order.
    Explain(FeaturesExplainArgs),
}

#[derive(Args)]
struct FeaturesSpecArgs {
    /// The feature spec (TOML).
    #[arg(value_name = "SPEC")]
    spec: PathBuf,
    /// The output parquet file [default: the spec's [output] path].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Read source NAME from PATH instead of the spec's path (a parquet or
    /// CSV file, folder or glob); repeatable.
    #[arg(long = "source", value_name = "NAME=PATH")]
    sources: Vec<String>,
    /// Read every source from DIR: the last part of each source's path
    /// (e.g. orders.parquet) is looked up in DIR.
    #[arg(long = "sources-dir", value_name = "DIR")]
    sources_dir: Option<PathBuf>,
    /// Tasks that may run at once across all methods [default: the spec's,
    /// else the number of cores].
    #[arg(long)]
    slots: Option<usize>,
    /// Partitions of every shuffle and file scan [default: 2 x slots].
    #[arg(long)]
    partitions: Option<usize>,
    /// fifo or fair [default: the spec's, else fair].
    #[arg(long = "scheduler-mode", value_name = "MODE")]
    scheduler_mode: Option<String>,
    /// Spark fair-scheduler.xml defining the pools (fair mode).
    #[arg(long = "allocation-file", value_name = "FILE")]
    allocation_file: Option<PathBuf>,
    /// Pool of methods that name none [default: the spec's default_pool,
    /// else default].
    #[arg(long, value_name = "NAME")]
    pool: Option<String>,
    /// Any fairway.* or datafusion.* setting, KEY=VALUE; repeatable (after
    /// the spec's [build] conf).
    #[arg(long = "conf", value_name = "KEY=VALUE")]
    conf: Vec<String>,
}

#[derive(Args)]
struct FeaturesBuildArgs {
    #[command(flatten)]
    spec: FeaturesSpecArgs,
    /// Rebuild every method, reusing nothing.
    #[arg(long)]
    force: bool,
    /// Write every job, stage and task event as a JSON line to FILE.
    #[arg(long = "event-log", value_name = "FILE")]
    event_log: Option<PathBuf>,
    /// Run the methods one after another and merge them left-deep with the
    /// tournament rule off (the benchmark's baseline).
    #[arg(long)]
    sequential: bool,
    /// Views, methods and the merge run there; the stage area and the
    /// output stay on this machine.
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Args, Default)]
struct ClusterArgs {
    /// Run on Apache DataFusion Ballista instead of fairway's stage engine:
    /// df://HOST:PORT for a running ballista-scheduler, or standalone to
    /// start Ballista's scheduler and one executor (--slots slots) in this
    /// process. Tables, settings, tournament joins and SQL-standard USING
    /// apply there too; pools apply per statement (see --cluster-slots).
    /// Table files must be readable by the executors at the same paths.
    #[arg(long, value_name = "df://HOST:PORT|standalone")]
    cluster: Option<String>,
    /// With --cluster: statements that may run on the cluster at once,
    /// shared by the pools in --scheduler-mode fair (a pool gets at most
    /// max(minShare, its weighted share), all of them when alone)
    /// [default: --slots].
    #[arg(long = "cluster-slots", value_name = "N")]
    cluster_slots: Option<usize>,
}

impl ClusterArgs {
    /// The checked --cluster target and --cluster-slots.
    fn parse(&self) -> Result<(Option<ClusterTarget>, Option<usize>)> {
        let target = match &self.cluster {
            Some(cluster) => Some(
                cluster
                    .parse()
                    .map_err(|m| anyhow!("option --cluster: {m}"))?,
            ),
            None => None,
        };
        if self.cluster_slots == Some(0) {
            bail!("option --cluster-slots: must be at least 1");
        }
        Ok((target, self.cluster_slots))
    }
}

#[derive(Args)]
struct FeaturesExplainArgs {
    #[command(flatten)]
    spec: FeaturesSpecArgs,
}

#[derive(Args)]
struct BenchFeaturesArgs {
    /// Feature specs to measure [default: testdata/features/customer.toml
    /// and testdata/features/customer_shared.toml].
    #[arg(value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// TPC-H scale factor of the data.
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    /// Folder of the TPC-H data, generated there if missing [default:
    /// target/tpch/sf<SF>]; every source is read from it.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Runs of each mode; medians are reported.
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// Slots of every run.
    #[arg(long, default_value_t = 2)]
    slots: usize,
    /// Partitions of every run [default: 2 x slots].
    #[arg(long)]
    partitions: Option<usize>,
    /// Folder for outputs, stage areas and event logs [default:
    /// target/bench-features].
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// Any fairway.* or datafusion.* setting, KEY=VALUE; repeatable.
    #[arg(long = "conf", value_name = "KEY=VALUE")]
    conf: Vec<String>,
    /// Write the measurements as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// TPC-H on fairway and plain DataFusion, alternating, answers checked.
    ///
    /// Generates the data at --sf into --data (or reuses it), then runs the
    /// queries on each engine in turn in this process: each query
    /// --iterations times per engine (the power test), or with --streams S,
    /// S concurrent streams of the queries in the TPC-H specification's
    /// per-stream order (the throughput test). Both engines get the same
    /// resources: fairway runs on --slots slots, plain DataFusion on a tokio
    /// runtime of --slots worker threads, both with --partitions partitions.
    /// Every answer is compared with the other engine's and, at SF 1, with
    /// the published TPC-H answers; a difference is reported as a MISMATCH
    /// line and makes the command exit with status 1 (after the table, the
    /// JSON and the chart are written). Progress goes to stderr, the table
    /// with per-query median, min and max, the geometric means and their
    /// ratio to stdout.
    Tpch(BenchTpchArgs),
    /// A feature spec built sequentially, in parallel FIFO and in parallel
    /// FAIR with the tournament merge.
    ///
    /// Generates TPC-H at --sf into --data (or reuses it) and reads every
    /// source of each SPEC from there. Runs each mode --iterations times,
    /// alternating the order of the modes, all on --slots slots and without
    /// reuse (--force): `sequential` (one method after another, then a
    /// left-deep merge with the tournament rule off), `fifo` (all methods at
    /// once, FIFO scheduler, balanced merge) and `fair` (all at once, FAIR
    /// pool, balanced merge). Every output is compared with the sequential
    /// one. Prints per mode the median seconds, the ratio to sequential and
    /// the slot utilisation (busy slot-time / (slots x wall time), from the
    /// event log of each run).
    Features(BenchFeaturesArgs),
}

#[derive(Args)]
struct BenchTpchArgs {
    /// Scale factor (1 = about 1 GB of raw data, 6 million lineitems).
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    /// Folder of the data, generated there if missing [default:
    /// target/tpch/sf<SF>].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Queries to run, e.g. 1,6,21 [default: all 22].
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    queries: Vec<usize>,
    /// Runs of each query per engine (power test) or of the whole
    /// throughput test per engine; medians are reported.
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// fairway's slots and DataFusion's worker threads [default: number of
    /// cores].
    #[arg(long)]
    slots: Option<usize>,
    /// Partitions of both engines [default: 2 x slots].
    #[arg(long)]
    partitions: Option<usize>,
    /// Engines to compare, in the order of the first run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fairway,datafusion",
        value_name = "E,..."
    )]
    engines: Vec<String>,
    /// Throughput test: S concurrent query streams (fairway: one client
    /// per stream on one session; DataFusion: one task per stream on one
    /// context).
    #[arg(long, value_name = "S")]
    streams: Option<usize>,
    /// How fairway shares slots between the streams: fifo or fair (each
    /// stream its own pool) [default: fifo].
    #[arg(long = "scheduler-mode", value_name = "MODE")]
    scheduler_mode: Option<String>,
    /// fairway's shuffle memory, e.g. 512MiB; 0 spills everything
    /// [default: 1GiB].
    #[arg(long = "shuffle-memory", value_name = "SIZE")]
    shuffle_memory: Option<String>,
    /// Any fairway.* or datafusion.* setting of the fairway session,
    /// KEY=VALUE; repeatable.
    #[arg(long = "conf", value_name = "KEY=VALUE")]
    conf: Vec<String>,
    /// Write every measurement, with the machine, versions and settings,
    /// as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw per-query times per engine as an SVG chart to FILE.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TpchCommand {
    /// Generate the 8 TPC-H tables as parquet files DIR/<table>.parquet.
    ///
    /// Tables already generated at the same scale factor are kept.
    Gen {
        /// Scale factor (1 = about 1 GB of raw data, 6 million lineitems).
        #[arg(long, default_value_t = 1.0)]
        sf: f64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Default)]
struct InputArgs {
    /// A SQL statement (or several separated by ';'); repeatable.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// A file of SQL statements separated by ';' (`--` comments allowed);
    /// repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Args, Default)]
struct EngineArgs {
    /// Register a table: NAME=PATH, where PATH is a parquet or CSV file, a
    /// folder of them, or a glob. Repeatable.
    #[arg(long = "table", value_name = "NAME=PATH")]
    tables: Vec<String>,
    /// Register every parquet/CSV file or folder in DIR as a table named
    /// after its file stem. Repeatable.
    #[arg(long = "tables", value_name = "DIR")]
    table_dirs: Vec<String>,
    /// Tasks that may run at once across all jobs [default: number of cores].
    #[arg(long)]
    slots: Option<usize>,
    /// Partitions of every shuffle and file scan [default: 2 x slots].
    #[arg(long)]
    partitions: Option<usize>,
    /// Bytes of shuffle output kept in memory before map outputs spill to
    /// Arrow IPC files, e.g. 512MiB, 2GiB, 0 [default: 1GiB].
    #[arg(long = "shuffle-memory", value_name = "SIZE")]
    shuffle_memory: Option<String>,
    /// Bound on the memory of all running queries, e.g. 512MiB: the
    /// shuffle keeps at most a quarter of it in memory, DataFusion's sorts,
    /// aggregations and joins share the rest and spill to files beyond it
    /// [default: unbounded].
    #[arg(long = "memory-limit", value_name = "SIZE")]
    memory_limit: Option<String>,
    /// Print the peak resident memory of the process (VmHWM) on stderr
    /// at the end.
    #[arg(long)]
    stats: bool,
    /// How free slots are shared between jobs: fifo (earlier job first) or
    /// fair (weighted pools, Spark's FAIR scheduler) [default: fifo].
    #[arg(long = "scheduler-mode", value_name = "MODE")]
    scheduler_mode: Option<String>,
    /// Spark fair-scheduler.xml defining pools (schedulingMode, weight,
    /// minShare); used with --scheduler-mode fair.
    #[arg(long = "allocation-file", value_name = "FILE")]
    allocation_file: Option<PathBuf>,
    /// Pool of statements that do not SET fairway.scheduler.pool
    /// [default: default].
    #[arg(long, value_name = "NAME")]
    pool: Option<String>,
    /// Write every job, stage and task event as a JSON line to FILE.
    #[arg(long = "event-log", value_name = "FILE")]
    event_log: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Any fairway.* or datafusion.* setting, KEY=VALUE; repeatable. Known
    /// fairway keys: fairway.scheduler.slots, fairway.scheduler.mode,
    /// fairway.scheduler.preemption (false: never take a slot from a running
    /// task, as Spark),
    /// fairway.scheduler.pool, fairway.scheduler.allocation.file,
    /// fairway.scheduler.allocation.strict (false: warn and use Spark's
    /// defaults for bad values), fairway.shuffle.partitions,
    /// fairway.shuffle.memory, fairway.shuffle.dir, fairway.shuffle.compression
    /// (lz4, zstd, none), fairway.event_log, fairway.memory.limit,
    /// fairway.task.max_failures (attempts per task, default 4),
    /// fairway.job.group (SET only), fairway.cluster, fairway.cluster.slots;
    /// test-only: fairway.test.fail_tasks,
    /// fairway.test.fail_probability, fairway.test.fail_seed.
    #[arg(long = "conf", value_name = "KEY=VALUE")]
    conf: Vec<String>,
}

/// The settings that `sql`/`run`/`explain` and `bench tpch` share: --conf
/// pairs first, then the dedicated options, which win.
fn base_config(
    conf: &[String],
    slots: Option<usize>,
    partitions: Option<usize>,
    shuffle_memory: Option<&str>,
    scheduler_mode: Option<&str>,
) -> Result<EngineConfig> {
    let mut config = EngineConfig::default();
    for pair in conf {
        config.set_pair(pair)?;
    }
    if let Some(slots) = slots {
        config.set("fairway.scheduler.slots", &slots.to_string())?;
    }
    if let Some(partitions) = partitions {
        config.set("fairway.shuffle.partitions", &partitions.to_string())?;
    }
    if let Some(size) = shuffle_memory {
        config.shuffle_memory =
            parse_size(size).map_err(|m| anyhow!("option --shuffle-memory: {m}"))?;
    }
    if let Some(mode) = scheduler_mode {
        config
            .set("fairway.scheduler.mode", mode)
            .map_err(|e| anyhow!("option --scheduler-mode: {e}"))?;
    }
    Ok(config)
}

fn parse_format(s: &str) -> std::result::Result<OutputFormat, String> {
    s.parse()
}

impl EngineArgs {
    fn config(&self) -> Result<EngineConfig> {
        let mut config = base_config(
            &self.conf,
            self.slots,
            self.partitions,
            self.shuffle_memory.as_deref(),
            self.scheduler_mode.as_deref(),
        )?;
        if let Some(size) = &self.memory_limit {
            config
                .set("fairway.memory.limit", size)
                .map_err(|e| anyhow!("option --memory-limit: {e}"))?;
        }
        if let Some(file) = &self.allocation_file {
            config.allocation_file = Some(file.clone());
        }
        if let Some(pool) = &self.pool {
            config
                .set("fairway.scheduler.pool", pool)
                .map_err(|e| anyhow!("option --pool: {e}"))?;
        }
        if let Some(log) = &self.event_log {
            config.event_log = Some(log.clone());
        }
        (config.cluster, config.cluster_slots) = self.cluster.parse()?;
        // Live stage progress, only for a person watching a terminal.
        config.progress = std::io::stderr().is_terminal();
        Ok(config)
    }

    async fn session(&self) -> Result<Session> {
        let session = Session::start(self.config()?).await?;
        for warning in session.warnings() {
            eprintln!("warning: {warning}");
        }
        for dir in &self.table_dirs {
            session.register_tables_in(dir).await?;
        }
        for spec in &self.tables {
            let (name, path) = spec
                .split_once('=')
                .ok_or_else(|| anyhow!("option --table: expected NAME=PATH, got '{spec}'"))?;
            session.register_table(name.trim(), path.trim()).await?;
        }
        Ok(session)
    }
}

impl InputArgs {
    /// The SQL texts to run, files first; each may hold several statements.
    fn scripts(&self) -> Result<Vec<(String, String)>> {
        let mut scripts = Vec::new();
        for file in &self.files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read SQL file {}", file.display()))?;
            scripts.push((file.display().to_string(), text));
        }
        for (i, command) in self.commands.iter().enumerate() {
            scripts.push((format!("-c #{}", i + 1), command.clone()));
        }
        Ok(scripts)
    }

    fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.files.is_empty()
    }
}

/// Stack of the driver runtime's threads.
const DRIVER_STACK: usize = 64 << 20;

fn main() {
    // A bug must still end with one clear line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_string());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("fairway: internal error: {message}{location}");
    }));
    let cli = Cli::parse();
    let stats = match &cli.command {
        Command::Sql { engine, .. }
        | Command::Run { engine, .. }
        | Command::Explain { engine, .. }
            if engine.stats =>
        {
            Some(engine.memory_limit.clone())
        }
        _ => None,
    };
    // The driver only waits for jobs; a standalone Ballista cluster runs
    // its scheduler and executor on it, so it gets the slots' threads.
    let cores = || std::thread::available_parallelism().map_or(2, |n| n.get());
    let driver_threads = match &cli.command {
        Command::Sql { engine, .. } | Command::Run { engine, .. }
            if engine.cluster.cluster.is_some() =>
        {
            engine.slots.unwrap_or_else(cores).max(2)
        }
        Command::Features {
            command: FeaturesCommand::Build(args),
        } if args.cluster.cluster.is_some() => args.spec.slots.unwrap_or_else(cores).max(2),
        _ => 1,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // At least two, so a worker is always free to see a signal.
        .worker_threads(driver_threads.max(2))
        // Statements are planned on these threads (`fairway run`), and
        // DataFusion plans an expression nested up to the depth limit
        // recursively: give them the main thread's room and more.
        .thread_stack_size(DRIVER_STACK)
        .thread_name("fairway-driver")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    // SIGTERM and SIGHUP end the command as Ctrl-C ends a statement: the
    // running work is dropped, which cancels its jobs and removes its
    // shuffle folders and temporary files, then the process exits with
    // 128 + the signal's number.
    let result = match runtime.block_on(async {
        tokio::select! {
            result = run(cli) => Ok(result),
            signal = termination() => Err(signal),
        }
    }) {
        Ok(result) => result.and_then(|()| event_logs_complete()),
        Err((number, name)) => {
            // Let aborted tasks finish dropping; a shell's pending line
            // read is not waited for.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            eprintln!("fairway: {name}: running jobs cancelled, temporary files removed");
            std::process::exit(128 + number);
        }
    };
    if let Some(limit) = stats {
        eprintln!("{}", peak_memory_line(limit.as_deref()));
    }
    if let Err(e) = result {
        eprintln!("error: {}", describe(&e));
        std::process::exit(1);
    }
}

/// Waits for SIGTERM or SIGHUP (installed on the first poll) and returns
/// its number and name.
async fn termination() -> (i32, &'static str) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            return tokio::select! {
                _ = term.recv() => (15, "SIGTERM"),
                _ = hup.recv() => (1, "SIGHUP"),
            };
        }
    }
    std::future::pending().await
}

/// A command (`sql`, `run`, `features build`, ...) whose event log could not
/// be written completely fails at its end, after its results: the write
/// already warned once, naming the file and the error.
fn event_logs_complete() -> Result<()> {
    match fairway_observe::EventLog::failures().first() {
        Some(failure) => bail!("{failure}: the event log is incomplete"),
        None => Ok(()),
    }
}

/// `peak RSS: 301.2 MiB (memory limit 512MiB)`, from the kernel's
/// high-water mark of this process's resident memory (`VmHWM`).
fn peak_memory_line(limit: Option<&str>) -> String {
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| fairway_engine::format_size(kib * 1024))
        .unwrap_or_else(|| "unknown (no /proc/self/status)".to_string());
    match limit {
        Some(limit) => format!("peak RSS: {peak} (memory limit {limit})"),
        None => format!("peak RSS: {peak} (no memory limit)"),
    }
}

/// One line: the error and its causes, without repeating a cause that the
/// message already includes.
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sql {
            input,
            engine,
            format,
        } => {
            let session = engine.session().await?;
            let result = if input.is_empty() {
                repl(&session, format).await
            } else {
                let mut result = Ok(());
                for (source, text) in input.scripts()? {
                    result = run_script(&session, &source, &text, format).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            };
            session.flush_event_log();
            result
        }
        Command::Run {
            scripts,
            engine,
            print,
        } => run_scripts(&engine.session().await?, &scripts, print).await,
        Command::Explain { input, engine } => {
            let session = engine.session().await?;
            if input.is_empty() {
                bail!("explain needs a statement: -c SQL or -f FILE");
            }
            let mut out = std::io::stdout().lock();
            for (source, text) in input.scripts()? {
                let statements = session
                    .parse_statements(&text)
                    .with_context(|| format!("in {source}"))?;
                for statement in statements {
                    let sql = statement.to_string();
                    if is_query(&statement) {
                        let graph = session.explain_stages(&sql).await?;
                        writeln!(out, "{sql}\n\n{graph}")?;
                    } else {
                        session.plan_statement(statement).await?;
                    }
                }
            }
            Ok(())
        }
        Command::Timeline {
            events,
            output,
            title,
        } => {
            let title = title.unwrap_or_else(|| format!("fairway timeline: {}", events.display()));
            let totals = fairway_observe::timeline::write_page(&events, &output, &title)?;
            eprintln!("wrote {}: {totals}", output.display());
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Tpch(args),
        } => bench_tpch(args).await,
        Command::Bench {
            command: BenchCommand::Features(args),
        } => bench_features(args).await,
        Command::Features {
            command: FeaturesCommand::Build(args),
        } => features_build(args).await,
        Command::Features {
            command: FeaturesCommand::Explain(args),
        } => {
            let (spec, options) = args.spec.load()?;
            print!("{}", fairway_features::explain_features(&spec, &options)?);
            Ok(())
        }
        Command::Tpch {
            command: TpchCommand::Gen { sf, out },
        } => {
            let start = Instant::now();
            let summary = fairway_tpch::generate_parquet(sf, &out)?;
            for (table, rows) in &summary.tables {
                eprintln!("{table}: {rows} rows");
            }
            eprintln!(
                "TPC-H SF {sf} {} in {} ({:.1} s)",
                if summary.reused {
                    "already present"
                } else {
                    "written"
                },
                out.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// `NAME=VALUE` of option `option` as a trimmed pair.
fn split_pair(option: &str, form: &str, pair: &str) -> Result<(String, String)> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| anyhow!("option {option}: expected {form}, got '{pair}'"))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

impl FeaturesSpecArgs {
    /// The spec with --source/--sources-dir applied, and the build options
    /// of the shared flags.
    fn load(&self) -> Result<(FeatureSpec, BuildOptions)> {
        let mut spec = FeatureSpec::load(&self.spec)?;
        if let Some(dir) = &self.sources_dir {
            spec.use_sources_dir(dir);
        }
        for pair in &self.sources {
            let (name, path) = split_pair("--source", "NAME=PATH", pair)?;
            spec.set_source(&name, &path)?;
        }
        let conf = self
            .conf
            .iter()
            .map(|pair| split_pair("--conf", "KEY=VALUE", pair))
            .collect::<Result<_>>()?;
        let scheduler_mode = match &self.scheduler_mode {
            Some(mode) => Some(
                mode.parse()
                    .map_err(|e| anyhow!("option --scheduler-mode: {e} (expected fifo or fair)"))?,
            ),
            None => None,
        };
        let options = BuildOptions {
            out: self.out.clone(),
            slots: self.slots,
            partitions: self.partitions,
            scheduler_mode,
            allocation_file: self.allocation_file.clone(),
            default_pool: self.pool.clone(),
            conf,
            ..BuildOptions::default()
        };
        Ok((spec, options))
    }
}

/// `fairway features build`.
async fn features_build(args: FeaturesBuildArgs) -> Result<()> {
    let (spec, mut options) = args.spec.load()?;
    options.force = args.force;
    options.event_log = args.event_log.clone();
    options.sequential = args.sequential;
    options.progress = std::io::stderr().is_terminal();
    (options.cluster, options.cluster_slots) = args.cluster.parse()?;
    let summary = fairway_features::build_features(&spec, &options).await?;
    println!("{summary}");
    Ok(())
}

/// `fairway bench features`.
async fn bench_features(args: BenchFeaturesArgs) -> Result<()> {
    use fairway_benches::harness::features::{FeatureBenchOptions, run_feature_bench};
    let specs = if args.specs.is_empty() {
        vec![
            PathBuf::from("testdata/features/customer.toml"),
            PathBuf::from("testdata/features/customer_shared.toml"),
        ]
    } else {
        args.specs.clone()
    };
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| fairway_benches::harness::TpchBenchOptions::default_data_dir(args.sf));
    let start = Instant::now();
    let (sf, dir) = (args.sf, data.clone());
    let summary =
        tokio::task::spawn_blocking(move || fairway_benches::harness::prepare_data(sf, &dir))
            .await
            .map_err(|e| anyhow!("data generation stopped: {e}"))??;
    eprintln!(
        "TPC-H SF {} {} {} ({:.1} s)",
        args.sf,
        if summary.reused {
            "reused from"
        } else {
            "generated in"
        },
        data.display(),
        start.elapsed().as_secs_f64()
    );
    let conf = args
        .conf
        .iter()
        .map(|pair| split_pair("--conf", "KEY=VALUE", pair))
        .collect::<Result<_>>()?;
    let options = FeatureBenchOptions {
        specs,
        data,
        iterations: args.iterations,
        slots: args.slots,
        partitions: args.partitions,
        work: args
            .work
            .clone()
            .unwrap_or_else(|| PathBuf::from("target/bench-features")),
        conf,
    };
    let report = run_feature_bench(&options, &|line| eprintln!("{line}")).await?;
    print!("{}", report.table());
    std::io::stdout().flush()?;
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json_pretty())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if !report.mismatches.is_empty() {
        for problem in &report.mismatches {
            eprintln!("MISMATCH: {problem}");
        }
        bail!(
            "{} outputs differed from the sequential build",
            report.mismatches.len()
        );
    }
    Ok(())
}

/// `fairway bench tpch`.
async fn bench_tpch(args: BenchTpchArgs) -> Result<()> {
    use fairway_benches::harness::{self as bench, BenchEngine, TpchBenchOptions};
    let config = base_config(
        &args.conf,
        args.slots,
        args.partitions,
        args.shuffle_memory.as_deref(),
        args.scheduler_mode.as_deref(),
    )?;
    let engines = args
        .engines
        .iter()
        .map(|e| e.parse::<BenchEngine>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|m| anyhow!("option --engines: {m}"))?;
    let mut unique = engines.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != engines.len() {
        bail!("option --engines: an engine is named twice");
    }
    let options = TpchBenchOptions {
        scale_factor: args.sf,
        data: args
            .data
            .clone()
            .unwrap_or_else(|| TpchBenchOptions::default_data_dir(args.sf)),
        queries: if args.queries.is_empty() {
            (1..=22).collect()
        } else {
            args.queries.clone()
        },
        iterations: args.iterations,
        engines,
        streams: args.streams,
        fairway: config,
    };
    options.validate()?;

    let start = Instant::now();
    let (sf, dir) = (options.scale_factor, options.data.clone());
    let summary = tokio::task::spawn_blocking(move || bench::prepare_data(sf, &dir))
        .await
        .map_err(|e| anyhow!("data generation stopped: {e}"))??;
    eprintln!(
        "TPC-H SF {} {} {} ({:.1} s)",
        options.scale_factor,
        if summary.reused {
            "reused from"
        } else {
            "generated in"
        },
        options.data.display(),
        start.elapsed().as_secs_f64()
    );

    let report = bench::run_tpch(&options, &|line| eprintln!("{line}")).await?;
    print!("{}", report.table());
    std::io::stdout().flush()?;
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json_pretty())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, report.to_svg())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if !report.verified() {
        for problem in &report.mismatches {
            eprintln!("MISMATCH: {problem}");
        }
        bail!(
            "{} of {} answers did not match",
            report.mismatches.len(),
            report.answers_checked
        );
    }
    Ok(())
}

fn is_query(statement: &fairway_engine::datafusion::sql::parser::Statement) -> bool {
    use fairway_engine::datafusion::sql::parser::Statement as S;
    use fairway_engine::datafusion::sql::sqlparser::ast::Statement as Ast;
    match statement {
        S::Statement(s) => matches!(
            s.as_ref(),
            Ast::Query(_) | Ast::Insert(_) | Ast::Explain { .. }
        ),
        S::CopyTo(_) | S::Explain(_) => true,
        _ => false,
    }
}

/// `fairway run`: every script on its own client, all at once.
async fn run_scripts(session: &Session, scripts: &[PathBuf], print: bool) -> Result<()> {
    let mut texts = Vec::new();
    for path in scripts {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read SQL file {}", path.display()))?;
        let statements = session
            .parse_statements(&text)
            .with_context(|| format!("in {}", path.display()))?;
        texts.push((path.display().to_string(), statements));
    }
    let start = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for (name, statements) in texts {
        let client = session.client();
        clients.spawn(async move {
            for (i, statement) in statements.into_iter().enumerate() {
                let pool = client.pool();
                let output = run_statement(&client, statement)
                    .await
                    .with_context(|| format!("{name}, statement {}", i + 1))?;
                let mut out = std::io::stdout().lock();
                let rows = output.rows();
                if output.schema.fields().is_empty() {
                    writeln!(
                        out,
                        "{name} #{} [pool {pool}]: done in {:.3} s",
                        i + 1,
                        output.elapsed.as_secs_f64()
                    )?;
                } else {
                    writeln!(
                        out,
                        "{name} #{} [pool {pool}]: {rows} row{} in {:.3} s",
                        i + 1,
                        if rows == 1 { "" } else { "s" },
                        output.elapsed.as_secs_f64()
                    )?;
                }
                if print {
                    write_output(OutputFormat::Table, &output, &mut out)?;
                }
                out.flush()?;
            }
            anyhow::Ok(())
        });
    }
    let mut failed = 0;
    while let Some(done) = clients.join_next().await {
        let result = done.map_err(|e| anyhow!("a script stopped unexpectedly: {e}"))?;
        if let Err(e) = result {
            eprintln!("error: {}", describe(&e));
            failed += 1;
        }
    }
    session.flush_event_log();
    eprintln!(
        "{} script{} in {:.3} s",
        scripts.len(),
        if scripts.len() == 1 { "" } else { "s" },
        start.elapsed().as_secs_f64()
    );
    if failed > 0 {
        bail!("{failed} of {} scripts failed", scripts.len());
    }
    Ok(())
}

/// Runs every statement of one script in order; stops at the first error.
async fn run_script(
    session: &Session,
    source: &str,
    text: &str,
    format: OutputFormat,
) -> Result<()> {
    let statements = session
        .parse_statements(text)
        .with_context(|| format!("in {source}"))?;
    for (i, statement) in statements.into_iter().enumerate() {
        let sql = statement.to_string();
        let output = run_statement(session, statement)
            .await
            .with_context(|| format!("{source}, statement {}", i + 1))?;
        print_output(&output, format)?;
        eprintln!("{}", summary_line(&sql, &output));
    }
    Ok(())
}

/// Plans and runs one statement; Ctrl-C cancels it.
async fn run_statement(
    session: &Session,
    statement: fairway_engine::datafusion::sql::parser::Statement,
) -> Result<QueryOutput> {
    let description = statement.to_string();
    let work = async {
        let df = session.plan_statement(statement).await?;
        session.execute(df, &description).await
    };
    tokio::select! {
        result = work => Ok(result?),
        _ = tokio::signal::ctrl_c() => Err(anyhow!("statement cancelled by Ctrl-C")),
    }
}

fn print_output(output: &QueryOutput, format: OutputFormat) -> Result<()> {
    let mut out = std::io::stdout().lock();
    write_output(format, output, &mut out)?;
    out.flush()?;
    Ok(())
}

fn summary_line(sql: &str, output: &QueryOutput) -> String {
    let mut short: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if short.chars().count() > 60 {
        short = short.chars().take(57).collect::<String>() + "...";
    }
    let rows = output.rows();
    format!(
        "-- {short}: {rows} row{} in {:.3} s{}",
        if rows == 1 { "" } else { "s" },
        output.elapsed.as_secs_f64(),
        if output.stages > 0 {
            format!(
                " ({} stage{})",
                output.stages,
                if output.stages == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    )
}

/// The interactive shell: statements end with ';' and may span lines.
async fn repl(session: &Session, format: OutputFormat) -> Result<()> {
    use rustyline::error::ReadlineError;
    // Install the SIGINT handler now (polling `ctrl_c` once does): from
    // here on Ctrl-C never kills the shell, it cancels the running
    // statement, if any.
    let _ = futures::FutureExt::now_or_never(tokio::signal::ctrl_c());
    let mut editor = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".fairway_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    if std::io::stdin().is_terminal() {
        eprintln!(
            "fairway {} ({} slots, {} partitions). End statements with ';', \\q to quit.",
            env!("CARGO_PKG_VERSION"),
            session.config().slots,
            session.config().partitions
        );
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "fairway> "
        } else {
            "     ..> "
        };
        // Read the line on a thread of its own, so a signal that arrives
        // while the shell waits for input is still acted on at once.
        let (back, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline(prompt);
            (editor, line)
        })
        .await?;
        editor = back;
        match line {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && matches!(trimmed, "\\q" | "quit" | "exit") {
                    break;
                }
                if trimmed.is_empty() && buffer.is_empty() {
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if !trimmed.ends_with(';') {
                    continue;
                }
                let text = std::mem::take(&mut buffer);
                let _ = editor.add_history_entry(text.trim_end());
                if let Err(e) = run_script(session, "input", &text, format).await {
                    eprintln!("error: {}", describe(&e));
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}
