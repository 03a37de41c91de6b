//! Feature tables end to end: outputs checked against plain DataFusion
//! (each method run on its own, merged here with a HashMap), every check
//! made before work starts, duplicate keys, atomic output and cancellation,
//! incremental rebuilds, multi-column keys and CSV sources, explain.

mod common;

use common::features::{options, tpch_file, workspace, write_spec};
use common::read_parquet;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use fairway_engine::arrow::array::{Array, ArrayRef};
use fairway_engine::arrow::record_batch::RecordBatch;
use fairway_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use fairway_engine::datafusion::prelude::SessionContext;
use fairway_engine::plain_datafusion_context;
use fairway_features::Body;
use fairway_features::{
    BuildOptions, BuildSummary, FeatureSpec, ViewKind, build_features, explain_features,
    explain_shared_work,
};
use fairway_observe::Event;
use fairway_observe::events::status;
use fairway_observe::timeline::read_event_log;

fn cell(array: &ArrayRef, row: usize) -> String {
    let options = FormatOptions::default().with_null("NULL");
    let text = ArrayFormatter::try_new(array.as_ref(), &options)
        .unwrap()
        .value(row)
        .to_string();
    if array.data_type().is_floating() && !array.is_null(row) {
        let v: f64 = text.parse().unwrap();
        return format!("{v:.8e}");
    }
    text
}

/// Rows keyed by their key columns' text: column name -> cell text.
type Table = HashMap<String, HashMap<String, String>>;

fn key_of(batch: &RecordBatch, key: &[String], row: usize) -> String {
    key.iter()
        .map(|k| cell(batch.column_by_name(k).unwrap(), row))
        .collect::<Vec<_>>()
        .join("|")
}

/// The same spec computed independently: plain DataFusion (no stages, no
/// merge_frames) runs each view as a SQL view and each method on its own
/// (`steps_sql` gives the SQL of DataFrame-step methods); the results are
/// merged here by key. Returns the expected columns and rows.
async fn reference(spec: &FeatureSpec, steps_sql: &HashMap<&str, &str>) -> (Vec<String>, Table) {
    let ctx: SessionContext = plain_datafusion_context(2);
    for source in &spec.sources {
        fairway_engine::register_table(&ctx, &source.name, &source.path)
            .await
            .unwrap();
    }
    let sql_of = |name: &str, body: &Body| match body {
        Body::Sql { text, .. } => text.clone(),
        Body::Steps(_) => steps_sql
            .get(name)
            .unwrap_or_else(|| panic!("no reference SQL for '{name}'"))
            .to_string(),
    };
    for view in &spec.views {
        let sql = format!(
            "create view {} as {}",
            view.name,
            sql_of(&view.name, &view.body)
        );
        ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    }
    let mut columns = spec.key.clone();
    let mut table: Table = HashMap::new();
    for method in &spec.methods {
        let batches = ctx
            .sql(&sql_of(&method.name, &method.body))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let schema = batches[0].schema();
        let features: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !spec.key.contains(n))
            .collect();
        columns.extend(features.iter().cloned());
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let entry = table.entry(key_of(batch, &spec.key, row)).or_default();
                for k in &spec.key {
                    entry.insert(k.clone(), cell(batch.column_by_name(k).unwrap(), row));
                }
                for f in &features {
                    let old = entry.insert(f.clone(), cell(batch.column_by_name(f).unwrap(), row));
                    assert!(old.is_none(), "{} has duplicate keys", method.name);
                }
            }
        }
    }
    for row in table.values_mut() {
        for c in &columns {
            row.entry(c.clone()).or_insert_with(|| "NULL".to_string());
        }
    }
    (columns, table)
}

/// The output file as (columns, rows by key).
async fn output_table(path: &Path, key: &[String]) -> (Vec<String>, Table) {
    let batches = read_parquet(path).await;
    let columns: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut table: Table = HashMap::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let values = columns
                .iter()
                .map(|c| (c.clone(), cell(batch.column_by_name(c).unwrap(), row)))
                .collect();
            let old = table.insert(key_of(batch, key, row), values);
            assert!(old.is_none(), "the output has a key twice");
        }
    }
    (columns, table)
}

/// SQL of the DataFrame-step methods of the bundled specs, written by hand.
fn bundled_steps_sql() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        (
            "profile",
            "select c_custkey, c_acctbal as acctbal, c_mktsegment as segment from customer",
        ),
        (
            "order_stats",
            "select c_custkey, count(*) as n_orders, sum(o_totalprice) as total_spend, \
             avg(o_totalprice) as avg_order_value, max(o_totalprice) as max_order_value \
             from customer_orders group by c_custkey",
        ),
        (
            "priority_mix",
            "select c_custkey, avg(case when o_orderpriority in ('1-URGENT', '2-HIGH') \
             then 1.0 else 0.0 end) as urgent_share from customer_orders \
             where o_orderdate >= date '1992-01-01' group by c_custkey",
        ),
        (
            "returns",
            "select c_custkey, avg(case when l_returnflag = 'R' then 1.0 else 0.0 end) \
             as return_share, sum(case when l_returnflag = 'R' then l_extendedprice else 0 end) \
             as returned_value from order_lines group by c_custkey",
        ),
    ])
}

