//! Co-partitioned joins: an exchange that would re-partition a hash join's
//! output by the join's own merged key is dropped.
//!
//! A partitioned hash join reads partition `p` of both inputs, each
//! hash-partitioned on its side of the key into the same `n` partitions, and
//! writes partition `p` of its output. Every output row therefore holds the
//! key values of the input rows it came from: `l.k` where a left row is
//! present, `r.k` where a right row is, and the two are equal where both
//! are. So `COALESCE(l.k, r.k)` (DataFusion simplifies it to `CASE WHEN l.k
//! IS NOT NULL THEN l.k ELSE r.k END`) of every row of partition `p` hashes
//! to `p`, for every join type, FULL OUTER included: a row whose key is
//! NULL on both sides came from partition `hash(NULL)` of its input.
//! DataFusion does not know this for FULL OUTER joins (it reports their
//! output as unknown-partitioned) nor for a `COALESCE` of the two sides of
//! any join, so the next join on the merged key, the way a balanced FULL
//! OUTER merge meets every level, gets a hash exchange that moves no row
//! to another partition.
//!
//! [`CoPartitionedJoins`] runs after DataFusion has added its exchanges and
//! replaces each such exchange by a [`KeyPartitionedExec`], which passes its
//! input through and declares the hash partitioning the exchange would have
//! made. The stage cutter then keeps the joins above and below it in one
//! stage, so a whole merge tree runs in one stage per partition after each
//! input is shuffled once.
//!
//! The rule only fires where the hash is provably the same: the key types
//! of both sides are equal (no cast between them) and are types whose equal
//! values hash equally (integers, decimals, dates, times, timestamps,
//! strings, binary, booleans; not floats, where `-0.0 = 0.0`).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::{CaseExpr, Column, IsNotNullExpr};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};

use crate::switch::switched_rule;

switched_rule! {
    /// Physical optimizer rule that drops hash exchanges on a join's merged key
    /// (see the module documentation). Place it after DataFusion's
    /// `EnsureRequirements`; fairway runs it last, before `SanityCheckPlan`.
    CoPartitionedJoins
}

