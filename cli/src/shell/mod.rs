//! The interactive shell of `fairway sql`: statements end with `;` and may
//! span lines, meta commands (`\d`, `\dp`, `\timing`, ...) take effect at
//! once, Tab completes, and Ctrl-C cancels the running statement or clears
//! the line being typed. Every statement is appended to the history file
//! when it is entered, so a killed shell keeps its history.

mod complete;
pub mod split;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow, bail};
use fairway_engine::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use fairway_engine::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use fairway_engine::{OutputFormat, QueryOutput, SETTINGS, Session};
use rustyline::Editor;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;

use self::complete::{Catalog, ShellHelper};
use crate::commands::{describe, print_output, run_piece, shorten};
use crate::display::{Expanded, TableStyle, print_table, terminal_style};

/// What `fairway sql` gives the shell.
pub struct ShellOptions {
    pub format: OutputFormat,
    /// Rows shown per result on a terminal; 0 shows all.
    pub max_rows: usize,
    /// The history file; `None` keeps no history.
    pub history: Option<PathBuf>,
    /// Statements run before the first prompt.
    pub init: Option<PathBuf>,
}

const HELP: &str = "\
Statements end with ';' and may span lines. Meta commands take effect at once:
  \\?, help            this help
  \\q, quit, exit      leave (also Ctrl-D)
  \\d                  tables and views
  \\d NAME             the columns of NAME and their types
  \\dp                 pools: mode, weight, minShare, maxShare, queues, and their jobs
  \\timing [on|off]    elapsed time on each statement's line (now: {timing})
  \\format FORMAT      table, csv, json or ndjson (now: {format})
  \\maxrows N          rows shown of a result on a terminal, 0 for all (now: {maxrows})
  \\x [on|off|auto]    expanded display, one block per row (now: {expanded})
  \\i FILE             run the statements of FILE
Ctrl-C cancels the running statement, or clears the line being typed.
Tab completes keywords, tables, columns, settings after SET, and paths in quotes.";

struct Shell<'a> {
    session: &'a Session,
    format: OutputFormat,
    max_rows: usize,
    timing: bool,
    expanded: Expanded,
    catalog: Arc<Mutex<Catalog>>,
}

/// The history file: `--history`, else `$FAIRWAY_HISTORY` (empty: none),
/// else `~/.fairway_history`.
pub fn history_path(option: Option<PathBuf>) -> Option<PathBuf> {
    if option.is_some() {
        return option;
    }
    match std::env::var_os("FAIRWAY_HISTORY") {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".fairway_history")),
    }
}

/// `path` as the history file, unless it is a link or not a regular file:
/// fairway writes the history, so it follows no link and replaces nothing
/// that is not a plain file (the shell then keeps no history, and says so).
fn usable_history(path: Option<PathBuf>) -> Option<PathBuf> {
    let path = path?;
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if !meta.file_type().is_file() => {
            eprintln!(
                "warning: the history file {} is a link or not a regular file; \
                 no history is kept (--history FILE chooses another)",
                path.display()
            );
            None
        }
        _ => Some(path),
    }
}

/// The start-up file: `--init`, else `~/.fairwayrc` when it exists.
pub fn init_path(option: Option<PathBuf>) -> Option<PathBuf> {
    option.or_else(|| {
        let rc = PathBuf::from(std::env::var_os("HOME")?).join(".fairwayrc");
        rc.is_file().then_some(rc)
    })
}

