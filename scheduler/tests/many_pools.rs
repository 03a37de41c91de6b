//! Allocation files with very many pools: loading and scheduling stay
//! (close to) linear in the number of pools.
//!
//! `FAIRWAY_MANY_POOLS_REPORT=1 cargo test -p fairway-scheduler --test
//! many_pools -- --nocapture` prints the times of each phase.

use std::time::{Duration, Instant};

use fairway_scheduler::{Scheduler, SchedulerConfig, SchedulingMode, parse_allocation_str};

#[path = "common/workload.rs"]
mod workload;
use workload::{allocation_xml, one_job_in_every_tenth_pool};

/// Times of one run: parse, scheduler start, and running one job of two
/// tasks in every tenth pool.
#[derive(Debug, Clone, Copy)]
struct Times {
    parse: Duration,
    start: Duration,
    run: Duration,
}

impl Times {
    fn total(&self) -> Duration {
        self.parse + self.start + self.run
    }
}

fn load_and_schedule(pools: usize) -> Times {
    let text = allocation_xml(pools);
    let began = Instant::now();
    let allocation = parse_allocation_str(&text, "fairscheduler.xml", true).expect("parses");
    let parse = began.elapsed();
    assert_eq!(allocation.pools.len(), pools);
    assert!(
        allocation.warnings.is_empty(),
        "{:?}",
        &allocation.warnings[..1]
    );
    let last = allocation.pools.last().unwrap();
    assert_eq!(
        (last.name.clone(), last.weight, last.min_share),
        (
            format!("pool-{}", pools - 1),
            ((pools - 1) % 3 + 1) as i32,
            ((pools - 1) % 2) as i32
        )
    );

    let began = Instant::now();
    let scheduler = Scheduler::new(SchedulerConfig {
        slots: 2,
        mode: SchedulingMode::Fair,
        pools: allocation.pools,
        allocation_file_loaded: true,
        ..SchedulerConfig::default()
    })
    .expect("scheduler");
    let start = began.elapsed();

    // One job per tenth pool, the last pool included, all submitted at
    // once: each freed slot picks among up to `pools / 10` busy pools.
    let began = Instant::now();
    let (jobs, tasks) = one_job_in_every_tenth_pool(&scheduler, pools);
    let run = began.elapsed();
    assert_eq!(tasks as usize, 2 * jobs);
    let statuses = scheduler.pools();
    assert_eq!(statuses.len(), pools + 1, "the file's pools and default");
    assert_eq!(statuses[pools - 1].name, format!("pool-{}", pools - 1));
    assert_eq!(statuses.last().unwrap().name, "default");
    assert!(
        statuses
            .iter()
            .all(|p| p.running_tasks == 0 && p.active_stages == 0)
    );
    let times = Times { parse, start, run };
    if std::env::var_os("FAIRWAY_MANY_POOLS_REPORT").is_some() {
        eprintln!(
            "{pools} pools: parse {:?}, start {:?}, {jobs} jobs {:?}, total {:?}",
            times.parse,
            times.start,
            times.run,
            times.total()
        );
    }
    times
}

#[test]
fn loads_and_schedules_100000_pools() {
    let times = load_and_schedule(100_000);
    // Generous: a few seconds in a debug build on a loaded machine; the
    // quadratic code took minutes.
    assert!(
        times.total() < Duration::from_secs(120),
        "100,000 pools took {times:?}"
    );
}

#[test]
fn time_grows_far_slower_than_quadratically() {
    // Best of three, to keep out pauses of a shared machine. Ten times the
    // pools costs about ten times as long (n log n); quadratic code costs a
    // hundred times as long.
    let best = |pools| {
        (0..3)
            .map(|_| load_and_schedule(pools).total())
            .min()
            .unwrap()
    };
    let small = best(10_000);
    let large = best(100_000);
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
    assert!(
        ratio < 40.0,
        "10,000 pools: {small:?}, 100,000 pools: {large:?}: {ratio:.1} times as long"
    );
}

/// Prints the phase times for the pool counts in `FAIRWAY_MANY_POOLS`
/// (comma-separated, default 10000,100000): `cargo test -p
/// fairway-scheduler --test many_pools -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn measure() {
    let sizes = std::env::var("FAIRWAY_MANY_POOLS").unwrap_or_else(|_| "10000,100000".into());
    for pools in sizes.split(',') {
        let pools: usize = pools.trim().parse().expect("a pool count");
        let times = load_and_schedule(pools);
        eprintln!(
            "{pools} pools: parse {:?}, start {:?}, {} jobs {:?}, total {:?}",
            times.parse,
            times.start,
            pools.div_ceil(10),
            times.run,
            times.total()
        );
    }
}
