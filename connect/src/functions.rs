//! The Spark functions and DataFrame methods fairway connect supports: one
//! list each, which the planner resolves names with, every connect session
//! registers under Spark's names (so `spark.sql` text finds them too), and
//! the README's tables are generated from (`functions_table`,
//! `methods_table`; a test keeps the README equal to them).
//!
//! A function comes from one of four places: `datafusion-spark` (Spark's
//! semantics, maintained by the DataFusion project), DataFusion itself
//! (where its semantics are Spark's), this crate's [`crate::udf`], or the
//! planner (a rewrite into other expressions, in [`crate::relation`]). A
//! name not in the list is refused with `UNRESOLVED_ROUTINE`: a function
//! whose Spark meaning has not been checked never gives an answer.

use std::sync::Arc;

use fairway_engine::arrow::datatypes::DataType;
use fairway_engine::datafusion::common::ScalarValue;
use fairway_engine::datafusion::logical_expr::expr::{self, ScalarFunction};
use fairway_engine::datafusion::logical_expr::lit;

use crate::error::{Result, SparkError};
use fairway_engine::datafusion::common::{DFSchema, Result as DfResult};
use fairway_engine::datafusion::execution::SessionStateBuilder;
use fairway_engine::datafusion::logical_expr::planner::{
    ExprPlanner, PlannerResult, RawAggregateExpr, RawBinaryExpr,
};
use fairway_engine::datafusion::logical_expr::{
    AggregateUDF, Expr, ExprSchemable, Operator, ScalarUDF, WindowUDF, binary_expr, cast,
};
use fairway_engine::datafusion::prelude::SessionContext;

/// Where a function's implementation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `datafusion-spark`'s function of the same name.
    Spark,
    /// DataFusion's function of the given name.
    DataFusion(&'static str),
    /// This crate's [`crate::udf`].
    Fairway,
    /// A rewrite in the planner.
    Planner,
}

/// One supported function.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub name: &'static str,
    pub group: &'static str,
    pub source: Source,
    /// A difference from Spark a user can see, if any.
    pub note: &'static str,
}

const fn f(name: &'static str, group: &'static str, source: Source) -> Function {
    Function {
        name,
        group,
        source,
        note: "",
    }
}

const fn n(
    name: &'static str,
    group: &'static str,
    source: Source,
    note: &'static str,
) -> Function {
    Function {
        name,
        group,
        source,
        note,
    }
}

use Source::{DataFusion as Df, Fairway, Planner, Spark};

const AGG: &str = "aggregate";
const WIN: &str = "window";
const STR: &str = "string";
const DT: &str = "date and time";
const MATH: &str = "math";
const NULL: &str = "null handling";
const ARR: &str = "array";
const COND: &str = "conditional and predicates";
const MISC: &str = "other";

