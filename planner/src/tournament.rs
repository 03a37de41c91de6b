//! The tournament join rule: chains of joins on one common key become
//! balanced trees.
//!
//! A left-deep chain `((f1 ⋈ f2) ⋈ f3) ⋈ f4 ...` makes every join wait for
//! the one before and drags an ever wider intermediate result through every
//! step. Joining neighbours pairwise, level by level, like a tournament
//! bracket (`[f1..f8] -> [f12, f34, f56, f78] -> [f1234, f5678] -> f1..8`;
//! with an odd count the last input moves up alone) gives a tree of depth
//! `ceil(log2 k)` whose sibling joins are independent stages.
//!
//! [`TournamentJoins`] rewrites three shapes, with single- or multi-column
//! keys:
//!
//! * **INNER** equi-join chains whose conditions all equate the same key
//!   (through the chain's equalities: `a.k = b.k`, then `b.k = c.k` or
//!   `a.k = c.k`);
//! * **FULL OUTER** chains on a common key where every later join uses the
//!   merged key of everything before it (`USING`, see
//!   [`StandardUsingJoins`](crate::StandardUsingJoins), or `COALESCE` of the
//!   earlier keys in any order); the merged key of a subtree is the
//!   `COALESCE` of its inputs' keys, which is what the left-deep chain
//!   computes too, because the non-NULL keys of one output row are equal;
//! * **LEFT** joins of three or more inputs to one base input's key, which
//!   become `base LEFT JOIN (balanced FULL OUTER merge of the others)`.
//!
//! Anything else stays as it is: other join types, a non-equi condition, a
//! key that is not the chain's key, `NULL = NULL` joins, volatile
//! expressions. The rewritten plan has exactly the original schema (names,
//! qualifiers, order, types, nullability); if it would not, the rule leaves
//! the plan alone. A chain that is already balanced is not touched, so the
//! rule is idempotent across optimizer passes.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchemaRef, NullEquality, Result};
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::logical_expr::logical_plan::Join;
use datafusion::logical_expr::{Expr, JoinConstraint, JoinType, LogicalPlan, Projection};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

pub use crate::switch::RuleSwitch;
use crate::switch::switched_rule;

switched_rule! {
    /// Logical optimizer rule that rebalances join chains on a common key (see
    /// the module documentation). Place it after DataFusion's
    /// `eliminate_cross_join` (which rebuilds inner joins left-deep) and
    /// `eliminate_outer_join`.
    TournamentJoins
}

impl TournamentJoins {
    /// The rule, on for every session.
    pub fn always() -> Self {
        Self {
            enabled: Arc::new(|_| true),
        }
    }
}

impl OptimizerRule for TournamentJoins {
    fn name(&self) -> &str {
        "fairway_tournament_joins"
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
        if !(self.enabled)(&config.options()) {
            return Ok(Transformed::no(plan));
        }
        let rewritten = match join.join_type {
            JoinType::Inner => rewrite_chain(&plan, Kind::Inner)?,
            JoinType::Full => rewrite_chain(&plan, Kind::Full)?,
            JoinType::Left => rewrite_left_chain(&plan)?,
            _ => None,
        };
        Ok(match rewritten {
            Some(new) => Transformed::yes(new),
            None => Transformed::no(plan),
        })
    }
}

/// The join type of a tree built by [`balanced_join`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Inner,
    Full,
}

impl Kind {
    fn join_type(self) -> JoinType {
        match self {
            Kind::Inner => JoinType::Inner,
            Kind::Full => JoinType::Full,
        }
    }
}

/// Joins `inputs` as a balanced tree, neighbours pairwise level by level.
/// Each input comes with its key expressions (one per key column, in the
/// same order for every input). The output has every input's columns in
/// input order. A FULL join of two subtrees is keyed on the `COALESCE` of
/// each side's keys; an INNER join on the first input's keys of each side.
/// Returns the tree and its merged key expressions, by key column.
pub fn balanced_join(
    inputs: Vec<(LogicalPlan, Vec<Expr>)>,
    kind: Kind,
) -> Result<(LogicalPlan, Vec<Expr>)> {
    let tree = build_balanced(leaves(inputs), kind)?;
    let keys = tree.terms.iter().map(|t| merged_key(t, kind)).collect();
    Ok((Arc::unwrap_or_clone(tree.plan), keys))
}

