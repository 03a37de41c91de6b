//! Running one `ExecutePlan`: a relation's rows as Arrow batches, or a
//! command (`spark.sql`, `createOrReplaceTempView`, `write`). Every action
//! runs as fairway jobs in the operation's pool, described in the event
//! log as `connect op=<id> tags=[...] <what>`.

use std::sync::Arc;

use fairway_engine::Session;
use fairway_engine::arrow::array::{BooleanArray, RecordBatch, StringArray};
use fairway_engine::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use fairway_engine::arrow::ipc::writer::StreamWriter;
use fairway_engine::datafusion::dataframe::DataFrame;
use fairway_engine::datafusion::sql::parser::Statement;
use fairway_engine::datafusion::sql::sqlparser::ast;

use crate::error::{Result, SparkError};
use crate::proto::{self, command::CommandType, execute_plan_response as epr};
use crate::relation::{
    Planner, RunFn, describe, one_line, refuse_sql_args, refuse_sql_relation_args, table_reference,
};
use crate::session::{ClientSession, Operation};
use crate::types::{spark_arrow_schema, spark_schema, to_spark_batch};
use crate::write::{SaveMode, WriteFormat, WriteOptions};

/// Bytes of Arrow IPC per response, about.
const MAX_BYTES_PER_RESPONSE: usize = 4 << 20;

/// What one operation runs with.
pub struct Job<'s> {
    pub session: &'s ClientSession,
    pub op: &'s Operation,
    /// The session's engine client with this operation's pool.
    pub engine: Session,
    /// `connect op=<id> tags=[...]`.
    pub prefix: String,
}

