"""Many independent Connect sessions on one server: temp views, conf and pools are per
session.  Every expected value is computed by hand from what each session created."""

from __future__ import annotations

import threading
import uuid
from multiprocessing.pool import ThreadPool

import pytest
from pyspark.errors import AnalysisException

from conftest import jobs_by_tag, new_session, wait_for_job_ends

N_SESSIONS = 20
OWNER_KEY = "spark.fairway.test.owner"


@pytest.fixture(scope="module")
def ssrv(start_server, tmp_path_factory):
    events = tmp_path_factory.mktemp("sessions") / "events.jsonl"
    srv = start_server("--scheduler-mode", "fair", "--event-log", str(events), name="sessions")
    srv.events = events
    return srv


def test_two_sessions_same_view_name(ssrv):
    s1, s2 = new_session(ssrv.url), new_session(ssrv.url)
    try:
        assert s1.client._session_id != s2.client._session_id
        s1.createDataFrame([(1,)], ["x"]).createOrReplaceTempView("same_name")
        s2.sql("CREATE OR REPLACE TEMP VIEW same_name AS SELECT r_regionkey AS x FROM region")
        assert [r.x for r in s1.sql("select x from same_name").collect()] == [1]
        assert sorted(r.x for r in s2.sql("select x from same_name").collect()) == [0, 1, 2, 3, 4]
        s1.conf.set(OWNER_KEY, "one")
        assert s2.conf.get(OWNER_KEY, "unset") == "unset"
        s2.sql(f"SET {OWNER_KEY}=two")
        assert s1.conf.get(OWNER_KEY) == "one"
        assert s2.conf.get(OWNER_KEY) == "two"
        s1.sql("DROP VIEW same_name")
        with pytest.raises(AnalysisException):
            s1.sql("select x from same_name").collect()
        assert s2.table("same_name").count() == 5
    finally:
        s1.stop()
        s2.stop()


def test_many_concurrent_sessions_are_isolated(ssrv):
    run = uuid.uuid4().hex[:8]
    views_made = threading.Barrier(N_SESSIONS)
    checked_once = threading.Barrier(N_SESSIONS)

    def worker(i):
        s = new_session(ssrv.url)
        try:
            # Session i's view has i + 1 rows (owner i, x = 0..i).
            s.createDataFrame([(i, j) for j in range(i + 1)], ["owner", "x"]).createOrReplaceTempView("mine")
            s.sql("CREATE OR REPLACE TEMP VIEW mine_sql AS SELECT owner, x * 10 AS x10 FROM mine")
            s.conf.set(OWNER_KEY, f"s{i}")
            s.conf.set("spark.scheduler.pool", f"pool{i}")
            views_made.wait(120)  # every session has its view and conf before any reads

            seen = []
            for round_ in range(2):
                marker = f"sess-{run}-{i}-{round_}"
                s.addTag(marker)
                try:
                    r = s.sql(
                        "select min(owner) as lo, max(owner) as hi, count(*) as n, sum(x) as sx from mine"
                    ).collect()[0]
                finally:
                    s.removeTag(marker)
                r2 = s.sql("select sum(x10) as t, count(*) as n from mine_sql").collect()[0]
                seen.append(
                    (
                        (r.lo, r.hi, r.n, r.sx),
                        (r2.t, r2.n),
                        s.conf.get(OWNER_KEY),
                        s.conf.get("spark.scheduler.pool"),
                        marker,
                    )
                )
                if round_ == 0:
                    # Others now replace their views; ours must not change.
                    checked_once.wait(120)
                    s.createDataFrame([(i, j) for j in range(i + 1)], ["owner", "x"]).createOrReplaceTempView(
                        "mine"
                    )
            return seen
        except BaseException:
            views_made.abort()
            checked_once.abort()
            raise
        finally:
            s.stop()

    with ThreadPool(N_SESSIONS) as pool:
        results = pool.map(worker, range(N_SESSIONS))

    for i, seen in enumerate(results):
        for view, view_sql, owner, pool_name, marker in seen:
            assert view == (i, i, i + 1, i * (i + 1) // 2), f"session {i} saw view rows {view}"
            assert view_sql == (10 * i * (i + 1) // 2, i + 1), f"session {i} saw mine_sql {view_sql}"
            assert owner == f"s{i}", f"session {i} read conf {owner!r}"
            assert pool_name == f"pool{i}", f"session {i} read pool {pool_name!r}"
            events = wait_for_job_ends(ssrv.events, marker)
            jobs = jobs_by_tag(events, marker)
            assert jobs, f"no job of session {i} ({marker}) in the event log"
            assert all(j["pool"] == f"pool{i}" for j in jobs), (i, [j["pool"] for j in jobs])

    # A session made afterwards sees none of it.
    fresh = new_session(ssrv.url)
    try:
        with pytest.raises(AnalysisException):
            fresh.sql("select * from mine").collect()
        assert fresh.conf.get(OWNER_KEY, "unset") == "unset"
        assert fresh.table("region").count() == 5  # the shared tables are still there
    finally:
        fresh.stop()


def test_stopped_session_views_do_not_reach_new_sessions(ssrv):
    a = new_session(ssrv.url)
    a.sql("CREATE OR REPLACE TEMP VIEW left_behind AS SELECT 42 AS v")
    assert a.sql("select v from left_behind").collect()[0].v == 42
    a.stop()
    b = new_session(ssrv.url)
    try:
        with pytest.raises(AnalysisException):
            b.sql("select v from left_behind").collect()
    finally:
        b.stop()
