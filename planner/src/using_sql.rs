//! SQL-standard `JOIN ... USING` for SQL text, before DataFusion plans it.
//!
//! DataFusion 55 resolves a `USING` column to the left input's column and
//! keeps one set of "using columns" per join, so a chain
//! `f1 FULL JOIN f2 USING (k) FULL JOIN f3 USING (k) FULL JOIN f4 USING (k)`
//! joins on `f1.k` instead of the merged key, and from the fourth input on
//! does not plan at all (`k` is ambiguous). [`standard_using_joins`]
//! rewrites every `USING` join of a `SELECT` the way the standard defines
//! it, into an `ON` join:
//!
//! * the key column `k` of `l JOIN r USING (k)` is `COALESCE(l.k, r.k)` for
//!   `FULL` and `RIGHT` joins and `l.k` for `INNER` and `LEFT` joins, where
//!   `l.k` is itself the merged key if `l` came from an earlier `USING` on
//!   `k`; the join condition is `<merged left key> = r.k`;
//! * an unqualified `k` in the select list, `WHERE`, `GROUP BY`, `HAVING`,
//!   `QUALIFY`, later `ON` conditions and `ORDER BY` means the merged key
//!   (a bare `k` in the select list keeps the name `k`);
//! * `SELECT *` lists the merged keys first, then every input's other
//!   columns in order (`f1.* EXCLUDE (k), f2.* EXCLUDE (k), ...`), as
//!   PostgreSQL, DuckDB and Spark do;
//! * qualified references (`f2.k`, `f2.*`) keep the input's own column.
//!
//! A `FROM` clause whose `USING` joins involve something this cannot name
//! (an unaliased subquery, a parenthesised join, a semi/anti join with
//! `USING`, a key whose left side is not known) is left to DataFusion.
//! Plans built without SQL get the same merged key from
//! [`StandardUsingJoins`](crate::StandardUsingJoins).

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, GroupByExpr, Ident, JoinConstraint, JoinOperator, ObjectName,
    ObjectNamePart, OrderByKind, Query, Select, SelectItem, SelectItemQualifiedWildcardKind,
    SetExpr, TableFactor, TableWithJoins, VisitMut, VisitorMut, WildcardAdditionalOptions,
};

/// Column names of a table in the catalog, by its name as written, if known.
pub type ColumnsOf<'a> = &'a dyn Fn(&ObjectName) -> Option<Vec<String>>;

/// Rewrites the `USING` joins of every `SELECT` in `statement` (a
/// statement, a query, ...) into standard-conforming `ON` joins (see the
/// module documentation). Returns whether anything changed.
pub fn standard_using_joins<T: VisitMut>(statement: &mut T, columns_of: ColumnsOf<'_>) -> bool {
    let mut rewriter = Rewriter {
        columns_of,
        changed: false,
    };
    let _ = statement.visit(&mut rewriter);
    rewriter.changed
}

struct Rewriter<'a> {
    columns_of: ColumnsOf<'a>,
    changed: bool,
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut()
            && let Some(merged) = self.rewrite_select(select)
        {
            let aliases = output_names(select);
            if let Some(order_by) = &mut query.order_by
                && let OrderByKind::Expressions(exprs) = &mut order_by.kind
            {
                // `ORDER BY k` names the select list's `k` when there is one.
                let merged: HashMap<String, Expr> = merged
                    .into_iter()
                    .filter(|(name, _)| !aliases.contains(name))
                    .collect();
                for e in exprs {
                    replace_identifiers(&mut e.expr, &merged);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        // Selects inside set operations (a query's own select was handled
        // with its ORDER BY above and has no USING left).
        self.rewrite_select(select);
        ControlFlow::Continue(())
    }
}

/// Normalised name of an identifier, as DataFusion resolves it.
fn norm(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn output_names(select: &Select) -> Vec<String> {
    select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(norm(alias)),
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(norm(id)),
            _ => None,
        })
        .collect()
}

