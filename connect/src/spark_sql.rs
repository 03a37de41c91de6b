//! Spark's name rules for SQL text, on top of DataFusion's: a column of a
//! table matches an unquoted name ignoring case (`spark.sql.caseSensitive`
//! is `false`), and the output keeps the case of the query's own aliases
//! (`select count(*) as Total` gives a column `Total`, where DataFusion
//! would lower-case it).

use std::collections::HashMap;
use std::ops::ControlFlow;

use fairway_engine::Session;
use fairway_engine::datafusion::common::Column;
use fairway_engine::datafusion::dataframe::DataFrame;
use fairway_engine::datafusion::logical_expr::Expr;
use fairway_engine::datafusion::sql::parser::Statement;
use fairway_engine::datafusion::sql::sqlparser::ast::{
    self, Ident, SelectItem, SetExpr, visit_expressions_mut, visit_relations,
};

use crate::error::Result;

/// Rewrites unquoted names in `statement` that match a column of a table
/// it reads only when case is ignored into that column's exact, quoted
/// name. Returns the top-level aliases as written, to restore their case
/// with [`restore_alias_case`].
pub async fn prepare(engine: &Session, statement: &mut Statement) -> Vec<String> {
    let Statement::Statement(inner) = statement else {
        return Vec::new();
    };
    let inner: &mut ast::Statement = inner.as_mut();
    let mut tables = Vec::new();
    let _ = visit_relations(inner, |name| {
        tables.push(name.to_string());
        ControlFlow::<()>::Continue(())
    });
    // lower-case name -> exact name, for columns that are not lower case;
    // a name two columns share ignoring case is left alone.
    let mut exact: HashMap<String, Option<String>> = HashMap::new();
    for table in tables {
        let Ok(provider) = engine.context().table_provider(table.as_str()).await else {
            continue;
        };
        for field in provider.schema().fields() {
            let name = field.name();
            let lower = name.to_lowercase();
            if lower == *name {
                continue;
            }
            exact
                .entry(lower)
                .and_modify(|e| {
                    if e.as_deref() != Some(name.as_str()) {
                        *e = None;
                    }
                })
                .or_insert_with(|| Some(name.clone()));
        }
    }
    if !exact.is_empty() {
        let fix = |ident: &mut Ident| {
            if ident.quote_style.is_none()
                && let Some(Some(name)) = exact.get(&ident.value.to_lowercase())
            {
                *ident = Ident::with_quote('"', name.clone());
            }
        };
        let _ = visit_expressions_mut(inner, |expr| {
            match expr {
                ast::Expr::Identifier(ident) => fix(ident),
                ast::Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last_mut() {
                        fix(last);
                    }
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
    }
    name_casts(inner);
    spark_syntax(inner);
    top_aliases(inner)
}

/// Spark SQL that DataFusion spells otherwise: `a RLIKE p` is `a ~ p`,
/// `explode(x)` in a select list is `unnest(x)`.
fn spark_syntax(statement: &mut ast::Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        match expr {
            ast::Expr::RLike {
                negated,
                expr: left,
                pattern,
                ..
            } => {
                let op = if *negated {
                    ast::BinaryOperator::PGRegexNotMatch
                } else {
                    ast::BinaryOperator::PGRegexMatch
                };
                let left = std::mem::replace(left.as_mut(), ast::Expr::value(ast::Value::Null));
                let right = std::mem::replace(pattern.as_mut(), ast::Expr::value(ast::Value::Null));
                *expr = ast::Expr::BinaryOp {
                    left: Box::new(left),
                    op,
                    right: Box::new(right),
                };
            }
            ast::Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("explode") => {
                f.name = ast::ObjectName::from(vec![Ident::new("unnest")]);
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// An unnamed item of the top query with a `CAST(x AS T)` in it is named
/// by its text, as Spark names it (`CAST(42 AS INT)`); DataFusion would
/// name the cast `x`, so that two casts of one value clash.
fn name_casts(statement: &mut ast::Statement) {
    let ast::Statement::Query(query) = statement else {
        return;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    for item in select.projection.iter_mut() {
        let has_cast = |e: &ast::Expr| {
            ast::visit_expressions(e, |inner| match inner {
                ast::Expr::Cast { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .is_break()
        };
        if let SelectItem::UnnamedExpr(expr) = item
            && has_cast(expr)
        {
            let name = expr.to_string().replace('\'', "");
            let expr = std::mem::replace(expr, ast::Expr::value(ast::Value::Null));
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', name),
            };
        }
    }
}

fn top_aliases(statement: &ast::Statement) -> Vec<String> {
    let ast::Statement::Query(query) = statement else {
        return Vec::new();
    };
    let mut body = query.body.as_ref();
    // A set operation takes its names from its first input.
    while let SetExpr::SetOperation { left, .. } = body {
        body = left.as_ref();
    }
    let SetExpr::Select(select) = body else {
        return Vec::new();
    };
    select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } if alias.quote_style.is_none() => {
                Some(alias.value.clone())
            }
            _ => None,
        })
        .collect()
}

/// Renames output columns that DataFusion lower-cased back to the aliases
/// as the query wrote them.
pub fn restore_alias_case(df: DataFrame, aliases: &[String]) -> Result<DataFrame> {
    let wanted: HashMap<String, &String> = aliases
        .iter()
        .filter(|a| a.to_lowercase() != **a)
        .map(|a| (a.to_lowercase(), a))
        .collect();
    if wanted.is_empty() {
        return Ok(df);
    }
    let fields: Vec<_> = df
        .schema()
        .iter()
        .map(|(q, f)| (q.cloned(), f.name().clone()))
        .collect();
    if !fields.iter().any(|(_, n)| wanted.contains_key(n)) {
        return Ok(df);
    }
    let exprs: Vec<Expr> = fields
        .into_iter()
        .map(|(q, name)| {
            let column = Expr::Column(Column::new(q, &name));
            match wanted.get(&name) {
                Some(alias) => column.alias(alias.as_str()),
                None => column,
            }
        })
        .collect();
    Ok(df.select(exprs)?)
}