/// `base LEFT JOIN (balanced FULL merge of others)` on the keys: every row
/// of `base` with the matching rows of each other input, as a chain of
/// LEFT joins onto `base`'s key gives.
pub fn balanced_left_join(
    base: LogicalPlan,
    base_keys: Vec<Expr>,
    others: Vec<(LogicalPlan, Vec<Expr>)>,
) -> Result<LogicalPlan> {
    left_join_onto(Arc::new(base), base_keys, leaves(others))
}

fn leaves(inputs: Vec<(LogicalPlan, Vec<Expr>)>) -> Vec<Leaf> {
    inputs
        .into_iter()
        .map(|(plan, keys)| Leaf {
            plan: Arc::new(plan),
            keys,
        })
        .collect()
}

/// The merged key of joined inputs whose key expressions are `terms`.
fn merged_key(terms: &[Expr], kind: Kind) -> Expr {
    match (terms, kind) {
        ([one], _) | ([one, ..], Kind::Inner) => one.clone(),
        (many, Kind::Full) => coalesce(many.to_vec()),
        ([], _) => unreachable!("a subtree has at least one input"),
    }
}

/// Joins on the longest root-to-leaf path of `plan` (subqueries excluded).
pub fn join_depth(plan: &LogicalPlan) -> usize {
    let below = plan.inputs().into_iter().map(join_depth).max().unwrap_or(0);
    below + usize::from(matches!(plan, LogicalPlan::Join(_)))
}

fn ceil_log2(n: usize) -> usize {
    n.next_power_of_two().trailing_zeros() as usize
}

/// One input of a chain with its key expressions, by key position.
struct Leaf {
    plan: Arc<LogicalPlan>,
    keys: Vec<Expr>,
}

/// A flattened chain: its inputs, and every output column of the chain's
/// top node as an expression over the inputs' columns.
struct Chain {
    leaves: Vec<Leaf>,
    outputs: Vec<Expr>,
    depth: usize,
}

fn plain_join(join: &Join, join_type: JoinType) -> bool {
    join.join_type == join_type
        && join.filter.is_none()
        && join.null_equality == NullEquality::NullEqualsNothing
        && !join.null_aware
        && !join.on.is_empty()
        && join
            .on
            .iter()
            .all(|(l, r)| substitutable(l) && substitutable(r))
}

/// Whether an expression may be moved into another place of the plan (and
/// evaluated there instead): deterministic and free of subqueries.
fn substitutable(expr: &Expr) -> bool {
    !expr.is_volatile()
        && !expr
            .exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_)
                        | Expr::Exists(_)
                        | Expr::InSubquery(_)
                        | Expr::OuterReferenceColumn(..)
                        | Expr::Placeholder(_)
                        | Expr::AggregateFunction(_)
                        | Expr::WindowFunction(_)
                ))
            })
            .unwrap_or(true)
}

