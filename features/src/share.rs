//! Automatic shared subplans: joins that several methods compute the same
//! way are found in their (unoptimised) logical plans, computed once per
//! build as an implicit shared view, and read by those methods instead.
//!
//! Two subtrees are *the same* when their canonical forms are equal: table
//! scans by table name (a declared view is a scan of its name too, so the
//! form does not change when the view is materialised), aliases dropped,
//! columns named by the scan they come from (its position among the
//! subtree's scans) and their name, conjunctions and equalities in a fixed
//! order. Only joins (and what lies below them) are shared: a scan alone is
//! cheaper to read again than to keep.
//!
//! The shared table holds only the columns some reader uses (matched by
//! name, a superset); each reader's subtree is replaced by a projection of
//! the shared table that gives back the qualified names its plan refers to.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};

/// A subtree's canonical form.
struct Canon {
    text: String,
    /// Per field of the subtree's schema, in order: its canonical id.
    outputs: Vec<String>,
}

/// The unoptimised plans of the spec's views, by the (lower-case) name
/// they are registered under. The planner inlines a view into the plans
/// that read it (a `SubqueryAlias` of its name over its plan); the
/// canonical form of such a subtree is a scan of the view, as it is once
/// the view is materialised and read as a table.
pub(crate) type ViewPlans = BTreeMap<String, LogicalPlan>;

/// Numbers the scans of one subtree, left to right.
struct Scans<'a> {
    tables: Vec<String>,
    views: &'a ViewPlans,
}

impl<'a> Scans<'a> {
    fn new(views: &'a ViewPlans) -> Self {
        Scans {
            tables: Vec::new(),
            views,
        }
    }

    /// The view `alias` is an inlined copy of, if any.
    fn view_of(&self, alias: &datafusion::logical_expr::SubqueryAlias) -> Option<String> {
        let name = alias.alias.table().to_ascii_lowercase();
        let plan = self.views.get(&name)?;
        if alias.input.as_ref() == plan {
            return Some(name);
        }
        // Planned again: the same canonical form.
        let form = |p: &LogicalPlan| canon(p, &mut Scans::new(self.views)).map(|c| c.text);
        match (form(&alias.input), form(plan)) {
            (Some(a), Some(b)) if a == b => Some(name),
            _ => None,
        }
    }
}

/// The canonical form of a scan of `table` with `fields`, the next leaf of
/// `scans`.
fn scan_form(
    table: &str,
    fields: &datafusion::arrow::datatypes::Fields,
    scans: &mut Scans<'_>,
) -> (String, Vec<String>) {
    let leaf = scans.tables.len();
    scans.tables.push(table.to_string());
    let outputs = fields
        .iter()
        .map(|f| format!("#{leaf}.{}", f.name()))
        .collect();
    (format!("scan({table}"), outputs)
}