impl PhysicalOptimizerRule for CoPartitionedJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !(self.enabled)(config) {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(repartition) = node.downcast_ref::<RepartitionExec>() else {
                return Ok(Transformed::no(node));
            };
            let Partitioning::Hash(exprs, n) = repartition.partitioning() else {
                return Ok(Transformed::no(node));
            };
            let input = repartition.input();
            if input.output_partitioning().partition_count() != *n
                || !partitioned_by_merged_key(input, exprs, *n)?
            {
                return Ok(Transformed::no(node));
            }
            let kept = KeyPartitionedExec::try_new(Arc::clone(input), exprs.clone())?;
            Ok(Transformed::yes(Arc::new(kept) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "fairway_co_partitioned_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether every row of partition `p` of `plan` has `exprs` hashing to `p`
/// (of `n`) because `plan` is, through partition-keeping operators, a hash
/// join whose inputs are hash-partitioned on its keys and `exprs` are its
/// merged keys, in key order.
fn partitioned_by_merged_key(
    plan: &Arc<dyn ExecutionPlan>,
    exprs: &[Arc<dyn PhysicalExpr>],
    n: usize,
) -> Result<bool> {
    let mut lineage = Lineage::default();
    // The one join every expression merges keys of, and which keys.
    let mut join_node: Option<Arc<dyn ExecutionPlan>> = None;
    let mut keys = Vec::with_capacity(exprs.len());
    for expr in exprs {
        let Some((join, merged)) = lineage.merged_key(plan, Arc::clone(expr))? else {
            return Ok(false);
        };
        if join_node
            .as_ref()
            .is_some_and(|j| address(j) != address(&join))
        {
            return Ok(false);
        }
        join_node = Some(join);
        keys.push(merged);
    }
    let Some(join_node) = join_node else {
        return Ok(false);
    };
    let join = join_node
        .downcast_ref::<HashJoinExec>()
        .expect("merged_key returns hash joins");
    // Expression i merges key i: the hash is over the keys in join order.
    if keys.len() != join.on().len() || keys.iter().enumerate().any(|(i, k)| !k.contains(&i)) {
        return Ok(false);
    }
    let (left_keys, right_keys): (Vec<_>, Vec<_>) = join.on().iter().cloned().unzip();
    let right_hashed = hash_partitioned_on(join.right(), &right_keys, n);
    let partitioned = match join.partition_mode() {
        PartitionMode::Partitioned => {
            right_hashed && hash_partitioned_on(join.left(), &left_keys, n)
        }
        // Every output row of a broadcast INNER or RIGHT join has its
        // probe (right) row, in that row's partition.
        PartitionMode::CollectLeft => {
            right_hashed && matches!(join.join_type(), JoinType::Inner | JoinType::Right)
        }
        PartitionMode::Auto => false,
    };
    if !partitioned {
        return Ok(false);
    }
    for (l, r) in left_keys.iter().zip(&right_keys) {
        let (Ok(left_type), Ok(right_type)) = (
            l.data_type(&join.left().schema()),
            r.data_type(&join.right().schema()),
        ) else {
            return Ok(false);
        };
        if left_type != right_type || !hashes_by_value(&left_type) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Where a value comes from: the join sides taken on the way down (`false`
/// left, `true` right), the operator that computes it, and its column
/// there. The sides tell the two inputs of a self-join apart.
type Origin = (Vec<bool>, usize, usize);

/// A join, and the positions of the keys of it that an expression merges.
type MergedKey = (Arc<dyn ExecutionPlan>, Vec<usize>);

/// The identity of an operator in one plan.
fn address(plan: &Arc<dyn ExecutionPlan>) -> usize {
    Arc::as_ptr(plan) as *const () as usize
}

/// Traces columns to the operators that compute them, remembering what it
/// found per operator and column.
#[derive(Default)]
struct Lineage {
    memo: std::collections::HashMap<(usize, usize), Arc<BTreeSet<Origin>>>,
}

impl Lineage {
    /// The origins whose first non-NULL value (in any order) column `col`
    /// of `plan` is on every row, each NULL or equal to it: the column's
    /// own origin, or, for a merged key proved by [`Lineage::merged_key`],
    /// the origins of everything it merges.
    fn origins(
        &mut self,
        plan: &Arc<dyn ExecutionPlan>,
        col: usize,
    ) -> Result<Arc<BTreeSet<Origin>>> {
        let key = (address(plan), col);
        if let Some(found) = self.memo.get(&key) {
            return Ok(Arc::clone(found));
        }
        let own = || Arc::new(BTreeSet::from([(Vec::new(), key.0, col)]));
        let found = if let Some(kept) = plan.downcast_ref::<KeyPartitionedExec>() {
            self.origins(&kept.input, col)?
        } else if let Some(repartition) = plan.downcast_ref::<RepartitionExec>() {
            self.origins(repartition.input(), col)?
        } else if let Some(coalesce) = plan.downcast_ref::<CoalescePartitionsExec>() {
            self.origins(coalesce.input(), col)?
        } else if let Some(filter) = plan.downcast_ref::<FilterExec>() {
            match filter.projection() {
                Some(projection) => self.origins(filter.input(), projection[col])?,
                None => self.origins(filter.input(), col)?,
            }
        } else if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
            let expr = &projection.expr()[col].expr;
            if let Some(column) = expr.downcast_ref::<Column>() {
                self.origins(projection.input(), column.index())?
            } else if let Some(leaves) = merged_leaves(expr)
                && self
                    .merged_key(projection.input(), Arc::clone(expr))?
                    .is_some()
            {
                let mut all = BTreeSet::new();
                for leaf in leaves {
                    all.extend(self.origins(projection.input(), leaf)?.iter().cloned());
                }
                Arc::new(all)
            } else {
                own()
            }
        } else if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
            let raw = match &join.projection {
                Some(projection) => projection[col],
                None => col,
            };
            let left_width = join.left().schema().fields().len();
            let side = match join.join_type() {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    if raw < left_width {
                        Some((false, raw))
                    } else {
                        Some((true, raw - left_width))
                    }
                }
                JoinType::LeftSemi | JoinType::LeftAnti => Some((false, raw)),
                JoinType::RightSemi | JoinType::RightAnti => Some((true, raw)),
                _ => None,
            };
            match side {
                Some((right, at)) => {
                    let input = if right { join.right() } else { join.left() };
                    Arc::new(beneath(right, self.origins(input, at)?.as_ref()))
                }
                None => own(),
            }
        } else {
            own()
        };
        self.memo.insert(key, Arc::clone(&found));
        Ok(found)
    }

    /// If `expr`, over the output of `plan`, is a merged key of a hash join
    /// that `plan` is through partition-keeping operators (projections,
    /// filters, [`KeyPartitionedExec`]): that join and the positions of the
    /// keys it merges. A merged key is a column or a coalesce of columns
    /// each of which is NULL or the row's key, and not NULL where the row
    /// has a key: it reads the key of every side whose rows the join keeps
    /// unmatched (both for FULL, the left for LEFT, ...).
    fn merged_key(
        &mut self,
        plan: &Arc<dyn ExecutionPlan>,
        expr: Arc<dyn PhysicalExpr>,
    ) -> Result<Option<MergedKey>> {
        let mut expr = expr;
        let mut node = Arc::clone(plan);
        loop {
            let next = if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
                let sources: Vec<_> = projection.expr().iter().map(|p| &p.expr).collect();
                let Some(e) = substitute(expr, |i| sources.get(i).map(|s| Arc::clone(s)))? else {
                    return Ok(None);
                };
                expr = e;
                Arc::clone(projection.input())
            } else if let Some(filter) = node.downcast_ref::<FilterExec>() {
                if let Some(projection) = filter.projection() {
                    let Some(e) =
                        substitute(expr, |i| projection.get(i).map(|&raw| raw_column(raw)))?
                    else {
                        return Ok(None);
                    };
                    expr = e;
                }
                Arc::clone(filter.input())
            } else if let Some(kept) = node.downcast_ref::<KeyPartitionedExec>() {
                Arc::clone(&kept.input)
            } else {
                break;
            };
            node = next;
        }
        let Some(join) = node.downcast_ref::<HashJoinExec>() else {
            return Ok(None);
        };
        let needs = match join.join_type() {
            JoinType::Inner => Sides::Either,
            JoinType::Left => Sides::Left,
            JoinType::Right => Sides::Right,
            JoinType::Full => Sides::Both,
            _ => return Ok(None),
        };
        if let Some(projection) = &join.projection {
            let Some(e) = substitute(expr, |i| projection.get(i).map(|&raw| raw_column(raw)))?
            else {
                return Ok(None);
            };
            expr = e;
        }
        let Some(leaves) = merged_leaves(&expr) else {
            return Ok(None);
        };
        let (left, right) = (join.left(), join.right());
        let left_width = left.schema().fields().len();
        let mut read = BTreeSet::new();
        for leaf in leaves {
            let origins = if leaf < left_width {
                beneath(false, self.origins(left, leaf)?.as_ref())
            } else {
                beneath(true, self.origins(right, leaf - left_width)?.as_ref())
            };
            read.extend(origins);
        }
        let mut keys = Vec::new();
        for (i, (l, r)) in join.on().iter().enumerate() {
            let (Some(l), Some(r)) = (l.downcast_ref::<Column>(), r.downcast_ref::<Column>())
            else {
                continue;
            };
            let left_key = beneath(false, self.origins(left, l.index())?.as_ref());
            let right_key = beneath(true, self.origins(right, r.index())?.as_ref());
            let congruent = read
                .iter()
                .all(|o| left_key.contains(o) || right_key.contains(o));
            let has_left = left_key.is_subset(&read);
            let has_right = right_key.is_subset(&read);
            let covered = match needs {
                Sides::Either => has_left || has_right,
                Sides::Left => has_left,
                Sides::Right => has_right,
                Sides::Both => has_left && has_right,
            };
            if congruent && covered {
                keys.push(i);
            }
        }
        Ok((!keys.is_empty()).then_some((node, keys)))
    }
}

/// `origins` as seen from a join above, through its `right` or left side.
fn beneath(right: bool, origins: &BTreeSet<Origin>) -> BTreeSet<Origin> {
    origins
        .iter()
        .map(|(path, at, col)| {
            let mut longer = Vec::with_capacity(path.len() + 1);
            longer.push(right);
            longer.extend(path);
            (longer, *at, *col)
        })
        .collect()
}

/// A column `raw` of an operator's unprojected output.
fn raw_column(raw: usize) -> Arc<dyn PhysicalExpr> {
    Arc::new(Column::new(&format!("#{raw}"), raw))
}

/// Which key columns a merged key must read so that it is never NULL where
/// the row has a key: an INNER join's rows have both, a LEFT join's rows
/// always the left one, and so on.
#[derive(Clone, Copy)]
enum Sides {
    Either,
    Left,
    Right,
    Both,
}

/// `expr` with every column `i` replaced by `source(i)`; `None` where a
/// column has no source.
fn substitute(
    expr: Arc<dyn PhysicalExpr>,
    source: impl Fn(usize) -> Option<Arc<dyn PhysicalExpr>>,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let mut missing = false;
    let replaced = expr
        .transform_down(|e| match e.downcast_ref::<Column>() {
            Some(column) => match source(column.index()) {
                Some(s) => Ok(Transformed::new(s, true, TreeNodeRecursion::Jump)),
                None => {
                    missing = true;
                    Ok(Transformed::new(e, false, TreeNodeRecursion::Stop))
                }
            },
            None => Ok(Transformed::no(e)),
        })?
        .data;
    Ok((!missing).then_some(replaced))
}

/// The columns whose first non-NULL value `expr` is, in order: a column
/// itself, `coalesce(a, b, ...)`, or the `CASE WHEN a IS NOT NULL THEN a
/// WHEN b IS NOT NULL THEN b ... ELSE z END` DataFusion simplifies a
/// coalesce to, nested in any way. `None` for anything else.
fn merged_leaves(expr: &Arc<dyn PhysicalExpr>) -> Option<Vec<usize>> {
    if let Some(column) = expr.downcast_ref::<Column>() {
        return Some(vec![column.index()]);
    }
    if let Some(function) = expr.downcast_ref::<ScalarFunctionExpr>() {
        if function.name() != "coalesce" || function.args().is_empty() {
            return None;
        }
        let mut leaves = Vec::new();
        for arg in function.args() {
            leaves.extend(merged_leaves(arg)?);
        }
        return Some(leaves);
    }
    if let Some(case) = expr.downcast_ref::<CaseExpr>() {
        if case.expr().is_some() || case.when_then_expr().is_empty() {
            return None;
        }
        let mut leaves = Vec::new();
        for (when, then) in case.when_then_expr() {
            let tested = when.downcast_ref::<IsNotNullExpr>()?;
            if tested.arg() != then {
                return None;
            }
            leaves.extend(merged_leaves(then)?);
        }
        if let Some(otherwise) = case.else_expr() {
            leaves.extend(merged_leaves(otherwise)?);
        }
        return Some(leaves);
    }
    None
}

/// Whether `plan` is hash-partitioned on exactly `keys`, in order, into `n`
/// partitions.
fn hash_partitioned_on(
    plan: &Arc<dyn ExecutionPlan>,
    keys: &[Arc<dyn PhysicalExpr>],
    n: usize,
) -> bool {
    match plan.output_partitioning() {
        Partitioning::Hash(exprs, m) => {
            *m == n && exprs.len() == keys.len() && exprs.iter().zip(keys).all(|(a, b)| a == b)
        }
        _ => false,
    }
}

/// Types whose equal values (as a hash join compares them) always hash
/// equally.
fn hashes_by_value(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Decimal32(..)
            | Decimal64(..)
            | Decimal128(..)
            | Decimal256(..)
            | Date32
            | Date64
            | Time32(_)
            | Time64(_)
            | Timestamp(..)
            | Duration(_)
            | Utf8
            | LargeUtf8
            | Utf8View
            | Binary
            | LargeBinary
            | BinaryView
            | FixedSizeBinary(_)
    )
}

/// Passes its input through and declares the hash partitioning that
/// [`CoPartitionedJoins`] proved the input already has, where DataFusion
/// had put an exchange. Each partition of its output is the same partition
/// of its input.
#[derive(Debug)]
pub struct KeyPartitionedExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl KeyPartitionedExec {
    /// Declares `input` hash-partitioned on `exprs` into as many partitions
    /// as it has. The caller vouches that it is.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        exprs: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Self> {
        let n = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            input.equivalence_properties().clone(),
            Partitioning::Hash(exprs, n),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Ok(Self {
            input,
            properties: Arc::new(properties),
        })
    }

