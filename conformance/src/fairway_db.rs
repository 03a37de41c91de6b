//! fairway's stage engine as a sqllogictest database, set up with the
//! tables and functions of the suite's own context for each file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::Schema;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::planner::ExprPlanner;
use datafusion_sqllogictest::{
    DFColumnType, DFOutput, DFSqlLogicTestError, TestContext, convert_batches,
    convert_schema_to_types, is_spark_path,
};
use fairway_engine::{EngineConfig, EngineError, Session};
use sqllogictest::{AsyncDB, DBOutput};

/// fairway's stage engine as a sqllogictest database: each record runs as
/// `Session::sql` (stages, tasks, shuffle), its result normalised exactly
/// as DataFusion's driver normalises its own.
pub struct Fairway {
    pub session: Session,
    pub spark: bool,
}

#[async_trait]
impl AsyncDB for Fairway {
    type Error = DFSqlLogicTestError;
    type ColumnType = DFColumnType;

    async fn run(&mut self, sql: &str) -> Result<DFOutput, DFSqlLogicTestError> {
        let out = self.session.sql(sql).await.map_err(slt_error)?;
        let schema: &Schema = out.schema.as_ref();
        let types = convert_schema_to_types(schema.fields());
        let rows = convert_batches(schema, out.batches, self.spark)?;
        if rows.is_empty() && types.is_empty() {
            Ok(DBOutput::StatementComplete(0))
        } else {
            Ok(DBOutput::Rows { types, rows })
        }
    }

    fn engine_name(&self) -> &str {
        "fairway"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }

    async fn shutdown(&mut self) {}
}

/// DataFusion's own error where fairway's is one (under any context
/// fairway adds, such as the target of a failed write), so that
/// `statement error <message>` records compare the same text.
fn slt_error(e: EngineError) -> DFSqlLogicTestError {
    match e {
        EngineError::DataFusion(inner) => DFSqlLogicTestError::DataFusion(inner),
        EngineError::Context { source, .. } => slt_error(*source),
        other => DFSqlLogicTestError::Other(other.to_string()),
    }
}

/// A fairway session with the tables and functions the suite's context
/// for `relative` has (registered by DataFusion's `TestContext`).
pub async fn fairway_session(
    relative: &Path,
    slots: usize,
    partitions: usize,
) -> Result<Option<(Session, TestContext)>, String> {
    let Some(test_ctx) = TestContext::try_new_for_test_file(relative).await else {
        return Ok(None);
    };
    let mut config = EngineConfig::with_slots(slots).partitions(partitions);
    // The suite's catalog settings (cte.slt names its own default schema).
    let catalog_options = test_ctx
        .session_ctx()
        .state()
        .config_options()
        .catalog
        .clone();
    for (key, value) in [
        (
            "datafusion.catalog.default_catalog",
            &catalog_options.default_catalog,
        ),
        (
            "datafusion.catalog.default_schema",
            &catalog_options.default_schema,
        ),
    ] {
        config.set(key, value).map_err(|e| e.to_string())?;
    }
    let spark = is_spark_path(relative);
    if spark {
        config
            .set("datafusion.sql_parser.dialect", "Spark")
            .map_err(|e| e.to_string())?;
    }
    let session = Session::new(config).map_err(|e| e.to_string())?;
    // The suite context's SQL type planner, where it has one
    // (cast_extension_type_metadata.slt plans `CAST(... AS UUID)` with it).
    let type_planner = SessionStateBuilder::new_from_existing(test_ctx.session_ctx().state())
        .type_planner()
        .clone();
    let session = if spark || type_planner.is_some() {
        session.isolated_client_with(|mut builder| {
            // Spark's SQL syntax planner (`SUBSTRING`, ...) first, as the
            // suite's context has it for spark/ files.
            if spark {
                let mut planners: Vec<Arc<dyn ExprPlanner>> =
                    vec![Arc::new(datafusion_spark::planner::SparkFunctionPlanner)];
                if let Some(existing) = builder.expr_planners() {
                    planners.extend(existing.iter().cloned());
                }
                builder = builder.with_expr_planners(planners);
            }
            match type_planner {
                Some(planner) => builder.with_type_planner(planner),
                None => builder,
            }
        })
    } else {
        session
    };
    let source = test_ctx.session_ctx();
    let target = session.context();
    let state = source.state();
    // Every function of the suite's context, its own versions winning
    // (Spark's `floor`, `round`, ... in spark/ files; a file's test UDFs).
    for udf in state.scalar_functions().values() {
        target.register_udf(udf.as_ref().clone());
    }
    for udaf in state.aggregate_functions().values() {
        target.register_udaf(udaf.as_ref().clone());
    }
    for udwf in state.window_functions().values() {
        target.register_udwf(udwf.as_ref().clone());
    }
    if spark {
        // Spark's versions win over DataFusion's of the same name or
        // alias, as in the suite's context (the loops above take the
        // context's functions in no particular order).
        for udf in datafusion_spark::all_default_scalar_functions() {
            target.register_udf(udf.as_ref().clone());
        }
        for udaf in datafusion_spark::all_default_aggregate_functions() {
            target.register_udaf(udaf.as_ref().clone());
        }
        for udwf in datafusion_spark::all_default_window_functions() {
            target.register_udwf(udwf.as_ref().clone());
        }
    }
    let options = state.config_options();
    let catalog_name = &options.catalog.default_catalog;
    // Catalogs fairway lacks (information_schema_columns.slt's default
    // catalog `my_catalog`): shared whole.
    for name in source.catalog_names() {
        if target.catalog(&name).is_none()
            && let Some(catalog) = source.catalog(&name)
        {
            target.register_catalog(&name, catalog);
        }
    }
    if let (Some(from), Some(into)) = (source.catalog(catalog_name), target.catalog(catalog_name)) {
        for schema_name in from.schema_names() {
            let Some(schema) = from.schema(&schema_name) else {
                continue;
            };
            match into.schema(&schema_name) {
                // A schema fairway has too (public): its tables.
                Some(existing) => {
                    for table in schema.table_names() {
                        if let Ok(Some(provider)) = schema.table(&table).await
                            && !existing.table_exist(&table)
                        {
                            let _ = existing.register_table(table, provider);
                        }
                    }
                }
                // A schema of the suite's own (a strict provider): shared.
                None => {
                    let _ = into.register_schema(&schema_name, schema);
                }
            }
        }
    }
    Ok(Some((session, test_ctx)))
}
