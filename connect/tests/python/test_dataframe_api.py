"""DataFrame relations through `fairway connect`: projections, filters, column edits,
aggregation (groupBy, rollup, cube, pivot), joins, sorting, set operations, null
handling, sampling, windows, caching and generators.

Each test names its reference: DuckDB (TPC-H parquet files through the `duck`
fixture, or the same hand-written rows loaded into an in-memory DuckDB by
`duck_of`), or rows computed here by hand where the answer follows a Spark rule
(the rule is stated next to it)."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import duckdb
import pytest
from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.window import Window

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
    "array<int>": "INTEGER[]",
}


def ddl_columns(schema: str) -> List[Tuple[str, str]]:
    """'a int, s string, xs array<int>' -> [(a, int), (s, string), (xs, array<int>)]."""
    parts, depth, cur = [], 0, ""
    for ch in schema:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        name, typ = p.strip().split(None, 1)
        out.append((name, typ.strip().lower()))
    return out


def duck_of(**tables: Tuple[str, Sequence[tuple]]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding each table given as (Spark DDL schema, rows):
    the independent reference for the hand-written frames below."""
    con = duckdb.connect()
    for name, (schema, rows) in tables.items():
        cols = ddl_columns(schema)
        con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {DUCK_TYPES[t]}' for c, t in cols)})")
        if rows:
            marks = ", ".join("?" for _ in cols)
            con.executemany(f"INSERT INTO {name} VALUES ({marks})", [list(r) for r in rows])
    return con


def frame(spark, schema: str, rows: Sequence[tuple]):
    return spark.createDataFrame(list(rows), schema=schema)


def _key(row: tuple) -> tuple:
    # NULLs first, then values; every column holds one type.
    return tuple((v is not None, v if v is not None else 0) for v in row)


def rows_of(df) -> List[tuple]:
    return [tuple(r) for r in df.collect()]


def sorted_rows(df) -> List[tuple]:
    return sorted(rows_of(df), key=_key)


def hand(rows: Sequence[tuple]) -> List[tuple]:
    return sorted([tuple(r) for r in rows], key=_key)


def against(con, spark_df, sql: str, **kw) -> None:
    """spark_df's rows and names equal DuckDB's answer to sql on con."""
    expected = con.sql(sql).df()
    assert_frames_equal(spark_df.toPandas(), expected, **kw)


EMP_SCHEMA = "id int, name string, dept string, salary int, bonus double"
EMP = [
    (1, "alice", "eng", 100, 10.0),
    (2, "bob", "eng", 80, None),
    (3, "carol", "ops", 90, 5.0),
    (4, "dave", "ops", 90, None),
    (5, "eve", None, 70, 1.5),
    (6, "frank", "eng", 100, 2.0),
    (7, "grace", "ops", 60, 3.0),
]


@pytest.fixture
def emp(spark):
    return frame(spark, EMP_SCHEMA, EMP)


@pytest.fixture(scope="module")
def emp_duck():
    con = duck_of(t=(EMP_SCHEMA, EMP))
    yield con
    con.close()


# ---------------------------------------------------------------- select, selectExpr, filter


def test_select_columns_and_expressions(emp, emp_duck):
    """Reference: DuckDB on the same rows."""
    df = emp.select("id", emp.name, emp["salary"], (F.col("salary") * 2).alias("s2"), F.lit("k").alias("c"))
    assert df.columns == ["id", "name", "salary", "s2", "c"]
    against(emp_duck, df, "SELECT id, name, salary, salary * 2 AS s2, 'k' AS c FROM t")
    # A list of names works as varargs do.
    assert emp.select(["id", "dept"]).columns == ["id", "dept"]
    against(emp_duck, emp.select("*"), "SELECT * FROM t")


def test_select_expr(emp, emp_duck):
    """Reference: DuckDB on the same rows."""
    df = emp.selectExpr("id", "salary + 1 AS s1", "upper(name) AS u", "bonus * 2 AS b2")
    assert df.columns == ["id", "s1", "u", "b2"]
    against(emp_duck, df, "SELECT id, salary + 1 AS s1, upper(name) AS u, bonus * 2 AS b2 FROM t")


def test_filter_with_column_and_with_sql_string(emp, emp_duck):
    """Reference: DuckDB on the same rows."""
    sql = "SELECT * FROM t WHERE salary > 85 AND dept = 'eng'"
    against(emp_duck, emp.filter((F.col("salary") > 85) & (F.col("dept") == "eng")), sql)
    against(emp_duck, emp.filter("salary > 85 AND dept = 'eng'"), sql)
    against(emp_duck, emp.where(emp.salary > 85).where(emp["dept"] == "eng"), sql)
    # A NULL predicate drops the row (eve's dept is NULL).
    against(emp_duck, emp.filter(F.col("dept") != "eng"), "SELECT * FROM t WHERE dept <> 'eng'")
    against(emp_duck, emp.filter(F.col("bonus").isNull()), "SELECT * FROM t WHERE bonus IS NULL")


def test_filter_tpch_with_columns(spark, duck):
    """Reference: DuckDB on orders."""
    o = spark.table("orders")
    df = o.filter((o.o_totalprice > 200000) | (F.col("o_orderpriority") == "1-URGENT")).select(
        "o_orderkey", "o_totalprice"
    )
    expected = duck_df(
        duck,
        "SELECT o_orderkey, o_totalprice FROM orders WHERE o_totalprice > 200000 OR o_orderpriority = '1-URGENT'",
    )
    assert len(expected) > 100
    assert_frames_equal(df.toPandas(), expected)


# ---------------------------------------------------------------- withColumn(s), renames, drop


def test_with_column_adds_and_replaces_in_place(emp):
    """Hand-computed. Spark: withColumn of a new name appends it; of an existing
    name replaces that column where it stands."""
    df = emp.withColumn("s1", F.col("salary") + 1)
    assert df.columns == ["id", "name", "dept", "salary", "bonus", "s1"]
    assert [r.s1 for r in df.orderBy("id").collect()] == [r[3] + 1 for r in EMP]
    df = emp.withColumn("salary", F.col("salary") * 10)
    assert df.columns == ["id", "name", "dept", "salary", "bonus"]
    assert [r.salary for r in df.orderBy("id").collect()] == [r[3] * 10 for r in EMP]