/// The qualifier of a relation's columns, if it has a plain one.
fn qualifier(factor: &TableFactor) -> Option<Vec<Ident>> {
    match factor {
        TableFactor::Table {
            name, alias: None, ..
        } => name
            .0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(id) => Some(id.clone()),
                _ => None,
            })
            .collect(),
        TableFactor::Table { alias: Some(a), .. }
        | TableFactor::Derived { alias: Some(a), .. }
        | TableFactor::Function { alias: Some(a), .. }
        | TableFactor::UNNEST { alias: Some(a), .. } => Some(vec![a.name.clone()]),
        _ => None,
    }
}

/// Column names of a relation, when it is a catalog table without column
/// aliases.
fn relation_columns(factor: &TableFactor, columns_of: ColumnsOf<'_>) -> Option<Vec<String>> {
    match factor {
        TableFactor::Table { name, alias, .. }
            if alias.as_ref().is_none_or(|a| a.columns.is_empty()) =>
        {
            columns_of(name)
        }
        _ => None,
    }
}

fn column(qualifier: &[Ident], name: &Ident) -> Expr {
    let mut parts = qualifier.to_vec();
    parts.push(name.clone());
    Expr::CompoundIdentifier(parts)
}

fn coalesce(args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("coalesce")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// The arguments of a `coalesce(...)` built here, or the expression.
fn coalesce_args(expr: Expr) -> Vec<Expr> {
    if let Expr::Function(f) = &expr
        && f.name.to_string() == "coalesce"
        && let FunctionArguments::List(list) = &f.args
    {
        return list
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect();
    }
    vec![expr]
}

/// A merged USING key: its name as first written, and its expression.
struct Merged {
    ident: Ident,
    expr: Expr,
}

impl Rewriter<'_> {
    /// Rewrites the USING joins of `select`; returns the merged keys by
    /// normalised name, or `None` if nothing was rewritten.
    fn rewrite_select(&mut self, select: &mut Select) -> Option<HashMap<String, Expr>> {
        if !select.from.iter().any(has_using) {
            return None;
        }
        let wildcard = select.projection.iter().find_map(|i| match i {
            SelectItem::Wildcard(opts) => Some(opts),
            _ => None,
        });
        if wildcard.is_some_and(has_options) {
            return None;
        }
        let wildcard = wildcard.is_some();
        // Plan every FROM item first; change nothing unless all can be done.
        let mut plans = Vec::new();
        for twj in &select.from {
            if has_using(twj) {
                plans.push(Some(self.plan_joins(twj)?));
            } else {
                plans.push(None);
            }
        }
        // Every relation, in FROM order, with the merged columns it gave.
        let mut relations: Vec<(Vec<Ident>, Vec<Ident>)> = Vec::new();
        for (twj, plan) in select.from.iter().zip(&plans) {
            for (i, factor) in std::iter::once(&twj.relation)
                .chain(twj.joins.iter().map(|j| &j.relation))
                .enumerate()
            {
                let Some(q) = qualifier(factor) else {
                    if wildcard {
                        return None;
                    }
                    continue;
                };
                let merged = plan
                    .as_ref()
                    .map(|p| p.given[i].clone())
                    .unwrap_or_default();
                relations.push((q, merged));
            }
        }
        // Apply: ON conditions, then references.
        let mut merged: Vec<Merged> = Vec::new();
        for (twj, plan) in select.from.iter_mut().zip(plans) {
            let Some(plan) = plan else { continue };
            for (join, on) in twj.joins.iter_mut().zip(plan.conditions) {
                if let (Some(on), Some(c)) = (on, constraint_mut(&mut join.join_operator)) {
                    *c = JoinConstraint::On(on);
                }
            }
            for m in plan.merged {
                merged.push(m);
            }
        }
        let by_name: HashMap<String, Expr> = merged
            .iter()
            .map(|m| (norm(&m.ident), m.expr.clone()))
            .collect();

        let mut projection = Vec::with_capacity(select.projection.len());
        for item in std::mem::take(&mut select.projection) {
            match item {
                SelectItem::UnnamedExpr(Expr::Identifier(id))
                    if by_name.contains_key(&norm(&id)) =>
                {
                    projection.push(SelectItem::ExprWithAlias {
                        expr: by_name[&norm(&id)].clone(),
                        alias: id,
                    });
                }
                SelectItem::UnnamedExpr(mut e) => {
                    replace_identifiers(&mut e, &by_name);
                    projection.push(SelectItem::UnnamedExpr(e));
                }
                SelectItem::ExprWithAlias { mut expr, alias } => {
                    replace_identifiers(&mut expr, &by_name);
                    projection.push(SelectItem::ExprWithAlias { expr, alias });
                }
                SelectItem::Wildcard(_) => {
                    for m in &merged {
                        projection.push(SelectItem::ExprWithAlias {
                            expr: m.expr.clone(),
                            alias: m.ident.clone(),
                        });
                    }
                    for (q, given) in &relations {
                        let mut opts = WildcardAdditionalOptions::default();
                        if !given.is_empty() {
                            opts.opt_exclude = Some(ExcludeSelectItem::Multiple(
                                given
                                    .iter()
                                    .map(|id| ObjectName::from(vec![id.clone()]))
                                    .collect(),
                            ));
                        }
                        projection.push(SelectItem::QualifiedWildcard(
                            SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(
                                q.clone(),
                            )),
                            opts,
                        ));
                    }
                }
                other => projection.push(other),
            }
        }
        select.projection = projection;
        for e in [
            &mut select.selection,
            &mut select.having,
            &mut select.qualify,
        ]
        .into_iter()
        .flatten()
        {
            replace_identifiers(e, &by_name);
        }
        if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
            for e in exprs {
                replace_identifiers(e, &by_name);
            }
        }
        for twj in &mut select.from {
            for join in &mut twj.joins {
                if let Some(JoinConstraint::On(e)) = constraint_mut(&mut join.join_operator) {
                    replace_identifiers(e, &by_name);
                }
            }
        }
        self.changed = true;
        Some(by_name)
    }

    /// The ON conditions for the USING joins of one FROM item.
    fn plan_joins(&self, twj: &TableWithJoins) -> Option<JoinPlan> {
        let mut factors = vec![&twj.relation];
        factors.extend(twj.joins.iter().map(|j| &j.relation));
        let mut given: Vec<Vec<Ident>> = vec![Vec::new(); factors.len()];
        let mut merged: Vec<Merged> = Vec::new();
        let mut conditions = Vec::with_capacity(twj.joins.len());
        for (j, join) in twj.joins.iter().enumerate() {
            let Some(JoinConstraint::Using(names)) = constraint(&join.join_operator) else {
                conditions.push(None);
                continue;
            };
            let coalesces = match &join.join_operator {
                JoinOperator::Join(_)
                | JoinOperator::Inner(_)
                | JoinOperator::Left(_)
                | JoinOperator::LeftOuter(_) => false,
                JoinOperator::Right(_)
                | JoinOperator::RightOuter(_)
                | JoinOperator::FullOuter(_) => true,
                _ => return None,
            };
            let right_q = qualifier(&join.relation)?;
            let mut condition: Option<Expr> = None;
            for name in names {
                let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
                    return None;
                };
                let key = norm(ident);
                let left = match merged.iter().position(|m| norm(&m.ident) == key) {
                    Some(i) => merged[i].expr.clone(),
                    None => {
                        // First USING on this column: the one input on the
                        // left that has it.
                        let source = if j == 0 {
                            0
                        } else {
                            let mut found = None;
                            for (i, f) in factors[..=j].iter().enumerate() {
                                let cols = relation_columns(f, self.columns_of)?;
                                if cols.contains(&key) {
                                    if found.is_some() {
                                        return None;
                                    }
                                    found = Some(i);
                                }
                            }
                            found?
                        };
                        given[source].push(ident.clone());
                        column(&qualifier(factors[source])?, ident)
                    }
                };
                let right = column(&right_q, ident);
                given[j + 1].push(ident.clone());
                let eq = Expr::BinaryOp {
                    left: Box::new(left.clone()),
                    op: datafusion::sql::sqlparser::ast::BinaryOperator::Eq,
                    right: Box::new(right.clone()),
                };
                condition = Some(match condition {
                    None => eq,
                    Some(c) => Expr::BinaryOp {
                        left: Box::new(c),
                        op: datafusion::sql::sqlparser::ast::BinaryOperator::And,
                        right: Box::new(eq),
                    },
                });
                let expr = if coalesces {
                    let mut args = coalesce_args(left);
                    args.push(right);
                    coalesce(args)
                } else {
                    left
                };
                match merged.iter_mut().find(|m| norm(&m.ident) == key) {
                    Some(m) => m.expr = expr,
                    None => merged.push(Merged {
                        ident: ident.clone(),
                        expr,
                    }),
                }
            }
            conditions.push(Some(condition?));
        }
        Some(JoinPlan {
            conditions,
            merged,
            given,
        })
    }
}

