//! Spark Connect relations and expressions as DataFusion DataFrames: the
//! plans PySpark sends for `spark.sql`, `spark.read`, `spark.table`,
//! `createDataFrame`, `range`, and the DataFrame calls this server takes
//! (`select`, `filter`/`where`, `join`, `limit`, `groupBy().agg`, `sort`,
//! `alias`, `toDF`, `withColumn(s)`, `withColumnRenamed`, `drop`,
//! `distinct`/`dropDuplicates`, `union`/`intersect`/`subtract`).
//!
//! Names resolve as in Spark (`spark.sql.caseSensitive=false`): a column
//! given by name matches exactly, else ignoring case. `join(on=[cols])`
//! has Spark's `USING` semantics (the keys once, first; a full join's key
//! is the first non-NULL one); a chain of such joins on the same keys (the
//! `reduce(lambda a, b: a.join(b, on=k, how="full"), frames)` recipe)
//! becomes one balanced merge.

// The deprecated `args` fields are read to refuse them clearly.
#![allow(deprecated)]

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use fairway_engine::Session;
use fairway_engine::arrow::array::RecordBatch;
use fairway_engine::arrow::datatypes::{DataType, Field, Schema};
use fairway_engine::arrow::ipc::reader::StreamReader;
use fairway_engine::datafusion::common::{
    Column, DFSchema, ExprSchema, ScalarValue, TableReference,
};
use fairway_engine::datafusion::dataframe::DataFrame;
use fairway_engine::datafusion::datasource::MemTable;
use fairway_engine::datafusion::datasource::file_format::options::ReadOptions;
use fairway_engine::datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use fairway_engine::datafusion::functions_aggregate::expr_fn as agg;
use fairway_engine::datafusion::logical_expr::{
    Expr, ExprSchemable, JoinType, LogicalPlanBuilder, SortExpr, binary_expr, cast,
    expr::ScalarFunction, lit, try_cast,
};
use fairway_engine::datafusion::logical_expr::{Operator, expr};
use fairway_engine::datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext,
};
use fairway_engine::{MergeHow, merge_frames};

use crate::cache::{Cache, Cached, Rows};
use crate::error::{Result, SparkError};
use crate::proto::{self, expression::ExprType, relation::RelType};
use crate::types::{arrow_type, parse_schema, parse_type};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Turns relations into DataFrames for one operation of one session.
pub struct Planner<'a> {
    pub engine: &'a Session,
    /// Runs a DataFrame as a fairway job (for `show`, which needs rows to
    /// plan its answer).
    pub run: RunFn,
    /// The session's cached frames (`df.cache()`).
    pub cache: Arc<Cache>,
    /// The output columns of each planned relation that has a plan id, in
    /// planning order: how `df.col` / `df["col"]` (an attribute with the
    /// plan id of `df`) finds its column after joins.
    plan_columns: Mutex<Vec<(i64, Vec<Column>)>>,
}

/// Runs a DataFrame (with a description of what it does) as a job.
pub type RunFn =
    Arc<dyn Fn(DataFrame, String) -> BoxFuture<'static, Result<Vec<RecordBatch>>> + Send + Sync>;

fn ctx(engine: &Session) -> &SessionContext {
    engine.context()
}

fn missing(what: &str) -> SparkError {
    SparkError::invalid_plan(format!("the plan has no {what}"))
}

impl<'a> Planner<'a> {
    pub fn new(engine: &'a Session, run: RunFn, cache: Arc<Cache>) -> Self {
        Planner {
            engine,
            run,
            cache,
            plan_columns: Mutex::default(),
        }
    }

