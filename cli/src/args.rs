//! The command line as clap types: the subcommands, their options, and the
//! option groups several subcommands share (declared once, flattened in).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use fairway_engine::{OutputFormat, SchedulingMode, parse_size};

#[derive(Parser)]
#[command(
    name = "fairway",
    version,
    after_help = "Example:\n  fairway sql --table t=data.parquet -c 'select count(*) from t'",
    about = "Run SQL over parquet and CSV as stages, shuffles and tasks on a fixed number of slots",
    long_about = "fairway plans SQL with Apache DataFusion, cuts every plan into a graph of \
stages at its exchanges (like Spark's stages), and runs each stage as one task per \
partition on a fixed number of slots, moving data between stages through an \
in-memory shuffle that spills to Arrow IPC files."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run SQL statements (-c, -f) or start an interactive shell.
    ///
    /// Files given with -f run first, in order, then statements given with
    /// -c; the first error stops them (it names the statement and its line).
    /// Without either, an interactive shell starts (after ~/.fairwayrc or
    /// --init): statements end with ';' and may span lines; \? lists the
    /// meta commands (\d, \d NAME, \dp, \timing, \format, \maxrows, \x,
    /// \i FILE, \q); Tab completes keywords, tables, columns, settings and
    /// paths; Ctrl-C cancels the running statement or clears the line; Ctrl-D
    /// quits; every statement is appended to the history file as it is
    /// entered. For every statement a line with its row count and elapsed
    /// time goes to stderr; results go to stdout (on a terminal at most
    /// --maxrows rows of a table, cut to its width; NULL shown as NULL).
    #[command(
        after_help = "Examples:\n  fairway sql --tables testdata/tpch-sf0.01 -c 'select count(*) from orders'\n  fairway sql --table t=data.parquet            # the shell, with table t"
    )]
    Sql(SqlArgs),
    /// Run SQL scripts concurrently, each as its own client.
    ///
    /// Statements of one script run in order; all scripts run at once and
    /// share the slots. `SET fairway.scheduler.pool = 'name'` in a script
    /// sends that script's later statements to pool `name` (like Spark's
    /// thread-local spark.scheduler.pool). For every statement but SET a
    /// line `SCRIPT #N [pool P] SQL: R rows in S s` (SQL: its first 60
    /// characters) goes to stdout; results are not printed unless --print
    /// is given.
    #[command(
        after_help = "Example:\n  fairway run --scheduler-mode fair --tables testdata/tpch-sf0.01 a.sql b.sql"
    )]
    Run(RunArgs),
    /// Print the stage graph of each statement instead of running it.
    ///
    /// For every stage: its id, task count, the stages it reads, how its
    /// output is partitioned, and its operators (indented). DDL statements
    /// (CREATE EXTERNAL TABLE, SET) are executed so that later statements
    /// can use them.
    #[command(
        after_help = "Example:\n  fairway explain --tables testdata/tpch-sf0.01 -f testdata/tpch/queries/q05.sql"
    )]
    Explain(ExplainArgs),
    /// Render an event log (--event-log) as one self-contained HTML page.
    ///
    /// The page shows a Gantt chart with one row per slot and one bar per
    /// interval in which a task held the slot (coloured by job, details on
    /// hover), stage submitted/completed markers, each pool's busy slots over
    /// time, a legend of jobs, and totals: wall time, busy slot-time, slots
    /// and utilisation. It needs no script and no network.
    #[command(after_help = "Example:\n  fairway timeline events.jsonl -o timeline.html")]
    Timeline(TimelineArgs),
    /// Feature tables: build a wide table from many feature methods.
    #[command(
        after_help = "Example:\n  fairway features build testdata/features/customer.toml --out target/features/customer.parquet"
    )]
    Features {
        #[command(subcommand)]
        command: FeaturesCommand,
    },
    /// TPC-H data and queries.
    #[command(after_help = "Example:\n  fairway tpch gen --sf 1 --out ~/.cache/fairway/tpch/sf1")]
    Tpch {
        #[command(subcommand)]
        command: TpchCommand,
    },
    /// Serve Spark Connect: PySpark programs run unchanged on fairway.
    ///
    /// Stock PySpark clients (`pip install pyspark-client`) connect with
    /// `SparkSession.builder.remote("sc://127.0.0.1:15002").getOrCreate()`.
    /// All client sessions share this server's tables and slots; each has
    /// its own settings, temporary views and pool. A session's pool is
    /// `spark.conf.set("spark.scheduler.pool", NAME)`; a job tag
    /// `spark.addTag("spark.scheduler.pool=NAME")` chooses the pool of the
    /// tagging thread's jobs and wins over the session's. Every action runs
    /// as fairway jobs, described in the event log as `connect op=<id>
    /// tags=[...] <what>`. One line per request goes to stderr (info level;
    /// FAIRWAY_LOG=warn|info|debug changes it). The README's PySpark section
    /// lists what is supported.
    #[command(
        after_help = "Example:\n  fairway connect --tables testdata/tpch-sf0.01 --port 15002"
    )]
    Connect(ConnectArgs),
    /// Benchmarks of fairway against plain DataFusion.
    #[command(after_help = "Example:\n  fairway bench tpch --sf 1 --slots 2")]
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format of results.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Format::Table)]
    pub format: Format,
    /// Rows of a result shown in table format on a terminal, 0 for all
    /// (piped output always has every row); \maxrows changes it in the shell.
    #[arg(long, value_name = "N", default_value_t = 40)]
    pub maxrows: usize,
    /// The shell's history file, appended after every statement [default:
    /// $FAIRWAY_HISTORY, else ~/.fairway_history; FAIRWAY_HISTORY= keeps
    /// none].
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Statements to run first, before -f/-c or the shell's first prompt
    /// [default: ~/.fairwayrc, for the shell only].
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// Address to listen on; the default takes local connections only.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one, printed when ready).
    #[arg(long, default_value_t = 15002)]
    pub port: u16,
    /// Require Spark Connect's bearer token: clients connect with
    /// sc://localhost:PORT/;token=TOKEN (PySpark sends a token over plain
    /// gRPC only to the host name localhost, otherwise it asks for TLS,
    /// which fairway does not serve: put a TLS proxy in front for remote
    /// clients) [default: none].
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FAIRWAY_CONNECT_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Args)]
pub struct RunArgs {
    /// SQL script files.
    #[arg(required = true, value_name = "SCRIPT")]
    pub scripts: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also print each statement's result (as a table, after its line).
    #[arg(long)]
    pub print: bool,
}

