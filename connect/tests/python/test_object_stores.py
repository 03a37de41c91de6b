"""PySpark reads and writes s3a:// paths through `fairway connect`, against the real
S3-compatible server the Rust suite runs (moto on loopback, with signatures checked;
`.ci/run` starts it and exports FAIRWAY_TEST_S3_*). pyarrow's own S3 client puts the
reference data there and reads fairway's output back, so neither side is checked only
by fairway."""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.errors import PySparkException

from conftest import assert_frames_equal, new_session

ENDPOINT = os.environ.get("FAIRWAY_TEST_S3_ENDPOINT")
KEY_ID = os.environ.get("FAIRWAY_TEST_S3_KEY_ID")
SECRET = os.environ.get("FAIRWAY_TEST_S3_SECRET")
BUCKET = "fairway-test"

if not ENDPOINT:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must run the object store tests: FAIRWAY_TEST_S3_ENDPOINT is not set")
    pytest.skip("no S3 server (FAIRWAY_TEST_S3_ENDPOINT; .ci/run starts one)", allow_module_level=True)

PEOPLE = pd.DataFrame({"id": [1, 2, 3], "name": ["ann", "bob", "cy"], "score": [1.5, -2.0, 3.25]})


def s3fs():
    from pyarrow import fs

    return fs.S3FileSystem(
        access_key=KEY_ID,
        secret_key=SECRET,
        endpoint_override=ENDPOINT,
        scheme="http",
        region="us-east-1",
    )


@pytest.fixture
def srv(start_server):
    server = start_server(
        "--conf", f"fairway.store.s3.endpoint={ENDPOINT}",
        "--conf", "fairway.store.s3.allow_http=true",
        "--conf", f"fairway.store.s3.access_key_id={KEY_ID}",
        "--conf", f"fairway.store.s3.secret_access_key={SECRET}",
        name=f"s3-{uuid.uuid4().hex[:6]}",
        tables=False,
    )
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    return f"pyspark-{uuid.uuid4().hex[:10]}"


def read_back(prefix: str, folder: str) -> pd.DataFrame:
    table = pq.read_table(f"{BUCKET}/{prefix}/{folder}", filesystem=s3fs())
    return table.to_pandas().sort_values("id").reset_index(drop=True)


def test_read_s3a_parquet_and_csv(srv, prefix):
    filesystem = s3fs()
    pq.write_table(pa.Table.from_pandas(PEOPLE), f"{BUCKET}/{prefix}/people/part-0.parquet", filesystem=filesystem)
    with filesystem.open_output_stream(f"{BUCKET}/{prefix}/people.csv") as out:
        out.write(PEOPLE.to_csv(index=False).encode())
    spark = new_session(srv.url)
    try:
        got = spark.read.parquet(f"s3a://{BUCKET}/{prefix}/people").toPandas()
        assert_frames_equal(got.sort_values("id").reset_index(drop=True), PEOPLE)
        csv = (
            spark.read.option("header", "true")
            .option("inferSchema", "true")
            .csv(f"s3a://{BUCKET}/{prefix}/people.csv")
            .toPandas()
        )
        assert csv.sort_values("id")["name"].tolist() == ["ann", "bob", "cy"]
        count = spark.sql(f"SELECT count(*) AS n FROM 's3a://{BUCKET}/{prefix}/people/'").collect()[0].n
        assert count == 3
    finally:
        spark.stop()


def test_write_s3a_in_every_mode(srv, prefix):
    spark = new_session(srv.url)
    try:
        df = spark.createDataFrame(PEOPLE)
        out = f"s3a://{BUCKET}/{prefix}/out"
        df.write.parquet(out)
        assert_frames_equal(read_back(prefix, "out"), PEOPLE)
        # error (the default) refuses, ignore leaves it, append adds, overwrite replaces.
        with pytest.raises(PySparkException, match="already exists"):
            df.write.parquet(out)
        df.limit(1).write.mode("ignore").parquet(out)
        assert len(read_back(prefix, "out")) == 3
        df.write.mode("append").parquet(out)
        assert len(read_back(prefix, "out")) == 6
        df.filter("id = 2").write.mode("overwrite").parquet(out)
        assert read_back(prefix, "out")["name"].tolist() == ["bob"]
        back = spark.read.parquet(out).toPandas()
        assert back["name"].tolist() == ["bob"]
        # A folder fairway did not write is never overwritten.
        filesystem = s3fs()
        with filesystem.open_output_stream(f"{BUCKET}/{prefix}/theirs/data.bin") as f:
            f.write(b"not ours")
        with pytest.raises(PySparkException, match="not a folder fairway wrote"):
            df.write.mode("overwrite").parquet(f"s3a://{BUCKET}/{prefix}/theirs")
        with filesystem.open_input_stream(f"{BUCKET}/{prefix}/theirs/data.bin") as f:
            assert f.read() == b"not ours"
    finally:
        spark.stop()