    /// The DataFrame of `relation`.
    pub fn relation<'s>(
        &'s self,
        relation: &'s proto::Relation,
    ) -> BoxFuture<'s, Result<DataFrame>> {
        Box::pin(async move {
            let df = match self.cache.lookup(relation) {
                None => self.plan_relation(relation).await?,
                Some((key, cached)) => self.cached_relation(relation, key, cached).await?,
            };
            if let Some(id) = relation.common.as_ref().and_then(|c| c.plan_id) {
                self.plan_columns
                    .lock()
                    .expect("plan columns lock")
                    .push((id, df.schema().columns()));
            }
            Ok(df)
        })
    }

    /// A relation the session cached: its rows, run first if not yet.
    async fn cached_relation(
        &self,
        relation: &proto::Relation,
        key: Vec<u8>,
        cached: Cached,
    ) -> Result<DataFrame> {
        let rows = match cached {
            Cached::Marked { memory } => {
                let df = self.plan_relation(relation).await?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                let batches = (self.run)(df, format!("cache {}", describe(relation))).await?;
                let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
                self.cache.store(&key, memory, schema, batches)?
            }
            Cached::Stored(rows) => rows,
        };
        let ctx = ctx(self.engine);
        match rows {
            Rows::Memory {
                schema, batches, ..
            } => {
                // Spread over the session's partitions, to scan in parallel.
                let n = ctx.state().config().target_partitions().max(1);
                let mut partitions = vec![Vec::new(); n.min(batches.len()).max(1)];
                let count = partitions.len();
                for (i, batch) in batches.into_iter().enumerate() {
                    partitions[i % count].push(batch);
                }
                Ok(ctx.read_table(Arc::new(MemTable::try_new(schema, partitions)?))?)
            }
            Rows::Disk { path } => Ok(ctx
                .read_arrow(
                    path.to_string_lossy().as_ref(),
                    fairway_engine::datafusion::datasource::file_format::options::ArrowReadOptions::default(),
                )
                .await?),
        }
    }

    fn plan_relation<'s>(
        &'s self,
        relation: &'s proto::Relation,
    ) -> BoxFuture<'s, Result<DataFrame>> {
        Box::pin(async move {
            let Some(rel) = &relation.rel_type else {
                return Err(missing("relation"));
            };
            match rel {
                RelType::Sql(sql) => self.sql(sql).await,
                RelType::Read(read) => self.read(read).await,
                RelType::LocalRelation(local) => local_relation(self.engine, local),
                RelType::Range(range) => self.range(range).await,
                RelType::Project(p) => {
                    let input = match &p.input {
                        Some(input) => self.relation(input).await?,
                        None => one_row(self.engine)?,
                    };
                    self.project(input, &p.expressions)
                }
                RelType::Filter(f) => {
                    let input = self.input(&f.input).await?;
                    let condition = f.condition.as_ref().ok_or_else(|| missing("condition"))?;
                    let condition = self.expr(&input, condition)?;
                    Ok(input.filter(condition)?)
                }
                RelType::Join(j) => self.join(j).await,
                RelType::Limit(l) => {
                    let input = self.input(&l.input).await?;
                    Ok(input.limit(0, Some(l.limit.max(0) as usize))?)
                }
                RelType::Offset(o) => {
                    let input = self.input(&o.input).await?;
                    Ok(input.limit(o.offset.max(0) as usize, None)?)
                }
                RelType::Sort(s) => {
                    let input = self.input(&s.input).await?;
                    let order = s
                        .order
                        .iter()
                        .map(|o| self.sort_order(&input, o))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(input.sort(order)?)
                }
                RelType::Aggregate(a) => self.aggregate(a).await,
                RelType::SubqueryAlias(a) => {
                    let input = self.input(&a.input).await?;
                    Ok(input.alias(&a.alias)?)
                }
                RelType::ToDf(t) => {
                    let input = self.input(&t.input).await?;
                    let fields = input.schema().columns();
                    if fields.len() != t.column_names.len() {
                        return Err(SparkError::illegal_argument(format!(
                            "toDF got {} names for {} columns",
                            t.column_names.len(),
                            fields.len()
                        )));
                    }
                    let exprs: Vec<Expr> = fields
                        .into_iter()
                        .zip(&t.column_names)
                        .map(|(c, name)| Expr::Column(c).alias(name))
                        .collect();
                    Ok(input.select(exprs)?)
                }
                RelType::WithColumnsRenamed(w) => {
                    let mut df = self.input(&w.input).await?;
                    let mut renames: Vec<(String, String)> = w
                        .renames
                        .iter()
                        .map(|r| (r.col_name.clone(), r.new_col_name.clone()))
                        .collect();
                    let mut legacy: Vec<_> = w.rename_columns_map.iter().collect();
                    legacy.sort();
                    renames.extend(legacy.into_iter().map(|(a, b)| (a.clone(), b.clone())));
                    for (old, new) in renames {
                        let Ok(Expr::Column(c)) = resolve_column(df.schema(), &old) else {
                            continue; // Spark ignores a missing column here.
                        };
                        let exprs: Vec<Expr> = df
                            .schema()
                            .columns()
                            .into_iter()
                            .map(|column| {
                                if column == c {
                                    Expr::Column(column).alias(&new)
                                } else {
                                    Expr::Column(column)
                                }
                            })
                            .collect();
                        df = df.select(exprs)?;
                    }
                    Ok(df)
                }
                RelType::WithColumns(w) => {
                    let mut df = self.input(&w.input).await?;
                    for alias in &w.aliases {
                        let Some(e) = &alias.expr else {
                            return Err(missing("expression"));
                        };
                        let name = alias.name.first().ok_or_else(|| missing("column name"))?;
                        if let Some((outer, inner)) = explode_of(e) {
                            df = self.with_exploded(df, inner, name, outer)?;
                            continue;
                        }
                        let value = self.expr(&df, e)?;
                        // Replace a column of that name (any case), else add.
                        let existing = df
                            .schema()
                            .fields()
                            .iter()
                            .find(|f| f.name().eq_ignore_ascii_case(name))
                            .map(|f| f.name().clone());
                        df = df.with_column(existing.as_deref().unwrap_or(name), value)?;
                        if let Some(old) = existing
                            && old != *name
                        {
                            df = df.with_column_renamed(&old, name)?;
                        }
                    }
                    Ok(df)
                }
                RelType::Drop(d) => {
                    let df = self.input(&d.input).await?;
                    let mut names = d.column_names.clone();
                    for c in &d.columns {
                        if let Some(ExprType::UnresolvedAttribute(a)) = &c.expr_type {
                            names.push(a.unparsed_identifier.clone());
                        }
                    }
                    let keep: Vec<Expr> = df
                        .schema()
                        .columns()
                        .into_iter()
                        .filter(|c| !names.iter().any(|n| n.eq_ignore_ascii_case(&c.name)))
                        .map(Expr::Column)
                        .collect();
                    Ok(df.select(keep)?)
                }
                RelType::Deduplicate(d) => {
                    let df = self.input(&d.input).await?;
                    if d.all_columns_as_keys.unwrap_or(false) || d.column_names.is_empty() {
                        return Ok(df.distinct()?);
                    }
                    let on = d
                        .column_names
                        .iter()
                        .map(|n| resolve_column(df.schema(), n))
                        .collect::<Result<Vec<_>>>()?;
                    let all: Vec<Expr> = df
                        .schema()
                        .columns()
                        .into_iter()
                        .map(Expr::Column)
                        .collect();
                    Ok(df.distinct_on(on, all, None)?)
                }
                RelType::SetOp(s) => self.set_op(s).await,
                RelType::ShowString(s) => self.show(s).await,
                RelType::Hint(h) => self.input(&h.input).await,
                RelType::Repartition(r) => self.input(&r.input).await,
                RelType::RepartitionByExpression(r) => self.input(&r.input).await,
                RelType::ToSchema(t) => {
                    let df = self.input(&t.input).await?;
                    let target = t.schema.as_ref().ok_or_else(|| missing("schema"))?;
                    let DataType::Struct(fields) = arrow_type(target)? else {
                        return Err(SparkError::invalid_plan("to(schema) needs a struct type"));
                    };
                    let exprs = fields
                        .iter()
                        .map(|f| {
                            Ok(cast(
                                resolve_column(df.schema(), f.name())?,
                                f.data_type().clone(),
                            )
                            .alias(f.name()))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Ok(df.select(exprs)?)
                }
                RelType::FillNa(f) => {
                    let df = self.input(&f.input).await?;
                    fill_na(df, f)
                }
                RelType::DropNa(d) => {
                    let df = self.input(&d.input).await?;
                    drop_na(df, d)
                }
                RelType::Describe(d) => {
                    let df = self.input(&d.input).await?;
                    self.describe(df, &d.cols).await
                }
                RelType::Sample(s) => {
                    let df = self.input(&s.input).await?;
                    self.sample(df, s)
                }
                RelType::CachedLocalRelation(_) | RelType::ChunkedCachedLocalRelation(_) => {
                    Err(SparkError::unsupported(
                        "cached local relations (artifacts); keep createDataFrame data under \
                         spark.sql.session.localRelationCacheThreshold",
                    ))
                }
                other => Err(SparkError::unsupported(format!(
                    "the relation {} (the README lists the DataFrame methods fairway \
                     connect supports)",
                    relation_name(other)
                ))),
            }
        })
    }

    async fn input<'s>(&'s self, input: &'s Option<Box<proto::Relation>>) -> Result<DataFrame> {
        match input {
            Some(input) => self.relation(input).await,
            None => Err(missing("input relation")),
        }
    }

    async fn sql(&self, sql: &proto::Sql) -> Result<DataFrame> {
        refuse_sql_relation_args(sql)?;
        let mut statements = self.engine.parse_statements(&sql.query)?;
        if statements.len() != 1 {
            return Err(SparkError::parse(format!(
                "expected one SQL statement, got {}",
                statements.len()
            )));
        }
        let mut statement = statements.remove(0);
        let aliases = crate::spark_sql::prepare(self.engine, &mut statement).await;
        let df = self.engine.plan_statement(statement).await?;
        crate::spark_sql::restore_alias_case(spark_names(df)?, &aliases)
    }

    async fn read(&self, read: &proto::Read) -> Result<DataFrame> {
        use proto::read::ReadType;
        if read.is_streaming {
            return Err(SparkError::unsupported("streaming reads"));
        }
        match &read.read_type {
            Some(ReadType::NamedTable(t)) => {
                let name = table_reference(&t.unparsed_identifier)?;
                if let Ok(provider) = ctx(self.engine).table_provider(name.clone()).await
                    && let Some(table) = nullable_table(provider)
                {
                    return Ok(ctx(self.engine).read_table(table)?.alias(name.table())?);
                }
                ctx(self.engine).table(name).await.map_err(|e| {
                    if e.to_string().contains("not found") {
                        SparkError::analysis(
                            "TABLE_OR_VIEW_NOT_FOUND",
                            format!(
                                "The table or view `{}` cannot be found. Verify the spelling \
                                 and correctness of the schema and catalog.",
                                t.unparsed_identifier
                            ),
                        )
                    } else {
                        SparkError::from(e)
                    }
                })
            }
            Some(ReadType::DataSource(source)) => self.data_source(source).await,
            None => Err(missing("read type")),
        }
    }

    async fn data_source(&self, source: &proto::read::DataSource) -> Result<DataFrame> {
        let format = source
            .format
            .clone()
            .unwrap_or_else(|| "parquet".to_string())
            .to_ascii_lowercase();
        let option = |key: &str| -> Option<String> {
            source
                .options
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        let flag = |key: &str| option(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let mut paths = source.paths.clone();
        if paths.is_empty()
            && let Some(p) = option("path")
        {
            paths.push(p);
        }
        if paths.is_empty() {
            return Err(SparkError::analysis(
                "UNABLE_TO_INFER_SCHEMA",
                format!("Unable to infer schema for {format}: no path given."),
            ));
        }
        let mut locations = Vec::with_capacity(paths.len());
        for path in &paths {
            locations.push(location(path)?);
        }
        let schema = match &source.schema {
            Some(s) if !s.trim().is_empty() => Some(parse_schema(s)?),
            _ => None,
        };
        let ctx = ctx(self.engine);
        let state = ctx.state();
        let listing = |options: &dyn ReadOptions<'_>| {
            options.to_listing_options(state.config(), state.default_table_options())
        };
        let ext = |default: &str| -> String {
            // A single file keeps its own extension; folders read `default`.
            match paths.as_slice() {
                [p] if Path::new(p).is_file() => Path::new(p)
                    .extension()
                    .map(|e| format!(".{}", e.to_string_lossy()))
                    .unwrap_or_default(),
                _ => default.to_string(),
            }
        };
        let urls = locations
            .iter()
            .map(ListingTableUrl::parse)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // Each read lists and infers the files once; the table then reads
        // them with the schema Spark would give (every column nullable).
        let df = match format.as_str() {
            "parquet" => {
                let ext = ext(".parquet");
                let options = listing(&ParquetReadOptions {
                    file_extension: &ext,
                    ..Default::default()
                });
                let read_schema = match &schema {
                    Some(s) => nullable(s),
                    None => nullable(&infer_schema(ctx, &urls, &options).await?),
                };
                listing_frame(ctx, urls, options, read_schema)?
            }
            "csv" => {
                let ext = ext(".csv");
                let header = flag("header");
                let delimiter = option("sep")
                    .or_else(|| option("delimiter"))
                    .and_then(|d| d.bytes().next())
                    .unwrap_or(b',');
                let options = listing(
                    &CsvReadOptions::new()
                        .has_header(header)
                        .delimiter(delimiter)
                        .file_extension(&ext),
                );
                let read_schema = match &schema {
                    Some(s) => nullable(s),
                    None => {
                        let inferred = infer_schema(ctx, &urls, &options).await?;
                        if flag("inferSchema") {
                            let all = listing_frame(
                                ctx,
                                urls.clone(),
                                options.clone(),
                                inferred.clone(),
                            )?;
                            self.narrow_integers(all, &inferred).await?
                        } else {
                            // Spark reads every CSV column as a string
                            // unless asked to infer types.
                            Schema::new(
                                inferred
                                    .fields()
                                    .iter()
                                    .map(|f| Field::new(f.name(), DataType::Utf8, true))
                                    .collect::<Vec<_>>(),
                            )
                        }
                    }
                };
                let df = listing_frame(ctx, urls, options, read_schema)?;
                if header || schema.is_some() {
                    df
                } else {
                    // Spark names header-less columns _c0, _c1, ...
                    let exprs: Vec<Expr> = df
                        .schema()
                        .columns()
                        .into_iter()
                        .enumerate()
                        .map(|(i, c)| Expr::Column(c).alias(format!("_c{i}")))
                        .collect();
                    df.select(exprs)?
                }
            }
            "json" => {
                let ext = ext(".json");
                let options = listing(&JsonReadOptions::default().file_extension(&ext));
                match &schema {
                    Some(s) => listing_frame(ctx, urls, options, nullable(s))?,
                    None => {
                        let inferred = nullable(&infer_schema(ctx, &urls, &options).await?);
                        let df = listing_frame(ctx, urls, options, inferred)?;
                        // Spark orders inferred JSON fields by name.
                        let mut columns = df.schema().columns();
                        columns.sort_by(|a, b| a.name.cmp(&b.name));
                        df.select(columns.into_iter().map(Expr::Column).collect::<Vec<_>>())?
                    }
                }
            }
            other => {
                return Err(SparkError::unsupported(format!(
                    "the data source '{other}' (parquet, csv and json are supported)"
                )));
            }
        };
        Ok(df)
    }

    /// `inferred` with every 64-bit integer column whose values fit in 32
    /// bits as `int`, as Spark's CSV inference gives (one pass over the
    /// data, as Spark's `inferSchema` makes).
    async fn narrow_integers(&self, df: DataFrame, inferred: &Schema) -> Result<Schema> {
        let wide: Vec<&str> = inferred
            .fields()
            .iter()
            .filter(|f| f.data_type() == &DataType::Int64)
            .map(|f| f.name().as_str())
            .collect();
        let mut narrow = vec![false; inferred.fields().len()];
        if !wide.is_empty() {
            let mut aggregates = Vec::new();
            for name in &wide {
                let c = Expr::Column(Column::new_unqualified(*name));
                aggregates.push(agg::min(c.clone()));
                aggregates.push(agg::max(c));
            }
            let bounds =
                (self.run)(df.aggregate(vec![], aggregates)?, "infer csv schema".into()).await?;
            let fits = |i: usize| -> bool {
                bounds.iter().find(|b| b.num_rows() > 0).is_none_or(|b| {
                    let value = |j: usize| {
                        ScalarValue::try_from_array(b.column(j), 0)
                            .ok()
                            .and_then(|v| match v {
                                ScalarValue::Int64(v) => Some(v),
                                _ => None,
                            })
                            .flatten()
                    };
                    let (lo, hi) = (value(2 * i), value(2 * i + 1));
                    lo.is_none_or(|v| v >= i64::from(i32::MIN))
                        && hi.is_none_or(|v| v <= i64::from(i32::MAX))
                })
            };
            for (k, name) in wide.iter().enumerate() {
                if fits(k)
                    && let Some(i) = inferred.fields().iter().position(|f| f.name() == name)
                {
                    narrow[i] = true;
                }
            }
        }
        Ok(Schema::new(
            inferred
                .fields()
                .iter()
                .zip(narrow)
                .map(|(f, n)| {
                    let t = if n {
                        DataType::Int32
                    } else {
                        f.data_type().clone()
                    };
                    Field::new(f.name(), t, true)
                })
                .collect::<Vec<_>>(),
        ))
    }

    async fn range(&self, range: &proto::Range) -> Result<DataFrame> {
        let start = range.start.unwrap_or(0);
        let step = if range.step == 0 { 1 } else { range.step };
        let sql = format!(
            "SELECT value AS id FROM range({start}, {}, {step})",
            range.end
        );
        let plan = ctx(self.engine).state().create_logical_plan(&sql).await?;
        Ok(DataFrame::new(ctx(self.engine).state(), plan))
    }

    async fn join<'s>(&'s self, join: &'s proto::Join) -> Result<DataFrame> {
        use proto::join::JoinType as J;
        let kind = J::try_from(join.join_type).unwrap_or(J::Unspecified);
        if !join.using_columns.is_empty()
            && let Some(how) = merge_how(kind)
        {
            // A chain of joins on the same keys: one balanced merge.
            let mut leaves = Vec::new();
            collect_merge_leaves(join, &join.using_columns, kind, &mut leaves);
            let mut frames = Vec::with_capacity(leaves.len());
            for leaf in &leaves {
                frames.push(self.relation(leaf).await?);
            }
            if let Some(frames) = merge_inputs(frames, &join.using_columns)? {
                let on: Vec<&str> = join.using_columns.iter().map(String::as_str).collect();
                return Ok(merge_frames(frames, &on, how)?);
            }
        }
        let mark0 = self.plan_columns_len();
        let left = self.input(&join.left).await?;
        let mark1 = self.plan_columns_len();
        let right = self.input(&join.right).await?;
        let mark2 = self.plan_columns_len();
        let join_type = match kind {
            J::Inner | J::Unspecified => JoinType::Inner,
            J::FullOuter => JoinType::Full,
            J::LeftOuter => JoinType::Left,
            J::RightOuter => JoinType::Right,
            J::LeftAnti => JoinType::LeftAnti,
            J::LeftSemi => JoinType::LeftSemi,
            J::Cross => JoinType::Inner,
        };
        let (left, right, aliases) = distinct_qualifiers(left, right)?;
        if let Some((l, r)) = aliases {
            self.requalify(mark0..mark1, &l);
            self.requalify(mark1..mark2, &r);
        }
        if !join.using_columns.is_empty() {
            return using_join(left, right, &join.using_columns, join_type);
        }
        match &join.join_condition {
            Some(condition) => {
                let (state, lplan) = left.into_parts();
                let rplan = right.into_parts().1;
                let builder = LogicalPlanBuilder::from(lplan.clone());
                let cross = builder.clone().cross_join(rplan.clone())?.build()?;
                let cross_df = DataFrame::new(state.clone(), cross);
                let on = self.expr(&cross_df, condition)?;
                let plan = LogicalPlanBuilder::from(lplan)
                    .join_on(rplan, join_type, vec![on])?
                    .build()?;
                Ok(DataFrame::new(state, plan))
            }
            None => {
                if kind != J::Cross && kind != J::Inner && kind != J::Unspecified {
                    return Err(SparkError::analysis(
                        "JOIN_CONDITION_MISSING",
                        "a join of this type needs `on`",
                    ));
                }
                let (state, lplan) = left.into_parts();
                let plan = LogicalPlanBuilder::from(lplan)
                    .cross_join(right.into_parts().1)?
                    .build()?;
                Ok(DataFrame::new(state, plan))
            }
        }
    }

    async fn aggregate<'s>(&'s self, a: &'s proto::Aggregate) -> Result<DataFrame> {
        use fairway_engine::datafusion::logical_expr::GroupingSet;
        use proto::aggregate::GroupType;
        let input = self.input(&a.input).await?;
        let kind = GroupType::try_from(a.group_type).unwrap_or(GroupType::Unspecified);
        let groups = a
            .grouping_expressions
            .iter()
            .map(|e| self.expr(&input, e))
            .collect::<Result<Vec<_>>>()?;
        let aggregates = a
            .aggregate_expressions
            .iter()
            .map(|e| self.expr(&input, e))
            .collect::<Result<Vec<_>>>()?;
        let groups = match kind {
            GroupType::Groupby | GroupType::Unspecified => groups,
            GroupType::Rollup => vec![Expr::GroupingSet(GroupingSet::Rollup(groups))],
            GroupType::Cube => vec![Expr::GroupingSet(GroupingSet::Cube(groups))],
            GroupType::GroupingSets => {
                let sets = a
                    .grouping_sets
                    .iter()
                    .map(|set| {
                        set.grouping_set
                            .iter()
                            .map(|e| self.expr(&input, e))
                            .collect::<Result<Vec<_>>>()
                    })
                    .collect::<Result<Vec<_>>>()?;
                vec![Expr::GroupingSet(GroupingSet::GroupingSets(sets))]
            }
            GroupType::Pivot => {
                let pivot = a.pivot.as_ref().ok_or_else(|| missing("pivot"))?;
                return self.pivot(input, groups, aggregates, pivot).await;
            }
        };
        aggregate_frame(input, groups, aggregates)
    }

    /// `groupBy(g).pivot(p, values).agg(a...)`: the aggregates per group
    /// and pivot value, then one column per value (and aggregate), NULL
    /// where a group has no rows of that value (as Spark's `PivotFirst`).
    async fn pivot(
        &self,
        input: DataFrame,
        groups: Vec<Expr>,
        aggregates: Vec<Expr>,
        pivot: &proto::aggregate::Pivot,
    ) -> Result<DataFrame> {
        let column = pivot.col.as_ref().ok_or_else(|| missing("pivot column"))?;
        let column = self.expr(&input, column)?;
        let values: Vec<ScalarValue> = if pivot.values.is_empty() {
            // Spark finds the values first, sorted.
            let distinct = input
                .clone()
                .select(vec![column.clone().alias("__pivot")])?
                .distinct()?
                .sort(vec![
                    Expr::Column(Column::new_unqualified("__pivot")).sort(true, true),
                ])?;
            let batches = (self.run)(distinct, "pivot values".into()).await?;
            let mut values = Vec::new();
            for b in &batches {
                for i in 0..b.num_rows() {
                    values.push(ScalarValue::try_from_array(b.column(0), i)?);
                }
            }
            const MAX_VALUES: usize = 10_000; // Spark's spark.sql.pivotMaxValues
            if values.len() > MAX_VALUES {
                return Err(SparkError::analysis(
                    "PIVOT_VALUE_DATA_TYPE_MISMATCH",
                    format!(
                        "The pivot column has {} distinct values, more than {MAX_VALUES}; \
                         give the values to pivot(col, values)",
                        values.len()
                    ),
                ));
            }
            values
        } else {
            pivot.values.iter().map(literal).collect::<Result<_>>()?
        };
        let names: Vec<String> = aggregates
            .iter()
            .map(|e| plain_literals(&e.schema_name().to_string()))
            .collect();
        let mut inner_groups = groups.clone();
        inner_groups.push(column.alias("__pivot"));
        let inner_aggs: Vec<Expr> = aggregates
            .into_iter()
            .enumerate()
            .map(|(i, e)| unalias(e).alias(format!("__agg{i}")))
            .collect();
        let inner = aggregate_frame(input, inner_groups, inner_aggs)?;
        let n_groups = groups.len();
        let outer_groups: Vec<Expr> = inner.schema().columns()[..n_groups]
            .iter()
            .cloned()
            .map(Expr::Column)
            .collect();
        let first = fairway_engine::datafusion::functions_aggregate::first_last::first_value_udaf();
        let mut outer_aggs = Vec::new();
        for v in &values {
            let label = match v.is_null() {
                true => "null".to_string(),
                false => plain_value(v),
            };
            let matches = binary_expr(
                Expr::Column(Column::new_unqualified("__pivot")),
                Operator::IsNotDistinctFrom,
                lit(v.clone()),
            );
            for (i, name) in names.iter().enumerate() {
                let value = Expr::AggregateFunction(expr::AggregateFunction::new_udf(
                    Arc::clone(&first),
                    vec![Expr::Column(Column::new_unqualified(format!("__agg{i}")))],
                    false,
                    Some(Box::new(matches.clone())),
                    vec![],
                    None,
                ));
                let out = match names.len() {
                    1 => label.clone(),
                    _ => format!("{label}_{name}"),
                };
                outer_aggs.push(value.alias(out));
            }
        }
        Ok(inner.aggregate(outer_groups, outer_aggs)?)
    }

    async fn set_op<'s>(&'s self, s: &'s proto::SetOperation) -> Result<DataFrame> {
        use proto::set_operation::SetOpType;
        let left = self.input(&s.left_input).await?;
        let right = self.input(&s.right_input).await?;
        let all = s.is_all.unwrap_or(false);
        Ok(
            match SetOpType::try_from(s.set_op_type).unwrap_or(SetOpType::Unspecified) {
                SetOpType::Union if s.by_name.unwrap_or(false) => {
                    let right =
                        by_name_inputs(&left, right, s.allow_missing_columns.unwrap_or(false))?;
                    if all {
                        left.union_by_name(right)?
                    } else {
                        left.union_by_name_distinct(right)?
                    }
                }
                SetOpType::Union if all => left.union(right)?,
                SetOpType::Union => left.union_distinct(right)?,
                SetOpType::Intersect if all => multiset(left, right, true)?,
                SetOpType::Intersect => left.intersect_distinct(right)?,
                SetOpType::Except if all => multiset(left, right, false)?,
                SetOpType::Except => left.except_distinct(right)?,
                SetOpType::Unspecified => return Err(missing("set operation type")),
            },
        )
    }

    async fn show<'s>(&'s self, s: &'s proto::ShowString) -> Result<DataFrame> {
        let input = self.input(&s.input).await?;
        let schema = input.schema().as_arrow().clone();
        let n = s.num_rows.max(0) as usize;
        let limited = input.limit(0, Some(n + 1))?;
        let batches = (self.run)(limited, "show".to_string()).await?;
        let text =
            crate::show::show_string(&schema, &batches, n, s.truncate.max(0) as usize, s.vertical)?;
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "show_string",
                DataType::Utf8,
                false,
            )])),
            vec![Arc::new(fairway_engine::arrow::array::StringArray::from(
                vec![text],
            ))],
        )
        .map_err(|e| SparkError::unsupported(e.to_string()))?;
        Ok(ctx(self.engine).read_batch(batch)?)
    }

    /// `Project` expressions, with `*` (and `t.*`) expanded.
    fn exprs_with_star(&self, input: &DataFrame, exprs: &[proto::Expression]) -> Result<Vec<Expr>> {
        let mut out = Vec::new();
        for e in exprs {
            if let Some(ExprType::UnresolvedStar(star)) = &e.expr_type {
                let target = star
                    .unparsed_target
                    .as_deref()
                    .and_then(|t| t.strip_suffix(".*"))
                    .map(|t| t.trim_matches('`').to_string());
                for (qualifier, field) in input.schema().iter() {
                    if let Some(t) = &target
                        && !qualifier.is_some_and(|q| q.table().eq_ignore_ascii_case(t))
                    {
                        continue;
                    }
                    out.push(Expr::Column(Column::new(qualifier.cloned(), field.name())));
                }
                continue;
            }
            out.push(self.expr(input, e)?);
        }
        Ok(out)
    }

    /// One expression, its names resolved against `input`.
    pub fn expr(&self, input: &DataFrame, e: &proto::Expression) -> Result<Expr> {
        let Some(kind) = &e.expr_type else {
            return Err(missing("expression"));
        };
        Ok(match kind {
            ExprType::Literal(l) => lit(literal(l)?),
            ExprType::UnresolvedAttribute(a) => match a.plan_id {
                Some(id) => self.resolve_planned(input.schema(), &a.unparsed_identifier, id)?,
                None => resolve_column(input.schema(), &a.unparsed_identifier)?,
            },
            ExprType::Window(w) => self.window(input, w)?,
            ExprType::UnresolvedExtractValue(x) => {
                let child = x.child.as_ref().ok_or_else(|| missing("extracted value"))?;
                let key = x.extraction.as_ref().ok_or_else(|| missing("extraction"))?;
                let child = self.expr(input, child)?;
                let key = self.expr(input, key)?;
                extract_value(input.schema(), child, key)?
            }
            ExprType::ExpressionString(s) => sql_expression(input, &s.expression)?,
            ExprType::Alias(a) => {
                let inner = a
                    .expr
                    .as_ref()
                    .ok_or_else(|| missing("aliased expression"))?;
                let name = a.name.first().ok_or_else(|| missing("alias name"))?;
                self.expr(input, inner)?.alias(name)
            }
            ExprType::Cast(c) => {
                use proto::expression::cast::{CastToType, EvalMode};
                let inner = c.expr.as_ref().ok_or_else(|| missing("cast expression"))?;
                let target = match &c.cast_to_type {
                    Some(CastToType::Type(t)) => arrow_type(t)?,
                    Some(CastToType::TypeStr(s)) => parse_type(s)?,
                    None => return Err(missing("cast type")),
                };
                let inner = self.expr(input, inner)?;
                if c.eval_mode == EvalMode::Try as i32 {
                    try_cast(inner, target)
                } else {
                    cast(inner, target)
                }
            }
            ExprType::UnresolvedFunction(f) => {
                let args = f
                    .arguments
                    .iter()
                    .map(|a| self.function_arg(input, a))
                    .collect::<Result<Vec<_>>>()?;
                self.function(input, &f.function_name, args, f.is_distinct)?
            }
            ExprType::CallFunction(f) => {
                let args = f
                    .arguments
                    .iter()
                    .map(|a| self.function_arg(input, a))
                    .collect::<Result<Vec<_>>>()?;
                self.function(input, &f.function_name, args, false)?
            }
            ExprType::SortOrder(_) => {
                return Err(SparkError::invalid_plan("a sort order outside a sort"));
            }
            ExprType::UnresolvedStar(_) => {
                return Err(SparkError::unsupported("`*` here (use it in select)"));
            }
            other => {
                return Err(SparkError::unsupported(format!(
                    "the expression {}",
                    format!("{other:?}").split('(').next().unwrap_or("?")
                )));
            }
        })
    }

    /// A function argument: `*` as in `count(*)` is the literal 1.
    fn function_arg(&self, input: &DataFrame, e: &proto::Expression) -> Result<Expr> {
        if let Some(ExprType::UnresolvedStar(_)) = &e.expr_type {
            return Ok(lit(1i64));
        }
        self.expr(input, e)
    }

    fn sort_order(&self, input: &DataFrame, s: &proto::expression::SortOrder) -> Result<SortExpr> {
        use proto::expression::sort_order::{NullOrdering, SortDirection};
        let child = s.child.as_ref().ok_or_else(|| missing("sort key"))?;
        let expr = self.expr(input, child)?;
        let asc = s.direction != SortDirection::Descending as i32;
        // Spark: ascending puts NULLs first, descending last.
        let nulls_first = match NullOrdering::try_from(s.null_ordering) {
            Ok(NullOrdering::SortNullsFirst) => true,
            Ok(NullOrdering::SortNullsLast) => false,
            _ => asc,
        };
        Ok(expr.sort(asc, nulls_first))
    }

    /// A Spark function or operator by name.
    fn function(
        &self,
        input: &DataFrame,
        name: &str,
        mut args: Vec<Expr>,
        distinct: bool,
    ) -> Result<Expr> {
        let lower = name.to_ascii_lowercase();
        let binary = |op: Operator, args: Vec<Expr>| -> Result<Expr> {
            let [a, b]: [Expr; 2] = args.try_into().map_err(|_| {
                SparkError::invalid_plan(format!("operator {name} takes two arguments"))
            })?;
            Ok(binary_expr(a, op, b))
        };
        let op = match lower.as_str() {
            "==" => Some(Operator::Eq),
            "!=" | "<>" => Some(Operator::NotEq),
            "<" => Some(Operator::Lt),
            "<=" => Some(Operator::LtEq),
            ">" => Some(Operator::Gt),
            ">=" => Some(Operator::GtEq),
            "<=>" => Some(Operator::IsNotDistinctFrom),
            "+" if args.len() == 2 => Some(Operator::Plus),
            "-" if args.len() == 2 => Some(Operator::Minus),
            "*" => Some(Operator::Multiply),
            "%" => Some(Operator::Modulo),
            "and" => Some(Operator::And),
            "or" => Some(Operator::Or),
            "&" => Some(Operator::BitwiseAnd),
            "|" => Some(Operator::BitwiseOr),
            "^" => Some(Operator::BitwiseXor),
            _ => None,
        };
        if let Some(op) = op {
            return binary(op, args);
        }
        let one = |args: Vec<Expr>| -> Result<Expr> {
            let [a]: [Expr; 1] = args
                .try_into()
                .map_err(|_| SparkError::invalid_plan(format!("{name} takes one argument")))?;
            Ok(a)
        };
        match lower.as_str() {
            "/" => {
                // Spark's `/` divides as doubles (decimals stay decimal).
                let [a, b]: [Expr; 2] = args
                    .try_into()
                    .map_err(|_| SparkError::invalid_plan("`/` takes two arguments"))?;
                let schema = input.schema();
                let is_decimal =
                    |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Decimal128(..)));
                if is_decimal(&a) || is_decimal(&b) {
                    return Ok(binary_expr(a, Operator::Divide, b));
                }
                return Ok(binary_expr(
                    cast(a, DataType::Float64),
                    Operator::Divide,
                    cast(b, DataType::Float64),
                ));
            }
            "-" | "negative" => return Ok(Expr::Negative(Box::new(one(args)?))),
            "~" => {
                return self.function(input, "bitwise_not", args, false);
            }
            "+" | "positive" => return one(args),
            "not" | "!" => return Ok(Expr::Not(Box::new(one(args)?))),
            "isnull" => return Ok(one(args)?.is_null()),
            "isnotnull" => return Ok(one(args)?.is_not_null()),
            "in" => {
                if args.is_empty() {
                    return Err(SparkError::invalid_plan("isin needs a value"));
                }
                let first = args.remove(0);
                return Ok(first.in_list(args, false));
            }
            "like" | "ilike" | "rlike" | "regexp" | "regexp_like" => {
                let [a, b]: [Expr; 2] = args
                    .try_into()
                    .map_err(|_| SparkError::invalid_plan("like takes two arguments"))?;
                return Ok(match lower.as_str() {
                    "like" => a.like(b),
                    "ilike" => a.ilike(b),
                    _ => binary_expr(a, Operator::RegexMatch, b),
                });
            }
            "div" => {
                let [a, b]: [Expr; 2] = args
                    .try_into()
                    .map_err(|_| SparkError::invalid_plan("div takes two arguments"))?;
                return Ok(binary_expr(
                    cast(a, DataType::Int64),
                    Operator::Divide,
                    cast(b, DataType::Int64),
                ));
            }
            "explode" | "explode_outer" | "posexplode" | "inline" => {
                return Err(SparkError::unsupported(format!(
                    "`{name}` here: fairway takes explode and explode_outer as a whole \
                     column of select or withColumn"
                )));
            }
            "monotonically_increasing_id" => {
                return Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
                    Arc::new(crate::udf::monotonically_increasing_id()),
                    vec![],
                )));
            }
            "first" | "last" | "first_value" | "last_value" | "any_value" => {
                let ignore_nulls = match args.get(1) {
                    Some(Expr::Literal(ScalarValue::Boolean(Some(b)), _)) => *b,
                    Some(_) => {
                        return Err(SparkError::invalid_plan(format!(
                            "{name}: ignorenulls must be a constant"
                        )));
                    }
                    None => false,
                };
                args.truncate(1);
                let udaf = match lower.as_str() {
                    "last" | "last_value" => fairway_engine::datafusion::functions_aggregate::first_last::last_value_udaf(),
                    _ => fairway_engine::datafusion::functions_aggregate::first_last::first_value_udaf(),
                };
                let treatment = ignore_nulls.then_some(
                    fairway_engine::datafusion::sql::sqlparser::ast::NullTreatment::IgnoreNulls
                        .into(),
                );
                return Ok(Expr::AggregateFunction(expr::AggregateFunction::new_udf(
                    udaf,
                    args,
                    false,
                    None,
                    vec![],
                    treatment,
                )));
            }
            "approx_count_distinct" => {
                args.truncate(1);
                let udaf = fairway_engine::datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf();
                return Ok(cast(
                    Expr::AggregateFunction(expr::AggregateFunction::new_udf(
                        udaf,
                        args,
                        false,
                        None,
                        vec![],
                        None,
                    )),
                    DataType::Int64,
                ));
            }
            "percentile_approx" | "approx_percentile" => {
                return crate::functions::percentile_expr(name, args);
            }
            "count" | "count_distinct" | "countdistinct"
                if args.len() > 1 && (distinct || lower != "count") =>
            {
                // Spark counts the distinct tuples whose values are all
                // non-NULL.
                let all_present = args
                    .iter()
                    .cloned()
                    .map(|a| a.is_not_null())
                    .reduce(|a, b| a.and(b))
                    .expect("several arguments");
                let mut fields = Vec::new();
                for (i, a) in args.into_iter().enumerate() {
                    fields.push(lit(format!("c{i}")));
                    fields.push(a);
                }
                let tuple = Expr::ScalarFunction(ScalarFunction::new_udf(
                    fairway_engine::datafusion::functions::core::named_struct(),
                    fields,
                ));
                return Ok(Expr::AggregateFunction(expr::AggregateFunction::new_udf(
                    fairway_engine::datafusion::functions_aggregate::count::count_udaf(),
                    vec![tuple],
                    true,
                    Some(Box::new(all_present)),
                    vec![],
                    None,
                )));
            }
            "sum_distinct" | "count_distinct" | "countdistinct" => {
                let udaf = match lower.as_str() {
                    "sum_distinct" => {
                        fairway_engine::datafusion::functions_aggregate::sum::sum_udaf()
                    }
                    _ => fairway_engine::datafusion::functions_aggregate::count::count_udaf(),
                };
                return Ok(Expr::AggregateFunction(expr::AggregateFunction::new_udf(
                    udaf,
                    vec![one(args)?],
                    true,
                    None,
                    vec![],
                    None,
                )));
            }
            "lag" | "lead" => {
                // A NULL default is no default.
                if let Some(Expr::Literal(v, _)) = args.get(2)
                    && v.is_null()
                {
                    args.truncate(2);
                }
                let udwf = match lower.as_str() {
                    "lag" => fairway_engine::datafusion::functions_window::lead_lag::lag_udwf(),
                    _ => fairway_engine::datafusion::functions_window::lead_lag::lead_udwf(),
                };
                return Ok(Expr::from(expr::WindowFunction::new(
                    expr::WindowFunctionDefinition::WindowUDF(udwf),
                    args,
                )));
            }
            "nth_value" => {
                args.truncate(2);
            }
            "sort_array" => {
                let asc = match args.get(1) {
                    Some(Expr::Literal(ScalarValue::Boolean(Some(b)), _)) => *b,
                    Some(_) => {
                        return Err(SparkError::invalid_plan(
                            "sort_array: asc must be a constant",
                        ));
                    }
                    None => true,
                };
                args.truncate(1);
                args.push(lit(if asc { "ASC" } else { "DESC" }));
                args.push(lit(if asc { "NULLS FIRST" } else { "NULLS LAST" }));
                let udf = fairway_engine::datafusion::functions_nested::sort::array_sort_udf();
                return Ok(Expr::ScalarFunction(ScalarFunction::new_udf(udf, args)));
            }
            "when" | "case_when" => {
                let mut builder: Option<
                    fairway_engine::datafusion::logical_expr::conditional_expressions::CaseBuilder,
                > = None;
                let mut it = args.into_iter();
                let mut otherwise = None;
                loop {
                    match (it.next(), it.next()) {
                        (Some(c), Some(v)) => {
                            builder = Some(match builder {
                                None => fairway_engine::datafusion::logical_expr::when(c, v),
                                Some(mut b) => {
                                    b.when(c, v);
                                    b
                                }
                            });
                        }
                        (Some(e), None) => {
                            otherwise = Some(e);
                            break;
                        }
                        _ => break,
                    }
                }
                let mut b =
                    builder.ok_or_else(|| SparkError::invalid_plan("when needs a condition"))?;
                return Ok(match otherwise {
                    Some(e) => b.otherwise(e)?,
                    None => b.end()?,
                });
            }
            "count" => {
                let arg = if args.is_empty() {
                    lit(1i64)
                } else {
                    one(args)?
                };
                return Ok(if distinct {
                    agg::count_distinct(arg)
                } else {
                    agg::count(arg)
                });
            }
            _ => {}
        }
        let Some(entry) = crate::functions::lookup(&lower) else {
            return Err(SparkError::analysis(
                "UNRESOLVED_ROUTINE",
                format!(
                    "Cannot resolve function `{name}`: fairway connect does not support it \
                     (the README lists the functions it does)."
                ),
            ));
        };
        let target = match entry.source {
            crate::functions::Source::DataFusion(target) => target,
            _ => entry.name,
        };
        let state = ctx(self.engine).state();
        if let Some(udaf) = state.aggregate_functions().get(target) {
            return Ok(Expr::AggregateFunction(expr::AggregateFunction::new_udf(
                Arc::clone(udaf),
                args,
                distinct,
                None,
                vec![],
                None,
            )));
        }
        if let Some(udwf) = state.window_functions().get(target) {
            return Ok(Expr::from(expr::WindowFunction::new(
                expr::WindowFunctionDefinition::WindowUDF(Arc::clone(udwf)),
                args,
            )));
        }
        if let Some(udf) = state.scalar_functions().get(target) {
            return Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::clone(udf),
                args,
            )));
        }
        Err(SparkError::internal(format!(
            "the function `{name}` is listed but not registered in this session"
        )))
    }
}