def test_with_columns(emp):
    """Hand-computed: new columns appended in dict order, existing ones replaced in place."""
    df = emp.withColumns({"id": F.col("id") + 100, "twice": F.col("salary") * 2, "tag": F.lit("x")})
    assert df.columns == ["id", "name", "dept", "salary", "bonus", "twice", "tag"]
    rows = df.orderBy("id").select("id", "twice", "tag").collect()
    assert [tuple(r) for r in rows] == [(r[0] + 100, r[3] * 2, "x") for r in EMP]


def test_with_column_renamed_and_with_columns_renamed(emp):
    """Hand-computed. Spark: renaming a name that is not there is a no-op."""
    df = emp.withColumnRenamed("name", "nm")
    assert df.columns == ["id", "nm", "dept", "salary", "bonus"]
    assert sorted(r.nm for r in df.collect()) == sorted(r[1] for r in EMP)
    assert emp.withColumnRenamed("no_such", "x").columns == emp.columns
    df = emp.withColumnsRenamed({"id": "key", "dept": "d"})
    assert df.columns == ["key", "name", "d", "salary", "bonus"]
    assert sorted_rows(df.select("key", "d")) == hand([(r[0], r[2]) for r in EMP])


def test_drop(emp):
    """Hand-computed. Spark: drop of a name that is not there is a no-op."""
    assert emp.drop("bonus").columns == ["id", "name", "dept", "salary"]
    assert emp.drop("bonus", "name").columns == ["id", "dept", "salary"]
    assert emp.drop(F.col("dept")).columns == ["id", "name", "salary", "bonus"]
    assert emp.drop(emp.id).columns == ["name", "dept", "salary", "bonus"]
    assert emp.drop("no_such_column").columns == emp.columns
    assert sorted_rows(emp.drop("name", "dept", "bonus")) == hand([(r[0], r[3]) for r in EMP])


# ---------------------------------------------------------------- aggregation


def test_group_by_agg_small(emp, emp_duck):
    """Reference: DuckDB on the same rows (the NULL dept is a group of its own)."""
    df = emp.groupBy("dept").agg(
        F.count("*").alias("n"),
        F.count("bonus").alias("nb"),
        F.sum("salary").alias("total"),
        F.avg("salary").alias("mean"),
        F.min("name").alias("first_name"),
        F.max("bonus").alias("top_bonus"),
    )
    against(
        emp_duck,
        df,
        "SELECT dept, count(*) AS n, count(bonus) AS nb, sum(salary) AS total, avg(salary) AS mean, "
        "min(name) AS first_name, max(bonus) AS top_bonus FROM t GROUP BY dept",
    )


def test_group_by_expression_and_several_keys(emp, emp_duck):
    """Reference: DuckDB on the same rows."""
    df = emp.groupBy((F.col("salary") % 20).alias("m"), "dept").agg(F.count("*").alias("n"))
    against(emp_duck, df, "SELECT salary % 20 AS m, dept, count(*) AS n FROM t GROUP BY salary % 20, dept")


def test_grouped_data_shortcuts_and_dict_form(emp, emp_duck):
    """Reference: DuckDB on the same rows; column names are Spark's: count, max(salary), avg(bonus)."""
    df = emp.groupBy("dept").count()
    assert df.columns == ["dept", "count"]
    against(emp_duck, df, 'SELECT dept, count(*) AS "count" FROM t GROUP BY dept')
    df = emp.groupBy("dept").max("salary")
    assert df.columns == ["dept", "max(salary)"]
    against(emp_duck, df, 'SELECT dept, max(salary) AS "max(salary)" FROM t GROUP BY dept')
    df = emp.groupBy("dept").agg({"salary": "max", "bonus": "avg"})
    assert df.columns == ["dept", "max(salary)", "avg(bonus)"]
    against(
        emp_duck, df, 'SELECT dept, max(salary) AS "max(salary)", avg(bonus) AS "avg(bonus)" FROM t GROUP BY dept'
    )


def test_group_by_agg_tpch(spark, duck):
    """Reference: DuckDB on lineitem."""
    li = spark.table("lineitem")
    df = li.groupBy("l_returnflag", "l_linestatus").agg(
        F.sum("l_quantity").alias("q"),
        F.avg("l_extendedprice").alias("p"),
        F.count("*").alias("n"),
        F.min("l_shipdate").alias("first_ship"),
        F.max("l_shipdate").alias("last_ship"),
    )
    expected = duck_df(
        duck,
        "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS q, avg(l_extendedprice) AS p, count(*) AS n, "
        "min(l_shipdate) AS first_ship, max(l_shipdate) AS last_ship FROM lineitem GROUP BY 1, 2",
    )
    assert_frames_equal(df.toPandas(), expected)


def test_agg_on_whole_frame(spark, duck, emp, emp_duck):
    """Reference: DuckDB (one row, no group keys)."""
    df = emp.agg(F.sum("salary").alias("s"), F.max("id").alias("m"), F.count("bonus").alias("nb"))
    against(emp_duck, df, "SELECT sum(salary) AS s, max(id) AS m, count(bonus) AS nb FROM t")
    df = spark.table("orders").agg(F.count("*").alias("n"), F.sum("o_totalprice").alias("s"))
    expected = duck_df(duck, "SELECT count(*) AS n, sum(o_totalprice) AS s FROM orders")
    assert_frames_equal(df.toPandas(), expected)
    # An aggregate over no rows still gives one row: count 0, sum NULL.
    df = emp.filter("id > 100").agg(F.count("*").alias("n"), F.sum("salary").alias("s"))
    assert rows_of(df) == [(0, None)]


def test_rollup_matches_duckdb(spark, duck):
    """Reference: DuckDB GROUP BY ROLLUP: subtotal rows carry NULL group keys
    (neither key column holds a NULL of its own)."""
    df = spark.table("orders").rollup("o_orderstatus", "o_orderpriority").agg(
        F.count("*").alias("n"), F.sum("o_totalprice").alias("s")
    )
    expected = duck_df(
        duck,
        "SELECT o_orderstatus, o_orderpriority, count(*) AS n, sum(o_totalprice) AS s "
        "FROM orders GROUP BY ROLLUP (o_orderstatus, o_orderpriority)",
    )
    assert len(expected) == 3 * 5 + 3 + 1
    assert_frames_equal(df.toPandas(), expected)


