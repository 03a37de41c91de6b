#!/usr/bin/env python3
"""The customer feature table built two ways, timed alternately:

  pyspark   the stock PyPI Spark Connect client against `fairway connect`: the spec's
            shared views become temp views; ThreadPool(N) runs one method per thread
            (tagged spark.scheduler.pool=features), each writing its frame to parquet
            and reading it back; the frames are merged with
            reduce(full join on the key) and written to parquet.
  features  `fairway features build SPEC --out OUT --force` as a subprocess.

    python benches/pyspark/customer_features.py [--bin FAIRWAY] [--spec SPEC.toml]
        [--data TABLES_DIR] [--runs 5] [--slots S] [--threads N] [--lazy] [--keep]

--data defaults to the spec's own sources (testdata/tpch-sf0.01 for the bundled spec);
any folder of <table>.parquet files works, e.g. one made by `fairway tpch gen --sf 1
--out ~/.cache/fairway/tpch/sf1`.  Then a temporary copy of the spec with [sources]
pointing into that folder is what `features build` reads.

Prints each run's seconds, the medians, and the ratio pyspark / features.  Both
outputs of every run are compared (rows, columns, keys); a difference prints MISMATCH
and the script exits with status 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import warnings
from multiprocessing.pool import ThreadPool
from pathlib import Path

warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = REPO / "testdata" / "features" / "customer.toml"
LISTENING = re.compile(r"fairway connect: listening on sc://(\S+):(\d+)\s*$")


def default_bin() -> Path:
    if os.environ.get("FAIRWAY_BIN"):
        return Path(os.environ["FAIRWAY_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "fairway" / "target")
    for profile in ("release", "debug"):
        if (target / profile / "fairway").is_file():
            return target / profile / "fairway"
    return target / "debug" / "fairway"


# ------------------------------------------------------------------ the spec


def load_spec(path: Path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def resolve_sources(spec: dict, spec_dir: Path, data: Path | None) -> dict[str, Path]:
    out = {}
    for name, rel in spec.get("sources", {}).items():
        p = (spec_dir / rel).resolve()
        out[name] = (data / p.name).resolve() if data is not None else p
    return out


def method_sql(defn: dict, spec_dir: Path) -> str:
    """One SQL query per view or method: its sql, its sql_file, or its DataFrame steps
    (from, filter, group_by + aggregate, select, applied in that order)."""
    if "sql" in defn:
        return defn["sql"]
    if "sql_file" in defn:
        return (spec_dir / defn["sql_file"]).read_text()
    where = f" where {defn['filter']}" if defn.get("filter") else ""
    group_by, aggregate, select = defn.get("group_by", []), defn.get("aggregate", []), defn.get("select", [])
    if aggregate:
        q = f"select {', '.join(group_by + aggregate)} from {defn['from']}{where}"
        if group_by:
            q += f" group by {', '.join(group_by)}"
        if select:
            q = f"select {', '.join(select)} from ({q}) steps"
        return q
    return f"select {', '.join(select) if select else '*'} from {defn['from']}{where}"


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # TOML basic strings take JSON's escapes
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def write_toml(doc: dict, path: Path) -> None:
    lines = []
    tables, arrays = {}, {}
    for k, v in doc.items():
        if isinstance(v, dict):
            tables[k] = v
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays[k] = v
        else:
            lines.append(f"{toml_key(k)} = {toml_value(v)}")
    for k, t in tables.items():
        lines.append(f"\n[{toml_key(k)}]")
        lines += [f"{toml_key(a)} = {toml_value(b)}" for a, b in t.items()]
    for k, items in arrays.items():
        for item in items:
            lines.append(f"\n[[{toml_key(k)}]]")
            lines += [f"{toml_key(a)} = {toml_value(b)}" for a, b in item.items()]
    path.write_text("\n".join(lines) + "\n")


def spec_copy(spec: dict, spec_dir: Path, sources: dict[str, Path], out_dir: Path) -> Path:
    """The spec with absolute paths: [sources] into the data folder, sql_file and
    allocation_file resolved against the original spec's folder."""
    doc = json.loads(json.dumps(spec, default=str))
    doc["sources"] = {k: str(v) for k, v in sources.items()}
    for section in ("view", "method"):
        for d in doc.get(section, []):
            if "sql_file" in d:
                d["sql_file"] = str((spec_dir / d["sql_file"]).resolve())
    sched = doc.get("scheduler", {})
    if "allocation_file" in sched:
        sched["allocation_file"] = str((spec_dir / sched["allocation_file"]).resolve())
    doc.setdefault("output", {})["path"] = str(out_dir / "spec-default-output.parquet")
    path = out_dir / "spec.toml"
    write_toml(doc, path)
    return path


# ------------------------------------------------------------------ the server


class ConnectServer:
    def __init__(self, binary: Path, data: Path, slots: int, log: Path):
        args = [str(binary), "connect", "--port", "0", "--tables", str(data), "--scheduler-mode", "fair"]
        args += ["--slots", str(slots)]
        self.log = log
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, errors="replace", bufsize=1,
        )
        self.port = None
        self._ready = threading.Event()
        self._lines: list[str] = []
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + 120
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"fairway connect did not start ({' '.join(args)}):\n" + "\n".join(self._lines[-30:]))

    def _drain_stderr(self):
        with open(self.log, "w") as f:
            for line in self.proc.stderr:
                f.write(line)
                f.flush()
                self._lines.append(line.rstrip("\n"))
                m = LISTENING.search(line.rstrip("\n"))
                if m and not self._ready.is_set():
                    self.port = int(m.group(2))
                    self._ready.set()

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._drain.join(5)


# ------------------------------------------------------------------ the two builds


