//! Job-level admission to a cluster: how many whole jobs of each pool may
//! run at once on an engine that schedules tasks itself (Ballista).
//!
//! fairway's own scheduler shares slots task by task. A cluster scheduler
//! such as Ballista's knows nothing of pools: it fills free executor cores
//! from whatever jobs it has. So on a cluster fairway applies pools one
//! level up, to jobs: [`JobAdmission`] holds `slots` *job slots* (fairway's
//! `--cluster-slots`), and a job waits in its pool until it gets one.
//!
//! * **FIFO**: jobs start in submission order while a job slot is free;
//!   pools are ignored.
//! * **FAIR**: a pool's running jobs are bounded by its share of the job
//!   slots, `max(minShare, ceil(slots x weight / W))` (at most `slots`),
//!   where `W` sums the weights of the pools that have running or waiting
//!   jobs now. A pool alone gets every slot; as soon as another pool has
//!   work, the first stops being admitted past its share (running jobs are
//!   never stopped). When a job slot frees, the eligible pools (waiting
//!   jobs, below their bound) are ordered by Spark's FAIR comparator
//!   (needy pools, `running < minShare`, first; then the smaller
//!   `running / weight`; then the name) and the first one's oldest waiting
//!   job starts. Within a pool jobs start in submission order: at job level
//!   every waiting job runs nothing yet, so Spark's FIFO and FAIR orders
//!   within a pool agree.
//!
//! A pool's `maxRunningJobs` caps its bound, and its `maxQueuedJobs`
//! refuses a job that would wait behind that many of the pool's jobs
//! ([`SchedulerError::QueueFull`]), as on the stage engine.
//!
//! This is job-level fairness, not task-level: a long job holds its job
//! slot until it ends, and how its tasks share executor cores with other
//! admitted jobs is the cluster scheduler's business.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::SchedulerError;
use crate::policy::{SortKey, compare_fair};
use crate::pool::{DEFAULT_POOL, PoolConfig, SchedulingMode};

/// Bounds how many jobs run at once, per pool (see the module docs).
#[derive(Clone)]
pub struct JobAdmission {
    inner: Arc<Inner>,
}

struct Inner {
    slots: usize,
    mode: SchedulingMode,
    /// Configured pools by name; others get Spark's defaults.
    pools: BTreeMap<String, PoolConfig>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: BTreeMap<String, usize>,
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    pool: String,
    admit: oneshot::Sender<JobPermit>,
}

/// A job slot, held while the job runs; dropping it lets the next job in.
#[must_use = "the job slot is given back when the permit is dropped"]
pub struct JobPermit {
    inner: Arc<Inner>,
    pool: String,
    /// False for a permit that never reached its job (counted back by
    /// hand under the lock).
    armed: bool,
}

impl std::fmt::Debug for JobPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobPermit")
            .field("pool", &self.pool)
            .finish()
    }
}

impl JobAdmission {
    /// `slots` job slots (at least 1), shared by `mode`; `pools` as read
    /// from an allocation file (used in FAIR mode).
    pub fn new(slots: usize, mode: SchedulingMode, pools: Vec<PoolConfig>) -> Self {
        Self {
            inner: Arc::new(Inner {
                slots: slots.max(1),
                mode,
                pools: pools.into_iter().map(|p| (p.name.clone(), p)).collect(),
                state: Mutex::default(),
            }),
        }
    }

    /// Waits until a job of `pool` may start. Dropping the future before it
    /// is ready leaves the queue (a cancelled job takes no slot). Fails at
    /// once with [`SchedulerError::QueueFull`] when the job would have to
    /// wait and `maxQueuedJobs` jobs of its pool wait already.
    pub async fn admit(&self, pool: &str) -> Result<JobPermit, SchedulerError> {
        let (admit, admitted) = oneshot::channel();
        {
            let mut state = self.inner.lock();
            state.waiting.retain(|w| !w.admit.is_closed());
            let config = self.inner.config(pool);
            if let Some(limit) = config.max_queued_jobs {
                let waiting = state.waiting.iter().filter(|w| w.pool == pool).count();
                if waiting >= limit && !self.inner.could_start(&state, pool) {
                    return Err(SchedulerError::QueueFull {
                        pool: pool.to_string(),
                        limit,
                        running_limit: config.max_running_jobs.unwrap_or(self.inner.slots),
                    });
                }
            }
            state.waiting.push_back(Waiter {
                pool: pool.to_string(),
                admit,
            });
            self.inner.dispatch(&mut state);
        }
        // Dispatch sends the permit or keeps the sender while the future
        // lives; a permit sent to a future dropped since is dropped with
        // the channel, which gives its slot back.
        Ok(admitted
            .await
            .expect("the admission queue keeps a waiter until it sends"))
    }

