//! The `fairway` binary on a real S3-compatible server (moto on loopback):
//! `--tables` on a bucket prefix, `--table NAME=s3://...`, a URL in SQL,
//! credentials from the standard AWS environment variables, and the error
//! a wrong secret gives (exit status 1, the URL and the cause named, the
//! secret not).

#[path = "../../testsupport/stores.rs"]
mod stores;

mod common;

use std::process::Command;

use common::text;
use stores::{BUCKET, S3Server, bucket_store, fresh_prefix, upload};

fn fairway_with(server: &S3Server, secret: &str, args: &[&str]) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_fairway"))
        .args(args)
        .current_dir(common::workspace())
        .env("AWS_ACCESS_KEY_ID", &server.key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run fairway");
    common::finish(child, &format!("fairway {args:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_on_a_bucket_from_the_aws_environment() {
    let Some(server) = stores::s3_server_or_skip() else {
        return;
    };
    let prefix = fresh_prefix("cli");
    let data = common::workspace().join("testdata/tpch-sf0.01");
    upload(bucket_store(&server).as_ref(), &data, &prefix).await;
    let base = format!("s3://{BUCKET}/{prefix}");

    let tables = format!("{base}/");
    let out = fairway_with(
        &server,
        &server.secret,
        &[
            "sql",
            "--slots",
            "2",
            "--format",
            "csv",
            "--tables",
            &tables,
            "-c",
            "SELECT count(*) AS n FROM lineitem",
            "-c",
            &format!("SELECT count(*) AS n FROM '{base}/nation.parquet'"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // TPC-H sf0.01 has 60175 lineitem rows and 25 nations.
    assert_eq!(text(&out.stdout), "n\n60175\nn\n25\n");

    let table = format!("r={base}/region.parquet");
    let out = fairway_with(
        &server,
        &server.secret,
        &[
            "sql",
            "--format",
            "csv",
            "--table",
            &table,
            "-c",
            "SELECT r_name FROM r ORDER BY r_regionkey",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "r_name\nAFRICA\nAMERICA\nASIA\nEUROPE\nMIDDLE EAST\n"
    );

    let wrong = "wrong-secret-value-42";
    let out = fairway_with(
        &server,
        wrong,
        &["sql", "--table", &table, "-c", "SELECT 1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{base}/region.parquet")), "{err}");
    assert!(err.contains("the credentials were refused"), "{err}");
    assert!(!err.contains(wrong), "{err}");
}