impl Job<'_> {
    fn response(&self, kind: Option<epr::ResponseType>) -> proto::ExecutePlanResponse {
        proto::ExecutePlanResponse {
            session_id: self.session.session_id.clone(),
            server_side_session_id: self.session.server_side_id.clone(),
            operation_id: self.op.id.clone(),
            response_id: uuid::Uuid::new_v4().to_string(),
            response_type: kind,
            ..Default::default()
        }
    }

    fn push(&self, kind: epr::ResponseType) {
        self.op.push(self.response(Some(kind)));
    }

    /// Runs `df` as one fairway job.
    pub async fn collect(&self, df: DataFrame, what: &str) -> Result<Vec<RecordBatch>> {
        runner(self.engine.clone(), self.prefix.clone())(df, what.to_string()).await
    }

    /// Runs the plan and pushes its responses.
    pub async fn run(&self, plan: &proto::Plan) -> Result<()> {
        use proto::plan::OpType;
        match &plan.op_type {
            Some(OpType::Root(relation)) => self.relation(relation).await,
            Some(OpType::Command(command)) => self.command(command).await,
            Some(OpType::CompressedOperation(_)) => Err(SparkError::invalid_plan(
                "compressed plans are not supported \
                 (spark.connect.session.planCompression.threshold is -1)",
            )
            .with_class("CONNECT_INVALID_PLAN.CANNOT_PARSE")),
            None => Err(SparkError::invalid_plan("the plan has no root or command")),
        }
    }

    fn planner(&self) -> Planner<'_> {
        Planner::new(
            &self.engine,
            runner(self.engine.clone(), self.prefix.clone()),
            Arc::clone(&self.session.cache),
        )
    }

    async fn relation(&self, relation: &proto::Relation) -> Result<()> {
        let planner = self.planner();
        let what = describe(relation);
        let df = planner.relation(relation).await?;
        let schema = df.schema().as_arrow().clone();
        let batches = if matches!(
            relation.rel_type,
            Some(proto::relation::RelType::ShowString(_))
        ) {
            // `show` ran its job while planning; this is its one text cell.
            df.collect().await?
        } else {
            self.collect(df, &what).await?
        };
        self.send_rows(&Arc::new(schema), &batches)
    }

    /// The schema, the rows as Arrow batches of about
    /// [`MAX_BYTES_PER_RESPONSE`] each, then `result_complete`.
    fn send_rows(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let target = spark_arrow_schema(schema);
        let mut first = self.response(None);
        first.schema = Some(spark_schema(&target));
        self.op.push(first);
        let mut offset = 0i64;
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut pending_bytes = 0;
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            let batch = to_spark_batch(batch, &target)?;
            let rows = batch.num_rows();
            let per_row = (batch.get_array_memory_size() / rows).max(1);
            let mut start = 0;
            while start < rows {
                let room = (MAX_BYTES_PER_RESPONSE.saturating_sub(pending_bytes) / per_row).max(1);
                let len = room.min(rows - start);
                pending.push(batch.slice(start, len));
                pending_bytes += len * per_row;
                start += len;
                if pending_bytes >= MAX_BYTES_PER_RESPONSE {
                    offset = self.send_batches(&target, &mut pending, offset)?;
                    pending_bytes = 0;
                }
            }
        }
        // The last rows; an empty result still sends one (empty) batch.
        if !pending.is_empty() || offset == 0 {
            self.send_batches(&target, &mut pending, offset)?;
        }
        self.complete();
        Ok(())
    }

    fn send_batches(
        &self,
        schema: &SchemaRef,
        batches: &mut Vec<RecordBatch>,
        offset: i64,
    ) -> Result<i64> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        // A client expects one record batch per response (`concat` of no
        // batches is an empty one).
        let one = fairway_engine::arrow::compute::concat_batches(schema, batches.iter())
            .map_err(|e| SparkError::unsupported(format!("result batch: {e}")))?;
        let data = ipc_stream(schema, std::slice::from_ref(&one))?;
        batches.clear();
        self.push(epr::ResponseType::ArrowBatch(epr::ArrowBatch {
            row_count: rows as i64,
            data,
            start_offset: Some(offset),
            chunk_index: None,
            num_chunks_in_batch: None,
        }));
        Ok(offset + rows as i64)
    }

    fn complete(&self) {
        self.push(epr::ResponseType::ResultComplete(epr::ResultComplete {}));
    }

    async fn command(&self, command: &proto::Command) -> Result<()> {
        match &command.command_type {
            Some(CommandType::SqlCommand(sql)) => self.sql_command(sql).await,
            Some(CommandType::CreateDataframeView(view)) => {
                if view.is_global {
                    return Err(SparkError::unsupported(
                        "global temporary views (use createOrReplaceTempView)",
                    ));
                }
                let input = view
                    .input
                    .as_ref()
                    .ok_or_else(|| SparkError::invalid_plan("a view without input"))?;
                let planner = self.planner();
                let df = planner.relation(input).await?;
                let name = view_name(&view.name)?;
                let plan = df.into_parts().1;
                self.engine
                    .register_temp_view(&name, plan, view.replace)
                    .map_err(|e| {
                        if e.to_string().contains("already exists") {
                            SparkError::analysis(
                                "TEMP_TABLE_OR_VIEW_ALREADY_EXISTS",
                                format!("Cannot create the temporary view `{name}` because it already exists."),
                            )
                        } else {
                            e.into()
                        }
                    })?;
                self.complete();
                Ok(())
            }
            Some(CommandType::WriteOperation(write)) => self.write(write).await,
            // A client cleans its (empty) ML cache when it stops.
            Some(CommandType::MlCommand(ml))
                if matches!(ml.command, Some(proto::ml_command::Command::CleanCache(_))) =>
            {
                self.complete();
                Ok(())
            }
            Some(other) => Err(SparkError::unsupported(format!(
                "the command {}",
                format!("{other:?}").split('(').next().unwrap_or("?")
            ))),
            None => Err(SparkError::invalid_plan("a command without a type")),
        }
    }

    #[allow(deprecated)]
    async fn sql_command(&self, sql: &proto::SqlCommand) -> Result<()> {
        let text = match &sql.input {
            Some(proto::Relation {
                rel_type: Some(proto::relation::RelType::Sql(s)),
                ..
            }) => {
                refuse_sql_relation_args(s)?;
                s.query.clone()
            }
            Some(_) => {
                return Err(SparkError::invalid_plan(
                    "a SQL command whose input is not SQL",
                ));
            }
            None => {
                refuse_sql_args([
                    sql.args.len(),
                    sql.pos_args.len(),
                    sql.named_arguments.len(),
                    sql.pos_arguments.len(),
                ])?;
                sql.sql.clone()
            }
        };
        let result = self.sql_result(&text).await?;
        let relation = match result {
            SqlResult::Lazy => proto::Relation {
                common: None,
                rel_type: Some(proto::relation::RelType::Sql(proto::Sql {
                    query: text,
                    ..Default::default()
                })),
            },
            SqlResult::Rows(schema, batches) => local_relation(&schema, &batches)?,
        };
        self.push(epr::ResponseType::SqlCommandResult(epr::SqlCommandResult {
            relation: Some(relation),
        }));
        self.complete();
        Ok(())
    }

    /// A query stays a lazy SQL relation (run when the client acts on it);
    /// anything else (DDL, `SET`, `SHOW`, ...) runs now and returns its rows.
    async fn sql_result(&self, text: &str) -> Result<SqlResult> {
        if let Some(rows) = self.set_statement(text)? {
            return Ok(rows);
        }
        let statements = self.engine.parse_statements(text)?;
        if statements.is_empty() {
            return Err(SparkError::parse("no SQL statement given"));
        }
        // `CANCEL JOB n` is planned as a query of a table function that
        // cancels: it runs now, once, not each time the client plans it.
        let command = text
            .trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("cancel"));
        if statements.len() == 1
            && !command
            && let Statement::Statement(s) = &statements[0]
        {
            match s.as_ref() {
                ast::Statement::Query(_) => return Ok(SqlResult::Lazy),
                ast::Statement::ShowTables { .. } => return self.show_tables(),
                ast::Statement::ExplainTable { table_name, .. } => {
                    return self.describe(&table_name.to_string()).await;
                }
                _ => {}
            }
        }
        let mut last = None;
        for mut statement in statements {
            let what = one_line(&statement.to_string());
            crate::spark_sql::prepare(&self.engine, &mut statement).await;
            let df = self.engine.plan_statement(statement).await?;
            let output = self
                .engine
                .execute(df, &format!("{} {what}", self.prefix))
                .await?;
            last = Some(output);
        }
        let output = last.expect("at least one statement");
        Ok(SqlResult::Rows(output.schema, output.batches))
    }

    /// `SET`, `SET key` and `SET key=value`, on the session's settings
    /// (Spark's keys, `spark.scheduler.pool`, fairway's and DataFusion's).
    fn set_statement(&self, text: &str) -> Result<Option<SqlResult>> {
        let trimmed = text.trim().trim_end_matches(';').trim();
        let Some(rest) = trimmed
            .get(..3)
            .filter(|p| p.eq_ignore_ascii_case("set"))
            .map(|_| &trimmed[3..])
        else {
            return Ok(None);
        };
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return Ok(None);
        }
        let rest = rest.trim();
        let mut conf = self.session.conf.lock().expect("conf lock");
        let rows: Vec<(String, String)> = if rest.is_empty() || rest == "-v" {
            conf.all(&self.session.engine, "")
        } else if let Some((key, value)) = rest.split_once('=') {
            let key = key.trim().trim_matches('`').to_string();
            let value = unquote(value.trim());
            conf.set(&self.session.engine, &key, &value)?;
            vec![(key, value)]
        } else {
            let key = rest.trim_matches('`').to_string();
            let value = conf
                .get(&self.session.engine, &key)
                .unwrap_or_else(|| "<undefined>".to_string());
            vec![(key, value)]
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
        ]));
        let (keys, values): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(StringArray::from(values)),
            ],
        )
        .map_err(|e| SparkError::unsupported(e.to_string()))?;
        Ok(Some(SqlResult::Rows(schema, vec![batch])))
    }

    /// `DESCRIBE t` as Spark answers it: col_name, data_type (Spark's SQL
    /// type names), comment.
    async fn describe(&self, name: &str) -> Result<SqlResult> {
        let reference = table_reference(name)?;
        let provider = self
            .engine
            .context()
            .table_provider(reference)
            .await
            .map_err(|_| {
                SparkError::analysis(
                    "TABLE_OR_VIEW_NOT_FOUND",
                    format!("The table or view `{name}` cannot be found."),
                )
            })?;
        let schema = provider.schema();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let types: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| crate::types::sql_type_name(f.data_type()))
            .collect();
        let out = Arc::new(Schema::new(vec![
            Field::new("col_name", DataType::Utf8, false),
            Field::new("data_type", DataType::Utf8, false),
            Field::new("comment", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&out),
            vec![
                Arc::new(StringArray::from(names)),
                Arc::new(StringArray::from(types)),
                Arc::new(StringArray::from(vec![None::<&str>; schema.fields().len()])),
            ],
        )
        .map_err(|e| SparkError::unsupported(e.to_string()))?;
        Ok(SqlResult::Rows(out, vec![batch]))
    }

    /// `SHOW TABLES` as Spark answers it: namespace, tableName, isTemporary.
    fn show_tables(&self) -> Result<SqlResult> {
        let temp = self.engine.temp_view_names();
        let ctx = self.engine.context();
        let options = ctx.state().config_options().clone();
        let mut rows: Vec<(String, String, bool)> = Vec::new();
        if let Some(catalog) = ctx.catalog(&options.catalog.default_catalog)
            && let Some(schema) = catalog.schema(&options.catalog.default_schema)
        {
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                if !temp.contains(&name) {
                    rows.push(("default".to_string(), name, false));
                }
            }
        }
        rows.extend(temp.into_iter().map(|n| (String::new(), n, true)));
        let schema = Arc::new(Schema::new(vec![
            Field::new("namespace", DataType::Utf8, false),
            Field::new("tableName", DataType::Utf8, false),
            Field::new("isTemporary", DataType::Boolean, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
                )),
                Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
            ],
        )
        .map_err(|e| SparkError::unsupported(e.to_string()))?;
        Ok(SqlResult::Rows(schema, vec![batch]))
    }

    async fn write(&self, write: &proto::WriteOperation) -> Result<()> {
        use proto::write_operation::{SaveMode as M, SaveType};
        let path = match &write.save_type {
            Some(SaveType::Path(p)) => p.clone(),
            Some(SaveType::Table(_)) => {
                return Err(SparkError::unsupported(
                    "saveAsTable/insertInto (write to a path, or use CREATE TABLE ... AS in SQL)",
                ));
            }
            None => return Err(SparkError::illegal_argument("write needs a path")),
        };
        if !write.partitioning_columns.is_empty()
            || write.bucket_by.is_some()
            || !write.sort_column_names.is_empty()
            || !write.clustering_columns.is_empty()
        {
            return Err(SparkError::unsupported(
                "partitionBy, bucketBy, sortBy and clusterBy on writes",
            ));
        }
        let format = WriteFormat::parse(write.source.as_deref().unwrap_or("parquet"))?;
        let mode = match M::try_from(write.mode).unwrap_or(M::Unspecified) {
            M::Append => SaveMode::Append,
            M::Overwrite => SaveMode::Overwrite,
            M::Ignore => SaveMode::Ignore,
            M::ErrorIfExists | M::Unspecified => SaveMode::ErrorIfExists,
        };
        let option = |key: &str| {
            write
                .options
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        let options = WriteOptions {
            format,
            mode,
            header: option("header").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            delimiter: option("sep")
                .or_else(|| option("delimiter"))
                .and_then(|d| d.bytes().next())
                .unwrap_or(b','),
        };
        if fairway_engine::is_remote(&path) {
            return self.write_remote(write, &path, &options).await;
        }
        let local = path.strip_prefix("file://").unwrap_or(&path).to_string();
        if local.contains("://") {
            return Err(SparkError::unsupported(format!(
                "writing to {path} (local paths, s3://, s3a://, gs://, az:// and abfss:// URLs)"
            )));
        }
        let target = std::path::PathBuf::from(&local);
        // A refused or ignored write runs no job.
        if !crate::write::check_target(&target, mode)? {
            self.complete();
            return Ok(());
        }
        let (batches, schema) = self.write_input(write, &local).await?;
        let written = tokio::task::block_in_place(|| {
            crate::write::write(&target, &batches, &schema, &options)
        });
        written?;
        self.complete();
        Ok(())
    }

    /// The rows a write writes, run as a job named after the write.
    async fn write_input(
        &self,
        write: &proto::WriteOperation,
        target: &str,
    ) -> Result<(Vec<RecordBatch>, SchemaRef)> {
        let input = write
            .input
            .as_ref()
            .ok_or_else(|| SparkError::invalid_plan("a write without input"))?;
        let planner = self.planner();
        let df = planner.relation(input).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let what = format!(
            "write {} {target}: {}",
            write.source.as_deref().unwrap_or("parquet"),
            describe(input)
        );
        Ok((self.collect(df, &what).await?, schema))
    }

    /// `write` to an object store folder (see [`crate::write::write_remote`]).
    async fn write_remote(
        &self,
        write: &proto::WriteOperation,
        path: &str,
        options: &WriteOptions,
    ) -> Result<()> {
        use fairway_engine::datafusion::datasource::listing::ListingTableUrl;
        if path.starts_with("http://") || path.starts_with("https://") {
            return Err(SparkError::unsupported(format!(
                "writing to {path}: HTTP(S) URLs are read-only"
            )));
        }
        let folder = format!("{}/", path.trim_end_matches('/'));
        let url = ListingTableUrl::parse(&folder)
            .map_err(|e| SparkError::illegal_argument(format!("{path}: {e}")))?;
        let store = self
            .engine
            .context()
            .runtime_env()
            .object_store(&url)
            .map_err(|e| {
                SparkError::analysis(
                    "FILE_ERROR",
                    fairway_engine::EngineError::from(e).to_string(),
                )
            })?;
        // A refused or ignored write runs no job.
        if crate::write::check_remote(path, store.as_ref(), url.prefix(), options.mode)
            .await?
            .is_none()
        {
            self.complete();
            return Ok(());
        }
        let (batches, schema) = self.write_input(write, path).await?;
        crate::write::write_remote(
            path,
            store,
            url.prefix().clone(),
            &batches,
            &schema,
            options,
        )
        .await?;
        self.complete();
        Ok(())
    }
}

