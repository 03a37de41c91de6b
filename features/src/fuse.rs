//! Fused aggregations: methods that aggregate the same input by the same
//! keys, each perhaps with its own `WHERE`, run as one aggregate pass whose
//! aggregates carry each method's `WHERE` as a `FILTER (WHERE ...)` clause.
//! Each method then reads its own columns of the fused result; a method
//! with a `WHERE` keeps only the keys that had a row passing it (a count
//! with the same filter, above zero), so its key set is its own.
//!
//! A method takes part when its plan is, from the top, projections,
//! aliases and filters (a `HAVING`), then an aggregate, then at most one
//! filter (its `WHERE`) over an input; two methods fuse when the
//! canonical forms (see `share`) of their inputs and of their grouping
//! expressions are equal. `DISTINCT` aggregates, grouping sets and
//! subqueries keep a method out: DataFusion runs a lone `DISTINCT`
//! aggregate as a two-level `GROUP BY`, which a `FILTER` clause would undo.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::{Column, DFSchemaRef, Result};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, lit};

use super::share::{
    ViewPlans, canon_expr_over, canon_of, column_named, describe, has_subquery, replace_columns,
    replace_subtrees,
};

/// The aggregate of one method's plan that fusion can take.
struct Shape<'a> {
    aggregate: &'a Aggregate,
    /// The canonical form of the aggregate node, to find it again.
    text: String,
    /// The `WHERE` between the aggregate and its input.
    filter: Option<&'a Expr>,
    input: &'a LogicalPlan,
    /// Canonical forms of the input and of the grouping expressions.
    key: String,
    has_groups: bool,
}

fn shape<'a>(
    plan: &'a LogicalPlan,
    views: &ViewPlans,
) -> std::result::Result<Shape<'a>, &'static str> {
    let mut node = plan;
    let aggregate = loop {
        match node {
            LogicalPlan::Projection(p) => node = &p.input,
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::Filter(f) => node = &f.input,
            LogicalPlan::Aggregate(a) => break a,
            _ => return Err("no aggregate at its top"),
        }
    };
    let (filter, input) = match aggregate.input.as_ref() {
        LogicalPlan::Filter(f) => (Some(&f.predicate), f.input.as_ref()),
        other => (None, other),
    };
    if let Some(f) = filter
        && has_subquery(f)
    {
        return Err("a subquery in its WHERE");
    }
    for e in &aggregate.aggr_expr {
        match unalias(e) {
            Expr::AggregateFunction(f) if f.params.distinct => {
                return Err("a DISTINCT aggregate");
            }
            Expr::AggregateFunction(_) if !has_subquery(e) => {}
            _ => return Err("an aggregate it cannot fuse"),
        }
    }
    if aggregate
        .group_expr
        .iter()
        .any(|g| matches!(g, Expr::GroupingSet(_)) || has_subquery(g))
    {
        return Err("grouping sets");
    }
    let Some((input_text, outputs)) = canon_of(input, views) else {
        return Err("an input the comparison does not know");
    };
    let groups = aggregate
        .group_expr
        .iter()
        .map(|g| canon_expr_over(g, &aggregate.input, &outputs))
        .collect::<Option<Vec<_>>>()
        .ok_or("grouping expressions the comparison does not know")?;
    let node = LogicalPlan::Aggregate(aggregate.clone());
    let Some((text, _)) = canon_of(&node, views) else {
        return Err("an aggregate the comparison does not know");
    };
    Ok(Shape {
        aggregate,
        text,
        filter,
        input,
        key: format!("[{}]({input_text})", groups.join(", ")),
        has_groups: !aggregate.group_expr.is_empty(),
    })
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

/// Methods whose aggregates run as one pass.
#[derive(Debug, Clone)]
pub(crate) struct FusedGroup {
    /// `fused_1`, ...
    pub name: String,
    /// The name its result is registered under for the build.
    pub table: String,
    /// The methods in it (indexes into the spec's methods), in spec order.
    pub members: Vec<usize>,
    /// `γ[o.o_custkey](orders ⋈ lineitem on ...)`.
    pub description: String,
    key: String,
    views: Arc<ViewPlans>,
}

/// What [`discover`] found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fusion {
    pub groups: Vec<FusedGroup>,
    /// Methods with an aggregate left out, and why.
    pub not_fused: Vec<String>,
}

impl Fusion {
    /// The group method `i` belongs to.
    pub fn group_of(&self, i: usize) -> Option<usize> {
        self.groups.iter().position(|g| g.members.contains(&i))
    }
}

/// Groups of two or more of `plans` (method index, unoptimised plan) that
/// aggregate the same input by the same keys.
pub(crate) fn discover(
    plans: &[(usize, LogicalPlan)],
    method_names: &[String],
    views: &Arc<ViewPlans>,
) -> Fusion {
    let mut by_key: BTreeMap<String, (Vec<usize>, String)> = BTreeMap::new();
    let mut order = Vec::new();
    let mut fusion = Fusion::default();
    for (i, plan) in plans {
        match shape(plan, views) {
            Ok(s) => {
                let entry = by_key.entry(s.key.clone()).or_insert_with(|| {
                    order.push(s.key.clone());
                    let groups: Vec<String> = s
                        .aggregate
                        .group_expr
                        .iter()
                        .map(|g| g.to_string())
                        .collect();
                    (
                        Vec::new(),
                        format!("γ[{}]({})", groups.join(", "), describe(s.input, views)),
                    )
                });
                entry.0.push(*i);
            }
            Err("no aggregate at its top") => {}
            Err(why) => fusion
                .not_fused
                .push(format!("{}: {why}", method_names[*i])),
        }
    }
    for key in order {
        let (members, description) = by_key.remove(&key).expect("a key seen");
        if members.len() < 2 {
            continue;
        }
        let index = fusion.groups.len() + 1;
        fusion.groups.push(FusedGroup {
            name: format!("fused_{index}"),
            table: format!("__fairway_fused_{index}"),
            members,
            description,
            key,
            views: Arc::clone(views),
        });
    }
    fusion
}

