"""pyspark.sql.functions through `fairway connect`, group by group: aggregates, strings,
dates and times, math, NULL handling, arrays, literals, expressions, casts, predicates
and arithmetic, each as DataFrame `F.*` calls and, where Spark SQL has the same
names, in spark.sql text.

Each test names its reference: DuckDB (TPC-H parquet files through the `duck`
fixture, or the same hand-written rows in an in-memory DuckDB), or values computed
here by hand where the answer follows a Spark rule (stated next to it). Spark 4
runs with spark.sql.ansi.enabled=true; no test depends on a non-ANSI answer."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Sequence

import duckdb
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    NullType,
    StringType,
    TimestampType,
)

from conftest import assert_frames_equal, duck_df, duck_scalar

# ---------------------------------------------------------------- helpers

DUCK_TYPES = {
    "int": "INTEGER",
    "bigint": "BIGINT",
    "string": "VARCHAR",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


def duck_table(schema: str, rows: Sequence[tuple], name: str = "t") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding `rows` as table `name` (flat Spark DDL schema only):
    the independent reference for hand-written frames."""
    cols = [c.strip().split(None, 1) for c in schema.split(",")]
    con = duckdb.connect()
    con.execute(f"CREATE TABLE {name} ({', '.join(f'{n} {DUCK_TYPES[t.strip().lower()]}' for n, t in cols)})")
    marks = ", ".join("?" for _ in cols)
    con.executemany(f"INSERT INTO {name} VALUES ({marks})", [list(r) for r in rows])
    return con


def frame(spark, schema: str, rows: Sequence[tuple]):
    return spark.createDataFrame(list(rows), schema=schema)


def one(spark, *cols) -> tuple:
    """The one row of spark.range(1).select(*cols)."""
    rows = spark.range(1).select(*cols).collect()
    assert len(rows) == 1
    return tuple(rows[0])


def sql_one(spark, text: str) -> tuple:
    rows = spark.sql(text).collect()
    assert len(rows) == 1, rows
    return tuple(rows[0])


def nulls_first(values) -> list:
    """The values sorted, a NULL (which should not be there) first rather than an error."""
    return sorted(values, key=lambda v: (v is not None, v if v is not None else 0))


def approx(values, rel=1e-9, abs_=1e-12):
    return pytest.approx(values, rel=rel, abs=abs_)


# ---------------------------------------------------------------- aggregates

AGG_SCHEMA = "g string, x int, y double"
AGG = [
    ("a", 1, 1.0),
    ("a", 2, None),
    ("a", 2, 3.0),
    ("a", 4, 0.5),
    ("b", 5, 2.0),
    ("b", None, 4.0),
    ("c", None, None),
]

BASIC_AGG_SQL = (
    "SELECT g, count(x) AS nx, count(*) AS n, count(DISTINCT x) AS dx, sum(x) AS sx, avg(x) AS ax, "
    "avg(y) AS my, min(x) AS mnx, max(y) AS mxy FROM agg_t GROUP BY g"
)


def test_count_sum_avg_min_max(spark):
    """Reference: DuckDB on the same rows (count(col) skips NULLs; sum/avg of no
    values is NULL)."""
    df = frame(spark, AGG_SCHEMA, AGG)
    con = duck_table(AGG_SCHEMA, AGG, "agg_t")
    got = df.groupBy("g").agg(
        F.count("x").alias("nx"),
        F.count("*").alias("n"),
        F.countDistinct("x").alias("dx"),
        F.sum("x").alias("sx"),
        F.avg("x").alias("ax"),
        F.mean("y").alias("my"),
        F.min("x").alias("mnx"),
        F.max("y").alias("mxy"),
    )
    expected = duck_df(con, BASIC_AGG_SQL)
    assert_frames_equal(got.toPandas(), expected)
    got = df.agg(F.count_distinct("x").alias("dx"), F.count_distinct("g", "x").alias("dgx"))
    # count_distinct of several columns counts distinct tuples with no NULL in them.
    assert tuple(got.collect()[0]) == (4, 4)


def test_count_sum_avg_min_max_in_sql(spark):
    """Reference: DuckDB running the same SQL text on the same rows."""
    frame(spark, AGG_SCHEMA, AGG).createOrReplaceTempView("agg_t")
    con = duck_table(AGG_SCHEMA, AGG, "agg_t")
    expected = duck_df(con, BASIC_AGG_SQL)
    assert_frames_equal(spark.sql(BASIC_AGG_SQL).toPandas(), expected)


STAT_AGG_SQL = (
    "SELECT g, stddev(x) AS sd, stddev_samp(y) AS sds, stddev_pop(x) AS sdp, variance(x) AS v, "
    "var_samp(y) AS vs, var_pop(y) AS vp FROM agg_t GROUP BY g"
)


def test_statistical_aggregates(spark):
    """Reference: DuckDB (sample statistics of one value are NULL in both: Spark 4
    returns NULL, not NaN, for a zero divisor)."""
    df = frame(spark, AGG_SCHEMA, AGG)
    con = duck_table(AGG_SCHEMA, AGG, "agg_t")
    got = df.groupBy("g").agg(
        F.stddev("x").alias("sd"),
        F.stddev_samp("y").alias("sds"),
        F.stddev_pop("x").alias("sdp"),
        F.variance("x").alias("v"),
        F.var_samp("y").alias("vs"),
        F.var_pop("y").alias("vp"),
    )
    expected = duck_df(con, STAT_AGG_SQL)
    assert_frames_equal(got.toPandas(), expected)
    df.createOrReplaceTempView("agg_t")
    assert_frames_equal(spark.sql(STAT_AGG_SQL).toPandas(), expected)
    # Hand check, group b: x = [5] -> sample stddev NULL, population stddev 0.
    b = {r.g: r for r in got.collect()}["b"]
    assert b.sd is None and b.sdp == 0.0


