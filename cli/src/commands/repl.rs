//! The interactive shell of `fairway sql`: statements end with ';' and may
//! span lines; Ctrl-C cancels the running statement.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use fairway_engine::{OutputFormat, Session};
use rustyline::error::ReadlineError;

use super::{describe, run_script};

pub async fn run(session: &Session, format: OutputFormat) -> Result<()> {
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
