"""SQL, catalog and DataFrame basics through `fairway connect`, checked against DuckDB
on the same parquet files or against values computed here by hand."""

from __future__ import annotations

import uuid

import pytest
from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import Row
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from conftest import TABLES_DIR, TPCH_TABLES, assert_frames_equal, duck_df, duck_scalar, query_text

TPCH_QUERIES = ["q01", "q03", "q05", "q06", "q10", "q12", "q14", "q18", "q19"]


# ---------------------------------------------------------------- TPC-H queries


@pytest.mark.parametrize("name", TPCH_QUERIES)
def test_tpch_query_matches_duckdb(spark, duck, name):
    sql = query_text(name)
    actual = spark.sql(sql).toPandas()
    expected = duck_df(duck, sql)
    assert_frames_equal(actual, expected, what=name)


def test_tpch_q01_in_order(spark, duck):
    # q01 orders by its two group keys, which are unique: the order is fixed.
    sql = query_text("q01")
    actual = spark.sql(sql).toPandas()
    expected = duck_df(duck, sql)
    assert_frames_equal(actual, expected, sort=False, what="q01 in order")


def test_table_by_file_stem(spark, duck):
    for name in TPCH_TABLES:
        assert spark.table(name).count() == duck_scalar(duck, f"select count(*) from {name}"), name
    assert_frames_equal(spark.table("nation").toPandas(), duck_df(duck, "select * from nation"))


# ---------------------------------------------------------------- SET, SHOW TABLES, views


def test_set_and_conf_share_one_setting(spark):
    key = "spark.fairway.test.sqlset"
    rows = spark.sql(f"SET {key}=v1").collect()
    assert [tuple(r) for r in rows] == [(key, "v1")]
    assert spark.conf.get(key) == "v1"
    spark.conf.set(key, "v2")
    rows = spark.sql(f"SET {key}").collect()
    assert [tuple(r) for r in rows] == [(key, "v2")]


def test_conf_set_get_unset(spark):
    key = "spark.fairway.test.conf"
    assert spark.conf.get(key, "fallback") == "fallback"
    with pytest.raises(PySparkException):
        spark.conf.get(key)  # unset, no default: Spark's SQL_CONF_NOT_FOUND
    spark.conf.set(key, "a")
    assert spark.conf.get(key) == "a"
    assert spark.conf.get(key, "fallback") == "a"
    spark.conf.set(key, 7)
    assert spark.conf.get(key) == "7"
    spark.conf.unset(key)
    assert spark.conf.get(key, "fallback") == "fallback"
    spark.conf.set("spark.scheduler.pool", "etl")
    assert spark.conf.get("spark.scheduler.pool") == "etl"


def test_show_tables_lists_the_tables_and_temp_views(spark):
    view = f"tv_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT 1 AS x")
    df = spark.sql("SHOW TABLES").toPandas()
    assert "tableName" in df.columns, f"SHOW TABLES columns: {list(df.columns)}"
    names = set(df["tableName"])
    assert set(TPCH_TABLES) <= names, f"missing {set(TPCH_TABLES) - names}"
    assert view in names
    if "isTemporary" in df.columns:
        temp = dict(zip(df["tableName"], df["isTemporary"]))
        assert bool(temp[view]) is True
        assert bool(temp["orders"]) is False


def test_show_tables_columns_as_spark(spark):
    df = spark.sql("SHOW TABLES")
    assert df.columns == ["namespace", "tableName", "isTemporary"]


def test_temp_view_via_sql(spark, duck):
    spark.sql(
        "CREATE OR REPLACE TEMP VIEW big_orders AS "
        "SELECT o_orderkey, o_custkey, o_totalprice FROM orders WHERE o_totalprice > 300000"
    )
    q = "SELECT o_custkey, count(*) AS n, sum(o_totalprice) AS total FROM big_orders GROUP BY o_custkey"
    expected = duck_df(
        duck,
        "SELECT o_custkey, count(*) AS n, sum(o_totalprice) AS total FROM orders "
        "WHERE o_totalprice > 300000 GROUP BY o_custkey",
    )
    assert len(expected) > 10
    assert_frames_equal(spark.sql(q).toPandas(), expected)
    # OR REPLACE really replaces.
    spark.sql("CREATE OR REPLACE TEMP VIEW big_orders AS SELECT o_orderkey FROM orders WHERE o_totalprice > 400000")
    n = spark.sql("SELECT count(*) AS n FROM big_orders").collect()[0]["n"]
    assert n == duck_scalar(duck, "select count(*) from orders where o_totalprice > 400000")
    spark.sql("DROP VIEW big_orders")
    with pytest.raises(AnalysisException):
        spark.sql("SELECT * FROM big_orders").collect()