def test_aggregates_tpch(spark, duck):
    """Reference: DuckDB on lineitem."""
    li = spark.table("lineitem")
    got = li.groupBy("l_returnflag").agg(
        F.count_distinct("l_suppkey").alias("suppliers"),
        F.sum("l_quantity").alias("qty"),
        F.avg("l_discount").alias("disc"),
        F.stddev("l_extendedprice").alias("sd"),
        F.var_pop("l_quantity").alias("vp"),
        F.min("l_shipdate").alias("first_ship"),
        F.max("l_comment").alias("last_comment"),
    )
    expected = duck_df(
        duck,
        "SELECT l_returnflag, count(DISTINCT l_suppkey) AS suppliers, sum(l_quantity) AS qty, "
        "avg(l_discount) AS disc, stddev_samp(l_extendedprice) AS sd, var_pop(l_quantity) AS vp, "
        "min(l_shipdate) AS first_ship, max(l_comment) AS last_comment FROM lineitem GROUP BY l_returnflag",
    )
    assert_frames_equal(got.toPandas(), expected)


FL_SCHEMA = "g string, v int"
FL = [("p", 7), ("p", 7), ("q", None), ("q", 8), ("q", None), ("r", None)]


def test_first_and_last(spark):
    """Hand-computed. first/last pick an arbitrary row, so only groups whose answer
    does not depend on the row order are used: p holds one value; with
    ignorenulls=True, q holds one non-NULL value and r none (NULL)."""
    df = frame(spark, FL_SCHEMA, FL)
    got = df.groupBy("g").agg(
        F.first("v").alias("f"),
        F.last("v").alias("l"),
        F.first("v", ignorenulls=True).alias("fi"),
        F.last("v", ignorenulls=True).alias("li"),
    )
    rows = {r.g: r for r in got.collect()}
    assert (rows["p"].f, rows["p"].l, rows["p"].fi, rows["p"].li) == (7, 7, 7, 7)
    assert (rows["q"].fi, rows["q"].li) == (8, 8)
    assert (rows["r"].f, rows["r"].l, rows["r"].fi, rows["r"].li) == (None, None, None, None)
    df.createOrReplaceTempView("fl_t")
    rows = spark.sql("SELECT g, first(v, true) AS fi, last(v, true) AS li FROM fl_t GROUP BY g").collect()
    assert sorted(tuple(r) for r in rows if r.g != "r") == [("p", 7, 7), ("q", 8, 8)]


def test_collect_list_and_collect_set(spark):
    """Hand-computed. Spark: both skip NULLs; a group with no values gives []; the
    element order is unspecified (lists compared sorted, sets as sets)."""
    df = frame(spark, AGG_SCHEMA, AGG)
    got = df.groupBy("g").agg(F.collect_list("x").alias("xs"), F.collect_set("x").alias("xset"))
    rows = {r.g: (nulls_first(r.xs), set(r.xset), len(r.xset)) for r in got.collect()}
    assert rows == {"a": ([1, 2, 2, 4], {1, 2, 4}, 3), "b": ([5], {5}, 1), "c": ([], set(), 0)}
    df.createOrReplaceTempView("agg_t")
    rows = spark.sql("SELECT g, collect_list(y) AS ys, collect_set(y) AS yset FROM agg_t GROUP BY g").collect()
    rows = {r.g: (nulls_first(r.ys), set(r.yset)) for r in rows}
    assert rows == {"a": ([0.5, 1.0, 3.0], {0.5, 1.0, 3.0}), "b": ([2.0, 4.0], {2.0, 4.0}), "c": ([], set())}


def test_approx_count_distinct(spark, duck):
    """Reference: DuckDB count(DISTINCT ...); the estimate is within 5%."""
    for table, col in [("orders", "o_custkey"), ("lineitem", "l_partkey"), ("lineitem", "l_orderkey")]:
        exact = duck_scalar(duck, f"SELECT count(DISTINCT {col}) FROM {table}")
        got = spark.table(table).agg(F.approx_count_distinct(col).alias("n")).collect()[0].n
        assert abs(got - exact) <= 0.05 * exact, (table, col, got, exact)
        got = spark.sql(f"SELECT approx_count_distinct({col}) AS n FROM {table}").collect()[0].n
        assert abs(got - exact) <= 0.05 * exact, (table, col, got, exact)
    got = spark.range(10000).agg(F.approx_count_distinct("id")).collect()[0][0]
    assert abs(got - 10000) <= 500


def test_percentile_approx(spark):
    """Hand-computed. Spark returns an input value: the smallest v such that at
    least p of the values are <= v (the ceil(p * n)-th smallest)."""
    df = frame(spark, "x int", [(v,) for v in [7, 3, 10, 1, 5, 9, 2, 8, 4, 6]])
    got = df.agg(
        F.percentile_approx("x", 0.5).alias("p50"),
        F.percentile_approx("x", 0.25).alias("p25"),
        F.percentile_approx("x", 0.9).alias("p90"),
        F.percentile_approx("x", 1.0).alias("p100"),
        F.percentile_approx("x", 0.0).alias("p0"),
        F.percentile_approx("x", [0.25, 0.5, 0.75]).alias("ps"),
    ).collect()[0]
    assert (got.p50, got.p25, got.p90, got.p100, got.p0) == (5, 3, 9, 10, 1)
    assert list(got.ps) == [3, 5, 8]
    df.createOrReplaceTempView("pa_t")
    row = sql_one(spark, "SELECT percentile_approx(x, 0.5), percentile_approx(x, array(0.1, 0.35, 0.8)) FROM pa_t")
    assert row[0] == 5 and list(row[1]) == [1, 4, 8]
    # Values 0, 1, 2, 10: 50% -> 1 (2 of 4 <= 1), 40% -> 1, 10% -> 0.
    small = frame(spark, "x int", [(0,), (1,), (2,), (10,)])
    got = small.agg(F.percentile_approx("x", [0.5, 0.4, 0.1])).collect()[0][0]
    assert list(got) == [1, 1, 0]


# ---------------------------------------------------------------- strings