    /// Running jobs per pool now.
    pub fn running(&self) -> BTreeMap<String, usize> {
        self.inner
            .lock()
            .running
            .iter()
            .filter(|&(_, &n)| n > 0)
            .map(|(p, &n)| (p.clone(), n))
            .collect()
    }

    /// Jobs waiting for a job slot now.
    pub fn waiting(&self) -> usize {
        let mut state = self.inner.lock();
        state.waiting.retain(|w| !w.admit.is_closed());
        state.waiting.len()
    }

    /// The bound on `pool`'s running jobs if it and `active` (other pools
    /// with work) compete now; `slots` in FIFO mode.
    pub fn share(&self, pool: &str, active: &[&str]) -> usize {
        let mut pools: Vec<&str> = active.to_vec();
        pools.push(pool);
        self.inner.bound(pool, &pools)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn config(&self, pool: &str) -> PoolConfig {
        self.pools.get(pool).cloned().unwrap_or_else(|| PoolConfig {
            mode: if pool == DEFAULT_POOL {
                SchedulingMode::Fair
            } else {
                SchedulingMode::Fifo
            },
            ..PoolConfig::new(pool)
        })
    }

    /// Whether a job of `pool` submitted now would start without waiting:
    /// a job slot is free, nobody of its pool waits, and the pool is below
    /// its bound.
    fn could_start(&self, state: &State, pool: &str) -> bool {
        let total: usize = state.running.values().sum();
        if total >= self.slots || state.waiting.iter().any(|w| w.pool == pool) {
            return false;
        }
        let mut active = active_pools(state);
        active.push(pool);
        state.running.get(pool).copied().unwrap_or(0) < self.bound(pool, &active)
    }

    /// `max(minShare, ceil(slots x weight / W))`, at most `slots` and at
    /// least 1, with `W` the weights of `active` (distinct names). Pools
    /// with weight 0 or less count as weight 0; if all do, they share
    /// equally.
    fn bound(&self, pool: &str, active: &[&str]) -> usize {
        if self.mode == SchedulingMode::Fifo {
            return self.slots;
        }
        let most = self.config(pool).max_running_jobs.unwrap_or(usize::MAX);
        self.fair_bound(pool, active).min(most)
    }

    /// [`bound`](Self::bound) without the pool's `maxRunningJobs`.
    fn fair_bound(&self, pool: &str, active: &[&str]) -> usize {
        let mut names: Vec<&str> = active.to_vec();
        names.sort_unstable();
        names.dedup();
        let weight = |p: &str| f64::from(self.config(p).weight.max(0));
        let total: f64 = names.iter().map(|p| weight(p)).sum();
        let share = if total > 0.0 {
            (self.slots as f64 * weight(pool) / total).ceil() as usize
        } else {
            self.slots.div_ceil(names.len().max(1))
        };
        let min_share = usize::try_from(self.config(pool).min_share.max(0)).unwrap_or(0);
        share.max(min_share).clamp(1, self.slots)
    }

    /// Starts waiting jobs while job slots are free and some pool may take
    /// one.
    fn dispatch(self: &Arc<Self>, state: &mut State) {
        state.waiting.retain(|w| !w.admit.is_closed());
        loop {
            let total: usize = state.running.values().sum();
            if total >= self.slots || state.waiting.is_empty() {
                return;
            }
            let Some(index) = self.next_waiter(state) else {
                return;
            };
            let waiter = state.waiting.remove(index).expect("index in range");
            *state.running.entry(waiter.pool.clone()).or_default() += 1;
            let permit = JobPermit {
                inner: Arc::clone(self),
                pool: waiter.pool.clone(),
                armed: true,
            };
            if let Err(mut permit) = waiter.admit.send(permit) {
                // The job left the queue meanwhile.
                permit.armed = false;
                if let Some(n) = state.running.get_mut(&waiter.pool) {
                    *n -= 1;
                }
            }
        }
    }

    /// The queue position of the job to start next, if any pool may start
    /// one.
    fn next_waiter(&self, state: &State) -> Option<usize> {
        if self.mode == SchedulingMode::Fifo {
            return Some(0);
        }
        let running = |p: &str| state.running.get(p).copied().unwrap_or(0);
        let mut active = active_pools(state);
        active.sort_unstable();
        active.dedup();
        let configs: Vec<PoolConfig> = active
            .iter()
            .filter(|p| state.waiting.iter().any(|w| w.pool == **p))
            .filter(|p| running(p) < self.bound(p, &active))
            .map(|p| self.config(p))
            .collect();
        fn key<'a>(c: &'a PoolConfig, running: usize) -> SortKey<'a> {
            SortKey {
                name: &c.name,
                running,
                weight: c.weight,
                min_share: c.min_share,
                priority: 0,
                stage: None,
            }
        }
        let best = configs
            .iter()
            .min_by(|a, b| compare_fair(&key(a, running(&a.name)), &key(b, running(&b.name))))?;
        state.waiting.iter().position(|w| w.pool == best.name)
    }
}

