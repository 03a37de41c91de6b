//! Merging many DataFrames on key columns as one balanced join tree, with
//! the semantics of Spark's `df.join(other, on=[cols], how)`.

use datafusion::common::Column;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use fairway_planner::{BalancedKind, balanced_join, balanced_left_join};

use crate::error::{EngineError, Result};

/// How [`merge_frames`] joins its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeHow {
    /// Every key that any input has (Spark `how="outer"`); the key column
    /// is the first non-NULL key of the inputs.
    #[default]
    Full,
    /// Keys that every input has (Spark `how="inner"`).
    Inner,
    /// Every row of the first input, with the matching rows of the others
    /// (Spark `how="left"`, applied one input after the other); the key is
    /// the first input's.
    Left,
}

/// Merges `frames` on the key columns `on` as a balanced tree (neighbours
/// pairwise, level by level; see `fairway_planner::TournamentJoins`), the
/// way Spark merges a list of DataFrames with `reduce(lambda a, b:
/// a.join(b, on=on, how=...))`: the output has the key columns once (for
/// [`MergeHow::Full`] each is the `COALESCE` of the inputs' keys), then
/// every input's other columns in input order. Key columns that are NULL
/// never match, as in SQL.
///
/// Every input must have every key column and no two inputs may share a
/// non-key column name (the error names the inputs and the column).
pub fn merge_frames(frames: Vec<DataFrame>, on: &[&str], how: MergeHow) -> Result<DataFrame> {
    let Some(first) = frames.first() else {
        return Err(merge_error("merge_frames needs at least one DataFrame"));
    };
    if on.is_empty() {
        return Err(merge_error("merge_frames needs at least one key column"));
    }
    let state = first.clone().into_parts().0;
    let mut inputs = Vec::with_capacity(frames.len());
    let mut others: Vec<Vec<Expr>> = Vec::with_capacity(frames.len());
    let mut owners: Vec<(String, usize)> = Vec::new();
    for (i, frame) in frames.into_iter().enumerate() {
        let alias = format!("__merge{i}");
        let plan = LogicalPlanBuilder::from(frame.into_parts().1)
            .alias(alias.as_str())?
            .build()?;
        let mut keys = Vec::with_capacity(on.len());
        for name in on {
            if plan.schema().field_with_unqualified_name(name).is_err() {
                return Err(merge_error(format!(
                    "merge input {i} has no key column '{name}' (its columns: {})",
                    column_names(&plan)
                )));
            }
            keys.push(Expr::Column(Column::new(Some(alias.as_str()), *name)));
        }
        let mut rest = Vec::new();
        for field in plan.schema().fields() {
            let name = field.name();
            if on.contains(&name.as_str()) {
                continue;
            }
            if let Some((_, j)) = owners.iter().find(|(n, _)| n == name) {
                return Err(merge_error(format!(
                    "column '{name}' is in merge inputs {j} and {i}; rename one of them"
                )));
            }
            owners.push((name.clone(), i));
            rest.push(Expr::Column(Column::new(Some(alias.as_str()), name)).alias(name.as_str()));
        }
        inputs.push((plan, keys));
        others.push(rest);
    }
    let (tree, keys) = match how {
        MergeHow::Full => balanced_join(inputs, BalancedKind::Full)?,
        MergeHow::Inner => balanced_join(inputs, BalancedKind::Inner)?,
        MergeHow::Left => {
            let mut inputs = inputs.into_iter();
            let (base, base_keys) = inputs.next().expect("at least one input");
            let tree = balanced_left_join(base, base_keys.clone(), inputs.collect())?;
            (tree, base_keys)
        }
    };
    let mut projection: Vec<Expr> = keys
        .into_iter()
        .zip(on)
        .map(|(key, name)| key.alias(*name))
        .collect();
    projection.extend(others.into_iter().flatten());
    let plan = LogicalPlanBuilder::from(tree)
        .project(projection)?
        .build()?;
    Ok(DataFrame::new(state, plan))
}

fn column_names(plan: &LogicalPlan) -> String {
    plan.schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn merge_error(message: impl Into<String>) -> EngineError {
    EngineError::DataFusion(datafusion::error::DataFusionError::Plan(message.into()))
}