impl Planner<'_> {
    fn plan_columns_len(&self) -> usize {
        self.plan_columns.lock().expect("plan columns lock").len()
    }

    /// The relations planned at `range` now sit under `qualifier`.
    fn requalify(&self, range: std::ops::Range<usize>, qualifier: &str) {
        let mut planned = self.plan_columns.lock().expect("plan columns lock");
        for (_, columns) in &mut planned[range] {
            for c in columns.iter_mut() {
                *c = Column::new(Some(TableReference::bare(qualifier)), c.name.clone());
            }
        }
    }

    /// `df.name` / `df["name"]`: the column `name` of the relation with
    /// plan id `id` where `schema` has it, else the column by name.
    fn resolve_planned(&self, schema: &DFSchema, name: &str, id: i64) -> Result<Expr> {
        let parts = identifier_parts(name)?;
        let wanted = parts.last().cloned().unwrap_or_default();
        let candidates: Vec<Column> = {
            let planned = self.plan_columns.lock().expect("plan columns lock");
            planned
                .iter()
                .rev()
                .find(|(p, _)| *p == id)
                .map(|(_, columns)| columns.clone())
                .unwrap_or_default()
        };
        for exact in [true, false] {
            let found: Vec<&Column> = candidates
                .iter()
                .filter(|c| {
                    if exact {
                        c.name == wanted
                    } else {
                        c.name.eq_ignore_ascii_case(&wanted)
                    }
                })
                .filter(|c| schema.has_column(c))
                .collect();
            if found.len() == 1 && parts.len() == 1 {
                return Ok(Expr::Column(found[0].clone()));
            }
        }
        resolve_column(schema, name)
    }

    /// `select(...)`, with `*` expanded and an `explode` column unnested.
    fn project(&self, input: DataFrame, expressions: &[proto::Expression]) -> Result<DataFrame> {
        let exploded: Vec<usize> = expressions
            .iter()
            .enumerate()
            .filter(|(_, e)| explode_of(e).is_some())
            .map(|(i, _)| i)
            .collect();
        match exploded.as_slice() {
            [] => {
                let exprs = distinct_names(self.exprs_with_star(&input, expressions)?);
                // `df.select(F.sum(x))` aggregates the whole frame, as in Spark.
                let aggregates =
                    fairway_engine::datafusion::logical_expr::utils::find_aggregate_exprs(
                        exprs.iter(),
                    );
                if !aggregates.is_empty() {
                    return aggregate_frame(input, vec![], exprs);
                }
                spark_names(input.select(exprs)?)
            }
            [i] => {
                let (outer, inner) = explode_of(&expressions[*i]).expect("found above");
                let name = match &expressions[*i].expr_type {
                    Some(ExprType::Alias(a)) => a.name.first().cloned(),
                    _ => None,
                }
                .unwrap_or_else(|| "col".to_string());
                let placeholder = format!("__explode{i}");
                let mut exprs = Vec::new();
                for (j, e) in expressions.iter().enumerate() {
                    if j == *i {
                        exprs.push(self.expr(&input, inner)?.alias(&placeholder));
                    } else {
                        exprs.extend(self.exprs_with_star(&input, std::slice::from_ref(e))?);
                    }
                }
                let df = spark_names(input.select(exprs)?)?;
                let df = unnest(df, &placeholder, outer)?;
                Ok(df.with_column_renamed(&placeholder, &name)?)
            }
            _ => Err(SparkError::unsupported(
                "more than one explode in one select (Spark refuses it too)",
            )),
        }
    }

    /// `withColumn(name, explode(inner))`.
    fn with_exploded(
        &self,
        df: DataFrame,
        inner: &proto::Expression,
        name: &str,
        outer: bool,
    ) -> Result<DataFrame> {
        let value = self.expr(&df, inner)?;
        let placeholder = "__explode";
        let mut exprs: Vec<Expr> = df
            .schema()
            .columns()
            .into_iter()
            .filter(|c| !c.name.eq_ignore_ascii_case(name))
            .map(Expr::Column)
            .collect();
        exprs.push(value.alias(placeholder));
        let df = unnest(df.select(exprs)?, placeholder, outer)?;
        Ok(df.with_column_renamed(placeholder, name)?)
    }

    /// `sample(withReplacement, fraction, seed)`: the rows whose hash of
    /// (seed, row values) falls in `[lower, upper)` of `[0, 1)`.
    fn sample(&self, df: DataFrame, s: &proto::Sample) -> Result<DataFrame> {
        if s.with_replacement.unwrap_or(false) {
            return Err(SparkError::unsupported(
                "sample(withReplacement=True); sample without replacement is supported",
            ));
        }
        if !(0.0..=1.0).contains(&s.lower_bound) || s.upper_bound < s.lower_bound {
            return Err(SparkError::illegal_argument(format!(
                "sample: the fraction bounds [{}, {}) must lie in [0, 1]",
                s.lower_bound, s.upper_bound
            )));
        }
        let seed = s
            .seed
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0 as i64);
        let hash = datafusion_spark::function::hash::xxhash64();
        let mut args = vec![lit(seed)];
        args.extend(
            df.schema()
                .columns()
                .into_iter()
                .map(|c| cast(Expr::Column(c), DataType::Utf8)),
        );
        const MANTISSA: i64 = (1 << 53) - 1;
        let h = Expr::ScalarFunction(ScalarFunction::new_udf(hash, args));
        let u = binary_expr(
            cast(
                binary_expr(h, Operator::BitwiseAnd, lit(MANTISSA)),
                DataType::Float64,
            ),
            Operator::Divide,
            lit((MANTISSA + 1) as f64),
        );
        let keep = u
            .clone()
            .gt_eq(lit(s.lower_bound))
            .and(u.lt(lit(s.upper_bound)));
        Ok(df.filter(keep)?)
    }

    /// `df.describe(cols)`: a `summary` column (`count`, `mean`, `stddev`,
    /// `min`, `max`) and one string column per numeric or string column, as
    /// Spark gives (mean and stddev NULL for strings). One job computes
    /// every statistic in one pass; the five rows are built from its row.
    async fn describe(&self, df: DataFrame, cols: &[String]) -> Result<DataFrame> {
        const STATS: [&str; 5] = ["count", "mean", "stddev", "min", "max"];
        let columns: Vec<(Column, DataType)> = if cols.is_empty() {
            df.schema()
                .iter()
                .filter(|(_, f)| f.data_type().is_numeric() || is_string_type(f.data_type()))
                .map(|(q, f)| (Column::new(q.cloned(), f.name()), f.data_type().clone()))
                .collect()
        } else {
            cols.iter()
                .map(|n| match resolve_column(df.schema(), n)? {
                    Expr::Column(c) => {
                        let t = df.schema().field_from_column(&c)?.data_type().clone();
                        Ok((c, t))
                    }
                    _ => unreachable!("resolve_column returns a column"),
                })
                .collect::<Result<_>>()?
        };
        // One aggregate: column i's statistic k is output 5 * i + k.
        let mut aggregates = vec![agg::count(lit(1i64)).alias("__rows")];
        for (i, (c, t)) in columns.iter().enumerate() {
            let column = Expr::Column(c.clone());
            for (k, stat) in STATS.iter().enumerate() {
                let value = match *stat {
                    "count" => agg::count(column.clone()),
                    "mean" | "stddev" if !t.is_numeric() => {
                        agg::max(cast(lit(ScalarValue::Null), DataType::Float64))
                    }
                    "mean" => agg::avg(column.clone()),
                    "stddev" => agg::stddev(column.clone()),
                    "min" => agg::min(column.clone()),
                    _ => agg::max(column.clone()),
                };
                aggregates.push(cast(value, DataType::Utf8).alias(format!("__s{}", 5 * i + k)));
            }
        }
        let batches = (self.run)(df.aggregate(vec![], aggregates)?, "describe".into()).await?;
        let row = batches.iter().find(|b| b.num_rows() > 0);
        let text = |j: usize| -> Option<String> {
            let b = row?;
            match ScalarValue::try_from_array(b.column(j + 1), 0).ok()? {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => v,
                _ => None,
            }
        };
        let mut fields = vec![Field::new("summary", DataType::Utf8, true)];
        let mut arrays: Vec<fairway_engine::arrow::array::ArrayRef> = vec![Arc::new(
            fairway_engine::arrow::array::StringArray::from(STATS.to_vec()),
        )];
        for (i, (c, _)) in columns.iter().enumerate() {
            fields.push(Field::new(c.name.clone(), DataType::Utf8, true));
            let values: fairway_engine::arrow::array::StringArray =
                (0..STATS.len()).map(|k| text(5 * i + k)).collect();
            arrays.push(Arc::new(values));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| SparkError::internal(format!("describe: {e}")))?;
        Ok(ctx(self.engine).read_batch(batch)?)
    }

    /// A window expression: a window or aggregate function over a
    /// partitioning, an order and a frame, with Spark's default frames.
    fn window(&self, input: &DataFrame, w: &proto::expression::Window) -> Result<Expr> {
        use fairway_engine::datafusion::logical_expr::WindowFrame;
        let function = w
            .window_function
            .as_ref()
            .ok_or_else(|| missing("window function"))?;
        let inner = unalias(self.expr(input, function)?);
        let partition_by = w
            .partition_spec
            .iter()
            .map(|e| self.expr(input, e))
            .collect::<Result<Vec<_>>>()?;
        let order_by = w
            .order_spec
            .iter()
            .map(|o| self.sort_order(input, o))
            .collect::<Result<Vec<_>>>()?;
        // A RANGE offset has the type of the order key.
        let order_type = order_by
            .first()
            .and_then(|o| o.expr.get_type(input.schema()).ok());
        let frame = match &w.frame_spec {
            Some(spec) => window_frame(spec, order_type.as_ref())?,
            None => WindowFrame::new(if order_by.is_empty() {
                None
            } else {
                Some(false)
            }),
        };
        let mut window = match inner {
            Expr::AggregateFunction(a) => {
                let mut wf = expr::WindowFunction::new(
                    expr::WindowFunctionDefinition::AggregateUDF(a.func),
                    a.params.args,
                );
                wf.params.distinct = a.params.distinct;
                wf.params.null_treatment = a.params.null_treatment;
                wf
            }
            Expr::WindowFunction(wf) => *wf,
            other => {
                return Err(SparkError::analysis(
                    "UNSUPPORTED_EXPR_FOR_WINDOW",
                    format!(
                        "Expression `{}` not supported within a window function.",
                        other.schema_name()
                    ),
                ));
            }
        };
        window.params.partition_by = partition_by;
        window.params.order_by = order_by;
        window.params.window_frame = frame;
        // Spark's ranks are ints; DataFusion's are unsigned longs.
        let int_rank = matches!(
            &window.fun,
            expr::WindowFunctionDefinition::WindowUDF(f)
                if matches!(f.name(), "row_number" | "rank" | "dense_rank" | "ntile")
        );
        let out = Expr::from(window);
        Ok(if int_rank {
            cast(out, DataType::Int32)
        } else {
            out
        })
    }
}

