//! Behaviour of the stage engine across crates: the slot bound, broadcast
//! joins of every type, shuffle clean-up, EXPLAIN.

mod common;

use std::time::Duration;

use common::{assert_same_rows, plain_rows, register_tpch, session, tpch_data};
use fairway_engine::{EngineConfig, Session, plain_datafusion_context};
use fairway_tpch as tpch;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_jobs_never_exceed_the_slots() {
    let dir = tpch_data(0.1);
    // More partitions than slots: barriers inside DataFusion would deadlock.
    let session = session(2, 8, 1 << 30);
    register_tpch(&session, &dir).await;
    session.scheduler().reset_peaks();
    let mut jobs = Vec::new();
    for q in [1, 3, 5, 9, 13, 18, 21] {
        let s = session.clone();
        jobs.push(tokio::spawn(async move {
            s.sql(tpch::query(q).unwrap()).await.map(|o| o.rows())
        }));
    }
    let all = async {
        for job in jobs {
            job.await.expect("join").expect("query");
        }
    };
    tokio::time::timeout(Duration::from_secs(300), all)
        .await
        .expect("no deadlock with partitions > slots");
    let m = session.scheduler().metrics();
    assert_eq!(m.peak_running_tasks, 2, "tasks filled both slots, no more");
    assert!(
        (1..=2).contains(&m.peak_busy_threads),
        "busy worker threads {} exceed 2 slots",
        m.peak_busy_threads
    );
    assert_eq!(m.running_tasks, 0);
}

/// Writes `rows` as `parts` CSV files in a folder, so the table scans as
/// several partitions.
fn csv_table(
    dir: &std::path::Path,
    name: &str,
    header: &str,
    rows: &[String],
    parts: usize,
) -> String {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    for p in 0..parts {
        let body: Vec<&str> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| i % parts == p)
            .map(|(_, r)| r.as_str())
            .collect();
        std::fs::write(
            folder.join(format!("part-{p}.csv")),
            format!("{header}\n{}\n", body.join("\n")),
        )
        .unwrap();
    }
    folder.to_string_lossy().to_string()
}

