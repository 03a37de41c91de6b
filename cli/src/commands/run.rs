//! `fairway run`: every script on its own client, all at once.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use fairway_engine::{OutputFormat, write_output};

use super::{describe, run_statement};
use crate::args::RunArgs;

pub async fn run(args: RunArgs) -> Result<()> {
    let RunArgs {
        scripts,
        engine,
        print,
    } = args;
    let session = engine.session().await?;
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