#[derive(Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
pub struct TimelineArgs {
    /// The JSON-lines event log written by --event-log.
    #[arg(value_name = "EVENTS")]
    pub events: PathBuf,
    /// The HTML file to write (replaced atomically).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Page title [default: "fairway timeline: EVENTS"].
    #[arg(long)]
    pub title: Option<String>,
}

#[derive(Subcommand)]
pub enum FeaturesCommand {
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
    #[command(
        after_help = "Example:\n  fairway features build testdata/features/customer.toml --out target/features/customer.parquet"
    )]
    Build(FeaturesBuildArgs),
    /// Print what a build of SPEC would do, without reading data.
    ///
    /// The key, output and scheduler settings, the sources, the views (and
    /// which methods share each), every method with its pool and the tables
    /// it reads, and the merge tree: the balanced bracket of FULL OUTER
    /// joins over the methods in spec order.
    #[command(after_help = "Example:\n  fairway features explain testdata/features/customer.toml")]
    Explain(FeaturesExplainArgs),
}

#[derive(Args)]
pub struct FeaturesSpecArgs {
    /// The feature spec (TOML).
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// The output parquet file [default: the spec's [output] path]; an
    /// object store URL (s3://bucket/features.parquet) is built in a local
    /// cache folder and uploaded as one object at the end, its stage area
    /// kept beside it on the store (URL.fairway-stage/) for rebuilds.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Where an object store output's local copy and cache live, one
    /// folder per URL [default: $XDG_CACHE_HOME/fairway/features-remote].
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Read source NAME from PATH instead of the spec's path (a parquet or
    /// CSV file, folder or glob); repeatable.
    #[arg(long = "source", value_name = "NAME=PATH", value_parser = name_path)]
    pub sources: Vec<(String, String)>,
    /// Read every source from DIR: the last part of each source's path
    /// (e.g. orders.parquet) is looked up in DIR.
    #[arg(long = "sources-dir", value_name = "DIR")]
    pub sources_dir: Option<PathBuf>,
    #[command(flatten)]
    pub slots: SlotArgs,
    #[command(flatten)]
    pub mode: ModeArg,
    #[command(flatten)]
    pub pools: PoolArgs,
    #[command(flatten)]
    pub conf: ConfArgs,
    /// Every method computes its own joins: no automatic shared subplans
    /// (the spec's [build] share_subplans = false). By default a join that
    /// two or more methods compute the same way is computed once per build.
    #[arg(long = "no-share-subplans")]
    pub no_share_subplans: bool,
    /// Every method runs its own aggregate: no fused aggregations (the
    /// spec's [build] fuse_aggregations = false). By default methods that
    /// aggregate the same input by the same keys run as one aggregate pass.
    #[arg(long = "no-fuse-aggregations")]
    pub no_fuse_aggregations: bool,
}