/// `rowsBetween`/`rangeBetween` as DataFusion's frame.
fn window_frame(
    spec: &proto::expression::window::WindowFrame,
    order_type: Option<&DataType>,
) -> Result<fairway_engine::datafusion::logical_expr::WindowFrame> {
    use fairway_engine::datafusion::logical_expr::{
        WindowFrame, WindowFrameBound, WindowFrameUnits,
    };
    use proto::expression::window::window_frame::{FrameType, frame_boundary::Boundary};
    let units = match FrameType::try_from(spec.frame_type) {
        Ok(FrameType::Row) => WindowFrameUnits::Rows,
        Ok(FrameType::Range) => WindowFrameUnits::Range,
        _ => return Err(missing("window frame type")),
    };
    let unbounded = || match units {
        WindowFrameUnits::Rows => ScalarValue::UInt64(None),
        _ => ScalarValue::Null,
    };
    let bound = |b: Option<&proto::expression::window::window_frame::FrameBoundary>,
                 lower: bool|
     -> Result<WindowFrameBound> {
        Ok(match b.and_then(|b| b.boundary.as_ref()) {
            Some(Boundary::CurrentRow(_)) => WindowFrameBound::CurrentRow,
            Some(Boundary::Unbounded(_)) | None => {
                if lower {
                    WindowFrameBound::Preceding(unbounded())
                } else {
                    WindowFrameBound::Following(unbounded())
                }
            }
            Some(Boundary::Value(e)) => {
                let Some(ExprType::Literal(l)) = &e.expr_type else {
                    return Err(SparkError::unsupported(
                        "a window frame bound that is not a constant",
                    ));
                };
                let v = literal(l)?;
                let n = match v.cast_to(&DataType::Int64) {
                    Ok(ScalarValue::Int64(Some(n))) => n,
                    _ => {
                        return Err(SparkError::unsupported(format!(
                            "the window frame bound {v}"
                        )));
                    }
                };
                // Spark's Long.MinValue / Long.MaxValue mean unbounded.
                if n <= i64::MIN / 2 {
                    WindowFrameBound::Preceding(unbounded())
                } else if n >= i64::MAX / 2 {
                    WindowFrameBound::Following(unbounded())
                } else if n == 0 {
                    WindowFrameBound::CurrentRow
                } else {
                    let magnitude = match units {
                        WindowFrameUnits::Rows => ScalarValue::UInt64(Some(n.unsigned_abs())),
                        _ => {
                            let offset = ScalarValue::Int64(Some(n.abs()));
                            match order_type {
                                Some(t) if t.is_numeric() => offset.cast_to(t).map_err(|e| {
                                    SparkError::analysis(
                                        "DATATYPE_MISMATCH.RANGE_FRAME_INVALID_TYPE",
                                        format!("the range frame offset {n} does not fit the order key's type {t}: {e}"),
                                    )
                                })?,
                                _ => offset,
                            }
                        }
                    };
                    if n < 0 {
                        WindowFrameBound::Preceding(magnitude)
                    } else {
                        WindowFrameBound::Following(magnitude)
                    }
                }
            }
        })
    };
    Ok(WindowFrame::new_bounds(
        units,
        bound(spec.lower.as_deref(), true)?,
        bound(spec.upper.as_deref(), false)?,
    ))
}