pub async fn run(session: &Session, options: ShellOptions) -> Result<()> {
    let catalog = Arc::new(Mutex::new(Catalog::default()));
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)?
        .history_ignore_dups(true)?
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: Editor<ShellHelper, FileHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper {
        catalog: Arc::clone(&catalog),
    }));
    // Install the SIGINT handler now, after the editor, which installs
    // rustyline's own when it is created: ours is installed over it (and
    // calls it too), so from here on Ctrl-C never kills the shell. While a
    // line is read the terminal is in raw mode and Ctrl-C is a key that
    // clears the line; while a statement runs it is a signal that cancels
    // the statement. (Polling `ctrl_c` once installs the handler.)
    let _ = futures::FutureExt::now_or_never(tokio::signal::ctrl_c());
    let history = usable_history(options.history);
    if let Some(h) = &history
        && h.exists()
        && let Err(e) = editor.load_history(h)
    {
        eprintln!("warning: cannot read the history file {}: {e}", h.display());
    }
    let mut shell = Shell {
        session,
        format: options.format,
        max_rows: options.max_rows,
        timing: true,
        expanded: Expanded::Off,
        catalog,
    };
    shell.refresh().await;
    if std::io::stdin().is_terminal() {
        eprintln!(
            "fairway {} ({} slots, {} partitions). End statements with ';', \\? for help, \\q to quit.",
            env!("CARGO_PKG_VERSION"),
            session.config().slots,
            session.config().partitions
        );
    }
    if let Some(init) = &options.init {
        shell.run_file(init).await;
    }
    let mut buffer = String::new();
    let mut history_warned = false;
    loop {
        let prompt = if buffer.is_empty() {
            "fairway> "
        } else {
            "     ..> "
        };
        shell.lock_catalog().pending = buffer.clone();
        // Read the line on a thread of its own, so a signal that arrives
        // while the shell waits for input is still acted on at once.
        let (back, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline(prompt);
            (editor, line)
        })
        .await?;
        editor = back;
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        let entry = if buffer.is_empty() && is_meta(trimmed) {
            Some(trimmed.to_string())
        } else {
            if trimmed.is_empty() && buffer.is_empty() {
                continue;
            }
            buffer.push_str(&line);
            buffer.push('\n');
            split::is_complete(&buffer).then(|| std::mem::take(&mut buffer))
        };
        let Some(entry) = entry else { continue };
        // Into the history file before it runs: a statement that never
        // ends (or a killed shell) is still remembered.
        let _ = editor.add_history_entry(entry.trim_end());
        if let Some(h) = &history
            && let Err(e) = editor.append_history(h)
            && !history_warned
        {
            eprintln!(
                "warning: cannot write the history file {}: {e}",
                h.display()
            );
            history_warned = true;
        }
        if is_meta(entry.trim()) {
            match shell.meta(entry.trim()).await {
                Ok(Flow::Quit) => break,
                Ok(Flow::Continue) => {}
                Err(e) => eprintln!("error: {}", describe(&e)),
            }
        } else {
            shell.run_text("input", &entry).await;
        }
    }
    Ok(())
}

fn is_meta(line: &str) -> bool {
    line.starts_with('\\') || matches!(line.trim_end_matches(';'), "quit" | "exit" | "help")
}

enum Flow {
    Continue,
    Quit,
}

