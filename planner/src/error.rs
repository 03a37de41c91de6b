//! The planner's error type, [`PlannerError`]: why a plan cannot be prepared
//! or cut into stages.

use datafusion::error::DataFusionError;

/// Kinds of planning failure.
#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    /// The plan uses an operator the stage engine cannot split safely.
    #[error("cannot run on the stage engine: {0}")]
    Unsupported(String),
    /// DataFusion failed while re-planning a part of the plan.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// A stage violated an invariant of the splitter (a bug).
    #[error("internal planner error: {0}")]
    Internal(String),
}

impl From<PlannerError> for DataFusionError {
    fn from(e: PlannerError) -> Self {
        match e {
            PlannerError::DataFusion(e) => e,
            PlannerError::Unsupported(m) => DataFusionError::NotImplemented(m),
            PlannerError::Internal(m) => DataFusionError::Internal(m),
        }
    }
}