/// `explode(x)` / `explode_outer(x)` (maybe aliased) as a whole column.
fn explode_of(e: &proto::Expression) -> Option<(bool, &proto::Expression)> {
    match &e.expr_type {
        Some(ExprType::Alias(a)) => a.expr.as_deref().and_then(explode_of),
        Some(ExprType::UnresolvedFunction(f)) if f.arguments.len() == 1 => {
            match f.function_name.to_ascii_lowercase().as_str() {
                "explode" => Some((false, &f.arguments[0])),
                "explode_outer" => Some((true, &f.arguments[0])),
                _ => None,
            }
        }
        _ => None,
    }
}

/// One row per element of the list column `name` (for `explode_outer`,
/// also one NULL row for a NULL or empty list).
fn unnest(df: DataFrame, name: &str, outer: bool) -> Result<DataFrame> {
    use fairway_engine::datafusion::common::UnnestOptions;
    let df = if outer {
        // An empty list becomes NULL, which unnest keeps as one row.
        let column = Expr::Column(Column::new_unqualified(name));
        let t = column.get_type(df.schema())?;
        let cardinality =
            fairway_engine::datafusion::functions_nested::expr_fn::cardinality(column.clone());
        let value = fairway_engine::datafusion::logical_expr::when(
            cardinality.eq(lit(0u64)),
            cast(lit(ScalarValue::Null), t),
        )
        .otherwise(column)?;
        df.with_column(name, value)?
    } else {
        df
    };
    let options = UnnestOptions::new().with_preserve_nulls(outer);
    Ok(df.unnest_columns_with_options(&[name], options)?)
}