#[derive(Args)]
pub struct FeaturesBuildArgs {
    #[command(flatten)]
    pub spec: FeaturesSpecArgs,
    /// Rebuild every method, reusing nothing.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub event_log: EventLogArg,
    /// Run the methods one after another and merge them left-deep with the
    /// tournament rule off (the benchmark's baseline).
    #[arg(long)]
    pub sequential: bool,
    /// Views, methods and the merge run there; the stage area and the
    /// output stay on this machine.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Args)]
pub struct FeaturesExplainArgs {
    #[command(flatten)]
    pub spec: FeaturesSpecArgs,
}

#[derive(Subcommand)]
pub enum TpchCommand {
    /// Generate the 8 TPC-H tables as parquet files DIR/<table>.parquet.
    ///
    /// Tables already generated at the same scale factor are kept; a
    /// `_tpch_sf` marker file records it. A folder with table files but no
    /// marker (files fairway did not generate) is refused, never overwritten.
    #[command(after_help = "Example:\n  fairway tpch gen --sf 1 --out ~/.cache/fairway/tpch/sf1")]
    Gen {
        /// Scale factor (1 = about 1 GB of raw data, 6 million lineitems).
        #[arg(long, default_value_t = 1.0)]
        sf: f64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum BenchCommand {
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
    #[command(
        after_help = "Example:\n  fairway bench tpch --sf 1 --slots 2 --queries 1,6 --plot tpch.svg"
    )]
    Tpch(BenchTpchArgs),
    /// Feature specs built sequentially, in parallel FIFO and in parallel
    /// FAIR with the tournament merge, with and without fused aggregations,
    /// shared subplans and the co-partitioned merge.
    ///
    /// Generates TPC-H at --sf into --data (or reuses it) and reads every
    /// source of each SPEC from there. Runs each mode --iterations times,
    /// alternating the order of the modes, all on --slots slots and without
    /// reuse (--force): `sequential, unshared` (one method after another,
    /// each computing its own joins and aggregate, then a left-deep merge
    /// with the tournament and co-partitioned join rules off), `FIFO +
    /// fused + shared` (all methods at once, FIFO scheduler, fused
    /// aggregations, automatic shared subplans, balanced co-partitioned
    /// merge), `FAIR + fused + shared` (the default build: FAIR pool, fused,
    /// shared, balanced co-partitioned merge), `FAIR + shared, unfused`,
    /// `FAIR + fused + shared, re-shuffled` (the merge shuffles again at
    /// every level) and `FAIR, none of them` (no fusion, no sharing, a
    /// re-shuffling merge: the build before them). Every output is compared with
    /// the sequential one. Prints per mode the median seconds, the ratio to
    /// sequential and the slot utilisation (busy slot-time / (slots x wall
    /// time), from the event log of each run).
    #[command(
        after_help = "Example:\n  fairway bench features testdata/features/customer.toml --sf 1"
    )]
    Features(BenchFeaturesArgs),
}

#[derive(Args)]
pub struct BenchTpchArgs {
    #[command(flatten)]
    pub data: TpchDataArgs,
    /// Queries to run, e.g. 1,6,21 [default: all 22].
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub queries: Vec<usize>,
    /// Runs of each query per engine (power test) or of the whole
    /// throughput test per engine; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
    #[command(flatten)]
    pub slots: SlotArgs,
    /// Engines to compare, in the order of the first run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fairway,datafusion",
        value_name = "E,..."
    )]
    pub engines: Vec<String>,
    /// Throughput test: S concurrent query streams (fairway: one client
    /// per stream on one session; DataFusion: one task per stream on one
    /// context).
    #[arg(long, value_name = "S")]
    pub streams: Option<usize>,
    #[command(flatten)]
    pub mode: ModeArg,
    #[command(flatten)]
    pub shuffle_memory: ShuffleMemoryArg,
    #[command(flatten)]
    pub conf: ConfArgs,
    #[command(flatten)]
    pub json: JsonArg,
    /// Draw per-query times per engine as an SVG chart to FILE.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchFeaturesArgs {
    /// Feature specs to measure, e.g. testdata/features/customer.toml.
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<PathBuf>,
    #[command(flatten)]
    pub data: TpchDataArgs,
    /// Runs of each mode; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
    #[command(flatten)]
    pub slots: SlotArgs,
    /// Folder for outputs, stage areas and event logs, kept [default: a new
    /// folder fairway-bench-features-PID-N in the system temp folder,
    /// created for this run and removed at its end].
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    #[command(flatten)]
    pub conf: ConfArgs,
    #[command(flatten)]
    pub json: JsonArg,
}

