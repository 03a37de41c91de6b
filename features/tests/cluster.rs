//! A feature build on Apache DataFusion Ballista (a standalone cluster in
//! this process) gives the same table as the local build.
#![cfg(feature = "cluster")]

mod common;

use common::{assert_same_rows, read_parquet};
use fairway_engine::ClusterTarget;
use fairway_features::{BuildOptions, FeatureSpec, build_features};

/// The bundled example feature spec (12 methods, a shared view) built on
/// the standalone cluster gives the same table as the local build.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_example_feature_spec_builds_the_same_table_on_ballista() {
    let spec_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/features/customer_shared.toml");
    let spec = FeatureSpec::load(&spec_path).expect("the example spec loads");
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, cluster: Option<ClusterTarget>| BuildOptions {
        out: Some(dir.path().join(name)),
        slots: Some(2),
        cluster,
        force: true,
        ..BuildOptions::default()
    };
    let local = build_features(&spec, &build("local.parquet", None))
        .await
        .expect("local build");
    let remote = build_features(
        &spec,
        &build("cluster.parquet", Some(ClusterTarget::Standalone)),
    )
    .await
    .expect("build on Ballista");
    assert_eq!(remote.methods.len(), local.methods.len());
    assert!(remote.methods.len() >= 10);
    let on_cluster = read_parquet(&dir.path().join("cluster.parquet")).await;
    let on_local = read_parquet(&dir.path().join("local.parquet")).await;
    assert_eq!(on_cluster[0].schema(), on_local[0].schema(), "same columns");
    assert_same_rows("customer_shared.toml", &on_cluster, &on_local, false);
    assert!(
        on_local.iter().map(|b| b.num_rows()).sum::<usize>() > 100,
        "a real table"
    );
}