def test_concat_and_concat_ws(spark):
    """Hand-computed. Spark: concat is NULL if any argument is NULL; concat_ws skips
    NULLs (all NULL gives '')."""
    df = frame(spark, "a string, b string, n string", [("ab", "cd", None)])
    got = tuple(
        df.select(
            F.concat("a", "b"),
            F.concat("a", F.lit("-"), "b"),
            F.concat("a", "n"),
            F.concat_ws("-", "a", "n", "b"),
            F.concat_ws("", "a", "b"),
            F.concat_ws(",", "n"),
        ).collect()[0]
    )
    assert got == ("abcd", "ab-cd", None, "ab-cd", "abcd", "")
    assert sql_one(
        spark, "SELECT concat('ab', 'cd'), concat('ab', NULL), concat_ws('-', 'ab', NULL, 'cd'), concat_ws('-', NULL)"
    ) == ("abcd", None, "ab-cd", "")


def test_case_and_trim(spark):
    """Hand-computed: trim/ltrim/rtrim remove spaces at both ends / the left / the right."""
    df = frame(spark, "s string, p string", [("Spark Sql", "  hi  ")])
    got = tuple(df.select(F.upper("s"), F.lower("s"), F.trim("p"), F.ltrim("p"), F.rtrim("p")).collect()[0])
    assert got == ("SPARK SQL", "spark sql", "hi", "hi  ", "  hi")
    row = sql_one(spark, "SELECT upper('Spark'), lower('Spark'), trim('  hi  '), ltrim('  hi  '), rtrim('  hi  ')")
    assert row == ("SPARK", "spark", "hi", "hi  ", "  hi")


def test_substring(spark):
    """Hand-computed. Spark: positions are 1-based, a negative start counts from the
    end, a start of 0 acts as 1, a length past the end stops at the end."""
    df = frame(spark, "s string", [("Spark SQL",)])
    got = tuple(
        df.select(
            F.substring("s", 1, 5),
            F.substring("s", -3, 3),
            F.substring("s", 7, 100),
            F.substring("s", 0, 3),
            F.substring("s", -3, 2),
            F.col("s").substr(2, 3),
        ).collect()[0]
    )
    assert got == ("Spark", "SQL", "SQL", "Spa", "SQ", "par")
    assert sql_one(
        spark,
        "SELECT substring('Spark SQL', 1, 5), substr('Spark SQL', -3), substring('Spark SQL', 7), "
        "substring('Spark SQL', 0, 3)",
    ) == ("Spark", "SQL", "SQL", "Spa")


def test_split(spark):
    """Hand-computed. Spark: the pattern is a Java regex; limit > 0 caps the array
    (the last element holds the rest); by default trailing empty strings stay."""
    df = frame(spark, "s string, c string", [("a1b22c333d", "x,y,")])
    got = df.select(
        F.split("s", "[0-9]+").alias("all"),
        F.split("s", "[0-9]+", 2).alias("two"),
        F.split("c", ",").alias("trail"),
        F.split("c", ",", -1).alias("neg"),
    ).collect()[0]
    assert list(got.all) == ["a", "b", "c", "d"]
    assert list(got.two) == ["a", "b22c333d"]
    assert list(got.trail) == ["x", "y", ""]
    assert list(got.neg) == ["x", "y", ""]
    row = sql_one(spark, "SELECT split('a1b22c333d', '[0-9]+'), split('a1b22c333d', '[0-9]+', 3)")
    assert list(row[0]) == ["a", "b", "c", "d"] and list(row[1]) == ["a", "b", "c333d"]


def test_regexp_replace_and_extract(spark):
    """Hand-computed. Spark: regexp_replace replaces every match, $n in the
    replacement is group n (Java); regexp_extract gives group idx of the first match
    (0 = the whole match) and '' when nothing matches."""
    df = frame(spark, "s string, d string, w string", [("a1b22c333", "2024-01-05", "abc")])
    got = tuple(
        df.select(
            F.regexp_replace("s", r"\d+", "#"),
            F.regexp_replace("d", r"(\d+)-(\d+)-(\d+)", "$3/$2/$1"),
            F.regexp_extract("s", r"(\d+)", 1),
            F.regexp_extract("s", r"([a-z])(\d+)", 0),
            F.regexp_extract("s", r"([a-z])(\d+)", 2),
            F.regexp_extract("w", r"(\d+)", 1),
        ).collect()[0]
    )
    assert got == ("a#b#c#", "05/01/2024", "1", "a1", "1", "")
    assert sql_one(
        spark,
        "SELECT regexp_replace('a1b22c333', '[0-9]+', '#'), regexp_extract('foo123bar', '([a-z]+)([0-9]+)', 2), "
        "regexp_extract('abc', '([0-9]+)', 1)",
    ) == ("a#b#c#", "123", "")


def test_length_and_padding(spark):
    """Hand-computed. Spark: length counts characters; lpad/rpad repeat the pad to the
    length and truncate (keeping the left part) a longer string."""
    df = frame(spark, "s string, e string, u string, n string", [("hi", "", "héllo", None)])
    got = tuple(
        df.select(
            F.length("s"),
            F.length("e"),
            F.length("u"),
            F.length("n"),
            F.lpad("s", 5, "*"),
            F.lpad("s", 5, "xy"),
            F.rpad("s", 5, "ab"),
            F.lpad("u", 3, "*"),
            F.rpad("u", 3, "*"),
        ).collect()[0]
    )
    assert got == (2, 0, 5, None, "***hi", "xyxhi", "hiaba", "hél", "hél")
    assert sql_one(
        spark,
        "SELECT length('héllo'), lpad('hi', 5, '*'), rpad('hi', 5, 'ab'), lpad('hello', 3, '*'), "
        "rpad('hello', 2, '*')",
    ) == (5, "***hi", "hiaba", "hel", "he")


