//! `df.cache()` / `persist()` / `unpersist()`: a session's cached frames.
//!
//! `persist` marks a relation (its plan, as the client sends it); the
//! first query that contains that relation runs it once and keeps its
//! rows, and every later query of the session reads them instead of
//! planning the relation again. Rows stay in memory while the session's
//! cached bytes stay under its budget (`spark.fairway.cache.maxMemory`, default
//! 1 GiB) and the storage level allows memory; otherwise they go to an
//! Arrow IPC file in a folder of the session's own, created under a random
//! name in the system's temporary folder and removed with the session.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use fairway_engine::arrow::array::RecordBatch;
use fairway_engine::arrow::datatypes::SchemaRef;
use fairway_engine::arrow::ipc::writer::FileWriter;
use prost::Message;

use crate::error::{Result, SparkError};
use crate::proto;

/// The default budget of one session's cached rows in memory.
pub const DEFAULT_MAX_MEMORY: usize = 1 << 30;

/// The session setting of the budget, in bytes (`512m`, `2g` work too).
pub const MAX_MEMORY_KEY: &str = "spark.fairway.cache.maxMemory";

#[derive(Clone)]
pub enum Cached {
    /// Marked by `persist`; not run yet.
    Marked { memory: bool },
    /// Run once; its rows.
    Stored(Rows),
}

/// Where a cached relation's rows are.
#[derive(Clone)]
pub enum Rows {
    Memory {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        bytes: usize,
    },
    Disk {
        path: PathBuf,
    },
}

pub struct Cache {
    entries: Mutex<HashMap<Vec<u8>, Cached>>,
    /// The plan ids of the cached relations (`None` for one without): a
    /// relation whose id is not here is not looked up, nor encoded to be.
    plan_ids: Mutex<HashSet<Option<i64>>>,
    dir: Mutex<Option<tempfile::TempDir>>,
    budget: AtomicUsize,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            entries: Mutex::default(),
            plan_ids: Mutex::default(),
            dir: Mutex::default(),
            budget: AtomicUsize::new(DEFAULT_MAX_MEMORY),
        }
    }
}

/// The key of a relation: its encoded plan.
pub fn key(relation: &proto::Relation) -> Vec<u8> {
    relation.encode_to_vec()
}

fn plan_id(relation: &proto::Relation) -> Option<i64> {
    relation.common.as_ref().and_then(|c| c.plan_id)
}

impl Cache {
    /// The bytes of cached rows this session keeps in memory.
    pub fn budget(&self) -> usize {
        self.budget.load(Ordering::Relaxed)
    }

    /// Sets the budget from the text of [`MAX_MEMORY_KEY`].
    pub fn set_budget(&self, text: &str) -> Result<()> {
        let bytes = parse_bytes(text).ok_or_else(|| {
            SparkError::illegal_argument(format!(
                "{MAX_MEMORY_KEY} must be a size such as 512m or 2g, got '{text}'"
            ))
        })?;
        self.budget.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    pub fn persist(&self, relation: &proto::Relation, level: Option<&proto::StorageLevel>) {
        let memory = level.is_none_or(|l| l.use_memory);
        self.plan_ids
            .lock()
            .expect("cache lock")
            .insert(plan_id(relation));
        let mut entries = self.entries.lock().expect("cache lock");
        entries
            .entry(key(relation))
            .or_insert(Cached::Marked { memory });
    }

    pub fn unpersist(&self, relation: &proto::Relation) {
        let removed = self
            .entries
            .lock()
            .expect("cache lock")
            .remove(&key(relation));
        if let Some(Cached::Stored(Rows::Disk { path })) = removed {
            // Ours: written by `store` in the session's own folder.
            let _ = std::fs::remove_file(path);
        }
    }

    /// What the session keeps for `relation`, if anything, with its key.
    pub fn lookup(&self, relation: &proto::Relation) -> Option<(Vec<u8>, Cached)> {
        if !self
            .plan_ids
            .lock()
            .expect("cache lock")
            .contains(&plan_id(relation))
        {
            return None;
        }
        let key = key(relation);
        let cached = self
            .entries
            .lock()
            .expect("cache lock")
            .get(&key)
            .cloned()?;
        Some((key, cached))
    }

    /// The storage level Spark reports for `relation` (none for none).
    pub fn level(&self, relation: Option<&proto::Relation>) -> proto::StorageLevel {
        let cached = relation.and_then(|r| self.lookup(r)).map(|(_, c)| c);
        let (disk, memory) = match cached {
            None => (false, false),
            Some(Cached::Marked { memory }) => (!memory, memory),
            Some(Cached::Stored(Rows::Memory { .. })) => (false, true),
            Some(Cached::Stored(Rows::Disk { .. })) => (true, false),
        };
        proto::StorageLevel {
            use_disk: disk || memory,
            use_memory: memory,
            use_off_heap: false,
            deserialized: memory,
            replication: 1,
        }
    }

    fn memory_bytes(&self) -> usize {
        self.entries
            .lock()
            .expect("cache lock")
            .values()
            .map(|c| match c {
                Cached::Stored(Rows::Memory { bytes, .. }) => *bytes,
                _ => 0,
            })
            .sum()
    }

    /// Keeps the rows of a marked relation: in memory within the budget
    /// (and when its level allows), else on disk.
    pub fn store(
        &self,
        key: &[u8],
        memory: bool,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<Rows> {
        let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let rows = if memory && self.memory_bytes() + bytes <= self.budget() {
            Rows::Memory {
                schema,
                batches,
                bytes,
            }
        } else {
            Rows::Disk {
                path: self.write_file(&schema, &batches)?,
            }
        };
        let mut entries = self.entries.lock().expect("cache lock");
        // Unpersisted meanwhile: the rows serve this query only.
        if entries.contains_key(key) {
            entries.insert(key.to_vec(), Cached::Stored(rows.clone()));
        }
        Ok(rows)
    }

    fn write_file(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<PathBuf> {
        let io = |e: std::io::Error| SparkError::internal(format!("cache spill: {e}"));
        let mut dir = self.dir.lock().expect("cache dir lock");
        if dir.is_none() {
            *dir = Some(
                tempfile::Builder::new()
                    .prefix("fairway-connect-cache-")
                    .tempdir()
                    .map_err(io)?,
            );
        }
        let folder = dir.as_ref().expect("made above").path();
        // A new file of a random name, created exclusively.
        let file = tempfile::Builder::new()
            .prefix("cached-")
            .suffix(".arrow")
            .tempfile_in(folder)
            .map_err(io)?;
        let (handle, path) = file.keep().map_err(|e| io(e.error))?;
        let mut writer = FileWriter::try_new(handle, schema)
            .map_err(|e| SparkError::internal(format!("cache spill: {e}")))?;
        for batch in batches {
            writer
                .write(batch)
                .map_err(|e| SparkError::internal(format!("cache spill: {e}")))?;
        }
        writer
            .finish()
            .map_err(|e| SparkError::internal(format!("cache spill: {e}")))?;
        Ok(path)
    }
}

/// `512m`, `2g`, `1024k` or plain bytes.
pub fn parse_bytes(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1usize << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    digits.trim().parse::<usize>().ok()?.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_as_spark_writes_them() {
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("2g"), Some(2 << 30));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("1kb"), Some(1024));
        assert_eq!(parse_bytes("lots"), None);
    }
}
