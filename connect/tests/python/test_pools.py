"""Scheduler pools from a PySpark client: job tags and the session conf choose the pool,
concurrent feature methods interleave on a FAIR server, and the merged result is right.

The seed recipe: four threads, each tagging spark.scheduler.pool=etl, compute one
feature frame keyed by c_custkey, write it to parquet and read it back; the frames are
merged with a left-deep chain of full joins on c_custkey.  DuckDB computes the same."""

from __future__ import annotations

import functools
import uuid
from multiprocessing.pool import ThreadPool

import pytest

from conftest import (
    assert_frames_equal,
    duck_df,
    duck_scalar,
    jobs_by_tag,
    new_session,
    parse_description,
    read_events,
    wait_for_job_ends,
    write_allocation_file,
)

METHODS = {
    "orders": """
        select o_custkey as c_custkey, count(*) as n_orders, sum(o_totalprice) as total_spend
        from orders group by o_custkey""",
    "lines": """
        select o.o_custkey as c_custkey, count(*) as n_lines, sum(l.l_quantity) as total_qty,
               avg(l.l_discount) as avg_discount
        from orders o join lineitem l on l.l_orderkey = o.o_orderkey
        group by o.o_custkey""",
    "profile": """
        select c_custkey, c_acctbal as acctbal, c_mktsegment as segment
        from customer where c_acctbal > 0""",
    "returns": """
        select o.o_custkey as c_custkey,
               sum(case when l.l_returnflag = 'R' then l.l_extendedprice else 0 end) as returned_value
        from orders o join lineitem l on l.l_orderkey = o.o_orderkey
        where l.l_shipdate < date '1995-01-01'
        group by o.o_custkey""",
}
ORDER = ["orders", "lines", "profile", "returns"]