/// Pools with running or waiting jobs (a name may repeat).
fn active_pools(state: &State) -> Vec<&str> {
    state
        .running
        .iter()
        .filter(|&(_, &n)| n > 0)
        .map(|(p, _)| p.as_str())
        .chain(state.waiting.iter().map(|w| w.pool.as_str()))
        .collect()
}

impl Drop for JobPermit {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.inner.lock();
        if let Some(n) = state.running.get_mut(&self.pool) {
            *n = n.saturating_sub(1);
        }
        self.inner.dispatch(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pool(name: &str, weight: i32, min_share: i32) -> PoolConfig {
        PoolConfig {
            name: name.to_string(),
            mode: SchedulingMode::Fifo,
            weight,
            min_share,
            ..PoolConfig::default()
        }
    }

    /// Admits `pool` in the background and reports the order of admission
    /// through `order`.
    fn spawn_job(
        admission: &JobAdmission,
        pool: &'static str,
        order: Arc<Mutex<Vec<&'static str>>>,
        release: Arc<tokio::sync::Notify>,
    ) -> tokio::task::JoinHandle<()> {
        let admission = admission.clone();
        tokio::spawn(async move {
            let permit = admission.admit(pool).await.unwrap();
            order.lock().unwrap().push(pool);
            release.notified().await;
            drop(permit);
        })
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    #[tokio::test]
    async fn a_pool_alone_gets_every_slot_then_is_bounded_by_its_share() {
        let admission = JobAdmission::new(4, SchedulingMode::Fair, vec![]);
        let order = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(tokio::sync::Notify::new());
        let mut jobs = Vec::new();
        for _ in 0..4 {
            jobs.push(spawn_job(&admission, "a", order.clone(), release.clone()));
            settle().await;
        }
        assert_eq!(admission.running()["a"], 4, "alone, a takes all 4 slots");
        for _ in 0..4 {
            jobs.push(spawn_job(&admission, "a", order.clone(), release.clone()));
            settle().await;
        }
        for _ in 0..4 {
            jobs.push(spawn_job(&admission, "b", order.clone(), release.clone()));
            settle().await;
        }
        // Two of a's jobs end: b is below its share (2 of 4), a is not.
        release.notify_one();
        release.notify_one();
        settle().await;
        let running = admission.running();
        assert_eq!((running["a"], running["b"]), (2, 2), "{running:?}");
        // From now on the pools alternate at their bound of 2 each.
        for _ in 0..4 {
            release.notify_one();
            settle().await;
            let running = admission.running();
            assert!(running.values().sum::<usize>() <= 4, "{running:?}");
            assert!(running.values().all(|&n| n <= 2), "{running:?}");
        }
        for _ in 0..12 {
            release.notify_one();
            settle().await;
        }
        for job in jobs {
            job.await.unwrap();
        }
        assert_eq!(order.lock().unwrap().len(), 12);
        assert!(admission.running().is_empty());
        assert_eq!(admission.waiting(), 0);
    }

    #[test]
    fn shares_follow_weight_and_min_share() {
        let admission = JobAdmission::new(
            6,
            SchedulingMode::Fair,
            vec![pool("etl", 2, 0), pool("adhoc", 1, 0), pool("vip", 1, 5)],
        );
        assert_eq!(admission.share("etl", &[]), 6, "alone: every slot");
        assert_eq!(admission.share("etl", &["adhoc"]), 4);
        assert_eq!(admission.share("adhoc", &["etl"]), 2);
        assert_eq!(admission.share("vip", &["etl"]), 5, "minShare wins");
        assert_eq!(
            admission.share("other", &["etl"]),
            2,
            "unknown pools weigh 1"
        );
        let fifo = JobAdmission::new(3, SchedulingMode::Fifo, vec![]);
        assert_eq!(fifo.share("a", &["b", "c"]), 3);
    }

    #[tokio::test]
    async fn a_needy_pool_goes_first_and_fifo_keeps_submission_order() {
        let admission = JobAdmission::new(
            1,
            SchedulingMode::Fair,
            vec![pool("batch", 1, 0), pool("urgent", 1, 1)],
        );
        let order = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(tokio::sync::Notify::new());
        let first = spawn_job(&admission, "batch", order.clone(), release.clone());
        settle().await;
        let second = spawn_job(&admission, "batch", order.clone(), release.clone());
        settle().await;
        let third = spawn_job(&admission, "urgent", order.clone(), release.clone());
        settle().await;
        for _ in 0..3 {
            release.notify_one();
            settle().await;
        }
        for job in [first, second, third] {
            job.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["batch", "urgent", "batch"]);

        let fifo = JobAdmission::new(1, SchedulingMode::Fifo, vec![pool("urgent", 1, 1)]);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut jobs = Vec::new();
        for p in ["batch", "batch", "urgent"] {
            jobs.push(spawn_job(&fifo, p, order.clone(), release.clone()));
            settle().await;
        }
        for _ in 0..3 {
            release.notify_one();
            settle().await;
        }
        for job in jobs {
            job.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["batch", "batch", "urgent"]);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_takes_no_slot() {
        let admission = JobAdmission::new(1, SchedulingMode::Fair, vec![]);
        let held = admission.admit("a").await.unwrap();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit("b").await.unwrap() })
        };
        settle().await;
        assert_eq!(admission.waiting(), 1);
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(admission.waiting(), 0);
        drop(held);
        assert!(admission.running().is_empty(), "nobody took the slot");
        let again = admission.admit("c").await.unwrap();
        assert_eq!(admission.running()["c"], 1);
        drop(again);
    }

    #[tokio::test]
    async fn max_running_jobs_bounds_a_pool_and_a_full_queue_refuses() {
        let etl = PoolConfig {
            mode: SchedulingMode::Fair,
            max_running_jobs: Some(1),
            max_queued_jobs: Some(1),
            ..PoolConfig::new("etl")
        };
        // Four job slots, but etl may run one job at a time.
        let admission = JobAdmission::new(4, SchedulingMode::Fair, vec![etl]);
        let first = admission.admit("etl").await.unwrap();
        let second = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit("etl").await.unwrap() })
        };
        settle().await;
        assert_eq!(admission.waiting(), 1, "the second etl job waits");
        let error = admission.admit("etl").await.unwrap_err();
        assert!(
            error.to_string().starts_with("pool 'etl' queue is full"),
            "{error}"
        );
        // Another pool is not bounded by etl's limits.
        let other = admission.admit("adhoc").await.unwrap();
        drop(first);
        let second = second.await.unwrap();
        assert_eq!(admission.running()["etl"], 1);
        drop((second, other));
    }
}