/// Every function name fairway connect resolves (`pyspark.sql.functions`
/// names and their Spark SQL spellings).
pub const FUNCTIONS: &[Function] = &[
    // aggregates
    f("count", AGG, Planner),
    f("count_distinct", AGG, Planner),
    f("countdistinct", AGG, Planner),
    f("sum", AGG, Df("sum")),
    f("sum_distinct", AGG, Planner),
    f("avg", AGG, Df("avg")),
    f("mean", AGG, Df("avg")),
    f("min", AGG, Df("min")),
    f("max", AGG, Df("max")),
    n(
        "first",
        AGG,
        Planner,
        "without an order the row is any row of the group, as in Spark",
    ),
    n(
        "last",
        AGG,
        Planner,
        "without an order the row is any row of the group, as in Spark",
    ),
    f("any_value", AGG, Df("any_value")),
    f("collect_list", AGG, Spark),
    f("collect_set", AGG, Spark),
    n(
        "approx_count_distinct",
        AGG,
        Planner,
        "HyperLogLog; the `rsd` argument is ignored",
    ),
    n(
        "percentile_approx",
        AGG,
        Planner,
        "exact: the smallest value with at least the fraction of values at or below it",
    ),
    n(
        "approx_percentile",
        AGG,
        Planner,
        "exact, as `percentile_approx`",
    ),
    f("median", AGG, Df("median")),
    f("stddev", AGG, Df("stddev")),
    f("stddev_samp", AGG, Df("stddev")),
    f("std", AGG, Df("stddev")),
    f("stddev_pop", AGG, Df("stddev_pop")),
    f("variance", AGG, Df("var_samp")),
    f("var_samp", AGG, Df("var_samp")),
    f("var_pop", AGG, Df("var_pop")),
    f("corr", AGG, Df("corr")),
    f("covar_samp", AGG, Df("covar_samp")),
    f("covar_pop", AGG, Df("covar_pop")),
    f("bool_and", AGG, Df("bool_and")),
    f("every", AGG, Df("bool_and")),
    f("bool_or", AGG, Df("bool_or")),
    f("some", AGG, Df("bool_or")),
    f("grouping", AGG, Df("grouping")),
    // window
    f("row_number", WIN, Df("row_number")),
    f("rank", WIN, Df("rank")),
    f("dense_rank", WIN, Df("dense_rank")),
    f("percent_rank", WIN, Df("percent_rank")),
    f("cume_dist", WIN, Df("cume_dist")),
    f("ntile", WIN, Df("ntile")),
    f("lag", WIN, Planner),
    f("lead", WIN, Planner),
    f("nth_value", WIN, Df("nth_value")),
    // strings
    f("concat", STR, Spark),
    f("concat_ws", STR, Spark),
    f("upper", STR, Df("upper")),
    f("ucase", STR, Df("upper")),
    f("lower", STR, Df("lower")),
    f("lcase", STR, Df("lower")),
    f("trim", STR, Df("btrim")),
    f("ltrim", STR, Df("ltrim")),
    f("rtrim", STR, Df("rtrim")),
    f("substring", STR, Spark),
    f("substr", STR, Spark),
    f("length", STR, Spark),
    f("char_length", STR, Spark),
    f("character_length", STR, Spark),
    f("lpad", STR, Df("lpad")),
    f("rpad", STR, Df("rpad")),
    f("repeat", STR, Df("repeat")),
    f("reverse", STR, Df("reverse")),
    f("initcap", STR, Df("initcap")),
    f("instr", STR, Df("strpos")),
    f("translate", STR, Df("translate")),
    f("replace", STR, Df("replace")),
    f("left", STR, Df("left")),
    f("right", STR, Df("right")),
    f("startswith", STR, Df("starts_with")),
    f("endswith", STR, Df("ends_with")),
    f("contains", STR, Df("contains")),
    f("levenshtein", STR, Df("levenshtein")),
    f("ascii", STR, Spark),
    f("base64", STR, Spark),
    f("unbase64", STR, Spark),
    f("format_string", STR, Spark),
    f("soundex", STR, Spark),
    f("char", STR, Spark),
    f("chr", STR, Spark),
    f("elt", STR, Spark),
    f("space", STR, Spark),
    f("substring_index", STR, Df("substr_index")),
    f("bit_length", STR, Df("bit_length")),
    f("octet_length", STR, Df("octet_length")),
    f("parse_url", STR, Spark),
    f("url_encode", STR, Spark),
    f("url_decode", STR, Spark),
    n(
        "split",
        STR,
        Fairway,
        "Rust regular expressions: no look-around or back-references",
    ),
    n(
        "regexp_replace",
        STR,
        Fairway,
        "Rust regular expressions; `$1` and `\\$` replacements as in Java",
    ),
    n("regexp_extract", STR, Fairway, "Rust regular expressions"),
    // hashes
    f("md5", MISC, Df("md5")),
    f("sha1", MISC, Spark),
    f("sha2", MISC, Spark),
    f("crc32", MISC, Spark),
    f("xxhash64", MISC, Spark),
    f("hex", MISC, Spark),
    f("unhex", MISC, Spark),
    n(
        "monotonically_increasing_id",
        MISC,
        Fairway,
        "unique, non-negative and increasing within a partition, without Spark's \
         partition-id bits; counted from 0 per DataFrame query, on from the last value in \
         `spark.sql` text",
    ),
    // date and time
    n(
        "date_format",
        DT,
        Fairway,
        "Spark's pattern letters except `w W k K Q q e c F` and one or two `S`",
    ),
    f("to_date", DT, Fairway),
    f("to_timestamp", DT, Fairway),
    f("try_to_date", DT, Fairway),
    f("try_to_timestamp", DT, Fairway),
    f("year", DT, Fairway),
    f("quarter", DT, Fairway),
    f("month", DT, Fairway),
    f("day", DT, Fairway),
    f("dayofmonth", DT, Fairway),
    f("dayofweek", DT, Fairway),
    f("weekday", DT, Fairway),
    f("dayofyear", DT, Fairway),
    f("weekofyear", DT, Fairway),
    f("hour", DT, Fairway),
    f("minute", DT, Fairway),
    f("second", DT, Fairway),
    f("datediff", DT, Spark),
    f("date_diff", DT, Spark),
    f("date_add", DT, Spark),
    f("date_sub", DT, Spark),
    f("add_months", DT, Spark),
    f("months_between", DT, Fairway),
    f("trunc", DT, Spark),
    f("date_trunc", DT, Spark),
    f("last_day", DT, Spark),
    f("next_day", DT, Spark),
    f("make_date", DT, Df("make_date")),
    f("from_utc_timestamp", DT, Spark),
    f("to_utc_timestamp", DT, Spark),
    f("unix_date", DT, Spark),
    f("unix_micros", DT, Spark),
    f("unix_millis", DT, Spark),
    f("unix_seconds", DT, Spark),
    f("current_date", DT, Df("current_date")),
    f("curdate", DT, Df("current_date")),
    f("current_timestamp", DT, Df("now")),
    f("now", DT, Df("now")),
    // math
    f("round", MATH, Fairway),
    f("bround", MATH, Fairway),
    f("floor", MATH, Spark),
    f("ceil", MATH, Spark),
    f("ceiling", MATH, Spark),
    f("abs", MATH, Spark),
    f("pow", MATH, Spark),
    f("power", MATH, Spark),
    f("sqrt", MATH, Df("sqrt")),
    f("cbrt", MATH, Df("cbrt")),
    f("exp", MATH, Df("exp")),
    f("expm1", MATH, Spark),
    f("log", MATH, Fairway),
    f("ln", MATH, Fairway),
    f("log10", MATH, Fairway),
    f("log2", MATH, Fairway),
    f("signum", MATH, Df("signum")),
    f("sign", MATH, Df("signum")),
    f("sin", MATH, Df("sin")),
    f("cos", MATH, Df("cos")),
    f("tan", MATH, Df("tan")),
    f("asin", MATH, Df("asin")),
    f("acos", MATH, Df("acos")),
    f("atan", MATH, Df("atan")),
    f("atan2", MATH, Spark),
    f("sinh", MATH, Df("sinh")),
    f("cosh", MATH, Df("cosh")),
    f("tanh", MATH, Df("tanh")),
    f("asinh", MATH, Df("asinh")),
    f("acosh", MATH, Df("acosh")),
    f("atanh", MATH, Df("atanh")),
    f("cot", MATH, Df("cot")),
    f("csc", MATH, Spark),
    f("sec", MATH, Spark),
    f("rint", MATH, Spark),
    f("bin", MATH, Spark),
    f("mod", MATH, Spark),
    f("width_bucket", MATH, Spark),
    f("bit_count", MATH, Spark),
    f("bit_get", MATH, Spark),
    f("bitwise_not", MATH, Spark),
    f("degrees", MATH, Df("degrees")),
    f("radians", MATH, Df("radians")),
    f("pi", MATH, Df("pi")),
    f("pmod", MATH, Spark),
    f("factorial", MATH, Spark),
    f("hypot", MATH, Spark),
    f("greatest", MATH, Df("greatest")),
    f("least", MATH, Df("least")),
    f("isnan", MATH, Df("isnan")),
    f("nanvl", MATH, Df("nanvl")),
    // nulls
    f("coalesce", NULL, Df("coalesce")),
    f("nvl", NULL, Df("nvl")),
    f("ifnull", NULL, Df("nvl")),
    f("nvl2", NULL, Df("nvl2")),
    f("nullif", NULL, Df("nullif")),
    f("isnull", NULL, Planner),
    f("isnotnull", NULL, Planner),
    // arrays
    f("array", ARR, Spark),
    f("size", ARR, Spark),
    f("array_contains", ARR, Spark),
    f("slice", ARR, Spark),
    f("array_repeat", ARR, Spark),
    f("array_distinct", ARR, Df("array_distinct")),
    f("element_at", ARR, Df("array_element")),
    f("array_join", ARR, Df("array_to_string")),
    f("flatten", ARR, Df("flatten")),
    f("sort_array", ARR, Planner),
    f("array_max", ARR, Df("array_max")),
    f("array_min", ARR, Df("array_min")),
    f("array_union", ARR, Df("array_union")),
    f("array_intersect", ARR, Df("array_intersect")),
    f("array_except", ARR, Df("array_except")),
    f("array_remove", ARR, Df("array_remove_all")),
    n(
        "explode",
        ARR,
        Planner,
        "in `select` and `withColumn`, one per projection",
    ),
    n("explode_outer", ARR, Planner, "as `explode`"),
    // conditionals and predicates
    f("when", COND, Planner),
    f("if", COND, Spark),
    f("in", COND, Planner),
    f("like", COND, Planner),
    f("ilike", COND, Planner),
    n("rlike", COND, Planner, "Rust regular expressions"),
    n("regexp", COND, Planner, "Rust regular expressions"),
    n("regexp_like", COND, Planner, "Rust regular expressions"),
];

