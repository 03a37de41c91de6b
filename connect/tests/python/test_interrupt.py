"""interruptAll / interruptTag / interruptOperation cancel running jobs: the interrupted
action fails in the client within 2 s, its job ends as cancelled, its slots are free
for the next query at once, and the cancelled work really stops (the idle server then
uses no CPU).

The long query is a three-way cross join (60175 x 60175 x 25 rows) under a sum that no
statistic can answer: hours of work, so it only ends by being cancelled."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

import pytest

from conftest import new_session, parse_description, read_events

LONG_SQL = (
    "select sum(a.l_linenumber * b.l_linenumber + n.n_nationkey) as s "
    "from lineitem a cross join lineitem b cross join nation n"
)
CANCELLED = re.compile(r"cancel|interrupt", re.I)
INTERRUPT_WITHIN_S = 2.0


@pytest.fixture
def isrv(start_server, tmp_path):
    """A server of its own for each test: work a failed cancellation leaves running
    must not slow or block the next test."""
    events = tmp_path / "events.jsonl"
    srv = start_server("--slots", "2", "--event-log", str(events), name=f"interrupt-{uuid.uuid4().hex[:6]}")
    srv.events = events
    yield srv
    srv.stop()


class OpRecorder:
    """Client hook: gives every ExecutePlan request an operation id (as the client itself
    would) and records (operation id, tags, plan kind) so the test knows which
    operation runs the long query."""

    def __init__(self, ops):
        self.ops = ops

    def on_execute_plan(self, req):
        if not req.operation_id:
            req.operation_id = str(uuid.uuid4())
        self.ops.append((req.operation_id, list(req.tags), req.plan.WhichOneof("op_type")))
        return req


@pytest.fixture
def ispark(isrv):
    from pyspark.sql.connect.client.retries import DefaultPolicy
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    ops = []
    s = RemoteSparkSession.builder.remote(isrv.url)._registerHook(lambda _s: OpRecorder(ops)).create()
    s.client.set_retry_policies([DefaultPolicy(max_retries=4, max_backoff=1000)])
    s.recorded_ops = ops
    yield s
    s.stop()


class Long:
    """LONG_SQL running in its own thread, with a marker tag (and optional extra tags)."""

    def __init__(self, spark, *tags):
        self.marker = f"long-{uuid.uuid4().hex[:8]}"
        self.tags = (self.marker,) + tags
        self.error = None
        self.value = None
        self.ended_at = None
        self.op = None
        self.thread = threading.Thread(target=self._body, args=(spark,), daemon=True)
        self.thread.start()

    def _body(self, spark):
        for t in self.tags:
            spark.addTag(t)
        try:
            self.value = spark.sql(LONG_SQL).collect()
        except BaseException as e:  # noqa: BLE001 - recorded for the test to check
            self.error = e
        finally:
            self.ended_at = time.monotonic()

    def wait_running(self, spark, timeout=30.0):
        """Wait until the client has sent the query's ExecutePlan, then ~1.5 s more so that
        its job runs; returns the query's operation id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ops = [op for op, tags, kind in list(spark.recorded_ops) if self.marker in tags and kind == "root"]
            if ops:
                time.sleep(1.5)
                assert self.thread.is_alive(), f"the long query ended on its own: {self.value or self.error!r}"
                self.op = ops[-1]
                return self.op
            if not self.thread.is_alive():
                raise AssertionError(f"the long query ended before it was sent: {self.error!r}")
            time.sleep(0.05)
        raise AssertionError(f"the client sent no ExecutePlan with tag {self.marker} within {timeout} s")

    def assert_interrupted(self, since):
        self.thread.join(INTERRUPT_WITHIN_S)
        assert not self.thread.is_alive(), f"the query was still running {INTERRUPT_WITHIN_S} s after the interrupt"
        assert self.error is not None, f"the interrupted query returned {self.value!r}"
        assert self.ended_at - since <= INTERRUPT_WITHIN_S + 0.2
        assert CANCELLED.search(str(self.error)), f"error does not say cancelled/interrupted: {self.error!r}"


def small_query_at_once(spark, limit_s=5.0):
    """A small query answers within limit_s (it would wait forever if the slots were held)."""
    box = {}

    def body():
        t0 = time.monotonic()
        try:
            box["n"] = spark.sql("select count(*) as n from region").collect()[0].n
        except BaseException as e:  # noqa: BLE001
            box["error"] = e
        box["s"] = time.monotonic() - t0

    th = threading.Thread(target=body, daemon=True)
    th.start()
    th.join(limit_s)
    assert not th.is_alive(), f"a small query did not finish within {limit_s} s after the interrupt"
    assert "error" not in box, box.get("error")
    assert box["n"] == 5


