//! [`ShuffleReaderExec`], the plan leaf through which a reduce task streams
//! its buckets of a producer stage's map outputs, from memory or from files.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Take};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::sorts::streaming_merge::StreamingMergeBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};

use crate::error::ShuffleError;
use crate::store::{JobShuffle, MapOutput};

/// Which map outputs and buckets each partition of a [`ShuffleReaderExec`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Partition `b` reads bucket `b` of every map output (a hash exchange).
    Buckets { buckets: usize, maps: usize },
    /// Partition `m` reads map output `m` whole (below a sort-preserving
    /// merge, which needs each sorted stream on its own).
    PerMap { maps: usize },
    /// One partition reads every map output in order (below a coalesce, and
    /// the build side of a broadcast join).
    All { maps: usize },
}

impl ReadMode {
    pub fn partitions(&self) -> usize {
        match *self {
            ReadMode::Buckets { buckets, .. } => buckets,
            ReadMode::PerMap { maps } => maps,
            ReadMode::All { .. } => 1,
        }
    }

    /// The (map, bucket) pairs partition `partition` reads, in order.
    fn sources(&self, partition: usize) -> Vec<(usize, usize)> {
        match *self {
            ReadMode::Buckets { maps, .. } => (0..maps).map(|m| (m, partition)).collect(),
            ReadMode::PerMap { .. } => vec![(partition, 0)],
            ReadMode::All { maps } => (0..maps).map(|m| (m, 0)).collect(),
        }
    }
}

/// Leaf of a consumer stage that streams the outputs of a producer stage.
///
/// The data is looked up at execution time in the [`JobShuffle`] found in the
/// task context's session config (`SessionConfig::with_extension`), so a plan
/// holding readers can be displayed, copied and re-executed without carrying
/// any job state. A reader never waits: the scheduler starts a stage only
/// after every stage it reads has finished.
#[derive(Debug)]
pub struct ShuffleReaderExec {
    stage: usize,
    schema: SchemaRef,
    mode: ReadMode,
    /// Set for an order-preserving bucket read: every map wrote its bucket
    /// sorted by this ordering, and each partition merges those sorted runs.
    merge: Option<LexOrdering>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl ShuffleReaderExec {
    /// A reader of stage `stage`. `partitioning` is what the reader promises
    /// its parents (the producer's hash partitioning for a bucket read);
    /// `None` means unknown partitioning with `mode.partitions()` partitions.
    pub fn new(
        stage: usize,
        schema: SchemaRef,
        mode: ReadMode,
        partitioning: Option<Partitioning>,
    ) -> Self {
        let eq = EquivalenceProperties::new(Arc::clone(&schema));
        Self::with_equivalence(stage, schema, mode, partitioning, eq)
    }

    /// Like [`ShuffleReaderExec::new`], keeping the producer's equivalence
    /// properties (its sort order), valid when each partition reads exactly
    /// one producer partition ([`ReadMode::PerMap`]).
    pub fn with_equivalence(
        stage: usize,
        schema: SchemaRef,
        mode: ReadMode,
        partitioning: Option<Partitioning>,
        eq: EquivalenceProperties,
    ) -> Self {
        let partitioning =
            partitioning.unwrap_or(Partitioning::UnknownPartitioning(mode.partitions()));
        let properties = PlanProperties::new(
            eq,
            partitioning,
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            stage,
            schema,
            mode,
            merge: None,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// An order-preserving read of hash buckets (a repartition with
    /// `preserve_order`): each map task wrote its bucket in its input's
    /// order, `ordering`, and each of `partitioning`'s partitions merges the
    /// buckets of all maps into one stream sorted by it. `eq` is what the
    /// exchange declared.
    pub fn sorted_buckets(
        stage: usize,
        schema: SchemaRef,
        maps: usize,
        partitioning: Partitioning,
        eq: EquivalenceProperties,
        ordering: LexOrdering,
    ) -> Self {
        let mode = ReadMode::Buckets {
            buckets: partitioning.partition_count(),
            maps,
        };
        let mut reader = Self::with_equivalence(stage, schema, mode, Some(partitioning), eq);
        reader.merge = Some(ordering);
        reader
    }

    pub fn stage(&self) -> usize {
        self.stage
    }

    pub fn mode(&self) -> ReadMode {
        self.mode
    }
}

impl DisplayAs for ShuffleReaderExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "ShuffleReaderExec: stage={}, ", self.stage)?;
                match self.mode {
                    ReadMode::Buckets { buckets, maps } => {
                        write!(f, "read=bucket of {maps} maps, partitions={buckets}")?;
                        if let Some(ordering) = &self.merge {
                            write!(f, ", merged by [{ordering}]")?;
                        }
                        Ok(())
                    }
                    ReadMode::PerMap { maps } => write!(f, "read=one map each, partitions={maps}"),
                    ReadMode::All { maps } => write!(f, "read=all {maps} maps, partitions=1"),
                }
            }
            DisplayFormatType::TreeRender => write!(f, "stage={}", self.stage),
        }
    }
}