def test_cube_matches_duckdb(spark, duck):
    """Reference: DuckDB GROUP BY CUBE."""
    df = spark.table("orders").cube("o_orderstatus", "o_orderpriority").agg(F.count("*").alias("n"))
    expected = duck_df(
        duck,
        "SELECT o_orderstatus, o_orderpriority, count(*) AS n FROM orders "
        "GROUP BY CUBE (o_orderstatus, o_orderpriority)",
    )
    assert len(expected) == 3 * 5 + 3 + 5 + 1
    assert_frames_equal(df.toPandas(), expected)


def test_rollup_small_by_hand(emp):
    """Hand-computed: rollup(dept) = one row per dept plus a grand total with dept NULL;
    eve's own NULL dept is a group too, so two rows have dept NULL."""
    rows = rows_of(emp.rollup("dept").agg(F.sum("salary").alias("s")))
    assert sorted(rows, key=lambda r: (r[0] is not None, r[0] or "", r[1])) == [
        (None, 70),
        (None, 590),
        ("eng", 280),
        ("ops", 240),
    ]


SALES_SCHEMA = "year int, quarter string, amount int"
SALES = [(2024, "Q3", 4), (2023, "Q1", 10), (2023, "Q2", 7), (2024, "Q1", 3), (2023, "Q1", 5)]


def test_pivot_with_values(spark):
    """Reference: DuckDB conditional sums; Spark: one column per listed value, in the
    order listed, named by the value; a missing combination is NULL."""
    sales = frame(spark, SALES_SCHEMA, SALES)
    con = duck_of(t=(SALES_SCHEMA, SALES))
    df = sales.groupBy("year").pivot("quarter", ["Q3", "Q1"]).sum("amount")
    assert df.columns == ["year", "Q3", "Q1"]
    against(
        con,
        df,
        "SELECT year, sum(amount) FILTER (WHERE quarter = 'Q3') AS Q3, "
        "sum(amount) FILTER (WHERE quarter = 'Q1') AS Q1 FROM t GROUP BY year",
    )
    assert sorted_rows(df) == [(2023, None, 15), (2024, 4, 3)]


def test_pivot_without_values_sorts_the_distinct_values(spark):
    """Hand-computed. Spark: without values it pivots on the distinct values, sorted."""
    sales = frame(spark, SALES_SCHEMA, SALES)
    df = sales.groupBy("year").pivot("quarter").sum("amount")
    assert df.columns == ["year", "Q1", "Q2", "Q3"]
    assert sorted_rows(df) == [(2023, 15, 7, None), (2024, 3, None, 4)]
    df = sales.groupBy("year").pivot("quarter").agg(F.count("*"))
    assert df.columns == ["year", "Q1", "Q2", "Q3"]
    # count of an absent combination is NULL in a pivot (no row to count).
    assert sorted_rows(df) == [(2023, 2, 1, None), (2024, 1, None, 1)]


# ---------------------------------------------------------------- joins

JA_SCHEMA = "id int, x string"
JA = [(1, "a1"), (2, "a2"), (2, "a2b"), (3, "a3"), (None, "anull")]
JB_SCHEMA = "id int, y string"
JB = [(2, "b2"), (3, "b3"), (3, "b3b"), (4, "b4"), (None, "bnull")]


@pytest.fixture(scope="module")
def join_duck():
    con = duck_of(a=(JA_SCHEMA, JA), b=(JB_SCHEMA, JB))
    yield con
    con.close()


COND_JOIN_SQL = {
    "inner": "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a JOIN b ON a.id = b.id",
    "left": "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a LEFT JOIN b ON a.id = b.id",
    "left_outer": "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a LEFT JOIN b ON a.id = b.id",
    "right": "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a RIGHT JOIN b ON a.id = b.id",
    "right_outer": "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a RIGHT JOIN b ON a.id = b.id",
    "full": "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a FULL JOIN b ON a.id = b.id",
    "outer": "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a FULL JOIN b ON a.id = b.id",
    "full_outer": "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a FULL JOIN b ON a.id = b.id",
}


@pytest.mark.parametrize("how", list(COND_JOIN_SQL))
def test_join_on_column_expression(spark, join_duck, how):
    """Reference: DuckDB (NULL keys never match)."""
    a, b = frame(spark, JA_SCHEMA, JA), frame(spark, JB_SCHEMA, JB)
    df = a.join(b, a.id == b.id, how).select(a.id.alias("aid"), a.x, b["id"].alias("bid"), b.y)
    against(join_duck, df, COND_JOIN_SQL[how], what=how)


SEMI = "SELECT * FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.id = a.id)"
ANTI = "SELECT * FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.id = a.id)"


@pytest.mark.parametrize(
    "how,sql",
    [
        pytest.param("left_semi", SEMI, id="left_semi"),
        pytest.param("semi", SEMI, id="semi"),
        pytest.param("left_anti", ANTI, id="left_anti"),
        pytest.param("anti", ANTI, id="anti"),
    ],
)
def test_semi_and_anti_joins(spark, join_duck, how, sql):
    """Reference: DuckDB EXISTS / NOT EXISTS: only the left columns, each left row at
    most once; the anti join keeps the left row whose key is NULL."""
    a, b = frame(spark, JA_SCHEMA, JA), frame(spark, JB_SCHEMA, JB)
    df = a.join(b, a.id == b.id, how)
    assert df.columns == ["id", "x"]
    against(join_duck, df, sql, what=how)
    # The same with a USING column.
    against(join_duck, a.join(b, "id", how), sql, what=f"{how} on='id'")


USING_JOIN_SQL = {
    "inner": "SELECT a.id AS id, a.x, b.y FROM a JOIN b ON a.id = b.id",
    "left": "SELECT a.id AS id, a.x, b.y FROM a LEFT JOIN b ON a.id = b.id",
    "right": "SELECT b.id AS id, a.x, b.y FROM a RIGHT JOIN b ON a.id = b.id",
    "full": "SELECT coalesce(a.id, b.id) AS id, a.x, b.y FROM a FULL JOIN b ON a.id = b.id",
}


@pytest.mark.parametrize("how", list(USING_JOIN_SQL))
def test_join_on_names(spark, join_duck, how):
    """Reference: DuckDB. Spark's USING join: the key once, first (the left key, the
    right key for a right join, coalesce of both for a full join), then the others."""
    a, b = frame(spark, JA_SCHEMA, JA), frame(spark, JB_SCHEMA, JB)
    for on in ("id", ["id"]):
        df = a.join(b, on=on, how=how)
        assert df.columns == ["id", "x", "y"]
        against(join_duck, df, USING_JOIN_SQL[how], what=f"{how} on={on!r}")
    if how == "inner":
        against(join_duck, a.join(b, "id"), USING_JOIN_SQL["inner"], what="default how")


