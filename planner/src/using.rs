//! SQL-standard `JOIN ... USING`: one merged key column.
//!
//! In standard SQL (PostgreSQL, DuckDB, Spark) `a FULL JOIN b USING (k)`
//! exposes one column `k = COALESCE(a.k, b.k)`, and a following
//! `FULL JOIN c USING (k)` joins on that merged key. DataFusion 55 plans the
//! join on `a.k = b.k` but resolves a later `k` to `a.k` alone, so rows that
//! only `b` has show `k = NULL` and never meet `c` (upstream issue #22881).
//!
//! [`StandardUsingJoins`] is an analyzer rule that runs before type coercion:
//! above every `FULL` or `RIGHT` join with a `USING` constraint it puts a
//! projection that replaces each key column of the join's output (and every
//! column joined to it by an earlier `USING` join, so that whichever of them
//! DataFusion resolves `k` or `*` to carries the same value) by the merged
//! key. Later joins, filters and projections then read the merged key
//! through the column they were planned with. `INNER` and `LEFT` joins need
//! nothing: their standard key is the left key.
//!
//! One difference from the standard remains: a *qualified* reference to a
//! merged key (`a.k` after `a FULL JOIN b USING (k)`) also reads the merged
//! key, because after planning it cannot be told apart from an unqualified
//! `k`.

use std::collections::HashMap;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result};
use datafusion::config::ConfigOptions;
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::logical_expr::{
    Expr, JoinConstraint, JoinType, LogicalPlan, Projection, logical_plan::Join,
};
use datafusion::optimizer::AnalyzerRule;

/// Analyzer rule giving `FULL`/`RIGHT JOIN ... USING` one merged key (see
/// the module documentation). Register it before DataFusion's own analyzer
/// rules, so type coercion sees the `COALESCE` it adds.
#[derive(Debug, Default)]
pub struct StandardUsingJoins;

impl AnalyzerRule for StandardUsingJoins {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Join(join) if needs_merged_key(&join) => merge_using_keys(join),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "fairway_standard_using_joins"
    }
}

fn needs_merged_key(join: &Join) -> bool {
    join.join_constraint == JoinConstraint::Using
        && matches!(join.join_type, JoinType::Full | JoinType::Right)
        && join
            .on
            .iter()
            .all(|(l, r)| matches!((l, r), (Expr::Column(_), Expr::Column(_))))
}

/// Wraps `join` in a projection that passes every column through, except
/// the columns of each `USING` key group, which become `COALESCE(left,
/// right)` under their own qualified names.
fn merge_using_keys(join: Join) -> Result<Transformed<LogicalPlan>> {
    let groups = using_groups(&join)?;
    let mut replacement: HashMap<Column, Expr> = HashMap::new();
    for (l, r) in &join.on {
        let (Expr::Column(lc), Expr::Column(rc)) = (l, r) else {
            unreachable!("checked by needs_merged_key")
        };
        let merged = coalesce(vec![l.clone(), r.clone()]);
        let root_l = groups.root(lc);
        let root_r = groups.root(rc);
        for (qualifier, field) in join.schema.iter() {
            let column = Column::new(qualifier.cloned(), field.name());
            let root = groups.root(&column);
            if root == root_l || root == root_r {
                replacement.insert(column, merged.clone());
            }
        }
    }
    let schema = join.schema.clone();
    let exprs = schema
        .iter()
        .map(|(qualifier, field)| {
            let column = Column::new(qualifier.cloned(), field.name());
            match replacement.get(&column) {
                Some(merged) => merged
                    .clone()
                    .alias_qualified(qualifier.cloned(), field.name()),
                None => Expr::Column(column),
            }
        })
        .collect::<Vec<_>>();
    let projection = Projection::try_new(exprs, std::sync::Arc::new(LogicalPlan::Join(join)))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

/// Union-find over the key columns of every `USING` join in `join`'s
/// subtree (not crossing a subquery alias, which renames its columns).
#[derive(Default)]
struct Groups {
    parent: HashMap<Column, Column>,
}

impl Groups {
    fn root(&self, column: &Column) -> Column {
        let mut at = column.clone();
        while let Some(next) = self.parent.get(&at) {
            if *next == at {
                break;
            }
            at = next.clone();
        }
        at
    }

    fn union(&mut self, a: &Column, b: &Column) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.parent.insert(rb, ra);
        }
    }
}

fn using_groups(join: &Join) -> Result<Groups> {
    let mut groups = Groups::default();
    let mut add = |j: &Join| {
        if j.join_constraint == JoinConstraint::Using {
            for (l, r) in &j.on {
                if let (Expr::Column(lc), Expr::Column(rc)) = (l, r) {
                    groups.union(lc, rc);
                }
            }
        }
    };
    add(join);
    for input in [&join.left, &join.right] {
        input.apply(|node| {
            Ok(match node {
                LogicalPlan::SubqueryAlias(_) => TreeNodeRecursion::Jump,
                LogicalPlan::Join(j) => {
                    add(j);
                    TreeNodeRecursion::Continue
                }
                _ => TreeNodeRecursion::Continue,
            })
        })?;
    }
    Ok(groups)
}