/// The entry for `name` (any case).
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// DataFrame methods, the relation they send and what fairway does.
pub const METHODS: &[(&str, &str)] = &[
    (
        "`spark.sql`, `spark.table`, `spark.read.*`, `spark.range`, `spark.createDataFrame`",
        "",
    ),
    ("`select`, `selectExpr`, `df[...]`, `df.col`", ""),
    (
        "`col[i]`, `getItem(i)`, `col[\"f\"]`, `getField(\"f\")`",
        "an array's item from 0, as Spark; a struct's field or a map's value",
    ),
    ("`filter`/`where` (a column or SQL text)", ""),
    (
        "`withColumn(s)`, `withColumn(s)Renamed`, `drop`, `toDF`, `alias`, `to(schema)`",
        "",
    ),
    (
        "`groupBy(...).agg(...)`, `agg`, `count`, `sum`, ... on grouped data",
        "aggregates may be nested in expressions (`F.sum(a) / F.sum(b)`)",
    ),
    ("`rollup`, `cube`, `groupingSets`", ""),
    (
        "`groupBy(...).pivot(col[, values])`",
        "without values, one job first finds them (sorted, as Spark)",
    ),
    (
        "`join` (inner, left, right, full, left_semi, left_anti, cross; `on` names, a name, or a condition), `crossJoin`",
        "a chain of joins on the same keys is one balanced merge",
    ),
    (
        "`orderBy`/`sort` (asc, desc, nulls first/last), `limit`, `offset`, `first`, `head`, `take`, `collect`, `toPandas`, `show`",
        "",
    ),
    ("`distinct`, `dropDuplicates([subset])`", ""),
    (
        "`union`, `unionAll`, `unionByName(allowMissingColumns)`, `intersect`, `intersectAll`, `subtract`, `exceptAll`",
        "",
    ),
    ("`na.fill`/`fillna`, `na.drop`/`dropna`", ""),
    (
        "`describe([cols])`",
        "count, mean, stddev, min, max of the numeric and string columns, as strings",
    ),
    (
        "`sample(fraction, seed)`",
        "a Bernoulli sample keyed on a hash of each row and the seed: the same seed gives the same rows on the same data in any partitioning; `withReplacement=True` is refused",
    ),
    (
        "`repartition`, `coalesce`, `hint`",
        "accepted; fairway's planner chooses the partitions",
    ),
    (
        "`cache`, `persist`, `unpersist`",
        "materialised once per session in memory, spilled to disk (Arrow IPC) past the session's cache budget",
    ),
    (
        "`Window.partitionBy().orderBy().rowsBetween()/rangeBetween()` with window and aggregate functions",
        "",
    ),
    (
        "`explain`, `printSchema`, `schema`, `columns`, `dtypes`, `isLocal`, `inputFiles`, `sameSemantics`, `semanticHash`",
        "",
    ),
    (
        "`createOrReplaceTempView`, `write.parquet/csv/json`, `write.mode`",
        "",
    ),
];