/// How one FROM item's USING joins are rewritten.
struct JoinPlan {
    /// The new ON condition of each join (`None`: not a USING join).
    conditions: Vec<Option<Expr>>,
    /// The merged keys, in order of first appearance.
    merged: Vec<Merged>,
    /// For each relation (the first, then each join's), the key columns
    /// that went into a merged key and so leave `SELECT *`.
    given: Vec<Vec<Ident>>,
}

fn has_using(twj: &TableWithJoins) -> bool {
    twj.joins
        .iter()
        .any(|j| matches!(constraint(&j.join_operator), Some(JoinConstraint::Using(_))))
}

fn has_options(opts: &WildcardAdditionalOptions) -> bool {
    opts.opt_ilike.is_some()
        || opts.opt_exclude.is_some()
        || opts.opt_except.is_some()
        || opts.opt_replace.is_some()
        || opts.opt_rename.is_some()
        || opts.opt_alias.is_some()
}

/// The constraint of every join operator that has one, by reference or by
/// mutable reference (one list of variants for both).
macro_rules! join_constraint {
    ($op:expr) => {
        match $op {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c)
            | JoinOperator::Right(c)
            | JoinOperator::RightOuter(c)
            | JoinOperator::FullOuter(c)
            | JoinOperator::CrossJoin(c)
            | JoinOperator::Semi(c)
            | JoinOperator::LeftSemi(c)
            | JoinOperator::RightSemi(c)
            | JoinOperator::Anti(c)
            | JoinOperator::LeftAnti(c)
            | JoinOperator::RightAnti(c) => Some(c),
            _ => None,
        }
    };
}