/// `expr` (over `schema`) rewritten over the columns `outputs` stand for.
fn substitute(expr: &Expr, schema: &DFSchemaRef, outputs: &[Expr]) -> Result<Expr> {
    expr.clone()
        .unalias_nested()
        .data
        .transform_up(|e| match e {
            Expr::Column(c) => {
                let i = schema.index_of_column(&c)?;
                Ok(Transformed::yes(outputs[i].clone()))
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
}

/// The outputs of projection `p` over an input whose outputs are `outputs`.
fn through_projection(p: &Projection, outputs: &[Expr]) -> Result<Vec<Expr>> {
    p.expr
        .iter()
        .map(|e| substitute(e, p.input.schema(), outputs))
        .collect()
}

fn columns_of(plan: &LogicalPlan) -> Vec<Expr> {
    plan.schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect()
}

/// The arguments of nested `COALESCE` calls, or the expression itself.
fn coalesce_terms(expr: &Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::ScalarFunction(f) if f.func.name() == "coalesce" => {
            for arg in &f.args {
                coalesce_terms(arg, out);
            }
        }
        Expr::Alias(a) => coalesce_terms(&a.expr, out),
        // DataFusion's simplifier turns COALESCE(x, y, z) into
        // CASE WHEN x IS NOT NULL THEN x WHEN y IS NOT NULL THEN y ELSE z END.
        Expr::Case(case)
            if case.expr.is_none()
                && case.else_expr.is_some()
                && case
                    .when_then_expr
                    .iter()
                    .all(|(w, t)| matches!(w.as_ref(), Expr::IsNotNull(x) if x == t)) =>
        {
            for (_, then) in &case.when_then_expr {
                coalesce_terms(then, out);
            }
            if let Some(e) = &case.else_expr {
                coalesce_terms(e, out);
            }
        }
        other => out.push(other.clone()),
    }
}

fn same_set(a: &[Expr], b: &[Expr]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

impl Chain {
    fn leaf(plan: &Arc<LogicalPlan>, keys: Vec<Expr>) -> Self {
        Chain {
            outputs: columns_of(plan),
            leaves: vec![Leaf {
                plan: Arc::clone(plan),
                keys,
            }],
            depth: 0,
        }
    }

    /// The key position of the chain that `expr` stands for, if any.
    fn position_of(&self, expr: &Expr, kind: Kind) -> Option<usize> {
        let positions = self.leaves[0].keys.len();
        (0..positions).find(|&i| {
            let terms: Vec<Expr> = self.leaves.iter().map(|l| l.keys[i].clone()).collect();
            match kind {
                Kind::Inner => terms.contains(expr),
                Kind::Full => {
                    let mut found = Vec::new();
                    coalesce_terms(expr, &mut found);
                    same_set(&found, &terms)
                }
            }
        })
    }

    /// Reorders the key positions of every input: new position `to[i]` gets
    /// old position `i`.
    fn permute(mut self, to: &[usize]) -> Self {
        for leaf in &mut self.leaves {
            let mut keys = leaf.keys.clone();
            for (from, &dest) in to.iter().enumerate() {
                keys[dest] = leaf.keys[from].clone();
            }
            leaf.keys = keys;
        }
        self
    }
}

/// Flattens `plan` into a chain of `kind` joins on one key, looking through
/// projections between the joins. `None` if `plan` is not such a join.
fn flatten(plan: &LogicalPlan, kind: Kind) -> Result<Option<Chain>> {
    match plan {
        LogicalPlan::Projection(p) if p.expr.iter().all(substitutable) => {
            let Some(inner) = flatten(&p.input, kind)? else {
                return Ok(None);
            };
            let outputs = through_projection(p, &inner.outputs)?;
            Ok(Some(Chain { outputs, ..inner }))
        }
        LogicalPlan::Join(join) if plain_join(join, kind.join_type()) => {
            let Some(left) = side(&join.left, join.on.iter().map(|(l, _)| l), kind)? else {
                return Ok(None);
            };
            let Some(right) = side(&join.right, join.on.iter().map(|(_, r)| r), kind)? else {
                return Ok(None);
            };
            // `left.1[p]` and `right.1[p]` are the key positions pair `p`
            // joins; the right chain's positions are renumbered as the left's.
            let positions = left.0.leaves[0].keys.len();
            if positions != join.on.len() || right.0.leaves[0].keys.len() != positions {
                return Ok(None);
            }
            let mut to = vec![0; positions];
            for (l, r) in left.1.iter().zip(&right.1) {
                to[*r] = *l;
            }
            let (left, right) = (left.0, right.0.permute(&to));
            let mut outputs = left.outputs;
            outputs.extend(right.outputs);
            let mut leaves = left.leaves;
            leaves.extend(right.leaves);
            Ok(Some(Chain {
                leaves,
                outputs,
                depth: 1 + left.depth.max(right.depth),
            }))
        }
        _ => Ok(None),
    }
}

/// One side of a chain join: the side's chain (a single input if it is not a
/// chain itself) and, for each key pair, the key position it joins.
fn side<'a>(
    plan: &Arc<LogicalPlan>,
    keys: impl Iterator<Item = &'a Expr>,
    kind: Kind,
) -> Result<Option<(Chain, Vec<usize>)>> {
    let keys: Vec<&Expr> = keys.collect();
    let Some(chain) = flatten(plan, kind)? else {
        let chain = Chain::leaf(plan, keys.iter().map(|k| (*k).clone()).collect());
        return Ok(Some((chain, (0..keys.len()).collect())));
    };
    let mut positions = Vec::with_capacity(keys.len());
    for key in keys {
        let expr = substitute(key, plan.schema(), &chain.outputs)?;
        match chain.position_of(&expr, kind) {
            Some(i) if !positions.contains(&i) => positions.push(i),
            _ => return Ok(None),
        }
    }
    Ok(Some((chain, positions)))
}

/// A subtree under construction: its plan and, by key position, the keys of
/// its inputs.
struct Sub {
    plan: Arc<LogicalPlan>,
    terms: Vec<Vec<Expr>>,
}

fn build_balanced(leaves: Vec<Leaf>, kind: Kind) -> Result<Sub> {
    let mut level: Vec<Sub> = leaves
        .into_iter()
        .map(|leaf| Sub {
            plan: leaf.plan,
            terms: leaf.keys.into_iter().map(|k| vec![k]).collect(),
        })
        .collect();
    if level.is_empty() {
        return datafusion::common::plan_err!("a balanced join needs at least one input");
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut subs = level.into_iter();
        while let Some(a) = subs.next() {
            next.push(match subs.next() {
                Some(b) => join_pair(a, b, kind)?,
                None => a,
            });
        }
        level = next;
    }
    Ok(level.pop().expect("one subtree is left"))
}

fn join_pair(a: Sub, b: Sub, kind: Kind) -> Result<Sub> {
    if a.terms.len() != b.terms.len() {
        return datafusion::common::plan_err!(
            "inputs of a balanced join have {} and {} key columns",
            a.terms.len(),
            b.terms.len()
        );
    }
    let on = a
        .terms
        .iter()
        .zip(&b.terms)
        .map(|(l, r)| (merged_key(l, kind), merged_key(r, kind)))
        .collect();
    let join = Join::try_new(
        a.plan,
        b.plan,
        on,
        None,
        kind.join_type(),
        JoinConstraint::On,
        NullEquality::NullEqualsNothing,
        false,
    )?;
    let terms = a
        .terms
        .into_iter()
        .zip(b.terms)
        .map(|(mut l, r)| {
            l.extend(r);
            l
        })
        .collect();
    Ok(Sub {
        plan: Arc::new(LogicalPlan::Join(join)),
        terms,
    })
}

fn rewrite_chain(plan: &LogicalPlan, kind: Kind) -> Result<Option<LogicalPlan>> {
    let Some(chain) = flatten(plan, kind)? else {
        return Ok(None);
    };
    let inputs = chain.leaves.len();
    if inputs < 3 || chain.depth <= ceil_log2(inputs) {
        return Ok(None);
    }
    let tree = build_balanced(chain.leaves, kind)?.plan;
    finish(tree, &chain.outputs, plan.schema())
}

/// A chain of LEFT joins onto one base input's key.
struct LeftChain {
    base: Arc<LogicalPlan>,
    base_keys: Vec<Expr>,
    rights: Vec<Leaf>,
    outputs: Vec<Expr>,
}

fn flatten_left(plan: &LogicalPlan) -> Result<Option<LeftChain>> {
    match plan {
        LogicalPlan::Projection(p) if p.expr.iter().all(substitutable) => {
            let Some(inner) = flatten_left(&p.input)? else {
                return Ok(None);
            };
            let outputs = through_projection(p, &inner.outputs)?;
            Ok(Some(LeftChain { outputs, ..inner }))
        }
        LogicalPlan::Join(join) if plain_join(join, JoinType::Left) => {
            let n = join.on.len();
            let (mut chain, positions) = match flatten_left(&join.left)? {
                Some(chain) => {
                    if chain.base_keys.len() != n {
                        return Ok(None);
                    }
                    let mut positions = Vec::with_capacity(n);
                    for (l, _) in &join.on {
                        let expr = substitute(l, join.left.schema(), &chain.outputs)?;
                        match chain.base_keys.iter().position(|k| *k == expr) {
                            Some(i) if !positions.contains(&i) => positions.push(i),
                            _ => return Ok(None),
                        }
                    }
                    (chain, positions)
                }
                None => {
                    let chain = LeftChain {
                        base: Arc::clone(&join.left),
                        base_keys: join.on.iter().map(|(l, _)| l.clone()).collect(),
                        rights: Vec::new(),
                        outputs: columns_of(&join.left),
                    };
                    (chain, (0..n).collect())
                }
            };
            let mut keys: Vec<(usize, Expr)> = positions
                .iter()
                .zip(&join.on)
                .map(|(&i, (_, r))| (i, r.clone()))
                .collect();
            keys.sort_by_key(|(i, _)| *i);
            chain.rights.push(Leaf {
                plan: Arc::clone(&join.right),
                keys: keys.into_iter().map(|(_, k)| k).collect(),
            });
            chain.outputs.extend(columns_of(&join.right));
            Ok(Some(chain))
        }
        _ => Ok(None),
    }
}

fn rewrite_left_chain(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    let Some(chain) = flatten_left(plan)? else {
        return Ok(None);
    };
    if chain.rights.len() < 3 {
        return Ok(None);
    }
    let join = left_join_onto(chain.base, chain.base_keys, chain.rights)?;
    finish(Arc::new(join), &chain.outputs, plan.schema())
}

fn left_join_onto(
    base: Arc<LogicalPlan>,
    base_keys: Vec<Expr>,
    rights: Vec<Leaf>,
) -> Result<LogicalPlan> {
    if rights.is_empty() {
        return Ok(Arc::unwrap_or_clone(base));
    }
    let merge = build_balanced(rights, Kind::Full)?;
    let on = base_keys
        .into_iter()
        .zip(&merge.terms)
        .map(|(base, terms)| (base, merged_key(terms, Kind::Full)))
        .collect();
    Ok(LogicalPlan::Join(Join::try_new(
        base,
        merge.plan,
        on,
        None,
        JoinType::Left,
        JoinConstraint::On,
        NullEquality::NullEqualsNothing,
        false,
    )?))
}

/// Puts the original output columns back on top of a rebuilt tree, or gives
/// up (`None`) if the result would not have exactly the original schema.
fn finish(
    tree: Arc<LogicalPlan>,
    outputs: &[Expr],
    schema: &DFSchemaRef,
) -> Result<Option<LogicalPlan>> {
    let exprs: Vec<Expr> = schema
        .iter()
        .zip(outputs)
        .map(|((qualifier, field), expr)| match expr {
            Expr::Column(c) if c.relation.as_ref() == qualifier && c.name == *field.name() => {
                expr.clone()
            }
            _ => expr
                .clone()
                .alias_qualified(qualifier.cloned(), field.name()),
        })
        .collect();
    let identity = exprs == columns_of(&tree);
    let plan = if identity {
        Arc::unwrap_or_clone(tree)
    } else {
        LogicalPlan::Projection(Projection::try_new(exprs, tree)?)
    };
    Ok(same_shape(plan.schema(), schema).then_some(plan))
}

fn same_shape(a: &DFSchemaRef, b: &DFSchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.iter().zip(b.iter()).all(|((qa, fa), (qb, fb))| {
            qa == qb
                && fa.name() == fb.name()
                && fa.data_type() == fb.data_type()
                && fa.is_nullable() == fb.is_nullable()
        })
}