/// Registers the Spark functions of [`FUNCTIONS`] in `ctx` under Spark's
/// names, replacing DataFusion's where they differ.
pub fn register(ctx: &SessionContext) {
    let spark_scalars = datafusion_spark::all_default_scalar_functions();
    let spark_aggregates = datafusion_spark::all_default_aggregate_functions();
    for function in FUNCTIONS {
        if function.source != Spark {
            continue;
        }
        if let Some(udf) = spark_scalars
            .iter()
            .find(|u| names(u.name(), u.aliases(), function.name))
        {
            let udf = match COERCED.iter().find(|(n, _)| *n == function.name) {
                Some((_, types)) => Arc::new(crate::udf::coerced(Arc::clone(udf), types)),
                None => Arc::clone(udf),
            };
            register_scalar(ctx, &udf, function.name);
        } else if let Some(udaf) = spark_aggregates
            .iter()
            .find(|u| names(u.name(), u.aliases(), function.name))
        {
            register_aggregate(ctx, udaf, function.name);
        }
    }
    for udf in crate::udf::all() {
        ctx.register_udf(udf);
    }
    // Spark's aggregate names in SQL text.
    for (name, target) in SQL_ALIASES {
        if let Some(udaf) = state_aggregate(ctx, target) {
            register_aggregate(ctx, &udaf, name);
        }
    }
    // DataFusion's functions under Spark's names.
    let state = ctx.state();
    for function in FUNCTIONS {
        let Df(target) = function.source else {
            continue;
        };
        if target == function.name {
            continue;
        }
        if let Some(udf) = state.scalar_functions().get(target) {
            register_scalar(ctx, udf, function.name);
        } else if let Some(udaf) = state.aggregate_functions().get(target) {
            register_aggregate(ctx, udaf, function.name);
        } else if let Some(udwf) = state.window_functions().get(target) {
            let udwf: WindowUDF = udwf.as_ref().clone().with_aliases([function.name]);
            ctx.register_udwf(udwf);
        }
    }
}

