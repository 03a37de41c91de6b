"""TPC-H queries written with the PySpark DataFrame API (no SQL text) through
`fairway connect`.

The reference is DuckDB running each query's published SQL text
(testdata/tpch/queries/qNN.sql) on the same sf0.01 parquet files that the server
registers as tables; with FAIRWAY_TPCH_DF_DIR set, also on that folder's tables
(scale factor 1, say).
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from pyspark.sql import functions as F

from conftest import assert_frames_equal, duck_df, new_session, query_text


def disc_price():
    """l_extendedprice * (1 - l_discount)"""
    return F.col("l_extendedprice") * (1 - F.col("l_discount"))


# ---------------------------------------------------------------- the queries


def q01(spark):
    cutoff = date(1998, 12, 1) - timedelta(days=90)
    li = spark.table("lineitem")
    return (
        li.filter(li["l_shipdate"] <= F.lit(cutoff))
        .groupBy("l_returnflag", "l_linestatus")
        .agg(
            F.sum("l_quantity").alias("sum_qty"),
            F.sum("l_extendedprice").alias("sum_base_price"),
            F.sum(disc_price()).alias("sum_disc_price"),
            F.sum(disc_price() * (1 + F.col("l_tax"))).alias("sum_charge"),
            F.avg("l_quantity").alias("avg_qty"),
            F.avg("l_extendedprice").alias("avg_price"),
            F.avg("l_discount").alias("avg_disc"),
            F.count("*").alias("count_order"),
        )
        .orderBy("l_returnflag", "l_linestatus")
    )


def q03(spark):
    day = date(1995, 3, 15)
    c = spark.table("customer").filter(F.col("c_mktsegment") == "BUILDING")
    o = spark.table("orders").filter(F.col("o_orderdate") < F.lit(day))
    li = spark.table("lineitem").filter(F.col("l_shipdate") > F.lit(day))
    return (
        c.join(o, on=c["c_custkey"] == o["o_custkey"])
        .join(li, on=li["l_orderkey"] == o["o_orderkey"])
        .groupBy("l_orderkey", "o_orderdate", "o_shippriority")
        .agg(F.sum(disc_price()).alias("revenue"))
        .select("l_orderkey", "revenue", "o_orderdate", "o_shippriority")
        .orderBy(F.col("revenue").desc(), F.col("o_orderdate"))
        .limit(10)
    )


def q05(spark):
    start = date(1994, 1, 1)
    end = date(1995, 1, 1)  # + interval '1' year
    r = spark.table("region").filter(F.col("r_name") == "ASIA")
    n = spark.table("nation")
    c = spark.table("customer")
    o = spark.table("orders").filter((F.col("o_orderdate") >= F.lit(start)) & (F.col("o_orderdate") < F.lit(end)))
    li = spark.table("lineitem")
    s = spark.table("supplier")
    return (
        r.join(n, on=n["n_regionkey"] == r["r_regionkey"])
        .join(c, on=c["c_nationkey"] == n["n_nationkey"])
        .join(o, on=o["o_custkey"] == c["c_custkey"])
        .join(li, on=li["l_orderkey"] == o["o_orderkey"])
        .join(s, on=(li["l_suppkey"] == s["s_suppkey"]) & (c["c_nationkey"] == s["s_nationkey"]))
        .groupBy("n_name")
        .agg(F.sum(disc_price()).alias("revenue"))
        .orderBy(F.col("revenue").desc())
    )


def q06(spark):
    start = date(1994, 1, 1)
    end = date(1995, 1, 1)  # + interval '1' year
    # Decimal keeps 0.06 - 0.01 exact (as floats it would be 0.049999...).
    lo, hi = Decimal("0.06") - Decimal("0.01"), Decimal("0.06") + Decimal("0.01")
    li = spark.table("lineitem")
    return li.filter(
        (li["l_shipdate"] >= F.lit(start))
        & (li["l_shipdate"] < F.lit(end))
        & li["l_discount"].between(lo, hi)
        & (li["l_quantity"] < 24)
    ).agg(F.sum(li["l_extendedprice"] * li["l_discount"]).alias("revenue"))


def q10(spark):
    start = date(1993, 10, 1)
    end = date(1994, 1, 1)  # + interval '3' month
    c = spark.table("customer")
    o = spark.table("orders").filter((F.col("o_orderdate") >= F.lit(start)) & (F.col("o_orderdate") < F.lit(end)))
    li = spark.table("lineitem").filter(F.col("l_returnflag") == "R")
    n = spark.table("nation")
    return (
        c.join(o, on=c["c_custkey"] == o["o_custkey"])
        .join(li, on=li["l_orderkey"] == o["o_orderkey"])
        .join(n, on=c["c_nationkey"] == n["n_nationkey"])
        .groupBy("c_custkey", "c_name", "c_acctbal", "c_phone", "n_name", "c_address", "c_comment")
        .agg(F.sum(disc_price()).alias("revenue"))
        .select("c_custkey", "c_name", "revenue", "c_acctbal", "n_name", "c_address", "c_phone", "c_comment")
        .orderBy(F.col("revenue").desc())
        .limit(20)
    )


def q12(spark):
    start = date(1994, 1, 1)
    end = date(1995, 1, 1)  # + interval '1' year
    o = spark.table("orders")
    li = spark.table("lineitem").filter(
        F.col("l_shipmode").isin("MAIL", "SHIP")
        & (F.col("l_commitdate") < F.col("l_receiptdate"))
        & (F.col("l_shipdate") < F.col("l_commitdate"))
        & (F.col("l_receiptdate") >= F.lit(start))
        & (F.col("l_receiptdate") < F.lit(end))
    )
    high = F.col("o_orderpriority").isin("1-URGENT", "2-HIGH")
    return (
        o.join(li, on=o["o_orderkey"] == li["l_orderkey"])
        .groupBy("l_shipmode")
        .agg(
            F.sum(F.when(high, 1).otherwise(0)).alias("high_line_count"),
            F.sum(F.when(~high, 1).otherwise(0)).alias("low_line_count"),
        )
        .orderBy("l_shipmode")
    )


def q14(spark):
    start = date(1995, 9, 1)
    end = date(1995, 10, 1)  # + interval '1' month
    li = spark.table("lineitem").filter((F.col("l_shipdate") >= F.lit(start)) & (F.col("l_shipdate") < F.lit(end)))
    p = spark.table("part")
    promo = F.when(F.col("p_type").like("PROMO%"), disc_price()).otherwise(0)
    return li.join(p, on=li["l_partkey"] == p["p_partkey"]).agg(
        (100.00 * F.sum(promo) / F.sum(disc_price())).alias("promo_revenue")
    )


def q18(spark):
    li = spark.table("lineitem")
    big = li.groupBy("l_orderkey").agg(F.sum("l_quantity").alias("qty")).filter(F.col("qty") > 300)
    c = spark.table("customer")
    o = spark.table("orders")
    o_big = o.join(big, on=o["o_orderkey"] == big["l_orderkey"], how="left_semi")
    return (
        c.join(o_big, on=c["c_custkey"] == o_big["o_custkey"])
        .join(li, on=o_big["o_orderkey"] == li["l_orderkey"])
        .groupBy("c_name", "c_custkey", "o_orderkey", "o_orderdate", "o_totalprice")
        .agg(F.sum("l_quantity"))
        .orderBy(F.col("o_totalprice").desc(), F.col("o_orderdate"))
        .limit(100)
    )


QUERIES = {
    "q01": q01,
    "q03": q03,
    "q05": q05,
    "q06": q06,
    "q10": q10,
    "q12": q12,
    "q14": q14,
    "q18": q18,
}


# ---------------------------------------------------------------- the test


@pytest.mark.parametrize("name", list(QUERIES))
def test_tpch_dataframe_matches_duckdb(spark, duck, name):
    actual = QUERIES[name](spark).toPandas()
    expected = duck_df(duck, query_text(name))
    assert len(expected) > 0, f"{name}: the reference answer is empty"
    # Every one of these queries ends in an ORDER BY whose keys order the answer
    # totally at sf0.01 (or returns one row): the order must match too.
    assert_frames_equal(actual, expected, sort=False, what=name)


# ---------------------------------------------------------------- at a larger scale

SF_DIR = os.environ.get("FAIRWAY_TPCH_DF_DIR")


@pytest.fixture(scope="module")
def scaled(start_server):
    """A server and a DuckDB over the TPC-H tables in $FAIRWAY_TPCH_DF_DIR (made
    with `fairway tpch gen`), for a run at scale factor 1 by hand."""
    server = start_server("--tables", SF_DIR, name="tpch-scaled", tables=False)
    con = duckdb.connect()
    for f in sorted(Path(SF_DIR).glob("*.parquet")):
        con.execute(f"CREATE VIEW {f.stem} AS SELECT * FROM read_parquet('{f}')")
    session = new_session(server.url)
    yield session, con
    session.stop()
    con.close()


@pytest.mark.skipif(not SF_DIR, reason="set FAIRWAY_TPCH_DF_DIR to a TPC-H folder to run at its scale")
@pytest.mark.parametrize("name", list(QUERIES))
def test_tpch_dataframe_at_scale_matches_duckdb(scaled, name):
    spark, con = scaled
    actual = QUERIES[name](spark).toPandas()
    expected = duck_df(con, query_text(name))
    assert len(expected) > 0, f"{name}: the reference answer is empty"
    assert_frames_equal(actual, expected, sort=False, what=name)