def test_cross_join(spark, join_duck):
    """Reference: DuckDB CROSS JOIN (5 x 5 rows)."""
    a, b = frame(spark, JA_SCHEMA, JA), frame(spark, JB_SCHEMA, JB)
    sql = "SELECT a.id AS aid, a.x, b.id AS bid, b.y FROM a CROSS JOIN b"
    df = a.crossJoin(b)
    assert df.columns == ["id", "x", "id", "y"]
    assert df.count() == 25
    against(join_duck, df.select(a.id.alias("aid"), a.x, b.id.alias("bid"), b.y), sql, what="crossJoin")
    df = a.join(b, how="cross")
    against(join_duck, df.select(a.id.alias("aid"), a.x, b.id.alias("bid"), b.y), sql, what="how=cross")


def test_qualified_references_after_join(spark, join_duck):
    """Reference: DuckDB. a.join(b, a.id == b.id).select(a.id, b.y): each side's
    columns by reference, though both sides have an `id`."""
    a, b = frame(spark, JA_SCHEMA, JA), frame(spark, JB_SCHEMA, JB)
    j = a.join(b, a.id == b.id)
    against(join_duck, j.select(a.id, b.y), "SELECT a.id, b.y FROM a JOIN b ON a.id = b.id")
    against(join_duck, j.select(b["id"], a["x"]), "SELECT b.id, a.x FROM a JOIN b ON a.id = b.id")
    against(
        join_duck,
        j.filter(b.y != "b3b").select(a.x, b.y),
        "SELECT a.x, b.y FROM a JOIN b ON a.id = b.id WHERE b.y <> 'b3b'",
    )
    # A bare name both sides have is ambiguous.
    with pytest.raises(AnalysisException):
        j.select("id").collect()


def test_join_tpch_with_qualified_columns(spark, duck):
    """Reference: DuckDB on orders and customer."""
    o, c = spark.table("orders"), spark.table("customer")
    df = (
        o.join(c, o.o_custkey == c["c_custkey"])
        .groupBy(c.c_mktsegment)
        .agg(F.count("*").alias("n"), F.sum(o.o_totalprice).alias("s"))
    )
    expected = duck_df(
        duck,
        "SELECT c_mktsegment, count(*) AS n, sum(o_totalprice) AS s "
        "FROM orders JOIN customer ON o_custkey = c_custkey GROUP BY c_mktsegment",
    )
    assert_frames_equal(df.toPandas(), expected)


def test_alias_and_dotted_column_names(spark, emp):
    """Hand-computed: a self join of aliased frames, columns named `alias.col`."""
    df = emp.alias("e1").join(emp.alias("e2"), F.col("e1.id") == F.col("e2.id") + 1)
    df = df.select(F.col("e1.name").alias("name"), F.col("e2.name").alias("prev"))
    names = [r[1] for r in EMP]
    assert sorted_rows(df) == hand(list(zip(names[1:], names[:-1])))
    # select("a.x") on one aliased frame names the column x.
    df = emp.alias("a").select("a.name", F.col("a.salary"))
    assert df.columns == ["name", "salary"]
    assert sorted_rows(df) == hand([(r[1], r[3]) for r in EMP])


def test_to_df_renames_every_column(spark, duck):
    """Reference: DuckDB on nation."""
    df = spark.table("nation").toDF("k", "name", "region", "comment")
    assert df.columns == ["k", "name", "region", "comment"]
    expected = duck_df(
        duck, "SELECT n_nationkey AS k, n_name AS name, n_regionkey AS region, n_comment AS comment FROM nation"
    )
    assert_frames_equal(df.toPandas(), expected)
    n = duck_scalar(duck, "SELECT count(*) FROM nation WHERE n_regionkey = 1")
    assert df.filter(F.col("region") == 1).count() == n


# ---------------------------------------------------------------- ordering, limit, offset

ORD_SCHEMA = "k int, s string"
ORD = [(3, "c"), (None, "n"), (1, "a"), (2, "b")]


def test_order_by_null_placement(spark):
    """Hand-computed. Spark: ascending puts NULLs first, descending puts them last,
    unless asc_nulls_last / desc_nulls_first and friends say otherwise."""
    df = frame(spark, ORD_SCHEMA, ORD)

    def ks(d):
        return [r.k for r in d.collect()]

    assert ks(df.orderBy("k")) == [None, 1, 2, 3]
    assert ks(df.orderBy(F.col("k").asc())) == [None, 1, 2, 3]
    assert ks(df.orderBy(F.asc("k"))) == [None, 1, 2, 3]
    assert ks(df.orderBy(F.col("k").desc())) == [3, 2, 1, None]
    assert ks(df.orderBy(F.desc("k"))) == [3, 2, 1, None]
    assert ks(df.orderBy("k", ascending=False)) == [3, 2, 1, None]
    assert ks(df.sort(F.asc_nulls_last("k"))) == [1, 2, 3, None]
    assert ks(df.sort(F.col("k").asc_nulls_last())) == [1, 2, 3, None]
    assert ks(df.sort(F.desc_nulls_first("k"))) == [None, 3, 2, 1]
    assert ks(df.sort(F.col("k").desc_nulls_first())) == [None, 3, 2, 1]
    assert ks(df.sort(F.asc_nulls_first("k"))) == [None, 1, 2, 3]
    assert ks(df.sort(F.desc_nulls_last("k"))) == [3, 2, 1, None]


def test_order_by_several_keys(emp):
    """Hand-computed: dept ascending (NULL first), then salary descending, then id."""
    rows = emp.orderBy(F.col("dept"), F.col("salary").desc(), "id").select("id").collect()
    assert [r.id for r in rows] == [5, 1, 6, 2, 3, 4, 7]
    rows = emp.orderBy(["dept", "salary"], ascending=[False, True]).select("id").collect()
    ids = [r.id for r in rows]
    assert ids[:1] == [7] and set(ids[1:3]) == {3, 4} and ids[3] == 2 and set(ids[4:6]) == {1, 6} and ids[6] == 5


