//! Tables on a real S3-compatible server (moto, on loopback, with request
//! signatures checked) and on a static HTTP server: the answers equal plain
//! DataFusion's on the same files read locally; writes go there and read
//! back; bad credentials, a missing bucket and a dead endpoint give errors
//! that name the URL and the cause, and never the secret.

#[path = "../../testsupport/stores.rs"]
mod stores;

mod common;

use common::{assert_same_rows, is_ordered, plain_rows, plain_tpch, sorted_rows};
use fairway_engine::{EngineConfig, Session};
use fairway_tpch as tpch;
use object_store::ObjectStore as _;
use std::path::{Path, PathBuf};
use stores::{BUCKET, S3Server, bucket_store, fresh_prefix, upload};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/tpch-sf0.01")
}

fn config_with(settings: &[(String, String)]) -> EngineConfig {
    let mut config = EngineConfig::with_slots(2).partitions(3);
    config.shuffle_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (key, value) in settings {
        config.set(key, value).unwrap();
    }
    config
}

fn session_for(server: &S3Server) -> Session {
    Session::new(config_with(&server.settings())).expect("session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_from_a_bucket_prefix_equals_plain_datafusion_on_local_files() {
    let Some(server) = stores::s3_server_or_skip() else {
        return;
    };
    let prefix = fresh_prefix("tpch");
    upload(bucket_store(&server).as_ref(), &testdata(), &prefix).await;
    let session = session_for(&server);
    // `--tables s3://bucket/prefix/`: every object and folder a table.
    let mut names = session
        .register_tables_in(&format!("s3://{BUCKET}/{prefix}/"))
        .await
        .unwrap();
    names.sort();
    let mut expected: Vec<String> = tpch::TABLES.iter().map(|t| t.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected, "the underscore folder is skipped");
    let plain = plain_tpch(&testdata(), 3).await;
    for q in 1..=22 {
        let sql = tpch::query(q).unwrap();
        let ours = session
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("Q{q} from S3: {e}"));
        let reference = plain_rows(&plain, sql).await;
        assert_same_rows(
            &format!("Q{q} from S3"),
            &ours.batches,
            &reference,
            is_ordered(sql),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_in_sql_and_writes_that_read_back() {
    let Some(server) = stores::s3_server_or_skip() else {
        return;
    };
    let prefix = fresh_prefix("sql");
    let store = bucket_store(&server);
    upload(store.as_ref(), &testdata(), &prefix).await;
    let base = format!("s3://{BUCKET}/{prefix}");
    let session = session_for(&server);
    let plain = plain_tpch(&testdata(), 3).await;

    // A table named by URL, in three ways; s3a:// as Spark writes it.
    session
        .register_table("orders", &format!("{base}/orders.parquet"))
        .await
        .unwrap();
    session
        .sql(&format!(
            "CREATE EXTERNAL TABLE li STORED AS PARQUET LOCATION '{base}/lineitem.parquet'"
        ))
        .await
        .unwrap();
    let by_status = "SELECT o_orderstatus, count(*) AS n, sum(o_totalprice) AS total \
                     FROM orders GROUP BY o_orderstatus";
    let reference = plain_rows(&plain, by_status).await;
    let ours = session.sql(by_status).await.unwrap();
    assert_same_rows("orders from S3", &ours.batches, &reference, false);
    let direct = session
        .sql(&format!(
            "SELECT o_orderstatus, count(*) AS n, sum(o_totalprice) AS total \
             FROM 's3a://{BUCKET}/{prefix}/orders.parquet' GROUP BY o_orderstatus"
        ))
        .await
        .unwrap();
    assert_same_rows("FROM 's3a://...'", &direct.batches, &reference, false);
    let count = session.sql("SELECT count(*) FROM li").await.unwrap();
    let expected = plain_rows(&plain, "SELECT count(*) FROM lineitem").await;
    assert_same_rows("external table on S3", &count.batches, &expected, false);

    // COPY TO s3://, as parquet, CSV and JSON, read back by URL.
    let query = "SELECT o_orderkey, o_custkey, o_orderstatus, o_totalprice FROM orders \
                 WHERE o_orderkey % 7 = 0";
    let reference = plain_rows(&plain, query).await;
    for (format, reader) in [
        ("parquet", "read_parquet"),
        ("csv", "read_csv"),
        ("json", "read_json"),
    ] {
        let target = format!("{base}/out-{format}/");
        session
            .sql(&format!("COPY ({query}) TO '{target}' STORED AS {format}"))
            .await
            .unwrap_or_else(|e| panic!("COPY TO {target}: {e}"));
        let back = session
            .sql(&format!(
                "SELECT o_orderkey, o_custkey, o_orderstatus, \
                 CAST(o_totalprice AS DECIMAL(15, 2)) AS o_totalprice FROM {reader}('{target}')"
            ))
            .await
            .unwrap_or_else(|e| panic!("{reader}('{target}'): {e}"));
        assert_same_rows(
            &format!("{format} written to S3"),
            &back.batches,
            &reference,
            false,
        );
    }

    // PARTITIONED BY writes hive folders; reading the prefix gives the
    // partition column back.
    let target = format!("{base}/by-status/");
    session
        .sql(&format!(
            "COPY ({query}) TO '{target}' STORED AS PARQUET PARTITIONED BY (o_orderstatus)"
        ))
        .await
        .unwrap();
    let listed = store
        .list_with_delimiter(Some(&object_store::path::Path::from(format!(
            "{prefix}/by-status"
        ))))
        .await
        .unwrap();
    let folders: Vec<String> = listed
        .common_prefixes
        .iter()
        .map(|p| p.filename().unwrap().to_string())
        .collect();
    assert!(
        folders.contains(&"o_orderstatus=F".to_string()),
        "{folders:?}"
    );
    let back = session
        .sql(&format!(
            "SELECT o_orderkey, o_custkey, o_orderstatus, o_totalprice FROM '{target}'"
        ))
        .await
        .unwrap();
    assert_eq!(sorted_rows(&back.batches), sorted_rows(&reference));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_a_missing_bucket_and_a_dead_endpoint_are_named() {
    let Some(server) = stores::s3_server_or_skip() else {
        return;
    };
    let prefix = fresh_prefix("errors");
    upload(bucket_store(&server).as_ref(), &testdata(), &prefix).await;
    let url = format!("s3://{BUCKET}/{prefix}/nation.parquet");
    let attempt = |settings: Vec<(String, String)>, target: String| async move {
        let session = Session::new(config_with(&settings)).unwrap();
        session
            .register_table("t", &target)
            .await
            .expect_err("must fail")
            .to_string()
    };
    let with = |key: &str, value: &str| {
        let mut settings = server.settings();
        settings.retain(|(k, _)| k != key);
        settings.push((key.to_string(), value.to_string()));
        settings
    };

    let wrong_secret = "not-the-secret-0123456789";
    let err = attempt(
        with("fairway.store.s3.secret_access_key", wrong_secret),
        url.clone(),
    )
    .await;
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("the credentials were refused"), "{err}");
    assert!(
        !err.contains(wrong_secret) && !err.contains(&server.secret),
        "{err}"
    );

    let err = attempt(
        with("fairway.store.s3.access_key_id", "AKIANOSUCHKEY"),
        url.clone(),
    )
    .await;
    assert!(err.contains("the credentials were refused"), "{err}");

    // Valid keys of a user who may do nothing.
    let mut denied = with("fairway.store.s3.access_key_id", &server.denied_key_id);
    denied.retain(|(k, _)| k != "fairway.store.s3.secret_access_key");
    denied.push((
        "fairway.store.s3.secret_access_key".into(),
        server.denied_secret.clone(),
    ));
    let err = attempt(denied, url.clone()).await;
    assert!(err.contains(&url) && err.contains("access denied"), "{err}");

    let missing = format!("s3://fairway-no-such-bucket/{prefix}/nation.parquet");
    let err = attempt(server.settings(), missing.clone()).await;
    assert!(
        err.contains(&missing) && err.contains("no such bucket"),
        "{err}"
    );

    let err = attempt(
        server.settings(),
        format!("s3://{BUCKET}/{prefix}/nope.parquet"),
    )
    .await;
    assert!(err.contains("no such object"), "{err}");

    let mut none = server.settings();
    none.retain(|(k, _)| !k.contains("access_key"));
    none.push(("fairway.store.s3.access_key_id".into(), String::new()));
    none.push(("fairway.store.s3.secret_access_key".into(), String::new()));
    let err = attempt(none, url.clone()).await;
    assert!(
        err.contains("no credentials") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );

    // A port nothing listens on: refused at once, not retried for minutes.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = std::time::Instant::now();
    let err = attempt(
        with(
            "fairway.store.s3.endpoint",
            &format!("http://127.0.0.1:{dead}"),
        ),
        url.clone(),
    )
    .await;
    assert!(err.contains("cannot reach the endpoint"), "{err}");
    assert!(
        started.elapsed() < common::DEADLINE,
        "took {:?}",
        started.elapsed()
    );

    // The secret appears in no plan and no error of a working session.
    let session = session_for(&server);
    session.register_table("nation", &url).await.unwrap();
    let plan = session
        .explain_stages("SELECT * FROM nation")
        .await
        .unwrap();
    assert!(!plan.contains(&server.secret), "{plan}");
    let err = session
        .sql("SELECT nope FROM nation")
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&server.secret), "{err}");
    let settings = format!("{:?}", session.config());
    assert!(!settings.contains(&server.secret), "{settings}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_urls_read_parquet_files_by_ranges() {
    let server = stores::http_server(&testdata());
    let session = Session::new(config_with(&[])).unwrap();
    let plain = plain_tpch(&testdata(), 3).await;
    session
        .register_table("nation", &format!("{}/nation.parquet", server.base))
        .await
        .unwrap();
    let sql = "SELECT n_regionkey, count(*) AS n, min(n_name) AS first FROM nation \
               GROUP BY n_regionkey";
    let ours = session.sql(sql).await.unwrap();
    assert_same_rows(
        "nation over HTTP",
        &ours.batches,
        &plain_rows(&plain, sql).await,
        false,
    );
    let direct = session
        .sql(&format!(
            "SELECT count(*), sum(l_quantity) FROM '{}/lineitem.parquet'",
            server.base
        ))
        .await
        .unwrap();
    let expected = plain_rows(&plain, "SELECT count(*), sum(l_quantity) FROM lineitem").await;
    assert_same_rows("lineitem over HTTP", &direct.batches, &expected, false);

    let err = session
        .register_table("x", &format!("{}/missing.parquet", server.base))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.parquet") && err.contains("not found"),
        "{err}"
    );
    let err = session
        .sql(&format!(
            "COPY (SELECT 1 AS one) TO '{}/out.parquet'",
            server.base
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("read-only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_cluster_reads_the_same_bucket() {
    let Some(server) = stores::s3_server_or_skip() else {
        return;
    };
    let prefix = fresh_prefix("cluster");
    upload(bucket_store(&server).as_ref(), &testdata(), &prefix).await;
    let mut config = config_with(&server.settings());
    config.set("fairway.cluster", "standalone").unwrap();
    // Ballista's scheduler and executor run in this process with the
    // session's runtime, and so with its stores.
    let session = Session::start(config).await.unwrap();
    for table in ["orders", "customer"] {
        session
            .register_table(table, &format!("s3://{BUCKET}/{prefix}/{table}.parquet"))
            .await
            .unwrap();
    }
    let plain = plain_tpch(&testdata(), 3).await;
    let sql = "SELECT c_mktsegment, count(*) AS n, sum(o_totalprice) AS total \
               FROM orders JOIN customer ON o_custkey = c_custkey GROUP BY c_mktsegment";
    let ours = session.sql(sql).await.unwrap();
    assert_same_rows(
        "cluster from S3",
        &ours.batches,
        &plain_rows(&plain, sql).await,
        false,
    );
}