/// Expressions with equal names (`round(x)` and `round(CAST(x AS DOUBLE))`,
/// which DataFusion names alike) told apart by their full text.
fn distinct_names(exprs: Vec<Expr>) -> Vec<Expr> {
    let mut seen: Vec<String> = Vec::new();
    exprs
        .into_iter()
        .map(|e| {
            let name = e.schema_name().to_string();
            if !seen.contains(&name) {
                seen.push(name);
                return e;
            }
            let mut text = plain_literals(&e.to_string());
            while seen.contains(&text) {
                text.push('\'');
            }
            seen.push(text.clone());
            e.alias(text)
        })
        .collect()
}

/// `intersectAll` (`keep`) or `exceptAll`: multiset semantics, each
/// duplicate numbered on both sides so that `n` copies meet `m` copies as
/// `min(n, m)` (or `n - m`) rows.
fn multiset(left: DataFrame, right: DataFrame, keep: bool) -> Result<DataFrame> {
    const COPY: &str = "__copy";
    let number = |df: DataFrame| -> Result<DataFrame> {
        let columns: Vec<Expr> = df
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        let mut row = expr::WindowFunction::new(
            expr::WindowFunctionDefinition::WindowUDF(
                fairway_engine::datafusion::functions_window::row_number::row_number_udwf(),
            ),
            vec![],
        );
        row.params.partition_by = columns.clone();
        let mut exprs = columns;
        exprs.push(Expr::from(row).alias(COPY));
        Ok(df.select(exprs)?)
    };
    let (l, r) = (number(left)?, number(right)?);
    let out = if keep {
        l.intersect_distinct(r)?
    } else {
        l.except_distinct(r)?
    };
    let exprs: Vec<Expr> = out
        .schema()
        .columns()
        .into_iter()
        .filter(|c| c.name != COPY)
        .map(Expr::Column)
        .collect();
    Ok(out.select(exprs)?)
}

/// `col[i]` / `getItem(i)` (an array, from 0, as Spark), `col["f"]` /
/// `getField("f")` (a struct field or a map key).
fn extract_value(schema: &DFSchema, child: Expr, key: Expr) -> Result<Expr> {
    let t = child.get_type(schema)?;
    Ok(match t {
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let Expr::Literal(v, _) = &key else {
                return Err(SparkError::unsupported(
                    "an array index that is not a constant",
                ));
            };
            let i = match v.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(i))) => i,
                _ => {
                    return Err(SparkError::analysis(
                        "INVALID_EXTRACT_BASE_FIELD_TYPE",
                        format!("an array index must be an integer, got {v}"),
                    ));
                }
            };
            if i < 0 {
                // Spark gives NULL for a negative index.
                return Ok(cast(lit(ScalarValue::Null), element_type(&t)));
            }
            Expr::ScalarFunction(ScalarFunction::new_udf(
                fairway_engine::datafusion::functions_nested::extract::array_element_udf(),
                vec![child, lit(i + 1)],
            ))
        }
        DataType::Struct(_) | DataType::Map(..) => Expr::ScalarFunction(ScalarFunction::new_udf(
            fairway_engine::datafusion::functions::core::get_field(),
            vec![child, key],
        )),
        other => {
            return Err(SparkError::analysis(
                "INVALID_EXTRACT_BASE_FIELD_TYPE",
                format!(
                    "Can't extract a value from a value of type {other}: it needs an array, a struct or a map."
                ),
            ));
        }
    })
}

fn element_type(t: &DataType) -> DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type().clone()
        }
        _ => DataType::Null,
    }
}

/// `selectExpr` / `expr` text: a SQL expression, maybe with an alias,
/// with or without `AS` (`upper(s) u`), as Spark takes it.
fn sql_expression(input: &DataFrame, text: &str) -> Result<Expr> {
    match input.parse_sql_expr(text) {
        Ok(e) => Ok(e),
        Err(first) => {
            let trimmed = text.trim_end();
            let split = trimmed
                .rfind(char::is_whitespace)
                .map(|i| (trimmed[..i].trim_end(), &trimmed[i + 1..]));
            if let Some((body, alias)) = split
                && !body.is_empty()
                && alias
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '`')
                && let Ok(e) = input.parse_sql_expr(body)
            {
                let parts = identifier_parts(alias)?;
                if let [name] = parts.as_slice() {
                    return Ok(e.alias(name));
                }
            }
            Err(first.into())
        }
    }
}

/// `e` without its alias.
fn unalias(e: Expr) -> Expr {
    match e {
        Expr::Alias(a) => unalias(*a.expr),
        e => e,
    }
}

/// A value as Spark prints it in a pivot column's name.
fn plain_value(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

/// Groups and aggregates, where an aggregate may sit inside an expression
/// (`F.sum(a) / F.sum(b)`, `F.round(F.avg(x), 2)`): the aggregates run,
/// then the expressions over their results.
fn aggregate_frame(
    input: DataFrame,
    groups: Vec<Expr>,
    aggregates: Vec<Expr>,
) -> Result<DataFrame> {
    use fairway_engine::datafusion::common::tree_node::{Transformed, TreeNode};
    use fairway_engine::datafusion::logical_expr::utils::find_aggregate_exprs;
    let plain = aggregates
        .iter()
        .all(|e| matches!(unalias(e.clone()), Expr::AggregateFunction(_)));
    if plain {
        return spark_names(input.aggregate(groups, aggregates)?);
    }
    let inner = find_aggregate_exprs(aggregates.iter());
    let df = input.aggregate(groups, inner.clone())?;
    let n_groups = df.schema().fields().len() - inner.len();
    let mut projection: Vec<Expr> = df.schema().columns()[..n_groups]
        .iter()
        .cloned()
        .map(Expr::Column)
        .collect();
    for e in aggregates {
        let name = e.schema_name().to_string();
        let rewritten = e
            .transform_up(|node| {
                if matches!(node, Expr::AggregateFunction(_)) {
                    let column = Column::new_unqualified(node.schema_name().to_string());
                    Ok(Transformed::yes(Expr::Column(column)))
                } else {
                    Ok(Transformed::no(node))
                }
            })?
            .data;
        projection.push(match rewritten {
            Expr::Alias(_) => rewritten,
            other => other.alias(name),
        });
    }
    spark_names(df.select(projection)?)
}

/// `unionByName`: `right`'s columns named as `left`'s (Spark matches
/// them ignoring case); without `allow_missing` both sides must have the
/// same columns.
fn by_name_inputs(left: &DataFrame, right: DataFrame, allow_missing: bool) -> Result<DataFrame> {
    let left_names: Vec<String> = left
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let right_names: Vec<String> = right
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if !allow_missing {
        let missing_from = |a: &[String], b: &[String]| {
            a.iter()
                .find(|n| !b.iter().any(|m| m.eq_ignore_ascii_case(n)))
                .cloned()
        };
        if let Some(name) = missing_from(&left_names, &right_names)
            .or_else(|| missing_from(&right_names, &left_names))
        {
            return Err(SparkError::analysis(
                "NUM_COLUMNS_MISMATCH",
                format!(
                    "unionByName: the column `{name}` is not on both sides ([{}] and [{}]); \
                     pass allowMissingColumns=True to fill it with NULL",
                    left_names.join(", "),
                    right_names.join(", ")
                ),
            ));
        }
    }
    let exprs: Vec<Expr> = right
        .schema()
        .iter()
        .map(|(q, f)| {
            let column = Expr::Column(Column::new(q.cloned(), f.name()));
            match left_names.iter().find(|n| n.eq_ignore_ascii_case(f.name())) {
                Some(n) => column.alias(n),
                None => column.alias(f.name()),
            }
        })
        .collect();
    Ok(right.select(exprs)?)
}

fn is_nan(e: Expr) -> Expr {
    fairway_engine::datafusion::functions::expr_fn::isnan(e)
}

fn is_string_type(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float32 | DataType::Float64 | DataType::Float16)
}

/// `na.fill(value[, subset])` / `fillna({col: value})`: NULLs (and NaN in
/// floating columns) replaced in the columns whose type takes the value:
/// a number fills numeric columns, a string string columns, a boolean
/// boolean columns.
fn fill_na(df: DataFrame, f: &proto::NaFill) -> Result<DataFrame> {
    let values = f.values.iter().map(literal).collect::<Result<Vec<_>>>()?;
    let per_column: Vec<(String, ScalarValue)> = match (values.as_slice(), f.cols.is_empty()) {
        ([], _) => return Err(missing("fill value")),
        ([v], true) => df
            .schema()
            .fields()
            .iter()
            .map(|field| (field.name().clone(), v.clone()))
            .collect(),
        ([v], false) => f.cols.iter().map(|c| (c.clone(), v.clone())).collect(),
        (many, false) if many.len() == f.cols.len() => {
            f.cols.iter().cloned().zip(many.iter().cloned()).collect()
        }
        _ => {
            return Err(SparkError::invalid_plan(
                "na.fill needs one value, or one value per column",
            ));
        }
    };
    let dict_form = values.len() > 1 || (values.len() == 1 && f.cols.len() == 1);
    let mut targets: Vec<(Column, ScalarValue)> = Vec::new();
    for (name, v) in per_column {
        let Expr::Column(c) = resolve_column(df.schema(), &name)? else {
            unreachable!("resolve_column returns a column")
        };
        let t = df.schema().field_from_column(&c)?.data_type().clone();
        let takes = match &v {
            v if v.data_type().is_numeric() => t.is_numeric(),
            ScalarValue::Utf8(_) | ScalarValue::LargeUtf8(_) => is_string_type(&t),
            ScalarValue::Boolean(_) => t == DataType::Boolean,
            _ => false,
        };
        if takes || (dict_form && v.cast_to(&t).is_ok()) {
            targets.push((c, v));
        }
    }
    let exprs: Vec<Expr> = df
        .schema()
        .iter()
        .map(|(q, field)| {
            let c = Column::new(q.cloned(), field.name());
            let column = Expr::Column(c.clone());
            match targets.iter().find(|(t, _)| *t == c) {
                Some((_, v)) => {
                    let t = field.data_type();
                    let value = cast(lit(v.clone()), t.clone());
                    let missing = if is_float(t) {
                        column.clone().is_null().or(is_nan(column.clone()))
                    } else {
                        column.clone().is_null()
                    };
                    fairway_engine::datafusion::logical_expr::when(missing, value)
                        .otherwise(column)
                        .map(|e| e.alias(field.name()))
                        .map_err(SparkError::from)
                }
                None => Ok(column),
            }
        })
        .collect::<Result<_>>()?;
    Ok(df.select(exprs)?)
}