def test_string_functions_tpch(spark, duck):
    """Reference: DuckDB on customer (DuckDB's regexp_replace needs 'g' to replace
    every match, as Spark's does)."""
    c = spark.table("customer")
    got = c.select(
        "c_custkey",
        F.upper("c_name").alias("u"),
        F.lower("c_mktsegment").alias("l"),
        F.length("c_address").alias("n"),
        F.substring("c_phone", 1, 2).alias("cc"),
        F.concat_ws("/", "c_mktsegment", "c_name").alias("cw"),
        F.regexp_replace("c_phone", "-", "").alias("digits"),
        F.split("c_phone", "-").alias("parts"),
    )
    expected = duck_df(
        duck,
        "SELECT c_custkey, upper(c_name) AS u, lower(c_mktsegment) AS l, length(c_address) AS n, "
        "substring(c_phone, 1, 2) AS cc, concat_ws('/', c_mktsegment, c_name) AS cw, "
        "regexp_replace(c_phone, '-', '', 'g') AS digits, string_split(c_phone, '-') AS parts FROM customer",
    )
    assert_frames_equal(got.toPandas(), expected)


# ---------------------------------------------------------------- dates and times

D = dt.date(2024, 1, 5)  # a Friday
TS_TEXT = "2024-01-05 13:07:09"


def test_date_format_patterns(spark):
    """Hand-computed with Spark's datetime patterns (yyyy year, MM month, MMM short
    month name, d/dd day, EEEE day name, E short day name, HH 0-23 hour, h 1-12
    hour, a AM/PM, mm minute, ss second)."""
    ts = F.to_timestamp(F.lit(TS_TEXT))
    got = one(
        spark,
        F.date_format(F.lit(D), "yyyy-MM"),
        F.date_format(ts, "yyyy-MM-dd HH:mm:ss"),
        F.date_format(F.lit(D), "dd/MM/yyyy"),
        F.date_format(F.lit(D), "MMM d, yyyy"),
        F.date_format(F.lit(D), "EEEE"),
        F.date_format(F.lit(D), "E"),
        F.date_format(ts, "h:mm a"),
    )
    assert got == ("2024-01", "2024-01-05 13:07:09", "05/01/2024", "Jan 5, 2024", "Friday", "Fri", "1:07 PM")
    assert sql_one(
        spark,
        "SELECT date_format(DATE'2024-01-05', 'yyyy-MM'), date_format(TIMESTAMP'2024-01-05 13:07:09', "
        "'yyyy-MM-dd HH:mm:ss'), date_format(DATE'2024-01-05', 'dd/MM/yyyy'), "
        "date_format(DATE'2024-01-05', 'MMM d, yyyy'), date_format(DATE'2024-01-05', 'EEEE')",
    ) == ("2024-01", "2024-01-05 13:07:09", "05/01/2024", "Jan 5, 2024", "Friday")


def test_to_date_and_to_timestamp(spark):
    """Hand-computed: to_date with no pattern takes yyyy-MM-dd (anything after a
    space is ignored); with a pattern parses by it; to_timestamp likewise."""
    df = spark.range(1).select(
        F.to_date(F.lit("2024-03-15")).alias("d1"),
        F.to_date(F.lit("15/03/2024"), "dd/MM/yyyy").alias("d2"),
        F.to_date(F.lit("2024-03-15 08:30:00")).alias("d3"),
        F.to_timestamp(F.lit("2024-03-15 08:30"), "yyyy-MM-dd HH:mm").alias("t1"),
        F.to_timestamp(F.lit("2024-03-15 08:30:45")).alias("t2"),
    )
    assert [f.dataType for f in df.schema.fields] == [DateType()] * 3 + [TimestampType()] * 2
    got = tuple(df.collect()[0])
    d = dt.date(2024, 3, 15)
    assert got == (d, d, d, dt.datetime(2024, 3, 15, 8, 30), dt.datetime(2024, 3, 15, 8, 30, 45))
    assert sql_one(
        spark,
        "SELECT to_date('2024-03-15'), to_date('15/03/2024', 'dd/MM/yyyy'), "
        "to_timestamp('2024-03-15 08:30', 'yyyy-MM-dd HH:mm')",
    ) == (d, d, dt.datetime(2024, 3, 15, 8, 30))


def test_date_and_time_fields(spark):
    """Hand-computed. 2024-08-18 is a Sunday, day 231 of the leap year 2024, in
    quarter 3; Spark's dayofweek is 1 = Sunday ... 7 = Saturday."""
    ts = F.to_timestamp(F.lit("2024-08-18 21:04:05"))
    d = F.lit(dt.date(2024, 8, 18))
    got = one(
        spark,
        F.year(d),
        F.month(d),
        F.dayofmonth(d),
        F.dayofweek(d),
        F.dayofyear(d),
        F.quarter(d),
        F.hour(ts),
        F.minute(ts),
        F.second(ts),
        F.dayofweek(F.lit(D)),
        F.year(ts),
        F.dayofmonth(ts),
    )
    assert got == (2024, 8, 18, 1, 231, 3, 21, 4, 5, 6, 2024, 18)
    assert sql_one(
        spark,
        "SELECT year(DATE'2024-08-18'), month(DATE'2024-08-18'), dayofmonth(DATE'2024-08-18'), "
        "dayofweek(DATE'2024-08-18'), dayofyear(DATE'2024-08-18'), quarter(DATE'2024-08-18'), "
        "hour(TIMESTAMP'2024-08-18 21:04:05'), minute(TIMESTAMP'2024-08-18 21:04:05'), "
        "second(TIMESTAMP'2024-08-18 21:04:05'), dayofweek(DATE'2024-01-06')",
    ) == (2024, 8, 18, 1, 231, 3, 21, 4, 5, 7)