/// Runs DataFrames as fairway jobs of `engine`, described `PREFIX WHAT`.
pub fn runner(engine: Session, prefix: String) -> RunFn {
    Arc::new(move |df: DataFrame, what: String| {
        let engine = engine.clone();
        let description = format!("{prefix} {what}");
        Box::pin(async move { Ok(engine.execute(df, &description).await?.batches) })
    })
}

enum SqlResult {
    Lazy,
    Rows(SchemaRef, Vec<RecordBatch>),
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['\'', '"', '`'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// A view name as an unquoted SQL identifier would be stored.
fn view_name(name: &str) -> Result<String> {
    let reference = table_reference(name)?;
    match reference {
        fairway_engine::datafusion::common::TableReference::Bare { table } => Ok(table.to_string()),
        _ => Err(SparkError::analysis(
            "TEMP_VIEW_NAME_TOO_MANY_NAME_PARTS",
            format!("CREATE TEMPORARY VIEW expects a single-part view name, got `{name}`."),
        )),
    }
}

/// Rows as a `LocalRelation` (Arrow IPC stream), for `spark.sql` of
/// commands.
fn local_relation(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<proto::Relation> {
    let target = spark_arrow_schema(schema);
    let batches = batches
        .iter()
        .map(|b| to_spark_batch(b, &target))
        .collect::<Result<Vec<_>>>()?;
    let data = ipc_stream(&target, &batches)?;
    Ok(proto::Relation {
        common: None,
        rel_type: Some(proto::relation::RelType::LocalRelation(
            proto::LocalRelation {
                data: Some(data),
                schema: None,
            },
        )),
    })
}

/// `batches` as one Arrow IPC stream.
pub fn ipc_stream(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut data, schema)
            .map_err(|e| SparkError::unsupported(format!("Arrow IPC: {e}")))?;
        for batch in batches {
            writer
                .write(batch)
                .map_err(|e| SparkError::unsupported(format!("Arrow IPC: {e}")))?;
        }
        writer
            .finish()
            .map_err(|e| SparkError::unsupported(format!("Arrow IPC: {e}")))?;
    }
    Ok(data)
}
