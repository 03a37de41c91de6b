//! The tournament join rule and SQL-standard `JOIN ... USING`.
//!
//! Results are compared with an independent reference: a small in-test
//! implementation of the standard join semantics (not plain DataFusion,
//! whose `FULL JOIN ... USING` chains are wrong, see ARCHITECTURE.md).

use fairway_engine::datafusion::logical_expr::LogicalPlan;
use fairway_engine::datafusion::prelude::{col, lit};
use fairway_engine::{EngineConfig, MergeHow, Session, merge_frames, rows_as_text};

fn session() -> Session {
    Session::new(EngineConfig::with_slots(2).partitions(3)).expect("session")
}

/// A client of `session` with the tournament rule off.
async fn rule_off_client(session: &Session) -> Session {
    let off = session.client();
    off.sql("set fairway.optimizer.tournament_joins = false")
        .await
        .unwrap();
    off
}

/// A small deterministic random generator (xorshift64*), so that every
/// failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum How {
    Inner,
    Left,
    Right,
    Full,
}

impl How {
    fn sql(self) -> &'static str {
        match self {
            How::Inner => "inner join",
            How::Left => "left join",
            How::Right => "right join",
            How::Full => "full join",
        }
    }
}

type Table = Vec<(Option<i64>, i64)>;

/// One output row of the reference: the merged key and one value per input.
type Row = (Option<i64>, Vec<Option<i64>>);

/// `rel JOIN t USING (k)` with the SQL standard's semantics: NULL keys never
/// match, and the output key is COALESCE(left key, right key).
fn reference_join(rel: Vec<Row>, t: &Table, how: How, width: usize) -> Vec<Row> {
    let mut out = Vec::new();
    let mut right_matched = vec![false; t.len()];
    for (k, vals) in &rel {
        let mut matched = false;
        for (j, (tk, tv)) in t.iter().enumerate() {
            if k.is_some() && k == tk {
                matched = true;
                right_matched[j] = true;
                let mut v = vals.clone();
                v.push(Some(*tv));
                out.push((*k, v));
            }
        }
        if !matched && matches!(how, How::Left | How::Full) {
            let mut v = vals.clone();
            v.push(None);
            out.push((*k, v));
        }
    }
    if matches!(how, How::Right | How::Full) {
        for (j, (tk, tv)) in t.iter().enumerate() {
            if !right_matched[j] {
                let mut v = vec![None; width];
                v.push(Some(*tv));
                out.push((*tk, v));
            }
        }
    }
    out
}

