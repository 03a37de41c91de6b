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
