//! Point-filtered dimensions joined first.
//!
//! DataFusion joins the tables of a `FROM a, b, c` list in the order they
//! are written. TPC-H Q21 lists `supplier, lineitem l1, orders, nation` with
//! `s_nationkey = n_nationkey and n_name = 'SAUDI ARABIA'`: every supplier
//! is joined to 3.8 M late line items before the one nation's filter keeps
//! 4% of them. [`FilteredJoinsFirst`] moves an inner join with a
//! *point-filtered* scan (a conjunct that pins one column to literals:
//! `n_name = 'SAUDI ARABIA'`, `n_name = 'FRANCE' OR n_name = 'GERMANY'`,
//! `IN (...)`) down the inner-join tree on the other side to the one plain,
//! unfiltered table scan that every key of the join reads (`supplier`):
//! `((supplier JOIN l1) JOIN orders) JOIN nation` becomes
//! `((supplier JOIN nation) JOIN l1) JOIN orders`, so the filter drops the
//! other nations' suppliers before they meet `lineitem`. Inner joins
//! commute and associate, so the rows are the same; projections between the
//! joins pass the moved scan's columns on, and one on top gives back the
//! columns in their old order.
//!
//! The rule has no statistics, so it moves only what cannot lose much:
//! - only inner joins without a join filter and with `NULL`-never-equal
//!   keys, and only through inner joins and projections;
//! - only point-filtered scans (a range such as `n_name > 'M'` may keep
//!   most rows), and only onto an unfiltered scan (a filtered one, such as
//!   `l1`'s late lines, may already be the smaller side);
//! - never onto a leaf whose direct partner is point-filtered itself: that
//!   partner would be displaced and, in the next pass, move back (TPC-H Q7
//!   joins `nation n1` and `nation n2`, both filtered, to `supplier` and
//!   `customer`).
//!
//! Q7 runs in 0.54x of plain DataFusion's time with the rule and 1.03x
//! without, Q21 in 0.68x and 1.00x (benches/README.md).

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::logical_plan::Join;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Operator,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::switch::switched_rule;

switched_rule! {
    /// Logical optimizer rule that joins a filtered scan to the unfiltered
    /// table its keys come from before that table's other joins (see the module
    /// documentation). Place it after `push_down_filter`.
    FilteredJoinsFirst
}

impl OptimizerRule for FilteredJoinsFirst {
    fn name(&self) -> &str {
        "fairway_filtered_joins_first"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if !(self.enabled)(&config.options()) {
            return Ok(Transformed::no(plan));
        }
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if !movable(join) {
            return Ok(Transformed::no(plan));
        }
        for filtered_on_right in [true, false] {
            let (tree, filtered) = if filtered_on_right {
                (&join.left, &join.right)
            } else {
                (&join.right, &join.left)
            };
            if !point_filtered(filtered) || !join_below(tree).is_some_and(movable) {
                continue;
            }
            // The keys as (tree side, filtered side).
            let mut keys = Vec::new();
            for (l, r) in &join.on {
                let (mine, theirs) = if filtered_on_right { (l, r) } else { (r, l) };
                let Expr::Column(mine) = mine else {
                    keys.clear();
                    break;
                };
                keys.push((mine.clone(), theirs.clone()));
            }
            if keys.is_empty() {
                continue;
            }
            let Some(moved) = attach(tree, &keys, filtered)? else {
                continue;
            };
            let columns: Vec<Expr> = plan
                .schema()
                .columns()
                .into_iter()
                .map(Expr::Column)
                .collect();
            // A plan that cannot be built (a column name the moved scan
            // shares with its new neighbours) leaves the join where it was.
            let Ok(rewritten) = LogicalPlanBuilder::from(moved)
                .project(columns)
                .and_then(LogicalPlanBuilder::build)
            else {
                continue;
            };
            return Ok(Transformed::yes(rewritten));
        }
        Ok(Transformed::no(plan))
    }
}

/// An inner join with plain equality keys and nothing else.
fn movable(join: &Join) -> bool {
    join.join_type == JoinType::Inner
        && join.filter.is_none()
        && join.null_equality == NullEquality::NullEqualsNothing
        && !join.on.is_empty()
}

