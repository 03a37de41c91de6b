//! Semi-join reduction of aggregates that are joined on their grouping
//! keys.
//!
//! A decorrelated subquery (TPC-H Q17's `l_quantity < (select 0.2 *
//! avg(l_quantity) from lineitem where l_partkey = p_partkey)`, Q20's and
//! Q2's) becomes an aggregate over the *whole* inner table, grouped by the
//! correlation key, joined to the outer rows on that key. Only the groups
//! whose key the outer side has can ever match, and the outer side's keys
//! usually come from a selective filter (`p_brand = 'Brand#23' and
//! p_container = 'MED BOX'`: 0.1% of the parts). [`SemiJoinReduction`]
//! restricts the aggregate's input to the keys of that filtered scan before
//! aggregating: `agg(lineitem) JOIN outer` becomes `agg(lineitem SEMI JOIN
//! filtered part) JOIN outer`, so the aggregate sees a few thousand rows
//! instead of all of them.
//!
//! Why the answer does not change: the semi join removes whole groups
//! (every row of a group has its key), only groups whose key is not among
//! the reducer's keys, and the reducer's keys are a superset of the keys the
//! outer side can offer the join (the outer key is traced down through
//! projections, filters, inner and semi joins, which only ever drop keys,
//! to the scan that produces it). The join (INNER, or SEMI/OUTER with the
//! aggregate on the side whose unmatched rows are dropped) never matched the
//! removed groups: the aggregates of the groups that remain are computed
//! from all their rows. A `HAVING` filter above the aggregate keeps or drops
//! each group on its own values, so it may stay. Joins where `NULL` equals
//! `NULL` are left alone (the semi join drops the `NULL` group).
//!
//! The reducer is only used when it is a chain of projections and filters
//! over one table scan, with at least one filter: an unfiltered scan offers
//! every key, and a reducer built from joins would compute them twice.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::logical_plan::Join;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::switch::switched_rule;

/// The alias of a reducer's one-column plan.
const REDUCER: &str = "__fairway_reducer";

switched_rule! {
    /// Logical optimizer rule that restricts an aggregate joined on its
    /// grouping keys to the keys of a filtered scan on the other side (see the
    /// module documentation). Place it after DataFusion's subquery
    /// decorrelation and `push_down_filter`.
    SemiJoinReduction
}

impl OptimizerRule for SemiJoinReduction {
    fn name(&self) -> &str {
        "fairway_semi_join_reduction"
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
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if !(self.enabled)(&config.options())
            || join.null_equality != NullEquality::NullEqualsNothing
        {
            return Ok(Transformed::no(plan));
        }
        // The sides whose unmatched rows the join drops may be reduced.
        let (left_ok, right_ok) = match join.join_type {
            JoinType::Inner => (true, true),
            JoinType::LeftSemi | JoinType::Left => (false, true),
            JoinType::RightSemi | JoinType::Right => (true, false),
            _ => (false, false),
        };
        if join.join_type == JoinType::LeftSemi
            && selective(&join.right)
            && let Some(pushed) = push_semi_join(&join.left, join)?
        {
            return Ok(Transformed::yes(pushed));
        }
        if right_ok && let Some(reduced) = reduce_side(join, true)? {
            return Ok(Transformed::yes(reduced));
        }
        if left_ok && let Some(reduced) = reduce_side(join, false)? {
            return Ok(Transformed::yes(reduced));
        }
        Ok(Transformed::no(plan))
    }
}

/// Whether a semi join's right side acts as a selective filter: a filtered
/// scan, or an aggregate with a `HAVING` (`IN (SELECT k ... GROUP BY k
/// HAVING ...)`, TPC-H Q18), through projections and aliases.
fn selective(plan: &LogicalPlan) -> bool {
    if filtered_scan(plan) {
        return true;
    }
    match plan {
        LogicalPlan::Projection(p) => selective(&p.input),
        LogicalPlan::SubqueryAlias(a) => selective(&a.input),
        LogicalPlan::Filter(f) => matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)),
        _ => false,
    }
}