/// The canonical form of `plan`, or `None` when it holds a node or an
/// expression the comparison does not know (sorts, limits, windows,
/// unions, subqueries, ...).
fn canon(plan: &LogicalPlan, scans: &mut Scans<'_>) -> Option<Canon> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let (mut text, outputs) = scan_form(
                &scan.table_name.to_string(),
                scan.projected_schema.fields(),
                scans,
            );
            let filters = conjunction(scan.filters.iter(), &|c: &Column| {
                lookup(&scan.projected_schema, &outputs, c)
            })?;
            if let Some(p) = &scan.projection {
                let _ = write!(text, ", columns {p:?}");
            }
            if !filters.is_empty() {
                let _ = write!(text, ", filter {filters}");
            }
            if let Some(n) = scan.fetch {
                let _ = write!(text, ", fetch {n}");
            }
            text.push(')');
            Some(Canon { text, outputs })
        }
        LogicalPlan::SubqueryAlias(alias) => match scans.view_of(alias) {
            Some(view) => {
                let (mut text, outputs) = scan_form(&view, alias.schema.fields(), scans);
                text.push(')');
                Some(Canon { text, outputs })
            }
            None => canon(&alias.input, scans),
        },
        LogicalPlan::Projection(p) => {
            let input = canon(&p.input, scans)?;
            let schema = p.input.schema();
            let exprs = p
                .expr
                .iter()
                .map(|e| canon_expr(e, &|c| lookup(schema, &input.outputs, c)))
                .collect::<Option<Vec<_>>>()?;
            Some(Canon {
                text: format!("project[{}]({})", exprs.join(", "), input.text),
                outputs: exprs,
            })
        }
        LogicalPlan::Filter(f) => {
            let input = canon(&f.input, scans)?;
            let schema = f.input.schema();
            let predicate = conjunction(split_conjunction(&f.predicate).into_iter(), &|c| {
                lookup(schema, &input.outputs, c)
            })?;
            Some(Canon {
                text: format!("filter[{predicate}]({})", input.text),
                outputs: input.outputs,
            })
        }
        LogicalPlan::Join(j) => {
            let left = canon(&j.left, scans)?;
            let right = canon(&j.right, scans)?;
            let (ls, rs) = (j.left.schema(), j.right.schema());
            let resolve =
                |c: &Column| lookup(ls, &left.outputs, c).or_else(|| lookup(rs, &right.outputs, c));
            let mut on =
                j.on.iter()
                    .map(|(l, r)| {
                        let mut pair = [canon_expr(l, &resolve)?, canon_expr(r, &resolve)?];
                        pair.sort();
                        Some(pair.join(" = "))
                    })
                    .collect::<Option<Vec<_>>>()?;
            on.sort();
            let filter = match &j.filter {
                Some(f) => conjunction(split_conjunction(f).into_iter(), &resolve)?,
                None => String::new(),
            };
            let mut outputs = Vec::with_capacity(j.schema.fields().len());
            for (q, field) in j.schema.iter() {
                let id = match (
                    ls.index_of_column_by_name(q, field.name()),
                    rs.index_of_column_by_name(q, field.name()),
                ) {
                    (Some(i), _) => left.outputs[i].clone(),
                    (None, Some(i)) => right.outputs[i].clone(),
                    // A mark join's flag column.
                    (None, None) => format!("mark:{}", field.name()),
                };
                outputs.push(id);
            }
            Some(Canon {
                text: format!(
                    "join[{:?}, {:?}, {:?}, on {}, filter {filter}]({})({})",
                    j.join_type,
                    j.join_constraint,
                    j.null_equality,
                    on.join(", "),
                    left.text,
                    right.text
                ),
                outputs,
            })
        }
        LogicalPlan::Aggregate(a) => {
            let input = canon(&a.input, scans)?;
            let schema = a.input.schema();
            let resolve = |c: &Column| lookup(schema, &input.outputs, c);
            let groups = a
                .group_expr
                .iter()
                .map(|e| canon_expr(e, &resolve))
                .collect::<Option<Vec<_>>>()?;
            let aggregates = a
                .aggr_expr
                .iter()
                .map(|e| canon_expr(e, &resolve))
                .collect::<Option<Vec<_>>>()?;
            let outputs: Vec<String> = groups.iter().chain(&aggregates).cloned().collect();
            // Grouping sets add a grouping id column.
            if outputs.len() != a.schema.fields().len() {
                return None;
            }
            Some(Canon {
                text: format!(
                    "aggregate[{}][{}]({})",
                    groups.join(", "),
                    aggregates.join(", "),
                    input.text
                ),
                outputs,
            })
        }
        _ => None,
    }
}

/// The canonical form of `plan` as text, with the canonical ids of its
/// fields; `None` where [`canon`] gives none.
pub(crate) fn canon_of(plan: &LogicalPlan, views: &ViewPlans) -> Option<(String, Vec<String>)> {
    let form = canon(plan, &mut Scans::new(views))?;
    Some((form.text, form.outputs))
}

/// `e` (over a node whose input is `input`, with canonical field ids
/// `outputs`) in canonical form.
pub(crate) fn canon_expr_over(e: &Expr, input: &LogicalPlan, outputs: &[String]) -> Option<String> {
    canon_expr(e, &|c| lookup(input.schema(), outputs, c))
}