def test_order_by_tpch_in_order(spark, duck):
    """Reference: DuckDB, row order compared."""
    df = spark.table("orders").orderBy(F.desc("o_totalprice"), "o_orderkey").select("o_orderkey", "o_totalprice")
    expected = duck_df(
        duck, "SELECT o_orderkey, o_totalprice FROM orders ORDER BY o_totalprice DESC, o_orderkey LIMIT 10"
    )
    assert_frames_equal(df.limit(10).toPandas(), expected, sort=False)


def test_limit_and_offset(spark):
    """Hand-computed on spark.range."""
    df = spark.range(20).orderBy("id")
    assert [r.id for r in df.limit(5).collect()] == [0, 1, 2, 3, 4]
    assert [r.id for r in df.offset(15).collect()] == [15, 16, 17, 18, 19]
    assert [r.id for r in df.offset(3).limit(4).collect()] == [3, 4, 5, 6]
    assert [r.id for r in df.limit(5).offset(2).collect()] == [2, 3, 4]
    assert df.offset(30).count() == 0
    assert df.limit(0).count() == 0


# ---------------------------------------------------------------- distinct, dropDuplicates


def test_distinct(emp, emp_duck, spark, duck):
    """Reference: DuckDB SELECT DISTINCT."""
    against(emp_duck, emp.select("dept", "salary").distinct(), "SELECT DISTINCT dept, salary FROM t")
    df = spark.table("lineitem").select("l_returnflag", "l_linestatus").distinct()
    assert_frames_equal(df.toPandas(), duck_df(duck, "SELECT DISTINCT l_returnflag, l_linestatus FROM lineitem"))
    dup = frame(spark, "a int, b string", [(1, "x"), (1, "x"), (None, None), (None, None), (2, "x")])
    assert sorted_rows(dup.distinct()) == hand([(1, "x"), (None, None), (2, "x")])


def test_drop_duplicates(emp):
    """Hand-computed keys and counts only: which row of a group is kept is unspecified."""
    df = emp.dropDuplicates(["dept"])
    assert df.columns == emp.columns
    assert df.count() == 3
    keys = sorted((r.dept is not None, r.dept or "") for r in df.collect())
    assert keys == [(False, ""), (True, "eng"), (True, "ops")]
    kept = {(r.id, r.name, r.dept, r.salary, r.bonus) for r in df.collect()}
    assert kept <= set(EMP)
    df = emp.drop_duplicates(["dept", "salary"])
    assert sorted({(r.dept or "", r.salary) for r in df.collect()}) == sorted({(r[2] or "", r[3]) for r in EMP})
    assert df.count() == 5
    # No subset: whole-row duplicates.
    assert emp.union(emp).dropDuplicates().count() == len(EMP)


# ---------------------------------------------------------------- set operations

U1_SCHEMA = "k int, v string"
U1 = [(1, "a"), (2, "b"), (2, "b"), (2, "b"), (3, "c"), (None, "z")]
U2 = [(2, "b"), (2, "b"), (3, "c"), (3, "c"), (4, "d"), (None, "z")]


@pytest.fixture(scope="module")
def set_duck():
    con = duck_of(u1=(U1_SCHEMA, U1), u2=(U1_SCHEMA, U2))
    yield con
    con.close()


@pytest.mark.parametrize(
    "op,sql",
    [
        pytest.param("union", "SELECT * FROM u1 UNION ALL SELECT * FROM u2", id="union"),
        pytest.param("unionAll", "SELECT * FROM u1 UNION ALL SELECT * FROM u2", id="unionAll"),
        pytest.param("intersect", "SELECT * FROM u1 INTERSECT SELECT * FROM u2", id="intersect"),
        pytest.param("intersectAll", "SELECT * FROM u1 INTERSECT ALL SELECT * FROM u2", id="intersectAll"),
        pytest.param("subtract", "SELECT * FROM u1 EXCEPT SELECT * FROM u2", id="subtract"),
        pytest.param("exceptAll", "SELECT * FROM u1 EXCEPT ALL SELECT * FROM u2", id="exceptAll"),
    ],
)
def test_set_operations(spark, set_duck, op, sql):
    """Reference: DuckDB. Spark: union/unionAll keep duplicates; intersect/subtract
    are distinct; intersectAll/exceptAll count duplicates; NULLs compare equal."""
    u1, u2 = frame(spark, U1_SCHEMA, U1), frame(spark, U1_SCHEMA, U2)
    df = getattr(u1, op)(u2)
    assert df.columns == ["k", "v"]
    against(set_duck, df, sql, what=op)


def test_set_operations_by_hand(spark):
    """Hand-computed multisets, the same rules as above."""
    u1, u2 = frame(spark, U1_SCHEMA, U1), frame(spark, U1_SCHEMA, U2)
    assert sorted_rows(u1.intersectAll(u2)) == hand([(2, "b"), (2, "b"), (3, "c"), (None, "z")])
    assert sorted_rows(u1.exceptAll(u2)) == hand([(1, "a"), (2, "b")])
    assert sorted_rows(u1.subtract(u2)) == hand([(1, "a")])
    assert sorted_rows(u1.intersect(u2)) == hand([(2, "b"), (3, "c"), (None, "z")])


def test_union_is_by_position_and_keeps_the_first_names(spark):
    """Hand-computed. Spark: union matches columns by position; names come from the left."""
    a = frame(spark, "k int, v string", [(1, "a")])
    b = frame(spark, "n int, w string", [(2, "b")])
    df = a.union(b)
    assert df.columns == ["k", "v"]
    assert sorted_rows(df) == [(1, "a"), (2, "b")]
    with pytest.raises(AnalysisException):
        a.union(frame(spark, "n int", [(3,)])).collect()


def test_union_by_name(spark):
    """Hand-computed. Spark: unionByName matches by name, keeps the left order; with
    allowMissingColumns=True a column one side lacks is NULL there; without the flag
    mismatched columns are an AnalysisException."""
    a = frame(spark, "k int, v string", [(1, "a"), (2, "b")])
    b = frame(spark, "v string, k int", [("c", 3)])
    df = a.unionByName(b)
    assert df.columns == ["k", "v"]
    assert sorted_rows(df) == [(1, "a"), (2, "b"), (3, "c")]
    c = frame(spark, "k int, w double", [(4, 0.5)])
    df = a.unionByName(c, allowMissingColumns=True)
    assert df.columns == ["k", "v", "w"]
    assert sorted_rows(df) == [(1, "a", None), (2, "b", None), (4, None, 0.5)]
    with pytest.raises(AnalysisException):
        a.unionByName(c).collect()