def test_create_view_and_drop_view(spark, duck):
    view = f"v_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE VIEW {view} AS SELECT r_regionkey, r_name FROM region WHERE r_regionkey >= 2")
    assert_frames_equal(
        spark.sql(f"SELECT * FROM {view}").toPandas(),
        duck_df(duck, "SELECT r_regionkey, r_name FROM region WHERE r_regionkey >= 2"),
    )
    spark.sql(f"DROP VIEW {view}")
    with pytest.raises(AnalysisException):
        spark.sql(f"SELECT * FROM {view}").collect()


def test_create_or_replace_temp_view_from_dataframe(spark, duck):
    df = spark.table("orders").filter("o_orderstatus = 'F'")
    df.createOrReplaceTempView("f_orders")
    actual = spark.sql(
        "SELECT o_orderpriority, count(*) AS n FROM f_orders GROUP BY o_orderpriority"
    ).toPandas()
    expected = duck_df(
        duck,
        "SELECT o_orderpriority, count(*) AS n FROM orders WHERE o_orderstatus = 'F' GROUP BY o_orderpriority",
    )
    assert_frames_equal(actual, expected)


# ---------------------------------------------------------------- range, count, limit, filter, select


def test_range(spark):
    df = spark.range(5)
    assert df.columns == ["id"]
    assert df.schema == StructType([StructField("id", LongType(), False)])
    assert [r.id for r in df.collect()] == [0, 1, 2, 3, 4]
    assert sorted(r.id for r in spark.range(2, 11, 3).collect()) == [2, 5, 8]
    assert sorted(r.id for r in spark.range(10, 0, -4).collect()) == [2, 6, 10]
    assert spark.range(0).count() == 0


def test_count_is_python_int(spark, duck):
    n = spark.table("lineitem").count()
    assert type(n) is int
    assert n == duck_scalar(duck, "select count(*) from lineitem")
    m = spark.sql("select * from orders where o_orderstatus = 'O'").count()
    assert type(m) is int
    assert m == duck_scalar(duck, "select count(*) from orders where o_orderstatus = 'O'")


def test_limit(spark):
    df = spark.table("orders").limit(7)
    assert df.count() == 7
    assert len(df.collect()) == 7
    assert len(df.toPandas()) == 7


def test_filter_and_where_with_sql_strings(spark, duck):
    expected = duck_scalar(duck, "select count(*) from orders where o_totalprice > 100000 and o_orderstatus = 'F'")
    assert expected > 0
    assert spark.table("orders").filter("o_totalprice > 100000").where("o_orderstatus = 'F'").count() == expected
    assert spark.table("orders").where("o_totalprice > 100000 AND o_orderstatus = 'F'").count() == expected


def test_select_column_names(spark, duck):
    df = spark.table("customer").select("c_custkey", "c_name", "c_acctbal")
    assert df.columns == ["c_custkey", "c_name", "c_acctbal"]
    assert_frames_equal(df.toPandas(), duck_df(duck, "select c_custkey, c_name, c_acctbal from customer"))


def test_to_arrow(spark, duck):
    t = spark.sql("select n_nationkey, n_name from nation where n_regionkey = 1").toArrow()
    assert t.column_names == ["n_nationkey", "n_name"]
    assert_frames_equal(t.to_pandas(), duck_df(duck, "select n_nationkey, n_name from nation where n_regionkey = 1"))


# ---------------------------------------------------------------- joins with Spark's USING semantics

LEFT_SQL = "select n_nationkey as k, n_name as lname from nation where n_nationkey < 12"
RIGHT_SQL = "select n_nationkey as k, n_regionkey as rreg from nation where n_nationkey >= 6 and n_nationkey < 18"

JOIN_REFERENCE = {
    "inner": "select l.k, l.lname, r.rreg from l join r on l.k = r.k",
    "left": "select l.k, l.lname, r.rreg from l left join r on l.k = r.k",
    "right": "select r.k, l.lname, r.rreg from l right join r on l.k = r.k",
    "full": "select coalesce(l.k, r.k) as k, l.lname, r.rreg from l full join r on l.k = r.k",
    "outer": "select coalesce(l.k, r.k) as k, l.lname, r.rreg from l full join r on l.k = r.k",
    "left_semi": "select l.k, l.lname from l where l.k in (select k from r)",
    "left_anti": "select l.k, l.lname from l where l.k not in (select k from r)",
}


@pytest.mark.parametrize("how", list(JOIN_REFERENCE))
def test_join_using_semantics(spark, duck, how):
    left, right = spark.sql(LEFT_SQL), spark.sql(RIGHT_SQL)
    for on in ("k", ["k"]):
        joined = left.join(right, on=on, how=how)
        expected = duck_df(duck, f"with l as ({LEFT_SQL}), r as ({RIGHT_SQL}) {JOIN_REFERENCE[how]}")
        assert_frames_equal(joined.toPandas(), expected, what=f"how={how} on={on!r}")


