//! The same SQL on Apache DataFusion Ballista (a standalone cluster in this
//! process) as on the local stage engine: TPC-H at SF 0.1 compared with the
//! local engine and with plain DataFusion, the tournament rule and
//! SQL-standard USING on the cluster, and pools at job level.
#![cfg(feature = "cluster")]

mod common;

use std::time::Duration;

use common::{
    assert_same_rows, is_ordered, plain_rows, plain_tpch, register_tpch, session, tpch_data,
};
use fairway_engine::{ClusterTarget, EngineConfig, Session};
use fairway_tpch as tpch;

async fn cluster_session(slots: usize, settings: &[(&str, &str)]) -> Session {
    let mut config = EngineConfig::with_slots(slots);
    config.cluster = Some(ClusterTarget::Standalone);
    for (key, value) in settings {
        config.set(key, value).expect("setting");
    }
    Session::start(config)
        .await
        .expect("a standalone Ballista cluster starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tpch_on_ballista_matches_the_local_engine_and_datafusion() {
    let dir = tpch_data(0.1);
    let cluster = cluster_session(2, &[]).await;
    assert_eq!(cluster.cluster(), Some(&ClusterTarget::Standalone));
    register_tpch(&cluster, &dir).await;
    let local = session(2, 4, 1 << 30);
    register_tpch(&local, &dir).await;
    let plain = plain_tpch(&dir, 4).await;
    for q in 1..=22 {
        let sql = tpch::query(q).expect("query text");
        let on_cluster = cluster
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("Q{q} on Ballista: {e}"));
        assert_eq!(on_cluster.stages, 0, "no local stages ran");
        let on_local = local.sql(sql).await.expect("local run");
        let expected = plain_rows(&plain, sql).await;
        assert!(!expected.is_empty(), "Q{q}: reference returned nothing");
        let ordered = is_ordered(sql);
        assert_same_rows(
            &format!("Q{q} Ballista vs DataFusion"),
            &on_cluster.batches,
            &expected,
            ordered,
        );
        assert_same_rows(
            &format!("Q{q} Ballista vs local"),
            &on_cluster.batches,
            &on_local.batches,
            ordered,
        );
    }
    // Nothing ran on the local stage engine.
    assert_eq!(cluster.scheduler().metrics().tasks_completed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tournament_joins_and_standard_using_hold_on_ballista() {
    let cluster = cluster_session(2, &[]).await;
    let local = session(2, 4, 1 << 30);
    let dir = tempfile::tempdir().unwrap();
    // Five small tables on disk (Ballista ships plans that read files).
    for i in 0..5 {
        let path = dir.path().join(format!("f{i}.csv"));
        let mut text = format!("k,v{i}\n");
        for k in 0..40 {
            if (k + i) % 3 != 0 {
                text.push_str(&format!("{k},{}\n", k * 10 + i));
            }
        }
        std::fs::write(&path, text).unwrap();
        for s in [&cluster, &local] {
            s.register_table(&format!("f{i}"), path.to_str().unwrap())
                .await
                .unwrap();
        }
    }
    let sql = "select * from f0 full join f1 using (k) full join f2 using (k) \
               full join f3 using (k) full join f4 using (k) order by k";
    let on_cluster = cluster.sql(sql).await.expect("USING chain on Ballista");
    let on_local = local.sql(sql).await.expect("USING chain locally");
    assert_same_rows("USING chain", &on_cluster.batches, &on_local.batches, true);
    // One merged key: every k from 0 to 39 appears once, none NULL.
    let names: Vec<String> = on_cluster
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["k", "v0", "v1", "v2", "v3", "v4"]);
    assert_eq!(on_cluster.rows(), 40);

    let explain = cluster
        .sql(&format!("explain {sql}"))
        .await
        .expect("EXPLAIN on Ballista");
    let plan = logical_plan(&explain.batches);
    // Balanced: 5 inputs joined in a bracket are at most ceil(log2 5) = 3
    // joins deep; left-deep they would be 4.
    assert_eq!(full_join_depth(&plan), 3, "{plan}");
    let off = cluster.client();
    off.sql("set fairway.optimizer.tournament_joins = false")
        .await
        .unwrap();
    let left_deep = logical_plan(&off.sql(&format!("explain {sql}")).await.unwrap().batches);
    assert_eq!(full_join_depth(&left_deep), 4, "{left_deep}");
    let on_cluster_off = off.sql(sql).await.expect("left-deep chain on Ballista");
    assert_same_rows(
        "USING chain, rule off",
        &on_cluster_off.batches,
        &on_local.batches,
        true,
    );
}

/// The `logical_plan` row of an EXPLAIN result.
fn logical_plan(batches: &[fairway_engine::arrow::record_batch::RecordBatch]) -> String {
    use fairway_engine::arrow::array::{Array, AsArray};
    for batch in batches {
        let kinds = batch.column(0).as_string::<i32>();
        let plans = batch.column(1).as_string::<i32>();
        for row in 0..batch.num_rows() {
            if kinds.value(row) == "logical_plan" && !plans.is_null(row) {
                return plans.value(row).to_string();
            }
        }
    }
    panic!("no logical_plan row in the EXPLAIN output")
}

/// How many Full Joins deep the plan's join tree is (by indentation).
fn full_join_depth(plan: &str) -> usize {
    let indents: Vec<usize> = plan
        .lines()
        .filter(|l| l.trim_start().starts_with("Full Join"))
        .map(|l| l.len() - l.trim_start().len())
        .collect();
    let mut levels: Vec<usize> = indents.clone();
    levels.sort_unstable();
    levels.dedup();
    levels.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pools_bound_running_statements_on_the_cluster() {
    // Four job slots, FAIR, pools etl and adhoc of equal weight.
    let cluster = cluster_session(
        2,
        &[
            ("fairway.scheduler.mode", "fair"),
            ("fairway.cluster.slots", "4"),
        ],
    )
    .await;
    register_tpch(&cluster, &tpch_data(0.1)).await;
    let sql = "select count(*) as n from (select l_orderkey % 1000 as g \
               from lineitem group by 1)";
    let admission = cluster.cluster_admission().expect("cluster admission");
    // Two etl statements and one adhoc statement hold job slots.
    let etl_1 = admission.admit("etl").await.unwrap();
    let etl_2 = admission.admit("etl").await.unwrap();
    let adhoc = admission.admit("adhoc").await.unwrap();
    // An adhoc statement runs at once: its pool is below its share.
    let client = cluster.with_pool("adhoc").unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), client.sql(sql))
        .await
        .expect("adhoc is admitted at once")
        .expect("adhoc runs");
    assert_eq!(out.rows(), 1);
    // A third etl statement waits although a slot is free: with adhoc
    // busy too, etl's share is ceil(4 x 1/2) = 2 and it runs 2.
    let client = cluster.with_pool("etl").unwrap();
    let waiting = tokio::spawn(async move { client.sql(sql).await });
    // Held in the admission queue (seen there, not guessed from a sleep).
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while admission.waiting() == 0 {
        assert!(std::time::Instant::now() < deadline, "etl never queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!waiting.is_finished(), "etl is held at its share");
    assert_eq!(admission.waiting(), 1);
    assert_eq!(admission.running()["etl"], 2);
    // Once adhoc has nothing left, etl alone may use every slot.
    drop(adhoc);
    let out = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("etl is admitted once adhoc is idle")
        .unwrap()
        .expect("etl runs");
    let n = out.batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<fairway_engine::arrow::array::Int64Array>()
        .expect("count is an Int64")
        .value(0);
    assert_eq!(n, 1000, "every group of l_orderkey % 1000");
    drop((etl_1, etl_2));
    assert!(admission.running().is_empty());
}

#[tokio::test]
async fn a_session_on_a_cluster_needs_start_and_a_good_target() {
    let mut config = EngineConfig::with_slots(1);
    config.cluster = Some(ClusterTarget::Standalone);
    let error = Session::new(config).err().expect("new refuses a cluster");
    assert!(error.to_string().contains("Session::start"), "{error}");
    let mut config = EngineConfig::with_slots(1);
    let error = config.set("fairway.cluster", "spark://x:7077").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("option fairway.cluster: 'spark://x:7077'"),
        "{error}"
    );
    // Nobody listens on port 9 of this machine.
    config.set("fairway.cluster", "df://127.0.0.1:9").unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), async {
        let session = Session::start(config).await?;
        session.sql("select 1").await
    })
    .await
    .expect("connection failure is reported, not hung");
    let error = result.expect_err("no scheduler there");
    assert!(!error.to_string().is_empty());
}