    /// The hash expressions it declares.
    pub fn exprs(&self) -> &[Arc<dyn PhysicalExpr>] {
        match self.properties.output_partitioning() {
            Partitioning::Hash(exprs, _) => exprs,
            _ => unreachable!("KeyPartitionedExec declares a hash partitioning"),
        }
    }
}

impl DisplayAs for KeyPartitionedExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::TreeRender => {
                write!(f, "partitioning={}", self.properties.output_partitioning())
            }
            _ => write!(
                f,
                "KeyPartitionedExec: partitioning={} (kept by the join below)",
                self.properties.output_partitioning()
            ),
        }
    }
}

impl ExecutionPlan for KeyPartitionedExec {
    fn name(&self) -> &str {
        "KeyPartitionedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut recursion = TreeNodeRecursion::Continue;
        for expr in self.exprs() {
            recursion = f(expr)?;
            if recursion == TreeNodeRecursion::Stop {
                break;
            }
        }
        Ok(recursion)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "KeyPartitionedExec has one child, got {}",
                children.len()
            )));
        }
        let input = children.remove(0);
        let n = self.properties.output_partitioning().partition_count();
        let m = input.output_partitioning().partition_count();
        if m != n {
            return Err(DataFusionError::Internal(format!(
                "KeyPartitionedExec declares {n} partitions, its new input has {m}"
            )));
        }
        Ok(Arc::new(Self::try_new(input, self.exprs().to_vec())?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}