def test_join_on_two_columns(spark, duck):
    left_sql = "select n_regionkey as r, n_nationkey % 3 as m, n_name as lname from nation"
    right_sql = "select r_regionkey as r, r_regionkey % 3 as m, r_name as rname from region"
    for how, ref in [
        ("inner", "select l.r, l.m, l.lname, x.rname from l join x on l.r = x.r and l.m = x.m"),
        (
            "full",
            "select coalesce(l.r, x.r) as r, coalesce(l.m, x.m) as m, l.lname, x.rname "
            "from l full join x on l.r = x.r and l.m = x.m",
        ),
    ]:
        joined = spark.sql(left_sql).join(spark.sql(right_sql), on=["r", "m"], how=how)
        expected = duck_df(duck, f"with l as ({left_sql}), x as ({right_sql}) {ref}")
        assert_frames_equal(joined.toPandas(), expected, what=how)


# ---------------------------------------------------------------- show, printSchema, explain

SMALL_SCHEMA = StructType(
    [
        StructField("id", LongType()),
        StructField("name", StringType()),
        StructField("score", DoubleType()),
        StructField("ok", BooleanType()),
    ]
)


def test_show_small_frame(spark, capsys):
    df = spark.createDataFrame([(1, "a", 1.5, True), (22, None, -0.25, False)], SMALL_SCHEMA)
    capsys.readouterr()
    df.show()
    out = capsys.readouterr().out
    assert out == (
        "+---+----+-----+-----+\n"
        "| id|name|score|   ok|\n"
        "+---+----+-----+-----+\n"
        "|  1|   a|  1.5| true|\n"
        "| 22|NULL|-0.25|false|\n"
        "+---+----+-----+-----+\n"
        "\n"
    )


def spark_show_text(columns, rows, shown, total, truncate=20):
    """Spark's Dataset.showString for already-stringified cells (hand-written reference):
    the table, then `only showing top N rows` (no newline after it) when rows were left out."""

    def cut(s):
        if truncate > 0 and len(s) > truncate:
            return s[:truncate] if truncate < 4 else s[: truncate - 3] + "..."
        return s

    cells = [[cut(c) for c in columns]] + [[cut(c) for c in r] for r in rows[:shown]]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(columns))]
    pad = (lambda s, w: s.rjust(w)) if truncate > 0 else (lambda s, w: s.ljust(w))
    sep = "+" + "+".join("-" * w for w in widths) + "+\n"
    lines = [sep, "|" + "|".join(pad(c, w) for c, w in zip(cells[0], widths)) + "|\n", sep]
    lines += ["|" + "|".join(pad(c, w) for c, w in zip(r, widths)) + "|\n" for r in cells[1:]]
    lines.append(sep)
    if total > shown:
        lines.append(f"only showing top {shown} {'row' if shown == 1 else 'rows'}")
    return "".join(lines)


def test_show_truncates_and_limits_to_20_rows(spark, duck, capsys):
    sql = "select n_nationkey, n_name, n_comment from nation order by n_nationkey"
    ref = duck.execute(sql).fetchall()
    assert len(ref) == 25 and any(len(r[2]) > 20 for r in ref)
    rows = [[str(a), b, c] for a, b, c in ref]
    capsys.readouterr()
    spark.sql(sql).show()
    out = capsys.readouterr().out
    assert out == spark_show_text(["n_nationkey", "n_name", "n_comment"], rows, 20, 25) + "\n"

    spark.sql(sql).show(3, truncate=False)
    out = capsys.readouterr().out
    assert out == spark_show_text(["n_nationkey", "n_name", "n_comment"], rows, 3, 25, truncate=0) + "\n"


def test_show_decimal_and_date_cells(spark, duck, capsys):
    sql = "select o_orderkey, o_totalprice, o_orderdate from orders order by o_orderkey limit 4"
    ref = duck.execute(sql).fetchall()
    rows = [[str(k), f"{p:.2f}", d.isoformat()] for k, p, d in ref]
    capsys.readouterr()
    spark.sql(sql).show()
    out = capsys.readouterr().out
    assert out == spark_show_text(["o_orderkey", "o_totalprice", "o_orderdate"], rows, 4, 4) + "\n"


def test_print_schema(spark, capsys):
    df = spark.createDataFrame([(1, "a", 1.5, True)], SMALL_SCHEMA)
    capsys.readouterr()
    df.printSchema()
    out = capsys.readouterr().out
    assert out == (
        "root\n"
        " |-- id: long (nullable = true)\n"
        " |-- name: string (nullable = true)\n"
        " |-- score: double (nullable = true)\n"
        " |-- ok: boolean (nullable = true)\n"
        "\n"
    )


