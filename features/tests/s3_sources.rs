//! A feature build whose sources and output are objects on a real
//! S3-compatible server (moto on loopback): the table equals the build over
//! the same files on local disk, and after one object is replaced only the
//! methods reading it are built again (the fingerprints use the object's
//! size, time and ETag) and the output object is replaced whole; the stage
//! area kept beside the output on S3 lets a fresh machine reuse it all.

#[path = "../../testsupport/stores.rs"]
mod stores;

mod common;

use std::path::Path;

use common::features::{options, tpch_file};
use common::{read_parquet, sorted_rows};
use fairway_features::{FeatureSpec, build_features};
use object_store::ObjectStoreExt as _;
use stores::{BUCKET, bucket_store, fresh_prefix};

const SPEC: &str = r#"key = "c_custkey"
[sources]
customer = "CUSTOMER"
orders = "ORDERS"
[[method]]
name = "balance"
sql = "select c_custkey, c_acctbal from customer"
[[method]]
name = "spend"
sql = "select o_custkey as c_custkey, sum(o_totalprice) as spend from orders group by o_custkey"
"#;

fn spec_over(dir: &Path, name: &str, customer: &str, orders: &str) -> FeatureSpec {
    let path = dir.join(name);
    std::fs::write(
        &path,
        SPEC.replace("CUSTOMER", customer).replace("ORDERS", orders),
    )
    .unwrap();
    FeatureSpec::load(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_on_s3_build_and_rebuild_incrementally() {
    let Some(server) = stores::s3_server_or_skip() else {
        return;
    };
    let prefix = fresh_prefix("features");
    let store = bucket_store(&server);
    for table in ["customer", "orders"] {
        let bytes = std::fs::read(tpch_file(table)).unwrap();
        store
            .put(
                &object_store::path::Path::from(format!("{prefix}/{table}.parquet")),
                bytes.into(),
            )
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let url = |table: &str| format!("s3://{BUCKET}/{prefix}/{table}.parquet");
    let remote = spec_over(dir.path(), "remote.toml", &url("customer"), &url("orders"));
    let local = spec_over(
        dir.path(),
        "local.toml",
        &tpch_file("customer"),
        &tpch_file("orders"),
    );
    // The output is an object too; its cache lives in a local folder.
    let cache = tempfile::tempdir().unwrap();
    let out_url = format!("s3://{BUCKET}/{prefix}/out/features.parquet");
    let out = std::path::PathBuf::from(&out_url);
    let mut opts = options(&out);
    opts.conf = server.settings();
    opts.cache_dir = Some(cache.path().to_path_buf());
    let first = build_features(&remote, &opts).await.unwrap();
    assert_eq!(first.built(), ["balance", "spend"]);
    assert_eq!(first.output, out, "the summary names the URL");
    let local_out = dir.path().join("local.parquet");
    build_features(&local, &options(&local_out)).await.unwrap();
    let session = fairway_engine::Session::new({
        let mut config = fairway_engine::EngineConfig::with_slots(1);
        for (k, v) in server.settings() {
            config.set(&k, &v).unwrap();
        }
        config
    })
    .unwrap();
    let read_output = || async {
        let out = session
            .sql(&format!("SELECT * FROM '{out_url}'"))
            .await
            .unwrap();
        sorted_rows(&out.batches)
    };
    assert_eq!(
        read_output().await,
        sorted_rows(&read_parquet(&local_out).await),
        "the same table from S3 as from local files"
    );

    let second = build_features(&remote, &opts).await.unwrap();
    assert!(second.built().is_empty(), "{second}");
    // The stage area is kept beside the output on S3: another machine (a
    // fresh cache folder) restores it and reuses every method.
    let manifest = object_store::path::Path::from(format!(
        "{prefix}/out/features.parquet.fairway-stage/manifest.json"
    ));
    assert!(store.head(&manifest).await.is_ok(), "manifest on S3");
    let elsewhere = tempfile::tempdir().unwrap();
    let mut other = opts.clone();
    other.cache_dir = Some(elsewhere.path().to_path_buf());
    let restored = build_features(&remote, &other).await.unwrap();
    assert!(restored.built().is_empty(), "{restored}");
    assert_eq!(restored.reused().len(), 2);

    // Replace orders with fewer rows: a new ETag, size and time.
    let fewer = tempfile::tempdir().unwrap();
    let session =
        fairway_engine::Session::new(fairway_engine::EngineConfig::with_slots(1)).unwrap();
    session
        .sql(&format!(
            "COPY (SELECT * FROM '{}' WHERE o_orderkey % 2 = 0) TO '{}' STORED AS PARQUET",
            tpch_file("orders"),
            fewer.path().join("orders.parquet").display()
        ))
        .await
        .unwrap();
    let bytes = std::fs::read(fewer.path().join("orders.parquet")).unwrap();
    store
        .put(
            &object_store::path::Path::from(format!("{prefix}/orders.parquet")),
            bytes.into(),
        )
        .await
        .unwrap();
    let third = build_features(&remote, &opts).await.unwrap();
    assert_eq!(third.built(), ["spend"], "only the method reading orders");
    assert_eq!(third.reused(), ["balance"]);
    // The output object is the new table: spend over even orders only.
    let local_fewer = spec_over(
        dir.path(),
        "fewer.toml",
        &tpch_file("customer"),
        &fewer.path().join("orders.parquet").to_string_lossy(),
    );
    let fewer_out = dir.path().join("fewer.parquet");
    build_features(&local_fewer, &options(&fewer_out))
        .await
        .unwrap();
    assert_eq!(
        read_output().await,
        sorted_rows(&read_parquet(&fewer_out).await)
    );
    // An output onto a source is refused before anything runs.
    let mut onto = options(std::path::Path::new(&url("orders")));
    onto.conf = server.settings();
    let err = build_features(&remote, &onto)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("would overwrite source 'orders'"), "{err}");
}