def test_set_operations_tpch(spark, duck):
    """Reference: DuckDB on nation."""
    n = spark.table("nation").select("n_nationkey", "n_regionkey")
    lo, hi = n.filter("n_regionkey < 3"), n.filter("n_regionkey >= 2")
    base = "SELECT n_nationkey, n_regionkey FROM nation"
    for df, sql in [
        (lo.union(hi), f"{base} WHERE n_regionkey < 3 UNION ALL {base} WHERE n_regionkey >= 2"),
        (lo.intersect(hi), f"{base} WHERE n_regionkey < 3 INTERSECT {base} WHERE n_regionkey >= 2"),
        (lo.subtract(hi), f"{base} WHERE n_regionkey < 3 EXCEPT {base} WHERE n_regionkey >= 2"),
    ]:
        assert_frames_equal(df.toPandas(), duck_df(duck, sql), what=sql)


# ---------------------------------------------------------------- na.fill, na.drop

NA_SCHEMA = "k int, i int, d double, s string, b boolean"
NA = [
    (1, 1, 1.0, "a", True),
    (2, 2, None, "b", None),
    (3, None, None, None, None),
    (4, None, 4.0, "d", False),
]


def test_na_fill(spark):
    """Hand-computed. Spark: fill(number) touches numeric columns only, fill(str)
    string columns only, fill(bool) boolean columns only; a dict fills per column;
    subset limits the columns."""
    df = frame(spark, NA_SCHEMA, NA)

    def got(d):
        return rows_of(d.orderBy("k"))

    assert got(df.na.fill(0)) == [
        (1, 1, 1.0, "a", True),
        (2, 2, 0.0, "b", None),
        (3, 0, 0.0, None, None),
        (4, 0, 4.0, "d", False),
    ]
    assert got(df.fillna("u")) == [
        (1, 1, 1.0, "a", True),
        (2, 2, None, "b", None),
        (3, None, None, "u", None),
        (4, None, 4.0, "d", False),
    ]
    assert got(df.na.fill(False)) == [
        (1, 1, 1.0, "a", True),
        (2, 2, None, "b", False),
        (3, None, None, None, False),
        (4, None, 4.0, "d", False),
    ]
    assert got(df.na.fill({"i": 7, "s": "none"})) == [
        (1, 1, 1.0, "a", True),
        (2, 2, None, "b", None),
        (3, 7, None, "none", None),
        (4, 7, 4.0, "d", False),
    ]
    assert got(df.na.fill(9, subset=["i"])) == [
        (1, 1, 1.0, "a", True),
        (2, 2, None, "b", None),
        (3, 9, None, None, None),
        (4, 9, 4.0, "d", False),
    ]


def test_na_drop(spark):
    """Hand-computed. Spark: how='any' drops a row with any NULL, how='all' one whose
    columns are all NULL; thresh keeps rows with at least that many non-NULLs (and
    overrides how); subset limits the columns looked at."""
    df = frame(spark, NA_SCHEMA, NA)

    def ks(d):
        return sorted(r.k for r in d.collect())

    assert ks(df.na.drop()) == [1]
    assert ks(df.dropna(how="any")) == [1]
    assert ks(df.na.drop(how="all")) == [1, 2, 3, 4]
    assert ks(df.na.drop(how="all", subset=["i", "d", "s", "b"])) == [1, 2, 4]
    assert ks(df.na.drop(thresh=3)) == [1, 2, 4]
    assert ks(df.na.drop(thresh=5)) == [1]
    assert ks(df.na.drop(subset=["i"])) == [1, 2]
    assert ks(df.na.drop(subset=["d", "s"])) == [1, 4]


# ---------------------------------------------------------------- sample, repartition, coalesce


def test_sample_with_seed(spark):
    """Hand-checked properties: one seed gives the same rows twice; about fraction * n
    rows (n = 100000, fraction 0.1: 10000, one standard deviation ~95); each sampled
    row is an input row, once."""
    df = spark.range(100000)
    first = [r.id for r in df.sample(fraction=0.1, seed=42).collect()]
    again = [r.id for r in df.sample(fraction=0.1, seed=42).collect()]
    assert sorted(first) == sorted(again)
    assert 8500 <= len(first) <= 11500, len(first)
    assert len(set(first)) == len(first)
    assert all(0 <= i < 100000 for i in first)
    assert 8500 <= df.sample(0.1, 7).count() <= 11500
    small = [r.id for r in spark.range(50).sample(0.5, seed=1).collect()]
    assert set(small) <= set(range(50))


def test_sample_with_replacement_works_or_says_so(spark):
    """Either Poisson sampling (rows from the input, about fraction * n of them) or a
    clear error naming sampling."""
    df = spark.range(20000)
    try:
        ids = [r.id for r in df.sample(withReplacement=True, fraction=0.5, seed=3).collect()]
    except PySparkException as e:
        msg = str(e).lower()
        assert "sampl" in msg or "replacement" in msg, str(e)
        return
    assert 8500 <= len(ids) <= 11500, len(ids)
    assert all(0 <= i < 20000 for i in ids)


def test_repartition_and_coalesce_keep_the_rows(spark, duck):
    """Reference: DuckDB on orders."""
    expected = duck_df(duck, "SELECT o_orderkey, o_custkey, o_orderstatus FROM orders")
    o = spark.table("orders").select("o_orderkey", "o_custkey", "o_orderstatus")
    for df in (
        o.repartition(4),
        o.repartition(3, "o_custkey"),
        o.repartition("o_orderstatus"),
        o.coalesce(1),
        o.repartition(5).coalesce(2),
    ):
        assert_frames_equal(df.toPandas(), expected)
    assert o.repartition(7).count() == 15000


# ---------------------------------------------------------------- windows