impl ExecutionPlan for ShuffleReaderExec {
    fn name(&self) -> &str {
        "ShuffleReaderExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut recursion = TreeNodeRecursion::Continue;
        for sort in self.merge.iter().flat_map(|o| o.iter()) {
            recursion = f(&sort.expr)?;
            if recursion == TreeNodeRecursion::Stop {
                break;
            }
        }
        Ok(recursion)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "ShuffleReaderExec has no children".to_string(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition >= self.mode.partitions() {
            return Err(DataFusionError::Internal(format!(
                "ShuffleReaderExec of stage {} has no partition {partition}",
                self.stage
            )));
        }
        let job = context
            .session_config()
            .get_extension::<JobShuffle>()
            .ok_or(ShuffleError::NoJobShuffle { stage: self.stage })?;
        let sources = self
            .mode
            .sources(partition)
            .into_iter()
            .map(|(map, bucket)| job.get(self.stage, map).map(|o| (map, o, bucket)))
            .collect::<Result<Vec<_>, _>>()?;
        let stream = |sources: Vec<(usize, Arc<MapOutput>, usize)>| -> SendableRecordBatchStream {
            let iter = BucketIter {
                stage: self.stage,
                sources: sources.into_iter(),
                current: None,
            };
            Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::iter(iter),
            ))
        };
        let Some(ordering) = self.merge.as_ref().filter(|_| sources.len() > 1) else {
            return Ok(stream(sources));
        };
        let runs = sources.into_iter().map(|s| stream(vec![s])).collect();
        let reservation = MemoryConsumer::new(format!(
            "ShuffleReaderExec[stage {}, partition {partition}] merge",
            self.stage
        ))
        .register(context.memory_pool());
        StreamingMergeBuilder::new()
            .with_streams(runs)
            .with_schema(Arc::clone(&self.schema))
            .with_expressions(ordering)
            .with_metrics(BaselineMetrics::new(&self.metrics, partition))
            .with_batch_size(context.session_config().batch_size())
            .with_reservation(reservation)
            .build()
    }
}

/// Reads one partition's buckets, one map output after another.
struct BucketIter {
    stage: usize,
    sources: std::vec::IntoIter<(usize, Arc<MapOutput>, usize)>,
    current: Option<Current>,
}

enum Current {
    Memory {
        output: Arc<MapOutput>,
        bucket: usize,
        next: usize,
    },
    File {
        map: usize,
        reader: Box<StreamReader<BufReader<Take<File>>>>,
    },
}

impl BucketIter {
    fn open(&self, map: usize, output: Arc<MapOutput>, bucket: usize) -> Result<Option<Current>> {
        match output.as_ref() {
            MapOutput::Memory { .. } => Ok(Some(Current::Memory {
                output,
                bucket,
                next: 0,
            })),
            MapOutput::File { data, offsets, .. } => {
                let (start, end) = (offsets[bucket], offsets[bucket + 1]);
                if start == end {
                    return Ok(None);
                }
                let lost = |reason: String| ShuffleError::LostMapOutput {
                    stage: self.stage,
                    map,
                    reason,
                };
                let mut file = File::open(data)
                    .map_err(|e| lost(format!("cannot open {}: {e}", data.display())))?;
                let expected = offsets.last().copied().unwrap_or(0);
                let length = file
                    .metadata()
                    .map_err(|e| lost(format!("cannot read {}: {e}", data.display())))?
                    .len();
                if length < expected {
                    return Err(lost(format!(
                        "{} has {length} bytes, its index says {expected}",
                        data.display()
                    ))
                    .into());
                }
                file.seek(SeekFrom::Start(start))
                    .map_err(|e| lost(format!("cannot read {}: {e}", data.display())))?;
                let region = BufReader::with_capacity(256 * 1024, file.take(end - start));
                let reader = StreamReader::try_new(region, None).map_err(|source| {
                    lost(format!("{} does not decode: {source}", data.display()))
                })?;
                Ok(Some(Current::File {
                    map,
                    reader: Box::new(reader),
                }))
            }
        }
    }
}

