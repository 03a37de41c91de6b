//! The shuffle's folders and files never take over a path it did not make:
//! random private work folders, exclusive creation, planted links not
//! followed, and only dead processes' leftovers removed.

#![cfg(unix)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use fairway_shuffle::{
    JobShuffle, MapPartitioning, MapStats, ShuffleConfig, ShuffleError, ShuffleService,
    write_map_output,
};

/// A service in `dir` that sends every map output to a file.
fn spilling_service(dir: &Path) -> ShuffleService {
    ShuffleService::new(ShuffleConfig {
        memory_limit: 0,
        dir: dir.to_path_buf(),
        ..ShuffleConfig::default()
    })
}

/// Writes 100 rows as map output `map` of stage 0 (attempt 0).
async fn write(job: &Arc<JobShuffle>, map: usize) -> Result<MapStats, ShuffleError> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(Int64Array::from((0..100).collect::<Vec<i64>>()))],
    )
    .unwrap();
    let input = Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(vec![Ok(batch)]),
    ));
    write_map_output(job, 0, map, 0, input, &MapPartitioning::Single, 64).await
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn work_folder_is_created_private_with_a_random_name() {
    let dir = tempfile::tempdir().unwrap();
    let first = ShuffleService::new(ShuffleConfig {
        dir: dir.path().to_path_buf(),
        ..ShuffleConfig::default()
    });
    let second = ShuffleService::new(ShuffleConfig {
        dir: dir.path().to_path_buf(),
        ..ShuffleConfig::default()
    });
    for service in [&first, &second] {
        let root = service.root();
        let meta = std::fs::symlink_metadata(root).expect("work folder made at once");
        assert!(meta.is_dir() && !meta.file_type().is_symlink());
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o700,
            "{}",
            root.display()
        );
        let name = root.file_name().unwrap().to_str().unwrap();
        let prefix = format!("fairway-shuffle-{}-", std::process::id());
        let random = name
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(random.len(), 16, "{name}");
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    }
    assert_ne!(first.root(), second.root());
    let roots = [first.root().to_path_buf(), second.root().to_path_buf()];
    drop((first, second));
    assert!(
        roots.iter().all(|r| !r.exists()),
        "empty work folders removed"
    );
}

#[tokio::test]
async fn links_at_the_old_predictable_names_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = tempfile::tempdir().unwrap();
    // Earlier versions named the work folder `fairway-shuffle-<pid>-<n>`
    // with n counting services from 0 in the process.
    let pid = std::process::id();
    let links: Vec<PathBuf> = (0..256)
        .map(|n| dir.path().join(format!("fairway-shuffle-{pid}-{n}")))
        .collect();
    for link in &links {
        symlink(victim.path(), link).unwrap();
    }
    let service = spilling_service(dir.path());
    assert!(!links.iter().any(|link| link == service.root()));
    let job = service.create_job(1);
    let stats = write(&job, 0).await.expect("spilled to a file");
    assert!(stats.spilled);
    assert!(job.dir().starts_with(service.root()));
    assert!(
        entries(victim.path()).is_empty(),
        "nothing written through a link"
    );
    drop(job);
    drop(service);
    assert!(links.iter().all(|link| is_link(link)), "links left alone");
    assert!(entries(victim.path()).is_empty());
}

#[tokio::test]
async fn a_link_at_a_job_folder_is_an_error_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("keep"), "precious").unwrap();
    let service = spilling_service(dir.path());
    let link = service.root().join("job-7");
    symlink(victim.path(), &link).unwrap();
    let job = service.create_job(7);
    let error = write(&job, 0).await.expect_err("the job folder exists");
    let message = error.to_string();
    assert!(
        message.contains("job-7") && message.contains("exists"),
        "{message}"
    );
    drop(job);
    assert!(is_link(&link), "not removed either");
    assert_eq!(entries(victim.path()), ["keep"]);
    assert_eq!(
        std::fs::read_to_string(victim.path().join("keep")).unwrap(),
        "precious"
    );
    std::fs::remove_file(&link).unwrap();
}

