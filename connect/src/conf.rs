//! `spark.conf`: one session's settings. Spark keys are kept as given and
//! answered from Spark's defaults where the client asks for them;
//! `spark.scheduler.pool` chooses the session's pool; `fairway.*` and
//! `datafusion.*` keys change the session's engine settings.

use std::collections::BTreeMap;

use fairway_engine::{SchedulingMode, Session};

use crate::error::{Result, SparkError};

/// The session's pool, as in Spark (`sc.setLocalProperty` there).
pub const POOL_KEY: &str = "spark.scheduler.pool";

/// A job tag `spark.scheduler.pool=NAME` sends the jobs of the tagging
/// thread to pool NAME (PySpark's tags are per thread).
pub const POOL_TAG_PREFIX: &str = "spark.scheduler.pool=";

/// Spark's defaults for the settings a Spark Connect client reads, and
/// the ones a user commonly reads back. The values are what fairway does:
/// timestamps are session-local in UTC, local relations are always sent
/// inline (artifacts are not supported), plans are not compressed.
pub const SPARK_DEFAULTS: &[(&str, &str)] = &[
    ("spark.app.name", "fairway connect"),
    ("spark.master", "local[*]"),
    ("spark.connect.session.planCompression.threshold", "-1"),
    (
        "spark.connect.session.planCompression.defaultAlgorithm",
        "NONE",
    ),
    ("spark.sql.ansi.enabled", "true"),
    ("spark.sql.caseSensitive", "false"),
    ("spark.sql.connect.serverStacktrace.enabled", "false"),
    ("spark.sql.execution.arrow.maxRecordsPerBatch", "10000"),
    ("spark.sql.execution.arrow.pyspark.enabled", "true"),
    (
        "spark.sql.execution.arrow.pyspark.selfDestruct.enabled",
        "false",
    ),
    ("spark.sql.execution.arrow.useLargeVarTypes", "false"),
    (
        "spark.sql.execution.pandas.convertToArrowArraySafely",
        "false",
    ),
    ("spark.sql.execution.pandas.inferPandasDictAsMap", "false"),
    ("spark.sql.execution.pandas.structHandlingMode", "legacy"),
    ("spark.sql.execution.pyspark.binaryAsBytes", "true"),
    ("spark.sql.execution.pythonUDF.arrow.enabled", "false"),
    ("spark.sql.execution.pythonUDTF.arrow.enabled", "false"),
    ("spark.sql.pyspark.inferNestedDictAsStruct.enabled", "false"),
    ("spark.sql.pyspark.jvmStacktrace.enabled", "false"),
    (
        "spark.sql.pyspark.legacy.inferArrayTypeFromFirstElement.enabled",
        "false",
    ),
    (
        "spark.sql.pyspark.legacy.inferMapTypeFromFirstPair.enabled",
        "false",
    ),
    ("spark.sql.repl.eagerEval.enabled", "false"),
    ("spark.sql.repl.eagerEval.maxNumRows", "20"),
    ("spark.sql.repl.eagerEval.truncate", "20"),
    // Above this size a client uploads a local relation as an artifact,
    // which fairway does not take: keep every one inline (the server takes
    // messages up to 2 GiB).
    (
        "spark.sql.session.localRelationCacheThreshold",
        "2147483647",
    ),
    ("spark.sql.session.localRelationSizeLimit", "2147483647"),
    ("spark.sql.session.localRelationChunkSizeRows", "10000"),
    ("spark.sql.session.localRelationChunkSizeBytes", "16777216"),
    (
        "spark.sql.session.localRelationBatchOfChunksSizeBytes",
        "134217728",
    ),
    ("spark.sql.session.timeZone", "UTC"),
    ("spark.sql.timestampType", "TIMESTAMP_LTZ"),
];

/// Settings that cannot change once the server runs.
const STATIC: &[&str] = &["spark.app.name", "spark.master"];

/// The Spark default of `key`, if fairway knows one.
pub fn spark_default(key: &str) -> Option<&'static str> {
    SPARK_DEFAULTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

/// One session's settings: what the client set, on top of the defaults.
#[derive(Debug, Default)]
pub struct SessionConf {
    set: BTreeMap<String, String>,
}

fn is_engine_key(key: &str) -> bool {
    key.starts_with("fairway.") || key.starts_with("datafusion.")
}

fn engine_value(engine: &Session, key: &str) -> Option<String> {
    engine
        .context()
        .state()
        .config_options()
        .entries()
        .into_iter()
        .find(|e| e.key == key)
        .and_then(|e| e.value)
}

fn set_engine(engine: &Session, key: &str, value: &str) -> Result<()> {
    engine
        .context()
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set(key, value)
        .map_err(|e| SparkError::illegal_argument(format!("setting {key}: {e}")))
}

impl SessionConf {
    /// Sets `key`; engine keys are checked and applied to `engine` first.
    pub fn set(&mut self, engine: &Session, key: &str, value: &str) -> Result<()> {
        if STATIC.contains(&key) {
            return Err(SparkError::analysis(
                "CANNOT_MODIFY_STATIC_CONFIG",
                format!("Cannot modify the value of the static Spark config: \"{key}\"."),
            ));
        }
        if is_engine_key(key) {
            set_engine(engine, key, value)?;
        }
        if key == POOL_KEY {
            set_engine(engine, "fairway.scheduler.pool", value)?;
        }
        self.set.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Removes what the client set for `key` (back to the default).
    pub fn unset(&mut self, engine: &Session, key: &str, default_pool: &str) -> Result<()> {
        self.set.remove(key);
        if key == POOL_KEY {
            set_engine(engine, "fairway.scheduler.pool", default_pool)?;
        }
        Ok(())
    }

    /// The value of `key`: set by the client, else the engine's, else
    /// Spark's default.
    pub fn get(&self, engine: &Session, key: &str) -> Option<String> {
        if let Some(v) = self.set.get(key) {
            return Some(v.clone());
        }
        if is_engine_key(key) {
            return engine_value(engine, key);
        }
        if key == POOL_KEY {
            return None;
        }
        if key == "spark.sql.shuffle.partitions" {
            return engine_value(engine, "datafusion.execution.target_partitions");
        }
        spark_default(key).map(str::to_string)
    }

    /// The pool the client chose for this session, if any.
    pub fn pool(&self) -> Option<&str> {
        self.set.get(POOL_KEY).map(String::as_str)
    }

    /// Every setting with a value whose key starts with `prefix`: Spark's
    /// defaults, what the client set, and the fairway settings.
    pub fn all(&self, engine: &Session, prefix: &str) -> Vec<(String, String)> {
        let mut all: BTreeMap<String, String> = SPARK_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for entry in engine.context().state().config_options().entries() {
            if entry.key.starts_with("fairway.")
                && let Some(v) = entry.value
            {
                all.insert(entry.key, v);
            }
        }
        all.extend(self.set.clone());
        all.into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect()
    }

    /// Whether `key` may be changed at run time.
    pub fn is_modifiable(&self, key: &str) -> bool {
        !STATIC.contains(&key)
    }
}

/// In FAIR mode, a pool that the allocation file does not define is
/// created on first use with Spark's defaults: the warning that says so,
/// or `None` for a defined pool (or any pool in FIFO mode).
pub fn unknown_pool_warning(engine: &Session, pool: &str) -> Option<String> {
    if engine.config().scheduler_mode != SchedulingMode::Fair
        || pool.is_empty()
        || engine.scheduler().pools().iter().any(|p| p.name == pool)
    {
        return None;
    }
    Some(format!(
        "pool '{pool}' is not in the allocation file: created with weight 1, minShare 0, FIFO"
    ))
}
