"""Fixtures for driving `fairway connect` with the stock PyPI Spark Connect client.

Every answer fairway gives is checked against an independent reference: DuckDB
over the same parquet files, or values computed by hand in the test.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import duckdb
import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[3]
TABLES_DIR = REPO / "testdata" / "tpch-sf0.01"
QUERIES_DIR = REPO / "testdata" / "tpch" / "queries"
TPCH_TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]

LISTENING = re.compile(r"fairway connect: listening on sc://(?P<host>\S+):(?P<port>\d+)\s*$")
START_TIMEOUT_S = float(os.environ.get("FAIRWAY_CONNECT_START_TIMEOUT", "120"))


def fairway_bin() -> Path:
    """The binary under test: $FAIRWAY_BIN, else <target dir>/debug/fairway."""
    explicit = os.environ.get("FAIRWAY_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "fairway" / "target")
    return Path(target) / "debug" / "fairway"


# --------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------

_RUNNING: List["Server"] = []


class Server:
    """One `fairway connect` process on an OS-chosen port."""

    def __init__(self, extra_args: Sequence[str], log_dir: Path, name: str, tables: bool = True):
        self.name = name
        self.args = [str(fairway_bin()), "connect", "--port", "0"]
        if tables:
            self.args += ["--tables", str(TABLES_DIR)]
        self.args += [str(a) for a in extra_args]
        self.stderr_log = log_dir / f"{name}.stderr.log"
        self.stdout_log = log_dir / f"{name}.stdout.log"
        self.lines: List[str] = []
        self._lines_lock = threading.Lock()
        self._ready = threading.Event()
        self.host: Optional[str] = None
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None
        self._drain: Optional[threading.Thread] = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> "Server":
        binary = Path(self.args[0])
        if not binary.is_file():
            pytest.fail(f"fairway binary {binary} not found: set FAIRWAY_BIN or build it first")
        self._stdout_file = open(self.stdout_log, "w")
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout_file,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
        )
        self._drain = threading.Thread(target=self._drain_stderr, name=f"drain-{self.name}", daemon=True)
        self._drain.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None:
                self._drain.join(5)
                raise RuntimeError(
                    f"fairway connect ({' '.join(self.args)}) exited with {self.proc.returncode} "
                    f"before listening; stderr:\n{self.tail(40)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"fairway connect did not print its listening line in {START_TIMEOUT_S} s; "
                    f"stderr:\n{self.tail(40)}"
                )
        _RUNNING.append(self)
        return self

    def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with open(self.stderr_log, "w") as log:
            for line in self.proc.stderr:
                log.write(line)
                log.flush()
                with self._lines_lock:
                    self.lines.append(line.rstrip("\n"))
                if not self._ready.is_set():
                    m = LISTENING.search(line.rstrip("\n"))
                    if m:
                        self.host = m.group("host")
                        self.port = int(m.group("port"))
                        self._ready.set()

    def stop(self) -> Optional[int]:
        """SIGTERM by PID, SIGKILL after 10 s; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        if self._drain is not None:
            self._drain.join(5)
        self._stdout_file.close()
        if self in _RUNNING:
            _RUNNING.remove(self)
        return self.proc.returncode

    # -- addresses and logs ------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def url_with(self, host: str = "127.0.0.1", **params: str) -> str:
        tail = "".join(f";{k}={v}" for k, v in params.items())
        return f"sc://{host}:{self.port}/{tail}" if tail else f"sc://{host}:{self.port}"

    def line_count(self) -> int:
        with self._lines_lock:
            return len(self.lines)

    def lines_since(self, start: int) -> List[str]:
        with self._lines_lock:
            return list(self.lines[start:])

    def tail(self, n: int = 30) -> str:
        with self._lines_lock:
            return "\n".join(self.lines[-n:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ServerFactory:
    """Starts extra servers with their own options; all are stopped at session end."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self._count = 0
        self._servers: List[Server] = []

    def start(self, *extra_args: str, name: Optional[str] = None, tables: bool = True) -> Server:
        self._count += 1
        server = Server(extra_args, self.log_dir, name or f"server{self._count}", tables=tables)
        server.start()
        self._servers.append(server)
        return server

    def stop_all(self) -> None:
        for s in self._servers:
            s.stop()


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fairway-connect-logs")


@pytest.fixture(scope="session")
def start_server(server_logs):
    """`start_server("--slots", "2", name="x")` -> a running Server (stopped at session end)."""
    factory = ServerFactory(server_logs)
    yield factory.start
    factory.stop_all()


@pytest.fixture(scope="session")
def server(start_server) -> Server:
    """The shared server: default options, the sf0.01 tables."""
    return start_server(name="main")


@pytest.fixture(scope="session")
def url(server) -> str:
    return server.url


def new_session(url: str):
    """A fresh, independent Connect session (SparkSession.builder...create()).

    The client's default retry policy waits up to 10 minutes for an UNAVAILABLE
    server; a few short retries keep a crashed server from stalling every test."""
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.client.retries import DefaultPolicy

    session = SparkSession.builder.remote(url).create()
    session.client.set_retry_policies([DefaultPolicy(max_retries=4, max_backoff=1000)])
    return session


@pytest.fixture
def spark(server):
    # create() rather than getOrCreate(): getOrCreate() hands back any existing
    # default session, which may belong to another test's server.
    session = new_session(server.url)
    yield session
    session.stop()


def pytest_configure(config):
    # pyspark-client 4.2 warns at import that pandas 3 is not fully supported yet.
    config.addinivalue_line("filterwarnings", "ignore:PySpark does not yet fully support pandas:FutureWarning")


# Attach the servers' stderr lines written during a failed test to its report.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    item._fairway_marks = [(s, s.line_count()) for s in list(_RUNNING)]
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        marks = {id(s): n for s, n in getattr(item, "_fairway_marks", [])}
        for s in list(_RUNNING):
            new = s.lines_since(marks.get(id(s), 0))
            if new:
                text = "\n".join(new[-80:])
                report.sections.append((f"fairway stderr ({s.name}, {s.stderr_log})", text))


# --------------------------------------------------------------------------------------
# DuckDB: the reference
# --------------------------------------------------------------------------------------


def duck_connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for f in sorted(TABLES_DIR.glob("*.parquet")):
        con.execute(f"CREATE VIEW {f.stem} AS SELECT * FROM read_parquet('{f}')")
    return con


@pytest.fixture(scope="session")
def duck():
    con = duck_connect()
    yield con
    con.close()


def duck_df(con, sql: str) -> pd.DataFrame:
    return con.sql(sql).df()


def duck_scalar(con, sql: str):
    rows = con.execute(sql).fetchall()
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]


def query_text(name: str) -> str:
    return (QUERIES_DIR / f"{name}.sql").read_text()


# --------------------------------------------------------------------------------------
# Comparing frames
# --------------------------------------------------------------------------------------


def _is_null(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if isinstance(v, np.floating) and np.isnan(v):
        return True
    if isinstance(v, np.datetime64) and np.isnat(v):
        return True
    return False


def canon(v):
    """One Python value per SQL value, whichever engine or pandas dtype produced it."""
    if _is_null(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (pd.Timestamp, np.datetime64, _dt.datetime, _dt.date)):
        ts = pd.Timestamp(v)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        return tuple(canon(x) for x in v)
    return v


def frame_rows(df: pd.DataFrame) -> List[tuple]:
    return [tuple(canon(v) for v in row) for row in df.itertuples(index=False, name=None)]


def _sort_key(row: tuple, float_cols: set) -> tuple:
    exact, approx = [], []
    for i, v in enumerate(row):
        if v is None:
            k = (0, "")
        elif i in float_cols:
            k = (1, float(f"{float(v):.5g}"))
        elif isinstance(v, bool):
            k = (2, int(v))
        elif isinstance(v, (int, float)):
            k = (3, v)
        elif isinstance(v, pd.Timestamp):
            k = (4, v.value)
        else:
            k = (5, str(v))
        (approx if i in float_cols else exact).append(k)
    return tuple(exact) + tuple(approx)


def _values_equal(a, b, rel: float, abs_tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_tol)
    return a == b


def assert_frames_equal(
    actual: pd.DataFrame,
    expected: pd.DataFrame,
    *,
    check_names: bool = True,
    sort: bool = True,
    rel: float = 1e-9,
    abs_tol: float = 1e-6,
    what: str = "",
) -> None:
    """Same column names (in order), same multiset of rows (floats within tolerance)."""
    label = f"{what}: " if what else ""
    if check_names:
        assert list(actual.columns) == list(expected.columns), (
            f"{label}column names differ: fairway {list(actual.columns)} vs reference {list(expected.columns)}"
        )
    else:
        assert len(actual.columns) == len(expected.columns), (
            f"{label}column counts differ: {list(actual.columns)} vs {list(expected.columns)}"
        )
    a_rows, e_rows = frame_rows(actual), frame_rows(expected)
    assert len(a_rows) == len(e_rows), f"{label}row counts differ: fairway {len(a_rows)} vs reference {len(e_rows)}"
    if sort:
        float_cols = set()
        for rows in (a_rows, e_rows):
            for r in rows:
                for i, v in enumerate(r):
                    if isinstance(v, float):
                        float_cols.add(i)
        a_rows = sorted(a_rows, key=lambda r: _sort_key(r, float_cols))
        e_rows = sorted(e_rows, key=lambda r: _sort_key(r, float_cols))
    for n, (ra, re_) in enumerate(zip(a_rows, e_rows)):
        for i, (va, ve) in enumerate(zip(ra, re_)):
            if not _values_equal(va, ve, rel, abs_tol):
                col = expected.columns[i]
                raise AssertionError(
                    f"{label}row {n} column {col!r}: fairway {va!r} vs reference {ve!r}\n"
                    f"  fairway row:   {ra}\n  reference row: {re_}"
                )


# --------------------------------------------------------------------------------------
# Event logs
# --------------------------------------------------------------------------------------

DESCRIPTION = re.compile(r"^connect op=(?P<op>\S+) tags=\[(?P<tags>[^\]]*)\] ?(?P<rest>.*)$", re.S)


def read_events(path: Path) -> List[dict]:
    """The complete JSON lines of an event log (a half-written last line is skipped)."""
    events = []
    if not Path(path).exists():
        return events
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def parse_description(description: str) -> Optional[dict]:
    m = DESCRIPTION.match(description or "")
    if not m:
        return None
    tags = [t.strip() for t in m.group("tags").split(",") if t.strip()]
    return {"op": m.group("op"), "tags": tags, "rest": m.group("rest")}


def jobs_by_tag(events: Iterable[dict], tag: str) -> List[dict]:
    """job_start events whose connect description carries `tag`."""
    out = []
    for e in events:
        if e.get("event") == "job_start":
            d = parse_description(e.get("description", ""))
            if d and tag in d["tags"]:
                out.append(e)
    return out


def wait_for_job_ends(path: Path, tag: str, timeout: float = 15.0) -> List[dict]:
    """Events once every job carrying `tag` has a job_end (and at least one exists)."""
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(path)
        starts = jobs_by_tag(events, tag)
        ended = {e["job"] for e in events if e.get("event") == "job_end"}
        if starts and all(s["job"] in ended for s in starts):
            return events
        if time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def write_allocation_file(path: Path, pools: Sequence[tuple]) -> Path:
    """pools: (name, mode, weight, minShare) tuples, in Spark's fair-scheduler.xml format."""
    body = "".join(
        f'  <pool name="{n}">\n    <schedulingMode>{m}</schedulingMode>\n'
        f"    <weight>{w}</weight>\n    <minShare>{s}</minShare>\n  </pool>\n"
        for n, m, w, s in pools
    )
    path.write_text(f'<?xml version="1.0"?>\n<allocations>\n{body}</allocations>\n')
    return path