def test_date_arithmetic(spark):
    """Hand-computed. Spark: datediff(end, start) counts days end - start; add_months
    clamps to the last day of a shorter month and does not move a month-end date
    to the next month's end (2024-02-29 + 1 month = 2024-03-29)."""
    got = one(
        spark,
        F.datediff(F.lit(dt.date(2024, 3, 1)), F.lit(dt.date(2024, 2, 1))),
        F.datediff(F.lit(dt.date(2024, 2, 1)), F.lit(dt.date(2024, 3, 1))),
        F.date_add(F.lit(D), 10),
        F.date_sub(F.lit(D), 10),
        F.date_add(F.lit(D), -5),
        F.date_add(F.lit(dt.date(2024, 2, 28)), 1),
        F.add_months(F.lit(dt.date(2024, 1, 31)), 1),
        F.add_months(F.lit(dt.date(2023, 1, 31)), 1),
        F.add_months(F.lit(dt.date(2024, 3, 31)), -1),
        F.add_months(F.lit(dt.date(2024, 1, 15)), 13),
        F.add_months(F.lit(dt.date(2024, 2, 29)), 1),
    )
    assert got == (
        29,
        -29,
        dt.date(2024, 1, 15),
        dt.date(2023, 12, 26),
        dt.date(2023, 12, 31),
        dt.date(2024, 2, 29),
        dt.date(2024, 2, 29),
        dt.date(2023, 2, 28),
        dt.date(2024, 2, 29),
        dt.date(2025, 2, 15),
        dt.date(2024, 3, 29),
    )
    assert sql_one(
        spark,
        "SELECT datediff(DATE'2024-03-01', DATE'2024-02-01'), date_add(DATE'2024-01-05', 10), "
        "date_sub(DATE'2024-01-05', 10), add_months(DATE'2024-01-31', 1)",
    ) == (29, dt.date(2024, 1, 15), dt.date(2023, 12, 26), dt.date(2024, 2, 29))


def test_months_between(spark):
    """Hand-computed. Spark: whole months when both days of month are equal or both
    are last days of their months; else months + (seconds into month 1 - seconds
    into month 2) / (31 days), rounded to 8 digits.
    2024-03-10 vs 2024-01-15: 2 + (9 - 14) / 31 = 1.83870968.
    1997-02-28 10:30 vs 1996-10-30: 4 + ((27 * 86400 + 37800) - 29 * 86400) / (31 * 86400) = 3.94959677."""
    got = one(
        spark,
        F.months_between(F.lit(dt.date(2024, 3, 15)), F.lit(dt.date(2024, 1, 15))),
        F.months_between(F.lit(dt.date(2024, 2, 29)), F.lit(dt.date(2024, 1, 31))),
        F.months_between(F.lit(dt.date(2024, 4, 30)), F.lit(dt.date(2024, 2, 29))),
        F.months_between(F.lit(dt.date(2024, 3, 10)), F.lit(dt.date(2024, 1, 15))),
        F.months_between(F.lit(dt.date(2024, 1, 15)), F.lit(dt.date(2024, 3, 10))),
    )
    assert got == approx((2.0, 1.0, 2.0, 1.83870968, -1.83870968), abs_=1e-9)
    row = sql_one(
        spark,
        "SELECT months_between(TIMESTAMP'1997-02-28 10:30:00', DATE'1996-10-30'), "
        "months_between(DATE'2024-03-10', DATE'2024-01-15')",
    )
    assert row == approx((3.94959677, 1.83870968), abs_=1e-9)


def test_trunc_and_date_trunc(spark):
    """Hand-computed: trunc(date, fmt) gives a date, date_trunc(fmt, ts) a timestamp."""
    d = F.lit(dt.date(2024, 8, 18))
    ts = F.to_timestamp(F.lit("2024-08-18 21:04:05"))
    got = one(
        spark,
        F.trunc(d, "MM"),
        F.trunc(d, "month"),
        F.trunc(d, "year"),
        F.trunc(d, "yyyy"),
        F.date_trunc("month", ts),
        F.date_trunc("year", ts),
        F.date_trunc("hour", ts),
        F.date_trunc("day", ts),
    )
    assert got == (
        dt.date(2024, 8, 1),
        dt.date(2024, 8, 1),
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 1),
        dt.datetime(2024, 8, 1),
        dt.datetime(2024, 1, 1),
        dt.datetime(2024, 8, 18, 21),
        dt.datetime(2024, 8, 18),
    )
    assert sql_one(
        spark, "SELECT trunc(DATE'2024-08-18', 'MM'), date_trunc('month', TIMESTAMP'2024-08-18 21:04:05')"
    ) == (dt.date(2024, 8, 1), dt.datetime(2024, 8, 1))


def test_current_date(spark):
    """Hand-checked: today's date in UTC or local time, within a day."""
    got = one(spark, F.current_date())[0]
    assert isinstance(got, dt.date)
    today = dt.datetime.now(dt.timezone.utc).date()
    assert abs((got - today).days) <= 1
    got = sql_one(spark, "SELECT current_date()")[0]
    assert abs((got - today).days) <= 1


def test_date_functions_tpch(spark, duck):
    """Reference: DuckDB on orders (DuckDB's dayofweek is 0 = Sunday, Spark's 1)."""
    o = spark.table("orders")
    got = o.select(
        "o_orderkey",
        F.year("o_orderdate").alias("y"),
        F.month("o_orderdate").alias("m"),
        F.dayofmonth("o_orderdate").alias("d"),
        F.dayofweek("o_orderdate").alias("dow"),
        F.dayofyear("o_orderdate").alias("doy"),
        F.quarter("o_orderdate").alias("q"),
        F.date_format("o_orderdate", "yyyy-MM").alias("ym"),
        F.datediff(F.lit(dt.date(1999, 1, 1)), "o_orderdate").alias("age"),
        F.date_add("o_orderdate", 30).alias("due"),
    )
    expected = duck_df(
        duck,
        "SELECT o_orderkey, year(o_orderdate) AS y, month(o_orderdate) AS m, day(o_orderdate) AS d, "
        "dayofweek(o_orderdate) + 1 AS dow, dayofyear(o_orderdate) AS doy, quarter(o_orderdate) AS q, "
        "strftime(o_orderdate, '%Y-%m') AS ym, date_diff('day', o_orderdate, DATE '1999-01-01') AS age, "
        "CAST(o_orderdate + INTERVAL 30 DAY AS DATE) AS due FROM orders",
    )
    assert_frames_equal(got.toPandas(), expected)