fn constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    join_constraint!(op)
}

fn constraint_mut(op: &mut JoinOperator) -> Option<&mut JoinConstraint> {
    join_constraint!(op)
}

/// Replaces unqualified identifiers named in `merged` by their merged key,
/// outside nested queries (which have their own scope).
fn replace_identifiers(expr: &mut Expr, merged: &HashMap<String, Expr>) {
    struct Replace<'a> {
        merged: &'a HashMap<String, Expr>,
        depth: usize,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Identifier(id) = expr
                && let Some(m) = self.merged.get(&norm(id))
            {
                *expr = m.clone();
            }
            ControlFlow::Continue(())
        }
    }
    if merged.is_empty() {
        return;
    }
    let _ = expr.visit(&mut Replace { merged, depth: 0 });
}

/// The names of the relations `statement` reads, as written, if it has a
/// `USING` join (`None` otherwise: [`standard_using_joins`] has nothing to
/// do, and no catalog lookup is needed).
pub fn using_join_relations<T: VisitMut>(statement: &mut T) -> Option<Vec<ObjectName>> {
    #[derive(Default)]
    struct Scan {
        names: Vec<ObjectName>,
        using: bool,
    }
    impl VisitorMut for Scan {
        type Break = ();
        fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
            if !self.names.contains(relation) {
                self.names.push(relation.clone());
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            self.using |= select.from.iter().any(has_using);
            ControlFlow::Continue(())
        }
    }
    let mut scan = Scan::default();
    let _ = statement.visit(&mut scan);
    scan.using.then_some(scan.names)
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(sql: &str) -> Statement {
        let mut statements = Parser::parse_sql(&GenericDialect {}, sql).unwrap();
        assert_eq!(statements.len(), 1, "{sql}");
        statements.pop().unwrap()
    }

    /// The catalog of these tests: `a(k, x)`, `b(k, y)`, `c(k, z)`,
    /// `f1`..`f3(k, vN)`, `p(id, x)` and `q(id, k)`.
    fn columns(name: &ObjectName) -> Option<Vec<String>> {
        let columns: &[&str] = match name.to_string().as_str() {
            "a" => &["k", "x"],
            "b" => &["k", "y"],
            "c" => &["k", "z"],
            "f1" => &["k", "v1"],
            "f2" => &["k", "v2"],
            "f3" => &["k", "v3"],
            "p" => &["id", "x"],
            "q" => &["id", "k"],
            _ => return None,
        };
        Some(columns.iter().map(|c| c.to_string()).collect())
    }

    /// Rewrites `sql`; returns whether it changed and the statement as text.
    fn rewrite(sql: &str) -> (bool, String) {
        let mut statement = parse(sql);
        let changed = standard_using_joins(&mut statement, &columns);
        (changed, statement.to_string())
    }

    /// `sql` is rewritten to what `expected` parses to.
    #[track_caller]
    fn assert_rewrites(sql: &str, expected: &str) {
        assert_eq!(rewrite(sql), (true, parse(expected).to_string()), "{sql}");
    }

    /// `sql` is left exactly as it was.
    #[track_caller]
    fn assert_untouched(sql: &str) {
        assert_eq!(rewrite(sql), (false, parse(sql).to_string()), "{sql}");
    }

    #[test]
    fn full_join_star_lists_the_merged_key_first() {
        assert_rewrites(
            "SELECT * FROM a FULL JOIN b USING (k)",
            "SELECT coalesce(a.k, b.k) AS k, a.* EXCLUDE (k), b.* EXCLUDE (k) \
             FROM a FULL JOIN b ON a.k = b.k",
        );
    }

    #[test]
    fn inner_and_left_joins_use_the_left_key() {
        assert_rewrites(
            "SELECT k, x FROM a JOIN b USING (k) WHERE k > 1",
            "SELECT a.k AS k, x FROM a JOIN b ON a.k = b.k WHERE a.k > 1",
        );
        assert_rewrites(
            "SELECT k FROM a LEFT JOIN b USING (k)",
            "SELECT a.k AS k FROM a LEFT JOIN b ON a.k = b.k",
        );
    }

    #[test]
    fn right_join_merges_both_keys() {
        assert_rewrites(
            "SELECT k FROM a RIGHT JOIN b USING (k)",
            "SELECT coalesce(a.k, b.k) AS k FROM a RIGHT JOIN b ON a.k = b.k",
        );
    }

    #[test]
    fn a_chain_of_full_joins_joins_on_the_merged_key() {
        // The third input joins on the key merged so far, not on f1.k; the
        // merged key grows one argument per join, and GROUP BY uses it too.
        assert_rewrites(
            "SELECT k, count(*) FROM f1 FULL JOIN f2 USING (k) FULL JOIN f3 USING (k) \
             GROUP BY k ORDER BY k",
            "SELECT coalesce(f1.k, f2.k, f3.k) AS k, count(*) \
             FROM f1 FULL JOIN f2 ON f1.k = f2.k \
             FULL JOIN f3 ON coalesce(f1.k, f2.k) = f3.k \
             GROUP BY coalesce(f1.k, f2.k, f3.k) ORDER BY k",
        );
    }

    #[test]
    fn order_by_a_key_not_in_the_select_list_uses_the_merged_key() {
        assert_rewrites(
            "SELECT x FROM a FULL JOIN b USING (k) ORDER BY k",
            "SELECT x FROM a FULL JOIN b ON a.k = b.k ORDER BY coalesce(a.k, b.k)",
        );
    }

    #[test]
    fn several_keys_are_and_ed() {
        assert_rewrites(
            "SELECT * FROM p JOIN q USING (id, k)",
            // p has no k, but the first join's left side is p by position.
            "SELECT p.id AS id, p.k AS k, p.* EXCLUDE (id, k), q.* EXCLUDE (id, k) \
             FROM p JOIN q ON p.id = q.id AND p.k = q.k",
        );
    }

    #[test]
    fn qualified_references_keep_their_own_column() {
        assert_rewrites(
            "SELECT b.k, k, b.* FROM a FULL JOIN b USING (k)",
            "SELECT b.k, coalesce(a.k, b.k) AS k, b.* FROM a FULL JOIN b ON a.k = b.k",
        );
    }

    #[test]
    fn the_left_key_of_a_later_join_is_found_in_the_catalog() {
        // Only q (the second input) has k, so c joins on q.k.
        assert_rewrites(
            "SELECT * FROM p JOIN q ON p.id = q.id JOIN c USING (k)",
            "SELECT q.k AS k, p.*, q.* EXCLUDE (k), c.* EXCLUDE (k) \
             FROM p JOIN q ON p.id = q.id JOIN c ON q.k = c.k",
        );
    }

    #[test]
    fn an_ambiguous_or_unknown_left_key_is_left_to_datafusion() {
        // Both a and b have k: which one c joins on is not known.
        assert_untouched("SELECT * FROM a JOIN b ON a.x = b.y JOIN c USING (k)");
        // An unknown table: its columns cannot be looked up.
        assert_untouched("SELECT * FROM a JOIN nowhere ON a.x = nowhere.x JOIN c USING (k)");
    }

    #[test]
    fn what_cannot_be_named_is_left_to_datafusion() {
        // An unaliased subquery has no qualifier to write the key with.
        assert_untouched("SELECT * FROM (SELECT 1 AS k) JOIN b USING (k)");
        // A wildcard with options of its own.
        assert_untouched("SELECT * EXCLUDE (x) FROM a JOIN b USING (k)");
    }

    #[test]
    fn statements_without_using_are_untouched() {
        assert_untouched("SELECT k FROM a JOIN b ON a.k = b.k");
        assert_untouched("SELECT * FROM a NATURAL JOIN b");
    }

    #[test]
    fn nested_queries_keep_their_own_scope() {
        // The k inside the subquery is c's own column, not the merged key;
        // the subquery has no USING join and stays as written.
        assert_rewrites(
            "SELECT k FROM a JOIN b USING (k) WHERE k IN (SELECT k FROM c)",
            "SELECT a.k AS k FROM a JOIN b ON a.k = b.k WHERE a.k IN (SELECT k FROM c)",
        );
    }

    #[test]
    fn selects_inside_set_operations_are_rewritten() {
        assert_rewrites(
            "SELECT k FROM a FULL JOIN b USING (k) UNION ALL SELECT k FROM c",
            "SELECT coalesce(a.k, b.k) AS k FROM a FULL JOIN b ON a.k = b.k \
             UNION ALL SELECT k FROM c",
        );
    }

    #[test]
    fn using_join_relations_names_every_relation_once() {
        let mut statement = parse("SELECT * FROM a JOIN b USING (k) JOIN a AS a2 ON a.k = a2.k, c");
        let names = using_join_relations(&mut statement)
            .expect("a USING join")
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>();
        assert_eq!(names, vec!["a", "b", "c"]);
        // Inside a subquery counts too.
        let mut nested = parse("SELECT * FROM (SELECT * FROM a JOIN b USING (k)) AS s");
        assert!(using_join_relations(&mut nested).is_some());
        let mut plain = parse("SELECT * FROM a JOIN b ON a.k = b.k");
        assert_eq!(using_join_relations(&mut plain), None);
    }
}
