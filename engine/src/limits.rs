//! Bounds on what one statement may ask of the planner, so hostile input
//! gets a clear error instead of overflowing a thread's stack.
//!
//! DataFusion plans, optimises, evaluates, prints and drops expression
//! trees recursively. A left-deep chain such as `1+1+...+1` or `a OR b OR
//! ...` parses without recursion but then nests once per term, and with
//! 10,000 terms some of those recursions overflow the stack and abort the
//! process. So every parsed statement is measured before it is planned: an
//! expression (or query) nested deeper than [`MAX_EXPRESSION_DEPTH`] is
//! refused, like DuckDB's `max_expression_depth` (1000 there). The
//! measurement runs on a thread with a large stack and stops as soon as the
//! limit is passed, and a refused statement is dropped on that thread too,
//! so neither can overflow the caller's stack.
//!
//! Planning a join grows faster than the number of tables joined (in
//! DataFusion 55, about the cube: 100 tables take about 1 s to plan, 200
//! about 14 s, 300 about 50 s on one core), so a statement may name at
//! most [`MAX_TABLES`] tables, views and subqueries (a 1,000-way join would
//! otherwise plan for most of an hour).

use std::ops::ControlFlow;

use datafusion::sql::parser::{CopyToSource, Statement};
use datafusion::sql::sqlparser::ast::{Expr, Query, TableFactor, Visit, Visitor};

use crate::error::{EngineError, Result};

/// The deepest nesting of expressions and subqueries a statement may have.
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

/// The most tables (and derived tables) one statement may read.
pub const MAX_TABLES: usize = 256;

/// The stack of the thread that measures and drops statements: enough for
/// dropping an expression nested millions deep.
const CHECK_STACK: usize = 1 << 30;

/// Returns the statements if each nests at most [`MAX_EXPRESSION_DEPTH`]
/// deep, otherwise an error naming the statement (1-based) and the limit.
pub(crate) fn check_depth(statements: Vec<Statement>) -> Result<Vec<Statement>> {
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("fairway-depth-check".into())
            .stack_size(CHECK_STACK)
            .spawn_scoped(scope, move || {
                let refused = statements
                    .iter()
                    .enumerate()
                    .find_map(|(i, s)| refusal(s).map(|why| (i + 1, why)));
                match refused {
                    Some(refused) => {
                        // Dropped here, on the large stack.
                        drop(statements);
                        Err(refused)
                    }
                    None => Ok(statements),
                }
            })
            .map(|handle| handle.join())
    });
    match outcome {
        Ok(Ok(Ok(statements))) => Ok(statements),
        Ok(Ok(Err((position, Refusal::Deep)))) => Err(EngineError::DataFusion(
            datafusion::error::DataFusionError::Plan(format!(
                "statement {position} is nested too deeply: more than {MAX_EXPRESSION_DEPTH} \
                 levels of expressions or subqueries (each + or OR of a chain is one level); \
                 split it up"
            )),
        )),
        Ok(Ok(Err((position, Refusal::Wide)))) => Err(EngineError::DataFusion(
            datafusion::error::DataFusionError::Plan(format!(
                "statement {position} reads more than {MAX_TABLES} tables, views or \
                 subqueries; join them in steps (or with merge_frames)"
            )),
        )),
        Ok(Err(_)) => Err(EngineError::DataFusion(
            datafusion::error::DataFusionError::Internal("the statement depth check failed".into()),
        )),
        Err(e) => Err(EngineError::DataFusion(
            datafusion::error::DataFusionError::Internal(format!(
                "cannot start the statement depth check: {e}"
            )),
        )),
    }
}

enum Refusal {
    Deep,
    Wide,
}

fn refusal(statement: &Statement) -> Option<Refusal> {
    let mut depth = Depth::default();
    let flow = match statement {
        Statement::Statement(s) => s.visit(&mut depth),
        Statement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(q) => q.visit(&mut depth),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        Statement::Explain(explain) => return refusal(&explain.statement),
        _ => ControlFlow::Continue(()),
    };
    match flow {
        ControlFlow::Break(why) => Some(why),
        ControlFlow::Continue(()) => None,
    }
}

/// Counts open expressions and queries, and table factors; breaks off
/// past a limit, so the walk itself never recurses deeper than the limit.
#[derive(Default)]
struct Depth {
    open: usize,
    tables: usize,
}

impl Depth {
    fn enter(&mut self) -> ControlFlow<Refusal> {
        self.open += 1;
        if self.open > MAX_EXPRESSION_DEPTH {
            ControlFlow::Break(Refusal::Deep)
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<Refusal> {
        self.open -= 1;
        ControlFlow::Continue(())
    }
}

impl Visitor for Depth {
    type Break = Refusal;

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<Refusal> {
        self.enter()
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<Refusal> {
        self.leave()
    }

    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<Refusal> {
        self.enter()
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<Refusal> {
        self.leave()
    }

    fn pre_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<Refusal> {
        self.tables += 1;
        if self.tables > MAX_TABLES {
            ControlFlow::Break(Refusal::Wide)
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn parse(sql: &str) -> Vec<Statement> {
        DFParser::parse_sql(sql).unwrap().into_iter().collect()
    }

    #[test]
    fn a_chain_past_the_limit_is_refused_and_one_within_passes() {
        let within = format!(
            "select {}",
            std::iter::repeat_n("1", MAX_EXPRESSION_DEPTH - 10)
                .collect::<Vec<_>>()
                .join("+")
        );
        assert_eq!(check_depth(parse(&within)).unwrap().len(), 1);
        let past = format!(
            "select 1; select {}",
            std::iter::repeat_n("1", 100_000)
                .collect::<Vec<_>>()
                .join(" or ")
        );
        let err = check_depth(parse(&past)).unwrap_err().to_string();
        assert!(err.contains("statement 2 is nested too deeply"), "{err}");
        assert!(err.contains(&MAX_EXPRESSION_DEPTH.to_string()), "{err}");
    }

    #[test]
    fn a_join_of_too_many_tables_is_refused() {
        let chain = |n: usize| {
            let mut sql = String::from("select count(*) from t t0");
            for i in 1..n {
                sql.push_str(&format!(" join t t{i} on t{}.k = t{i}.k", i - 1));
            }
            sql
        };
        assert!(check_depth(parse(&chain(MAX_TABLES))).is_ok());
        let err = check_depth(parse(&chain(MAX_TABLES + 1)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("more than {MAX_TABLES} tables")),
            "{err}"
        );
    }

    #[test]
    fn nested_subqueries_count_too() {
        let mut sql = String::from("select 1");
        for _ in 0..(MAX_EXPRESSION_DEPTH / 2 + 1) {
            sql = format!("select * from ({sql}) t");
        }
        // The parser's own recursion limit may refuse it first; either way
        // it is an error, not an overflow.
        let parsed = DFParser::parse_sql(&sql);
        if let Ok(statements) = parsed {
            assert!(check_depth(statements.into_iter().collect()).is_err());
        }
    }
}