impl Iterator for BucketIter {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.current.as_mut() {
                Some(Current::Memory {
                    output,
                    bucket,
                    next,
                }) => {
                    let MapOutput::Memory { buckets, .. } = output.as_ref() else {
                        unreachable!("memory cursor over a file output")
                    };
                    if let Some(batch) = buckets[*bucket].get(*next) {
                        *next += 1;
                        return Some(Ok(batch.clone()));
                    }
                    self.current = None;
                }
                Some(Current::File { map, reader }) => match reader.next() {
                    Some(Ok(batch)) => return Some(Ok(batch)),
                    Some(Err(source)) => {
                        let map = *map;
                        self.current = None;
                        self.sources = Vec::new().into_iter();
                        return Some(Err(ShuffleError::LostMapOutput {
                            stage: self.stage,
                            map,
                            reason: format!("its file does not decode: {source}"),
                        }
                        .into()));
                    }
                    None => self.current = None,
                },
                None => {
                    let (map, output, bucket) = self.sources.next()?;
                    match self.open(map, output, bucket) {
                        Ok(current) => self.current = current,
                        Err(e) => {
                            self.sources = Vec::new().into_iter();
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MapPartitioning, ShuffleConfig, ShuffleService, write_map_output};
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::common::collect;
    use datafusion::prelude::SessionConfig;

    fn batch(schema: &SchemaRef, from: i64, to: i64) -> RecordBatch {
        batch_of(schema, (from..to).collect())
    }

    /// A batch of these keys, each row named `name-{key}`.
    fn batch_of(schema: &SchemaRef, keys: Vec<i64>) -> RecordBatch {
        let names: Vec<String> = keys.iter().map(|k| format!("name-{k}")).collect();
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(Int64Array::from(keys)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    /// Writes map `map` of stage 0 from these batches, hash-partitioned.
    async fn write_map(
        job: &Arc<JobShuffle>,
        map: usize,
        schema: &SchemaRef,
        partitioning: &Partitioning,
        batches: Vec<RecordBatch>,
    ) -> crate::MapStats {
        let input = Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(schema),
            futures::stream::iter(batches.into_iter().map(Ok)),
        ));
        write_map_output(
            job,
            0,
            map,
            0,
            input,
            &MapPartitioning::Partitioned(partitioning.clone()),
            64,
        )
        .await
        .unwrap()
    }

    /// The keys of each of `buckets` partitions of `reader`, in the order
    /// read, each row's name checked against its key.
    async fn bucket_keys(
        reader: &ShuffleReaderExec,
        ctx: &Arc<TaskContext>,
        buckets: usize,
    ) -> Vec<Vec<i64>> {
        let mut per_bucket = Vec::new();
        for b in 0..buckets {
            let batches = collect(reader.execute(b, Arc::clone(ctx)).unwrap())
                .await
                .unwrap();
            let mut keys = Vec::new();
            for batch in &batches {
                let k = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                let n = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                for i in 0..batch.num_rows() {
                    assert_eq!(n.value(i), format!("name-{}", k.value(i)));
                    keys.push(k.value(i));
                }
            }
            per_bucket.push(keys);
        }
        per_bucket
    }

    /// A shuffle service with this memory budget spilling under `dir`, and
    /// the `(k, name)` schema of the tests' rows.
    fn keyed_service(memory_limit: usize, dir: &std::path::Path) -> (ShuffleService, SchemaRef) {
        let service = ShuffleService::new(ShuffleConfig {
            memory_limit,
            dir: dir.to_path_buf(),
            ..ShuffleConfig::default()
        });
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        (service, schema)
    }

    async fn round_trip(memory_limit: usize) -> (Vec<Vec<i64>>, crate::ShuffleStats, PathBufs) {
        let dir = tempfile::tempdir().unwrap();
        let (service, schema) = keyed_service(memory_limit, dir.path());
        let partitioning = Partitioning::Hash(
            vec![Arc::new(Column::new("k", 0)) as Arc<dyn PhysicalExpr>],
            3,
        );
        let job = service.create_job(7);
        for map in 0..2 {
            let batches = (0..5)
                .map(|i| batch(&schema, map * 1000 + i * 100, map * 1000 + i * 100 + 100))
                .collect();
            let stats = write_map(&job, map as usize, &schema, &partitioning, batches).await;
            assert_eq!(stats.rows, 500);
        }
        let reader = ShuffleReaderExec::new(
            0,
            Arc::clone(&schema),
            ReadMode::Buckets {
                buckets: 3,
                maps: 2,
            },
            Some(partitioning),
        );
        let ctx = Arc::new(
            TaskContext::default()
                .with_session_config(SessionConfig::new().with_extension(Arc::clone(&job))),
        );
        let mut per_bucket = bucket_keys(&reader, &ctx, 3).await;
        per_bucket.iter_mut().for_each(|keys| keys.sort());
        let job_dir = job.dir().to_path_buf();
        let stats = service.stats();
        drop(ctx);
        drop(reader);
        drop(job);
        let after = service.stats();
        assert_eq!(after.memory_used, 0, "memory released when the job ends");
        (per_bucket, stats, PathBufs { job_dir, _tmp: dir })
    }

    struct PathBufs {
        job_dir: std::path::PathBuf,
        _tmp: tempfile::TempDir,
    }

    fn check_buckets(per_bucket: &[Vec<i64>]) {
        let mut all: Vec<i64> = per_bucket.iter().flatten().copied().collect();
        all.sort();
        let expected: Vec<i64> = (0..500).chain(1000..1500).collect();
        assert_eq!(all, expected);
        assert!(per_bucket.iter().all(|b| !b.is_empty()));
    }

    #[tokio::test]
    async fn in_memory_round_trip() {
        let (buckets, stats, paths) = round_trip(1 << 30).await;
        check_buckets(&buckets);
        assert_eq!(stats.memory_outputs, 2);
        assert_eq!(stats.file_outputs, 0);
        assert!(stats.memory_used > 0);
        assert!(!paths.job_dir.exists());
    }

    #[tokio::test]
    async fn spilled_round_trip_uses_one_data_file_per_map() {
        let (buckets, stats, paths) = round_trip(0).await;
        check_buckets(&buckets);
        assert_eq!(stats.memory_outputs, 0);
        assert_eq!(stats.file_outputs, 2);
        assert!(stats.file_bytes > 0);
        assert!(!paths.job_dir.exists(), "job folder removed at job end");
    }

    #[tokio::test]
    async fn partial_spill_after_budget_runs_out() {
        // Enough for roughly one map output: the second one spills.
        let (buckets, stats, _paths) = round_trip(12 * 1024).await;
        check_buckets(&buckets);
        assert_eq!(stats.memory_outputs + stats.file_outputs, 2);
        assert!(stats.file_outputs >= 1);
    }

    /// Two maps, each sorted by `k` and with interleaved keys (map 0 even,
    /// map 1 odd), hashed into 3 buckets and read back order-preserving:
    /// every partition must come out complete and sorted, which a plain
    /// bucket read (one map after the other) is not.
    async fn sorted_bucket_read(memory_limit: usize) -> Vec<Vec<i64>> {
        use datafusion::physical_expr::PhysicalSortExpr;
        let dir = tempfile::tempdir().unwrap();
        let (service, schema) = keyed_service(memory_limit, dir.path());
        let k: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let partitioning = Partitioning::Hash(vec![Arc::clone(&k)], 3);
        let job = service.create_job(9);
        for map in 0..2i64 {
            let batches = (0..5)
                .map(|i| {
                    batch_of(
                        &schema,
                        (i * 100..i * 100 + 100).map(|x| 2 * x + map).collect(),
                    )
                })
                .collect();
            write_map(&job, map as usize, &schema, &partitioning, batches).await;
        }
        let ordering =
            LexOrdering::new(vec![PhysicalSortExpr::new_default(Arc::clone(&k))]).unwrap();
        let eq = EquivalenceProperties::new_with_orderings(Arc::clone(&schema), [ordering.clone()]);
        let reader = ShuffleReaderExec::sorted_buckets(
            0,
            Arc::clone(&schema),
            2,
            partitioning,
            eq,
            ordering,
        );
        assert_eq!(
            reader.properties().output_ordering().map(|o| o.to_string()),
            Some("k@0 ASC".to_string())
        );
        let ctx = Arc::new(
            TaskContext::default().with_session_config(
                SessionConfig::new()
                    .with_batch_size(37)
                    .with_extension(Arc::clone(&job)),
            ),
        );
        bucket_keys(&reader, &ctx, 3).await
    }

    fn check_sorted_buckets(per_bucket: &[Vec<i64>]) {
        for (b, keys) in per_bucket.iter().enumerate() {
            assert!(!keys.is_empty(), "bucket {b} is empty");
            assert!(
                keys.windows(2).all(|w| w[0] < w[1]),
                "bucket {b} is not sorted: {:?}",
                &keys[..keys.len().min(20)]
            );
        }
        let mut all: Vec<i64> = per_bucket.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn sorted_bucket_read_merges_the_maps_in_memory() {
        check_sorted_buckets(&sorted_bucket_read(1 << 30).await);
    }

    #[tokio::test]
    async fn sorted_bucket_read_merges_the_maps_spilled() {
        check_sorted_buckets(&sorted_bucket_read(0).await);
    }

    #[tokio::test]
    async fn missing_output_is_an_error_naming_the_stage() {
        let service = ShuffleService::new(ShuffleConfig::default());
        let job = service.create_job(1);
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let reader = ShuffleReaderExec::new(4, schema, ReadMode::All { maps: 2 }, None);
        let ctx = Arc::new(
            TaskContext::default().with_session_config(SessionConfig::new().with_extension(job)),
        );
        let err = reader.execute(0, ctx).err().expect("missing output");
        assert!(err.to_string().contains("stage 4"), "{err}");
    }

    /// Writes one map output of 100 rows to a file (no memory budget).
    async fn spilled_output(dir: &std::path::Path) -> (ShuffleService, Arc<JobShuffle>, SchemaRef) {
        let service = ShuffleService::new(ShuffleConfig {
            memory_limit: 0,
            dir: dir.to_path_buf(),
            ..ShuffleConfig::default()
        });
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let job = service.create_job(3);
        let input = Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&schema),
            futures::stream::iter(vec![Ok(batch(&schema, 0, 100))]),
        ));
        write_map_output(&job, 0, 0, 0, input, &MapPartitioning::Single, 64)
            .await
            .unwrap();
        (service, job, schema)
    }

