"""fairway's system tables and CANCEL JOB from a PySpark client: one session runs a long
query, another reads fairway.jobs and fairway.pools in SQL while it runs and cancels it
by id; the first session's action fails as cancelled, and fairway.jobs says so."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from conftest import new_session, write_allocation_file

LONG_SQL = (
    "select sum(a.l_linenumber * b.l_linenumber + n.n_nationkey) as s "
    "from lineitem a cross join lineitem b cross join nation n"
)


@pytest.fixture
def srv(start_server, tmp_path):
    alloc = write_allocation_file(tmp_path / "fair-scheduler.xml", [("etl", "FAIR", 1, 0)])
    server = start_server(
        "--scheduler-mode", "fair", "--allocation-file", str(alloc), "--slots", "2",
        name=f"system-{uuid.uuid4().hex[:6]}",
    )
    yield server
    server.stop()


def test_jobs_are_visible_in_sql_and_cancel_job_ends_one(srv):
    runner, watcher = new_session(srv.url), new_session(srv.url)
    try:
        runner.conf.set("spark.scheduler.pool", "etl")
        outcome = {}

        def run():
            try:
                runner.sql(LONG_SQL).collect()
                outcome["error"] = None
            except Exception as e:  # noqa: BLE001 - the client raises its own types
                outcome["error"] = e

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.time() + 60
        rows = []
        while time.time() < deadline and not rows:
            rows = watcher.sql(
                "select job, pool, state, running_tasks from fairway.jobs where state = 'running'"
            ).collect()
            time.sleep(0.05)
        assert len(rows) == 1, rows
        job = rows[0]["job"]
        assert rows[0]["pool"] == "etl" and rows[0]["running_tasks"] >= 1

        pools = {r["name"]: r for r in watcher.sql("select * from fairway.pools").collect()}
        assert pools["etl"]["running_jobs"] == 1 and pools["etl"]["mode"] == "FAIR"

        cancelled = watcher.sql(f"CANCEL JOB {job}").collect()
        assert [(r["job"], r["was"], r["cancelled"]) for r in cancelled] == [(job, "running", True)]
        thread.join(30)
        assert not thread.is_alive(), "the cancelled action did not end"
        assert outcome["error"] is not None and "cancel" in str(outcome["error"]).lower()

        state = watcher.sql(f"select state from fairway.jobs where job = {job}").collect()
        assert [r["state"] for r in state] == ["cancelled"]
        with pytest.raises(Exception, match="is not queued or running"):
            watcher.sql(f"CANCEL JOB {job}").collect()
    finally:
        runner.stop()
        watcher.stop()
