//! Newline-delimited JSON through `register_table` and a folder of tables,
//! with answers computed by hand.

use fairway_engine::{EngineConfig, Session, rows_as_text};

fn session() -> Session {
    let mut config = EngineConfig::with_slots(2).partitions(2);
    config.shuffle_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    Session::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_files_and_folders_are_tables() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.json");
    std::fs::write(
        &file,
        "{\"user\": \"a\", \"n\": 1}\n{\"user\": \"b\", \"n\": 2}\n{\"user\": \"a\", \"n\": 4, \"extra\": true}\n{\"user\": \"c\"}\n",
    )
    .unwrap();
    let folder = dir.path().join("parts");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("p1.jsonl"), "{\"k\": 1}\n{\"k\": 2}\n").unwrap();
    std::fs::write(folder.join("p2.jsonl"), "{\"k\": 3}\n").unwrap();
    let array = dir.path().join("array.json");
    std::fs::write(&array, "  [{\"x\": 1.5}, {\"x\": 2.5}]\n").unwrap();

    let session = session();
    session
        .register_table("events", file.to_str().unwrap())
        .await
        .unwrap();
    session
        .register_table("parts", folder.to_str().unwrap())
        .await
        .unwrap();
    let rows = |sql: &'static str| {
        let session = session.clone();
        async move { rows_as_text(&session.sql(sql).await.unwrap().batches).unwrap() }
    };
    assert_eq!(
        rows("select user, sum(n) as total, count(*) as c from events group by user order by user")
            .await,
        ["a | 5 | 2", "b | 2 | 1", "c | NULL | 1"]
    );
    assert_eq!(rows("select count(*), sum(k) from parts").await, ["3 | 6"]);

    // A folder of tables registers the JSON ones too; a JSON file that is
    // no table is skipped (with a warning).
    std::fs::write(dir.path().join("zz_broken.json"), "{oops\n").unwrap();
    let other = self::session();
    let names = other
        .register_tables_in(dir.path().to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(names, ["array", "events", "parts"]);

    // Other extensions are still refused, naming what is accepted.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let error = session
        .register_table("notes", text.to_str().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(".json"), "{error}");
}