fn reference_chain(tables: &[Table], hows: &[How]) -> Vec<String> {
    let mut rel: Vec<Row> = tables[0]
        .iter()
        .map(|(k, v)| (*k, vec![Some(*v)]))
        .collect();
    for (i, how) in hows.iter().enumerate() {
        rel = reference_join(rel, &tables[i + 1], *how, i + 1);
    }
    let show = |v: &Option<i64>| v.map_or("NULL".to_string(), |x| x.to_string());
    let mut rows: Vec<String> = rel
        .iter()
        .map(|(k, vals)| {
            std::iter::once(show(k))
                .chain(vals.iter().map(show))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    rows.sort();
    rows
}

fn random_table(rng: &mut Rng, keys: u64) -> Table {
    let rows = match rng.below(6) {
        0 => 0, // empty inputs
        _ => rng.below(12) as usize,
    };
    (0..rows)
        .map(|_| {
            let k = if rng.below(8) == 0 {
                None
            } else {
                Some(rng.below(keys) as i64) // duplicates and missing keys
            };
            (k, rng.below(1000) as i64)
        })
        .collect()
}

async fn create_table(session: &Session, name: &str, value: &str, rows: &Table) {
    let sql = if rows.is_empty() {
        format!("create table {name} (k bigint, {value} bigint)")
    } else {
        let values: Vec<String> = rows
            .iter()
            .map(|(k, v)| format!("({}, {v})", k.map_or("NULL".to_string(), |k| k.to_string())))
            .collect();
        format!(
            "create table {name} (k bigint, {value} bigint) as values {}",
            values.join(", ")
        )
    };
    session.sql(&sql).await.expect("create table");
}

async fn sorted_rows(session: &Session, sql: &str) -> Vec<String> {
    let out = session
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = rows_as_text(&out.batches).unwrap();
    rows.sort();
    rows
}

async fn optimized_plan(session: &Session, sql: &str) -> LogicalPlan {
    let statement = session.parse_statements(sql).unwrap().remove(0);
    session
        .plan_statement(statement)
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap()
}

fn ceil_log2(n: usize) -> usize {
    n.next_power_of_two().trailing_zeros() as usize
}

/// Random chains of 2 to 24 inputs joined `USING (k)`, with random overlap,
/// NULL and duplicate keys, empty inputs and mixed join types, give the
/// standard answer with the rule on and off; all-FULL chains become trees
/// of depth ceil(log2 k).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_using_chains_match_the_reference() {
    let session = session();
    let off = rule_off_client(&session).await;
    for case in 0..40u64 {
        let seed = 0x9e37_79b9_7f4a_7c15 ^ (case + 1);
        let mut rng = Rng(seed);
        let inputs = match case {
            0 => 24,
            1 => 16,
            _ => 2 + rng.below(23) as usize,
        };
        let keys = 2 + rng.below(20);
        let style = rng.below(4);
        let hows: Vec<How> = (1..inputs)
            .map(|_| match style {
                0 | 1 => How::Full,
                2 => How::Inner,
                _ => [How::Full, How::Inner, How::Left, How::Right][rng.below(4) as usize],
            })
            .collect();
        let tables: Vec<Table> = (0..inputs).map(|_| random_table(&mut rng, keys)).collect();
        for (i, t) in tables.iter().enumerate() {
            create_table(&session, &format!("c{case}_t{i}"), &format!("v{i}"), t).await;
        }
        let mut sql = format!("select * from c{case}_t0");
        for (i, how) in hows.iter().enumerate() {
            sql.push_str(&format!(" {} c{case}_t{} using (k)", how.sql(), i + 1));
        }
        let expected = reference_chain(&tables, &hows);
        let on = sorted_rows(&session, &sql).await;
        assert_eq!(on, expected, "case {case} (seed {seed:#x}), rule on: {sql}");
        let plain = sorted_rows(&off, &sql).await;
        assert_eq!(
            plain, expected,
            "case {case} (seed {seed:#x}), rule off: {sql}"
        );

        // Same schema on and off: names, order, types, nullability.
        let schema_on = optimized_plan(&session, &sql).await.schema().clone();
        let schema_off = optimized_plan(&off, &sql).await.schema().clone();
        assert_eq!(schema_on.as_arrow(), schema_off.as_arrow(), "case {case}");
        if hows.iter().all(|h| *h == How::Full) {
            let depth = fairway_planner::join_depth(&optimized_plan(&session, &sql).await);
            assert_eq!(depth, ceil_log2(inputs), "case {case}: {inputs} inputs");
            let depth_off = fairway_planner::join_depth(&optimized_plan(&off, &sql).await);
            assert_eq!(depth_off, inputs - 1, "case {case}: the rule is off");
        }
    }
}

async fn feature_tables(session: &Session, n: usize) {
    for i in 0..n {
        // Keys 0..8 shifted per table: some keys in every table, some in few.
        let values: Vec<String> = (0..6)
            .map(|j| format!("({}, {}, {})", (i + j) % 9, j % 2, i * 10 + j))
            .collect();
        session
            .sql(&format!(
                "create table f{i} (k bigint, j bigint, x{i} bigint) as values {}",
                values.join(", ")
            ))
            .await
            .unwrap();
    }
}

/// The three shapes the rule rewrites, written with ON (and COALESCE for
/// FULL chains), with one- and two-column keys; answers equal the rule-off
/// answers, and the depth shrinks to ceil(log2 k).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_chains_are_balanced() {
    let session = session();
    let off = rule_off_client(&session).await;
    feature_tables(&session, 8).await;
    let inner = "select * from f0 join f1 on f0.k = f1.k join f2 on f1.k = f2.k \
                 join f3 on f0.k = f3.k join f4 on f3.k = f4.k join f5 on f2.k = f5.k";
    let inner_where = "select * from f0, f1, f2, f3, f4 \
                 where f0.k = f1.k and f1.k = f2.k and f2.k = f3.k and f3.k = f4.k";
    let full = "select coalesce(f0.k, f1.k, f2.k, f3.k, f4.k, f5.k, f6.k, f7.k) as k, \
                x0, x1, x2, x3, x4, x5, x6, x7 from f0 \
                full join f1 on f0.k = f1.k \
                full join f2 on coalesce(f0.k, f1.k) = f2.k \
                full join f3 on coalesce(f1.k, f0.k, f2.k) = f3.k \
                full join f4 on coalesce(f0.k, f1.k, f2.k, f3.k) = f4.k \
                full join f5 on coalesce(f0.k, f1.k, f2.k, f3.k, f4.k) = f5.k \
                full join f6 on coalesce(f0.k, f1.k, f2.k, f3.k, f4.k, f5.k) = f6.k \
                full join f7 on coalesce(f0.k, f1.k, f2.k, f3.k, f4.k, f5.k, f6.k) = f7.k";
    let full_two_keys = "select * from f0 \
                full join f1 on f0.k = f1.k and f0.j = f1.j \
                full join f2 on coalesce(f0.j, f1.j) = f2.j and coalesce(f0.k, f1.k) = f2.k \
                full join f3 on coalesce(f0.k, f1.k, f2.k) = f3.k and coalesce(f0.j, f1.j, f2.j) = f3.j";
    let left = "select * from f0 left join f1 on f0.k = f1.k left join f2 on f0.k = f2.k \
                left join f3 on f0.k = f3.k left join f4 on f0.k = f4.k";
    let left_two_keys = "select * from f0 left join f1 on f0.k = f1.k and f0.j = f1.j \
                left join f2 on f0.j = f2.j and f0.k = f2.k left join f3 on f0.k = f3.k and f0.j = f3.j";
    for (sql, inputs, depth_on) in [
        (inner, 6, 3),
        (inner_where, 5, 3),
        (full, 8, 3),
        (full_two_keys, 4, 2),
        // base LEFT JOIN (balanced merge of the others): 1 + ceil(log2 k-1).
        (left, 5, 3),
        (left_two_keys, 4, 3),
    ] {
        let expected = sorted_rows(&off, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(sorted_rows(&session, sql).await, expected, "{sql}");
        let plan_on = optimized_plan(&session, sql).await;
        let plan_off = optimized_plan(&off, sql).await;
        assert_eq!(plan_on.schema().as_arrow(), plan_off.schema().as_arrow());
        assert_eq!(fairway_planner::join_depth(&plan_off), inputs - 1, "{sql}");
        assert_eq!(
            fairway_planner::join_depth(&plan_on),
            depth_on,
            "{sql}\n{}",
            plan_on.display_indent()
        );
    }
}

/// Chains the rule must leave alone: mixed keys, outer joins with a
/// non-equi condition, a FULL chain keyed on one input's key instead of the
/// merged key, and LEFT joins keyed on the previous input instead of the
/// base. (Non-equi conditions of INNER joins are filters that DataFusion
/// places wherever their columns meet, so they do not stop the rewrite.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_chains_are_left_alone() {
    let session = session();
    feature_tables(&session, 5).await;
    for sql in [
        "select * from f0 join f1 on f0.k = f1.k join f2 on f1.j = f2.j join f3 on f2.x2 = f3.k",
        "select * from f0 full join f1 on f0.k = f1.k and f0.x0 < f1.x1 \
         full join f2 on coalesce(f0.k, f1.k) = f2.k and f1.x1 < f2.x2 \
         full join f3 on coalesce(f0.k, f1.k, f2.k) = f3.k and f0.x0 < f3.x3",
        "select * from f0 full join f1 on f0.k = f1.k full join f2 on f0.k = f2.k \
         full join f3 on f0.k = f3.k full join f4 on f0.k = f4.k",
        "select * from f0 left join f1 on f0.k = f1.k left join f2 on f1.k = f2.k \
         left join f3 on f2.k = f3.k left join f4 on f3.k = f4.k",
    ] {
        let plan = optimized_plan(&session, sql).await;
        let inputs = 4 + usize::from(sql.contains("f4"));
        assert_eq!(
            fairway_planner::join_depth(&plan),
            inputs - 1,
            "{sql}\n{}",
            plan.display_indent()
        );
    }
}