/// Spark names in SQL text for functions the DataFrame planner rewrites.
const SQL_ALIASES: &[(&str, &str)] = &[
    ("first", "first_value"),
    ("last", "last_value"),
    ("approx_count_distinct", "approx_distinct"),
    // Planned as fairway's exact percentile (`plan_aggregate`).
    ("percentile_approx", "approx_percentile_cont"),
    ("approx_percentile", "approx_percentile_cont"),
];

fn state_aggregate(ctx: &SessionContext, name: &str) -> Option<Arc<AggregateUDF>> {
    ctx.state().aggregate_functions().get(name).cloned()
}

/// The session state of a connect session: Spark's SQL operators and
/// `SUBSTRING`/`EXTRACT` syntax planned before DataFusion's.
pub fn planners(mut builder: SessionStateBuilder) -> SessionStateBuilder {
    let mut planners: Vec<Arc<dyn ExprPlanner>> = vec![
        Arc::new(SparkOperators),
        Arc::new(datafusion_spark::planner::SparkFunctionPlanner),
    ];
    if let Some(existing) = builder.expr_planners() {
        planners.extend(existing.iter().cloned());
    }
    builder.with_expr_planners(planners)
}

/// Spark's `/` in SQL text: doubles unless a side is a decimal
/// (`7 / 2` is `3.5`), as the DataFrame planner divides.
#[derive(Debug)]
struct SparkOperators;

