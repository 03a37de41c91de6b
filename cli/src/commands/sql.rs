//! `fairway sql`: run -c/-f statements in order, or the interactive shell.

use anyhow::Result;

use super::run_script;
use crate::args::SqlArgs;
use crate::shell::{self, ShellOptions};

pub async fn run(args: SqlArgs) -> Result<()> {
    let SqlArgs {
        input,
        engine,
        cluster,
        format,
        maxrows,
        history,
        init,
    } = args;
    let format = format.into();
    let session = engine.session(Some(&cluster)).await?;
    let result = if input.is_empty() {
        shell::run(
            &session,
            ShellOptions {
                format,
                max_rows: maxrows,
                history: shell::history_path(history),
                init: shell::init_path(init),
            },
        )
        .await
    } else {
        let mut result = Ok(());
        let mut scripts = Vec::new();
        if let Some(init) = &init {
            let text = std::fs::read_to_string(init).map_err(|e| {
                anyhow::anyhow!("option --init: cannot read {}: {e}", init.display())
            })?;
            scripts.push((init.display().to_string(), text));
        }
        scripts.extend(input.scripts()?);
        for (source, text) in scripts {
            result = run_script(&session, &source, &text, format, maxrows).await;
            if result.is_err() {
                break;
            }
        }
        result
    };
    session.flush_event_log();
    result
}
