//! Checks a [`JobSpec`]'s stage graph and turns it into parent/child lists.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::SchedulerError;
use crate::job::{JobSpec, StageId};

/// A checked stage: parents without duplicates, and its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StagePlan {
    pub(crate) tasks: usize,
    pub(crate) parents: Vec<StageId>,
    pub(crate) children: Vec<StageId>,
}

/// Checks that the stages form a non-empty DAG: unique ids, known parents,
/// no cycle. Returns the stages by id.
pub(crate) fn plan_stages(job: &JobSpec) -> Result<BTreeMap<StageId, StagePlan>, SchedulerError> {
    let invalid = |message: String| Err(SchedulerError::InvalidJob(message));
    if job.stages.is_empty() {
        return invalid("the job has no stages".to_string());
    }

    let mut plan = BTreeMap::new();
    for stage in &job.stages {
        let parents: BTreeSet<StageId> = stage.parents.iter().copied().collect();
        let entry = StagePlan {
            tasks: stage.tasks,
            parents: parents.into_iter().collect(),
            children: Vec::new(),
        };
        if plan.insert(stage.id, entry).is_some() {
            return invalid(format!("duplicate stage id {}", stage.id));
        }
    }

    let edges: Vec<(StageId, StageId)> = plan
        .iter()
        .flat_map(|(&child, stage)| stage.parents.iter().map(move |&parent| (parent, child)))
        .collect();
    for &(parent, child) in &edges {
        if parent == child {
            return invalid(format!("stage {child} is its own parent (cycle)"));
        }
        match plan.get_mut(&parent) {
            Some(stage) => stage.children.push(child),
            None => return invalid(format!("stage {child} has unknown parent stage {parent}")),
        }
    }

    // Kahn's algorithm: peel off stages whose parents are all peeled off;
    // whatever remains lies on or behind a cycle.
    let mut waiting: BTreeMap<StageId, usize> = plan
        .iter()
        .map(|(&id, stage)| (id, stage.parents.len()))
        .collect();
    let mut ready: Vec<StageId> = waiting
        .iter()
        .filter(|&(_, &count)| count == 0)
        .map(|(&id, _)| id)
        .collect();
    while let Some(id) = ready.pop() {
        waiting.remove(&id);
        for child in &plan[&id].children {
            let count = waiting.get_mut(child).expect("child of a stage is a stage");
            *count -= 1;
            if *count == 0 {
                ready.push(*child);
            }
        }
    }
    if !waiting.is_empty() {
        let stages: Vec<StageId> = waiting.into_keys().collect();
        return invalid(format!("the stage graph has a cycle (stages {stages:?})"));
    }
    Ok(plan)
}

/// The stages of a checked plan in topological order, parents first,
/// smallest stage id first among stages that are ready together (so ids
/// that already number parents first keep their order).
pub(crate) fn topological_order(plan: &BTreeMap<StageId, StagePlan>) -> Vec<StageId> {
    let mut waiting: BTreeMap<StageId, usize> = plan
        .iter()
        .map(|(&id, stage)| (id, stage.parents.len()))
        .collect();
    let mut ready: BTreeSet<StageId> = waiting
        .iter()
        .filter(|&(_, &count)| count == 0)
        .map(|(&id, _)| id)
        .collect();
    let mut order = Vec::with_capacity(plan.len());
    while let Some(id) = ready.pop_first() {
        order.push(id);
        for child in &plan[&id].children {
            let count = waiting.get_mut(child).expect("child of a stage is a stage");
            *count -= 1;
            if *count == 0 {
                ready.insert(*child);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::StageSpec;

    fn job(stages: &[(StageId, &[StageId])]) -> JobSpec {
        JobSpec {
            description: "test".to_string(),
            stages: stages
                .iter()
                .map(|&(id, parents)| StageSpec {
                    id,
                    tasks: 1,
                    parents: parents.to_vec(),
                })
                .collect(),
            pool: None,
            ..JobSpec::default()
        }
    }

    fn message(result: Result<BTreeMap<StageId, StagePlan>, SchedulerError>) -> String {
        match result {
            Err(SchedulerError::InvalidJob(message)) => message,
            other => panic!("expected InvalidJob, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_diamond_and_builds_children() {
        let plan = plan_stages(&job(&[(3, &[1, 2, 1]), (1, &[0]), (2, &[0]), (0, &[])])).unwrap();
        assert_eq!(plan[&0].children, vec![1, 2]);
        assert_eq!(plan[&3].parents, vec![1, 2]);
        assert!(plan[&3].children.is_empty());
    }

    #[test]
    fn topological_order_puts_parents_first_then_smaller_ids() {
        let plan = plan_stages(&job(&[(0, &[5]), (5, &[]), (3, &[]), (1, &[3, 0])])).unwrap();
        assert_eq!(topological_order(&plan), vec![3, 5, 0, 1]);
    }

    #[test]
    fn rejects_invalid_graphs() {
        assert!(message(plan_stages(&job(&[]))).contains("no stages"));
        assert!(message(plan_stages(&job(&[(0, &[]), (0, &[])]))).contains("duplicate stage id 0"));
        assert!(message(plan_stages(&job(&[(0, &[7])]))).contains("unknown parent stage 7"));
        assert!(message(plan_stages(&job(&[(0, &[0])]))).contains("own parent"));
        let cycle = message(plan_stages(&job(&[
            (0, &[]),
            (1, &[0, 3]),
            (2, &[1]),
            (3, &[2]),
        ])));
        assert!(cycle.contains("cycle (stages [1, 2, 3])"), "{cycle}");
    }
}
