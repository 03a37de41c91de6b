//! Scheduler dispatch rate: 10,000 no-op tasks across 100 pools.
//!
//! 100 jobs, one per pool, each a single stage of 100 tasks that return at
//! once, are submitted together to a scheduler with 2 slots; the time runs
//! from the first submission to the end of the last job, so it covers
//! submission, every dispatch decision (FAIR re-sorts the pools for every
//! single slot), the task wrapper and the completion bookkeeping. Tasks/s
//! is the dispatch rate. The same 10,000 tasks in one FAIR pool and under
//! FIFO show what the pool ordering costs. A fresh scheduler is made (and
//! dropped) outside the timed region for every run.
//!
//! `many_pools` reads an allocation file of 10,000 or 100,000 pools, starts
//! a FAIR scheduler with them and runs one 2-task job in every tenth pool:
//! loading and dispatch must stay close to linear in the pools.
//!
//! `cargo bench --workspace --bench dispatch` (see benches/README.md).

use std::sync::Arc;

use divan::Bencher;
use divan::counter::ItemsCount;
use fairway_scheduler::{
    JobSpec, Scheduler, SchedulerConfig, SchedulingMode, StageSpec, TaskRunner,
    parse_allocation_str,
};

const TASKS: usize = 10_000;
const SLOTS: usize = 2;

fn main() {
    divan::main();
}

#[path = "../tests/common/workload.rs"]
mod workload;
use workload::{NoOp, allocation_xml, one_job_in_every_tenth_pool};

fn scheduler(mode: SchedulingMode) -> Scheduler {
    Scheduler::new(SchedulerConfig {
        slots: SLOTS,
        mode,
        ..SchedulerConfig::default()
    })
    .expect("scheduler")
}

/// Submits `TASKS` no-op tasks as one job per pool and waits for all.
fn run_all(scheduler: &Scheduler, pools: usize) {
    let runner: Arc<dyn TaskRunner> = Arc::new(NoOp);
    let handles: Vec<_> = (0..pools)
        .map(|p| {
            scheduler
                .submit(
                    JobSpec {
                        description: format!("job {p}"),
                        stages: vec![StageSpec {
                            id: 0,
                            tasks: TASKS / pools,
                            parents: vec![],
                        }],
                        pool: Some(format!("pool{p}")),
                        ..JobSpec::default()
                    },
                    Arc::clone(&runner),
                )
                .expect("submit")
        })
        .collect();
    let mut tasks = 0;
    for handle in handles {
        tasks += futures::executor::block_on(handle.wait())
            .expect("job")
            .tasks;
    }
    assert_eq!(tasks as usize, TASKS);
}

#[divan::bench(args = [100, 1], sample_count = 20, sample_size = 1)]
fn fair(bencher: Bencher<'_, '_>, pools: usize) {
    bencher
        .counter(ItemsCount::new(TASKS))
        .with_inputs(|| scheduler(SchedulingMode::Fair))
        .bench_local_values(|s| {
            run_all(&s, pools);
            // Returned, so that its shutdown is dropped outside the timing.
            s
        });
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn fifo(bencher: Bencher<'_, '_>) {
    bencher
        .counter(ItemsCount::new(TASKS))
        .with_inputs(|| scheduler(SchedulingMode::Fifo))
        .bench_local_values(|s| {
            run_all(&s, 100);
            s
        });
}

#[divan::bench(args = [10_000, 100_000], sample_count = 5, sample_size = 1)]
fn many_pools(bencher: Bencher<'_, '_>, pools: usize) {
    bencher
        .counter(ItemsCount::new(pools))
        .with_inputs(|| allocation_xml(pools))
        .bench_local_values(|text| {
            let allocation =
                parse_allocation_str(&text, "fairscheduler.xml", true).expect("allocation");
            let scheduler = Scheduler::new(SchedulerConfig {
                slots: SLOTS,
                mode: SchedulingMode::Fair,
                pools: allocation.pools,
                allocation_file_loaded: true,
                ..SchedulerConfig::default()
            })
            .expect("scheduler");
            one_job_in_every_tenth_pool(&scheduler, pools);
            scheduler
        });
}