impl ExprPlanner for SparkOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawBinaryExpr>> {
        use fairway_engine::datafusion::sql::sqlparser::ast::BinaryOperator;
        if expr.op != BinaryOperator::Divide {
            return Ok(PlannerResult::Original(expr));
        }
        let kind = |e: &Expr| e.get_type(schema).ok();
        match (kind(&expr.left), kind(&expr.right)) {
            (Some(l), Some(r))
                if (l.is_numeric() || l == DataType::Null)
                    && (r.is_numeric() || r == DataType::Null)
                    && !matches!(l, DataType::Decimal128(..) | DataType::Decimal256(..))
                    && !matches!(r, DataType::Decimal128(..) | DataType::Decimal256(..)) =>
            {
                Ok(PlannerResult::Planned(binary_expr(
                    cast(expr.left, DataType::Float64),
                    Operator::Divide,
                    cast(expr.right, DataType::Float64),
                )))
            }
            _ => Ok(PlannerResult::Original(expr)),
        }
    }

    /// `first(x, true)` / `last(x, true)`: ignore NULLs.
    fn plan_aggregate(
        &self,
        mut expr: RawAggregateExpr,
    ) -> DfResult<PlannerResult<RawAggregateExpr>> {
        use fairway_engine::datafusion::common::ScalarValue;
        let name = expr.func.name();
        // Spark's percentile_approx(x, p[, accuracy]), not DataFusion's
        // approx_percentile_cont(p) WITHIN GROUP (ORDER BY x).
        if name == "approx_percentile_cont" && expr.args.len() >= 2 && expr.order_by.is_empty() {
            return percentile_expr("percentile_approx", expr.args)
                .map(PlannerResult::Planned)
                .map_err(|e| fairway_engine::datafusion::error::DataFusionError::Plan(e.message));
        }
        if (name == "first_value" || name == "last_value")
            && expr.args.len() == 2
            && let Expr::Literal(ScalarValue::Boolean(Some(ignore)), _) = &expr.args[1]
        {
            if *ignore {
                expr.null_treatment = Some(
                    fairway_engine::datafusion::sql::sqlparser::ast::NullTreatment::IgnoreNulls
                        .into(),
                );
            }
            expr.args.truncate(1);
        }
        Ok(PlannerResult::Original(expr))
    }
}

/// `datafusion-spark` functions whose arguments are cast as Spark casts
/// them (an integer literal of SQL text is a BIGINT; a date may be a
/// string or a timestamp).
const COERCED: &[(&str, &[DataType])] = &[
    ("date_add", &[DataType::Date32, DataType::Int32]),
    ("date_sub", &[DataType::Date32, DataType::Int32]),
    ("add_months", &[DataType::Date32, DataType::Int32]),
    ("datediff", &[DataType::Date32, DataType::Date32]),
    ("date_diff", &[DataType::Date32, DataType::Date32]),
    ("last_day", &[DataType::Date32]),
    ("next_day", &[DataType::Date32, DataType::Utf8]),
    ("trunc", &[DataType::Date32, DataType::Utf8]),
];

fn names(name: &str, aliases: &[String], want: &str) -> bool {
    name == want || aliases.iter().any(|a| a == want)
}