# ---------------------------------------------------------------- math


def test_round_is_half_up_and_bround_half_even(spark):
    """Hand-computed. Spark: round is HALF_UP (away from zero at .5), bround
    HALF_EVEN; a negative scale rounds to tens, hundreds..."""
    got = one(
        spark,
        F.round(F.lit(2.5)),
        F.round(F.lit(-2.5)),
        F.round(F.lit(0.125), 2),
        F.round(F.lit(1234.5678), -2),
        F.round(F.lit(25), -1),
        F.round(F.lit(-25), -1),
        F.bround(F.lit(2.5)),
        F.bround(F.lit(3.5)),
        F.bround(F.lit(-2.5)),
        F.bround(F.lit(0.125), 2),
        F.bround(F.lit(25), -1),
    )
    assert got == (3.0, -3.0, 0.13, 1200.0, 30, -30, 2.0, 4.0, -2.0, 0.12, 20)
    row = sql_one(
        spark,
        "SELECT round(2.5), round(-2.5), round(0.125, 2), round(1234.5678, -2), bround(2.5), bround(0.125, 2), "
        "round(CAST(2.5 AS DOUBLE))",
    )
    assert [float(v) for v in row] == [3.0, -3.0, 0.13, 1200.0, 2.0, 0.12, 3.0]


def test_floor_and_ceil_give_bigint(spark):
    """Hand-computed. Spark: floor/ceil of a double are bigint."""
    df = spark.range(1).select(
        F.floor(F.lit(2.7)).alias("a"),
        F.ceil(F.lit(2.1)).alias("b"),
        F.floor(F.lit(-2.5)).alias("c"),
        F.ceil(F.lit(-2.5)).alias("d"),
        F.ceiling(F.lit(3.0)).alias("e"),
    )
    assert [f.dataType for f in df.schema.fields] == [LongType()] * 5
    assert tuple(df.collect()[0]) == (2, 3, -3, -2, 3)
    df = spark.sql("SELECT floor(CAST(2.7 AS DOUBLE)) AS a, ceil(CAST(-2.5 AS DOUBLE)) AS b")
    assert [f.dataType for f in df.schema.fields] == [LongType(), LongType()]
    assert tuple(df.collect()[0]) == (2, -2)


def test_abs_pow_sqrt_log_exp(spark):
    """Hand-computed (floats within 1e-12). Spark: log(x) is the natural log,
    log(base, x) the log to a base; the log of a value <= 0 is NULL."""
    got = one(
        spark,
        F.abs(F.lit(-5)),
        F.abs(F.lit(-2.5)),
        F.pow(F.lit(2), F.lit(10)),
        F.pow(2.0, 0.5),
        F.sqrt(F.lit(16.0)),
        F.log(F.lit(math.e)),
        F.log(2.0, F.lit(8.0)),
        F.log(10.0, F.lit(1000.0)),
        F.log10(F.lit(1000.0)),
        F.ln(F.lit(1.0)),
        F.exp(F.lit(0.0)),
        F.exp(F.lit(1.0)),
    )
    assert got[0] == 5 and isinstance(got[0], int)
    assert got[1:] == approx((2.5, 1024.0, math.sqrt(2.0), 4.0, 1.0, 3.0, 3.0, 3.0, 0.0, 1.0, math.e))
    assert one(spark, F.log(F.lit(0.0)), F.log10(F.lit(-1.0))) == (None, None)
    row = sql_one(spark, "SELECT abs(-5), pow(2, 10), sqrt(16), ln(1), log(2, 8), log10(1000), exp(0), log(10, 100)")
    assert row[0] == 5
    assert row[1:] == approx((1024.0, 4.0, 0.0, 3.0, 3.0, 1.0, 2.0))


def test_pow_returns_double(spark):
    """Hand-computed: pow and sqrt are double even for int arguments."""
    df = spark.range(1).select(F.pow(F.lit(2), F.lit(3)).alias("p"), F.sqrt(F.lit(9)).alias("s"))
    assert [f.dataType for f in df.schema.fields] == [DoubleType(), DoubleType()]
    assert tuple(df.collect()[0]) == (8.0, 3.0)


# ---------------------------------------------------------------- NULL handling


def test_null_functions(spark):
    """Hand-computed: coalesce = first non-NULL; nvl/ifnull(a, b) = a unless NULL;
    nullif(a, b) = NULL when a = b; nvl2(a, b, c) = b when a is not NULL, else c."""
    df = frame(spark, "a int, b int", [(None, 5), (2, 6)])
    got = df.orderBy("b").select(
        F.coalesce("a", "b").alias("c1"),
        F.coalesce("a", F.lit(0)).alias("c2"),
        F.nvl("a", "b").alias("n"),
        F.ifnull("a", "b").alias("i"),
        F.nullif("b", F.lit(5)).alias("ni"),
        F.nvl2("a", F.lit("has"), F.lit("none")).alias("n2"),
    )
    assert [tuple(r) for r in got.collect()] == [(5, 0, 5, 5, None, "none"), (2, 2, 2, 2, 6, "has")]
    assert sql_one(
        spark,
        "SELECT coalesce(NULL, NULL, 3), nvl(NULL, 5), ifnull(NULL, 'x'), nullif(5, 5), nullif(5, 6), "
        "nvl2(NULL, 'a', 'b'), nvl2(1, 'a', 'b')",
    ) == (3, 5, "x", None, 5, "b", "a")


# ---------------------------------------------------------------- arrays


