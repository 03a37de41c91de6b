//! `fairway explain`: print each statement's stage graph instead of running
//! it (DDL still runs, so later statements can use it).

use std::io::Write;

use anyhow::{Context, Result, bail};
use fairway_engine::datafusion::sql::parser::Statement;
use fairway_engine::datafusion::sql::sqlparser::ast::Statement as Ast;

use crate::args::ExplainArgs;

pub async fn run(args: ExplainArgs) -> Result<()> {
    let ExplainArgs { input, engine } = args;
    let session = engine.session(None).await?;
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

/// Whether a statement runs as a job (and so has a stage graph).
fn is_query(statement: &Statement) -> bool {
    match statement {
        Statement::Statement(s) => matches!(
            s.as_ref(),
            Ast::Query(_) | Ast::Insert(_) | Ast::Explain { .. }
        ),
        Statement::CopyTo(_) | Statement::Explain(_) => true,
        _ => false,
    }
}