def test_window_ranking(emp, emp_duck):
    """Reference: DuckDB window functions on the same rows (ties share rank)."""
    w = Window.partitionBy("dept").orderBy(F.col("salary").desc())
    df = emp.select(
        "id",
        F.row_number().over(Window.partitionBy("dept").orderBy(F.col("salary").desc(), "id")).alias("rn"),
        F.rank().over(w).alias("rk"),
        F.dense_rank().over(w).alias("drk"),
    )
    against(
        emp_duck,
        df,
        "SELECT id, row_number() OVER (PARTITION BY dept ORDER BY salary DESC, id) AS rn, "
        "rank() OVER (PARTITION BY dept ORDER BY salary DESC) AS rk, "
        "dense_rank() OVER (PARTITION BY dept ORDER BY salary DESC) AS drk FROM t",
    )
    got = {r.id: (r.rn, r.rk, r.drk) for r in df.collect()}
    # Hand check of eng (alice 100, frank 100, bob 80): ranks 1, 1, 3; dense 1, 1, 2.
    assert got[1] == (1, 1, 1) and got[6] == (2, 1, 1) and got[2] == (3, 3, 2)


def test_window_lag_lead(emp, emp_duck):
    """Reference: DuckDB lag/lead with offsets and defaults."""
    w = Window.partitionBy("dept").orderBy("id")
    df = emp.select(
        "id",
        F.lag("salary").over(w).alias("prev"),
        F.lag("salary", 2).over(w).alias("prev2"),
        F.lead("salary", 1, -1).over(w).alias("next"),
        F.lead(F.col("name"), 2, "none").over(w).alias("next2"),
    )
    against(
        emp_duck,
        df,
        "SELECT id, lag(salary) OVER w AS prev, lag(salary, 2) OVER w AS prev2, "
        "lead(salary, 1, -1) OVER w AS next, lead(name, 2, 'none') OVER w AS next2 "
        "FROM t WINDOW w AS (PARTITION BY dept ORDER BY id)",
    )


def test_window_running_aggregates_use_range_frames(emp, emp_duck):
    """Reference: DuckDB. With orderBy and no frame Spark's frame is RANGE BETWEEN
    UNBOUNDED PRECEDING AND CURRENT ROW: rows tied on the order key share the value."""
    w = Window.partitionBy("dept").orderBy("salary")
    df = emp.select(
        "id",
        F.sum("salary").over(w).alias("s"),
        F.avg("salary").over(w).alias("a"),
        F.min("bonus").over(w).alias("mn"),
        F.max("bonus").over(w).alias("mx"),
        F.count("bonus").over(w).alias("c"),
    )
    against(
        emp_duck,
        df,
        "SELECT id, sum(salary) OVER w AS s, avg(salary) OVER w AS a, min(bonus) OVER w AS mn, "
        "max(bonus) OVER w AS mx, count(bonus) OVER w AS c FROM t WINDOW w AS (PARTITION BY dept ORDER BY salary)",
    )
    got = {r.id: r.s for r in df.collect()}
    # Hand check: eng 80 -> 80, then alice and frank (100, tied) both 280.
    assert (got[2], got[1], got[6]) == (80, 280, 280)


def test_window_rows_frames(emp, emp_duck):
    """Reference: DuckDB ROWS frames."""
    w = Window.partitionBy("dept").orderBy("id")
    df = emp.select(
        "id",
        F.sum("salary").over(w.rowsBetween(-1, 1)).alias("s3"),
        F.sum("salary").over(w.rowsBetween(Window.unboundedPreceding, Window.currentRow)).alias("run"),
        F.max("salary").over(w.rowsBetween(Window.currentRow, Window.unboundedFollowing)).alias("rest"),
    )
    against(
        emp_duck,
        df,
        "SELECT id, sum(salary) OVER (PARTITION BY dept ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS s3, "
        "sum(salary) OVER (PARTITION BY dept ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run, "
        "max(salary) OVER (PARTITION BY dept ORDER BY id ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS rest "
        "FROM t",
    )


def test_window_whole_partition_and_whole_frame(emp, emp_duck):
    """Reference: DuckDB. Without orderBy the frame is the whole partition."""
    w = Window.partitionBy("dept")
    df = emp.select(
        "id",
        F.sum("salary").over(w).alias("dept_total"),
        F.count("*").over(w).alias("dept_n"),
        F.avg("bonus").over(w).alias("dept_bonus"),
        F.row_number().over(Window.orderBy("id")).alias("rn"),
        F.max("salary").over(Window.partitionBy()).alias("top"),
    )
    against(
        emp_duck,
        df,
        "SELECT id, sum(salary) OVER (PARTITION BY dept) AS dept_total, count(*) OVER (PARTITION BY dept) AS dept_n, "
        "avg(bonus) OVER (PARTITION BY dept) AS dept_bonus, row_number() OVER (ORDER BY id) AS rn, "
        "max(salary) OVER () AS top FROM t",
    )


def test_window_tpch(spark, duck):
    """Reference: DuckDB window SQL on orders."""
    w = Window.partitionBy("o_custkey").orderBy("o_orderdate", "o_orderkey")
    df = spark.table("orders").select(
        "o_orderkey",
        F.row_number().over(w).alias("rn"),
        F.sum("o_totalprice").over(w).alias("running"),
        F.lag("o_orderdate").over(w).alias("prev_date"),
        F.count("*").over(Window.partitionBy("o_custkey")).alias("n"),
    )
    expected = duck_df(
        duck,
        "SELECT o_orderkey, row_number() OVER w AS rn, sum(o_totalprice) OVER w AS running, "
        "lag(o_orderdate) OVER w AS prev_date, count(*) OVER (PARTITION BY o_custkey) AS n "
        "FROM orders WINDOW w AS (PARTITION BY o_custkey ORDER BY o_orderdate, o_orderkey)",
    )
    assert_frames_equal(df.toPandas(), expected)


# ---------------------------------------------------------------- cache, persist


def test_cache_persist_unpersist(spark, duck):
    """Reference: DuckDB on orders: caching changes no answer, and a cached frame
    serves two different queries."""
    from pyspark.storagelevel import StorageLevel

    base = "FROM orders WHERE o_totalprice > 150000"
    df = spark.table("orders").filter("o_totalprice > 150000").cache()
    n = duck_scalar(duck, f"SELECT count(*) {base}")
    assert df.count() == n
    assert df.count() == n
    assert_frames_equal(
        df.groupBy("o_orderstatus").agg(F.count("*").alias("c")).toPandas(),
        duck_df(duck, f"SELECT o_orderstatus, count(*) AS c {base} GROUP BY o_orderstatus"),
    )
    assert_frames_equal(
        df.agg(F.max("o_totalprice").alias("m")).toPandas(), duck_df(duck, f"SELECT max(o_totalprice) AS m {base}")
    )
    df.unpersist()
    assert df.count() == n
    p = spark.table("nation").persist(StorageLevel.MEMORY_AND_DISK)
    assert_frames_equal(p.toPandas(), duck_df(duck, "SELECT * FROM nation"))
    assert p.filter("n_regionkey = 0").count() == duck_scalar(duck, "SELECT count(*) FROM nation WHERE n_regionkey = 0")
    p.unpersist()