/// The canonical id of column `c` of a node whose input has `schema` and
/// canonical `outputs`.
fn lookup(schema: &DFSchemaRef, outputs: &[String], c: &Column) -> Option<String> {
    schema.maybe_index_of_column(c).map(|i| outputs[i].clone())
}

/// `e` as text with every column named by its canonical id; `None` for
/// subqueries, outer references and placeholders.
fn canon_expr(e: &Expr, resolve: &dyn Fn(&Column) -> Option<String>) -> Option<String> {
    if has_subquery(e) {
        return None;
    }
    let e = replace_columns(e.clone().unalias_nested().data, &|c| {
        resolve(c).map(|id| Expr::Column(Column::new_unqualified(id)))
    })?;
    Some(e.to_string())
}

/// Whether `e` holds a subquery, an outer reference or a placeholder: what
/// no canonical form can compare, and no fused aggregate can take.
pub(crate) fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.apply(|x| {
        if matches!(
            x,
            Expr::ScalarSubquery(_)
                | Expr::InSubquery(_)
                | Expr::Exists(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
        ) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// `e` with every column replaced by what `replace` gives for it; `None`
/// if it gives nothing for one.
pub(crate) fn replace_columns(e: Expr, replace: &dyn Fn(&Column) -> Option<Expr>) -> Option<Expr> {
    let mut replaced = true;
    let e = e
        .transform(|x| match x {
            Expr::Column(c) => match replace(&c) {
                Some(new) => Ok(Transformed::yes(new)),
                None => {
                    replaced = false;
                    Ok(Transformed::new(
                        Expr::Column(c),
                        false,
                        TreeNodeRecursion::Stop,
                    ))
                }
            },
            other => Ok(Transformed::no(other)),
        })
        .ok()?
        .data;
    replaced.then_some(e)
}

/// Conjuncts in canonical form, sorted, an equality's sides sorted too.
fn conjunction<'a>(
    conjuncts: impl Iterator<Item = &'a Expr>,
    resolve: &dyn Fn(&Column) -> Option<String>,
) -> Option<String> {
    let mut parts = conjuncts
        .map(|e| match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                let mut sides = [canon_expr(left, resolve)?, canon_expr(right, resolve)?];
                sides.sort();
                Some(sides.join(" = "))
            }
            other => canon_expr(other, resolve),
        })
        .collect::<Option<Vec<_>>>()?;
    parts.sort();
    Some(parts.join(" AND "))
}

/// A join subtree of one method's plan, in pre-order positions.
struct Occurrence {
    method: usize,
    start: usize,
    end: usize,
    /// Canonical ids of the subtree's fields that the rest of the method
    /// may read.
    needed: BTreeSet<String>,
}

/// A join found in two or more methods, computed once per build.
#[derive(Debug, Clone)]
pub(crate) struct SharedSubplan {
    /// `shared_1`, `shared_2`, ...: what explain and the report call it.
    pub name: String,
    /// The name it is registered under for the build.
    pub table: String,
    /// Its canonical form, by which readers find it in their plans.
    text: String,
    /// The methods that read it (indexes into the spec's methods).
    pub readers: Vec<usize>,
    /// Per column of the shared table: canonical id, column name.
    columns: Vec<(String, String)>,
    /// `orders ⋈ lineitem on l.l_orderkey = o.o_orderkey`.
    pub description: String,
    views: Arc<ViewPlans>,
}

impl SharedSubplan {
    /// The shared table's columns, as the first reader names them.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|(_, c)| c.as_str()).collect()
    }
}

/// What [`discover`] found: the subplans to share, and why the other joins
/// are not shared.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sharing {
    pub shared: Vec<SharedSubplan>,
    pub not_shared: Vec<String>,
}

