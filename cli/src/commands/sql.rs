//! `fairway sql`: run -c/-f statements in order, or the interactive shell.

use anyhow::Result;

use super::{repl, run_script};
use crate::args::SqlArgs;

pub async fn run(args: SqlArgs) -> Result<()> {
    let SqlArgs {
        input,
        engine,
        format,
    } = args;
    let format = format.into();
    let session = engine.session().await?;
    let result = if input.is_empty() {
        repl::run(&session, format).await
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