// ----- option groups shared by several subcommands -----

/// The SQL to run: -c and -f.
#[derive(Args, Default)]
pub struct InputArgs {
    /// A SQL statement (or several separated by ';'); repeatable.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub commands: Vec<String>,
    /// A file of SQL statements separated by ';' (`--` comments allowed);
    /// repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The session of `sql`, `run` and `explain`: tables and settings.
#[derive(Args, Default)]
pub struct EngineArgs {
    /// Register a table: NAME=PATH, where PATH is a parquet, CSV, JSON
    /// (.json, .ndjson, .jsonl), Avro or Arrow IPC (.arrow, .feather, .ipc)
    /// file, a folder of them (key=value
    /// subfolders become partition columns), or a glob; a local path or an
    /// s3://, s3a://, gs://, az://, abfss:// or http(s):// URL (see
    /// fairway.store.* in --conf). Repeatable.
    #[arg(long = "table", value_name = "NAME=PATH", value_parser = name_path)]
    pub tables: Vec<(String, String)>,
    /// Register every parquet/CSV/JSON/Avro/Arrow file or folder in DIR (a local
    /// folder or an object store prefix such as s3://bucket/tpch/) as a
    /// table named after its file stem. Repeatable.
    #[arg(long = "tables", value_name = "DIR")]
    pub table_dirs: Vec<String>,
    #[command(flatten)]
    pub slots: SlotArgs,
    #[command(flatten)]
    pub shuffle_memory: ShuffleMemoryArg,
    /// Bound on the memory of all running queries, e.g. 512MiB: the
    /// shuffle keeps at most a quarter of it in memory, DataFusion's sorts,
    /// aggregations and joins share the rest and spill to files beyond it
    /// [default: unbounded].
    #[arg(long = "memory-limit", value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Print the peak resident memory of the process (VmHWM) on stderr
    /// at the end.
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub mode: ModeArg,
    #[command(flatten)]
    pub pools: PoolArgs,
    #[command(flatten)]
    pub event_log: EventLogArg,
    #[command(flatten)]
    pub conf: ConfArgs,
}

/// --slots and --partitions.
#[derive(Args, Default, Clone, Copy)]
pub struct SlotArgs {
    /// Tasks that may run at once across all jobs, at most 1024 [default:
    /// number of cores; features: the spec's, else number of cores; bench
    /// features: 2].
    #[arg(long, value_name = "N", value_parser = slot_count)]
    pub slots: Option<usize>,
    /// Partitions of every shuffle and file scan, at most 10000 [default:
    /// 2 x slots; features: the spec's, else 2 x slots].
    #[arg(long, value_name = "N", value_parser = partition_count)]
    pub partitions: Option<usize>,
}

/// --scheduler-mode.
#[derive(Args, Default, Clone, Copy)]
pub struct ModeArg {
    /// How free slots are shared between jobs: fifo (earlier job first) or
    /// fair (weighted pools, Spark's FAIR scheduler; in bench tpch each
    /// stream is its own pool) [default: fifo; features: the spec's, else
    /// fair].
    #[arg(
        long = "scheduler-mode",
        value_name = "MODE",
        value_enum,
        ignore_case = true
    )]
    pub scheduler_mode: Option<SchedulerMode>,
}

/// --allocation-file and --pool.
#[derive(Args, Default)]
pub struct PoolArgs {
    /// Spark fair-scheduler.xml defining pools (schedulingMode, weight,
    /// minShare); used with --scheduler-mode fair.
    #[arg(long = "allocation-file", value_name = "FILE")]
    pub allocation_file: Option<PathBuf>,
    /// Pool of statements that do not SET fairway.scheduler.pool, and of
    /// feature methods that name none [default: default; features: the
    /// spec's default_pool, else default].
    #[arg(long, value_name = "NAME")]
    pub pool: Option<String>,
}

/// --shuffle-memory.
#[derive(Args, Default, Clone, Copy)]
pub struct ShuffleMemoryArg {
    /// Bytes of shuffle output kept in memory before map outputs spill to
    /// Arrow IPC files, e.g. 512MiB, 2GiB, 0 [default: 1GiB].
    #[arg(long = "shuffle-memory", value_name = "SIZE", value_parser = size)]
    pub shuffle_memory: Option<usize>,
}