def run_pyspark(url, spec, spec_dir, sources, data, key, threads, out: Path, lazy: bool) -> float:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(url).create()
    try:
        t0 = time.perf_counter()
        for name, path in sources.items():
            if not (path.parent == data.resolve() and path.stem == name):
                reader = spark.read.csv(str(path), header=True, inferSchema=True) if path.suffix == ".csv" \
                    else spark.read.parquet(str(path))
                reader.createOrReplaceTempView(name)
        for view in spec.get("view", []):
            spark.sql(f"CREATE OR REPLACE TEMP VIEW {view['name']} AS {method_sql(view, spec_dir)}")
        stage = out.parent / f"{out.name}-methods"

        def method(defn):
            spark.addTag("spark.scheduler.pool=features")
            try:
                df = spark.sql(method_sql(defn, spec_dir))
                if lazy:
                    return df
                path = str(stage / defn["name"])
                df.write.mode("overwrite").parquet(path)
                return spark.read.parquet(path)
            finally:
                spark.removeTag("spark.scheduler.pool=features")

        with ThreadPool(threads) as pool:
            frames = pool.map(method, spec["method"])
        merged = functools.reduce(lambda a, b: a.join(b, on=key, how="full"), frames)
        merged.write.mode("overwrite").parquet(str(out))
        return time.perf_counter() - t0
    finally:
        spark.stop()


def run_features(binary, spec_path, out: Path, slots: int, log: Path) -> float:
    args = [str(binary), "features", "build", str(spec_path), "--out", str(out), "--force", "--slots", str(slots)]
    t0 = time.perf_counter()
    with open(log, "a") as f:
        rc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=f, stderr=f).returncode
    elapsed = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"{' '.join(args)} failed with status {rc}; see {log}")
    return elapsed


def compare_outputs(pyspark_dir: Path, features_file: Path, key) -> str | None:
    import pyarrow.dataset as ds

    a = ds.dataset(str(pyspark_dir), format="parquet").to_table()
    b = ds.dataset(str(features_file), format="parquet").to_table()
    keys = [key] if isinstance(key, str) else list(key)
    if a.num_rows != b.num_rows:
        return f"rows: pyspark {a.num_rows}, features {b.num_rows}"
    if sorted(a.column_names) != sorted(b.column_names):
        return f"columns: pyspark {a.column_names}, features {b.column_names}"
    ka = sorted(zip(*(a.column(k).to_pylist() for k in keys)))
    kb = sorted(zip(*(b.column(k).to_pylist() for k in keys)))
    if ka != kb:
        return "the key sets differ"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=default_bin(), help="the fairway binary")
    ap.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="feature spec (TOML)")
    ap.add_argument("--data", type=Path, default=None, help="folder of the tables (default: the spec's sources)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each build (default 5)")
    ap.add_argument("--slots", type=int, default=os.cpu_count() or 2, help="slots of both (default: cores)")
    ap.add_argument("--threads", type=int, default=None, help="ThreadPool size (default: one per method)")
    ap.add_argument("--lazy", action="store_true", help="pyspark: no per-method parquet; one merged plan")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (outputs, logs)")
    args = ap.parse_args()

    spec_path = args.spec.resolve()
    spec_dir = spec_path.parent
    spec = load_spec(spec_path)
    key = spec["key"]
    data = args.data.expanduser().resolve() if args.data else None
    sources = resolve_sources(spec, spec_dir, data)
    if data is None:
        dirs = {p.parent for p in sources.values()}
        if len(dirs) != 1:
            sys.exit(f"the spec's sources lie in several folders ({sorted(map(str, dirs))}): pass --data")
        data = dirs.pop()
    missing = [str(p) for p in sources.values() if not p.exists()]
    if missing:
        sys.exit(f"missing source files: {missing}")
    threads = args.threads or len(spec["method"])

    work = Path(tempfile.mkdtemp(prefix="fairway-pyspark-bench-"))
    features_spec = spec_path if args.data is None else spec_copy(spec, spec_dir, sources, work)
    print(f"binary {args.bin}\nspec {spec_path} ({len(spec['method'])} methods, key {key})")
    print(f"data {data}\nslots {args.slots}, threads {threads}, runs {args.runs}, work folder {work}")
    if features_spec != spec_path:
        print(f"features build reads the copy {features_spec}")

    server = ConnectServer(args.bin, data, args.slots, work / "connect.stderr.log")
    times = {"pyspark": [], "features": []}
    mismatches = 0
    try:
        for i in range(args.runs):
            order = ["pyspark", "features"] if i % 2 == 0 else ["features", "pyspark"]
            py_out, ft_out = work / f"pyspark-{i}", work / f"features-{i}.parquet"
            for which in order:
                if which == "pyspark":
                    s = run_pyspark(server.url, spec, spec_dir, sources, data, key, threads, py_out, args.lazy)
                else:
                    s = run_features(args.bin, features_spec, ft_out, args.slots, work / "features.log")
                times[which].append(s)
                print(f"run {i + 1}/{args.runs} {which:8s} {s:8.3f} s", flush=True)
            diff = compare_outputs(py_out, ft_out, key)
            if diff:
                mismatches += 1
                print(f"MISMATCH in run {i + 1}: {diff}")
    finally:
        server.stop()
        if not args.keep and mismatches == 0:
            shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median pyspark  {med['pyspark']:.3f} s  ({', '.join(f'{x:.3f}' for x in times['pyspark'])})")
    print(f"median features {med['features']:.3f} s  ({', '.join(f'{x:.3f}' for x in times['features'])})")
    print(f"ratio pyspark/features {med['pyspark'] / med['features']:.2f}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