/// `na.drop(how, thresh, subset)`: the rows with at least
/// `min_non_nulls` values that are neither NULL nor NaN among the columns.
fn drop_na(df: DataFrame, d: &proto::NaDrop) -> Result<DataFrame> {
    let columns: Vec<Column> = if d.cols.is_empty() {
        df.schema().columns()
    } else {
        d.cols
            .iter()
            .map(|n| match resolve_column(df.schema(), n)? {
                Expr::Column(c) => Ok(c),
                _ => unreachable!("resolve_column returns a column"),
            })
            .collect::<Result<_>>()?
    };
    let need = d.min_non_nulls.map_or(columns.len() as i64, i64::from);
    if columns.is_empty() || need <= 0 {
        return Ok(df);
    }
    let mut count: Option<Expr> = None;
    for c in columns {
        let t = df.schema().field_from_column(&c)?.data_type().clone();
        let column = Expr::Column(c);
        let mut present = column.clone().is_not_null();
        if is_float(&t) {
            present = present.and(Expr::Not(Box::new(is_nan(column))));
        }
        let one = fairway_engine::datafusion::logical_expr::when(present, lit(1i64))
            .otherwise(lit(0i64))?;
        count = Some(match count {
            None => one,
            Some(sum) => sum + one,
        });
    }
    Ok(df.filter(count.expect("columns").gt_eq(lit(need)))?)
}