@pytest.fixture(scope="module")
def fair(start_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("pools")
    alloc = write_allocation_file(
        d / "fair-scheduler.xml", [("etl", "FAIR", 1, 0), ("adhoc", "FAIR", 1, 0)]
    )
    events = d / "events.jsonl"
    srv = start_server(
        "--scheduler-mode", "fair", "--allocation-file", str(alloc), "--slots", "2",
        "--event-log", str(events), name="pools",
    )
    srv.events = events
    return srv


@pytest.fixture
def fspark(fair):
    s = new_session(fair.url)
    yield s
    s.stop()


def reference_merge(duck) -> "pd.DataFrame":
    """The full-join chain, written independently: every key of any frame, left joined
    with each frame (the keys are unique within each frame)."""
    ctes = ", ".join(f"m_{n} as ({METHODS[n]})" for n in ORDER)
    keys = " union ".join(f"select c_custkey from m_{n}" for n in ORDER)
    cols = {
        "orders": ["n_orders", "total_spend"],
        "lines": ["n_lines", "total_qty", "avg_discount"],
        "profile": ["acctbal", "segment"],
        "returns": ["returned_value"],
    }
    select = ", ".join(f"m_{n}.{c}" for n in ORDER for c in cols[n])
    joins = " ".join(f"left join m_{n} on m_{n}.c_custkey = k.c_custkey" for n in ORDER)
    return duck_df(duck, f"with {ctes}, k as ({keys}) select k.c_custkey, {select} from k {joins}")


def test_seed_recipe_feature_methods_in_pool_etl(fair, fspark, duck, tmp_path):
    spark = fspark
    run = uuid.uuid4().hex[:8]

    def method(name):
        spark.addTag("spark.scheduler.pool=etl")
        spark.addTag(f"feature-{run}-{name}")
        try:
            df = spark.sql(METHODS[name])
            out = str(tmp_path / name)
            df.write.mode("overwrite").parquet(out)
            return spark.read.parquet(out)
        finally:
            spark.clearTags()

    with ThreadPool(4) as pool:
        frames = pool.map(method, ORDER)
    merged = functools.reduce(lambda a, b: a.join(b, on="c_custkey", how="full"), frames)
    actual = merged.toPandas()
    expected = reference_merge(duck)
    # Keys of the full join: customers with a positive balance or any order.
    assert len(expected) == duck_scalar(
        duck,
        "select count(*) from (select c_custkey from customer where c_acctbal > 0 "
        "union select o_custkey from orders)",
    )
    assert_frames_equal(actual, expected, what="merged features")

    # Each method frame on its own, too.
    for name, frame in zip(ORDER, frames):
        assert_frames_equal(frame.toPandas(), duck_df(duck, METHODS[name]), what=name)

    events = read_events(fair.events)
    method_jobs = {}
    for name in ORDER:
        events = wait_for_job_ends(fair.events, f"feature-{run}-{name}")
        jobs = jobs_by_tag(events, f"feature-{run}-{name}")
        assert jobs, f"no job in the event log carries the tag of method {name}"
        for j in jobs:
            assert j["pool"] == "etl", f"method {name}: job {j['job']} ran in pool {j['pool']!r}: {j['description']}"
            d = parse_description(j["description"])
            assert "spark.scheduler.pool=etl" in d["tags"], j["description"]
        method_jobs[name] = {j["job"] for j in jobs}

    ends = {e["job"]: e for e in events if e.get("event") == "job_end"}
    for name, ids in method_jobs.items():
        for i in ids:
            assert ends[i]["status"] == "succeeded", ends[i]
            assert ends[i]["pool"] == "etl", ends[i]

    # Tasks of different method jobs interleave: for some pair of jobs A, B, a task
    # of A starts before a task of B ends and a task of B starts before one of A ends.
    spans = task_spans(events)
    all_ids = sorted(i for ids in method_jobs.values() for i in ids)
    for i in all_ids:
        assert spans.get(i), f"job {i} has no task events"
        for t in spans[i]:
            assert t["pool"] == "etl", t
    pairs = []
    for x in all_ids:
        for y in all_ids:
            if x < y and owner(method_jobs, x) != owner(method_jobs, y):
                if interleave(spans[x], spans[y]):
                    pairs.append((x, y))
    assert pairs, f"no two method jobs interleave: {summarize(spans, all_ids)}"


def owner(method_jobs, job):
    return next(n for n, ids in method_jobs.items() if job in ids)


def task_spans(events):
    """job -> list of {start, end, pool, slot} for every task attempt that ended."""
    starts, spans = {}, {}
    for e in events:
        key = (e.get("job"), e.get("stage"), e.get("partition"), e.get("attempt"))
        if e.get("event") == "task_start":
            starts[key] = e
        elif e.get("event") == "task_end" and key in starts:
            s = starts[key]
            spans.setdefault(e["job"], []).append(
                {"start": s["time_us"], "end": e["time_us"], "pool": e["pool"], "slot": e["slot"]}
            )
    return spans


def interleave(a, b):
    a_before_b = any(x["start"] < y["end"] for x in a for y in b)
    b_before_a = any(y["start"] < x["end"] for x in a for y in b)
    return a_before_b and b_before_a


def summarize(spans, ids):
    return {i: (min(t["start"] for t in spans[i]), max(t["end"] for t in spans[i])) for i in ids if spans.get(i)}


def probe(spark, events_path, marker, sql="select count(*) as n from orders"):
    """Run `sql` with a marker tag; return (result, the job_start events of that run)."""
    spark.addTag(marker)
    try:
        n = spark.sql(sql).collect()[0].n
    finally:
        spark.removeTag(marker)
    events = wait_for_job_ends(events_path, marker)
    return n, jobs_by_tag(events, marker)


def test_session_pool_and_tag_precedence(fair, fspark):
    spark = fspark
    run = uuid.uuid4().hex[:8]

    spark.conf.set("spark.scheduler.pool", "etl")
    assert spark.conf.get("spark.scheduler.pool") == "etl"
    n, jobs = probe(spark, fair.events, f"probe-{run}-session")
    assert n == 15000
    assert jobs and all(j["pool"] == "etl" for j in jobs), jobs

    # A pool tag on this thread wins over the session setting...
    spark.addTag("spark.scheduler.pool=adhoc")
    try:
        n, jobs = probe(spark, fair.events, f"probe-{run}-tag")
    finally:
        spark.removeTag("spark.scheduler.pool=adhoc")
    assert n == 15000
    assert jobs and all(j["pool"] == "adhoc" for j in jobs), jobs
    # ...and the session setting is unchanged by it.
    assert spark.conf.get("spark.scheduler.pool") == "etl"

    # Without the tag, back to the session's pool.
    n, jobs = probe(spark, fair.events, f"probe-{run}-again")
    assert jobs and all(j["pool"] == "etl" for j in jobs), jobs

    # Unset: the default pool.
    spark.conf.unset("spark.scheduler.pool")
    n, jobs = probe(spark, fair.events, f"probe-{run}-unset")
    assert jobs and all(j["pool"] == "default" for j in jobs), jobs


def test_tag_is_per_thread(fair, fspark):
    """A pool tag added in one thread does not move another thread's jobs."""
    spark = fspark
    run = uuid.uuid4().hex[:8]

    def tagged(_):
        spark.addTag("spark.scheduler.pool=adhoc")
        try:
            return probe(spark, fair.events, f"probe-{run}-tagged")
        finally:
            spark.removeTag("spark.scheduler.pool=adhoc")

    with ThreadPool(1) as pool:
        (n1, jobs1), = pool.map(tagged, [0])
    n2, jobs2 = probe(spark, fair.events, f"probe-{run}-main")
    assert n1 == n2 == 15000
    assert jobs1 and all(j["pool"] == "adhoc" for j in jobs1), jobs1
    assert jobs2 and all(j["pool"] == "default" for j in jobs2), jobs2


def test_job_description_names_operation_and_tags(fair, fspark):
    spark = fspark
    marker = f"desc-{uuid.uuid4().hex[:8]}"
    spark.addTag("alpha")
    try:
        n, jobs = probe(spark, fair.events, marker, sql="select count(*) as n from region")
    finally:
        spark.removeTag("alpha")
    assert n == 5
    assert jobs
    for j in jobs:
        d = parse_description(j["description"])
        assert d is not None, j["description"]
        assert sorted(d["tags"]) == sorted(["alpha", marker]), j["description"]
        assert len(d["op"]) == 36 and d["op"].count("-") == 4, j["description"]
        assert "region" in d["rest"], j["description"]