/// The views of the spec that `summary`'s build computed.
fn declared(summary: &BuildSummary) -> Vec<&fairway_features::ViewReport> {
    summary
        .views
        .iter()
        .filter(|v| v.kind == ViewKind::Declared)
        .collect()
}

async fn check_bundled(spec_file: &str) -> BuildSummary {
    check_bundled_with(spec_file, |_| {}).await
}

/// Builds a bundled spec with its options changed by `change` and checks
/// its table against plain DataFusion's.
async fn check_bundled_with(spec_file: &str, change: impl Fn(&mut BuildOptions)) -> BuildSummary {
    let spec = FeatureSpec::load(workspace().join(spec_file)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("customer.parquet");
    let mut opts = options(&out);
    change(&mut opts);
    let summary = build_features(&spec, &opts).await.unwrap();
    let (expected_columns, expected) = reference(&spec, &bundled_steps_sql()).await;
    let (columns, actual) = output_table(&out, &spec.key).await;
    assert_eq!(
        columns, expected_columns,
        "key first, then methods in spec order"
    );
    assert_eq!(summary.columns, expected_columns);
    assert_eq!(actual.len(), expected.len());
    assert_eq!(summary.rows, expected.len());
    for (key, row) in &expected {
        assert_eq!(actual.get(key), Some(row), "row of key {key}");
    }
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_spec_matches_plain_datafusion() {
    let summary = check_bundled("testdata/features/customer.toml").await;
    assert_eq!(summary.methods.len(), 12);
    assert_eq!(summary.rows, 1500, "every customer, with or without orders");
    assert!(summary.methods.iter().all(|m| !m.reused));
    let declared: Vec<_> = summary
        .views
        .iter()
        .filter(|v| v.kind == ViewKind::Declared)
        .collect();
    assert_eq!(declared.len(), 1);
    assert_eq!(declared[0].methods.len(), 3);
    assert!(declared[0].in_memory);
    let order_stats = &summary.methods[2];
    assert_eq!(
        (order_stats.name.as_str(), order_stats.pool.as_str()),
        ("order_stats", "features")
    );
    assert_eq!((order_stats.rows, order_stats.columns), (1000, 4));
}

/// The seven methods of the bundled spec that join orders and lineitem
/// themselves read one shared subplan, computed once (with fusion off, which
/// would make four of them one reader); the table is the same as plain
/// DataFusion's with sharing on and off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_joins_are_computed_once_and_give_the_same_table() {
    let joiners = [
        "quantities",
        "returns",
        "ship_modes",
        "late_deliveries",
        "brands",
        "suppliers",
        "net_revenue",
    ];
    let summary = check_bundled_with("testdata/features/customer.toml", |o| {
        o.fuse_aggregations = Some(false)
    })
    .await;
    let automatic: Vec<_> = summary
        .views
        .iter()
        .filter(|v| v.kind == ViewKind::SharedSubplan)
        .collect();
    assert_eq!(automatic.len(), 1, "{summary}");
    let shared = automatic[0];
    assert!(
        shared.name.starts_with("shared_1 (orders ⋈ lineitem on "),
        "{}",
        shared.name
    );
    assert_eq!(shared.methods, joiners);
    // Every line of lineitem has its order.
    assert_eq!(shared.rows, 60175);
    assert!(shared.in_memory);
    assert!(
        summary.to_string().contains("shared subplan shared_1"),
        "{summary}"
    );
    let unshared = check_bundled_with("testdata/features/customer.toml", |o| {
        o.share_subplans = Some(false);
        o.fuse_aggregations = Some(false);
    })
    .await;
    assert!(unshared.views.iter().all(|v| v.kind == ViewKind::Declared));
    assert_eq!(unshared.rows, summary.rows);
}

const SHARING: &str = r#"key = "c_custkey"
[[method]]
name = "air"
sql = """
select o.o_custkey as c_custkey, sum(l.l_quantity) as air_quantity
from orders o join lineitem l on o.o_orderkey = l.l_orderkey
where l.l_shipmode = 'AIR'
group by o.o_custkey
"""
[[method]]
name = "discounts"
sql = """
select x.o_custkey as c_custkey, max(y.l_discount) as max_discount, count(*) as n_lines
from orders x join lineitem y on y.l_orderkey = x.o_orderkey
group by x.o_custkey
"""
[[method]]
name = "big_lines"
sql = """
select o.o_custkey as c_custkey, count(*) as n_big_lines
from orders o join lineitem l on o.o_orderkey = l.l_orderkey and l.l_quantity > 45
group by o.o_custkey
"""
[[method]]
name = "nations"
sql = """
select c.c_custkey, n.n_name as nation
from customer c join nation n on n.n_nationkey = c.c_nationkey
"""
"#;

/// Aliases, the order of an equality and the columns each method reads do
/// not matter; the shared table keeps only the columns its readers use; a
/// join with another condition is not the same join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_is_shared_whatever_its_aliases_with_the_columns_its_readers_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_spec(dir.path(), "s.toml", SHARING);
    let spec = FeatureSpec::load(&path).unwrap();
    // air and discounts would fuse: one reader.
    let unfused = BuildOptions {
        fuse_aggregations: Some(false),
        ..BuildOptions::default()
    };
    let text = explain_shared_work(&spec, &unfused).await.unwrap();
    assert!(text.contains("fused aggregations: off"), "{text}");
    assert!(text.contains("read by 2: air, discounts"), "{text}");
    assert!(
        text.contains("columns kept (4): o_custkey, l_quantity, l_discount, l_shipmode"),
        "{text}"
    );
    assert!(text.contains("read by big_lines only"), "{text}");
    assert!(text.contains("read by nations only"), "{text}");
    let (expected_columns, expected) = reference(&spec, &HashMap::new()).await;
    for share in [true, false] {
        let out = dir.path().join(format!("{share}.parquet"));
        let mut opts = options(&out);
        opts.share_subplans = Some(share);
        opts.fuse_aggregations = Some(false);
        let summary = build_features(&spec, &opts).await.unwrap();
        let shared: Vec<_> = summary
            .views
            .iter()
            .filter(|v| v.kind == ViewKind::SharedSubplan)
            .collect();
        assert_eq!(shared.len(), usize::from(share), "{summary}");
        if share {
            assert_eq!(shared[0].methods, ["air", "discounts"]);
        }
        let (columns, actual) = output_table(&out, &spec.key).await;
        assert_eq!(columns, expected_columns);
        assert_eq!(actual, expected, "sharing {share}");
    }
    // Off in the spec.
    let off = write_spec(
        dir.path(),
        "off.toml",
        &SHARING.replacen(
            "key = \"c_custkey\"\n",
            "key = \"c_custkey\"\n[build]\nshare_subplans = false\n",
            1,
        ),
    );
    let spec = FeatureSpec::load(&off).unwrap();
    assert!(!spec.build.share_subplans);
    let text = explain_shared_work(&spec, &BuildOptions::default())
        .await
        .unwrap();
    assert!(text.contains("shared subplans: off"), "{text}");
}