/// `tree` with `filtered` joined (on `keys`) to the unfiltered scan below
/// inner joins that produces every key column; `None` if the keys come from
/// more than one input or the input is not such a scan.
fn attach(
    tree: &LogicalPlan,
    keys: &[(Column, Expr)],
    filtered: &LogicalPlan,
) -> Result<Option<LogicalPlan>> {
    if let LogicalPlan::Join(j) = tree {
        if !movable(j) {
            return Ok(None);
        }
        let on = |side: &LogicalPlan| keys.iter().all(|(c, _)| side.schema().has_column(c));
        // A leaf keeps the point-filtered partner it has: moving another
        // one onto it would only displace that one, and back.
        let partnered = |leaf: &LogicalPlan, partner: &LogicalPlan| {
            join_below(leaf).is_none() && point_filtered(partner)
        };
        let inputs = if on(&j.left) {
            if partnered(&j.left, &j.right) {
                return Ok(None);
            }
            match attach(&j.left, keys, filtered)? {
                Some(left) => vec![left, j.right.as_ref().clone()],
                None => return Ok(None),
            }
        } else if on(&j.right) {
            if partnered(&j.right, &j.left) {
                return Ok(None);
            }
            match attach(&j.right, keys, filtered)? {
                Some(right) => vec![j.left.as_ref().clone(), right],
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        return Ok(tree.with_new_exprs(tree.expressions(), inputs).ok());
    }
    // Through a projection that passes the keys on, which then also
    // passes on the filtered scan's columns.
    if let LogicalPlan::Projection(p) = tree
        && matches!(p.input.as_ref(), LogicalPlan::Join(_))
        && keys.iter().all(|(c, _)| {
            p.expr
                .iter()
                .any(|e| matches!(e, Expr::Column(x) if x == c))
        })
    {
        let Some(input) = attach(&p.input, keys, filtered)? else {
            return Ok(None);
        };
        let mut exprs = p.expr.clone();
        exprs.extend(filtered.schema().columns().into_iter().map(Expr::Column));
        return Ok(LogicalPlanBuilder::from(input)
            .project(exprs)
            .and_then(LogicalPlanBuilder::build)
            .ok());
    }
    if !unfiltered_scan(tree) {
        return Ok(None);
    }
    let (mine, theirs): (Vec<Expr>, Vec<Expr>) = keys
        .iter()
        .map(|(c, e)| (Expr::Column(c.clone()), e.clone()))
        .unzip();
    Ok(LogicalPlanBuilder::from(tree.clone())
        .join_with_expr_keys(filtered.clone(), JoinType::Inner, (mine, theirs), None)
        .and_then(LogicalPlanBuilder::build)
        .ok())
}

/// Projections and aliases over one table scan without filters or limit.
fn unfiltered_scan(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Projection(p) => unfiltered_scan(&p.input),
        LogicalPlan::SubqueryAlias(a) => unfiltered_scan(&a.input),
        LogicalPlan::TableScan(scan) => scan.filters.is_empty() && scan.fetch.is_none(),
        _ => false,
    }
}

/// Projections, aliases and filters over one table scan where some
/// conjunct of the filters pins a column to listed values (`n_name =
/// 'SAUDI ARABIA'`, `n_name = 'FRANCE' OR n_name = 'GERMANY'`, `IN (...)`):
/// the filters that keep a small share of a table.
fn point_filtered(plan: &LogicalPlan) -> bool {
    let mut predicates = Vec::new();
    let mut node = plan;
    loop {
        match node {
            LogicalPlan::Projection(p) => node = &p.input,
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::Filter(f) => {
                predicates.push(&f.predicate);
                node = &f.input;
            }
            LogicalPlan::TableScan(scan) => {
                if scan.fetch.is_some() {
                    return false;
                }
                predicates.extend(scan.filters.iter());
                break;
            }
            _ => return false,
        }
    }
    predicates
        .into_iter()
        .flat_map(|p| split_conjunction(p))
        .any(|c| pinned_column(c).is_some())
}

/// The column that `expr` pins to literal values, if it does.
fn pinned_column(expr: &Expr) -> Option<&Column> {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(..)) | (Expr::Literal(..), Expr::Column(c)) => Some(c),
            _ => None,
        },
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let l = pinned_column(left)?;
            (pinned_column(right)? == l).then_some(l)
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if list.iter().all(|e| matches!(e, Expr::Literal(..))) => match expr.as_ref() {
            Expr::Column(c) => Some(c),
            _ => None,
        },
        _ => None,
    }
}

/// The join under `plan`'s projections, if there is one: then `plan` is
/// not a leaf of the join tree.
fn join_below(plan: &LogicalPlan) -> Option<&Join> {
    match plan {
        LogicalPlan::Join(j) => Some(j),
        LogicalPlan::Projection(p) => join_below(&p.input),
        _ => None,
    }
}
