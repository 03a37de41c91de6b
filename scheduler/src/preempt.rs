//! Cooperative preemption: which running tasks to ask to give their slot
//! back (see [`SchedulerConfig::preemption`](crate::SchedulerConfig::preemption)).
//!
//! Spark never takes a slot away: a pool that holds every slot keeps them
//! until its tasks end (section 5.5 of the reference notes, weakness 2).
//! Here tasks cannot be interrupted either, but they call a
//! [`YieldPoint`](crate::YieldPoint) between batches, and the scheduler can
//! ask a task to give its slot up there. This module decides *which* tasks
//! to ask, from a summary of the top-level pools; module `state` gathers the
//! summary after every change and sets or clears the tasks' request flags.
//!
//! # The rule
//!
//! Only top-level pools under a FAIR root take part, and a slot only ever
//! moves between two different top-level pools. Let `P` be the pool that the
//! root would hand the next free slot to (the first pool, in FAIR order, with
//! a task waiting: a pending partition or a suspended task), and `Q` another
//! pool with a running task. A task of `Q` is asked to yield when both hold:
//!
//! 1. **Strictly fairer.** `P` with one more running task would still be
//!    strictly further below its share than `Q` is now, by Spark's own
//!    comparator without the name tie-break ([`compare_share`]): a needy
//!    pool (below its minShare) before a satisfied one, then
//!    `running / minShare` among needy pools, `running / weight` among
//!    satisfied ones. With plain weights: `(running(P) + 1) / weight(P) <
//!    running(Q) / weight(Q)`.
//! 2. **The slot reaches `P`.** Once `Q` has given the task up (and the task
//!    waits in `Q` as a suspended one), the root sorts `P` before `Q`
//!    ([`compare_fair`], names included); otherwise the freed slot would go
//!    straight back to `Q`.
//!
//! Among the pools that qualify, the one most over its share is asked (the
//! greatest share key), and within it the task that started last, so that
//! older tasks finish; a task already asked is preferred to a new one, so
//! that a request stands until it is met or no longer wanted. The planner
//! then assumes the move happened (`Q` one task less, and one more waiting;
//! `P` one more running, one less waiting) and looks again, so exactly as
//! many tasks are asked as `P`'s waiting work and the fair split call for.
//! The running counts it starts from exclude nothing: the whole set of
//! requests is recomputed after every change, and requests that are no
//! longer in it are withdrawn.
//!
//! # Why this cannot thrash
//!
//! Give the `k`-th running task of pool `p` the value `key_p(k)` (the share
//! key of `p` running `k` tasks). A move takes the value `key_Q(running(Q))`
//! out of the multiset of values and puts in `key_P(running(P) + 1)`, which
//! rule 1 makes strictly smaller. The slot count is fixed and the values come
//! from a finite set, so the multiset cannot decrease forever: moves stop,
//! and no slot moves back and forth. Rule 1 compares `P` after the move with
//! `Q` *before* it; comparing with `Q` after it (`(running(P) + 1) /
//! weight(P) < (running(Q) - 1) / weight(Q)`) would refuse the very first
//! move of two equal pools (one holding both slots), and comparing needy
//! flags before the move only (`P` needy, `Q` not) would move a slot that
//! rule 1 then moves back (`P` reaches its minShare while `Q` drops below
//! its own, or `Q` is left with a lower weight ratio than `P`).
//!
//! minShare therefore stays what Spark makes it, a priority and not a
//! guarantee: a needy pool preempts a satisfied one only while the
//! satisfied one would stay satisfied (rule 2) and the needy one would not
//! then be more over its share than the pool it took from (rule 1).

use std::cmp::Ordering;

use crate::policy::{SortKey, compare_fair, compare_share};

/// A running task of a pool that could be asked to yield. Compares as the
/// preference to ask it: greater is asked first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Victim {
    /// Already asked to yield (keeps standing requests stable).
    pub(crate) asked: bool,
    /// Start order of the task (greater started later).
    pub(crate) sequence: u64,
}

/// What the planner needs of one top-level pool.
#[derive(Clone, Debug)]
pub(crate) struct PoolLoad<'a> {
    /// The pool's name (FAIR ties).
    pub(crate) name: &'a str,
    /// The pool's weight.
    pub(crate) weight: i32,
    /// The pool's minShare.
    pub(crate) min_share: i32,
    /// Tasks of the pool holding a slot.
    pub(crate) running: usize,
    /// Tasks of the pool waiting for a slot: pending partitions of its
    /// submitted stages and suspended tasks.
    pub(crate) waiting: usize,
    /// Running tasks of the pool that may be asked to yield, most preferred
    /// first (descending [`Victim`] order).
    pub(crate) victims: Vec<Victim>,
}

impl PoolLoad<'_> {
    fn key(&self, running: usize) -> SortKey<'_> {
        SortKey {
            name: self.name,
            running,
            weight: self.weight,
            min_share: self.min_share,
            priority: 0,
            stage: None,
        }
    }
}