/// `USING` keeps one merged key: `SELECT *` lists it first, a bare `k`
/// names it anywhere in the query, and qualified columns keep each
/// input's own value (PostgreSQL's answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn using_has_the_standard_meaning() {
    let session = session();
    session
        .sql(
            "create table a (x bigint, k bigint) as values (1, 1), (2, 2), (3, NULL); \
             create table b (k bigint, y bigint) as values (2, 20), (3, 30); \
             create table c (k bigint, z bigint) as values (3, 300), (4, 400)",
        )
        .await
        .unwrap();
    let out = session
        .sql("select * from a full join b using (k) full join c using (k) order by k, x")
        .await
        .unwrap();
    let names: Vec<&str> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["k", "x", "y", "z"]);
    assert_eq!(
        rows_as_text(&out.batches).unwrap(),
        [
            "1 | 1 | NULL | NULL",
            "2 | 2 | 20 | NULL",
            "3 | NULL | 30 | 300",
            "4 | NULL | NULL | 400",
            "NULL | 3 | NULL | NULL",
        ]
    );
    let grouped = sorted_rows(
        &session,
        "select k, count(*) as n, max(b.k) as bk from a full join b using (k) \
         full join c using (k) where k > 1 group by k having count(*) > 0",
    )
    .await;
    assert_eq!(grouped, ["2 | 1 | 2", "3 | 1 | 3", "4 | 1 | NULL"]);
    // Qualified references stay the input's own column.
    let qualified = sorted_rows(
        &session,
        "select k, a.k as ak, c.k as ck from a full join c using (k)",
    )
    .await;
    assert_eq!(
        qualified,
        [
            "1 | 1 | NULL",
            "2 | 2 | NULL",
            "3 | NULL | 3",
            "4 | NULL | 4",
            "NULL | NULL | NULL"
        ]
    );
}

