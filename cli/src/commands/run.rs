//! `fairway run`: every script on its own client, all at once.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use fairway_engine::datafusion::sql::parser::Statement;
use fairway_engine::datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use super::{describe, run_statement, short_sql};
use crate::args::RunArgs;

pub async fn run(args: RunArgs) -> Result<()> {
    let RunArgs {
        scripts,
        engine,
        cluster,
        print,
    } = args;
    let session = engine.session(Some(&cluster)).await?;
    let mut texts = Vec::new();
    for path in &scripts {
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
                let sql = statement.to_string();
                let quiet = matches!(
                    statement,
                    Statement::Statement(ref s) if matches!(**s, SqlStatement::Set(_))
                );
                let output = run_statement(&client, statement).await.with_context(|| {
                    format!("{name}, statement {} ({})", i + 1, short_sql(&sql))
                })?;
                if quiet {
                    continue;
                }
                let rows = output.rows();
                let line = if output.schema.fields().is_empty() {
                    format!(
                        "{name} #{} [pool {pool}] {}: done in {:.3} s",
                        i + 1,
                        short_sql(&sql),
                        output.elapsed.as_secs_f64()
                    )
                } else {
                    format!(
                        "{name} #{} [pool {pool}] {}: {rows} row{} in {:.3} s",
                        i + 1,
                        short_sql(&sql),
                        if rows == 1 { "" } else { "s" },
                        output.elapsed.as_secs_f64()
                    )
                };
                fairway_observe::progress::suspend(|| -> Result<()> {
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{line}")?;
                    if print {
                        let state = client.context().state();
                        crate::display::write_table(
                            &mut out,
                            &output.schema,
                            &output.batches,
                            &crate::display::TableStyle::complete(),
                            &state.config_options().format,
                        )?;
                    }
                    out.flush()?;
                    Ok(())
                })?;
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