/// Output columns named as Spark names them: an expression's name
/// without table qualifiers (`sum(id)`, not `sum(t.id)`), `count(*)` as
/// `count(1)`.
fn spark_names(df: DataFrame) -> Result<DataFrame> {
    use fairway_engine::datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use fairway_engine::datafusion::logical_expr::LogicalPlan;
    let mut qualifiers: Vec<String> = Vec::new();
    let _ = df.logical_plan().apply(|node| {
        match node {
            LogicalPlan::TableScan(scan) => qualifiers.push(scan.table_name.to_string()),
            LogicalPlan::SubqueryAlias(a) => qualifiers.push(a.alias.to_string()),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    qualifiers.sort_by_key(|q| std::cmp::Reverse(q.len()));
    let rename = |name: &str| -> String {
        let mut out = plain_literals(name).replace("count(*)", "count(1)");
        for q in &qualifiers {
            out = strip_qualifier(&out, q);
        }
        out
    };
    let fields: Vec<(Option<TableReference>, String)> = df
        .schema()
        .iter()
        .map(|(q, f)| (q.cloned(), f.name().clone()))
        .collect();
    if fields.iter().all(|(_, name)| rename(name) == *name) {
        return Ok(df);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut exprs = Vec::with_capacity(fields.len());
    for (q, name) in fields {
        let mut new = rename(&name);
        if seen.contains(&new) {
            new = name.clone();
        }
        seen.push(new.clone());
        let column = Expr::Column(Column::new(q, &name));
        exprs.push(if new == name {
            column
        } else {
            column.alias(new)
        });
    }
    Ok(df.select(exprs)?)
}

/// Literals in an expression's name as Spark writes them: `1` for
/// DataFusion's `Int64(1)`, `a` for `Utf8("a")`.
fn plain_literals(text: &str) -> String {
    const TYPES: [&str; 9] = [
        "Int64(", "Int32(", "Int16(", "Int8(", "UInt64(", "UInt32(", "Float64(", "Float32(",
        "Boolean(",
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        let starts_name = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if starts_name {
            for t in TYPES {
                if let Some(after) = rest.strip_prefix(t)
                    && let Some(close) = after.find(')')
                    && !after[..close].contains('(')
                {
                    out.push_str(&after[..close]);
                    rest = &after[close + 1..];
                    continue 'scan;
                }
            }
            for t in ["Utf8(\"", "Utf8View(\"", "LargeUtf8(\""] {
                if let Some(after) = rest.strip_prefix(t)
                    && let Some(close) = after.find("\")")
                {
                    out.push_str(&after[..close]);
                    rest = &after[close + 2..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `text` without `q.` where `q` starts a name.
fn strip_qualifier(text: &str, q: &str) -> String {
    let pattern = format!("{q}.");
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(pos) = text[i..].find(&pattern) {
        let at = i + pos;
        let prev = text[..at].chars().last();
        let starts_name = prev.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        out.push_str(&text[i..at]);
        if !starts_name {
            out.push_str(&pattern);
        }
        i = at + pattern.len();
    }
    out.push_str(&text[i..]);
    out
}

/// `spark.sql(query, args=...)` is not supported yet: refuses a query with
/// any of the protocol's four argument fields (two deprecated).
pub fn refuse_sql_args(counts: [usize; 4]) -> Result<()> {
    if counts.iter().any(|&n| n > 0) {
        return Err(SparkError::unsupported("spark.sql with args"));
    }
    Ok(())
}

/// [`refuse_sql_args`] for a `spark.sql` relation.
pub fn refuse_sql_relation_args(sql: &proto::Sql) -> Result<()> {
    refuse_sql_args([
        sql.args.len(),
        sql.pos_args.len(),
        sql.named_arguments.len(),
        sql.pos_arguments.len(),
    ])
}

fn merge_how(kind: proto::join::JoinType) -> Option<MergeHow> {
    use proto::join::JoinType as J;
    match kind {
        J::FullOuter => Some(MergeHow::Full),
        J::Inner | J::Unspecified => Some(MergeHow::Inner),
        J::LeftOuter => Some(MergeHow::Left),
        _ => None,
    }
}

/// The inputs of a left-deep chain of joins with the same keys and type.
fn collect_merge_leaves<'r>(
    join: &'r proto::Join,
    keys: &[String],
    kind: proto::join::JoinType,
    leaves: &mut Vec<&'r proto::Relation>,
) {
    if let Some(left) = &join.left {
        match &left.rel_type {
            Some(RelType::Join(inner))
                if inner.using_columns == keys
                    && proto::join::JoinType::try_from(inner.join_type).ok() == Some(kind)
                    && inner.join_condition.is_none() =>
            {
                collect_merge_leaves(inner, keys, kind, leaves);
            }
            _ => leaves.push(left),
        }
    }
    if let Some(right) = &join.right {
        leaves.push(right);
    }
}

/// The frames of a merge with their key columns renamed to the names the
/// join uses (Spark matches keys ignoring case), or `None` when two
/// inputs share a non-key column, which a merge refuses.
fn merge_inputs(frames: Vec<DataFrame>, keys: &[String]) -> Result<Option<Vec<DataFrame>>> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(frames.len());
    for frame in frames {
        let mut exprs = Vec::new();
        for (qualifier, field) in frame.schema().iter() {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            match keys.iter().find(|k| k.eq_ignore_ascii_case(field.name())) {
                Some(key) => exprs.push(column.alias(key)),
                None => {
                    let lower = field.name().to_ascii_lowercase();
                    if seen.contains(&lower) {
                        return Ok(None);
                    }
                    seen.push(lower);
                    exprs.push(column.alias(field.name()));
                }
            }
        }
        for key in keys {
            if !frame
                .schema()
                .fields()
                .iter()
                .any(|f| f.name().eq_ignore_ascii_case(key))
            {
                return Err(SparkError::analysis(
                    "UNRESOLVED_USING_COLUMN_FOR_JOIN",
                    format!(
                        "USING column `{key}` cannot be resolved on one side of the join. \
                         That side's columns: [{}].",
                        column_list(frame.schema())
                    ),
                ));
            }
        }
        out.push(frame.select(exprs)?);
    }
    Ok(Some(out))
}

/// Both sides of a join, and the qualifiers they were put under, if any.
type Requalified = (DataFrame, DataFrame, Option<(String, String)>);

/// Both sides under distinct qualifiers, so that equal column names can be
/// told apart.
fn distinct_qualifiers(left: DataFrame, right: DataFrame) -> Result<Requalified> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let qualifiers = |df: &DataFrame| -> Vec<Option<String>> {
        df.schema()
            .iter()
            .map(|(q, _)| q.map(|q| q.to_string()))
            .collect()
    };
    let (lq, rq) = (qualifiers(&left), qualifiers(&right));
    let clash = lq.iter().any(|q| rq.contains(q));
    if !clash {
        return Ok((left, right, None));
    }
    let (l, r) = (format!("__left{n}"), format!("__right{n}"));
    Ok((left.alias(&l)?, right.alias(&r)?, Some((l, r))))
}

/// `join(other, on=[cols], how)` for the types a merge does not take, or
/// when the sides share other column names: Spark's output is the keys
/// (the right side's for a right join, the first non-NULL for a full one),
/// then the left side's other columns, then the right side's.
fn using_join(
    left: DataFrame,
    right: DataFrame,
    keys: &[String],
    join_type: JoinType,
) -> Result<DataFrame> {
    let mut lkeys = Vec::new();
    let mut rkeys = Vec::new();
    for key in keys {
        let Expr::Column(l) = resolve_column(left.schema(), key)? else {
            unreachable!("resolve_column returns a column")
        };
        let Expr::Column(r) = resolve_column(right.schema(), key)? else {
            unreachable!("resolve_column returns a column")
        };
        lkeys.push(l);
        rkeys.push(r);
    }
    let lcols = left.schema().columns();
    let rcols = right.schema().columns();
    let (state, lplan) = left.into_parts();
    let plan = LogicalPlanBuilder::from(lplan)
        .join(
            right.into_parts().1,
            join_type,
            (lkeys.clone(), rkeys.clone()),
            None,
        )?
        .build()?;
    if matches!(join_type, JoinType::LeftSemi | JoinType::LeftAnti) {
        return Ok(DataFrame::new(state, plan));
    }
    let mut projection = Vec::new();
    for ((key, l), r) in keys.iter().zip(&lkeys).zip(&rkeys) {
        let e = match join_type {
            JoinType::Right => Expr::Column(r.clone()),
            JoinType::Full => fairway_engine::datafusion::functions::expr_fn::coalesce(vec![
                Expr::Column(l.clone()),
                Expr::Column(r.clone()),
            ]),
            _ => Expr::Column(l.clone()),
        };
        projection.push(e.alias(key));
    }
    projection.extend(
        lcols
            .into_iter()
            .filter(|c| !lkeys.contains(c))
            .map(Expr::Column),
    );
    projection.extend(
        rcols
            .into_iter()
            .filter(|c| !rkeys.contains(c))
            .map(Expr::Column),
    );
    let plan = LogicalPlanBuilder::from(plan)
        .project(projection)?
        .build()?;
    Ok(DataFrame::new(state, plan))
}

fn column_list(schema: &DFSchema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Splits a Spark identifier (`a.b`, `` `a.b`.c ``) into its parts.
pub fn identifier_parts(name: &str) -> Result<Vec<String>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                current.push('`');
            }
            '`' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        return Err(SparkError::parse(format!("unclosed ` in '{name}'")));
    }
    parts.push(current);
    Ok(parts)
}

/// A table name as DataFusion takes it, from Spark's identifier; names
/// are lower-cased as SQL does with unquoted names.
pub fn table_reference(name: &str) -> Result<TableReference> {
    let parts: Vec<String> = identifier_parts(name)?
        .into_iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    Ok(match parts.as_slice() {
        [t] => TableReference::bare(t.as_str()),
        // Spark's `default` database is DataFusion's `public` schema.
        [s, t] if s == "default" => TableReference::bare(t.as_str()),
        [s, t] => TableReference::partial(s.as_str(), t.as_str()),
        [c, s, t] => TableReference::full(c.as_str(), s.as_str(), t.as_str()),
        _ => {
            return Err(SparkError::parse(format!("invalid table name '{name}'")));
        }
    })
}

/// A column named `name` in `schema`, matched exactly, else ignoring case
/// (Spark's default `spark.sql.caseSensitive=false`).
pub fn resolve_column(schema: &DFSchema, name: &str) -> Result<Expr> {
    let parts = identifier_parts(name)?;
    let (qualifier, column) = match parts.as_slice() {
        [c] => (None, c.as_str()),
        [.., q, c] => (Some(q.as_str()), c.as_str()),
        [] => return Err(missing("column name")),
    };
    let matches = |exact: bool| -> Vec<Column> {
        schema
            .iter()
            .filter(|(q, f)| {
                let name_ok = if exact {
                    f.name() == column
                } else {
                    f.name().eq_ignore_ascii_case(column)
                };
                let qualifier_ok = match qualifier {
                    None => true,
                    Some(want) => q.is_some_and(|q| {
                        if exact {
                            q.table() == want
                        } else {
                            q.table().eq_ignore_ascii_case(want)
                        }
                    }),
                };
                name_ok && qualifier_ok
            })
            .map(|(q, f)| Column::new(q.cloned(), f.name()))
            .collect()
    };
    let mut found = matches(true);
    if found.is_empty() {
        found = matches(false);
    }
    match found.len() {
        1 => Ok(Expr::Column(found.remove(0))),
        0 => Err(SparkError::analysis(
            "UNRESOLVED_COLUMN.WITH_SUGGESTION",
            format!(
                "A column, variable, or function parameter with name `{name}` cannot be \
                 resolved. Did you mean one of the following? [{}].",
                column_list(schema)
            ),
        )),
        _ => Err(SparkError::analysis(
            "AMBIGUOUS_REFERENCE",
            format!(
                "Reference `{name}` is ambiguous, could be: [{}].",
                found
                    .iter()
                    .map(|c| format!("`{}`", c.flat_name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `schema` with every field nullable (Spark's `asNullable` for files).
fn nullable(schema: &Schema) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    )
}

/// A table read as Spark reads a file table: every column nullable. Only
/// listing tables (files) change; views and memory tables keep theirs.
fn nullable_table(
    provider: Arc<dyn fairway_engine::datafusion::catalog::TableProvider>,
) -> Option<Arc<dyn fairway_engine::datafusion::catalog::TableProvider>> {
    use fairway_engine::datafusion::catalog::TableProvider;
    let listing = provider.downcast_ref::<ListingTable>()?;
    let schema = listing.schema();
    if schema.fields().iter().all(|f| f.is_nullable()) {
        return None;
    }
    let table = listing_table(
        listing.table_paths().clone(),
        listing.options().clone(),
        nullable(&schema),
    );
    table.ok().map(|t| t as _)
}

/// A table of the files at `urls`, read with `schema`.
fn listing_table(
    urls: Vec<ListingTableUrl>,
    options: ListingOptions,
    schema: Schema,
) -> Result<Arc<ListingTable>> {
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::new(schema));
    Ok(Arc::new(ListingTable::try_new(config)?))
}

fn listing_frame(
    ctx: &SessionContext,
    urls: Vec<ListingTableUrl>,
    options: ListingOptions,
    schema: Schema,
) -> Result<DataFrame> {
    Ok(ctx.read_table(listing_table(urls, options, schema)?)?)
}

/// The schema of the files at `urls` (the first location's, as DataFusion
/// infers a listing table's).
async fn infer_schema(
    ctx: &SessionContext,
    urls: &[ListingTableUrl],
    options: &ListingOptions,
) -> Result<Schema> {
    let state = ctx.state();
    let Some(first) = urls.first() else {
        return Ok(Schema::empty());
    };
    Ok(options.infer_schema(&state, first).await?.as_ref().clone())
}

/// A DataFusion table location for a user's path: a folder gets a
/// trailing `/`; a local path that does not exist is Spark's
/// `PATH_NOT_FOUND`.
fn location(path: &str) -> Result<String> {
    let local = path.strip_prefix("file://").unwrap_or(path);
    if path.contains("://") && !path.starts_with("file://") {
        return Ok(path.to_string());
    }
    let has_glob = local.contains(['*', '?', '[']);
    let p = Path::new(local);
    if !has_glob && !p.exists() {
        return Err(SparkError::analysis(
            "PATH_NOT_FOUND",
            format!("Path does not exist: file:{local}."),
        ));
    }
    let mut location = local.to_string();
    if p.is_dir() && !location.ends_with('/') {
        location.push('/');
    }
    Ok(location)
}

/// `createDataFrame(...)`: Arrow IPC data (and, for an empty frame, only
/// a schema).
fn local_relation(engine: &Session, local: &proto::LocalRelation) -> Result<DataFrame> {
    let ctx = ctx(engine);
    let (schema, batches) = match &local.data {
        Some(data) if !data.is_empty() => {
            let reader = StreamReader::try_new(std::io::Cursor::new(data.as_slice()), None)
                .map_err(|e| SparkError::invalid_plan(format!("local relation data: {e}")))?;
            let schema = reader.schema();
            let batches = reader
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| SparkError::invalid_plan(format!("local relation data: {e}")))?;
            (schema, batches)
        }
        _ => {
            let text = local
                .schema
                .as_deref()
                .ok_or_else(|| missing("local relation data or schema"))?;
            (Arc::new(parse_schema(text)?), Vec::new())
        }
    };
    let table = MemTable::try_new(Arc::clone(&schema), vec![batches])?;
    Ok(ctx.read_table(Arc::new(table))?)
}

fn one_row(engine: &Session) -> Result<DataFrame> {
    Ok(DataFrame::new(
        ctx(engine).state(),
        LogicalPlanBuilder::empty(true).build()?,
    ))
}

/// A literal's value.
pub fn literal(l: &proto::expression::Literal) -> Result<ScalarValue> {
    use proto::expression::literal::LiteralType as L;
    let Some(v) = &l.literal_type else {
        return Err(missing("literal value"));
    };
    Ok(match v {
        L::Null(t) => ScalarValue::try_from(&arrow_type(t)?).unwrap_or(ScalarValue::Null),
        L::Binary(b) => ScalarValue::Binary(Some(b.clone())),
        L::Boolean(b) => ScalarValue::Boolean(Some(*b)),
        L::Byte(b) => ScalarValue::Int8(Some(*b as i8)),
        L::Short(s) => ScalarValue::Int16(Some(*s as i16)),
        L::Integer(i) => ScalarValue::Int32(Some(*i)),
        L::Long(i) => ScalarValue::Int64(Some(*i)),
        L::Float(f) => ScalarValue::Float32(Some(*f)),
        L::Double(d) => ScalarValue::Float64(Some(*d)),
        L::String(s) => ScalarValue::Utf8(Some(s.clone())),
        L::Date(d) => ScalarValue::Date32(Some(*d)),
        L::Timestamp(t) => ScalarValue::TimestampMicrosecond(Some(*t), Some("UTC".into())),
        L::TimestampNtz(t) => ScalarValue::TimestampMicrosecond(Some(*t), None),
        L::Decimal(d) => {
            let text = d.value.trim();
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            // As Spark: the value's own precision and scale, widened to
            // the declared ones (PySpark declares decimal(10, 0) for any
            // Python Decimal).
            let scale = d.scale.unwrap_or(0).max(frac.len() as i32);
            let digits = format!("{int}{frac}");
            let significant = digits
                .trim_start_matches(['-', '+'])
                .trim_start_matches('0');
            let own_precision = (int
                .trim_start_matches(['-', '+'])
                .trim_start_matches('0')
                .len() as i32
                + scale)
                .max(significant.len() as i32)
                .max(1);
            let precision = d.precision.unwrap_or(0).max(own_precision);
            let value: i128 = digits
                .parse()
                .map_err(|_| SparkError::invalid_plan(format!("decimal literal '{text}'")))?;
            let value = value * 10i128.pow((scale - frac.len() as i32).max(0) as u32);
            ScalarValue::Decimal128(Some(value), precision.clamp(1, 38) as u8, scale as i8)
        }
        L::DayTimeInterval(us) => ScalarValue::DurationMicrosecond(Some(*us)),
        L::Array(a) => {
            let values = a.elements.iter().map(literal).collect::<Result<Vec<_>>>()?;
            let element_type = values
                .first()
                .map(|v| v.data_type())
                .unwrap_or(DataType::Null);
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &element_type))
        }
        other => {
            return Err(SparkError::unsupported(format!(
                "the literal {}",
                format!("{other:?}").split('(').next().unwrap_or("?")
            )));
        }
    })
}

fn relation_name(rel: &RelType) -> String {
    let debug = format!("{rel:?}");
    debug.split('(').next().unwrap_or("?").to_string()
}

/// A short description of a relation for a job's description.
pub fn describe(relation: &proto::Relation) -> String {
    match &relation.rel_type {
        Some(RelType::Sql(s)) => one_line(&s.query),
        Some(RelType::ShowString(s)) => match &s.input {
            Some(input) => format!("show {}", describe(input)),
            None => "show".to_string(),
        },
        Some(RelType::Read(r)) => match &r.read_type {
            Some(proto::read::ReadType::NamedTable(t)) => {
                format!("table {}", t.unparsed_identifier)
            }
            Some(proto::read::ReadType::DataSource(d)) => format!(
                "read {} {}",
                d.format.as_deref().unwrap_or("parquet"),
                d.paths.join(",")
            ),
            None => "read".to_string(),
        },
        Some(other) => {
            let name = relation_name(other).to_ascii_lowercase();
            // The first input that names what is read.
            let inner = first_input(relation).map(describe);
            match inner {
                Some(inner) => format!("{name} of {inner}"),
                None => name,
            }
        }
        None => "relation".to_string(),
    }
}

fn first_input(relation: &proto::Relation) -> Option<&proto::Relation> {
    match relation.rel_type.as_ref()? {
        RelType::Project(p) => p.input.as_deref(),
        RelType::Filter(f) => f.input.as_deref(),
        RelType::Join(j) => j.left.as_deref(),
        RelType::Limit(l) => l.input.as_deref(),
        RelType::Sort(s) => s.input.as_deref(),
        RelType::Aggregate(a) => a.input.as_deref(),
        RelType::SubqueryAlias(a) => a.input.as_deref(),
        RelType::ToDf(t) => t.input.as_deref(),
        RelType::WithColumns(w) => w.input.as_deref(),
        RelType::WithColumnsRenamed(w) => w.input.as_deref(),
        RelType::Drop(d) => d.input.as_deref(),
        RelType::Deduplicate(d) => d.input.as_deref(),
        RelType::Offset(o) => o.input.as_deref(),
        RelType::SetOp(s) => s.left_input.as_deref(),
        _ => None,
    }
}

/// `text` on one line, at most 200 characters.
pub fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > 200 {
        let mut s: String = joined.chars().take(197).collect();
        s.push_str("...");
        s
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_in_names_are_written_as_spark_does() {
        assert_eq!(plain_literals("count(Int64(1))"), "count(1)");
        assert_eq!(plain_literals("a + Int64(10)"), "a + 10");
        assert_eq!(plain_literals("concat(x, Utf8(\"-\"))"), "concat(x, -)");
        assert_eq!(plain_literals("MyInt64(3)"), "MyInt64(3)");
    }

    #[test]
    fn expression_names_lose_their_qualifiers() {
        assert_eq!(strip_qualifier("sum(t.id)", "t"), "sum(id)");
        assert_eq!(strip_qualifier("t.a + t.b", "t"), "a + b");
        assert_eq!(strip_qualifier("sum(at.id)", "t"), "sum(at.id)");
    }

    #[test]
    fn identifiers_split_on_dots_outside_backticks() {
        assert_eq!(identifier_parts("a.b").unwrap(), vec!["a", "b"]);
        assert_eq!(identifier_parts("`a.b`.c").unwrap(), vec!["a.b", "c"]);
        assert_eq!(identifier_parts("`x``y`").unwrap(), vec!["x`y"]);
        assert!(identifier_parts("`open").is_err());
    }

    #[test]
    fn columns_resolve_ignoring_case_but_prefer_exact() {
        let schema = DFSchema::try_from(Schema::new(vec![
            Field::new("Name", DataType::Utf8, true),
            Field::new("id", DataType::Int64, true),
        ]))
        .unwrap();
        assert_eq!(
            resolve_column(&schema, "name").unwrap(),
            Expr::Column(Column::new_unqualified("Name"))
        );
        assert!(resolve_column(&schema, "nope").is_err());
    }
}