/// The columns of `semi`'s left input that its keys and filter read.
fn left_columns(semi: &Join) -> Option<Vec<Column>> {
    let mut columns = Vec::new();
    for (l, _) in &semi.on {
        let Expr::Column(c) = l else {
            return None;
        };
        columns.push(c.clone());
    }
    if let Some(filter) = &semi.filter {
        for c in filter.column_refs() {
            if semi.left.schema().has_column(c) {
                columns.push(c.clone());
            }
        }
    }
    Some(columns)
}

/// `plan` (the semi join's left input) with the semi join moved down, like
/// a filter, through projections that pass its columns on and inner joins,
/// onto the input that produces every column it reads, above its filters (TPC-H
/// Q18: onto `orders`, below its joins with `customer` and `lineitem`, so
/// those joins see 57 orders instead of 1.5 million). `(A JOIN B) SEMI S`
/// on columns of `A` keeps exactly the rows of `(A SEMI S) JOIN B`. `None`
/// when it cannot go below `plan`.
fn push_semi_join(plan: &LogicalPlan, semi: &Join) -> Result<Option<LogicalPlan>> {
    let Some(columns) = left_columns(semi) else {
        return Ok(None);
    };
    let place = |input: &Arc<LogicalPlan>| -> Result<LogicalPlan> {
        Ok(match push_semi_join(input, semi)? {
            Some(pushed) => pushed,
            None => LogicalPlan::Join(Join::try_new(
                Arc::clone(input),
                Arc::clone(&semi.right),
                semi.on.clone(),
                semi.filter.clone(),
                JoinType::LeftSemi,
                semi.join_constraint,
                semi.null_equality,
                false,
            )?),
        })
    };
    Ok(match plan {
        LogicalPlan::Projection(p)
            if columns.iter().all(|c| {
                p.expr
                    .iter()
                    .any(|e| matches!(e, Expr::Column(x) if x == c))
            }) =>
        {
            Some(with_inputs(plan, vec![place(&p.input)?])?)
        }
        // A filter stays below the semi join: it is cheaper per row.
        LogicalPlan::Join(j) if j.join_type == JoinType::Inner => {
            if columns.iter().all(|c| j.left.schema().has_column(c)) {
                Some(with_inputs(
                    plan,
                    vec![place(&j.left)?, j.right.as_ref().clone()],
                )?)
            } else if columns.iter().all(|c| j.right.schema().has_column(c)) {
                Some(with_inputs(
                    plan,
                    vec![j.left.as_ref().clone(), place(&j.right)?],
                )?)
            } else {
                None
            }
        }
        _ => None,
    })
}

/// `join` with its `right` (or left) side's aggregate reduced on the first
/// key that has a filtered reducer on the other side; `None` if there is
/// none, or the aggregate is reduced already.
fn reduce_side(join: &Join, right: bool) -> Result<Option<LogicalPlan>> {
    let (agg_side, other) = if right {
        (join.right.as_ref(), join.left.as_ref())
    } else {
        (join.left.as_ref(), join.right.as_ref())
    };
    for (l, r) in &join.on {
        let (agg_key, other_key) = if right { (r, l) } else { (l, r) };
        let (Expr::Column(agg_key), Expr::Column(other_key)) = (agg_key, other_key) else {
            continue;
        };
        let Ok(agg_index) = agg_side.schema().index_of_column(agg_key) else {
            continue;
        };
        let Ok(other_index) = other.schema().index_of_column(other_key) else {
            continue;
        };
        let Some(reducer) = reducer(other, other_index)? else {
            continue;
        };
        let Some(reduced) = with_reduced_aggregate(agg_side, agg_index, &reducer)? else {
            continue;
        };
        let reduced = Arc::new(reduced);
        let mut join = join.clone();
        if right {
            join.right = reduced;
        } else {
            join.left = reduced;
        }
        return Ok(Some(LogicalPlan::Join(join)));
    }
    Ok(None)
}