/// The join subtrees of `plan`: (pre-order start, end, canonical form).
fn joins(plan: &LogicalPlan, views: &ViewPlans) -> Vec<(usize, usize, Canon, DFSchemaRef)> {
    let mut nodes: Vec<&LogicalPlan> = Vec::new();
    let _ = plan.apply(|n| {
        nodes.push(n);
        Ok(TreeNodeRecursion::Continue)
    });
    let mut found = Vec::new();
    for (start, node) in nodes.iter().enumerate() {
        if !matches!(node, LogicalPlan::Join(_)) {
            continue;
        }
        let Some(form) = canon(node, &mut Scans::new(views)) else {
            continue;
        };
        let mut size = 0;
        let _ = node.apply(|_| {
            size += 1;
            Ok(TreeNodeRecursion::Continue)
        });
        found.push((start, start + size, form, Arc::clone(node.schema())));
    }
    found
}

/// Column names that the nodes of `plan` outside pre-order positions
/// `start..end` refer to (in expressions, subqueries included), and the
/// names of the plan's output: a superset of what the rest of the plan
/// reads from that subtree.
fn names_outside(plan: &LogicalPlan, start: usize, end: usize) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut index = 0;
    let _ = plan.apply(|node| {
        if !(start..end).contains(&index) {
            for e in node.expressions() {
                names_in_expr(&e, &mut names);
            }
        }
        index += 1;
        Ok(TreeNodeRecursion::Continue)
    });
    names
}