/// `merge_frames` merges DataFrames with Spark's `on=[cols]` semantics as a
/// balanced tree: one key, then every input's other columns in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframes_merge_as_a_balanced_tree() {
    let session = session();
    feature_tables(&session, 6).await;
    let ctx = session.context();
    let mut frames = Vec::new();
    for i in 0..6 {
        let df = ctx
            .table(format!("f{i}").as_str())
            .await
            .unwrap()
            .select(vec![col("k"), col(format!("x{i}").as_str())])
            .unwrap();
        frames.push(df);
    }
    let merged = merge_frames(frames.clone(), &["k"], MergeHow::Full).unwrap();
    let plan = merged.clone().into_optimized_plan().unwrap();
    assert_eq!(fairway_planner::join_depth(&plan), 3);
    let names: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["k", "x0", "x1", "x2", "x3", "x4", "x5"]);
    let out = session.execute(merged, "merge").await.unwrap();
    let mut rows = rows_as_text(&out.batches).unwrap();
    rows.sort();
    let sql = "select * from f0 full join f1 using (k) full join f2 using (k) \
               full join f3 using (k) full join f4 using (k) full join f5 using (k)";
    let reference: Vec<String> = sorted_rows(&session, sql)
        .await
        .into_iter()
        .map(|row| {
            // Drop the `j` columns the SQL version also has.
            let cells: Vec<&str> = row.split(" | ").collect();
            std::iter::once(cells[0])
                .chain(cells[1..].chunks(2).map(|c| c[1]))
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>();
    let mut reference = reference;
    reference.sort();
    assert_eq!(rows, reference);

    // Inner and left merges against the reference semantics, on a filter.
    let filtered: Vec<_> = frames
        .iter()
        .map(|f| f.clone().filter(col("k").lt(lit(7))).unwrap())
        .collect();
    for (how, join) in [(MergeHow::Inner, "join"), (MergeHow::Left, "left join")] {
        let out = session
            .execute(
                merge_frames(filtered.clone(), &["k"], how).unwrap(),
                "merge",
            )
            .await
            .unwrap();
        let mut rows = rows_as_text(&out.batches).unwrap();
        rows.sort();
        let mut sql = "select f0.k, x0".to_string();
        for i in 1..6 {
            sql.push_str(&format!(", x{i}"));
        }
        sql.push_str(" from (select * from f0 where k < 7) f0");
        for i in 1..6 {
            sql.push_str(&format!(
                " {join} (select * from f{i} where k < 7) f{i} on f0.k = f{i}.k"
            ));
        }
        assert_eq!(rows, sorted_rows(&session, &sql).await, "{how:?}");
    }

    let err = merge_frames(
        vec![frames[0].clone(), frames[0].clone()],
        &["k"],
        MergeHow::Full,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("column 'x0' is in merge inputs 0 and 1"),
        "{err}"
    );
    let err = merge_frames(frames.clone(), &["nope"], MergeHow::Full)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("merge input 0 has no key column 'nope'"),
        "{err}"
    );
}