impl Shell<'_> {
    fn lock_catalog(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reloads the tables, columns and setting names that completion offers.
    async fn refresh(&self) {
        let mut tables = Vec::new();
        for name in table_names(self.session) {
            if let Ok(provider) = self.session.context().table_provider(name.as_str()).await {
                let columns = provider
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                tables.push((name, columns));
            }
        }
        let mut settings: Vec<String> = SETTINGS.iter().map(|s| s.key.to_string()).collect();
        settings.extend(
            self.session
                .context()
                .state()
                .config_options()
                .entries()
                .into_iter()
                .map(|e| e.key),
        );
        let mut catalog = self.lock_catalog();
        catalog.tables = tables;
        catalog.settings = settings;
    }

    /// Runs every statement of `text`; a failed one is reported (naming its
    /// place) and the others still run.
    async fn run_text(&self, source: &str, text: &str) {
        let pieces = split::split(text);
        let several = pieces.len() > 1 || source != "input";
        for (i, piece) in pieces.iter().enumerate() {
            let place = if several {
                format!("{source}, statement {} (line {})", i + 1, piece.line)
            } else {
                String::new()
            };
            match run_piece(self.session, &piece.text).await {
                Ok(outputs) => {
                    for (sql, output) in outputs {
                        if let Err(e) = self.show(&output) {
                            eprintln!("error: {}", describe(&e));
                        }
                        eprintln!(
                            "{}",
                            crate::commands::summary_line(&sql, &output, self.timing)
                        );
                    }
                }
                Err(e) if place.is_empty() => eprintln!("error: {}", describe(&e)),
                Err(e) => eprintln!("error: {place}: {}", describe(&e)),
            }
        }
        self.refresh().await;
    }

    async fn run_file(&self, path: &Path) {
        match std::fs::read_to_string(path) {
            Ok(text) => self.run_text(&path.display().to_string(), &text).await,
            Err(e) => eprintln!("error: cannot read {}: {e}", path.display()),
        }
    }

    /// Prints a result in the current format; tables on a terminal are cut
    /// to `\maxrows` rows and the terminal's width.
    fn show(&self, output: &QueryOutput) -> Result<()> {
        if self.format != OutputFormat::Table {
            return print_output(output, self.format);
        }
        let style = self.table_style();
        self.print_table(&output.schema, &output.batches, &style)
    }

    fn table_style(&self) -> TableStyle {
        terminal_style(self.max_rows, self.expanded)
    }

    fn print_table(
        &self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        style: &TableStyle,
    ) -> Result<()> {
        print_table(self.session, schema, batches, style)
    }

    async fn meta(&mut self, line: &str) -> Result<Flow> {
        let line = line.trim_end_matches(';').trim();
        let (command, arg) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        match command {
            "\\q" | "quit" | "exit" => return Ok(Flow::Quit),
            "\\?" | "\\h" | "help" => {
                let text = HELP
                    .replace("{timing}", if self.timing { "on" } else { "off" })
                    .replace("{format}", format_name(self.format))
                    .replace("{maxrows}", &self.max_rows.to_string())
                    .replace("{expanded}", self.expanded.name());
                println!("{text}");
            }
            "\\d" if arg.is_empty() => self.list_tables()?,
            "\\d" => self.describe_table(arg).await?,
            "\\dp" => self.list_pools()?,
            "\\timing" => {
                self.timing = on_off(arg, !self.timing, "\\timing")?;
                eprintln!("timing is {}", if self.timing { "on" } else { "off" });
            }
            "\\format" => {
                if arg.is_empty() {
                    eprintln!("format is {}", format_name(self.format));
                } else {
                    self.format = arg.parse().map_err(|e| anyhow!("\\format: {e}"))?;
                    eprintln!("format is {}", format_name(self.format));
                }
            }
            "\\maxrows" => {
                if !arg.is_empty() {
                    self.max_rows = arg.parse().map_err(|_| {
                        anyhow!("\\maxrows: expected a number of rows (0 for all), got '{arg}'")
                    })?;
                }
                eprintln!(
                    "maxrows is {}",
                    if self.max_rows == 0 {
                        "0 (all rows)".to_string()
                    } else {
                        self.max_rows.to_string()
                    }
                );
            }
            "\\x" => {
                self.expanded = match arg.to_ascii_lowercase().as_str() {
                    "" if self.expanded == Expanded::Off => Expanded::On,
                    "" => Expanded::Off,
                    "on" => Expanded::On,
                    "off" => Expanded::Off,
                    "auto" => Expanded::Auto,
                    other => bail!("\\x: expected on, off or auto, got '{other}'"),
                };
                eprintln!("expanded display is {}", self.expanded.name());
            }
            "\\i" => {
                if arg.is_empty() {
                    bail!("\\i: expected a file name");
                }
                self.run_file(Path::new(arg.trim_matches('\''))).await;
            }
            other => bail!("unknown command {other} (\\? lists the commands)"),
        }
        Ok(Flow::Continue)
    }

    /// `\d`: every table and view, with its kind and column count.
    fn list_tables(&self) -> Result<()> {
        let catalog = self.lock_catalog();
        let mut names = Vec::new();
        let mut kinds = Vec::new();
        let mut columns = Vec::new();
        let views = self.session.temp_view_names();
        for (name, cols) in &catalog.tables {
            names.push(name.clone());
            kinds.push(if views.contains(name) {
                "view"
            } else {
                "table"
            });
            columns.push(cols.len() as u64);
        }
        drop(catalog);
        self.print_rows(
            &[
                ("name", DataType::Utf8),
                ("type", DataType::Utf8),
                ("columns", DataType::UInt64),
            ],
            vec![
                Arc::new(StringArray::from(names)),
                Arc::new(StringArray::from(kinds)),
                Arc::new(UInt64Array::from(columns)),
            ],
        )
    }

    /// `\d NAME`: the columns of one table, their types and nullability.
    async fn describe_table(&self, name: &str) -> Result<()> {
        let provider = self
            .session
            .context()
            .table_provider(name)
            .await
            .map_err(|_| anyhow!("no table or view named '{name}' (\\d lists them)"))?;
        let schema = provider.schema();
        let fields = schema.fields();
        self.print_rows(
            &[
                ("column", DataType::Utf8),
                ("type", DataType::Utf8),
                ("nullable", DataType::Utf8),
            ],
            vec![
                Arc::new(StringArray::from_iter_values(
                    fields.iter().map(|f| f.name().clone()),
                )),
                Arc::new(StringArray::from_iter_values(
                    fields.iter().map(|f| f.data_type().to_string()),
                )),
                Arc::new(StringArray::from_iter_values(
                    fields
                        .iter()
                        .map(|f| if f.is_nullable() { "YES" } else { "NO" }),
                )),
            ],
        )
    }

    /// `\dp`: the scheduler's pools and the jobs that run in each now.
    fn list_pools(&self) -> Result<()> {
        let scheduler = self.session.scheduler();
        let jobs = self.session.active_jobs();
        let pools = scheduler.pools();
        let mut rows: Vec<[String; 8]> = pools
            .iter()
            .map(|p| {
                let running: Vec<String> = jobs
                    .iter()
                    .filter(|j| j.pool == p.name)
                    .map(job_line)
                    .collect();
                [
                    p.name.clone(),
                    p.mode.as_str().to_string(),
                    p.weight.to_string(),
                    p.min_share.to_string(),
                    p.max_share.map_or(String::new(), |m| m.to_string()),
                    p.running_tasks.to_string(),
                    admission(p),
                    running.join("; "),
                ]
            })
            .collect();
        if pools.is_empty() {
            // FIFO: one queue in submission order; pools are not used.
            rows.push([
                self.session.pool(),
                "FIFO (pools not used)".to_string(),
                String::new(),
                String::new(),
                String::new(),
                scheduler.metrics().running_tasks.to_string(),
                String::new(),
                jobs.iter().map(job_line).collect::<Vec<_>>().join("; "),
            ]);
        }
        // Jobs in a pool the scheduler does not list.
        for job in jobs.iter().filter(|_| !pools.is_empty()) {
            if !pools.iter().any(|p| p.name == job.pool) {
                rows.push([
                    job.pool.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    job_line(job),
                ]);
            }
        }
        eprintln!(
            "scheduler: {} with {} slots",
            scheduler.mode().as_str(),
            scheduler.slots()
        );
        let column = |i: usize| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].clone()),
            ))
        };
        self.print_rows(
            &[
                ("pool", DataType::Utf8),
                ("mode", DataType::Utf8),
                ("weight", DataType::Utf8),
                ("min_share", DataType::Utf8),
                ("max_share", DataType::Utf8),
                ("running_tasks", DataType::Utf8),
                ("admission", DataType::Utf8),
                ("jobs", DataType::Utf8),
            ],
            (0..8).map(column).collect(),
        )
    }

    fn print_rows(&self, fields: &[(&str, DataType)], columns: Vec<ArrayRef>) -> Result<()> {
        let schema = Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        let style = TableStyle {
            max_rows: None,
            ..self.table_style()
        };
        self.print_table(&schema, &[batch], &style)
    }
}

