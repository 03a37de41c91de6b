//! Files queried directly in SQL (`FROM 'x.parquet'`, `read_csv(...)` and
//! its siblings), Avro tables and hive-style partition folders, on local
//! files: answers compared with plain DataFusion on the same files or with
//! hand-written values.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{assert_same_rows, plain_rows, plain_tpch, sorted_rows};
use fairway_engine::arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
use fairway_engine::arrow::datatypes::{DataType, Field, Schema};
use fairway_engine::{EngineConfig, Session};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/tpch-sf0.01")
}

fn session() -> Session {
    let mut config = EngineConfig::with_slots(2).partitions(3);
    config.shuffle_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    Session::new(config).unwrap()
}

async fn rows(session: &Session, sql: &str) -> Vec<String> {
    let out = session
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    sorted_rows(&out.batches)
}

async fn error(session: &Session, sql: &str) -> String {
    match session.sql(sql).await {
        Ok(_) => panic!("{sql} should fail"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quoted_path_is_a_table() {
    let session = session();
    let plain = plain_tpch(&testdata(), 3).await;
    let nation = testdata().join("nation.parquet");
    let ours = session
        .sql(&format!(
            "SELECT n_regionkey, count(*) AS n FROM '{}' GROUP BY n_regionkey",
            nation.display()
        ))
        .await
        .unwrap();
    let reference = plain_rows(
        &plain,
        "SELECT n_regionkey, count(*) AS n FROM nation GROUP BY n_regionkey",
    )
    .await;
    assert_same_rows("FROM 'nation.parquet'", &ours.batches, &reference, false);
    // A join of a path and a registered table, with an alias.
    session
        .register_table(
            "region",
            &testdata().join("region.parquet").to_string_lossy(),
        )
        .await
        .unwrap();
    let joined = rows(
        &session,
        &format!(
            "SELECT r_name, count(*) FROM '{}' AS n JOIN region ON n.n_regionkey = r_regionkey \
             GROUP BY r_name",
            nation.display()
        ),
    )
    .await;
    assert_eq!(joined.len(), 5, "{joined:?}");

    let err = error(&session, "SELECT * FROM 'no/such/file.parquet'").await;
    assert!(
        err.contains("no/such/file.parquet") && err.contains("no such file"),
        "{err}"
    );
    // Names that are no paths still get DataFusion's own answer.
    let err = error(&session, "SELECT * FROM no_such_table").await;
    assert!(
        err.contains("no_such_table") && err.contains("not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_functions_take_paths_globs_lists_and_options() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "1;x\n2;y\n").unwrap();
    std::fs::write(dir.path().join("b.csv"), "3;z\n").unwrap();
    std::fs::write(dir.path().join("c.csv"), "id,name\n# a comment line\n4,w\n").unwrap();
    std::fs::write(
        dir.path().join("rows.json"),
        "[{\"k\": 1, \"v\": \"a\"}, {\"k\": 2, \"v\": \"b\"}]",
    )
    .unwrap();
    std::fs::write(dir.path().join("rows.ndjson"), "{\"k\": 3, \"v\": \"c\"}\n").unwrap();
    let d = dir.path().display();
    let session = session();

    let got = rows(
        &session,
        &format!("SELECT * FROM read_csv('{d}/a.csv', header => false, delim => ';')"),
    )
    .await;
    assert_eq!(got, ["1 | x", "2 | y"]);
    // DuckDB's `name = value` spelling, a glob, and a list of paths.
    let got = rows(
        &session,
        &format!("SELECT count(*) FROM read_csv('{d}/[ab].csv', header = false, sep = ';')"),
    )
    .await;
    assert_eq!(got, ["3"]);
    let got = rows(
        &session,
        &format!(
            "SELECT column_1 FROM read_csv(['{d}/a.csv', '{d}/b.csv'], header => false, \
             delimiter => ';')"
        ),
    )
    .await;
    assert_eq!(got, ["1", "2", "3"]);
    let got = rows(
        &session,
        &format!("SELECT id, name FROM read_csv('{d}/c.csv', comment => '#')"),
    )
    .await;
    assert_eq!(got, ["4 | w"]);
    // JSON: one array, and one object per line.
    let got = rows(
        &session,
        &format!("SELECT k, v FROM read_json('{d}/rows.json')"),
    )
    .await;
    assert_eq!(got, ["1 | a", "2 | b"]);
    let got = rows(
        &session,
        &format!("SELECT k, v FROM read_ndjson('{d}/rows.ndjson')"),
    )
    .await;
    assert_eq!(got, ["3 | c"]);
    // Parquet, and the same call in a join and a subquery.
    let orders = testdata().join("orders.parquet");
    let plain = plain_tpch(&testdata(), 3).await;
    let sql = "SELECT o_orderpriority, count(*) FROM orders \
               WHERE o_custkey IN (SELECT c_custkey FROM customer WHERE c_mktsegment = 'BUILDING') \
               GROUP BY o_orderpriority";
    let ours = session
        .sql(&format!(
            "SELECT o_orderpriority, count(*) FROM read_parquet('{}') \
             WHERE o_custkey IN (SELECT c_custkey FROM parquet_scan('{}') \
             WHERE c_mktsegment = 'BUILDING') GROUP BY o_orderpriority",
            orders.display(),
            testdata().join("customer.parquet").display()
        ))
        .await
        .unwrap();
    assert_same_rows(
        "read_parquet",
        &ours.batches,
        &plain_rows(&plain, sql).await,
        false,
    );

    let err = error(
        &session,
        &format!("SELECT * FROM read_csv('{d}/a.csv', colour => 'red')"),
    )
    .await;
    assert!(err.contains("unknown option 'colour'"), "{err}");
    let err = error(
        &session,
        "SELECT * FROM read_parquet('/no/such/dir/x.parquet')",
    )
    .await;
    assert!(
        err.contains("/no/such/dir/x.parquet") && err.contains("no such file"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hive_partition_folders_become_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let session = session();
    let target = dir.path().join("sales");
    session
        .sql(&format!(
            "COPY (SELECT * FROM (VALUES (2024, 1, 'a', 10), (2024, 2, 'b', 20), \
             (2025, 1, 'c', 30)) AS t(year, month, item, amount)) \
             TO '{}/' STORED AS PARQUET PARTITIONED BY (year, month)",
            target.display()
        ))
        .await
        .unwrap();
    assert!(target.join("year=2024/month=2").is_dir());
    session
        .register_table("sales", &target.to_string_lossy())
        .await
        .unwrap();
    let schema = session
        .context()
        .table_provider("sales")
        .await
        .unwrap()
        .schema();
    assert_eq!(
        schema.field_with_name("year").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("month").unwrap().data_type(),
        &DataType::Int64
    );
    let got = rows(
        &session,
        "SELECT year, sum(amount) FROM sales WHERE month = 1 GROUP BY year",
    )
    .await;
    assert_eq!(got, ["2024 | 10", "2025 | 30"]);
    // Turned off, the folders are not columns.
    let got = rows(
        &session,
        &format!(
            "SELECT count(*) FROM read_parquet('{}', hive_partitioning => false)",
            target.display()
        ),
    )
    .await;
    assert_eq!(got, ["3"]);
    let err = error(
        &session,
        &format!(
            "SELECT year FROM read_parquet('{}', hive_partitioning => false)",
            target.display()
        ),
    )
    .await;
    assert!(err.contains("year"), "{err}");

    // Files under different keys: an error naming two of them.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir_all(mixed.join("a=1")).unwrap();
    std::fs::create_dir_all(mixed.join("b=2")).unwrap();
    std::fs::copy(
        testdata().join("region.parquet"),
        mixed.join("a=1/r.parquet"),
    )
    .unwrap();
    std::fs::copy(
        testdata().join("region.parquet"),
        mixed.join("b=2/r.parquet"),
    )
    .unwrap();
    let err = session
        .register_table("mixed", &mixed.to_string_lossy())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("partition folders differ") && err.contains("a=1/r.parquet"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_files_are_tables() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("ann"), None, Some("cy")])),
            Arc::new(Int64Array::from(vec![Some(10), Some(20), None])),
        ],
    )
    .unwrap();
    let path = dir.path().join("people.avro");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = arrow_avro::writer::AvroWriter::new(file, (*schema).clone()).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();

    let session = session();
    session
        .register_table("people", &path.to_string_lossy())
        .await
        .unwrap();
    let got = rows(&session, "SELECT id, name, score FROM people").await;
    assert_eq!(got, ["1 | ann | 10", "2 | NULL | 20", "3 | cy | NULL"]);
    let got = rows(
        &session,
        &format!("SELECT sum(score) FROM read_avro('{}')", path.display()),
    )
    .await;
    assert_eq!(got, ["30"]);
    let names = self::session()
        .register_tables_in(&dir.path().to_string_lossy())
        .await
        .unwrap();
    assert_eq!(names, ["people"]);
}

/// Arrow IPC files (`.arrow`, `.feather`) are tables, one file or a folder
/// of them, and what `COPY ... STORED AS ARROW` writes reads back
/// (sqllogictest dynamic_file.slt:125).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_ipc_files_are_tables() {
    use fairway_engine::arrow::ipc::writer::FileWriter;
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let folder = dir.path().join("people");
    std::fs::create_dir(&folder).unwrap();
    for (file, ids, names) in [
        ("a.arrow", vec![1, 2], vec![Some("ann"), None]),
        ("b.arrow", vec![3], vec![Some("cy")]),
    ] {
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int32Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap();
        let out = std::fs::File::create(folder.join(file)).unwrap();
        let mut writer = FileWriter::try_new(out, &schema).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
    }
    let feather = dir.path().join("one.feather");
    std::fs::copy(folder.join("b.arrow"), &feather).unwrap();

    let session = session();
    session
        .register_table("people", &folder.to_string_lossy())
        .await
        .unwrap();
    let got = rows(&session, "SELECT id, name FROM people").await;
    assert_eq!(got, ["1 | ann", "2 | NULL", "3 | cy"]);
    let got = rows(
        &session,
        &format!("SELECT id, name FROM '{}'", feather.display()),
    )
    .await;
    assert_eq!(got, ["3 | cy"]);
    let got = rows(
        &session,
        &format!(
            "SELECT count(*), count(name) FROM read_arrow('{}')",
            folder.display()
        ),
    )
    .await;
    assert_eq!(got, ["3 | 2"]);

    // What fairway writes as Arrow, partitioned, reads back with its
    // partition column.
    let copied = dir.path().join("copied");
    session
        .sql(&format!(
            "COPY (SELECT id, name, id % 2 AS odd FROM people) TO '{}' \
             STORED AS ARROW PARTITIONED BY (odd)",
            copied.display()
        ))
        .await
        .unwrap();
    let got = rows(
        &session,
        &format!("SELECT id, name, odd FROM '{}'", copied.display()),
    )
    .await;
    assert_eq!(got, ["1 | ann | 1", "2 | NULL | 0", "3 | cy | 1"]);

    let err = error(
        &session,
        "SELECT * FROM read_files('x.csv', format => 'orc')",
    )
    .await;
    assert!(err.contains("avro, arrow"), "{err}");
}

/// The catalog that reads quoted paths as tables still drops schemas, with
/// DataFusion's rules and words (sqllogictest ddl.slt:768-783).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_schema_works_beside_file_tables() {
    let session = session();
    session.sql("CREATE SCHEMA s").await.unwrap();
    session.sql("CREATE TABLE s.t AS VALUES (1)").await.unwrap();
    let busy = error(&session, "DROP SCHEMA s").await;
    assert!(
        busy.contains("Cannot drop schema s because other tables depend on it: t"),
        "{busy}"
    );
    let missing = error(&session, "DROP SCHEMA nope").await;
    assert!(missing.contains("Schema 'nope' doesn't exist"), "{missing}");
    session.sql("DROP SCHEMA IF EXISTS nope").await.unwrap();
    session.sql("DROP SCHEMA s CASCADE").await.unwrap();
    let gone = error(&session, "SELECT * FROM s.t").await;
    assert!(gone.contains("s.t"), "{gone}");
    // Quoted paths still read.
    let nation = testdata().join("nation.parquet");
    assert_eq!(
        rows(
            &session,
            &format!("SELECT count(*) FROM '{}'", nation.display())
        )
        .await,
        ["25"]
    );
}