# ---------------------------------------------------------------- explode

ARR_SCHEMA = "id int, xs array<int>"
ARR = [(1, [1, 2]), (2, []), (3, None), (4, [3])]


def test_explode_and_explode_outer(spark):
    """Hand-computed. Spark: explode drops rows whose array is empty or NULL;
    explode_outer keeps them with a NULL element; the generated column is `col`."""
    df = frame(spark, ARR_SCHEMA, ARR)
    assert df.select(F.explode("xs")).columns == ["col"]
    assert sorted_rows(df.select("id", F.explode("xs").alias("x"))) == [(1, 1), (1, 2), (4, 3)]
    assert sorted_rows(df.select("id", F.explode_outer("xs").alias("x"))) == [
        (1, 1),
        (1, 2),
        (2, None),
        (3, None),
        (4, 3),
    ]
    assert sorted_rows(df.withColumn("x", F.explode("xs")).select("id", "x")) == [(1, 1), (1, 2), (4, 3)]


# ---------------------------------------------------------------- what the server does not do


def test_unknown_function_is_analysis_exception(spark):
    """Hand-written: Spark answers an unknown function with AnalysisException
    (UNRESOLVED_ROUTINE) naming it; the session goes on."""
    df = spark.range(3)
    with pytest.raises(AnalysisException) as err:
        df.select(F.call_function("no_such_fn", F.col("id"))).collect()
    assert "no_such_fn" in str(err.value)
    with pytest.raises(AnalysisException) as err:
        spark.sql("SELECT no_such_fn2(1)").collect()
    assert "no_such_fn2" in str(err.value)
    assert spark.range(4).count() == 4


def test_tail_answers_or_names_itself(spark):
    """Either the right answer (hand-computed: the last rows of the ordered frame) or
    an AnalysisException that names the unsupported call."""
    df = spark.range(10).orderBy("id")
    try:
        rows = df.tail(2)
    except AnalysisException as e:
        assert "tail" in str(e).lower(), str(e)
    else:
        assert rows == [Row(id=8), Row(id=9)]
    assert spark.range(4).count() == 4


def test_crosstab_answers_or_names_itself(spark):
    """Either the right answer (hand-computed: a row per value of the first column,
    a column per value of the second, counts with 0 for absent pairs, the first
    column named `a_b`) or an AnalysisException that names the unsupported call."""
    df = frame(spark, "a string, b string", [("x", "p"), ("x", "q"), ("x", "p"), ("y", "q")])
    try:
        ct = df.stat.crosstab("a", "b")
        rows = ct.collect()
    except AnalysisException as e:
        assert "crosstab" in str(e).lower(), str(e)
    else:
        assert ct.columns[0] == "a_b" and sorted(ct.columns[1:]) == ["p", "q"]
        got = {r["a_b"]: (r["p"], r["q"]) for r in rows}
        assert got == {"x": (2, 1), "y": (0, 1)}
    assert spark.range(4).count() == 4


def test_window_range_offsets_and_aggregates_in_select(spark):
    """Reference: DuckDB on the same rows. rangeBetween(-1, 0) sums the keys
    within 1 below the current one (ties included), whatever the key's integer
    type; an aggregate in select() aggregates the whole frame, as in Spark."""
    rows = [(1, 10), (2, 20), (2, 5), (4, 7), (5, 1)]
    df = spark.createDataFrame(rows, "k int, v bigint")
    w = Window.orderBy("k").rangeBetween(-1, 0)
    got = df.select("k", "v", F.sum("v").over(w).alias("s")).toPandas()
    con = duckdb.connect()
    con.execute("CREATE TABLE t (k INTEGER, v BIGINT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [list(r) for r in rows])
    expected = con.sql(
        "SELECT k, v, sum(v) OVER (ORDER BY k RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) AS s FROM t"
    ).df()
    assert_frames_equal(got, expected)
    total = df.select(F.sum("v").alias("total"), (F.max("k") - F.min("k")).alias("span")).collect()
    assert [tuple(r) for r in total] == [(43, 4)]


def test_describe(spark):
    """Hand-computed. Spark's describe(): one string column per numeric or string
    column, rows count, mean, stddev (sample), min, max; mean and stddev NULL for
    strings; NULLs not counted."""
    df = spark.createDataFrame([(1, "b", 2.0), (3, "a", None), (5, "c", 4.0)], "k int, s string, x double")
    got = {r["summary"]: tuple(r)[1:] for r in df.describe().collect()}
    assert df.describe().columns == ["summary", "k", "s", "x"]
    assert [r["summary"] for r in df.describe().collect()] == ["count", "mean", "stddev", "min", "max"]
    assert got["count"] == ("3", "3", "2")
    assert got["mean"] == ("3.0", None, "3.0")
    assert got["stddev"] == ("2.0", None, str(2 ** 0.5))
    assert got["min"] == ("1", "a", "2.0")
    assert got["max"] == ("5", "c", "4.0")
    assert [tuple(r) for r in df.describe("s").collect()][0] == ("count", "3")


def test_select_expr_aliases_without_as_and_int_ranks(spark):
    """Hand-computed. Spark takes `expr alias` without AS in selectExpr; its
    row_number/rank/dense_rank are ints."""
    from pyspark.sql.types import IntegerType

    df = spark.createDataFrame([(1, "a"), (2, "b"), (3, "a")], "k int, s string")
    assert [tuple(r) for r in df.selectExpr("upper(s) u", "k * 2 AS kk").orderBy("kk").collect()] == [
        ("A", 2),
        ("B", 4),
        ("A", 6),
    ]
    w = Window.partitionBy("s").orderBy("k")
    ranked = df.select("k", F.row_number().over(w).alias("rn"), F.rank().over(w).alias("r"))
    assert [f.dataType for f in ranked.schema.fields[1:]] == [IntegerType(), IntegerType()]
    assert sorted(tuple(r) for r in ranked.collect()) == [(1, 1, 1), (2, 1, 1), (3, 2, 2)]