/// --event-log.
#[derive(Args, Default)]
pub struct EventLogArg {
    /// Write every job, stage and task event as a JSON line to FILE (a
    /// feature build's jobs are named `feature method NAME`).
    #[arg(long = "event-log", value_name = "FILE")]
    pub event_log: Option<PathBuf>,
}

/// --cluster and --cluster-slots.
#[derive(Args, Default)]
pub struct ClusterArgs {
    /// Run on Apache DataFusion Ballista instead of fairway's stage engine:
    /// df://HOST:PORT for a running ballista-scheduler, or standalone to
    /// start Ballista's scheduler and one executor (--slots slots) in this
    /// process. Tables, settings, tournament joins and SQL-standard USING
    /// apply there too; pools apply per statement (see --cluster-slots).
    /// Table files must be readable by the executors at the same paths.
    #[arg(long, value_name = "df://HOST:PORT|standalone")]
    pub cluster: Option<String>,
    /// With --cluster: statements that may run on the cluster at once,
    /// shared by the pools in --scheduler-mode fair (a pool gets at most
    /// max(minShare, its weighted share), all of them when alone)
    /// [default: --slots].
    #[arg(long = "cluster-slots", value_name = "N")]
    pub cluster_slots: Option<usize>,
}

/// --conf, with every fairway setting in its long help.
#[derive(Args, Default)]
pub struct ConfArgs {
    #[arg(
        long = "conf",
        value_name = "KEY=VALUE",
        help = "Any fairway.* or datafusion.* setting, KEY=VALUE; repeatable (--help lists \
                the fairway.* ones)",
        long_help = conf_long_help()
    )]
    pub conf: Vec<String>,
}

/// --sf and --data of the benchmarks.
#[derive(Args)]
pub struct TpchDataArgs {
    /// TPC-H scale factor of the data (1 = about 1 GB of raw data, 6
    /// million lineitems).
    #[arg(long, default_value_t = 1.0)]
    pub sf: f64,
    /// Folder of the TPC-H data, generated there if missing [default:
    /// ~/.cache/fairway/tpch/sf<SF>]; every table (and every source of a
    /// `bench features` spec) is read from it.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// --json of the benchmarks.
#[derive(Args)]
pub struct JsonArg {
    /// Write every measurement, with the machine, versions and settings,
    /// as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

// ----- typed values -----

/// `--scheduler-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchedulerMode {
    /// Earlier jobs first; pools are ignored.
    Fifo,
    /// Weighted pools, as Spark's FAIR scheduler.
    Fair,
}

impl From<SchedulerMode> for SchedulingMode {
    fn from(mode: SchedulerMode) -> Self {
        match mode {
            SchedulerMode::Fifo => SchedulingMode::Fifo,
            SchedulerMode::Fair => SchedulingMode::Fair,
        }
    }
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    #[value(alias = "jsonl")]
    Ndjson,
}

impl From<Format> for OutputFormat {
    fn from(format: Format) -> Self {
        match format {
            Format::Table => OutputFormat::Table,
            Format::Csv => OutputFormat::Csv,
            Format::Json => OutputFormat::Json,
            Format::Ndjson => OutputFormat::NdJson,
        }
    }
}

/// A count from 1 to `max`; the message names the bound.
fn count(text: &str, max: usize, why: &str) -> Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number from 1 to {max}"))?;
    match n {
        0 => Err("must be at least 1".to_string()),
        n if n > max => Err(format!("{n} is above the maximum of {max} ({why})")),
        n => Ok(n),
    }
}

/// `--slots`.
fn slot_count(text: &str) -> Result<usize, String> {
    count(
        text,
        fairway_engine::MAX_SLOTS,
        "every slot is a worker thread",
    )
}

/// `--partitions`.
fn partition_count(text: &str) -> Result<usize, String> {
    count(text, fairway_engine::MAX_PARTITIONS, "tasks per stage")
}

/// A byte size such as 512MiB.
fn size(text: &str) -> Result<usize, String> {
    parse_size(text)
}

/// `NAME=PATH`, trimmed.
fn name_path(pair: &str) -> Result<(String, String), String> {
    let (name, path) = pair
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, got '{pair}'"))?;
    Ok((name.trim().to_string(), path.trim().to_string()))
}

/// The long help of --conf: the settings table of the engine.
fn conf_long_help() -> String {
    format!(
        "{}\n\nIn features build/explain they apply after the spec's [build] conf; options \
         such as --slots win over --conf.",
        fairway_engine::settings_help()
    )
}