/// How one member reads the fused result.
#[derive(Debug, Clone)]
pub(crate) struct MemberMap {
    pub method: usize,
    /// The canonical form of its aggregate node.
    text: String,
    /// Per field of its aggregate's schema: the fused column.
    fields: Vec<String>,
    /// The fused column counting its rows that pass its `WHERE`, when it
    /// has one and groups.
    rows: Option<String>,
    views: Arc<ViewPlans>,
}

/// `e` over `from` (a member's input) as the same expression over `to` (the
/// first member's input, of the same canonical form): columns moved by
/// position.
fn translate(e: &Expr, from: &DFSchemaRef, to: &DFSchemaRef) -> Option<Expr> {
    replace_columns(e.clone(), &|c| {
        from.maybe_index_of_column(c)
            .map(|i| Expr::Column(Column::from(to.qualified_field(i))))
    })
}

/// The aggregate `e` (no alias) with `filter` added to its own `FILTER`.
fn filtered(e: Expr, filter: Option<&Expr>) -> Option<Expr> {
    let Expr::AggregateFunction(AggregateFunction { func, mut params }) = e else {
        return None;
    };
    if let Some(f) = filter {
        params.filter = Some(Box::new(match params.filter.take() {
            Some(own) => f.clone().and(*own),
            None => f.clone(),
        }));
    }
    Some(Expr::AggregateFunction(AggregateFunction { func, params }))
}

/// The fused aggregate of `group` over its first member's input, from the
/// members' `plans` (planned now), with how each member reads it; `None`
/// when a plan no longer has the group's shape.
pub(crate) fn fused_plan(
    plans: &[(usize, &LogicalPlan)],
    group: &FusedGroup,
) -> Result<Option<(LogicalPlan, Vec<MemberMap>)>> {
    let mut shapes = Vec::with_capacity(plans.len());
    for (i, plan) in plans {
        match shape(plan, &group.views) {
            Ok(s) if s.key == group.key => shapes.push((*i, s)),
            _ => return Ok(None),
        }
    }
    let Some((_, first)) = shapes.first() else {
        return Ok(None);
    };
    let to = first.input.schema();
    let groups: Vec<Expr> = first
        .aggregate
        .group_expr
        .iter()
        .enumerate()
        .map(|(k, g)| g.clone().alias(format!("g{k}")))
        .collect();
    let mut aggregates: Vec<Expr> = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |e: Expr, aggregates: &mut Vec<Expr>| -> String {
        let text = e.to_string();
        names
            .entry(text)
            .or_insert_with(|| {
                let name = format!("a{}", aggregates.len());
                aggregates.push(e.alias(name.clone()));
                name
            })
            .clone()
    };
    let mut maps = Vec::with_capacity(shapes.len());
    for (i, s) in &shapes {
        let from = s.input.schema();
        let filter = match s.filter {
            None => None,
            Some(f) => match translate(f, from, to) {
                Some(f) => Some(f),
                None => return Ok(None),
            },
        };
        let mut fields: Vec<String> = (0..s.aggregate.group_expr.len())
            .map(|k| format!("g{k}"))
            .collect();
        for e in &s.aggregate.aggr_expr {
            let Some(e) =
                translate(unalias(e), from, to).and_then(|e| filtered(e, filter.as_ref()))
            else {
                return Ok(None);
            };
            fields.push(add(e, &mut aggregates));
        }
        let rows = match (&filter, s.has_groups) {
            (Some(f), true) => {
                let count = datafusion::functions_aggregate::expr_fn::count(lit(1i64));
                let count = filtered(count, Some(f)).expect("count is an aggregate");
                Some(add(count, &mut aggregates))
            }
            _ => None,
        };
        maps.push(MemberMap {
            method: *i,
            text: s.text.clone(),
            fields,
            rows,
            views: Arc::clone(&group.views),
        });
    }
    let plan = LogicalPlanBuilder::from(first.input.clone())
        .aggregate(groups, aggregates)?
        .build()?;
    Ok(Some((plan, maps)))
}

/// `plan` (member `map.method`'s) with its aggregate replaced by its
/// columns of the fused result (`scan`, a scan of the registered table),
/// keeping only its own keys. `false` when the plan no longer holds it.
pub(crate) fn rewrite(
    plan: LogicalPlan,
    map: &MemberMap,
    scan: &LogicalPlan,
) -> Result<(LogicalPlan, bool)> {
    replace_subtrees(plan, &mut |node| {
        if !matches!(node, LogicalPlan::Aggregate(_)) {
            return Ok(None);
        }
        match canon_of(node, &map.views) {
            Some((text, _)) if text == map.text => {}
            _ => return Ok(None),
        }
        let table = "the fused result";
        let mut builder = LogicalPlanBuilder::from(scan.clone());
        if let Some(rows) = &map.rows {
            builder = builder.filter(column_named(scan, rows, table)?.gt(lit(0i64)))?;
        }
        let exprs = node
            .schema()
            .iter()
            .zip(&map.fields)
            .map(|((q, field), name)| {
                Ok(column_named(scan, name, table)?.alias_qualified(q.cloned(), field.name()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(builder.project(exprs)?.build()?))
    })
}
