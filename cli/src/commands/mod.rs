//! One module per subcommand, and what several of them share: the session
//! built from the common options, running statements, and error lines.

pub mod bench;
pub mod connect;
pub mod explain;
pub mod features;
pub mod run;
pub mod sql;
pub mod timeline;
pub mod tpch;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use fairway_benches::harness::prepare_data;
use fairway_engine::datafusion::sql::parser::Statement;
use fairway_engine::{
    ClusterTarget, EngineConfig, OutputFormat, QueryOutput, Session, write_output,
};

use crate::args::{ClusterArgs, ConfArgs, EngineArgs, InputArgs, ModeArg, SlotArgs};
use crate::display::Expanded;

/// An error of the setting behind a command-line option, named by the
/// option the user typed (`option --memory-limit: ...`), not the setting.
fn flag_error(flag: &str, e: fairway_engine::EngineError) -> anyhow::Error {
    match e {
        fairway_engine::EngineError::Config { message, .. } => anyhow!("option {flag}: {message}"),
        other => anyhow!("option {flag}: {other}"),
    }
}

/// The settings that `sql`/`run`/`explain` and `bench tpch` share: --conf
/// pairs first, then the dedicated options, which win.
pub fn base_config(
    conf: &ConfArgs,
    slots: SlotArgs,
    shuffle_memory: Option<usize>,
    mode: ModeArg,
) -> Result<EngineConfig> {
    let mut config = EngineConfig::default();
    for pair in &conf.conf {
        config.set_pair(pair)?;
    }
    if let Some(slots) = slots.slots {
        config
            .set("fairway.scheduler.slots", &slots.to_string())
            .map_err(|e| flag_error("--slots", e))?;
    }
    if let Some(partitions) = slots.partitions {
        config
            .set("fairway.shuffle.partitions", &partitions.to_string())
            .map_err(|e| flag_error("--partitions", e))?;
    }
    if let Some(bytes) = shuffle_memory {
        config.shuffle_memory = bytes;
    }
    if let Some(mode) = mode.scheduler_mode {
        config.scheduler_mode = mode.into();
    }
    Ok(config)
}

impl ConfArgs {
    /// The --conf pairs, trimmed, for a feature build.
    pub fn pairs(&self) -> Result<Vec<(String, String)>> {
        self.conf
            .iter()
            .map(|pair| {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow!("option --conf: expected KEY=VALUE, got '{pair}'"))?;
                Ok((key.trim().to_string(), value.trim().to_string()))
            })
            .collect()
    }
}