/// How many tasks of each pool (the first ones of its `victims`) to ask to
/// yield, given the pools in root order and the number of free slots.
pub(crate) fn plan(pools: &[PoolLoad<'_>], free_slots: usize) -> Vec<usize> {
    let mut running: Vec<usize> = pools.iter().map(|pool| pool.running).collect();
    let mut waiting: Vec<usize> = pools.iter().map(|pool| pool.waiting).collect();
    let mut asked = vec![0; pools.len()];
    // Free slots go first, as dispatch would hand them out (normally there
    // are none left while anything waits).
    for _ in 0..free_slots {
        let Some(pool) = first_waiting(pools, &running, &waiting) else {
            break;
        };
        running[pool] += 1;
        waiting[pool] -= 1;
    }
    while let Some(taker) = first_waiting(pools, &running, &waiting) {
        let now = pools[taker].key(running[taker]);
        let after = pools[taker].key(running[taker] + 1);
        let mut chosen: Option<usize> = None;
        for (giver, pool) in pools.iter().enumerate() {
            if giver == taker || asked[giver] >= pool.victims.len() || running[giver] == 0 {
                continue;
            }
            let held = pool.key(running[giver]);
            let fairer = compare_share(&after, &held) == Ordering::Less;
            let reaches_taker = compare_fair(&now, &pool.key(running[giver] - 1)) == Ordering::Less;
            if !(fairer && reaches_taker) {
                continue;
            }
            let better = match chosen {
                None => true,
                Some(best) => match compare_share(&held, &pools[best].key(running[best])) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal => {
                        pool.victims[asked[giver]] > pools[best].victims[asked[best]]
                    }
                },
            };
            if better {
                chosen = Some(giver);
            }
        }
        let Some(giver) = chosen else {
            break;
        };
        asked[giver] += 1;
        running[giver] -= 1;
        waiting[giver] += 1;
        running[taker] += 1;
        waiting[taker] -= 1;
    }
    asked
}