/// `EXPLAIN` shows the balanced tree, and the setting turns the rule off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_tree_and_the_setting_turns_it_off() {
    let session = session();
    feature_tables(&session, 4).await;
    let sql = "explain select * from f0 full join f1 using (k) full join f2 using (k) \
               full join f3 using (k)";
    let text = |out: fairway_engine::QueryOutput| rows_as_text(&out.batches).unwrap().join("\n");
    let on = text(session.sql(sql).await.unwrap());
    assert!(on.contains("Full Join: f0.k = f1.k"), "{on}");
    assert!(on.contains("Full Join: f2.k = f3.k"), "{on}");
    session
        .sql("set fairway.optimizer.tournament_joins = false")
        .await
        .unwrap();
    let off = text(session.sql(sql).await.unwrap());
    assert!(!off.contains("Full Join: f2.k = f3.k"), "{off}");
    let err = session
        .sql("set fairway.optimizer.tournament_joins = maybe")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected true or false"), "{err}");
}

/// Plans built with `LogicalPlanBuilder::join_using` outside SQL get the
/// merged key too (the `StandardUsingJoins` analyzer rule): the second join
/// meets `c` on `COALESCE(a.k, b.k)`, so key 3, which only `b` has on the
/// left, matches `c`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_using_plans_get_the_merged_key() {
    use fairway_engine::datafusion::common::Column;
    use fairway_engine::datafusion::dataframe::DataFrame;
    use fairway_engine::datafusion::logical_expr::{JoinType, LogicalPlanBuilder};

    let session = session();
    session
        .sql(
            "create table a (k bigint, x bigint) as values (1, 10), (2, 20); \
             create table b (k bigint, y bigint) as values (2, 200), (3, 300); \
             create table c (k bigint, z bigint) as values (3, 3000), (4, 4000)",
        )
        .await
        .unwrap();
    let ctx = session.context();
    let plan = |name: &'static str| async move { ctx.table(name).await.unwrap().into_parts() };
    let (state, a) = plan("a").await;
    let plan = LogicalPlanBuilder::from(a)
        .join_using(
            plan("b").await.1,
            JoinType::Full,
            vec![Column::from_name("k")],
        )
        .unwrap()
        .join_using(
            plan("c").await.1,
            JoinType::Full,
            vec![Column::from_name("k")],
        )
        .unwrap()
        .project(vec![col("a.k"), col("x"), col("y"), col("z")])
        .unwrap()
        .build()
        .unwrap();
    let out = session
        .execute(DataFrame::new(state, plan), "join_using")
        .await
        .unwrap();
    let mut rows = rows_as_text(&out.batches).unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            "1 | 10 | NULL | NULL",
            "2 | 20 | 200 | NULL",
            "3 | NULL | 300 | 3000",
            "4 | NULL | NULL | 4000",
        ]
    );
}