/// Writes two nullable Int64 columns as `parts` parquet files in a folder
/// (parquet has the statistics that make DataFusion choose broadcast joins).
fn parquet_table(
    dir: &std::path::Path,
    name: &str,
    columns: [&str; 2],
    rows: &[(Option<i64>, i64)],
    parts: usize,
) -> String {
    use fairway_engine::arrow::array::Int64Array;
    use fairway_engine::arrow::datatypes::{DataType, Field, Schema};
    use fairway_engine::arrow::record_batch::RecordBatch;
    use fairway_engine::datafusion::parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new(columns[0], DataType::Int64, true),
        Field::new(columns[1], DataType::Int64, false),
    ]));
    for p in 0..parts {
        let part: Vec<_> = rows.iter().skip(p).step_by(parts).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(
                    part.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    part.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let file = std::fs::File::create(folder.join(format!("part-{p}.parquet"))).unwrap();
        let mut writer = ArrowWriter::try_new(file, schema.clone(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
    folder.to_string_lossy().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_joins_of_every_type_match_datafusion() {
    let tmp = tempfile::tempdir().unwrap();
    // Keys with duplicates, NULLs and keys present on one side only.
    let a_rows: Vec<(Option<i64>, i64)> = (0..60)
        .map(|i| ((i % 11 != 0).then_some(i % 17), i))
        .collect();
    let b_rows: Vec<(Option<i64>, i64)> = (0..40)
        .map(|i| ((i % 13 != 0).then_some(i % 23 + 5), i * 10))
        .collect();
    let a = parquet_table(tmp.path(), "a", ["k", "v"], &a_rows, 3);
    let b = parquet_table(tmp.path(), "b", ["k", "w"], &b_rows, 4);
    let mut config = EngineConfig::with_slots(2).partitions(4);
    // Every hash join is small enough to broadcast.
    config
        .set(
            "datafusion.optimizer.hash_join_single_partition_threshold",
            "1000000000",
        )
        .unwrap();
    config
        .set(
            "datafusion.optimizer.hash_join_single_partition_threshold_rows",
            "100000000",
        )
        .unwrap();
    config
        .set("datafusion.optimizer.join_reordering", "false")
        .unwrap();
    let session = Session::new(config).unwrap();
    let plain = plain_datafusion_context(4);
    register_both(&session, &plain, [("a", &a), ("b", &b)]).await;

    let queries = [
        "select a.k, v, w from a join b on a.k = b.k",
        "select a.k, v, w from a left join b on a.k = b.k",
        "select a.k, v, w from a right join b on a.k = b.k",
        "select a.k, b.k, v, w from a full join b on a.k = b.k",
        "select k, v from a where k in (select k from b)",
        "select k, v from a where k not in (select k from b)",
        "select k, v from a where k not in (select k from b where k is not null)",
        "select k, v from a where not exists (select 1 from b where b.k = a.k)",
        "select k, w from b where exists (select 1 from a where a.k = b.k)",
        "select k, w from b where not exists (select 1 from a where a.k = b.k)",
        "select k, v from a where k in (select k from b) or v > 50",
        "select k, v from a where exists (select 1 from b where b.k = a.k) or v < 5",
        "select count(*), sum(v * w) from a cross join b",
        "select a.k, v, w from a left join b on a.k < b.k and v > w",
        "select a.k, v, w from a join b on a.k + 1 < b.k",
        "select a.k, count(*) from a full join b on a.k = b.k group by a.k",
    ];
    let mut broadcasts = 0;
    for sql in queries {
        let explain = session.explain_stages(sql).await.unwrap();
        broadcasts += explain.matches("CollectLeft").count();
        let ours = session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let expected = plain_rows(&plain, sql).await;
        assert_same_rows(sql, &ours.batches, &expected, false);
    }
    assert!(
        broadcasts >= 3,
        "the test exercised broadcast joins ({broadcasts})"
    );
}

/// Registers the same tables in fairway and in plain DataFusion.
async fn register_both(
    session: &Session,
    plain: &datafusion::prelude::SessionContext,
    tables: [(&str, &str); 2],
) {
    for (name, path) in tables {
        session.register_table(name, path).await.unwrap();
        fairway_engine::register_table(plain, name, path)
            .await
            .unwrap();
    }
}

fn no_job_folders(session: &Session) -> bool {
    common::job_folders(session).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffle_data_is_removed_when_a_job_fails() {
    let tmp = tempfile::tempdir().unwrap();
    // Text in every file, so the scan succeeds and the cast below fails.
    let rows: Vec<String> = (0..200).map(|i| format!("n{i}")).collect();
    let t = csv_table(tmp.path(), "t", "x", &rows, 2);
    let session = session(2, 4, 0);
    session.register_table("t", &t).await.unwrap();
    // The cast fails after the shuffle, when files have been written.
    let err = session
        .sql("select sum(cast(x as int)) from (select x, count(*) as c from t group by x) s")
        .await
        .expect_err("the cast must fail");
    assert!(err.to_string().to_lowercase().contains("cast"), "{err}");
    assert!(
        session.shuffle().stats().file_outputs > 0,
        "files were written"
    );
    assert!(no_job_folders(&session), "job folder removed after failure");
    assert_eq!(session.shuffle().stats().memory_used, 0);
    assert_eq!(session.scheduler().metrics().running_tasks, 0);
}

/// Waits until some task of `session` holds a slot.
async fn wait_until_a_task_runs(session: &fairway_engine::Session) {
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while session.scheduler().metrics().running_tasks == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_frees_slots_and_removes_shuffle_data() {
    let session = session(2, 4, 0);
    let heavy = "select k % 1000 as g, count(*) from \
                 (select value as k from generate_series(1, 300000000)) group by 1";
    let s = session.clone();
    let job = tokio::spawn(async move { s.sql(heavy).await });
    wait_until_a_task_runs(&session).await;
    job.abort();
    let _ = job.await;
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while session.scheduler().metrics().running_tasks > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        session.scheduler().metrics().running_tasks,
        0,
        "slots freed after the abort"
    );
    assert!(no_job_folders(&session));
    // The session still works.
    let out = session.sql("select 1 + 1 as two").await.unwrap();
    assert_eq!(out.rows(), 1);
}

/// A task whose operator makes many batches from few (a cross join) stops
/// computing when its job is cancelled: with one slot, the next statement
/// gets the worker thread at once instead of waiting behind the zombie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_cross_join_stops_and_gives_back_its_thread() {
    let session = session(1, 1, 0);
    let endless = "select sum(a.value * b.value) from generate_series(1, 2000000) a \
                   cross join generate_series(1, 2000000) b";
    let s = session.clone();
    let job = tokio::spawn(async move { s.sql(endless).await });
    wait_until_a_task_runs(&session).await;
    // Let the join run deep into its output.
    tokio::time::sleep(Duration::from_millis(300)).await;
    job.abort();
    let _ = job.await;
    let next = tokio::time::timeout(common::DEADLINE, session.sql("select 1 + 1 as two")).await;
    let out = next
        .expect("the next statement ran: the cancelled task gave its thread back")
        .unwrap();
    assert_eq!(out.rows(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_stage_graph_and_sql_explain_still_works() {
    let dir = tpch_data(0.1);
    let session = session(2, 4, 1 << 30);
    register_tpch(&session, &dir).await;
    let text = session
        .explain_stages(
            "select l_returnflag, count(*) as n from lineitem group by l_returnflag order by l_returnflag",
        )
        .await
        .unwrap();
    assert!(
        text.contains("Stage 0 [tasks=4, reads=-, output=shuffle Hash([l_returnflag@0], 4)]"),
        "{text}"
    );
    assert!(text.contains("ShuffleReaderExec: stage=0"), "{text}");
    assert!(text.contains("output=result]"), "{text}");
    assert!(text.contains("SortPreservingMergeExec"), "{text}");
    assert!(
        !text.contains("RepartitionExec"),
        "exchanges are gone: {text}"
    );

    let out = session
        .sql("explain select count(*) from nation")
        .await
        .unwrap();
    let names: Vec<_> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["plan_type", "plan"]);
    assert!(out.rows() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_analyze_reports_every_stage() {
    let dir = tpch_data(0.1);
    // Shuffle memory 0: every map output goes to a file.
    let session = session(2, 4, 0);
    register_tpch(&session, &dir).await;
    let lineitem_rows = session
        .sql("select count(*) as n from lineitem")
        .await
        .unwrap()
        .batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<fairway_engine::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    let out = session
        .sql("explain analyze select l_returnflag, count(*) from lineitem group by 1 order by 1")
        .await
        .unwrap();
    let text = out.batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<fairway_engine::arrow::array::StringArray>()
        .unwrap()
        .value(0)
        .to_string();
    let metrics: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("metrics:"))
        .collect();
    assert_eq!(
        metrics.len(),
        out.stages,
        "one metrics line per stage: {text}"
    );
    assert!(
        metrics[0].contains("tasks=4, ")
            && metrics[0].contains(&format!("rows in={lineitem_rows} ")),
        "stage 0 scanned all of lineitem: {text}"
    );
    assert!(
        metrics[0].contains("rows out=") && !metrics[0].contains("shuffle written=0 B"),
        "{text}"
    );
    assert!(
        !metrics[0].contains("spilled=0 B"),
        "everything spilled: {text}"
    );
    assert!(
        !metrics[1].contains("shuffle read=0 B"),
        "stage 1 read the shuffle: {text}"
    );
    assert!(text.contains("ShuffleReaderExec: stage=0"), "{text}");
}

/// DataFusion's sqllogictest `aggregates_simplify.slt:335`: the logical
/// schema of `SUM(val) + 1 * COUNT(val)` over an unsigned column says
/// Decimal128(20, 0) where the batches are Decimal128(21, 0). A result's
/// schema must be its batches' (what DataFusion's own driver checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_schema_is_the_schema_of_its_batches() {
    let session = Session::new(EngineConfig::with_slots(2).partitions(3)).unwrap();
    session
        .sql("CREATE TABLE tbl (val INTEGER UNSIGNED)")
        .await
        .unwrap();
    session
        .sql("INSERT INTO tbl VALUES (4294967295), (4294967295)")
        .await
        .unwrap();
    let out = session
        .sql("SELECT SUM(val) + 1 * COUNT(val), SUM(val) + 2 * COUNT(val) FROM tbl")
        .await
        .unwrap();
    assert!(!out.batches.is_empty());
    for batch in &out.batches {
        assert_eq!(
            batch.schema(),
            out.schema,
            "the declared schema is the batches'"
        );
    }
    // Hand-computed: 2 x 4294967295 + 1 x 2 and + 2 x 2.
    assert_eq!(
        fairway_engine::rows_as_text(&out.batches).unwrap(),
        ["8589934592 | 8589934594"]
    );
}

/// Uncorrelated scalar subqueries in every position DataFusion allows
/// (filters, projections, ORDER BY, an aggregate's argument, a join
/// condition, a window's argument, GROUP BY), recursive CTEs, and windows
/// over a hash exchange fed by one partition give plain DataFusion's
/// answers; a scalar subquery of two rows is an error, of none NULL.
/// (sqllogictest subquery.slt:1983-2233, cte.slt, window_topn.slt.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalar_subqueries_recursive_ctes_and_sorted_windows_match_datafusion() {
    let tmp = tempfile::tempdir().unwrap();
    let a_rows: Vec<(Option<i64>, i64)> = (0..60)
        .map(|i| ((i % 11 != 0).then_some(i % 17), i))
        .collect();
    let b_rows: Vec<(Option<i64>, i64)> = (0..40).map(|i| (Some(i % 23 + 5), i * 10)).collect();
    let a = parquet_table(tmp.path(), "a", ["k", "v"], &a_rows, 3);
    let b = parquet_table(tmp.path(), "b", ["k", "w"], &b_rows, 4);
    let session = session(2, 3, 1 << 30);
    let plain = plain_datafusion_context(3);
    register_both(&session, &plain, [("a", &a), ("b", &b)]).await;
    let small = "create table small (id int, pk int, val int) as values \
                 (1, 1, 10), (2, 1, 20), (3, 1, 30), (4, 2, 5), (5, 2, 15), (6, 3, 100)";
    session.sql(small).await.unwrap();
    plain_rows(&plain, small).await;
    // Top-N per window partition below a hash exchange of one input
    // partition, which keeps the order the window needs.
    let topn = "set datafusion.optimizer.enable_window_topn = true";
    session.sql(topn).await.unwrap();
    plain_rows(&plain, topn).await;

    let queries = [
        "select k, v from a where v > (select avg(w) / 10 from b)",
        "select k, v + (select max(w) from b) from a",
        "select k, v from a order by v * (select min(k) from b) desc, k limit 7",
        "select sum(v + (select max(k) from b)) from a",
        "select a.k, b.w from a join b on a.k = b.k + (select min(k) from b) - 5",
        "select k, sum(v + (select count(*) from b)) over (partition by k) from a",
        "select (select 42) as c, max(v) from a group by c",
        "select k, (select max(w) from b where w < (select avg(v) from a)) from a",
        "select (select k from b where w > 100000)",
        "with recursive r(n) as (select 1 union all select n + 1 from r where n < 50) \
         select count(*), sum(n) from r",
        "with recursive r(k, d) as (select k, 0 from a where v < 5 \
         union all select r.k + 1, d + 1 from r join b on r.k = b.k where d < 3) \
         select k, d, count(*) from r group by k, d",
        "select id, pk, val from (select *, row_number() over (partition by pk order by val) as rn \
         from small) where rn <= 2",
        "select pk, val, rank() over (partition by pk order by val desc) from small",
    ];
    for sql in queries {
        let ours = session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let expected = plain_rows(&plain, sql).await;
        assert_same_rows(sql, &ours.batches, &expected, false);
    }
    for sql in [
        "select (select w from b)",
        "select k from a where v > (select w from b)",
    ] {
        let err = session.sql(sql).await.expect_err(sql).to_string();
        assert!(
            err.contains("Scalar subquery returned more than one row"),
            "{sql}: {err}"
        );
    }
    // `fairway explain` shows each subquery's stages before the query's.
    let explain = session
        .explain_stages("select k from a where v > (select avg(w) from b)")
        .await
        .unwrap();
    assert!(
        explain.starts_with("scalar subquery 1, run first:\nStage 0"),
        "{explain}"
    );
}
