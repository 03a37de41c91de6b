"""Reading files, createDataFrame, and writing in every save mode, through `fairway connect`.

Files are written here with pandas/pyarrow (the reference for reads) and the files
fairway writes are read back both by fairway and by DuckDB (the reference for writes)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.errors import PySparkException
from pyspark.sql import Row
from pyspark.sql.types import DateType, DecimalType, LongType, StringType, StructField, StructType

from conftest import TABLES_DIR, assert_frames_equal, duck_connect, duck_df

PEOPLE = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "name": ["ann", "bob", "cy", "dee"],
        "score": [1.5, 2.25, 3.0, -4.75],
    }
)


@pytest.fixture
def people_csv(tmp_path) -> Path:
    path = tmp_path / "people.csv"
    PEOPLE.to_csv(path, index=False)
    return path


@pytest.fixture
def people_json(tmp_path) -> Path:
    # JSON lines with the keys in alphabetical order (Spark's inferred JSON schema
    # sorts the fields by name, so that order is the same either way).
    path = tmp_path / "people.json"
    with open(path, "w") as f:
        for r in PEOPLE.itertuples(index=False):
            f.write(json.dumps({"id": int(r.id), "name": r.name, "score": float(r.score)}) + "\n")
    return path


# ---------------------------------------------------------------- reads


def test_read_parquet(spark, duck):
    path = str(TABLES_DIR / "nation.parquet")
    expected = duck_df(duck, "select * from nation")
    assert_frames_equal(spark.read.parquet(path).toPandas(), expected)
    assert_frames_equal(spark.read.format("parquet").load(path).toPandas(), expected)


def test_read_parquet_folder(spark, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"k": [1, 2], "v": ["a", "b"]}), folder / "part-0.parquet")
    pq.write_table(pa.table({"k": [3], "v": ["c"]}), folder / "part-1.parquet")
    df = spark.read.parquet(str(folder))
    assert sorted(tuple(r) for r in df.collect()) == [(1, "a"), (2, "b"), (3, "c")]


def test_read_csv_header_infer_schema(spark, people_csv):
    df = spark.read.csv(str(people_csv), header=True, inferSchema=True)
    assert_frames_equal(df.toPandas(), PEOPLE)
    df2 = spark.read.format("csv").option("header", "true").option("inferSchema", "true").load(str(people_csv))
    assert_frames_equal(df2.toPandas(), PEOPLE)


def test_read_csv_inferred_types_as_spark(spark, people_csv):
    # Spark's CSV inference: integers that fit in 32 bits -> int, decimals -> double.
    df = spark.read.csv(str(people_csv), header=True, inferSchema=True)
    assert df.dtypes == [("id", "int"), ("name", "string"), ("score", "double")]


def test_read_csv_header_without_infer_schema_is_all_strings(spark, people_csv):
    df = spark.read.csv(str(people_csv), header=True)
    assert df.dtypes == [("id", "string"), ("name", "string"), ("score", "string")]
    assert [tuple(r) for r in df.collect()] == [
        ("1", "ann", "1.5"),
        ("2", "bob", "2.25"),
        ("3", "cy", "3.0"),
        ("4", "dee", "-4.75"),
    ]


def test_read_csv_without_header(spark, tmp_path):
    path = tmp_path / "noheader.csv"
    path.write_text("1,x\n2,y\n")
    df = spark.read.csv(str(path))
    assert df.columns == ["_c0", "_c1"]
    assert sorted(tuple(r) for r in df.collect()) == [("1", "x"), ("2", "y")]


def test_read_json(spark, people_json):
    df = spark.read.json(str(people_json))
    assert df.dtypes == [("id", "bigint"), ("name", "string"), ("score", "double")]
    assert_frames_equal(df.toPandas(), PEOPLE)
    assert_frames_equal(spark.read.format("json").load(str(people_json)).toPandas(), PEOPLE)


# ---------------------------------------------------------------- createDataFrame


def test_create_dataframe_from_pandas_round_trip(spark):
    pdf = pd.DataFrame(
        {
            "i": np.array([1, 2, 3], dtype="int64"),
            "f": [0.5, -1.0, 2.5],
            "s": ["x", "y", None],
            "b": [True, False, True],
        }
    )
    df = spark.createDataFrame(pdf)
    assert df.dtypes == [("i", "bigint"), ("f", "double"), ("s", "string"), ("b", "boolean")]
    assert_frames_equal(df.toPandas(), pdf, sort=False)
    df.createOrReplaceTempView("from_pandas")
    row = spark.sql("select sum(i) as si, sum(f) as sf, count(s) as cs from from_pandas").collect()[0]
    assert (row.si, row.sf, row.cs) == (6, 2.0, 2)


def test_create_dataframe_from_tuples_with_schema(spark):
    schema = StructType(
        [
            StructField("id", LongType()),
            StructField("name", StringType()),
            StructField("d", DateType()),
            StructField("amt", DecimalType(10, 2)),
        ]
    )
    data = [(1, "a", dt.date(2024, 1, 2), Decimal("1.25")), (2, None, dt.date(1999, 12, 31), Decimal("-3.50"))]
    df = spark.createDataFrame(data, schema)
    assert df.schema == schema
    assert df.collect() == [
        Row(id=1, name="a", d=dt.date(2024, 1, 2), amt=Decimal("1.25")),
        Row(id=2, name=None, d=dt.date(1999, 12, 31), amt=Decimal("-3.50")),
    ]
    pdf = df.toPandas()
    assert list(pdf.columns) == ["id", "name", "d", "amt"]
    assert pdf["amt"].tolist() == [Decimal("1.25"), Decimal("-3.50")]


def test_create_dataframe_from_tuples_with_column_names(spark):
    df = spark.createDataFrame([(1, "a", 2.0), (2, "b", 3.5)], ["k", "v", "w"])
    assert df.dtypes == [("k", "bigint"), ("v", "string"), ("w", "double")]
    assert [tuple(r) for r in df.collect()] == [(1, "a", 2.0), (2, "b", 3.5)]


def test_create_dataframe_from_rows(spark):
    df = spark.createDataFrame([Row(a=1, b="x"), Row(a=2, b="y"), Row(a=3, b=None)])
    assert df.columns == ["a", "b"]
    assert df.filter("a >= 2").count() == 2
    assert sorted((r.a, r.b) for r in df.collect()) == [(1, "x"), (2, "y"), (3, None)]


def test_create_dataframe_from_arrow_round_trip(spark):
    table = pa.table(
        {
            "x": pa.array([1, 2, 3], pa.int32()),
            "y": pa.array(["p", "q", None], pa.string()),
            "z": pa.array([1.0, None, 3.0], pa.float64()),
        }
    )
    df = spark.createDataFrame(table)
    assert df.dtypes == [("x", "int"), ("y", "string"), ("z", "double")]
    back = df.toArrow()
    assert back.column_names == ["x", "y", "z"]
    assert back.column("x").type == pa.int32()
    assert back.column("z").type == pa.float64()
    assert pa.types.is_string(back.column("y").type) or pa.types.is_large_string(back.column("y").type)
    assert back.to_pylist() == table.to_pylist()
    assert df.toPandas()["x"].tolist() == [1, 2, 3]


# ---------------------------------------------------------------- writes

PART_A = "select n_nationkey, n_name, n_regionkey from nation where n_nationkey < 10"
PART_B = "select n_nationkey, n_name, n_regionkey from nation where n_nationkey >= 10 and n_nationkey < 15"
FORMATS = ["parquet", "csv", "json"]


def write(df, fmt, path, mode=None):
    w = df.write
    if fmt == "parquet":
        return w.parquet(str(path), mode=mode)
    if fmt == "csv":
        return w.csv(str(path), mode=mode, header=True)
    return w.json(str(path), mode=mode)


def read_back_fairway(spark, fmt, path) -> pd.DataFrame:
    if fmt == "parquet":
        df = spark.read.parquet(str(path))
    elif fmt == "csv":
        df = spark.read.csv(str(path), header=True, inferSchema=True)
    else:
        df = spark.read.json(str(path))
    return df.select("n_nationkey", "n_name", "n_regionkey").toPandas()


def read_back_duckdb(fmt, path) -> pd.DataFrame:
    con = duck_connect()
    try:
        if fmt == "parquet":
            src = f"read_parquet('{path}/*.parquet')"
        elif fmt == "csv":
            src = f"read_csv('{path}/*.csv', header = true)"
        else:
            src = f"read_json('{path}/*.json', format = 'newline_delimited')"
        return con.sql(f"select n_nationkey, n_name, n_regionkey from {src}").df()
    finally:
        con.close()


def check_contents(spark, fmt, path, expected: pd.DataFrame, what: str):
    assert_frames_equal(read_back_fairway(spark, fmt, path), expected, what=f"{what} (read by fairway)")
    assert_frames_equal(read_back_duckdb(fmt, path), expected, what=f"{what} (read by DuckDB)")


@pytest.fixture
def parts(duck):
    return {
        "a": duck_df(duck, PART_A),
        "b": duck_df(duck, PART_B),
        "ab": duck_df(duck, f"{PART_A} union all {PART_B}"),
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_default_mode_errors_if_exists(spark, tmp_path, parts, fmt):
    out = tmp_path / f"out_{fmt}"
    write(spark.sql(PART_A), fmt, out)
    check_contents(spark, fmt, out, parts["a"], "first write")
    for mode in (None, "error", "errorifexists"):
        with pytest.raises(PySparkException):
            write(spark.sql(PART_B), fmt, out, mode=mode)
    check_contents(spark, fmt, out, parts["a"], "after refused writes")
    # The session still works after the refusals.
    assert spark.sql("select count(*) as n from region").collect()[0].n == 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_overwrite(spark, tmp_path, parts, fmt):
    out = tmp_path / f"out_{fmt}"
    write(spark.sql(PART_A), fmt, out, mode="overwrite")
    check_contents(spark, fmt, out, parts["a"], "overwrite of a new path")
    write(spark.sql(PART_B), fmt, out, mode="overwrite")
    check_contents(spark, fmt, out, parts["b"], "overwrite of fairway's own output")


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_append(spark, tmp_path, parts, fmt):
    out = tmp_path / f"out_{fmt}"
    write(spark.sql(PART_A), fmt, out, mode="append")
    write(spark.sql(PART_B), fmt, out, mode="append")
    check_contents(spark, fmt, out, parts["ab"], "append")


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_ignore(spark, tmp_path, parts, fmt):
    out = tmp_path / f"out_{fmt}"
    write(spark.sql(PART_A), fmt, out, mode="ignore")
    check_contents(spark, fmt, out, parts["a"], "ignore on a new path writes")
    write(spark.sql(PART_B), fmt, out, mode="ignore")
    check_contents(spark, fmt, out, parts["a"], "ignore on an existing path keeps it")


def test_write_mode_format_save(spark, tmp_path, parts):
    out = tmp_path / "saved"
    spark.sql(PART_A).write.mode("overwrite").format("parquet").save(str(out))
    check_contents(spark, "parquet", out, parts["a"], "format().save()")
    spark.sql(PART_B).write.mode("overwrite").parquet(str(out))
    check_contents(spark, "parquet", out, parts["b"], "mode().parquet()")


def test_write_created_dataframe(spark, tmp_path):
    pdf = pd.DataFrame({"k": [3, 1, 2], "v": ["c", "a", "b"]})
    out = tmp_path / "created"
    spark.createDataFrame(pdf).write.parquet(str(out))
    con = duck_connect()
    try:
        got = con.sql(f"select k, v from read_parquet('{out}/*.parquet')").df()
    finally:
        con.close()
    assert_frames_equal(got, pdf)


def test_reads_see_later_writes(spark, server, tmp_path, parts):
    """A path read before is listed again at the next read: appended files are seen and
    overwritten ones are gone, in this session and in others."""
    from conftest import new_session

    out = tmp_path / "changing"
    write(spark.sql(PART_A), "parquet", out)
    assert spark.read.parquet(str(out)).count() == len(parts["a"])
    write(spark.sql(PART_B), "parquet", out, mode="append")
    assert spark.read.parquet(str(out)).count() == len(parts["ab"]), "same session, after append"
    other = new_session(server.url)
    try:
        assert other.read.parquet(str(out)).count() == len(parts["ab"]), "other session, after append"
        write(other.sql(PART_B), "parquet", out, mode="overwrite")
    finally:
        other.stop()
    assert_frames_equal(read_back_fairway(spark, "parquet", out), parts["b"], what="after another session's overwrite")


@pytest.mark.parametrize("fmt", FORMATS)
def test_overwrite_refuses_a_folder_fairway_did_not_write(spark, tmp_path, fmt):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me\n")
    with pytest.raises(PySparkException):
        write(spark.sql(PART_A), fmt, foreign, mode="overwrite")
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert (foreign / "notes.txt").read_text() == "keep me\n"
    assert spark.sql("select count(*) as n from region").collect()[0].n == 5
