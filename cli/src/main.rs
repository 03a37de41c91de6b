//! The `fairway` command: SQL over parquet and CSV on the stage engine.
//! This file parses the command line, starts the runtime and dispatches to
//! [`commands`]; the options are in [`args`].

mod args;
mod commands;
mod display;
mod logger;
mod shell;

use anyhow::{Result, bail};
use clap::Parser;
use clap::error::ErrorKind;
use fairway_engine::format_size;
use fairway_observe::EventLog;

use args::{Cli, Command, FeaturesCommand};
use commands::describe;

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
    let cli = parse();
    logger::init(matches!(cli.command, Command::Connect(_)));
    let stats = match &cli.command {
        Command::Sql(args::SqlArgs { engine, .. })
        | Command::Run(args::RunArgs { engine, .. })
        | Command::Explain(args::ExplainArgs { engine, .. })
        | Command::Connect(args::ConnectArgs { engine, .. })
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
        // The server plans every client's plans on these threads.
        Command::Connect(args) => args.engine.slots.slots.unwrap_or_else(cores).max(4),
        Command::Sql(args::SqlArgs {
            engine, cluster, ..
        })
        | Command::Run(args::RunArgs {
            engine, cluster, ..
        }) if cluster.cluster.is_some() => engine.slots.slots.unwrap_or_else(cores).max(2),
        Command::Features {
            command: FeaturesCommand::Build(args),
        } if args.cluster.cluster.is_some() => args.spec.slots.slots.unwrap_or_else(cores).max(2),
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

/// The command line. A value that an option refuses (an unknown
/// --scheduler-mode, a malformed size) is an error like any other: one
/// line, status 1. Help and version print as usual; a malformed command
/// line (an unknown option, a missing argument) is clap's usage error.
fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ) =>
        {
            let text = e.render().to_string();
            let line = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("{line}");
            std::process::exit(1);
        }
        Err(e) => e.exit(),
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sql(args) => commands::sql::run(args).await,
        Command::Run(args) => commands::run::run(args).await,
        Command::Explain(args) => commands::explain::run(args).await,
        Command::Timeline(args) => commands::timeline::run(args),
        Command::Connect(args) => commands::connect::run(args).await,
        Command::Features { command } => commands::features::run(command).await,
        Command::Tpch { command } => commands::tpch::run(command),
        Command::Bench { command } => commands::bench::run(command).await,
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
    match EventLog::failures().first() {
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
        .map(|kib| format_size(kib * 1024))
        .unwrap_or_else(|| "unknown (no /proc/self/status)".to_string());
    match limit {
        Some(limit) => format!("peak RSS: {peak} (memory limit {limit})"),
        None => format!("peak RSS: {peak} (no memory limit)"),
    }
}