const FUSING: &str = r#"key = "c_custkey"
[[method]]
name = "spend"
sql = """
select o_custkey as c_custkey, sum(o_totalprice) as spend, count(*) as n_orders
from orders group by o_custkey
"""
[[method]]
name = "urgent"
sql = """
select o.o_custkey as c_custkey, sum(o.o_totalprice) as urgent_spend, avg(o.o_shippriority) as urgent_ship
from orders o where o.o_orderpriority = '1-URGENT' group by o.o_custkey
"""
[[method]]
name = "late_big"
sql = """
select o_custkey as c_custkey, max(o_totalprice) as max_1997
from orders where o_orderdate >= date '1997-01-01'
group by o_custkey having count(*) > 1
"""
[[method]]
name = "priorities"
sql = """
select o_custkey as c_custkey, count(distinct o_orderpriority) as n_priorities
from orders group by o_custkey
"""
[[method]]
name = "nations"
sql = """
select c.c_custkey, n.n_name as nation
from customer c join nation n on n.n_nationkey = c.c_nationkey
"""
"#;

/// Methods that aggregate orders by customer, each with its own WHERE (and
/// a HAVING), run as one aggregate pass; each keeps exactly its own key set
/// (a WHERE drops customers) and the table equals plain DataFusion's and
/// the unfused build's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregations_of_one_input_by_one_key_run_as_one_pass_with_their_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_spec(dir.path(), "f.toml", FUSING);
    let spec = FeatureSpec::load(&path).unwrap();
    let text = explain_shared_work(&spec, &BuildOptions::default())
        .await
        .unwrap();
    assert!(
        text.contains("fused_1: γ[orders.o_custkey](orders)\n    one pass for 3 methods: spend, urgent, late_big"),
        "{text}"
    );
    assert!(
        text.contains("not fused:\n    priorities: a DISTINCT aggregate"),
        "{text}"
    );
    // Each method's own row count, from plain DataFusion.
    let ctx: SessionContext = plain_datafusion_context(2);
    for source in &spec.sources {
        fairway_engine::register_table(&ctx, &source.name, &source.path)
            .await
            .unwrap();
    }
    let mut own_rows = Vec::new();
    for method in &spec.methods {
        let Body::Sql { text, .. } = &method.body else {
            unreachable!()
        };
        let batches = ctx.sql(text).await.unwrap().collect().await.unwrap();
        own_rows.push(batches.iter().map(|b| b.num_rows()).sum::<usize>());
    }
    assert!(
        own_rows[1] < own_rows[0] && own_rows[2] < own_rows[1],
        "the WHEREs drop customers: {own_rows:?}"
    );
    let (expected_columns, expected) = reference(&spec, &HashMap::new()).await;
    for fuse in [true, false] {
        let out = dir.path().join(format!("{fuse}.parquet"));
        let mut opts = options(&out);
        opts.fuse_aggregations = Some(fuse);
        let summary = build_features(&spec, &opts).await.unwrap();
        let fused: Vec<_> = summary
            .views
            .iter()
            .filter(|v| v.kind == ViewKind::FusedAggregate)
            .collect();
        assert_eq!(fused.len(), usize::from(fuse), "{summary}");
        if fuse {
            assert_eq!(fused[0].methods, ["spend", "urgent", "late_big"]);
            // One row per customer with orders.
            assert_eq!(fused[0].rows, own_rows[0]);
            assert!(
                summary.to_string().contains("fused aggregate fused_1"),
                "{summary}"
            );
        }
        let rows: Vec<usize> = summary.methods.iter().map(|m| m.rows).collect();
        assert_eq!(rows, own_rows, "fusion {fuse}");
        let (columns, actual) = output_table(&out, &spec.key).await;
        assert_eq!(columns, expected_columns);
        assert_eq!(actual, expected, "fusion {fuse}");
    }
    let off = write_spec(
        dir.path(),
        "off.toml",
        &FUSING.replacen(
            "key = \"c_custkey\"\n",
            "key = \"c_custkey\"\n[build]\nfuse_aggregations = false\n",
            1,
        ),
    );
    let spec = FeatureSpec::load(&off).unwrap();
    assert!(!spec.build.fuse_aggregations);
    let text = explain_shared_work(&spec, &BuildOptions::default())
        .await
        .unwrap();
    assert!(text.contains("fused aggregations: off"), "{text}");
}