#[tokio::test]
async fn links_at_predictable_file_names_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let service = spilling_service(dir.path());
    let job = service.create_job(1);
    write(&job, 0)
        .await
        .expect("first output makes the job folder");
    // The names the next outputs would use: the data file of map 1, the
    // bucket file of map 2 and the index of map 3.
    let planted = [
        "stage-0-map-1-attempt-0.data",
        "stage-0-map-2-attempt-0.bucket-0.tmp",
        "stage-0-map-3-attempt-0.index",
    ];
    for name in planted {
        symlink(&victim, job.dir().join(name)).unwrap();
    }
    for (map, name) in (1..).zip(planted) {
        let error = write(&job, map).await.expect_err("the name exists");
        let message = error.to_string();
        assert!(
            message.contains(name) && message.contains("exists"),
            "{message}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "precious",
            "{name}"
        );
    }
    // No file of a failed output is left behind; the links stay.
    let mut expected: Vec<String> = planted.iter().map(|n| n.to_string()).collect();
    expected.extend([
        "stage-0-map-0-attempt-0.data".to_string(),
        "stage-0-map-0-attempt-0.index".to_string(),
    ]);
    expected.sort();
    assert_eq!(entries(job.dir()), expected);
    let job_dir = job.dir().to_path_buf();
    drop(job);
    assert!(!job_dir.exists());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// The PID of a process that has ended (and been reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    pid
}

#[test]
fn only_folders_of_dead_processes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), "precious").unwrap();
    let dead = dead_pid();
    let ours = std::process::id();
    let path = |name: String| dir.path().join(name);

    let stale = path(format!("fairway-shuffle-{dead}-0123456789abcdef"));
    std::fs::create_dir_all(stale.join("job-1")).unwrap();
    std::fs::write(stale.join("job-1/stage-0-map-0-attempt-0.data"), "x").unwrap();
    // A link inside a stale folder: removed, its target is not.
    symlink(&target, stale.join("job-1/link")).unwrap();
    let old_style = path(format!("fairway-shuffle-{dead}-3"));
    std::fs::create_dir(&old_style).unwrap();
    let live = path(format!("fairway-shuffle-{ours}-0123456789abcdef"));
    std::fs::create_dir(&live).unwrap();
    let dead_link = path(format!("fairway-shuffle-{dead}-link"));
    symlink(&target, &dead_link).unwrap();
    let dead_file = path(format!("fairway-shuffle-{dead}-file"));
    std::fs::write(&dead_file, "not a folder").unwrap();
    let foreign = [
        path("other-folder".to_string()),
        path(format!("fairway-shuffle-{dead}")),
        path(format!("fairway-shuffle-{dead}-")),
        path(format!("fairway-shuffle-{dead}-a.b")),
        path(format!("fairway-shuffle-x{dead}-abc")),
        path(format!("my-fairway-shuffle-{dead}-abc")),
    ];
    for folder in &foreign {
        std::fs::create_dir(folder).unwrap();
    }

    assert_eq!(ShuffleService::remove_stale_folders(dir.path()), 2);
    assert!(!stale.exists() && !old_style.exists());
    assert!(live.is_dir(), "our own folder stays");
    assert!(is_link(&dead_link), "a link is never removed");
    assert!(dead_file.is_file(), "a file is never removed");
    assert!(foreign.iter().all(|f| f.is_dir()), "other names stay");
    assert_eq!(
        std::fs::read_to_string(target.join("keep")).unwrap(),
        "precious"
    );

    // A new service does the same at start.
    let again = path(format!("fairway-shuffle-{dead}-fedcba9876543210"));
    std::fs::create_dir(&again).unwrap();
    let service = ShuffleService::new(ShuffleConfig {
        dir: dir.path().to_path_buf(),
        ..ShuffleConfig::default()
    });
    assert!(!again.exists(), "removed by ShuffleService::new");
    assert!(live.is_dir() && service.root().is_dir());
    assert_eq!(
        std::fs::read_to_string(target.join("keep")).unwrap(),
        "precious"
    );
}
