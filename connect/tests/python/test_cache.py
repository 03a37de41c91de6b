"""`df.cache()` / `persist()` / `unpersist()` keep rows once per session.

The reference is the data itself: a frame over a parquet file this test wrote
is cached and counted, then the file is replaced with other rows (the test's
own file). A cached frame keeps answering from the rows it kept, as Spark's
cache does; after `unpersist()` the frame reads the file again. Counts are
computed here from the rows written."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel


def write_rows(path, n: int) -> None:
    tmp = path.with_suffix(".tmp")
    pd.DataFrame({"k": list(range(n)), "v": [i % 3 for i in range(n)]}).to_parquet(tmp)
    tmp.replace(path)


def check_kept(spark, tmp_path, level=None):
    path = tmp_path / "rows.parquet"
    write_rows(path, 30)
    df = spark.read.parquet(str(path)).filter(F.col("v") > 0)
    df = df.persist(level) if level is not None else df.cache()
    assert df.count() == 20  # runs the frame once and keeps its rows
    assert df.is_cached
    write_rows(path, 90)  # the file changes under the cache
    assert df.count() == 20
    assert df.groupBy("v").count().orderBy("v").collect() == [(1, 10), (2, 10)]
    # A frame built on the cached one reads the kept rows too.
    assert df.select((F.col("k") * 2).alias("k2")).agg(F.sum("k2")).collect()[0][0] == 2 * sum(
        k for k in range(30) if k % 3 > 0
    )
    df.unpersist()
    assert not df.is_cached
    assert df.count() == 60  # the file as it is now


def test_cache_keeps_the_rows_in_memory(spark, tmp_path):
    check_kept(spark, tmp_path)


def test_cache_past_the_memory_budget_goes_to_disk(spark, tmp_path):
    spark.conf.set("spark.fairway.cache.maxMemory", "0")
    check_kept(spark, tmp_path)


def test_persist_disk_only(spark, tmp_path):
    check_kept(spark, tmp_path, StorageLevel.DISK_ONLY)


def test_a_bad_cache_budget_is_refused(spark):
    import pytest
    from pyspark.errors import IllegalArgumentException

    with pytest.raises(IllegalArgumentException, match="maxMemory"):
        spark.conf.set("spark.fairway.cache.maxMemory", "lots")


def test_the_cache_belongs_to_one_session(spark, tmp_path, server):
    from conftest import new_session

    path = tmp_path / "rows.parquet"
    write_rows(path, 30)
    cached = spark.read.parquet(str(path)).cache()
    assert cached.count() == 30
    write_rows(path, 45)
    other = new_session(server.url)
    try:
        # Another session's same read is not cached.
        assert other.read.parquet(str(path)).count() == 45
    finally:
        other.stop()
    assert cached.count() == 30
    cached.unpersist()
