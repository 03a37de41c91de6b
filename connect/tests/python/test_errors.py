"""Errors reach the client as PySpark's exception classes, the session survives them,
and a server started with --token refuses clients without it."""

from __future__ import annotations

import pytest
from pyspark.errors import AnalysisException, ParseException, PySparkException

from conftest import duck_scalar, new_session


def still_works(spark):
    # TPC-H has 5 regions and 25 nations.
    assert spark.sql("select count(*) as n from region").collect()[0].n == 5
    assert spark.table("nation").count() == 25


def test_bad_sql_is_parse_exception(spark):
    with pytest.raises(ParseException):
        spark.sql("selec n_name form nation").collect()
    still_works(spark)
    with pytest.raises(ParseException):
        spark.sql("select (1 + from region").collect()
    still_works(spark)


def test_unknown_table_is_analysis_exception(spark):
    with pytest.raises(AnalysisException) as err:
        spark.sql("select * from no_such_table_xyz").collect()
    assert not isinstance(err.value, ParseException)
    assert "no_such_table_xyz" in str(err.value)
    still_works(spark)


def test_unknown_table_through_spark_table(spark):
    with pytest.raises(AnalysisException) as err:
        spark.table("no_such_table_abc").collect()
    assert "no_such_table_abc" in str(err.value)
    still_works(spark)


def test_unknown_column_is_analysis_exception(spark):
    with pytest.raises(AnalysisException) as err:
        spark.sql("select no_such_col from nation").collect()
    assert not isinstance(err.value, ParseException)
    assert "no_such_col" in str(err.value)
    still_works(spark)


def test_unknown_column_through_dataframe_api(spark):
    with pytest.raises(AnalysisException) as err:
        spark.table("nation").select("n_nationkey", "nope_col").collect()
    assert "nope_col" in str(err.value)
    with pytest.raises(AnalysisException) as err:
        spark.table("nation").filter("nope_col2 > 1").collect()
    assert "nope_col2" in str(err.value)
    still_works(spark)


def test_missing_path_is_an_error(spark, tmp_path):
    missing = tmp_path / "does_not_exist.parquet"
    with pytest.raises(PySparkException) as err:
        spark.read.parquet(str(missing)).collect()
    assert "does_not_exist.parquet" in str(err.value)
    still_works(spark)


def test_many_errors_then_results(spark, duck):
    for i in range(10):
        with pytest.raises(AnalysisException):
            spark.sql(f"select * from missing_{i}").collect()
    n = spark.sql("select count(*) as n from orders where o_orderstatus = 'F'").collect()[0].n
    assert n == duck_scalar(duck, "select count(*) from orders where o_orderstatus = 'F'")


@pytest.fixture(scope="module")
def token_server(start_server):
    return start_server("--token", "secret", name="token")


# PySpark's client sends a token over TLS unless the host is literally "localhost",
# where it uses gRPC local credentials (plain TCP on loopback): sc://127.0.0.1/;token=...
# would try a TLS handshake, which a plain-text server cannot answer.


def test_token_server_accepts_the_token(token_server):
    s = new_session(token_server.url_with("localhost", token="secret"))
    try:
        assert s.sql("select count(*) as n from region").collect()[0].n == 5
        assert s.table("nation").count() == 25
    finally:
        s.stop()


def test_token_server_refuses_a_client_without_token(token_server):
    s = new_session(token_server.url)
    try:
        with pytest.raises(PySparkException):
            s.sql("select count(*) as n from region").collect()
    finally:
        s.stop()


def test_token_server_refuses_a_wrong_token(token_server):
    s = new_session(token_server.url_with("localhost", token="wrong"))
    try:
        with pytest.raises(PySparkException):
            s.sql("select count(*) as n from region").collect()
    finally:
        s.stop()
    # ...and still serves the right one afterwards.
    ok = new_session(token_server.url_with("localhost", token="secret"))
    try:
        assert ok.sql("select count(*) as n from nation").collect()[0].n == 25
    finally:
        ok.stop()