def server_cpu_s(srv) -> float:
    with open(f"/proc/{srv.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def assert_work_stopped(srv, grace_s=1.0, window_s=2.0, max_cpu_s=0.5):
    """The cancelled work really stopped: after a short grace, the idle server uses
    (almost) no CPU.  A cancelled task still computing keeps a core busy."""
    if not os.path.exists(f"/proc/{srv.proc.pid}/stat"):
        pytest.skip("needs /proc to measure the server's CPU time")
    time.sleep(grace_s)
    c0 = server_cpu_s(srv)
    time.sleep(window_s)
    used = server_cpu_s(srv) - c0
    assert used <= max_cpu_s, (
        f"the server used {used:.2f} s of CPU in {window_s} s after the interrupt, "
        "with no query running: the cancelled work goes on"
    )


def job_of(events_path, op, timeout=10.0):
    """(job_start, job_end) of the job that ran operation `op`, once it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(events_path)
        start = next(
            (e for e in events if e.get("event") == "job_start"
             and (parse_description(e.get("description", "")) or {}).get("op") == op),
            None,
        )
        if start is not None:
            end = next((e for e in events if e.get("event") == "job_end" and e.get("job") == start["job"]), None)
            if end is not None:
                return start, end
        if time.monotonic() > deadline:
            return start, None
        time.sleep(0.1)


def assert_cancelled_job(events_path, op):
    start, end = job_of(events_path, op)
    assert start is not None, f"no job of operation {op} in the event log"
    assert end is not None, f"job {start['job']} of operation {op} has no job_end"
    assert end["status"] == "cancelled", end


def test_interrupt_all(isrv, ispark):
    long = Long(ispark)
    op = long.wait_running(ispark)
    t0 = time.monotonic()
    ids = ispark.interruptAll()
    long.assert_interrupted(t0)
    assert op in ids, f"interruptAll returned {ids}, not the running operation {op}"
    small_query_at_once(ispark)
    assert_cancelled_job(isrv.events, op)
    assert_work_stopped(isrv)


def test_interrupt_tag_cancels_only_that_tag(isrv, ispark):
    a = Long(ispark, "group-a")
    b = Long(ispark, "group-b")
    op_a = a.wait_running(ispark)
    op_b = b.wait_running(ispark)
    t0 = time.monotonic()
    ids = ispark.interruptTag("group-a")
    a.assert_interrupted(t0)
    assert op_a in ids and op_b not in ids, (ids, op_a, op_b)
    time.sleep(1.0)
    assert b.thread.is_alive(), f"interruptTag('group-a') also ended the group-b query: {b.error!r}"
    t1 = time.monotonic()
    ids = ispark.interruptTag("group-b")
    b.assert_interrupted(t1)
    assert op_b in ids, (ids, op_b)
    small_query_at_once(ispark)
    assert_cancelled_job(isrv.events, op_a)
    assert_cancelled_job(isrv.events, op_b)
    assert_work_stopped(isrv)


def test_interrupt_operation(isrv, ispark):
    long = Long(ispark)
    op = long.wait_running(ispark)
    t0 = time.monotonic()
    ids = ispark.interruptOperation(op)
    long.assert_interrupted(t0)
    assert ids == [op], ids
    small_query_at_once(ispark)
    assert_cancelled_job(isrv.events, op)
    assert_work_stopped(isrv)


def test_interrupt_from_another_session_does_not_cancel(isrv, ispark):
    """interruptAll is per session: another session's interruptAll leaves this query running."""
    long = Long(ispark)
    op = long.wait_running(ispark)
    other = new_session(isrv.url)
    try:
        assert other.interruptAll() == []
        time.sleep(1.0)
        assert long.thread.is_alive(), f"another session's interruptAll ended this query: {long.error!r}"
    finally:
        other.stop()
    t0 = time.monotonic()
    assert op in ispark.interruptAll()
    long.assert_interrupted(t0)
    small_query_at_once(ispark)


def test_event_log_shows_a_running_job(isrv, ispark):
    """The job_start of a running job is in the event log file while it runs (so that the
    log can be followed live), not only once the job has ended."""
    long = Long(ispark)
    op = long.wait_running(ispark)
    try:
        deadline = time.monotonic() + 5.0
        seen = False
        while time.monotonic() < deadline and not seen:
            seen = any(
                e.get("event") == "job_start"
                and (parse_description(e.get("description", "")) or {}).get("op") == op
                for e in read_events(isrv.events)
            )
            time.sleep(0.1)
        assert seen, f"no job_start of the running operation {op} in {isrv.events} after 5 s"
    finally:
        t0 = time.monotonic()
        ispark.interruptAll()
        long.assert_interrupted(t0)