def test_explain_prints_a_physical_plan(spark, capsys):
    capsys.readouterr()
    spark.sql("select l_returnflag, count(*) from lineitem group by l_returnflag").explain()
    out = capsys.readouterr().out
    assert "== Physical Plan ==" in out, out


# ---------------------------------------------------------------- schema and dtypes of parquet columns

LINEITEM_TYPES = [
    ("l_orderkey", LongType(), "bigint"),
    ("l_partkey", LongType(), "bigint"),
    ("l_suppkey", LongType(), "bigint"),
    ("l_linenumber", IntegerType(), "int"),
    ("l_quantity", DecimalType(15, 2), "decimal(15,2)"),
    ("l_extendedprice", DecimalType(15, 2), "decimal(15,2)"),
    ("l_discount", DecimalType(15, 2), "decimal(15,2)"),
    ("l_tax", DecimalType(15, 2), "decimal(15,2)"),
    ("l_returnflag", StringType(), "string"),
    ("l_linestatus", StringType(), "string"),
    ("l_shipdate", DateType(), "date"),
    ("l_commitdate", DateType(), "date"),
    ("l_receiptdate", DateType(), "date"),
    ("l_shipinstruct", StringType(), "string"),
    ("l_shipmode", StringType(), "string"),
    ("l_comment", StringType(), "string"),
]


def test_lineitem_schema_types(spark):
    # parquet INT64 -> long, INT32 -> int, DECIMAL(15,2) -> decimal(15,2),
    # STRING -> string, DATE -> date, as Spark reads them.
    schema = spark.table("lineitem").schema
    assert [(f.name, f.dataType) for f in schema.fields] == [(n, t) for n, t, _ in LINEITEM_TYPES]
    assert spark.table("lineitem").dtypes == [(n, s) for n, _, s in LINEITEM_TYPES]
    assert spark.table("lineitem").columns == [n for n, _, _ in LINEITEM_TYPES]


def test_parquet_columns_nullable_as_spark(spark):
    # Spark reads every column of a file source as nullable, whatever the file says.
    for df in (spark.table("lineitem"), spark.read.parquet(str(TABLES_DIR / "lineitem.parquet"))):
        assert [f.nullable for f in df.schema.fields] == [True] * len(LINEITEM_TYPES)


def test_rows_are_pyspark_rows(spark):
    rows = spark.sql("select r_regionkey, r_name from region order by r_regionkey").collect()
    assert rows == [
        Row(r_regionkey=0, r_name="AFRICA"),
        Row(r_regionkey=1, r_name="AMERICA"),
        Row(r_regionkey=2, r_name="ASIA"),
        Row(r_regionkey=3, r_name="EUROPE"),
        Row(r_regionkey=4, r_name="MIDDLE EAST"),
    ]


def test_unknown_view_after_drop_is_analysis_error(spark):
    spark.sql("CREATE OR REPLACE TEMP VIEW gone_soon AS SELECT 1 AS x")
    assert spark.sql("select x from gone_soon").collect()[0].x == 1
    spark.sql("DROP VIEW gone_soon")
    with pytest.raises(PySparkException):
        spark.table("gone_soon").collect()


def test_chains_of_dataframe_calls_run_and_too_long_ones_say_what_to_do(spark):
    # Each call nests the plan two protobuf messages deeper; the server
    # takes 100 levels (prost's limit) and says what to do beyond.
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    df = spark.range(3)
    for i in range(40):
        df = df.withColumn(f"c{i}", F.col("id") + i)
    assert df.columns == ["id"] + [f"c{i}" for i in range(40)]
    rows = df.orderBy("id").collect()
    assert [r.c39 for r in rows] == [39, 40, 41]
    assert sum(r.c0 for r in rows) == 3
    for i in range(40, 80):
        df = df.withColumn(f"c{i}", F.col("id") + i)
    with pytest.raises(PySparkException) as err:
        df.collect()
    assert "break the chain" in str(err.value)
    # The session goes on.
    assert spark.range(4).count() == 4


def test_describe_answers_as_spark(spark):
    rows = spark.sql("describe nation").collect()
    assert [(r.col_name, r.data_type) for r in rows] == [
        ("n_nationkey", "bigint"),
        ("n_name", "string"),
        ("n_regionkey", "bigint"),
        ("n_comment", "string"),
    ]
    assert all(r.comment is None for r in rows)


def test_aggregate_columns_are_named_as_spark_names_them(spark):
    from pyspark.sql import functions as F

    df = spark.table("orders").groupBy("o_orderpriority").agg(
        F.sum("o_totalprice"), F.count("*"), F.max("o_orderdate")
    )
    assert df.columns == ["o_orderpriority", "sum(o_totalprice)", "count(1)", "max(o_orderdate)"]
    got = {r["o_orderpriority"]: r["count(1)"] for r in df.collect()}
    assert sum(got.values()) == 15000