def test_array_functions(spark):
    """Hand-computed: array builds an array, size counts elements (0 for []),
    array_contains tests membership, explode gives a row per element."""
    df = frame(spark, "id int, xs array<int>", [(1, [1, 2, 3]), (2, []), (3, [4])])
    got = df.orderBy("id").select(
        F.size("xs").alias("n"),
        F.array_contains("xs", 2).alias("has2"),
        F.array_contains(F.col("xs"), 4).alias("has4"),
        F.array("id", F.lit(10)).alias("pair"),
    )
    assert [(r.n, r.has2, r.has4, list(r.pair)) for r in got.collect()] == [
        (3, True, False, [1, 10]),
        (0, False, False, [2, 10]),
        (1, False, True, [3, 10]),
    ]
    pair = got.schema["pair"].dataType
    assert isinstance(pair, ArrayType) and pair.elementType == IntegerType()
    exploded = df.select("id", F.explode("xs").alias("x")).collect()
    assert sorted(tuple(r) for r in exploded) == [(1, 1), (1, 2), (1, 3), (3, 4)]
    row = sql_one(spark, "SELECT size(array(1, 2, 3)), array_contains(array(1, 2, 3), 2), array(1, 2)")
    assert row[0] == 3 and row[1] is True and list(row[2]) == [1, 2]
    rows = spark.sql("SELECT explode(array(10, 20)) AS v").collect()
    assert sorted(r.v for r in rows) == [10, 20]


# ---------------------------------------------------------------- ids, literals, expr


def test_monotonically_increasing_id(spark):
    """Hand-checked: Spark promises unique, non-negative longs (increasing within a
    partition), nothing about their values."""
    df = spark.range(1000).repartition(3).select("id", F.monotonically_increasing_id().alias("m"))
    assert df.schema["m"].dataType == LongType()
    ms = [r.m for r in df.collect()]
    assert len(ms) == 1000 and len(set(ms)) == 1000
    assert all(isinstance(m, int) and m >= 0 for m in ms)


def test_lit_of_every_type(spark):
    """Hand-computed: the Python value's Spark type (int -> int, beyond 32 bits ->
    bigint, float -> double, str, bool, date, datetime -> timestamp, Decimal ->
    decimal, None -> void) and the value back unchanged."""
    when = dt.datetime(2024, 1, 5, 13, 7, 9)
    df = spark.range(1).select(
        F.lit(1).alias("i"),
        F.lit(2**40).alias("l"),
        F.lit(1.5).alias("d"),
        F.lit("s").alias("s"),
        F.lit(True).alias("b"),
        F.lit(D).alias("dt"),
        F.lit(when).alias("ts"),
        F.lit(Decimal("1.23")).alias("dec"),
        F.lit(None).alias("n"),
    )
    types = [f.dataType for f in df.schema.fields]
    assert types[:4] == [IntegerType(), LongType(), DoubleType(), StringType()]
    assert types[4:7] == [BooleanType(), DateType(), TimestampType()]
    assert isinstance(types[7], DecimalType)
    assert types[8] == NullType()
    assert tuple(df.collect()[0]) == (1, 2**40, 1.5, "s", True, D, when, Decimal("1.23"), None)


def test_expr(spark):
    """Hand-computed: F.expr parses Spark SQL expression text, aliases included."""
    df = frame(spark, "a int, s string", [(1, "x"), (41, "y")])
    got = df.orderBy("a").select(F.expr("a + 1").alias("a1"), F.expr("upper(s)").alias("u"), F.expr("a * 2 AS dbl"))
    assert got.columns == ["a1", "u", "dbl"]
    assert [tuple(r) for r in got.collect()] == [(2, "X", 2), (42, "Y", 82)]
    assert [r.a for r in df.filter(F.expr("a > 10")).collect()] == [41]


# ---------------------------------------------------------------- when, cast, predicates, arithmetic


def test_when_otherwise(spark):
    """Hand-computed: the first true branch wins; a NULL condition is not true;
    without otherwise the rest is NULL."""
    df = frame(spark, "k int, x int", [(1, -1), (2, 0), (3, 1), (4, 5), (5, None)])
    got = df.orderBy("k").select(
        F.when(F.col("x") > 2, "big").when(F.col("x") > 0, "small").otherwise("other").alias("w"),
        F.when(F.col("x") > 0, 1).alias("p"),
    )
    assert [tuple(r) for r in got.collect()] == [
        ("other", None),
        ("other", None),
        ("small", 1),
        ("big", 1),
        ("other", None),
    ]
    df.createOrReplaceTempView("when_t")
    rows = spark.sql(
        "SELECT CASE WHEN x > 2 THEN 'big' WHEN x > 0 THEN 'small' ELSE 'other' END AS w FROM when_t ORDER BY k"
    ).collect()
    assert [r.w for r in rows] == ["other", "other", "small", "big", "other"]


def test_cast_to_spark_type_names(spark):
    """Hand-computed. Spark: double -> int truncates toward zero; a number -> boolean
    is false only for 0; decimal(10,2) keeps two places."""
    df = frame(spark, "s string, i int, d double, t string, z string", [("42", 7, 3.14159, "2024-01-05", "true")])
    got = df.select(
        F.col("s").cast("int").alias("a"),
        F.col("s").cast("bigint").alias("b"),
        F.col("i").cast("string").alias("c"),
        F.col("s").cast("double").alias("d"),
        F.col("t").cast("date").alias("e"),
        F.col("d").cast("decimal(10,2)").alias("f"),
        F.col("z").cast("boolean").alias("g"),
        F.col("i").cast("boolean").alias("h"),
        F.lit(0).cast("boolean").alias("j"),
        F.col("d").cast("int").alias("k"),
        (-F.col("d")).cast("int").alias("m"),
    )
    assert [f.dataType for f in got.schema.fields] == [
        IntegerType(),
        LongType(),
        StringType(),
        DoubleType(),
        DateType(),
        DecimalType(10, 2),
        BooleanType(),
        BooleanType(),
        BooleanType(),
        IntegerType(),
        IntegerType(),
    ]
    assert tuple(got.collect()[0]) == (42, 42, "7", 42.0, D, Decimal("3.14"), True, True, False, 3, -3)
    assert sql_one(
        spark,
        "SELECT CAST('42' AS INT), CAST(7 AS STRING), CAST('2024-01-05' AS DATE), CAST(3.14159 AS DECIMAL(10,2)), "
        "CAST('true' AS BOOLEAN), CAST('42' AS BIGINT), CAST(1.5 AS DOUBLE)",
    ) == (42, "7", D, Decimal("3.14"), True, 42, 1.5)