/// `plan` with the aggregate below output column `index` reading only rows
/// whose grouping column has a value among `reducer`'s (one column).
/// `None` where the aggregate's input is reduced on that column already.
fn with_reduced_aggregate(
    plan: &LogicalPlan,
    index: usize,
    reducer: &LogicalPlan,
) -> Result<Option<LogicalPlan>> {
    let below = match plan {
        LogicalPlan::SubqueryAlias(a) => with_reduced_aggregate(&a.input, index, reducer)?,
        LogicalPlan::Filter(f) => with_reduced_aggregate(&f.input, index, reducer)?,
        LogicalPlan::Projection(p) => match passed_on(p, index) {
            Some(at) => with_reduced_aggregate(&p.input, at, reducer)?,
            None => None,
        },
        LogicalPlan::Aggregate(a) => match a.group_expr.get(index) {
            Some(Expr::Column(group)) => match a.input.schema().index_of_column(group) {
                Ok(at) => semi_join_below(&a.input, at, reducer)?,
                Err(_) => None,
            },
            _ => None,
        },
        _ => None,
    };
    below
        .map(|input| with_inputs(plan, vec![input]))
        .transpose()
}

/// `plan` with its rows restricted to those whose column `index` is among
/// `reducer`'s values: the semi join goes down through projections,
/// filters, aliases and inner joins to the input that produces the column,
/// so that the rows are dropped before any join above them. `None` where a
/// semi join on that column is there already, or the types differ.
fn semi_join_below(
    plan: &LogicalPlan,
    index: usize,
    reducer: &LogicalPlan,
) -> Result<Option<LogicalPlan>> {
    let one_below = |input: &LogicalPlan, at: usize| -> Result<Option<LogicalPlan>> {
        semi_join_below(input, at, reducer)?
            .map(|below| with_inputs(plan, vec![below]))
            .transpose()
    };
    match plan {
        LogicalPlan::SubqueryAlias(a) => return one_below(&a.input, index),
        LogicalPlan::Filter(f) => return one_below(&f.input, index),
        LogicalPlan::Projection(p) => {
            if let Some(at) = passed_on(p, index) {
                return one_below(&p.input, at);
            }
        }
        LogicalPlan::Join(j) if j.join_type == JoinType::Inner => {
            let left_width = j.left.schema().fields().len();
            let (left, right) = if index < left_width {
                match semi_join_below(&j.left, index, reducer)? {
                    Some(l) => (l, j.right.as_ref().clone()),
                    None => return Ok(None),
                }
            } else {
                match semi_join_below(&j.right, index - left_width, reducer)? {
                    Some(r) => (j.left.as_ref().clone(), r),
                    None => return Ok(None),
                }
            };
            return Ok(Some(with_inputs(plan, vec![left, right])?));
        }
        LogicalPlan::Join(j)
            if j.join_type == JoinType::LeftSemi
                && j.on.iter().any(|(l, _)| {
                    matches!(l, Expr::Column(c)
                        if j.left.schema().index_of_column(c).ok() == Some(index))
                }) =>
        {
            // Reduced on this column already (by an earlier pass).
            return Ok(None);
        }
        _ => {}
    }
    let (qualifier, field) = plan.schema().qualified_field(index);
    let column = Column::new(qualifier.cloned(), field.name());
    let (reducer_qualifier, reducer_field) = reducer.schema().qualified_field(0);
    if field.data_type() != reducer_field.data_type() {
        return Ok(None);
    }
    let reducer_column = Column::new(reducer_qualifier.cloned(), reducer_field.name());
    let joined = LogicalPlanBuilder::from(plan.clone())
        .join(
            reducer.clone(),
            JoinType::LeftSemi,
            (vec![column], vec![reducer_column]),
            None,
        )?
        .build()?;
    Ok(Some(joined))
}