/// Tables and views of the session's default schema, sorted, and those of
/// other schemas as `schema.name` (information_schema left out).
fn table_names(session: &Session) -> Vec<String> {
    let ctx = session.context();
    let state = ctx.state();
    let defaults = &state.config_options().catalog;
    let mut names = Vec::new();
    for catalog_name in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            if schema_name == "information_schema" {
                continue;
            }
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for table in schema.table_names() {
                if catalog_name == defaults.default_catalog
                    && schema_name == defaults.default_schema
                {
                    names.push(table);
                } else if catalog_name == defaults.default_catalog {
                    names.push(format!("{schema_name}.{table}"));
                } else {
                    names.push(format!("{catalog_name}.{schema_name}.{table}"));
                }
            }
        }
    }
    names.sort();
    names
}

fn on_off(arg: &str, toggled: bool, command: &str) -> Result<bool> {
    match arg.to_ascii_lowercase().as_str() {
        "" => Ok(toggled),
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => bail!("{command}: expected on or off, got '{other}'"),
    }
}

fn format_name(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Table => "table",
        OutputFormat::Csv => "csv",
        OutputFormat::Json => "json",
        OutputFormat::NdJson => "ndjson",
    }
}

/// `job N: <its statement, shortened>` for `\dp`.
/// `1 running, 2 queued (max 1 running, 5 queued)` for `\dp`: the pool's
/// jobs at admission and its limits.
fn admission(pool: &fairway_engine::PoolStatus) -> String {
    let mut text = format!("{} running, {} queued", pool.running_jobs, pool.queued_jobs);
    let limits: Vec<String> = [
        pool.max_running_jobs.map(|n| format!("max {n} running")),
        pool.max_queued_jobs.map(|n| format!("{n} queued")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !limits.is_empty() {
        text.push_str(&format!(" ({})", limits.join(", ")));
    }
    text
}

fn job_line(job: &fairway_engine::ActiveJob) -> String {
    format!("job {}: {}", job.id, shorten(&job.description, 40))
}
