//! The ordering policy: which runnable stage gets the next free slot.
//!
//! This is the one place that decides the order in which tasks of different
//! jobs and stages start. It reproduces Spark's in-application scheduling
//! tree (`Pool`, `TaskSetManager`, `FIFOSchedulingAlgorithm`,
//! `FairSchedulingAlgorithm`); everything else (DAG tracking, slots,
//! retries, cancellation) lives in `state` and asks this module for the next
//! stage only.
//!
//! # The tree
//!
//! [`PoolTree`] is a tree of *pools* (interior nodes) and *task sets*
//! (leaves, one per submitted stage that still has tasks to run or running).
//! The root is a pool named `""` with weight 0 and minShare 0 whose mode is
//! the scheduler's [`SchedulingMode`]:
//!
//! * **FIFO root**: no pools at all. Every task set hangs directly under the
//!   root, ordered by (job id, stage id). The job's pool name is ignored for
//!   ordering (it is still reported in events).
//! * **FAIR root**: top-level pools, in this order: the configured pools (in
//!   allocation-file order), then `default` if none of them is named so, then
//!   pools created the first time a job names them (FIFO, weight 1,
//!   minShare 0; a warning is logged, as Spark does). A job's task sets go to
//!   the pool named by its [`JobSpec::pool`](crate::JobSpec::pool), or to
//!   `default`. Pools are never removed. When several pools share a name,
//!   all stay in the tree and a name finds the last one (Spark's map
//!   overwrite).
//!
//! `default` is FAIR when no allocation file was given (Spark >= 3.4,
//! SPARK-42157) and FIFO when a file was given that does not define it.
//!
//! # Ordering
//!
//! Each pool sorts its children with its own mode, using a stable sort (ties
//! keep insertion order), and the flat queue is the concatenation, depth
//! first, of the sorted children, leaving out task sets that have no task
//! waiting for a slot. A FIFO pool compares (job id, stage id); pools compare
//! as (0, none) under FIFO and so always tie. A FAIR pool compares
//! [`compare_fair`]. A task set's running count is its running tasks; a
//! pool's is the sum over its subtree, kept up to date by propagating every
//! start and end to all ancestors.
//!
//! The queue is taken anew each time **one** slot is handed out, so shares
//! emerge slot by slot. It is not rebuilt by sorting, though: each pool
//! keeps its children that have task sets in a sorted set, and a node whose
//! running count changes moves to its new place there (at every level up
//! to the root), so a pick costs a few logarithms and not a sort of every
//! pool (see [`PoolTree`]); the order is the same.
//!
//! Handing out slots one by one is finer than Spark, which sorts once per
//! offer round and lets the first task set take every slot of the
//! round it can use (Spark's per-round greediness at job start and in local
//! mode); it matches Spark's busy-cluster case, where each freed core is
//! offered on its own.
//!
//! # Task-set names
//!
//! FAIR ties are broken by name, and Spark names a task set
//! `TaskSet_<stageId>.<attempt>` with stage ids global in the application.
//! Our stage ids are per job, so every stage gets a global sequence number
//! when its job is submitted (in the job's topological order, parents first,
//! ties by stage id), and its task set is named `TaskSet_<sequence>.0`
//! (there are no stage attempts). Everything else (FIFO order, events) uses
//! the job-local stage id.
//!
//! # Deliberate differences from Spark
//!
//! * Pool names are looked up among top-level pools only. Spark's lookup
//!   also matches task-set names, so a pool named `TaskSet_3.0` could swallow
//!   jobs into a leaf; that quirk is not reproduced.
//! * When a job fails or is cancelled its running tasks are aborted at once,
//!   so its task sets leave the tree at once with their running counts;
//!   Spark keeps such "zombie" task sets counted until their tasks drain.
//! * With [`SchedulerConfig::preemption`](crate::SchedulerConfig::preemption)
//!   a task may give its slot back between batches and wait for another
//!   (module `preempt` decides when). While it waits it does not count as
//!   running, and its task set is schedulable: a suspended task competes
//!   for slots exactly like a pending one.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::job::{JobId, StageId};
use crate::pool::{DEFAULT_POOL, PoolConfig, PoolStatus, SchedulingMode};

/// What the comparators see of a pool or task set (Spark's `Schedulable`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SortKey<'a> {
    /// Pool name, or `TaskSet_<sequence>.0`.
    pub(crate) name: &'a str,
    /// Running tasks of the task set, or of the pool's whole subtree.
    pub(crate) running: usize,
    /// The pool's weight; 1 for a task set.
    pub(crate) weight: i32,
    /// The pool's minShare; 0 for a task set.
    pub(crate) min_share: i32,
    /// The task set's job (Spark's `priority`); 0 for a pool.
    pub(crate) priority: JobId,
    /// The task set's stage; `None` (Spark's -1) for a pool.
    pub(crate) stage: Option<StageId>,
}

/// Spark's `FIFOSchedulingAlgorithm`: smaller job id first, then smaller
/// stage id; otherwise a tie.
pub(crate) fn compare_fifo(a: &SortKey<'_>, b: &SortKey<'_>) -> Ordering {
    a.priority.cmp(&b.priority).then(a.stage.cmp(&b.stage))
}

/// Spark's `FairSchedulingAlgorithm`.
///
/// 1. A needy child (`running < minShare`) goes before one that is not.
/// 2. Two needy children: smaller `running / max(minShare, 1)` first.
/// 3. Neither needy: smaller `running / weight` first.
/// 4. Equal ratios: smaller name first, comparing UTF-16 code units as Java
///    does (so `TaskSet_10.0` < `TaskSet_9.0`); equal names tie.
///
/// Ratios are `f64` divisions compared in Java's `Double.compare` order:
/// -0.0 < 0.0 and NaN (weight 0 with no running task) after everything,
/// +infinity included.
pub(crate) fn compare_fair(a: &SortKey<'_>, b: &SortKey<'_>) -> Ordering {
    compare_share(a, b).then_with(|| compare_names(a.name, b.name))
}

/// Steps 1 to 3 of [`compare_fair`]: the share comparison without the name
/// tie-break. `Less` means `a` is further below its share than `b`.
/// Cooperative preemption (module `preempt`) uses it to tell whether moving
/// a slot makes the split strictly fairer.
pub(crate) fn compare_share(a: &SortKey<'_>, b: &SortKey<'_>) -> Ordering {
    match (is_needy(a), is_needy(b)) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (true, true) => java_compare(min_share_ratio(a), min_share_ratio(b)),
        (false, false) => java_compare(weight_ratio(a), weight_ratio(b)),
    }
}

fn is_needy(key: &SortKey<'_>) -> bool {
    i64::try_from(key.running).unwrap_or(i64::MAX) < i64::from(key.min_share)
}

