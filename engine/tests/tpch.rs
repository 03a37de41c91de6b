//! All 22 TPC-H queries at SF 0.1 through the stage engine under several
//! settings, each compared with plain DataFusion (no stage split) on the
//! same data.

mod common;

use common::{
    assert_same_rows, is_ordered, plain_rows, plain_tpch, register_tpch, session, tpch_data,
};
use fairway_tpch as tpch;

async fn check_all_queries(slots: usize, partitions: usize, shuffle_memory: usize) {
    let dir = tpch_data(0.1);
    let session = session(slots, partitions, shuffle_memory);
    register_tpch(&session, &dir).await;
    let plain = plain_tpch(&dir, partitions).await;
    for q in 1..=22 {
        let sql = tpch::query(q).expect("query text");
        let label = format!(
            "Q{q} ({slots} slots, {partitions} partitions, shuffle memory {shuffle_memory})"
        );
        let ours = session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let expected = plain_rows(&plain, sql).await;
        assert!(!expected.is_empty(), "{label}: reference returned nothing");
        assert_same_rows(&label, &ours.batches, &expected, is_ordered(sql));
        assert!(ours.stages >= 2, "{label}: ran as {} stage(s)", ours.stages);
    }
    let stats = session.shuffle().stats();
    assert_eq!(
        stats.memory_used, 0,
        "shuffle memory released after every job"
    );
    if shuffle_memory == 0 {
        // Only empty map outputs may stay "in memory" (they hold 0 bytes).
        assert_eq!(stats.memory_peak, 0, "nothing kept in memory");
        assert!(stats.file_outputs > 0, "everything spilled to files");
    } else {
        assert!(stats.memory_outputs > 0);
    }
    let leftovers = common::job_folders(&session);
    assert!(
        leftovers.is_empty(),
        "job folders left behind: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_one_slot() {
    check_all_queries(1, 2, 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_two_slots_three_partitions() {
    check_all_queries(2, 3, 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_four_slots_eight_partitions() {
    check_all_queries(4, 8, 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_everything_spills() {
    check_all_queries(2, 4, 0).await;
}

/// SF 1 against the published TPC-H answers (shipped in the tpchgen crate):
/// a reference independent of DataFusion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_sf1_matches_published_answers() {
    let dir = tpch_data(1.0);
    let session = session(2, 4, 1 << 30);
    register_tpch(&session, &dir).await;
    for q in 1..=22 {
        let out = session
            .sql(tpch::query(q).unwrap())
            .await
            .unwrap_or_else(|e| panic!("Q{q}: {e}"));
        tpch::check_sf1_answer(q, &out.batches).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Q18 and Q21 at SF 1 under a 512 MiB memory limit (the shuffle keeps 128
/// MiB, DataFusion's operators share 384 MiB and spill beyond it) still
/// give the published answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_sf1_q18_q21_under_a_512_mib_memory_limit() {
    let dir = tpch_data(1.0);
    let mut config = fairway_engine::EngineConfig::with_slots(2).partitions(4);
    config.shuffle_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    config.set("fairway.memory.limit", "512MiB").unwrap();
    let session = fairway_engine::Session::new(config).unwrap();
    register_tpch(&session, &dir).await;
    for q in [18, 21] {
        let out = session
            .sql(tpch::query(q).unwrap())
            .await
            .unwrap_or_else(|e| panic!("Q{q}: {e}"));
        tpch::check_sf1_answer(q, &out.batches).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(session.memory_reserved(), 0);
}

/// The semi-join reduction of aggregates joined on their grouping key
/// (`fairway.optimizer.semi_join_reduction`): where it applies and where it
/// must not, each answer checked against plain DataFusion on tables with
/// NULL and duplicate keys, keys only one side has, and groups a `HAVING`
/// drops. "Reduced" is read from EXPLAIN (the reducer's alias).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_joined_on_their_keys_are_reduced_only_where_the_answer_stays() {
    let session = session(2, 3, 1 << 30);
    let plain = fairway_engine::plain_datafusion_context(3);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let rows = |n: usize, with: &mut dyn FnMut() -> String| {
        (0..n).map(|_| with()).collect::<Vec<_>>().join(", ")
    };
    let t = rows(300, &mut || {
        let k = if next(10) == 0 {
            "NULL".to_string()
        } else {
            next(40).to_string()
        };
        format!("({k}, {}, {})", next(5), next(20))
    });
    let p = rows(60, &mut || {
        let k = if next(12) == 0 {
            "NULL".to_string()
        } else {
            next(50).to_string()
        };
        format!("({k}, {})", next(3))
    });
    for create in [
        format!("create table t (k bigint, g bigint, q bigint) as values {t}"),
        format!("create table p (k bigint, flag bigint) as values {p}"),
    ] {
        session.sql(&create).await.unwrap();
        plain.sql(&create).await.unwrap().collect().await.unwrap();
    }
    let cases = [
        // Q17's shape: a correlated scalar subquery against a filtered scan.
        (
            "select sum(t.q) s, count(*) n from t, p where p.k = t.k and p.flag = 1 \
             and t.q > (select avg(t2.q) from t t2 where t2.k = p.k)",
            true,
        ),
        // A HAVING above the aggregate, an inner join.
        (
            "select p.k, a.total from p join (select k, sum(q) total from t group by k \
             having sum(q) > 20) a on a.k = p.k where p.flag = 2",
            true,
        ),
        // Two grouping columns, joined on one of them; LEFT with the
        // aggregate on the side whose unmatched rows are dropped.
        (
            "select p.k, a.g, a.total from p left join (select k, g, sum(q) total from t \
             group by k, g) a on a.k = p.k where p.flag = 0",
            true,
        ),
        // The aggregate on the side a LEFT join keeps whole.
        (
            "select a.k, a.total, f.flag from (select k, sum(q) total from t group by k) a \
             left join (select * from p where flag = 1) f on a.k = f.k",
            false,
        ),
        // FULL join, NULL-equals-NULL join, unfiltered other side, a join
        // on an aggregate's value instead of its key.
        (
            "select a.k, a.total, f.k from (select k, sum(q) total from t group by k) a \
             full join (select * from p where flag = 1) f on a.k = f.k",
            false,
        ),
        (
            "select f.k, a.total from (select * from p where flag = 1) f join \
             (select k, sum(q) total from t group by k) a on a.k is not distinct from f.k",
            false,
        ),
        (
            "select p.k, a.total from p join (select k, sum(q) total from t group by k) a \
             on a.k = p.k",
            false,
        ),
        (
            "select f.k, a.k from (select * from p where flag = 1) f join \
             (select k, sum(q) total from t group by k) a on a.total = f.k",
            false,
        ),
    ];
    let off = session.client();
    off.sql("set fairway.optimizer.semi_join_reduction = false")
        .await
        .unwrap();
    for (sql, reduced) in cases {
        let explain = session.sql(&format!("explain {sql}")).await.unwrap();
        let text = fairway_engine::rows_as_text(&explain.batches)
            .unwrap()
            .join("\n");
        assert_eq!(text.contains("__fairway_reducer"), reduced, "{sql}\n{text}");
        let expected = plain_rows(&plain, sql).await;
        let ours = session.sql(sql).await.unwrap();
        assert_same_rows(sql, &ours.batches, &expected, false);
        let text = fairway_engine::rows_as_text(
            &off.sql(&format!("explain {sql}")).await.unwrap().batches,
        )
        .unwrap()
        .join("\n");
        assert!(
            !text.contains("__fairway_reducer"),
            "the setting turns it off: {text}"
        );
    }

    // A semi join against a HAVING or a filtered scan moves below the inner
    // joins, onto the input whose columns it reads (TPC-H Q18), unless its
    // filter reads another input's columns; answers as plain DataFusion's.
    let pushed = [
        (
            "select p.k, p.flag, t.q from p join t on p.k = t.k \
             where p.k in (select k from t group by k having sum(q) > 40)",
            true,
        ),
        (
            "select p.k, t.g from p join t on p.flag = t.g \
             where t.k in (select k from p where flag = 2)",
            true,
        ),
        (
            "select p.k, t.g from p join t on p.flag = t.g \
             where exists (select 1 from p p2 where p2.flag = 1 and p2.k = t.k and p2.k > p.k)",
            false,
        ),
    ];
    for (sql, below) in pushed {
        let explain = session.sql(&format!("explain {sql}")).await.unwrap();
        let text = fairway_engine::rows_as_text(&explain.batches)
            .unwrap()
            .join("\n");
        let logical = text.split("physical_plan").next().unwrap();
        let semi = logical.find("LeftSemi Join").expect("a semi join");
        let inner = logical.find("Inner Join").expect("an inner join");
        assert_eq!(semi > inner, below, "{sql}\n{text}");
        let expected = plain_rows(&plain, sql).await;
        let ours = session.sql(sql).await.unwrap();
        assert_same_rows(sql, &ours.batches, &expected, false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_filtered_scans_join_their_table_first_with_the_same_rows() {
    let session = session(2, 3, 1 << 30);
    let plain = fairway_engine::plain_datafusion_context(3);
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut rows = |n: usize, columns: &[u64]| random_rows(&mut state, n, columns);
    // fact (f) -> dim (d, by d.k) -> nat (n, by d.nk); fact -> o (by o.k).
    let f = rows(500, &[30, 40, 10]);
    let d = rows(40, &[30, 6]);
    let n = rows(8, &[6, 3]);
    let o = rows(60, &[40, 2]);
    for create in [
        format!("create table f (dk bigint, ok bigint, v bigint) as values {f}"),
        format!("create table d (k bigint, nk bigint) as values {d}"),
        format!("create table n (k bigint, name bigint) as values {n}"),
        format!("create table o (k bigint, status bigint) as values {o}"),
    ] {
        session.sql(&create).await.unwrap();
        plain.sql(&create).await.unwrap().collect().await.unwrap();
    }
    let cases = [
        // Q21's shape: the nation-like filter joins `d` before `f` does.
        (
            "select d.k, f.v, n.name from d, f, o, n where d.k = f.dk and o.k = f.ok \
             and o.status = 1 and d.nk = n.k and n.name = 2",
            true,
        ),
        // Q21's exactly: a semi join above, projections between the joins,
        // `f` range-filtered (so `o` cannot move onto it) and `o`
        // point-filtered: `n` still moves down to `d`.
        (
            "select d.k, n.name from d, f, o, n where d.k = f.dk and o.k = f.ok \
             and f.v > 3 and o.status = 1 and d.nk = n.k and n.name = 2 \
             and exists (select 1 from f f2 where f2.ok = f.ok and f2.dk <> f.dk)",
            true,
        ),
        // Q7's: two point filters on two tables, one of them listed values.
        (
            "select d.k, f.v from d, f, o, n where d.k = f.dk and o.k = f.ok \
             and d.nk = n.k and (n.name = 0 or n.name = 2) and o.status in (0, 1)",
            true,
        ),
        // A range filter is no point filter; a filtered table is not a target.
        (
            "select d.k, f.v from d, f, n where d.k = f.dk and d.nk = n.k and n.name > 0",
            false,
        ),
        (
            "select d.k, f.v from d, f, n where d.k = f.dk and d.nk = n.k and n.name = 1 \
             and d.k > 3",
            false,
        ),
    ];
    let off = session.client();
    off.sql("set fairway.optimizer.filtered_joins_first = false")
        .await
        .unwrap();
    let logical = |batches: &[datafusion::arrow::array::RecordBatch]| {
        let text = fairway_engine::rows_as_text(batches).unwrap().join("\n");
        text.split("physical_plan").next().unwrap().to_string()
    };
    for (sql, moved) in cases {
        let on = logical(
            &session
                .sql(&format!("explain {sql}"))
                .await
                .unwrap()
                .batches,
        );
        let not = logical(&off.sql(&format!("explain {sql}")).await.unwrap().batches);
        assert_eq!(on != not, moved, "{sql}\n{on}\n{not}");
        // Moved: `n` joins `d` below `d`'s join with `f` (a deeper join is
        // printed later); not moved: above it, as written.
        let below =
            |plan: &str| plan.find("d.nk = n.k").unwrap() > plan.find("d.k = f.dk").unwrap();
        assert_eq!(below(&on), moved, "{sql}\n{on}");
        assert!(!below(&not), "{sql}\n{not}");
        let expected = plain_rows(&plain, sql).await;
        assert_same_rows(
            sql,
            &session.sql(sql).await.unwrap().batches,
            &expected,
            false,
        );
        assert_same_rows(sql, &off.sql(sql).await.unwrap().batches, &expected, false);
    }
    // TPC-H Q21 itself: `nation` joins `supplier` before `lineitem` does.
    let tpch_session = common::session(2, 3, 1 << 30);
    register_tpch(&tpch_session, &tpch_data(0.1)).await;
    let explain = format!("explain {}", tpch::query(21).unwrap());
    let plan = logical(&tpch_session.sql(&explain).await.unwrap().batches);
    let at = |key: &str| {
        plan.find(key)
            .unwrap_or_else(|| panic!("no {key} in\n{plan}"))
    };
    assert!(
        at("s_nationkey = nation.n_nationkey") > at("s_suppkey = l1.l_suppkey"),
        "Q21: nation not joined to supplier first:\n{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_joins_build_from_the_side_that_wrote_fewer_rows_with_the_same_answers() {
    let dir = tpch_data(0.1);
    let session = partitioned_joins_session();
    register_tpch(&session, &dir).await;
    let plain = plain_tpch(&dir, 3).await;
    let mut swapped = Vec::new();
    for q in 1..=22 {
        let sql = tpch::query(q).expect("query text");
        let label = format!("Q{q} with partitioned joins");
        let ours = session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_same_rows(
            &label,
            &ours.batches,
            &plain_rows(&plain, sql).await,
            is_ordered(sql),
        );
        if explain_analyze(&session, sql).await.contains("adaptive: ") {
            swapped.push(q);
        }
    }
    // Q21's anti join builds from the late line items (~380 K rows at SF
    // 0.1) as DataFusion plans it, and probes with the ~7 K rows of the
    // other joins.
    assert!(swapped.contains(&21), "joins swapped in {swapped:?}");
    let off = session.client();
    off.sql("set fairway.adaptive.build_side = false")
        .await
        .unwrap();
    let sql = tpch::query(21).unwrap();
    assert!(!explain_analyze(&off, sql).await.contains("adaptive: "));
    assert_same_rows(
        "Q21, adaptive build sides off",
        &off.sql(sql).await.unwrap().batches,
        &plain_rows(&plain, sql).await,
        false,
    );
}

async fn explain_analyze(session: &fairway_engine::Session, sql: &str) -> String {
    let output = session
        .sql(&format!("explain analyze {sql}"))
        .await
        .unwrap();
    fairway_engine::rows_as_text(&output.batches)
        .unwrap()
        .join("\n")
}

/// `n` rows for a `VALUES` list: one value below `m` per column of maximum
/// `m`, about one in eleven `NULL`, drawn from `state` (xorshift).
fn random_rows(state: &mut u64, n: usize, columns: &[u64]) -> String {
    let mut next = |m: u64| {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state % m
    };
    (0..n)
        .map(|_| {
            let values: Vec<String> = columns
                .iter()
                .map(|&m| {
                    if next(11) == 0 {
                        "NULL".to_string()
                    } else {
                        next(m).to_string()
                    }
                })
                .collect();
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_join_type_swapped_at_run_time_gives_the_same_rows() {
    let session = partitioned_joins_session();
    let plain = fairway_engine::plain_datafusion_context(3);
    let mut state = 0x0bad_cafe_f00d_d00du64;
    // `big` looks small to the planner behind a filter it cannot estimate
    // (it keeps every row), so DataFusion builds from it; `small` has a
    // third of its rows.
    let big = random_rows(&mut state, 1200, &[200, 50]);
    let small = random_rows(&mut state, 300, &[200, 50]);
    for create in [
        format!("create table big (k bigint, v bigint) as values {big}"),
        format!("create table small (k bigint, v bigint) as values {small}"),
    ] {
        session.sql(&create).await.unwrap();
        plain.sql(&create).await.unwrap().collect().await.unwrap();
    }
    let b = "(select * from big where v is null or v <> -1) b";
    let mut swapped = 0;
    for on in ["b.k = s.k", "b.k = s.k and b.v > s.v"] {
        let cases = [
            format!("select b.k, b.v, s.v from {b} join small s on {on}"),
            format!("select b.k, b.v, s.v from {b} left join small s on {on}"),
            format!("select b.k, b.v, s.v from {b} right join small s on {on}"),
            format!("select b.k, b.v, s.v from {b} full join small s on {on}"),
            format!("select b.k, b.v from {b} where exists (select 1 from small s where {on})"),
            format!("select b.k, b.v from {b} where not exists (select 1 from small s where {on})"),
            format!("select s.k, s.v from small s where exists (select 1 from {b} where {on})"),
            format!("select s.k, s.v from small s where not exists (select 1 from {b} where {on})"),
        ];
        for sql in cases {
            let expected = plain_rows(&plain, &sql).await;
            let ours = session
                .sql(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert_same_rows(&sql, &ours.batches, &expected, false);
            if explain_analyze(&session, &sql).await.contains("adaptive: ") {
                swapped += 1;
            }
        }
    }
    // The rows are only worth comparing if joins were swapped.
    assert!(swapped >= 4, "only {swapped} of 16 queries swapped a join");
}

/// A session of 2 slots and 3 partitions whose every join is partitioned,
/// so that both sides of each are shuffle reads whose rows are known when
/// the join's stage starts.
fn partitioned_joins_session() -> fairway_engine::Session {
    let mut config = fairway_engine::EngineConfig::with_slots(2).partitions(3);
    config.shuffle_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for key in [
        "datafusion.optimizer.hash_join_single_partition_threshold",
        "datafusion.optimizer.hash_join_single_partition_threshold_rows",
    ] {
        config.datafusion.push((key.to_string(), "0".to_string()));
    }
    fairway_engine::Session::new(config).expect("session")
}