/// Registers the rows `values` (a SQL VALUES list for `columns`) as a
/// three-partition in-memory table `name` in `session` and, when given, in
/// a plain DataFusion context: joins then hash-partition it, as they would
/// a parquet table scanned in parallel.
async fn create_partitioned_table(
    session: &Session,
    plain: Option<&fairway_engine::datafusion::prelude::SessionContext>,
    name: &str,
    columns: &str,
    values: &str,
) {
    use fairway_engine::arrow::compute::concat_batches;
    use fairway_engine::datafusion::datasource::MemTable;
    let scratch = fairway_engine::datafusion::prelude::SessionContext::new();
    let batches = scratch
        .sql(&format!("select * from (values {values}) as t({columns})"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let schema = batches[0].schema();
    let all = concat_batches(&schema, &batches).unwrap();
    let third = all.num_rows().div_ceil(3);
    let parts: Vec<Vec<_>> = (0..3)
        .map(|p| {
            let start = (p * third).min(all.num_rows());
            let len = third.min(all.num_rows() - start);
            vec![all.slice(start, len)]
        })
        .collect();
    let table = std::sync::Arc::new(MemTable::try_new(schema, parts).unwrap());
    session
        .context()
        .register_table(name, table.clone())
        .unwrap();
    if let Some(plain) = plain {
        plain.register_table(name, table).unwrap();
    }
}

/// A client of `session` with `fairway.optimizer.co_partitioned_joins` set
/// to `value`.
async fn co_partitioned_client(session: &Session, value: bool) -> Session {
    let client = session.client();
    client
        .sql(&format!(
            "set fairway.optimizer.co_partitioned_joins = {value}"
        ))
        .await
        .unwrap();
    client
}

/// The stage graph of one statement.
async fn stages_of(session: &Session, sql: &str) -> fairway_engine::StageGraph {
    let statement = session.parse_statements(sql).unwrap().remove(0);
    let plan = session
        .plan_statement(statement)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    session.stage_graph(plan).unwrap()
}

/// Stages that shuffle their output, and how many of them read no other
/// stage (they scan an input).
fn shuffle_stages(graph: &fairway_engine::StageGraph) -> (usize, usize) {
    let shuffles: Vec<_> = graph
        .stages()
        .iter()
        .filter(|s| !matches!(s.output, fairway_engine::StageOutput::Result))
        .collect();
    let leaves = shuffles.iter().filter(|s| s.inputs.is_empty()).count();
    (shuffles.len(), leaves)
}

/// A FULL OUTER merge of 16 inputs on one key, as SQL `USING` (balanced by
/// the tournament rule, or left-deep with it off) or as `merge_frames`,
/// shuffles every input once and runs every join in one stage: 16 shuffle
/// stages and one result stage that reads them all. With the co-partition
/// rule off every join level shuffles again. Answers equal the standard
/// semantics (NULL and duplicate keys included) in every setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_of_16_inputs_shuffles_each_input_once() {
    let session = session();
    let mut rng = Rng(0x5eed_0016);
    let tables: Vec<Table> = (0..16)
        .map(|_| {
            (0..40)
                .map(|_| {
                    let k = (rng.below(10) != 0).then(|| rng.below(60) as i64);
                    (k, rng.below(1000) as i64)
                })
                .collect()
        })
        .collect();
    for (i, t) in tables.iter().enumerate() {
        let values: Vec<String> = t
            .iter()
            .map(|(k, v)| format!("({}, {v})", k.map_or("NULL".to_string(), |k| k.to_string())))
            .collect();
        let columns = format!("k, v{i}");
        create_partitioned_table(
            &session,
            None,
            &format!("m{i}"),
            &columns,
            &values.join(", "),
        )
        .await;
    }
    let mut sql = "select * from m0".to_string();
    for i in 1..16 {
        sql.push_str(&format!(" full join m{i} using (k)"));
    }
    let expected = reference_chain(&tables, &[How::Full; 15]);

    let balanced = session.client();
    let left_deep = rule_off_client(&session).await;
    for (name, client) in [("balanced", &balanced), ("left-deep", &left_deep)] {
        let graph = stages_of(client, &sql).await;
        assert_eq!(shuffle_stages(&graph), (16, 16), "{name}:\n{graph}");
        assert_eq!(graph.result_stage().inputs.len(), 16, "{name}:\n{graph}");
        assert_eq!(sorted_rows(client, &sql).await, expected, "{name}");
        let out = client.sql(&sql).await.unwrap();
        assert_eq!(out.stages, 17, "{name}");
    }

    let off = co_partitioned_client(&session, false).await;
    let graph = stages_of(&off, &sql).await;
    // 16 input shuffles and one more after each of the 14 joins below the
    // top one.
    assert_eq!(shuffle_stages(&graph), (30, 16), "rule off:\n{graph}");
    assert_eq!(sorted_rows(&off, &sql).await, expected, "rule off");

    // The DataFrame merge the feature builder runs.
    let ctx = session.context();
    let mut frames = Vec::new();
    for i in 0..16 {
        frames.push(ctx.table(format!("m{i}").as_str()).await.unwrap());
    }
    let merged = merge_frames(frames, &["k"], MergeHow::Full).unwrap();
    let plan = merged.clone().create_physical_plan().await.unwrap();
    let graph = session.stage_graph(plan).unwrap();
    assert_eq!(shuffle_stages(&graph), (16, 16), "merge_frames:\n{graph}");
    let out = session.execute(merged, "merge").await.unwrap();
    let mut rows = rows_as_text(&out.batches).unwrap();
    rows.sort();
    assert_eq!(rows, expected, "merge_frames");
}

/// Where a join's output is partitioned by a merged key and where it is
/// not, checked against plain DataFusion on the same tables: two-column
/// keys (text and integer) with NULLs in either column, every join type,
/// a merged key written as COALESCE in either order, a key of one side only
/// (not partitioned: its NULLs come from every partition), windows and
/// aggregates over the merged and the one-sided key, `IS NOT DISTINCT
/// FROM`, and float keys (never kept: `-0.0 = 0.0`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_keys_keep_their_partitioning_and_nothing_else_does() {
    use fairway_engine::datafusion::prelude::{SessionConfig, SessionContext};
    let session = session();
    let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
    let mut rng = Rng(0xc0_9a27);
    for name in ["a", "b", "c", "d"] {
        let rows: Vec<String> = (0..60)
            .map(|_| {
                let s = match rng.below(5) {
                    0 => "NULL".to_string(),
                    n => format!("'s{n}'"),
                };
                let n = match rng.below(6) {
                    0 => "NULL".to_string(),
                    n => n.to_string(),
                };
                let f = ["0.0", "-0.0", "1.5", "NULL"][rng.below(4) as usize];
                format!("({s}, {n}, {f}, {})", rng.below(100))
            })
            .collect();
        // The first row types the columns.
        let rows = format!(
            "(arrow_cast('s0', 'Utf8'), arrow_cast(0, 'Int64'), arrow_cast(0.5, 'Float64'), \
             arrow_cast(0, 'Int64')), {}",
            rows.join(", ")
        );
        create_partitioned_table(&session, Some(&plain), name, "s, n, f, v", &rows).await;
    }
    let merged = |x: &str, y: &str| format!("coalesce({x}.s, {y}.s), coalesce({y}.n, {x}.n)");
    let cases = [
        // Kept: FULL merges on a two-column key, both COALESCE orders.
        (
            format!(
                "select {}, a.v, b.v, c.v from a full join b on a.s = b.s and a.n = b.n \
                 full join c on coalesce(a.s, b.s) = c.s and coalesce(b.n, a.n) = c.n",
                merged("a", "b")
            ),
            Some(true),
        ),
        // Kept on both sides: (a full b) full (c full d).
        (
            "select * from (select coalesce(a.s, b.s) s, coalesce(a.n, b.n) n, a.v av, b.v bv \
             from a full join b on a.s = b.s and a.n = b.n) l full join \
             (select coalesce(d.s, c.s) s, coalesce(c.n, d.n) n, c.v cv, d.v dv \
             from c full join d on c.s = d.s and c.n = d.n) r on l.s = r.s and l.n = r.n"
                .to_string(),
            Some(true),
        ),
        // Left, right and inner joins, then a FULL join on the merged key.
        (
            "select * from (select coalesce(b.s, a.s) s, coalesce(a.n, b.n) n, a.v av, b.v bv \
             from a left join b on a.s = b.s and a.n = b.n) l full join c \
             on l.s = c.s and l.n = c.n"
                .to_string(),
            Some(true),
        ),
        // (A broadcast RIGHT join whose probe side is not hash-partitioned:
        // whether it is kept depends on the plan; the answer must not.)
        (
            "select * from (select coalesce(a.s, b.s) s, coalesce(a.n, b.n) n, a.v av, b.v bv \
             from a right join b on a.s = b.s and a.n = b.n) l full join c \
             on l.s = c.s and l.n = c.n"
                .to_string(),
            None,
        ),
        // A window over the merged key of a FULL join.
        (
            "select coalesce(a.n, b.n) k, a.v, b.v, count(*) over (partition by coalesce(a.n, b.n)) \
             from a full join b on a.n = b.n"
                .to_string(),
            Some(true),
        ),
        // Not kept: a one-sided key of a FULL join, whose NULLs (the
        // right-only rows) are spread over every partition.
        (
            "select a.n, a.v, b.v, count(*) over (partition by a.n), sum(b.v) over (partition by a.n) \
             from a full join b on a.n = b.n"
                .to_string(),
            Some(false),
        ),
        (
            "select * from (select a.n n, a.v av, b.v bv from a full join b on a.n = b.n) l \
             full join c on l.n is not distinct from c.n"
                .to_string(),
            Some(false),
        ),
        // Not kept: a key of the wrong side of a LEFT join.
        (
            "select b.n, count(*) over (partition by b.n) from a left join b on a.n = b.n"
                .to_string(),
            Some(false),
        ),
        // Not kept: float keys.
        (
            "select coalesce(a.f, b.f) f, a.v, b.v, count(*) over (partition by coalesce(a.f, b.f)) \
             from a full join b on a.f = b.f"
                .to_string(),
            Some(false),
        ),
    ];
    for (sql, kept) in &cases {
        let graph = stages_of(&session, sql).await.to_string();
        if let Some(kept) = kept {
            assert_eq!(
                graph.contains("KeyPartitionedExec"),
                *kept,
                "{sql}\n{graph}"
            );
        }
        let expected = {
            let batches = plain.sql(sql).await.unwrap().collect().await.unwrap();
            let mut rows = rows_as_text(&batches).unwrap();
            rows.sort();
            rows
        };
        assert_eq!(sorted_rows(&session, sql).await, expected, "{sql}");
    }
}