/// A plan of one column whose values include every value that output
/// column `index` of `plan` takes: a filtered scan found by tracing the
/// column down through projections, filters, aliases, aggregates (their
/// grouping columns), inner joins and semi joins (which only keep keys
/// that the other side has, so either side's key will do).
fn reducer(plan: &LogicalPlan, index: usize) -> Result<Option<LogicalPlan>> {
    if filtered_scan(plan) {
        // Under a name of its own: the aggregate's input may scan the same
        // table.
        let (qualifier, field) = plan.schema().qualified_field(index);
        let column = Column::new(qualifier.cloned(), field.name());
        return Ok(Some(
            LogicalPlanBuilder::from(plan.clone())
                .project(vec![Expr::Column(column)])?
                .alias(REDUCER)?
                .build()?,
        ));
    }
    match plan {
        LogicalPlan::SubqueryAlias(a) => reducer(&a.input, index),
        LogicalPlan::Filter(f) => reducer(&f.input, index),
        LogicalPlan::Projection(p) => match passed_on(p, index) {
            Some(at) => reducer(&p.input, at),
            None => Ok(None),
        },
        LogicalPlan::Aggregate(a) => match a.group_expr.get(index) {
            Some(Expr::Column(c)) => match a.input.schema().index_of_column(c) {
                Ok(at) => reducer(&a.input, at),
                Err(_) => Ok(None),
            },
            _ => Ok(None),
        },
        LogicalPlan::Join(j)
            if matches!(
                j.join_type,
                JoinType::Inner | JoinType::LeftSemi | JoinType::RightSemi
            ) && j.null_equality == NullEquality::NullEqualsNothing =>
        {
            let left_width = j.left.schema().fields().len();
            // Which side the column is on, and its index there.
            let (on_right, at) = match j.join_type {
                JoinType::Inner if index >= left_width => (true, index - left_width),
                JoinType::RightSemi => (true, index),
                _ => (false, index),
            };
            let (own, other) = if on_right {
                (j.right.as_ref(), j.left.as_ref())
            } else {
                (j.left.as_ref(), j.right.as_ref())
            };
            if let Some(found) = reducer(own, at)? {
                return Ok(Some(found));
            }
            // The other side's key of an equality on this column.
            for (l, r) in &j.on {
                let (mine, theirs) = if on_right { (r, l) } else { (l, r) };
                if let (Expr::Column(mine), Expr::Column(theirs)) = (mine, theirs)
                    && own.schema().index_of_column(mine).ok() == Some(at)
                    && let Ok(there) = other.schema().index_of_column(theirs)
                    && let Some(found) = reducer(other, there)?
                {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Whether `plan` is projections, filters and aliases over one table scan,
/// with a filter somewhere (a `Filter` node or filters in the scan).
fn filtered_scan(plan: &LogicalPlan) -> bool {
    let mut node = plan;
    let mut filtered = false;
    loop {
        match node {
            LogicalPlan::Projection(p) => node = &p.input,
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::Filter(f) => {
                filtered = true;
                node = &f.input;
            }
            LogicalPlan::TableScan(scan) => return filtered || !scan.filters.is_empty(),
            _ => return false,
        }
    }
}

/// The position in `p`'s input of the column that output `index` of `p`
/// passes on unchanged; `None` for a computed output.
fn passed_on(p: &datafusion::logical_expr::Projection, index: usize) -> Option<usize> {
    let source = p.expr.get(index).and_then(bare_column)?;
    p.input.schema().index_of_column(source).ok()
}

/// `plan` over new `inputs`, with its own expressions.
fn with_inputs(plan: &LogicalPlan, inputs: Vec<LogicalPlan>) -> Result<LogicalPlan> {
    plan.with_new_exprs(plan.expressions(), inputs)
}

/// The column an output expression passes on unchanged (through aliases).
fn bare_column(expr: &Expr) -> Option<&Column> {
    match expr {
        Expr::Column(c) => Some(c),
        Expr::Alias(a) => bare_column(&a.expr),
        _ => None,
    }
}