fn register_scalar(ctx: &SessionContext, udf: &Arc<ScalarUDF>, name: &'static str) {
    let udf = if udf.name() == name {
        udf.as_ref().clone()
    } else {
        udf.as_ref().clone().with_aliases([name])
    };
    ctx.register_udf(udf);
}

fn register_aggregate(ctx: &SessionContext, udaf: &Arc<AggregateUDF>, name: &'static str) {
    let udaf = if udaf.name() == name {
        udaf.as_ref().clone()
    } else {
        udaf.as_ref().clone().with_aliases([name])
    };
    ctx.register_udaf(udaf);
}

/// The README's table of functions, by group.
pub fn functions_table() -> String {
    let mut groups: Vec<&str> = Vec::new();
    for f in FUNCTIONS {
        if !groups.contains(&f.group) {
            groups.push(f.group);
        }
    }
    let mut out = String::from("| Group | Functions |\n|---|---|\n");
    let mut notes = Vec::new();
    for group in groups {
        let mut names: Vec<String> = Vec::new();
        for f in FUNCTIONS.iter().filter(|f| f.group == group) {
            if f.note.is_empty() {
                names.push(format!("`{}`", f.name));
            } else {
                notes.push(format!("`{}`: {}", f.name, f.note));
                names.push(format!("`{}`[^{}]", f.name, notes.len()));
            }
        }
        out.push_str(&format!("| {group} | {} |\n", names.join(", ")));
    }
    out.push('\n');
    for (i, note) in notes.iter().enumerate() {
        out.push_str(&format!("[^{}]: {note}\n", i + 1));
    }
    out
}

/// The README's table of DataFrame methods.
pub fn methods_table() -> String {
    let mut out = String::from("| DataFrame methods | Notes |\n|---|---|\n");
    for (methods, note) in METHODS {
        out.push_str(&format!("| {methods} | {note} |\n"));
    }
    out
}