/// The bundled spec with fusion on (the default) and off gives plain
/// DataFusion's table; its four orders-lineitem aggregates by customer run
/// as one pass over the shared join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_spec_fused_and_shared_matches_plain_datafusion() {
    let summary = check_bundled("testdata/features/customer.toml").await;
    let kinds = |kind| -> Vec<(String, Vec<String>)> {
        summary
            .views
            .iter()
            .filter(|v| v.kind == kind)
            .map(|v| {
                (
                    v.name.split(' ').next().unwrap().to_string(),
                    v.methods.clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        kinds(ViewKind::FusedAggregate),
        [
            (
                "fused_1".to_string(),
                ["order_stats", "priority_mix"].map(String::from).to_vec()
            ),
            (
                "fused_2".to_string(),
                ["quantities", "returns", "late_deliveries", "net_revenue"]
                    .map(String::from)
                    .to_vec()
            ),
        ],
        "{summary}"
    );
    assert_eq!(
        kinds(ViewKind::SharedSubplan),
        [(
            "shared_1".to_string(),
            ["ship_modes", "brands", "suppliers", "fused_2"]
                .map(String::from)
                .to_vec()
        )],
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_view_spec_matches_plain_datafusion() {
    let summary = check_bundled("testdata/features/customer_shared.toml").await;
    let declared: Vec<_> = summary
        .views
        .iter()
        .filter(|v| v.kind == ViewKind::Declared)
        .collect();
    let names: Vec<_> = declared.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["customer_orders", "order_lines"]);
    assert_eq!(declared[1].methods.len(), 7);
}

/// Runs `body` as a spec and returns the error text; also checks that no
/// job ran (the event log has no job).
async fn spec_error(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_spec(dir.path(), "bad.toml", body);
    let spec = match FeatureSpec::load(&path) {
        Ok(spec) => spec,
        Err(e) => return e.to_string(),
    };
    let log = dir.path().join("events.jsonl");
    let mut opts = options(&dir.path().join("out.parquet"));
    opts.event_log = Some(log.clone());
    let e = build_features(&spec, &opts).await.unwrap_err().to_string();
    let events = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !events.contains("job_start"),
        "a job ran before the error: {e}"
    );
    assert!(!dir.path().join("out.parquet").exists());
    assert!(e.contains("bad.toml"), "the error names the spec: {e}");
    e
}

const GOOD: &str = r#"
[[method]]
name = "orders_n"
sql = "select o_custkey as c_custkey, count(*) as n_orders from orders group by o_custkey"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_runs_before_any_work_and_names_the_culprit() {
    let key = "key = \"c_custkey\"\n";
    let e = spec_error(&format!(
        "{key}{GOOD}[[method]]\nname = \"m2\"\nsql = \"select o_custkey as c_custkey, count(*) as n2 from ordrs group by 1\"\n"
    ))
    .await;
    assert!(e.contains("method 'm2' reads unknown table 'ordrs'"), "{e}");
    assert!(e.contains("sources: customer, "), "lists the sources: {e}");

    let e = spec_error(&format!(
        "{key}{GOOD}[[method]]\nname = \"m2\"\nsql = \"selec c_custkey from customer\"\n"
    ))
    .await;
    assert!(e.contains("method 'm2': SQL does not parse"), "{e}");
    assert!(e.contains("bad.toml:"), "with a line: {e}");

    let e = spec_error(&format!(
        "{key}{GOOD}[[method]]\nname = \"m2\"\nsql = \"select c_name, c_acctbal from customer\"\n"
    ))
    .await;
    assert!(
        e.contains("method 'm2' does not return the key column 'c_custkey'"),
        "{e}"
    );

    let e = spec_error(&format!(
        "{key}{GOOD}[[method]]\nname = \"m2\"\nsql = \"select c_custkey, c_acctbal as n_orders from customer\"\n"
    ))
    .await;
    assert!(
        e.contains("feature column 'n_orders' is returned by methods 'orders_n' and 'm2'"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        format!("{key}[sources]\norders = \"no/such/orders.parquet\"\n{GOOD}"),
    )
    .unwrap();
    let spec = FeatureSpec::load(&path).unwrap();
    let e = build_features(&spec, &options(&dir.path().join("o.parquet")))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.toml:3: source 'orders'"), "{e}");
    assert!(
        e.contains("no/such/orders.parquet: no such file or folder"),
        "{e}"
    );

    let e = spec_error(&format!("{key}{GOOD}[output]\ncompresion = \"zstd\"\n")).await;
    assert!(e.contains("unknown field `compresion`"), "{e}");
    assert!(e.contains("`compression`"), "lists the valid keys: {e}");

    let e = spec_error(&format!(
        "{key}[[view]]\nname = \"v\"\nsql = \"select * from later\"\n[[view]]\nname = \"later\"\nsql = \"select 1 as x\"\n{GOOD}"
    ))
    .await;
    assert!(e.contains("view 'v' reads unknown table 'later'"), "{e}");
    assert!(e.contains("only views defined before it"), "{e}");

    let e = spec_error(&format!(
        "{key}[[method]]\nname = \"s\"\nfrom = \"customer\"\nselect = [\"c_custkey\", \"no_such_column\"]\n"
    ))
    .await;
    assert!(
        e.contains("method 's'") && e.contains("no_such_column"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_are_an_error_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"key = "c_custkey"
[[method]]
name = "per_order"
sql = "select o_custkey as c_custkey, o_orderkey from orders"
"#;
    let path = write_spec(dir.path(), "dups.toml", body);
    let out = dir.path().join("out.parquet");
    let spec = FeatureSpec::load(&path).unwrap();
    let e = build_features(&spec, &options(&out))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("method 'per_order' failed: duplicate key"),
        "{e}"
    );
    assert!(e.contains("c_custkey="), "names a sample key: {e}");
    assert!(e.contains("allow_duplicate_keys = true"), "{e}");
    assert!(!out.exists());

    let path = write_spec(
        dir.path(),
        "dups.toml",
        &format!("{body}allow_duplicate_keys = true\n"),
    );
    let spec = FeatureSpec::load(&path).unwrap();
    let summary = build_features(&spec, &options(&out)).await.unwrap();
    assert_eq!(summary.rows, 15000, "one row per order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_keeps_the_previous_output_and_cancels_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let path = write_spec(
        dir.path(),
        "f.toml",
        &format!("key = \"c_custkey\"\n{GOOD}"),
    );
    build_features(&FeatureSpec::load(&path).unwrap(), &options(&out))
        .await
        .unwrap();
    let before = std::fs::read(&out).unwrap();

    // `slow` runs for minutes unless cancelled; `bad` fails when it runs.
    let body = r#"key = "c_custkey"
[[method]]
name = "slow"
sql = """
select a.l_orderkey as c_custkey, count(*) as pairs
from lineitem a cross join lineitem b
where a.l_quantity + b.l_quantity > 1
group by a.l_orderkey
"""
[[method]]
name = "bad"
sql = "select c_custkey, cast(c_name as int) as name_number from customer"
"#;
    let path = write_spec(dir.path(), "f.toml", body);
    let log = dir.path().join("events.jsonl");
    let mut opts = options(&out);
    opts.event_log = Some(log.clone());
    let start = Instant::now();
    let e = build_features(&FeatureSpec::load(&path).unwrap(), &opts)
        .await
        .unwrap_err()
        .to_string();
    let elapsed = start.elapsed();
    assert!(e.starts_with("method 'bad' failed: "), "{e}");
    assert!(e.contains("Cannot cast"), "with its cause: {e}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "previous output untouched"
    );
    let names: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".tmp") && !n.ends_with(".fairway-tmp")),
        "no temporary output left: {names:?}"
    );
    assert!(
        !names.contains("out.parquet.fairway-lock"),
        "the lock is removed after a failed build: {names:?}"
    );
    // The scheduler reports a cancelled job's end from its own thread:
    // wait (within the shared deadline) until every started job has ended.
    let deadline = Instant::now() + common::DEADLINE;
    let events = loop {
        let events = read_event_log(&log).expect("a valid event log");
        let count = |end: bool| {
            events
                .iter()
                .filter(|e| match e {
                    Event::JobStart { .. } => !end,
                    Event::JobEnd { .. } => end,
                    _ => false,
                })
                .count()
        };
        if count(true) == count(false) || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // `slow` was cancelled: by its job if it had started one (the usual
    // case), else before it submitted any (the time bound above holds).
    // Its job is found by its id, from the job_start that names it.
    let slow_job = events.iter().find_map(|e| match e {
        Event::JobStart {
            job, description, ..
        } if description == "feature method slow" => Some(*job),
        _ => None,
    });
    if let Some(slow_job) = slow_job {
        let end = events
            .iter()
            .find_map(|e| match e {
                Event::JobEnd { job, status, .. } if *job == slow_job => Some(status.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("slow never ended: {events:?}"));
        assert_eq!(end, status::CANCELLED);
    }
}

fn modify(path: &Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    file.set_modified(later).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_methods_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for table in ["customer", "orders"] {
        std::fs::copy(tpch_file(table), data.join(format!("{table}.parquet"))).unwrap();
    }
    let spec_text = |orders_sql: &str| {
        format!(
            r#"key = "c_custkey"
[sources]
customer = "data/customer.parquet"
orders = "data/orders.parquet"
[[view]]
name = "o"
sql = "select o_custkey as c_custkey, o_totalprice from orders"
[[method]]
name = "balance"
sql = "select c_custkey, c_acctbal from customer"
[[method]]
name = "spend"
sql = "{orders_sql}"
[[method]]
name = "largest"
from = "o"
group_by = ["c_custkey"]
aggregate = ["max(o_totalprice) AS largest_order"]
"#
        )
    };
    let spec_path = dir.path().join("inc.toml");
    let write = |sql: &str| std::fs::write(&spec_path, spec_text(sql)).unwrap();
    let out = dir.path().join("out/features.parquet");
    let build = |force: bool| {
        let spec = FeatureSpec::load(&spec_path).unwrap();
        let mut opts = options(&out);
        opts.force = force;
        async move { build_features(&spec, &opts).await.unwrap() }
    };
    let spend = "select c_custkey, sum(o_totalprice) as spend from o group by c_custkey";
    write(spend);
    let first = build(false).await;
    assert_eq!(first.built(), ["balance", "spend", "largest"]);
    assert_eq!(
        declared(&first).len(),
        1,
        "o is shared by spend and largest"
    );
    let rows = read_parquet(&out).await;

    let second = build(false).await;
    assert!(second.built().is_empty(), "{second}");
    assert_eq!(second.reused().len(), 3);
    assert!(
        second.views.is_empty(),
        "no view is computed when nothing runs"
    );
    assert!(second.to_string().contains("3 reused"), "{second}");
    let (a, b) = (
        common::sorted_rows(&rows),
        common::sorted_rows(&read_parquet(&out).await),
    );
    assert_eq!(a, b, "reused results give the same table");

    // Layout and comments are not part of a method's definition.
    write("select c_custkey,   sum(o_totalprice) as spend -- total\\n from o group by c_custkey");
    assert!(build(false).await.built().is_empty());

    modify(&data.join("orders.parquet"));
    let third = build(false).await;
    assert_eq!(
        third.built(),
        ["spend", "largest"],
        "the methods reading orders"
    );
    assert_eq!(third.reused(), ["balance"]);

    write("select c_custkey, sum(o_totalprice) * 2 as spend from o group by c_custkey");
    let fourth = build(false).await;
    assert_eq!(fourth.built(), ["spend"]);
    assert_eq!(
        fourth.views.len(),
        0,
        "o is read by one method to build only"
    );

    let fifth = build(true).await;
    assert_eq!(fifth.built().len(), 3);
    let stage = dir.path().join("out/features.parquet.fairway-stage");
    let folders = std::fs::read_dir(&stage)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(folders, 3, "results of older builds are removed");
}

/// A method's fingerprint covers exactly the files its scan reads, as
/// DataFusion lists them: a file in a subfolder of a source folder (which
/// the scan skips) or of another extension changes nothing; a file the
/// scan reads, under a folder or a glob, rebuilds the methods reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_cover_exactly_the_files_a_scan_reads() {
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("orders");
    std::fs::create_dir_all(orders.join("old")).unwrap();
    std::fs::copy(tpch_file("orders"), orders.join("part-0.parquet")).unwrap();
    std::fs::copy(tpch_file("orders"), orders.join("old/part-9.parquet")).unwrap();
    std::fs::write(orders.join("notes.txt"), "not data").unwrap();
    let customers = dir.path().join("customers");
    std::fs::create_dir(&customers).unwrap();
    std::fs::copy(tpch_file("customer"), customers.join("customer-1.parquet")).unwrap();
    let spec_path = dir.path().join("f.toml");
    std::fs::write(
        &spec_path,
        r#"key = "c_custkey"
[sources]
orders = "orders"
customer = "customers/customer-*.parquet"
[[method]]
name = "spend"
sql = "select o_custkey as c_custkey, sum(o_totalprice) as spend from orders group by 1"
[[method]]
name = "balance"
sql = "select c_custkey, max(c_acctbal) as acctbal from customer group by 1"
"#,
    )
    .unwrap();
    let out = dir.path().join("out.parquet");
    let build = || {
        let spec = FeatureSpec::load(&spec_path).unwrap();
        let opts = options(&out);
        async move { build_features(&spec, &opts).await.unwrap() }
    };
    assert_eq!(build().await.built(), ["spend", "balance"]);
    // The scan reads no subfolder and no other extension.
    modify(&orders.join("old/part-9.parquet"));
    modify(&orders.join("notes.txt"));
    let again = build().await;
    assert!(
        again.built().is_empty(),
        "nothing the scans read changed: {again}"
    );
    // The file it reads does change the fingerprint.
    modify(&orders.join("part-0.parquet"));
    assert_eq!(build().await.built(), ["spend"]);
    // A new file the glob matches is read, so it is fingerprinted too; one
    // it does not match is not.
    std::fs::copy(tpch_file("customer"), customers.join("other.parquet")).unwrap();
    assert!(build().await.built().is_empty());
    std::fs::copy(tpch_file("customer"), customers.join("customer-2.parquet")).unwrap();
    assert_eq!(build().await.built(), ["balance"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_column_key_over_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales.csv");
    std::fs::write(
        &csv,
        "store,day,amount,units\n1,1,10.5,1\n1,1,4.5,2\n1,2,3.0,1\n2,1,7.0,5\n",
    )
    .unwrap();
    let spec_path = dir.path().join("k.toml");
    std::fs::write(
        &spec_path,
        r#"key = ["store", "day"]
[sources]
sales = "sales.csv"
[output]
compression = "gzip"
row_group_size = 2
[[method]]
name = "amounts"
from = "sales"
group_by = ["store", "day"]
aggregate = ["sum(amount) AS total", "count(*) AS n"]
[[method]]
name = "units"
sql = "select store, day, max(units) as max_units from sales where units > 1 group by store, day"
"#,
    )
    .unwrap();
    let spec = FeatureSpec::load(&spec_path).unwrap();
    let out = dir.path().join("k.parquet");
    let summary = build_features(&spec, &options(&out)).await.unwrap();
    assert_eq!(summary.columns, ["store", "day", "total", "n", "max_units"]);
    use fairway_engine::datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let metadata = reader.metadata();
    assert_eq!(metadata.num_row_groups(), 2, "row groups of at most 2 rows");
    assert_eq!(
        metadata.row_group(0).column(0).compression().to_string(),
        "GZIP(GzipLevel(6))"
    );
    let rows = common::sorted_rows(&read_parquet(&out).await);
    assert_eq!(
        rows,
        [
            "1 | 1 | 1.50000000e1 | 2 | 2",
            "1 | 2 | 3.00000000e0 | 1 | NULL",
            "2 | 1 | 7.00000000e0 | 1 | 5",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_pools_shared_views_and_the_merge_tree() {
    let spec = FeatureSpec::load(workspace().join("testdata/features/customer.toml")).unwrap();
    let text = explain_features(&spec, &BuildOptions::default()).unwrap();
    assert!(text.contains("key: c_custkey"), "{text}");
    let shared = explain_shared_work(&spec, &BuildOptions::default())
        .await
        .unwrap();
    for line in [
        "one pass for 4 methods: quantities, returns, late_deliveries, net_revenue",
        "one pass for 2 methods: order_stats, priority_mix",
        "not fused:\n    recency: a DISTINCT aggregate",
        "fused_1: γ[customer_orders.c_custkey](customer_orders)",
        "fused_2: γ[o.o_custkey](orders ⋈ lineitem on l.l_orderkey = o.o_orderkey)",
        "read by 4: ship_modes, brands, suppliers, fused_2",
        "not shared:",
        "read by brands only",
    ] {
        assert!(shared.contains(line), "{line} in {shared}");
    }
    let unfused = BuildOptions {
        fuse_aggregations: Some(false),
        ..BuildOptions::default()
    };
    let shared = explain_shared_work(&spec, &unfused).await.unwrap();
    assert!(
        shared.contains(
            "read by 7: quantities, returns, ship_modes, late_deliveries, brands, suppliers, \
             net_revenue"
        ),
        "{shared}"
    );

    assert!(
        text.contains(
            "customer_orders  [sql]  reads orders; SHARED by 3 methods: order_stats, recency, priority_mix"
        ),
        "{text}"
    );
    assert!(
        text.contains("profile          pool features  [steps]  reads customer"),
        "{text}"
    );
    assert!(
        text.contains("returns          pool features  [sql returns.sql]"),
        "{text}"
    );
    assert!(
        text.contains(
            "(((profile ⟗ geography) ⟗ (order_stats ⟗ recency)) ⟗ ((priority_mix ⟗ quantities) \
             ⟗ (returns ⟗ ship_modes))) ⟗ ((late_deliveries ⟗ brands) ⟗ (suppliers ⟗ net_revenue))"
        ),
        "{text}"
    );
    assert!(text.contains("FAIR mode"), "{text}");
    // The spec's default pool, defined by no allocation file, shares its
    // slots fairly instead of being made FIFO on first use.
    assert!(
        text.contains(
            "pool features: FAIR, weight 1, minShare 0 (the build's default pool, shared fairly \
             by its methods)"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_view_over_its_memory_budget_is_read_from_the_stage_area() {
    let dir = tempfile::tempdir().unwrap();
    let body = |budget: &str| {
        format!(
            r#"key = "c_custkey"
[build]
view_memory = "{budget}"
[[view]]
name = "o"
sql = "select o_custkey as c_custkey, o_totalprice, o_orderdate from orders"
[[method]]
name = "spend"
sql = "select c_custkey, sum(o_totalprice) as spend from o group by c_custkey"
[[method]]
name = "last"
from = "o"
group_by = ["c_custkey"]
aggregate = ["max(o_orderdate) AS last_order"]
"#
        )
    };
    let mut rows = Vec::new();
    for budget in ["1GiB", "1KiB"] {
        let path = write_spec(dir.path(), "v.toml", &body(budget));
        let spec = FeatureSpec::load(&path).unwrap();
        let out = dir.path().join(format!("{budget}.parquet"));
        let summary = build_features(&spec, &options(&out)).await.unwrap();
        assert_eq!(declared(&summary).len(), 1);
        assert_eq!(summary.views[0].rows, 15000);
        assert_eq!(summary.views[0].in_memory, budget == "1GiB");
        let stage = dir.path().join(format!("{budget}.parquet.fairway-stage"));
        let spilled = std::fs::read_dir(&stage).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("view-")
        });
        assert!(!spilled, "a spilled view is removed after the build");
        rows.push(common::sorted_rows(&read_parquet(&out).await));
    }
    assert_eq!(rows[0], rows[1]);
    assert_eq!(rows[0].len(), 1000);
}

/// Per feature merge job in an event log: its stages, and how many of them
/// read other stages (the rest read method results).
fn merge_stages(log: &Path) -> Vec<(usize, usize)> {
    let events = read_event_log(log).expect("a valid event log");
    let merges: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::JobStart {
                job, description, ..
            } if description == "feature merge" => Some(*job),
            _ => None,
        })
        .collect();
    merges
        .iter()
        .map(|m| {
            let parents: Vec<usize> = events
                .iter()
                .filter_map(|e| match e {
                    Event::StageMetrics { job, parents, .. } if job == m => Some(parents.len()),
                    _ => None,
                })
                .collect();
            (parents.len(), parents.iter().filter(|&&p| p > 0).count())
        })
        .collect()
}

/// The merge of 16 method results shuffles each result at most once: at
/// most 16 stages read the results (small results are joined pairwise in
/// the stage that reads them) and ONE stage runs every join level above
/// them. With `fairway.optimizer.co_partitioned_joins = false` (a `conf`
/// setting of the build) every level shuffles again. Both tables equal
/// plain DataFusion's (methods with different key sets, so the merge has
/// unmatched keys on every side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_of_16_methods_shuffles_each_result_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = "key = \"c_custkey\"\n".to_string();
    for i in 0..16 {
        body.push_str(&format!(
            "[[method]]\nname = \"m{i}\"\nsql = \"select c_custkey, c_acctbal + {i} as f{i} \
             from customer where c_custkey % 17 <> {i}\"\n"
        ));
    }
    let path = write_spec(dir.path(), "merge.toml", &body);
    let spec = FeatureSpec::load(&path).unwrap();
    let (expected_columns, expected) = reference(&spec, &HashMap::new()).await;
    for co_partitioned in [true, false] {
        let out = dir.path().join(format!("{co_partitioned}.parquet"));
        let log = dir.path().join(format!("{co_partitioned}.jsonl"));
        let mut opts = options(&out);
        opts.event_log = Some(log.clone());
        opts.conf = vec![(
            "fairway.optimizer.co_partitioned_joins".to_string(),
            co_partitioned.to_string(),
        )];
        build_features(&spec, &opts).await.unwrap();
        let stages = merge_stages(&log);
        assert_eq!(stages.len(), 1, "one merge job: {stages:?}");
        let (all, readers) = stages[0];
        if co_partitioned {
            assert!(
                all <= 17 && readers == 1,
                "{all} stages, {readers} read stages"
            );
        } else {
            assert!(
                readers > 1,
                "re-shuffled at every level: {readers} read stages"
            );
        }
        let (columns, actual) = output_table(&out, &spec.key).await;
        assert_eq!(columns, expected_columns);
        assert_eq!(actual, expected, "co-partitioned {co_partitioned}");
    }
}