fn names_in_expr(e: &Expr, names: &mut BTreeSet<String>) {
    let _ = e.apply(|x| {
        match x {
            Expr::Column(c) => {
                names.insert(c.name.clone());
            }
            Expr::OuterReferenceColumn(_, c) => {
                names.insert(c.name.clone());
            }
            Expr::ScalarSubquery(s) => names_in_plan(&s.subquery, names),
            Expr::InSubquery(s) => names_in_plan(&s.subquery.subquery, names),
            Expr::Exists(s) => names_in_plan(&s.subquery.subquery, names),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

fn names_in_plan(plan: &LogicalPlan, names: &mut BTreeSet<String>) {
    let _ = plan.apply_with_subqueries(|node| {
        for e in node.expressions() {
            names_in_expr(&e, names);
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// A short text of a join subtree: its tables and join conditions, with
/// the names the plan uses.
pub(crate) fn describe(plan: &LogicalPlan, views: &ViewPlans) -> String {
    let describe = |p: &LogicalPlan| describe(p, views);
    match plan {
        LogicalPlan::TableScan(scan) => scan.table_name.to_string(),
        LogicalPlan::SubqueryAlias(a) => match Scans::new(views).view_of(a) {
            Some(view) => view,
            None => describe(&a.input),
        },
        LogicalPlan::Projection(p) => describe(&p.input),
        LogicalPlan::Filter(f) => format!("σ[{}]({})", f.predicate, describe(&f.input)),
        LogicalPlan::Aggregate(a) => format!("γ({})", describe(&a.input)),
        LogicalPlan::Join(j) => {
            let mut conditions: Vec<String> =
                j.on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
            if let Some(f) = &j.filter {
                conditions.push(f.to_string());
            }
            let side = |p: &LogicalPlan| {
                let text = describe(p);
                if matches!(unwrap_alias(p), LogicalPlan::Join(_)) {
                    format!("({text})")
                } else {
                    text
                }
            };
            let kind = match j.join_type {
                datafusion::logical_expr::JoinType::Inner => "⋈".to_string(),
                other => format!("{other} JOIN"),
            };
            format!(
                "{} {kind} {} on {}",
                side(&j.left),
                side(&j.right),
                conditions.join(" AND ")
            )
        }
        other => other.display().to_string(),
    }
}

fn unwrap_alias(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::SubqueryAlias(a) => unwrap_alias(&a.input),
        other => other,
    }
}

/// The joins that two or more of `plans` (method index, its unoptimised
/// plan) compute the same way, widest first; of two that overlap in some
/// method, the one more methods read (else the larger) is shared.
pub(crate) fn discover(
    plans: &[(usize, LogicalPlan)],
    method_names: &[String],
    views: &Arc<ViewPlans>,
) -> Sharing {
    // Canonical form -> its occurrences, in first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut found: BTreeMap<String, (Vec<Occurrence>, String, Vec<String>)> = BTreeMap::new();
    for (method, plan) in plans {
        for (start, end, form, schema) in joins(plan, views) {
            let names = names_outside(plan, start, end);
            let needed: BTreeSet<String> = schema
                .fields()
                .iter()
                .zip(&form.outputs)
                .filter(|(f, _)| names.contains(f.name()))
                .map(|(_, id)| id.clone())
                .collect();
            let entry = found.entry(form.text.clone()).or_insert_with(|| {
                order.push(form.text.clone());
                let node = node_at(plan, start);
                (Vec::new(), describe(&node, views), form.outputs.clone())
            });
            entry.0.push(Occurrence {
                method: *method,
                start,
                end,
                needed,
            });
        }
    }
    let readers_of = |occurrences: &[Occurrence]| -> Vec<usize> {
        let set: BTreeSet<usize> = occurrences.iter().map(|o| o.method).collect();
        set.into_iter().collect()
    };
    let mut candidates: Vec<&String> = order.iter().collect();
    candidates.sort_by_key(|text| {
        let readers = readers_of(&found[*text].0).len();
        (std::cmp::Reverse(readers), std::cmp::Reverse(text.len()))
    });
    let mut sharing = Sharing::default();
    let mut taken: Vec<(&String, usize)> = Vec::new();
    let name_list = |readers: &[usize]| -> String {
        readers
            .iter()
            .map(|&i| method_names[i].as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for text in candidates {
        let (occurrences, description, _) = &found[text];
        let readers = readers_of(occurrences);
        if readers.len() < 2 {
            sharing.not_shared.push(format!(
                "{description}: read by {} only",
                name_list(&readers)
            ));
            continue;
        }
        let overlapping = taken.iter().find(|(other, _)| {
            found[*other].0.iter().any(|a| {
                occurrences
                    .iter()
                    .any(|b| a.method == b.method && a.start < b.end && b.start < a.end)
            })
        });
        if let Some((_, k)) = overlapping {
            sharing.not_shared.push(format!(
                "{description}: read by {} methods ({}), but it overlaps {} in a plan, \
                 which is read by more methods or is larger",
                readers.len(),
                name_list(&readers),
                sharing.shared[*k].name
            ));
            continue;
        }
        let needed: BTreeSet<&String> = occurrences.iter().flat_map(|o| &o.needed).collect();
        // Column names as the first reader's plan has them, made unique.
        let (_, _, outputs) = &found[text];
        let first = &plans
            .iter()
            .find(|(m, _)| *m == occurrences[0].method)
            .expect("a method of the plans")
            .1;
        let node = node_at(first, occurrences[0].start);
        let mut columns: Vec<(String, String)> = Vec::new();
        let mut used: BTreeSet<String> = BTreeSet::new();
        for (field, id) in node.schema().fields().iter().zip(outputs) {
            if !needed.contains(id) || columns.iter().any(|(i, _)| i == id) {
                continue;
            }
            let mut name = field.name().clone();
            let mut k = 2;
            while used.contains(&name) {
                name = format!("{}_{k}", field.name());
                k += 1;
            }
            used.insert(name.clone());
            columns.push((id.clone(), name));
        }
        let index = sharing.shared.len() + 1;
        taken.push((text, sharing.shared.len()));
        sharing.shared.push(SharedSubplan {
            name: format!("shared_{index}"),
            table: format!("__fairway_shared_{index}"),
            text: text.clone(),
            readers,
            columns,
            description: description.clone(),
            views: Arc::clone(views),
        });
    }
    sharing
}

/// The node at pre-order position `index` of `plan`.
fn node_at(plan: &LogicalPlan, index: usize) -> LogicalPlan {
    let mut i = 0;
    let mut node = None;
    let _ = plan.apply(|n| {
        if i == index {
            node = Some(n.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        i += 1;
        Ok(TreeNodeRecursion::Continue)
    });
    node.expect("a position inside the plan")
}

/// The plan that computes `shared` from a reader's plan: its subtree with
/// the shared table's columns; `None` if the plan no longer holds it.
pub(crate) fn shared_plan(
    reader: &LogicalPlan,
    shared: &SharedSubplan,
) -> datafusion::common::Result<Option<LogicalPlan>> {
    let Some((start, _, form, _)) = joins(reader, &shared.views)
        .into_iter()
        .find(|(_, _, form, _)| form.text == shared.text)
    else {
        return Ok(None);
    };
    let node = node_at(reader, start);
    let schema = Arc::clone(node.schema());
    let mut exprs = Vec::with_capacity(shared.columns.len());
    for (id, name) in &shared.columns {
        let Some(i) = form.outputs.iter().position(|o| o == id) else {
            return Ok(None);
        };
        let (q, field) = schema.qualified_field(i);
        exprs.push(Expr::Column(Column::from((q, field))).alias(name));
    }
    let plan = datafusion::logical_expr::LogicalPlanBuilder::from(node)
        .project(exprs)?
        .build()?;
    Ok(Some(plan))
}

/// `plan` with every subtree that `shared` (each with the unoptimised plan
/// of a scan of its registered table) computes replaced by that scan under
/// the names the plan uses. Returns the plan and the names of the shared
/// subplans it now reads.
pub(crate) fn rewrite(
    plan: LogicalPlan,
    shared: &[(&SharedSubplan, LogicalPlan)],
) -> datafusion::common::Result<(LogicalPlan, Vec<String>)> {
    let Some((first, _)) = shared.first() else {
        return Ok((plan, Vec::new()));
    };
    let views = &first.views;
    let mut used = Vec::new();
    let (plan, _) = replace_subtrees(plan, &mut |node| {
        if !matches!(node, LogicalPlan::Join(_)) {
            return Ok(None);
        }
        let Some(form) = canon(node, &mut Scans::new(views)) else {
            return Ok(None);
        };
        let Some((s, scan)) = shared.iter().find(|(s, _)| s.text == form.text) else {
            return Ok(None);
        };
        let mut exprs = Vec::new();
        for ((q, field), id) in node.schema().iter().zip(&form.outputs) {
            if let Some((_, name)) = s.columns.iter().find(|(i, _)| i == id) {
                let column = column_named(scan, name, &s.table)?;
                exprs.push(column.alias_qualified(q.cloned(), field.name()));
            }
        }
        used.push(s.name.clone());
        let replacement = datafusion::logical_expr::LogicalPlanBuilder::from(scan.clone())
            .project(exprs)?
            .build()?;
        Ok(Some(replacement))
    })?;
    Ok((plan, used))
}

/// `plan` with each node that `replace` gives a replacement for replaced
/// (what lies below it is not visited), the nodes above deriving their
/// schemas from it again. Returns the plan and whether it changed.
pub(crate) fn replace_subtrees(
    plan: LogicalPlan,
    replace: &mut dyn FnMut(&LogicalPlan) -> datafusion::common::Result<Option<LogicalPlan>>,
) -> datafusion::common::Result<(LogicalPlan, bool)> {
    let replaced = plan.transform_down(|node| match replace(&node)? {
        Some(new) => Ok(Transformed::new(new, true, TreeNodeRecursion::Jump)),
        None => Ok(Transformed::no(node)),
    })?;
    if !replaced.transformed {
        return Ok((replaced.data, false));
    }
    let plan = replaced
        .data
        .transform_up(|node| node.recompute_schema().map(Transformed::yes))?
        .data;
    Ok((plan, true))
}

/// Column `name` of `scan` (a scan of the registered table `table`).
pub(crate) fn column_named(
    scan: &LogicalPlan,
    name: &str,
    table: &str,
) -> datafusion::common::Result<Expr> {
    let schema = scan.schema();
    let i = schema.index_of_column_by_name(None, name).ok_or_else(|| {
        datafusion::error::DataFusionError::Internal(format!("{table} has no column {name}"))
    })?;
    Ok(Expr::Column(Column::from(schema.qualified_field(i))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{DataFrame, SessionContext};

    /// `orders(o_orderkey, o_custkey)`, `lines(l_orderkey, l_mode, l_qty)`,
    /// `parts(p_key, p_brand)` with a few rows each.
    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        let table = |fields: Vec<(&str, DataType)>,
                     columns: Vec<Arc<dyn datafusion::arrow::array::Array>>| {
            let schema = Arc::new(Schema::new(
                fields
                    .into_iter()
                    .map(|(n, t)| Field::new(n, t, true))
                    .collect::<Vec<_>>(),
            ));
            let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
        };
        let ints = |v: &[i64]| Arc::new(Int64Array::from(v.to_vec())) as _;
        let strs = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as _;
        ctx.register_table(
            "orders",
            table(
                vec![
                    ("o_orderkey", DataType::Int64),
                    ("o_custkey", DataType::Int64),
                ],
                vec![ints(&[1, 2, 3, 4]), ints(&[10, 10, 20, 30])],
            ),
        )
        .unwrap();
        ctx.register_table(
            "lines",
            table(
                vec![
                    ("l_orderkey", DataType::Int64),
                    ("l_mode", DataType::Utf8),
                    ("l_qty", DataType::Int64),
                ],
                vec![
                    ints(&[1, 1, 2, 3, 3, 5]),
                    strs(&["AIR", "RAIL", "AIR", "SHIP", "AIR", "AIR"]),
                    ints(&[5, 7, 1, 2, 9, 4]),
                ],
            ),
        )
        .unwrap();
        ctx.register_table(
            "parts",
            table(
                vec![("p_key", DataType::Int64), ("p_brand", DataType::Utf8)],
                vec![ints(&[5, 7, 1]), strs(&["a", "b", "c"])],
            ),
        )
        .unwrap();
        ctx
    }

    async fn plans(ctx: &SessionContext, sql: &[&str]) -> Vec<(usize, LogicalPlan)> {
        let mut out = Vec::new();
        for (i, q) in sql.iter().enumerate() {
            out.push((i, ctx.sql(q).await.unwrap().into_unoptimized_plan()));
        }
        out
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    async fn sorted(df: DataFrame) -> Vec<String> {
        let batches = df.collect().await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }

    #[tokio::test]
    async fn aliases_and_equality_order_do_not_matter_but_conditions_do() {
        let ctx = context();
        let sql = [
            "select o.o_custkey, sum(l.l_qty) from orders o join lines l on o.o_orderkey = l.l_orderkey \
             where l.l_mode = 'AIR' group by o.o_custkey",
            "select x.o_custkey, count(*) from orders x join lines y on y.l_orderkey = x.o_orderkey \
             group by x.o_custkey",
            "select o_custkey, max(l_qty) from orders join lines on l_orderkey = o_orderkey \
             and l_qty > 3 group by o_custkey",
            // The same tables the other way round: another plan.
            "select o.o_custkey, min(l.l_qty) from lines l join orders o on o.o_orderkey = l.l_orderkey \
             group by o.o_custkey",
        ];
        let sharing = discover(&plans(&ctx, &sql).await, &names(4), &Arc::default());
        assert_eq!(sharing.shared.len(), 1, "{sharing:?}");
        let s = &sharing.shared[0];
        assert_eq!(s.readers, [0, 1]);
        assert_eq!(s.column_names(), ["o_custkey", "l_mode", "l_qty"]);
        assert_eq!(sharing.not_shared.len(), 2, "{sharing:?}");
        assert!(
            sharing
                .not_shared
                .iter()
                .any(|n| n.ends_with("read by m2 only"))
        );
        assert!(
            sharing
                .not_shared
                .iter()
                .any(|n| n.ends_with("read by m3 only"))
        );
    }

    #[tokio::test]
    async fn of_two_nested_joins_the_one_more_methods_read_is_shared() {
        let ctx = context();
        let sql = [
            "select o.o_custkey, count(distinct p.p_brand) from orders o \
             join lines l on l.l_orderkey = o.o_orderkey join parts p on p.p_key = l.l_qty \
             group by o.o_custkey",
            "select o.o_custkey, max(p.p_brand) from orders o \
             join lines l on l.l_orderkey = o.o_orderkey join parts p on p.p_key = l.l_qty \
             group by o.o_custkey",
            "select o.o_custkey, sum(l.l_qty) from orders o join lines l on l.l_orderkey = o.o_orderkey \
             group by o.o_custkey",
        ];
        let sharing = discover(&plans(&ctx, &sql).await, &names(3), &Arc::default());
        assert_eq!(sharing.shared.len(), 1, "{sharing:?}");
        assert_eq!(sharing.shared[0].readers, [0, 1, 2]);
        assert!(
            sharing.shared[0]
                .description
                .starts_with("orders ⋈ lines on "),
            "{}",
            sharing.shared[0].description
        );
        assert_eq!(sharing.not_shared.len(), 1, "{sharing:?}");
        assert!(
            sharing.not_shared[0].contains("overlaps shared_1"),
            "{sharing:?}"
        );
    }

    #[tokio::test]
    async fn scans_of_one_table_in_a_self_join_are_told_apart() {
        let ctx = context();
        let sql = [
            "select a.o_custkey, count(*) from orders a join orders b on a.o_custkey = b.o_orderkey \
             group by a.o_custkey",
            "select a.o_custkey, count(*) from orders a join orders b on a.o_orderkey = b.o_custkey \
             group by a.o_custkey",
        ];
        let sharing = discover(&plans(&ctx, &sql).await, &names(2), &Arc::default());
        assert!(sharing.shared.is_empty(), "{sharing:?}");
    }

    /// Every reader, rewritten over the materialised shared table, returns
    /// what its own plan returns in plain DataFusion.
    #[tokio::test]
    async fn rewritten_readers_return_what_their_own_plans_return() {
        let ctx = context();
        let sql = [
            "select o.o_custkey, sum(l.l_qty) as q, count(*) as n from orders o \
             join lines l on o.o_orderkey = l.l_orderkey where l.l_mode = 'AIR' group by o.o_custkey",
            "select x.o_custkey, max(y.l_mode) as m, max(p.p_brand) as b from orders x \
             join lines y on y.l_orderkey = x.o_orderkey left join parts p on p.p_key = y.l_qty \
             group by x.o_custkey",
            "select l.l_orderkey, l.l_qty, o.o_custkey from orders o join lines l \
             on o.o_orderkey = l.l_orderkey",
        ];
        let plans = plans(&ctx, &sql).await;
        let sharing = discover(&plans, &names(3), &Arc::default());
        assert_eq!(sharing.shared.len(), 1, "{sharing:?}");
        let s = &sharing.shared[0];
        assert_eq!(s.readers, [0, 1, 2]);
        let plan = shared_plan(&plans[0].1, s).unwrap().unwrap();
        let batches = DataFrame::new(ctx.state(), plan).collect().await.unwrap();
        let schema = batches[0].schema();
        ctx.register_table(
            s.table.as_str(),
            Arc::new(MemTable::try_new(schema, vec![batches]).unwrap()),
        )
        .unwrap();
        let scan = ctx
            .table(s.table.as_str())
            .await
            .unwrap()
            .into_unoptimized_plan();
        for (i, plan) in &plans {
            let (rewritten, used) = rewrite(plan.clone(), &[(s, scan.clone())]).unwrap();
            assert_eq!(used, ["shared_1"], "query {i}");
            let text = rewritten.display_indent().to_string();
            assert!(
                !text.contains("Join: Using") && text.contains("__fairway_shared_1"),
                "{text}"
            );
            let expected = sorted(DataFrame::new(ctx.state(), plan.clone())).await;
            let actual = sorted(DataFrame::new(ctx.state(), rewritten)).await;
            assert_eq!(actual, expected, "query {i}");
            assert!(expected.len() > 4, "query {i} returns rows: {expected:?}");
        }
    }
}