    async fn read_all(job: &Arc<JobShuffle>, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let reader = ShuffleReaderExec::new(0, Arc::clone(schema), ReadMode::All { maps: 1 }, None);
        let ctx = Arc::new(
            TaskContext::default()
                .with_session_config(SessionConfig::new().with_extension(Arc::clone(job))),
        );
        collect(reader.execute(0, ctx)?).await
    }

    fn lost_in(error: &DataFusionError) -> Option<(usize, usize)> {
        match error {
            DataFusionError::External(e) => e.downcast_ref::<ShuffleError>()?.lost_map_output(),
            _ => None,
        }
    }

    #[tokio::test]
    async fn deleted_truncated_and_corrupt_files_are_lost_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let data = |job: &Arc<JobShuffle>| match job.get(0, 0).unwrap().as_ref() {
            MapOutput::File { data, .. } => data.clone(),
            MapOutput::Memory { .. } => panic!("spilled"),
        };

        let (_service, job, schema) = spilled_output(dir.path()).await;
        assert!(job.lost_outputs(0, 2) == vec![1], "map 1 was never written");
        std::fs::remove_file(data(&job)).unwrap();
        assert_eq!(job.lost_outputs(0, 1), vec![0]);
        let err = read_all(&job, &schema).await.unwrap_err();
        assert_eq!(lost_in(&err), Some((0, 0)), "{err}");
        job.forget(0, &[0]);
        let err = read_all(&job, &schema).await.unwrap_err();
        assert_eq!(lost_in(&err), Some((0, 0)), "forgotten: missing: {err}");

        let (_service, job, schema) = spilled_output(dir.path()).await;
        let path = data(&job);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(job.lost_outputs(0, 1), vec![0], "shorter than its index");
        let err = read_all(&job, &schema).await.unwrap_err();
        assert!(err.to_string().contains("its index says"), "{err}");

        let (_service, job, schema) = spilled_output(dir.path()).await;
        let path = data(&job);
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        for byte in &mut bytes[len / 3..2 * len / 3] {
            *byte ^= 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();
        assert!(job.lost_outputs(0, 1).is_empty(), "found only when read");
        let err = read_all(&job, &schema).await.unwrap_err();
        assert_eq!(lost_in(&err), Some((0, 0)), "{err}");
    }
}