/// A stock Ballista scheduler and executor, started apart from any fairway
/// session (as `ballista-scheduler` and `ballista-executor` processes
/// would be, with their default session state); returns the scheduler's
/// port.
async fn stock_ballista_cluster() -> u16 {
    use ballista_core::serde::BallistaCodec;
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    let address = ballista_scheduler::standalone::new_standalone_scheduler()
        .await
        .expect("a Ballista scheduler starts");
    let url = format!("http://localhost:{}", address.port());
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = SchedulerGrpcClient::connect(url.clone()).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = client.expect("the scheduler accepts connections");
    ballista_executor::new_standalone_executor(client, 2, BallistaCodec::default())
        .await
        .expect("a Ballista executor starts");
    address.port()
}

/// `df://HOST:PORT`: a scheduler that knows nothing of fairway still gets
/// the tournament tree and the merged USING key, because fairway plans and
/// optimizes the statement before it sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_stock_ballista_scheduler_runs_fairway_plans() {
    let port = stock_ballista_cluster().await;
    let mut config = EngineConfig::with_slots(2);
    config
        .set("fairway.cluster", &format!("df://localhost:{port}"))
        .unwrap();
    let remote = Session::start(config).await.expect("connects");
    assert_eq!(
        remote.cluster(),
        Some(&ClusterTarget::Remote {
            host: "localhost".to_string(),
            port
        })
    );
    let dir = tpch_data(0.1);
    register_tpch(&remote, &dir).await;
    let plain = plain_tpch(&dir, 4).await;
    for q in [3, 5, 13, 18] {
        let sql = tpch::query(q).unwrap();
        let got = remote
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("Q{q} on the remote scheduler: {e}"));
        let expected = plain_rows(&plain, sql).await;
        assert_same_rows(
            &format!("Q{q} remote"),
            &got.batches,
            &expected,
            is_ordered(sql),
        );
    }
    let sql = "select * from nation n1 full join nation n2 using (n_nationkey) \
               full join nation n3 using (n_nationkey) \
               full join nation n4 using (n_nationkey) \
               full join nation n5 using (n_nationkey) order by n_nationkey";
    let out = remote
        .sql(sql)
        .await
        .expect("USING chain on the remote scheduler");
    assert_eq!(out.rows(), 25);
    assert_eq!(out.schema.field(0).name(), "n_nationkey");
    let plan = logical_plan(&remote.sql(&format!("explain {sql}")).await.unwrap().batches);
    assert_eq!(full_join_depth(&plan), 3, "{plan}");
}