/// The pool the root would hand the next slot to: the first, in FAIR order
/// (a stable sort: the earlier pool on a full tie), with a task waiting.
fn first_waiting(pools: &[PoolLoad<'_>], running: &[usize], waiting: &[usize]) -> Option<usize> {
    let mut first: Option<usize> = None;
    for (index, pool) in pools.iter().enumerate() {
        if waiting[index] == 0 {
            continue;
        }
        let before = match first {
            None => true,
            Some(best) => {
                compare_fair(&pool.key(running[index]), &pools[best].key(running[best]))
                    == Ordering::Less
            }
        };
        if before {
            first = Some(index);
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool whose running tasks all may be asked, started in order.
    fn pool(
        name: &str,
        weight: i32,
        min_share: i32,
        running: usize,
        waiting: usize,
    ) -> PoolLoad<'_> {
        PoolLoad {
            name,
            weight,
            min_share,
            running,
            waiting,
            victims: (0..running as u64)
                .rev()
                .map(|sequence| Victim {
                    asked: false,
                    sequence,
                })
                .collect(),
        }
    }

    #[test]
    fn a_newcomer_gets_an_equal_share_and_no_more() {
        // 2 slots held by "long"; "short" waits with 2 tasks: one slot moves.
        let pools = [pool("long", 1, 0, 2, 0), pool("short", 1, 0, 0, 2)];
        assert_eq!(plan(&pools, 0), [1, 0]);
        // Once it has moved (the yielded task waits in "long"), nothing more.
        let pools = [pool("long", 1, 0, 1, 1), pool("short", 1, 0, 1, 1)];
        assert_eq!(plan(&pools, 0), [0, 0]);
        // 8 slots, three pools: each gets close to a third.
        let pools = [
            pool("a", 1, 0, 8, 5),
            pool("b", 1, 0, 0, 9),
            pool("c", 1, 0, 0, 9),
        ];
        assert_eq!(plan(&pools, 0), [5, 0, 0]);
    }

    #[test]
    fn asks_only_for_the_waiting_work() {
        let pools = [pool("long", 1, 0, 8, 0), pool("short", 1, 0, 0, 1)];
        assert_eq!(plan(&pools, 0), [1, 0]);
        // Nothing waits: nothing is asked, whatever the imbalance.
        let pools = [pool("long", 1, 0, 8, 0), pool("short", 1, 0, 0, 0)];
        assert_eq!(plan(&pools, 0), [0, 0]);
        // A free slot serves the waiting task first.
        let pools = [pool("long", 1, 0, 7, 0), pool("short", 1, 0, 0, 1)];
        assert_eq!(plan(&pools, 1), [0, 0]);
    }

    #[test]
    fn weights_set_the_split() {
        // 4 slots, weights 1 and 3: a keeps one.
        let pools = [pool("a", 1, 0, 4, 0), pool("b", 3, 0, 0, 10)];
        assert_eq!(plan(&pools, 0), [3, 0]);
        // Names reversed: the heavy pool wins ties by name now, same split.
        let pools = [pool("light", 1, 0, 4, 0), pool("heavy", 3, 0, 0, 10)];
        assert_eq!(plan(&pools, 0), [3, 0]);
        // The heavy pool holding everything keeps 3 of 4.
        let pools = [pool("a", 1, 0, 0, 10), pool("b", 3, 0, 4, 0)];
        assert_eq!(plan(&pools, 0), [0, 1]);
    }

    #[test]
    fn never_within_one_pool() {
        let pools = [pool("only", 1, 0, 4, 50)];
        assert_eq!(plan(&pools, 0), [0]);
    }

    #[test]
    fn min_share_is_a_priority_not_a_guarantee() {
        // A needy pool takes a slot from a satisfied one...
        let pools = [pool("etl", 1, 0, 4, 0), pool("bi", 1, 2, 0, 5)];
        assert_eq!(plan(&pools, 0), [2, 0]);
        // ...but not from a pool at its own minShare: the freed slot would
        // go straight back to it.
        let pools = [pool("q", 1, 2, 2, 0), pool("p", 1, 0, 0, 1)];
        assert_eq!(plan(&pools, 0), [0, 0]);
        // Nor when it would end up further over its share than the giver.
        let pools = [pool("q", 1, 0, 2, 0), pool("p", 1, 2, 0, 2)];
        assert_eq!(plan(&pools, 0), [1, 0]);
    }

    #[test]
    fn asks_the_most_over_share_pool_then_its_latest_task() {
        let mut pools = vec![
            pool("a", 1, 0, 2, 0),
            pool("b", 1, 0, 3, 0),
            pool("c", 1, 0, 0, 1),
        ];
        assert_eq!(plan(&pools, 0), [0, 1, 0]);
        // Equal pools: the one whose candidate started last.
        pools[1] = pool("b", 1, 0, 2, 0);
        pools[0].victims[0].sequence = 10;
        assert_eq!(plan(&pools, 0), [1, 0, 0]);
        // A standing request wins over a later start.
        pools[1].victims[0].asked = true;
        assert_eq!(plan(&pools, 0), [0, 1, 0]);
    }

    #[test]
    fn degenerate_weights_do_not_loop() {
        let pools = [
            pool("zero", 0, 0, 2, 3),
            pool("neg", -1, 0, 2, 3),
            pool("one", 1, 0, 0, 3),
        ];
        let asked = plan(&pools, 0);
        assert!(asked.iter().sum::<usize>() <= 4, "{asked:?}");
    }

    /// Plays preemption out: asked tasks yield one by one, each freed slot
    /// goes to the first waiting pool (as dispatch does), and planning runs
    /// again after every change. Returns the final running counts and the
    /// number of yields.
    fn settle(mut pools: Vec<PoolLoad<'_>>) -> (Vec<usize>, usize) {
        let mut yields = 0;
        let mut sequence = 1000;
        loop {
            let asked = plan(&pools, 0);
            let Some(giver) = asked.iter().position(|&count| count > 0) else {
                let running = pools.iter().map(|pool| pool.running).collect();
                return (running, yields);
            };
            yields += 1;
            assert!(yields < 1000, "thrashing: {pools:?}");
            pools[giver].running -= 1;
            pools[giver].waiting += 1;
            pools[giver].victims.remove(0);
            let running: Vec<usize> = pools.iter().map(|pool| pool.running).collect();
            let waiting: Vec<usize> = pools.iter().map(|pool| pool.waiting).collect();
            let taker = first_waiting(&pools, &running, &waiting).expect("a taker");
            pools[taker].running += 1;
            pools[taker].waiting -= 1;
            sequence += 1;
            pools[taker].victims.insert(
                0,
                Victim {
                    asked: false,
                    sequence,
                },
            );
        }
    }

    #[test]
    fn random_pools_settle_without_moving_slots_back() {
        let names = ["a", "b", "c", "d"];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..2000 {
            let count = 2 + next(3) as usize;
            let slots = 1 + next(12) as usize;
            let mut left = slots;
            let mut pools = Vec::new();
            for (index, name) in names.iter().take(count).enumerate() {
                let running = if index + 1 == count {
                    left
                } else {
                    next(left as u64 + 1) as usize
                };
                left -= running;
                let weight = next(5) as i32;
                let min_share = next(4) as i32;
                pools.push(pool(name, weight, min_share, running, next(6) as usize));
            }
            let before: Vec<usize> = pools.iter().map(|pool| pool.running).collect();
            let (after, yields) = settle(pools.clone());
            assert_eq!(after.iter().sum::<usize>(), slots);
            // Every yield moves one slot for good: never more yields than
            // slots times pools.
            assert!(
                yields <= slots * count,
                "{yields} yields from {before:?} to {after:?}: {pools:?}"
            );
        }
    }
}