/// `percentile_approx(col, p[, accuracy])`, exactly: the value at
/// rank `ceil(p * n)` of the sorted non-NULL values (at least the
/// first), for `p` a number or an array of numbers.
pub fn percentile_expr(name: &str, mut args: Vec<Expr>) -> Result<Expr> {
    if args.len() < 2 {
        return Err(SparkError::invalid_plan(format!(
            "{name} takes a column and a percentage"
        )));
    }
    args.truncate(2);
    let mut p = args.pop().expect("two arguments");
    let column = args.pop().expect("two arguments");
    // A list of percentages comes as array(lit, lit, ...).
    if let Expr::ScalarFunction(f) = &p
        && matches!(f.func.name(), "array" | "make_array")
        && !f.args.is_empty()
        && f.args.iter().all(|a| matches!(a, Expr::Literal(..)))
    {
        let values: Vec<ScalarValue> = f
            .args
            .iter()
            .map(|a| match a {
                Expr::Literal(v, _) => v.cast_to(&DataType::Float64).unwrap_or(ScalarValue::Null),
                _ => ScalarValue::Null,
            })
            .collect();
        p = lit(ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &DataType::Float64,
        )));
    }
    let fractions: Vec<f64> = match &p {
        Expr::Literal(ScalarValue::List(list), _) => {
            let values = list.value(0);
            let values = fairway_engine::arrow::compute::cast(&values, &DataType::Float64)
                .map_err(|e| SparkError::invalid_plan(e.to_string()))?;
            (0..values.len())
                .map(|i| match ScalarValue::try_from_array(&values, i) {
                    Ok(ScalarValue::Float64(Some(v))) => Ok(v),
                    _ => Err(SparkError::invalid_plan(format!(
                        "{name}: percentages must be numbers"
                    ))),
                })
                .collect::<Result<_>>()?
        }
        Expr::Literal(v, _) => match v.cast_to(&DataType::Float64) {
            Ok(ScalarValue::Float64(Some(v))) => vec![v],
            _ => {
                return Err(SparkError::invalid_plan(format!(
                    "{name}: the percentage must be a number"
                )));
            }
        },
        _ => {
            return Err(SparkError::invalid_plan(format!(
                "{name}: the percentage must be a constant"
            )));
        }
    };
    if let Some(bad) = fractions.iter().find(|f| !(0.0..=1.0).contains(*f)) {
        return Err(SparkError::analysis(
            "DATATYPE_MISMATCH.VALUE_OUT_OF_RANGE",
            format!("{name}: the percentage {bad} must be between 0.0 and 1.0"),
        ));
    }
    let sorted = Expr::AggregateFunction(expr::AggregateFunction::new_udf(
        fairway_engine::datafusion::functions_aggregate::array_agg::array_agg_udaf(),
        vec![column.clone()],
        false,
        Some(Box::new(column.clone().is_not_null())),
        vec![column.clone().sort(true, false)],
        None,
    ));
    let count = fairway_engine::datafusion::functions_aggregate::expr_fn::count(column);
    let element = fairway_engine::datafusion::functions_nested::extract::array_element_udf();
    let greatest = fairway_engine::datafusion::functions::core::greatest();
    let ceil = fairway_engine::datafusion::functions::math::ceil();
    let at = |f: f64| -> Expr {
        // Spark's rank: ceil(f * n), in doubles.
        let rank = cast(
            Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::clone(&ceil),
                vec![binary_expr(
                    cast(count.clone(), DataType::Float64),
                    Operator::Multiply,
                    lit(f),
                )],
            )),
            DataType::Int64,
        );
        let rank = Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::clone(&greatest),
            vec![rank, lit(1i64)],
        ));
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::clone(&element),
            vec![sorted.clone(), rank],
        ))
    };
    Ok(match &p {
        Expr::Literal(ScalarValue::List(_), _) => Expr::ScalarFunction(ScalarFunction::new_udf(
            fairway_engine::datafusion::functions_nested::make_array::make_array_udf(),
            fractions.iter().map(|f| at(*f)).collect(),
        )),
        _ => at(fractions[0]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_function_resolves_in_a_connect_session() {
        let ctx = SessionContext::new();
        register(&ctx);
        let state = ctx.state();
        for function in FUNCTIONS {
            if function.source == Planner {
                continue;
            }
            let found = state.scalar_functions().contains_key(function.name)
                || state.aggregate_functions().contains_key(function.name)
                || state.window_functions().contains_key(function.name);
            assert!(
                found,
                "{} ({:?}) is not registered",
                function.name, function.source
            );
        }
    }

    #[test]
    fn names_are_listed_once() {
        for (i, a) in FUNCTIONS.iter().enumerate() {
            assert!(
                FUNCTIONS[i + 1..].iter().all(|b| b.name != a.name),
                "{} is listed twice",
                a.name
            );
        }
    }

    /// The README's tables are the ones generated here; `FAIRWAY_BLESS=1`
    /// rewrites them.
    #[test]
    fn the_readme_tables_are_generated_from_these_lists() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let mut updated = readme.clone();
        for (marker, table) in [
            ("connect-functions", functions_table()),
            ("connect-methods", methods_table()),
        ] {
            let start = format!("<!-- {marker}:start -->\n");
            let end = format!("<!-- {marker}:end -->");
            let (Some(a), Some(b)) = (updated.find(&start), updated.find(&end)) else {
                panic!("README.md has no {start} ... {end} section");
            };
            updated.replace_range(a + start.len()..b, &table);
        }
        if updated != readme {
            if std::env::var_os("FAIRWAY_BLESS").is_some() {
                std::fs::write(&path, updated).expect("write README.md");
            } else {
                panic!(
                    "README.md's connect tables differ from connect/src/functions.rs: run \
                     FAIRWAY_BLESS=1 cargo test -p fairway-connect --lib readme"
                );
            }
        }
    }
}