impl ClusterArgs {
    /// The checked --cluster target and --cluster-slots.
    pub fn parse(&self) -> Result<(Option<ClusterTarget>, Option<usize>)> {
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

impl EngineArgs {
    fn config(&self, cluster: Option<&ClusterArgs>) -> Result<EngineConfig> {
        let mut config = base_config(
            &self.conf,
            self.slots,
            self.shuffle_memory.shuffle_memory,
            self.mode,
        )?;
        if let Some(size) = &self.memory_limit {
            config
                .set("fairway.memory.limit", size)
                .map_err(|e| flag_error("--memory-limit", e))?;
        }
        if let Some(file) = &self.pools.allocation_file {
            config.allocation_file = Some(file.clone());
        }
        if let Some(pool) = &self.pools.pool {
            config
                .set("fairway.scheduler.pool", pool)
                .map_err(|e| flag_error("--pool", e))?;
        }
        if let Some(log) = &self.event_log.event_log {
            config.event_log = Some(log.clone());
        }
        if let Some(cluster) = cluster {
            (config.cluster, config.cluster_slots) = cluster.parse()?;
        }
        // Live stage progress, only for a person watching a terminal.
        config.progress = std::io::stderr().is_terminal();
        Ok(config)
    }

    /// A started session with the --tables and --table tables registered,
    /// on the --cluster (of commands that have one) if given.
    pub async fn session(&self, cluster: Option<&ClusterArgs>) -> Result<Session> {
        let session = Session::start(self.config(cluster)?).await?;
        for warning in session.warnings() {
            eprintln!("warning: {warning}");
        }
        for dir in &self.table_dirs {
            session.register_tables_in(dir).await?;
        }
        for (name, path) in &self.tables {
            session.register_table(name, path).await?;
        }
        Ok(session)
    }
}

impl InputArgs {
    /// The SQL texts to run, files first; each may hold several statements.
    pub fn scripts(&self) -> Result<Vec<(String, String)>> {
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

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.files.is_empty()
    }
}

/// Runs every statement of one script in order; stops at the first error,
/// which names the statement by its number and line.
pub async fn run_script(
    session: &Session,
    source: &str,
    text: &str,
    format: OutputFormat,
    max_rows: usize,
) -> Result<()> {
    for (i, piece) in crate::shell::split::split(text).iter().enumerate() {
        let outputs = run_piece(session, &piece.text)
            .await
            .with_context(|| format!("{source}, statement {} (line {})", i + 1, piece.line))?;
        for (sql, output) in outputs {
            if format == OutputFormat::Table {
                let style = crate::display::terminal_style(max_rows, Expanded::Off);
                crate::display::print_table(session, &output.schema, &output.batches, &style)?;
            } else {
                print_output(&output, format)?;
            }
            fairway_observe::progress::suspend(|| {
                eprintln!("{}", summary_line(&sql, &output, true))
            });
        }
    }
    Ok(())
}

/// Parses and runs the statement(s) of one piece of SQL text, returning
/// each statement's text and result.
pub async fn run_piece(session: &Session, text: &str) -> Result<Vec<(String, QueryOutput)>> {
    let mut outputs = Vec::new();
    for statement in session.parse_statements(text)? {
        let sql = statement.to_string();
        let output = run_statement(session, statement).await?;
        outputs.push((sql, output));
    }
    Ok(outputs)
}

/// Plans and runs one statement; Ctrl-C cancels it.
pub async fn run_statement(session: &Session, statement: Statement) -> Result<QueryOutput> {
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

/// Writes a result to stdout in `format`, with the progress bars hidden.
pub fn print_output(output: &QueryOutput, format: OutputFormat) -> Result<()> {
    fairway_observe::progress::suspend(|| {
        let mut out = std::io::stdout().lock();
        write_output(format, output, &mut out)?;
        out.flush()?;
        Ok(())
    })
}

/// The statement shortened to its first 60 characters, on one line.
pub fn short_sql(sql: &str) -> String {
    shorten(sql, 60)
}

/// `text` on one line (white space collapsed), cut to `width` characters
/// with `...`.
pub fn shorten(text: &str, width: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > width {
        flat.chars()
            .take(width.saturating_sub(3))
            .collect::<String>()
            + "..."
    } else {
        flat
    }
}

/// `-- SQL: R rows in S s (N stages)`, the SQL shortened to 60 characters;
/// without the time when `timing` is off.
pub fn summary_line(sql: &str, output: &QueryOutput, timing: bool) -> String {
    let short = short_sql(sql);
    let rows = output.rows();
    format!(
        "-- {short}: {rows} row{}{}{}",
        if rows == 1 { "" } else { "s" },
        if timing {
            format!(" in {:.3} s", output.elapsed.as_secs_f64())
        } else {
            String::new()
        },
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

/// Generates TPC-H at `sf` into `dir`, or reuses it, and says which on
/// stderr.
pub async fn prepare_tpch_data(sf: f64, dir: &Path) -> Result<()> {
    let start = Instant::now();
    let target = dir.to_path_buf();
    let summary = tokio::task::spawn_blocking(move || prepare_data(sf, &target))
        .await
        .map_err(|e| anyhow!("data generation stopped: {e}"))??;
    eprintln!(
        "TPC-H SF {sf} {} {} ({:.1} s)",
        if summary.reused {
            "reused from"
        } else {
            "generated in"
        },
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes `text` to `path` and says so on stderr.
pub fn write_report(path: &Path, text: String) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// One line: the error and its causes, without repeating a cause that the
/// message already includes.
pub fn describe(e: &anyhow::Error) -> String {
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
