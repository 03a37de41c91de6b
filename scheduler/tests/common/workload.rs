//! Workloads shared by the scheduler's `many_pools` test and its
//! `dispatch` benchmark: a task runner that does nothing, allocation files
//! of many pools, and one small job in every tenth of them.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::sync::Arc;

use fairway_scheduler::{
    JobSpec, Scheduler, StageSpec, TaskContext, TaskError, TaskOutcome, TaskRunner,
};
use futures::future::{BoxFuture, FutureExt};

/// A task that succeeds at once.
pub struct NoOp;

impl TaskRunner for NoOp {
    fn run(&self, _task: TaskContext) -> BoxFuture<'static, Result<TaskOutcome, TaskError>> {
        async { Ok(TaskOutcome::default()) }.boxed()
    }
}

/// An allocation file of `pools` FAIR pools, one element per line, as a
/// generated file would be written (names `pool-<i>`, weights 1 to 3,
/// minShare 0 or 1).
pub fn allocation_xml(pools: usize) -> String {
    let mut text = String::with_capacity(pools * 110 + 64);
    text.push_str("<?xml version=\"1.0\"?>\n<allocations>\n");
    for i in 0..pools {
        writeln!(
            text,
            "  <pool name=\"pool-{i}\">\n    <schedulingMode>FAIR</schedulingMode>\
             <weight>{}</weight><minShare>{}</minShare>\n  </pool>",
            i % 3 + 1,
            i % 2
        )
        .unwrap();
    }
    text.push_str("</allocations>\n");
    text
}

/// One job of two no-op tasks in every tenth pool of [`allocation_xml`],
/// the last pool included, all submitted at once (so each freed slot picks
/// among up to `pools / 10` busy pools); waits for all of them. Returns the
/// jobs and the tasks that ran.
pub fn one_job_in_every_tenth_pool(scheduler: &Scheduler, pools: usize) -> (usize, u64) {
    let runner: Arc<dyn TaskRunner> = Arc::new(NoOp);
    let handles: Vec<_> = (0..pools)
        .rev()
        .step_by(10)
        .map(|i| {
            let job = JobSpec {
                description: format!("job in pool-{i}"),
                stages: vec![StageSpec {
                    id: 0,
                    tasks: 2,
                    parents: vec![],
                }],
                pool: Some(format!("pool-{i}")),
                ..JobSpec::default()
            };
            scheduler.submit(job, Arc::clone(&runner)).expect("submit")
        })
        .collect();
    let jobs = handles.len();
    let tasks = handles
        .into_iter()
        .map(|h| futures::executor::block_on(h.wait()).expect("job").tasks)
        .sum();
    (jobs, tasks)
}