def test_predicates(spark):
    """Hand-computed. Spark: comparisons with NULL are NULL except eqNullSafe (<=>),
    which is true for NULL <=> NULL; between is inclusive; like uses % and _;
    rlike is a Java regex search."""
    df = frame(spark, "k int, s string", [(1, "apple"), (2, "banana"), (3, None), (None, "avocado")])
    got = df.orderBy(F.asc_nulls_last("k")).select(
        F.col("k").isNull().alias("kn"),
        F.col("s").isNotNull().alias("sn"),
        F.col("k").isin(1, 3).alias("inn"),
        F.col("k").between(2, 3).alias("btw"),
        F.col("s").like("a%").alias("lk"),
        F.col("s").like("_anana").alias("lk2"),
        F.col("s").rlike("^a.*o$").alias("rl"),
        F.col("k").eqNullSafe(F.lit(None)).alias("ens"),
        F.col("k").eqNullSafe(3).alias("ens3"),
        (F.col("k") == F.lit(None)).alias("eqn"),
    )
    assert [tuple(r) for r in got.collect()] == [
        (False, True, True, False, True, False, False, False, False, None),
        (False, True, False, True, False, True, False, False, False, None),
        (False, False, True, True, None, None, None, False, True, None),
        (True, True, None, None, True, False, True, True, False, None),
    ]
    assert sql_one(
        spark,
        "SELECT NULL <=> NULL, 1 <=> NULL, NULL = NULL, 'abc' LIKE 'a%', 'abc' RLIKE '^a.c$', 3 IN (1, 3), "
        "2 BETWEEN 1 AND 3, 4 BETWEEN 1 AND 3",
    ) == (True, False, None, True, True, True, True, False)


def test_arithmetic(spark):
    """Hand-computed. Spark: int / int is a double (7 / 2 = 3.5); % takes the sign of
    the dividend (-7 % 3 = -1, 7 % -3 = 1)."""
    df = frame(spark, "k int, a int, b int", [(1, 7, 2), (2, -7, 3), (3, 7, -3), (4, 6, 3)])
    got = df.orderBy("k").select(
        (F.col("a") / F.col("b")).alias("q"),
        (F.col("a") % F.col("b")).alias("r"),
        (F.col("a") + F.col("b")).alias("s"),
        (F.col("a") - F.col("b")).alias("d"),
        (F.col("a") * F.col("b")).alias("p"),
    )
    assert [f.dataType for f in got.schema.fields] == [DoubleType()] + [IntegerType()] * 4
    rows = [tuple(r) for r in got.collect()]
    assert [r[0] for r in rows] == approx([3.5, -7 / 3, -7 / 3, 2.0])
    assert [r[1:] for r in rows] == [(1, 9, 5, 14), (-1, -4, -10, -21), (1, 4, 10, -21), (0, 9, 3, 18)]
    assert one(spark, F.lit(7) / F.lit(2), F.lit(-7) % F.lit(3)) == (3.5, -1)
    assert sql_one(spark, "SELECT 7 / 2, -7 % 3, 7 % -3, 6 / 3") == (3.5, -1, 1, 2.0)


# ---------------------------------------------------------------- items, fields, more arrays and strings


def test_items_of_arrays_and_fields_of_structs(spark):
    """Hand-computed. Spark: `col[i]` / getItem(i) of an array counts from 0 and
    gives NULL past the end; `col["f"]` / getField reads a struct's field."""
    df = frame(spark, "xs array<int>, s struct<a: int, b: string>", [([10, 20, 30], (1, "x"))])
    got = tuple(
        df.select(
            F.col("xs")[0],
            F.col("xs").getItem(2),
            F.col("xs")[5],
            F.col("s")["b"],
            F.col("s").getField("a"),
            F.split(F.lit("a,b,c"), ",")[1],
        ).collect()[0]
    )
    assert got == (10, 30, None, "x", 1, "b")


def test_more_array_functions(spark):
    """Hand-computed. Spark: array_union/intersect/except drop duplicates;
    array_remove removes every copy; array_max/min skip NULLs."""
    df = frame(spark, "a array<int>, b array<int>", [([1, 2, 2, 3, None], [3, 4])])
    row = df.select(
        F.array_union("a", "b").alias("u"),
        F.array_intersect("a", "b").alias("i"),
        F.array_except("a", "b").alias("e"),
        F.array_remove("a", 2).alias("r"),
        F.array_max("a").alias("mx"),
        F.array_min("a").alias("mn"),
    ).collect()[0]
    assert sorted(row.u, key=lambda v: (v is not None, v or 0)) == [None, 1, 2, 3, 4]
    assert row.i == [3]
    assert sorted(row.e, key=lambda v: (v is not None, v or 0)) == [None, 1, 2]
    assert row.r == [1, 3, None]
    assert (row.mx, row.mn) == (3, 1)


def test_more_string_and_math_functions(spark):
    """Hand-computed. Spark: substring_index counts delimiters from the left
    (positive) or right (negative); bitwise_not is two's complement; mod and
    pmod differ on negatives."""
    got = one(
        spark,
        F.substring_index(F.lit("a.b.c.d"), ".", 2),
        F.substring_index(F.lit("a.b.c.d"), ".", -1),
        F.bitwise_not(F.lit(5)),
        F.pmod(F.lit(-7), F.lit(3)),
        F.char(F.lit(65)),
        F.octet_length(F.lit("héllo")),
    )
    assert got == ("a.b", "d", -6, 2, "A", 6)
    assert sql_one(spark, "SELECT substring_index('a.b.c.d', '.', 2), mod(-7, 3), bit_length('ab')") == ("a.b", -1, 16)