fn min_share_ratio(key: &SortKey<'_>) -> f64 {
    key.running as f64 / f64::from(key.min_share).max(1.0)
}

fn weight_ratio(key: &SortKey<'_>) -> f64 {
    key.running as f64 / f64::from(key.weight)
}

/// Java's `Double.compare`: a total order in which every NaN equals every
/// other NaN and is greater than +infinity. `f64::total_cmp` alone would put
/// a NaN with the sign bit set (which `0.0 / 0.0` may produce) first.
fn java_compare(a: f64, b: f64) -> Ordering {
    let canonical = |x: f64| if x.is_nan() { f64::NAN } else { x };
    canonical(a).total_cmp(&canonical(b))
}

/// Java's `String.compareTo`: lexicographic by UTF-16 code unit. Equal to
/// byte order except between characters above U+FFFF and those in
/// U+E000..=U+FFFF.
pub(crate) fn compare_names(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Index of a node in the tree's arena.
pub(crate) type NodeId = usize;

/// The root pool.
pub(crate) const ROOT: NodeId = 0;

#[derive(Debug)]
struct Node {
    /// Shared with the node's [`Rank`] in its parent's queue.
    name: Arc<str>,
    parent: Option<NodeId>,
    /// Running tasks of this task set, or of this pool's subtree.
    running: usize,
    /// Task sets in this node's subtree (1 for a task set). A node with
    /// none adds nothing to the flat queue and is left out of its parent's
    /// [`NodeKind::Pool::queue`].
    task_sets: usize,
    /// Insertion order among all nodes ever inserted: the tie-break that
    /// makes the ordered queues behave as a stable sort of the children in
    /// insertion order.
    order: u64,
    kind: NodeKind,
}

#[derive(Debug)]
enum NodeKind {
    Pool {
        mode: SchedulingMode,
        weight: i32,
        min_share: i32,
        /// Most running tasks in the subtree: at the cap the pool is passed
        /// over (see [`PoolTree::first_schedulable`]).
        max_share: Option<usize>,
        /// The settings the pool was made with (for reports and the
        /// scheduler's job admission).
        config: Arc<PoolConfig>,
        /// Child pools, in insertion order (pools are never removed).
        pools: Vec<NodeId>,
        /// The children that have a task set in their subtree, in this
        /// pool's order. Kept sorted as running counts change, so that
        /// picking the next stage never sorts.
        queue: BTreeSet<Rank>,
    },
    TaskSet {
        job: JobId,
        stage: StageId,
    },
}

/// A child's place in its parent's queue: what the parent's comparator
/// reads of the child when it was last (re)inserted, and the insertion
/// order as the final tie-break (so equal keys keep insertion order, as
/// Spark's stable sort does). Ordering by the parent's mode with
/// [`compare_fifo`] or [`compare_fair`], then `order`, is a total order:
/// both comparators are total preorders, and `order` is unique.
#[derive(Clone, Debug)]
struct Rank {
    /// The parent's mode.
    mode: SchedulingMode,
    name: Arc<str>,
    running: usize,
    weight: i32,
    min_share: i32,
    priority: JobId,
    stage: Option<StageId>,
    order: u64,
    id: NodeId,
}

impl Rank {
    fn key(&self) -> SortKey<'_> {
        SortKey {
            name: &self.name,
            running: self.running,
            weight: self.weight,
            min_share: self.min_share,
            priority: self.priority,
            stage: self.stage,
        }
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        let compare = match self.mode {
            SchedulingMode::Fifo => compare_fifo,
            SchedulingMode::Fair => compare_fair,
        };
        compare(&self.key(), &other.key()).then(self.order.cmp(&other.order))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Rank {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Rank {}

/// Spark's scheduling tree of pools and task sets (see the module docs).
///
/// Spark sorts every pool's children each time it builds the flat queue.
/// Here each pool keeps its queue sorted instead (a [`BTreeSet`] of
/// [`Rank`]s, holding only children with task sets), and a running count
/// that changes re-inserts the node in its parent's queue, for it and each
/// ancestor. Handing out a slot walks the queues in order and stops at the
/// first schedulable task set: it costs the depth of the tree times a
/// logarithm, plus the task sets passed over (those with every task
/// running, at most one per busy slot), whatever the number of pools. The
/// order is exactly that of a stable sort of the children.
#[derive(Debug)]
pub(crate) struct PoolTree {
    /// Arena; removed task sets leave a `None` that `free` lets us reuse.
    nodes: Vec<Option<Node>>,
    free: Vec<NodeId>,
    /// The next [`Node::order`].
    next_order: u64,
    /// Top-level pools by name; a later pool of the same name wins.
    pools_by_name: HashMap<String, NodeId>,
    task_sets: HashMap<(JobId, StageId), NodeId>,
}

impl PoolTree {
    /// Builds the tree as Spark's schedulable builders do.
    ///
    /// With a FIFO root the tree stays empty and `pools` is ignored. With a
    /// FAIR root, `pools` become top-level pools in order, then `default` is
    /// appended unless one of them is named so: FIFO when
    /// `allocation_file_loaded`, FAIR otherwise (Spark >= 3.4 without a
    /// file).
    pub(crate) fn new(
        mode: SchedulingMode,
        pools: &[PoolConfig],
        allocation_file_loaded: bool,
    ) -> Self {
        let root = Node {
            name: Arc::from(""),
            parent: None,
            running: 0,
            task_sets: 0,
            order: 0,
            kind: NodeKind::Pool {
                mode,
                weight: 0,
                min_share: 0,
                max_share: None,
                config: Arc::new(PoolConfig {
                    mode,
                    weight: 0,
                    ..PoolConfig::default()
                }),
                pools: Vec::new(),
                queue: BTreeSet::new(),
            },
        };
        let mut tree = Self {
            nodes: vec![Some(root)],
            free: Vec::new(),
            next_order: 1,
            pools_by_name: HashMap::new(),
            task_sets: HashMap::new(),
        };
        if mode == SchedulingMode::Fifo {
            if !pools.is_empty() {
                log::info!(
                    "scheduling mode is FIFO: the {} configured pools are not used",
                    pools.len()
                );
            }
            return tree;
        }
        tree.nodes.reserve(pools.len() + 1);
        tree.pools_by_name.reserve(pools.len() + 1);
        for pool in pools {
            tree.add_pool(ROOT, pool.clone());
        }
        if !tree.pools_by_name.contains_key(DEFAULT_POOL) {
            let mode = if allocation_file_loaded {
                SchedulingMode::Fifo
            } else {
                SchedulingMode::Fair
            };
            tree.add_pool(
                ROOT,
                PoolConfig {
                    mode,
                    ..PoolConfig::new(DEFAULT_POOL)
                },
            );
        }
        tree
    }

    /// The root's mode.
    pub(crate) fn mode(&self) -> SchedulingMode {
        match self.node(ROOT).kind {
            NodeKind::Pool { mode, .. } => mode,
            NodeKind::TaskSet { .. } => unreachable!("the root is a pool"),
        }
    }

    /// The pool that a job's task sets go to: the root under FIFO; under
    /// FAIR the top-level pool named `requested` (or `default`), created
    /// with default settings if there is none yet.
    pub(crate) fn pool_for_job(&mut self, requested: Option<&str>) -> NodeId {
        if self.mode() == SchedulingMode::Fifo {
            return ROOT;
        }
        let name = requested.unwrap_or(DEFAULT_POOL);
        if let Some(&pool) = self.pools_by_name.get(name) {
            return pool;
        }
        log::warn!(
            "a job was submitted with scheduler pool {name:?}, which has not been configured; \
             created it with the default configuration (schedulingMode: FIFO, minShare: 0, weight: 1)"
        );
        self.add_pool(ROOT, PoolConfig::new(name))
    }

    /// Appends a pool to `parent`'s children. A top-level pool becomes the
    /// one its name finds.
    pub(crate) fn add_pool(&mut self, parent: NodeId, config: PoolConfig) -> NodeId {
        let name = config.name.clone();
        let id = self.insert(
            parent,
            Arc::from(name.as_str()),
            NodeKind::Pool {
                mode: config.mode,
                weight: config.weight,
                min_share: config.min_share,
                max_share: config.max_share,
                config: Arc::new(config),
                pools: Vec::new(),
                queue: BTreeSet::new(),
            },
        );
        if let NodeKind::Pool { pools, .. } = &mut self.node_mut(parent).kind {
            pools.push(id);
        }
        if parent == ROOT {
            self.pools_by_name.insert(name, id);
        }
        id
    }

    /// Appends the task set of a stage to `pool` (from
    /// [`pool_for_job`](Self::pool_for_job)), named after its global
    /// sequence number.
    pub(crate) fn add_task_set(&mut self, pool: NodeId, job: JobId, stage: StageId, sequence: u64) {
        let id = self.insert(
            pool,
            Arc::from(format!("TaskSet_{sequence}.0")),
            NodeKind::TaskSet { job, stage },
        );
        let previous = self.task_sets.insert((job, stage), id);
        debug_assert!(
            previous.is_none(),
            "task set of job {job} stage {stage} added twice"
        );
        // The task set and each ancestor that had none enter their
        // parents' queues.
        let mut current = id;
        loop {
            let node = self.node_mut(current);
            node.task_sets += 1;
            let (entered, parent) = (node.task_sets == 1, node.parent);
            let Some(parent) = parent else {
                break;
            };
            if entered {
                let rank = self.rank(current);
                self.queue_mut(parent).insert(rank);
            }
            current = parent;
        }
    }

    /// Removes a stage's task set, if it is in the tree. Tasks it still
    /// counts as running stop counting for its ancestors too.
    pub(crate) fn remove_task_set(&mut self, job: JobId, stage: StageId) {
        let Some(id) = self.task_sets.remove(&(job, stage)) else {
            return;
        };
        let running = self.node(id).running;
        if running > 0 {
            self.propagate(id, |count| *count -= running);
        }
        // The task set, and each ancestor left without task sets, leave
        // their parents' queues.
        let mut current = id;
        loop {
            let node = self.node(current);
            let (left, parent) = (node.task_sets == 1, node.parent);
            if left && let Some(parent) = parent {
                let rank = self.rank(current);
                self.queue_mut(parent).remove(&rank);
            }
            self.node_mut(current).task_sets -= 1;
            let Some(parent) = parent else {
                break;
            };
            current = parent;
        }
        self.nodes[id] = None;
        self.free.push(id);
    }

    /// A task of the stage got a slot: +1 on its task set and every ancestor.
    pub(crate) fn task_started(&mut self, job: JobId, stage: StageId) {
        if let Some(&id) = self.task_sets.get(&(job, stage)) {
            self.propagate(id, |running| *running += 1);
        }
    }

    /// A task of the stage gave its slot back: -1 on its task set and every
    /// ancestor.
    pub(crate) fn task_ended(&mut self, job: JobId, stage: StageId) {
        if let Some(&id) = self.task_sets.get(&(job, stage)) {
            self.propagate(id, |running| *running -= 1);
        }
    }

    /// The first task set of the flat queue for which `schedulable` (has a
    /// task waiting for a slot) holds: the stage that gets the next slot.
    pub(crate) fn first_schedulable(
        &self,
        schedulable: impl Fn(JobId, StageId) -> bool,
    ) -> Option<(JobId, StageId)> {
        let mut queue = Vec::with_capacity(1);
        self.collect_queue(ROOT, &schedulable, &mut queue, true);
        queue.pop()
    }

    /// The whole flat queue (Spark's `getSortedTaskSetQueue`), skipping task
    /// sets for which `schedulable` is false.
    #[cfg(test)]
    pub(crate) fn sorted_queue(
        &self,
        schedulable: impl Fn(JobId, StageId) -> bool,
    ) -> Vec<(JobId, StageId)> {
        let mut queue = Vec::new();
        self.collect_queue(ROOT, &schedulable, &mut queue, false);
        queue
    }

    /// Appends `node`'s part of the flat queue; with `first_only`, stops
    /// (returning true) at the first task set found.
    fn collect_queue(
        &self,
        node: NodeId,
        schedulable: &dyn Fn(JobId, StageId) -> bool,
        queue: &mut Vec<(JobId, StageId)>,
        first_only: bool,
    ) -> bool {
        match &self.node(node).kind {
            &NodeKind::TaskSet { job, stage } => {
                if schedulable(job, stage) {
                    queue.push((job, stage));
                    return first_only;
                }
                false
            }
            NodeKind::Pool {
                queue: ranks,
                max_share,
                ..
            } => {
                // A pool at its cap runs nothing more: its task sets wait.
                if max_share.is_some_and(|cap| self.node(node).running >= cap) {
                    return false;
                }
                ranks
                    .iter()
                    .any(|rank| self.collect_queue(rank.id, schedulable, queue, first_only))
            }
        }
    }

    /// The settings of pool `id`; `None` for a task set.
    pub(crate) fn pool_config(&self, id: NodeId) -> Option<&Arc<PoolConfig>> {
        match &self.node(id).kind {
            NodeKind::Pool { config, .. } => Some(config),
            NodeKind::TaskSet { .. } => None,
        }
    }

    /// How many more tasks pool `id` and its ancestors let start now
    /// (`usize::MAX` without caps).
    pub(crate) fn headroom(&self, id: NodeId) -> usize {
        let mut room = usize::MAX;
        let mut current = Some(id);
        while let Some(node_id) = current {
            let node = self.node(node_id);
            if let NodeKind::Pool {
                max_share: Some(cap),
                ..
            } = node.kind
            {
                room = room.min(cap.saturating_sub(node.running));
            }
            current = node.parent;
        }
        room
    }

    /// The top-level pools that have task sets, in root order (empty under
    /// a FIFO root), as their ids and the keys the root sorts them by.
    /// Pools without task sets run nothing and wait for nothing, so they
    /// neither take nor give slots.
    pub(crate) fn top_level_keys(&self) -> Vec<(NodeId, SortKey<'_>)> {
        let NodeKind::Pool { queue, .. } = &self.node(ROOT).kind else {
            return Vec::new();
        };
        let mut pools: Vec<&Rank> = queue
            .iter()
            .filter(|rank| matches!(self.node(rank.id).kind, NodeKind::Pool { .. }))
            .collect();
        pools.sort_unstable_by_key(|rank| rank.order);
        pools
            .into_iter()
            .map(|rank| (rank.id, self.key(rank.id)))
            .collect()
    }

    /// The top-level pool that `node` is in (itself if it is one); `None`
    /// for the root.
    pub(crate) fn top_level_of(&self, node: NodeId) -> Option<NodeId> {
        let mut current = node;
        loop {
            match self.node(current).parent {
                None => return None,
                Some(ROOT) => return Some(current),
                Some(parent) => current = parent,
            }
        }
    }

    /// The ids of the top-level pools in root order, as
    /// [`statuses`](Self::statuses) lists them.
    pub(crate) fn top_level_pools(&self) -> Vec<NodeId> {
        match &self.node(ROOT).kind {
            NodeKind::Pool { pools, .. } => pools.clone(),
            NodeKind::TaskSet { .. } => Vec::new(),
        }
    }

    /// The top-level pools in root order (empty under a FIFO root); job
    /// counts are the scheduler's and left at 0 here.
    pub(crate) fn statuses(&self) -> Vec<PoolStatus> {
        let NodeKind::Pool { pools, .. } = &self.node(ROOT).kind else {
            return Vec::new();
        };
        pools
            .iter()
            .filter_map(|&id| {
                let node = self.node(id);
                match &node.kind {
                    NodeKind::Pool {
                        mode,
                        weight,
                        min_share,
                        config,
                        ..
                    } => Some(PoolStatus {
                        name: node.name.to_string(),
                        mode: *mode,
                        weight: *weight,
                        min_share: *min_share,
                        running_tasks: node.running,
                        active_stages: node.task_sets,
                        max_share: config.max_share,
                        max_running_jobs: config.max_running_jobs,
                        max_queued_jobs: config.max_queued_jobs,
                        memory: config.memory,
                        timeout: config.timeout,
                        running_jobs: 0,
                        queued_jobs: 0,
                    }),
                    NodeKind::TaskSet { .. } => None,
                }
            })
            .collect()
    }

    fn key(&self, id: NodeId) -> SortKey<'_> {
        let node = self.node(id);
        match node.kind {
            NodeKind::Pool {
                weight, min_share, ..
            } => SortKey {
                name: &node.name,
                running: node.running,
                weight,
                min_share,
                priority: 0,
                stage: None,
            },
            NodeKind::TaskSet { job, stage } => SortKey {
                name: &node.name,
                running: node.running,
                weight: 1,
                min_share: 0,
                priority: job,
                stage: Some(stage),
            },
        }
    }

    /// `id`'s place in its parent's queue, as it is now.
    fn rank(&self, id: NodeId) -> Rank {
        let node = self.node(id);
        let parent = node.parent.expect("the root has no rank");
        let mode = match self.node(parent).kind {
            NodeKind::Pool { mode, .. } => mode,
            NodeKind::TaskSet { .. } => unreachable!("a task set has no children"),
        };
        let key = self.key(id);
        Rank {
            mode,
            name: Arc::clone(&node.name),
            running: key.running,
            weight: key.weight,
            min_share: key.min_share,
            priority: key.priority,
            stage: key.stage,
            order: node.order,
            id,
        }
    }

    fn queue_mut(&mut self, pool: NodeId) -> &mut BTreeSet<Rank> {
        match &mut self.node_mut(pool).kind {
            NodeKind::Pool { queue, .. } => queue,
            NodeKind::TaskSet { .. } => unreachable!("a task set has no children"),
        }
    }

    /// Applies `change` to the running count of the task set `from` and
    /// every ancestor, moving each to its new place in its parent's queue.
    fn propagate(&mut self, from: NodeId, change: impl Fn(&mut usize)) {
        let mut next = Some(from);
        while let Some(id) = next {
            let parent = self.node(id).parent;
            // Every node on the way up has a task set (`from`), so it is in
            // its parent's queue.
            let old = parent.map(|_| self.rank(id));
            change(&mut self.node_mut(id).running);
            if let (Some(parent), Some(old)) = (parent, old) {
                let new = self.rank(id);
                let queue = self.queue_mut(parent);
                let removed = queue.remove(&old);
                debug_assert!(removed, "node {id} was not in its parent's queue");
                queue.insert(new);
            }
            next = parent;
        }
    }

    fn insert(&mut self, parent: NodeId, name: Arc<str>, kind: NodeKind) -> NodeId {
        if matches!(self.node(parent).kind, NodeKind::TaskSet { .. }) {
            unreachable!("a task set has no children");
        }
        let node = Node {
            name,
            parent: Some(parent),
            running: 0,
            task_sets: 0,
            order: self.next_order,
            kind,
        };
        self.next_order += 1;
        match self.free.pop() {
            Some(id) => {
                self.nodes[id] = Some(node);
                id
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    fn node(&self, id: NodeId) -> &Node {
        self.nodes[id].as_ref().expect("live node")
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.nodes[id].as_mut().expect("live node")
    }

    /// A pool's child pools in insertion order (tests).
    #[cfg(test)]
    fn node_children(&self, id: NodeId) -> Vec<NodeId> {
        match &self.node(id).kind {
            NodeKind::Pool { pools, .. } => pools.clone(),
            NodeKind::TaskSet { .. } => Vec::new(),
        }
    }

    /// Running count of a node (tests).
    #[cfg(test)]
    fn running(&self, id: NodeId) -> usize {
        self.node(id).running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::SchedulingMode::{Fair, Fifo};
    use crate::pool::pool;

    fn pool_key(name: &str, running: usize, min_share: i32, weight: i32) -> SortKey<'_> {
        SortKey {
            name,
            running,
            weight,
            min_share,
            priority: 0,
            stage: None,
        }
    }

    fn task_set_key(name: &str, running: usize, job: JobId, stage: StageId) -> SortKey<'_> {
        SortKey {
            name,
            running,
            weight: 1,
            min_share: 0,
            priority: job,
            stage: Some(stage),
        }
    }

    /// Spark's PoolSuite model: task sets of `tasks` tasks; one scheduling
    /// step builds the queue, takes the first task set with a task left,
    /// and starts one task there.
    struct Model {
        tree: PoolTree,
        /// (job, stage) -> (tasks, launched)
        task_sets: HashMap<(JobId, StageId), (usize, usize)>,
        next_sequence: u64,
    }

    impl Model {
        fn new(mode: SchedulingMode, pools: &[PoolConfig], file: bool) -> Self {
            Self {
                tree: PoolTree::new(mode, pools, file),
                task_sets: HashMap::new(),
                next_sequence: 0,
            }
        }

        /// Adds a task set to the pool named `pool` (under FAIR), named
        /// after the next global sequence number.
        fn submit(&mut self, pool: Option<&str>, job: JobId, stage: StageId, tasks: usize) {
            let parent = self.tree.pool_for_job(pool);
            self.submit_under(parent, job, stage, tasks);
        }

        fn submit_under(&mut self, parent: NodeId, job: JobId, stage: StageId, tasks: usize) {
            self.tree
                .add_task_set(parent, job, stage, self.next_sequence);
            self.next_sequence += 1;
            self.task_sets.insert((job, stage), (tasks, 0));
        }

        fn queue(&self) -> Vec<(JobId, StageId)> {
            self.tree
                .sorted_queue(|job, stage| self.has_pending(job, stage))
        }

        fn has_pending(&self, job: JobId, stage: StageId) -> bool {
            let (tasks, launched) = self.task_sets[&(job, stage)];
            launched < tasks
        }

        fn step(&mut self) -> (JobId, StageId) {
            let picked = self
                .tree
                .first_schedulable(|job, stage| self.has_pending(job, stage))
                .expect("a schedulable task set");
            assert_eq!(Some(&picked), self.queue().first(), "first of the queue");
            self.task_sets.get_mut(&picked).unwrap().1 += 1;
            self.tree.task_started(picked.0, picked.1);
            picked
        }

        fn steps(&mut self, count: usize) -> Vec<(JobId, StageId)> {
            (0..count).map(|_| self.step()).collect()
        }

        fn pool(&self, name: &str) -> NodeId {
            self.tree.pools_by_name[name]
        }

        fn pool_names(&self) -> Vec<(String, SchedulingMode, i32, i32)> {
            self.tree
                .statuses()
                .into_iter()
                .map(|p| (p.name, p.mode, p.min_share, p.weight))
                .collect()
        }
    }

    fn named(
        pools: &[(&str, SchedulingMode, i32, i32)],
    ) -> Vec<(String, SchedulingMode, i32, i32)> {
        pools
            .iter()
            .map(|&(name, mode, min_share, weight)| (name.to_string(), mode, min_share, weight))
            .collect()
    }

    // ---- comparators ----

    #[test]
    fn fifo_orders_by_job_then_stage_and_pools_tie() {
        let a = task_set_key("TaskSet_9.0", 5, 1, 3);
        let b = task_set_key("TaskSet_1.0", 0, 2, 0);
        let c = task_set_key("TaskSet_0.0", 0, 1, 4);
        assert_eq!(compare_fifo(&a, &b), Ordering::Less, "job first");
        assert_eq!(compare_fifo(&a, &c), Ordering::Less, "then stage");
        assert_eq!(compare_fifo(&a, &a), Ordering::Equal);
        let p = pool_key("a", 0, 5, 1);
        let q = pool_key("b", 9, 0, 7);
        assert_eq!(compare_fifo(&p, &q), Ordering::Equal, "pools always tie");
    }

    #[test]
    fn fair_puts_needy_first_whatever_the_ratios() {
        // a: 3 of minShare 4 (needy, ratio 0.75); b: 0 of minShare 0, weight
        // 1000 (not needy, weight ratio 0).
        let a = pool_key("z", 3, 4, 1);
        let b = pool_key("a", 0, 0, 1000);
        assert_eq!(compare_fair(&a, &b), Ordering::Less);
        assert_eq!(compare_fair(&b, &a), Ordering::Greater);
    }

    #[test]
    fn fair_needy_is_strictly_below_min_share() {
        // At its minShare a pool is not needy any more.
        let at_min = pool_key("a", 2, 2, 1);
        let other = pool_key("b", 1, 0, 1);
        assert_eq!(compare_fair(&at_min, &other), Ordering::Greater);
        let below = pool_key("a", 1, 2, 1);
        assert_eq!(compare_fair(&below, &other), Ordering::Less);
    }

    #[test]
    fn fair_orders_two_needy_by_min_share_ratio() {
        // 2/5 = 0.4 < 1/2 = 0.5, although a runs more and has lower weight
        // ratio rules would say otherwise.
        let a = pool_key("b", 2, 5, 1);
        let b = pool_key("a", 1, 2, 100);
        assert_eq!(compare_fair(&a, &b), Ordering::Less);
        // minShare ratio uses max(minShare, 1): needy needs minShare >= 1,
        // so equal ratios fall to the name.
        let c = pool_key("c", 1, 2, 1);
        let d = pool_key("d", 2, 4, 1);
        assert_eq!(compare_fair(&c, &d), Ordering::Less);
        assert_eq!(compare_fair(&d, &c), Ordering::Greater);
    }

    #[test]
    fn fair_orders_satisfied_by_weight_ratio() {
        // 3/3 = 1.0 < 2/1 = 2.0
        let a = pool_key("b", 3, 0, 3);
        let b = pool_key("a", 2, 0, 1);
        assert_eq!(compare_fair(&a, &b), Ordering::Less);
        // minShare plays no part once both are satisfied: 4/2 = 2 > 1/1.
        let c = pool_key("a", 4, 3, 2);
        let d = pool_key("b", 1, 1, 1);
        assert_eq!(compare_fair(&c, &d), Ordering::Greater);
    }

    #[test]
    fn fair_breaks_ties_by_name_lexicographically() {
        let ten = task_set_key("TaskSet_10.0", 1, 9, 0);
        let nine = task_set_key("TaskSet_9.0", 1, 1, 0);
        assert_eq!(compare_fair(&ten, &nine), Ordering::Less);
        assert_eq!(compare_fair(&nine, &ten), Ordering::Greater);
        // Case-sensitive: 'B' (0x42) < 'a' (0x61).
        assert_eq!(
            compare_fair(&pool_key("B", 0, 0, 1), &pool_key("a", 0, 0, 1)),
            Ordering::Less
        );
        assert_eq!(
            compare_fair(&pool_key("x", 0, 0, 1), &pool_key("x", 0, 0, 1)),
            Ordering::Equal
        );
        // Java compares UTF-16 code units: a surrogate (0xD800) sorts before
        // U+FFFF although its code point (and UTF-8) is larger.
        assert_eq!(compare_names("\u{10000}", "\u{ffff}"), Ordering::Less);
        assert_eq!("\u{10000}".cmp("\u{ffff}"), Ordering::Greater);
    }

    #[test]
    fn fair_ratios_follow_java_double_order() {
        // weight 0: 1/0 = +inf, 0/0 = NaN; NaN after +inf; both after any
        // finite ratio.
        let nan = pool_key("a", 0, 0, 0);
        let inf = pool_key("b", 1, 0, 0);
        let big = pool_key("c", 1_000_000, 0, 1);
        assert_eq!(compare_fair(&big, &inf), Ordering::Less);
        assert_eq!(compare_fair(&inf, &nan), Ordering::Less);
        assert_eq!(compare_fair(&nan, &inf), Ordering::Greater);
        // NaN equals NaN: the name decides.
        let nan2 = pool_key("0", 0, 0, 0);
        assert_eq!(compare_fair(&nan2, &nan), Ordering::Less);
        // Negative weight: 0 / -1 = -0.0 < 0.0 = 0 / 1.
        let minus_zero = pool_key("z", 0, 0, -1);
        let zero = pool_key("a", 0, 0, 1);
        assert_eq!(compare_fair(&minus_zero, &zero), Ordering::Less);
        // A NaN with its sign bit set still sorts last.
        assert_eq!(java_compare(-f64::NAN, f64::INFINITY), Ordering::Greater);
        assert_eq!(java_compare(-f64::NAN, f64::NAN), Ordering::Equal);
    }

    // ---- tree ----

    #[test]
    fn full_ties_keep_insertion_order() {
        // Four pools that compare equal under FAIR (same counts, same name),
        // then three pools under a FIFO parent (pools always tie there).
        let same = pool("same", Fifo, 0, 1);
        let mut model = Model::new(
            Fair,
            &[same.clone(), same.clone(), same.clone(), same],
            true,
        );
        let pools: Vec<NodeId> = model.tree.node_children(ROOT)[..4].to_vec();
        for (job, &parent) in (1..).zip(pools.iter().rev()) {
            model.submit_under(parent, job, 0, 1);
        }
        assert_eq!(model.queue(), vec![(4, 0), (3, 0), (2, 0), (1, 0)]);

        let mut fifo_parent = Model::new(Fair, &[pool("outer", Fifo, 0, 1)], true);
        let outer = fifo_parent.pool("outer");
        let inner: Vec<NodeId> = ["z", "m", "a"]
            .iter()
            .map(|name| fifo_parent.tree.add_pool(outer, pool(name, Fair, 0, 1)))
            .collect();
        for (i, &p) in inner.iter().enumerate() {
            fifo_parent.submit_under(p, 1, i, 1);
        }
        assert_eq!(fifo_parent.queue(), vec![(1, 0), (1, 1), (1, 2)]);
    }

    #[test]
    fn fifo_root_ignores_pools() {
        let mut model = Model::new(Fifo, &[pool("fast", Fair, 10, 100)], true);
        assert!(model.tree.statuses().is_empty(), "no pools under FIFO");
        model.submit(Some("slow"), 2, 0, 2);
        model.submit(Some("fast"), 1, 1, 2);
        model.submit(None, 1, 0, 2);
        assert_eq!(model.tree.pool_for_job(Some("fast")), ROOT);
        assert_eq!(
            model.steps(6),
            vec![(1, 0), (1, 0), (1, 1), (1, 1), (2, 0), (2, 0)]
        );
        assert!(model.tree.statuses().is_empty(), "none created on use");
    }

    #[test]
    fn fifo_pool_under_fair_root_orders_by_job_then_stage() {
        let mut model = Model::new(Fair, &[pool("etl", Fifo, 0, 1)], true);
        // Submitted out of order; names would order them differently.
        model.submit(Some("etl"), 3, 0, 1);
        model.submit(Some("etl"), 2, 5, 1);
        model.submit(Some("etl"), 2, 1, 1);
        model.submit(Some("etl"), 4, 0, 1);
        assert_eq!(model.queue(), vec![(2, 1), (2, 5), (3, 0), (4, 0)]);
        assert_eq!(model.steps(4), vec![(2, 1), (2, 5), (3, 0), (4, 0)]);
    }

    #[test]
    fn fair_pool_orders_task_sets_by_running_then_name() {
        let mut model = Model::new(Fair, &[pool("shared", Fair, 0, 1)], true);
        // Sequence numbers 0..=10; TaskSet_10.0 sorts before TaskSet_2.0.
        for stage in 0..11 {
            model.submit(Some("shared"), 1, stage, 3);
        }
        let order = model.queue();
        assert_eq!(&order[..4], &[(1, 0), (1, 1), (1, 10), (1, 2)]);
        // Each step goes to a task set with the fewest running tasks.
        let picked = model.steps(11);
        assert_eq!(&picked[..4], &[(1, 0), (1, 1), (1, 10), (1, 2)]);
        let mut sorted = picked.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 11, "one task each before any second");
    }

    #[test]
    fn weighted_pools_share_slots_by_weight() {
        let mut model = Model::new(Fair, &[pool("a", Fifo, 0, 1), pool("b", Fifo, 0, 3)], true);
        model.submit(Some("a"), 1, 0, 100);
        model.submit(Some("b"), 2, 0, 100);
        let picked = model.steps(8);
        let b = picked.iter().filter(|(job, _)| *job == 2).count();
        assert_eq!(b, 6, "{picked:?}");
        // Ties go to the name: a (0/1) vs b (0/3) -> "a" first.
        assert_eq!(picked[0], (1, 0));
    }

    #[test]
    fn needy_pools_go_first_then_by_min_share_ratio() {
        // Like Spark's PoolSuite "Fair Scheduler Test": minShares 2, 3, 4.
        let pools = [
            pool("1", Fifo, 2, 1),
            pool("2", Fifo, 3, 1),
            pool("3", Fifo, 4, 1),
        ];
        let mut model = Model::new(Fair, &pools, true);
        for (job, name) in [(1, "1"), (2, "2"), (3, "3")] {
            model.submit(Some(name), job, 0, 10);
        }
        let jobs: Vec<JobId> = model.steps(12).into_iter().map(|(job, _)| job).collect();
        // Needy pools by minShare ratio (ties by name) until 9 = 2+3+4 run:
        // 0,0,0 -> 1; .5,0,0 -> 2; .5,.33,0 -> 3; .5,.33,.25 -> 3;
        // .5,.33,.5 -> 2; .5,.67,.5 -> 1 (name); then pool 1 is satisfied
        // and goes after the needy 3 (.5) and 2 (.67), 3 (.75). Then by
        // weight ratio: 2,3,4 -> 1; 3,3,4 -> 1 (name); 4,3,4 -> 2.
        assert_eq!(jobs, vec![1, 2, 3, 3, 2, 1, 3, 2, 3, 1, 1, 2]);
    }

    #[test]
    fn default_pool_is_fair_without_a_file() {
        let model = Model::new(Fair, &[], false);
        assert_eq!(model.pool_names(), named(&[("default", Fair, 0, 1)]));
        // Jobs in the default pool then share it FAIR: by running count.
        let mut model = model;
        model.submit(None, 1, 0, 5);
        model.submit(None, 2, 0, 5);
        let jobs: Vec<JobId> = model.steps(4).into_iter().map(|(job, _)| job).collect();
        assert_eq!(jobs, vec![1, 2, 1, 2]);
    }

    #[test]
    fn default_pool_is_fifo_when_a_file_lacks_it() {
        let mut model = Model::new(Fair, &[pool("etl", Fair, 1, 2)], true);
        assert_eq!(
            model.pool_names(),
            named(&[("etl", Fair, 1, 2), ("default", Fifo, 0, 1)])
        );
        model.submit(None, 1, 0, 3);
        model.submit(None, 2, 0, 3);
        let jobs: Vec<JobId> = model.steps(4).into_iter().map(|(job, _)| job).collect();
        assert_eq!(jobs, vec![1, 1, 1, 2], "FIFO inside default");
    }

    #[test]
    fn file_default_pool_wins() {
        let pools = [pool("x", Fifo, 0, 1), pool("default", Fair, 2, 5)];
        let model = Model::new(Fair, &pools, true);
        assert_eq!(
            model.pool_names(),
            named(&[("x", Fifo, 0, 1), ("default", Fair, 2, 5)])
        );
        // Also without the file flag: a configured default is never replaced.
        let model = Model::new(Fair, &pools, false);
        assert_eq!(model.pool_names().len(), 2);
    }

    #[test]
    fn unknown_pool_is_created_with_defaults_after_default() {
        let mut model = Model::new(Fair, &[pool("etl", Fair, 0, 1)], true);
        model.submit(Some("typo"), 1, 0, 1);
        model.submit(Some("second"), 2, 0, 1);
        model.submit(Some("typo"), 3, 0, 1);
        assert_eq!(
            model.pool_names(),
            named(&[
                ("etl", Fair, 0, 1),
                ("default", Fifo, 0, 1),
                ("typo", Fifo, 0, 1),
                ("second", Fifo, 0, 1),
            ])
        );
        let typo = model.tree.statuses()[2].clone();
        assert_eq!(typo.active_stages, 2, "second use finds the same pool");
        // The empty name is a pool name like any other (the root is not
        // found by name).
        assert_ne!(model.tree.pool_for_job(Some("")), ROOT);
        assert_eq!(model.pool_names().len(), 5);
    }

    #[test]
    fn duplicate_pool_names_find_the_last_one() {
        let pools = [pool("dup", Fifo, 0, 1), pool("dup", Fair, 3, 2)];
        let mut model = Model::new(Fair, &pools, true);
        model.submit(Some("dup"), 1, 0, 4);
        let statuses = model.tree.statuses();
        assert_eq!(statuses.len(), 3, "both stay, default appended");
        assert_eq!(
            (statuses[0].active_stages, statuses[1].active_stages),
            (0, 1)
        );
        assert_eq!(statuses[1].mode, Fair);
        model.step();
        let statuses = model.tree.statuses();
        assert_eq!(
            (statuses[0].running_tasks, statuses[1].running_tasks),
            (0, 1)
        );
    }

    #[test]
    fn running_counts_propagate_to_every_ancestor() {
        let mut model = Model::new(Fair, &[pool("outer", Fair, 0, 1)], true);
        let outer = model.pool("outer");
        let inner = model.tree.add_pool(outer, pool("inner", Fifo, 0, 1));
        model.submit_under(inner, 1, 0, 5);
        model.submit_under(outer, 2, 0, 5);
        model.steps(3);
        let (job1, job2) = (model.tree.task_sets[&(1, 0)], model.tree.task_sets[&(2, 0)]);
        let direct = model.tree.running(job1) + model.tree.running(job2);
        assert_eq!(direct, 3);
        assert_eq!(model.tree.running(inner), model.tree.running(job1));
        assert_eq!(model.tree.running(outer), 3);
        assert_eq!(model.tree.running(ROOT), 3);

        model.tree.task_ended(1, 0);
        model.tree.task_ended(2, 0);
        assert_eq!(model.tree.running(outer), 1);
        assert_eq!(model.tree.running(ROOT), 1);
        // Removing a task set takes its running tasks out of its ancestors.
        let still_running = model.tree.running(model.tree.task_sets[&(1, 0)])
            + model.tree.running(model.tree.task_sets[&(2, 0)]);
        assert_eq!(still_running, 1);
        model.tree.remove_task_set(1, 0);
        model.tree.remove_task_set(2, 0);
        assert_eq!(model.tree.running(inner), 0);
        assert_eq!(model.tree.running(outer), 0);
        assert_eq!(model.tree.running(ROOT), 0);
        assert_eq!(model.tree.statuses()[0].active_stages, 0);
    }

    #[test]
    fn nested_fair_pools_share_by_their_own_counts() {
        // Root FAIR over two pools with minShare 2 each; inside, FAIR pools.
        let pools = [pool("p0", Fair, 2, 1), pool("p1", Fair, 2, 1)];
        let mut model = Model::new(Fair, &pools, true);
        let (p0, p1) = (model.pool("p0"), model.pool("p1"));
        let p00 = model.tree.add_pool(p0, pool("p00", Fifo, 1, 1));
        let p01 = model.tree.add_pool(p0, pool("p01", Fifo, 0, 1));
        let p10 = model.tree.add_pool(p1, pool("p10", Fifo, 0, 3));
        model.submit_under(p00, 1, 0, 10);
        model.submit_under(p01, 2, 0, 10);
        model.submit_under(p10, 3, 0, 10);
        let jobs: Vec<JobId> = model.steps(6).into_iter().map(|(job, _)| job).collect();
        // p0 needy (0/2) ties p1 by ratio, "p0" < "p1"; inside p0, p00 is
        // needy (minShare 1) -> job 1. Then p1 (0/2) -> job 3. Then p0 and
        // p1 at 1/2 -> p0, where p00 is satisfied: p01 (0) -> job 2. p1
        // (1/2 < 2/2) -> job 3. Both at 2 (not needy, weight 1): p0 by name,
        // p00 1 vs p01 1 -> "p00" -> job 1; then p1 -> job 3.
        assert_eq!(jobs, vec![1, 3, 2, 3, 1, 3]);
        assert_eq!(model.tree.running(p0), 3);
        assert_eq!(model.tree.running(p1), 3);
    }

    #[test]
    fn task_sets_without_pending_tasks_are_skipped() {
        let mut model = Model::new(Fifo, &[], false);
        model.submit(None, 1, 0, 2);
        model.submit(None, 1, 1, 0);
        model.submit(None, 2, 0, 1);
        assert_eq!(model.queue(), vec![(1, 0), (2, 0)]);
        assert_eq!(model.steps(2), vec![(1, 0), (1, 0)]);
        // Job 1's stage 0 is fully launched but still counts as running.
        assert_eq!(model.queue(), vec![(2, 0)]);
        assert_eq!(model.step(), (2, 0));
        assert_eq!(model.tree.first_schedulable(|_, _| false), None);
        assert!(model.queue().is_empty());
    }

    #[test]
    fn skipped_task_sets_still_count_for_their_pool() {
        // Pool a's only task set has all its tasks running: it is skipped,
        // but its running tasks keep pool a behind b.
        let mut model = Model::new(Fair, &[pool("a", Fifo, 0, 1), pool("b", Fifo, 0, 1)], true);
        model.submit(Some("a"), 1, 0, 2);
        model.steps(2);
        model.submit(Some("a"), 1, 1, 5);
        model.submit(Some("b"), 2, 0, 5);
        assert_eq!(model.queue(), vec![(2, 0), (1, 1)]);
    }

    /// Spark's way to build the queue, as this module did before it kept
    /// queues sorted: every pool's live children in insertion order,
    /// stable-sorted by the pool's mode, depth first.
    fn reference_queue(
        tree: &PoolTree,
        schedulable: &dyn Fn(JobId, StageId) -> bool,
    ) -> Vec<(JobId, StageId)> {
        fn walk(
            tree: &PoolTree,
            node: NodeId,
            schedulable: &dyn Fn(JobId, StageId) -> bool,
            out: &mut Vec<(JobId, StageId)>,
        ) {
            match tree.node(node).kind {
                NodeKind::TaskSet { job, stage } => {
                    if schedulable(job, stage) {
                        out.push((job, stage));
                    }
                }
                NodeKind::Pool { mode, .. } => {
                    let mut children: Vec<NodeId> = (0..tree.nodes.len())
                        .filter(|&id| {
                            tree.nodes[id]
                                .as_ref()
                                .is_some_and(|n| n.parent == Some(node))
                        })
                        .collect();
                    children.sort_by_key(|&id| tree.node(id).order);
                    let compare = match mode {
                        Fifo => compare_fifo,
                        Fair => compare_fair,
                    };
                    children.sort_by(|&a, &b| compare(&tree.key(a), &tree.key(b)));
                    for child in children {
                        walk(tree, child, schedulable, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(tree, ROOT, schedulable, &mut out);
        out
    }

    #[test]
    fn kept_sorted_queues_match_sorting_every_time() {
        // A small deterministic generator (no dependency needed).
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let mut total_steps = 0;
        for round in 0..40 {
            let modes = [Fair, Fifo];
            let pools: Vec<PoolConfig> = (0..1 + next(6))
                .map(|i| {
                    // Repeated names, odd weights and minShares included.
                    let name = format!("p{}", next(4));
                    pool(
                        &name,
                        modes[next(2)],
                        next(4) as i32 - usize::from(i == 3) as i32,
                        next(4) as i32,
                    )
                })
                .collect();
            let mut model = Model::new(if round % 5 == 4 { Fifo } else { Fair }, &pools, true);
            // Nested pools under some top-level ones.
            let mut parents: Vec<NodeId> = model.tree.node_children(ROOT);
            for _ in 0..next(3) {
                if parents.is_empty() {
                    break;
                }
                let parent = parents[next(parents.len())];
                let inner = model.tree.add_pool(
                    parent,
                    pool("inner", modes[next(2)], next(3) as i32, 1 + next(3) as i32),
                );
                parents.push(inner);
            }
            if parents.is_empty() {
                parents.push(ROOT);
            }
            let mut live: Vec<(JobId, StageId)> = Vec::new();
            let mut running: Vec<(JobId, StageId)> = Vec::new();
            let mut job = 0;
            for _ in 0..300 {
                match next(10) {
                    0..=2 => {
                        job += 1;
                        for stage in 0..1 + next(3) {
                            let parent = parents[next(parents.len())];
                            model.submit_under(parent, job, stage, next(5));
                            live.push((job, stage));
                        }
                    }
                    3..=5
                        if model
                            .tree
                            .first_schedulable(|j, s| model.has_pending(j, s))
                            .is_some() =>
                    {
                        running.push(model.step());
                        total_steps += 1;
                    }
                    6..=7 if !running.is_empty() => {
                        let (j, s) = running.swap_remove(next(running.len()));
                        model.tree.task_ended(j, s);
                    }
                    8 if !live.is_empty() => {
                        let (j, s) = live.swap_remove(next(live.len()));
                        model.tree.remove_task_set(j, s);
                        running.retain(|&task| task != (j, s));
                    }
                    _ => {}
                }
                let expected = reference_queue(&model.tree, &|j, s| model.has_pending(j, s));
                assert_eq!(model.queue(), expected, "round {round}");
                let everything = reference_queue(&model.tree, &|_, _| true);
                assert_eq!(model.tree.sorted_queue(|_, _| true), everything);
                assert_eq!(model.tree.running(ROOT), running.len());
            }
        }
        assert!(
            total_steps > 1000,
            "the test exercised the queues: {total_steps}"
        );
    }

    #[test]
    fn removed_task_sets_free_their_slot_in_the_arena() {
        let mut model = Model::new(Fifo, &[], false);
        model.submit(None, 1, 0, 1);
        let before = model.tree.nodes.len();
        model.tree.remove_task_set(1, 0);
        model.submit(None, 2, 0, 1);
        assert_eq!(model.tree.nodes.len(), before, "slot reused");
        assert_eq!(model.queue(), vec![(2, 0)]);
        // Removing twice, or an unknown task set, does nothing.
        model.tree.remove_task_set(1, 0);
        model.tree.task_started(9, 9);
        assert_eq!(model.queue(), vec![(2, 0)]);
    }
}
