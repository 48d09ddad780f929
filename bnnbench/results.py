"""Run files: one self-describing JSON file per run.

    {"schema_version", "kind", "run_id", "status", "started_at", "finished_at",
     "bnnbench_version", "git_commit", "command", "settings", "host", "rows"}

Files are written atomically (temp file + rename) after every row, so an
interrupted run keeps what it measured and says so in "status". Files from
other hosts are untrusted: load_run() validates before anything reads them
and names the file and the reason when it rejects one.
"""
import datetime
import json
import math
import os
import re
import subprocess
import sys
import uuid
import warnings

import pandas as pd

from . import files, host_files, untrusted
from .errors import BnnbenchError

SCHEMA_VERSION = 1
STATUSES = ("running", "complete", "interrupted", "failed")
RUN_KEYS = ("schema_version", "kind", "run_id", "status", "started_at", "host", "rows")

# Required row fields and their types, per kind of run. Other modules add
# their kinds here so one loader validates every run file.
_NUM = (int, float)
ROW_FIELDS = {
    "sweep": {
        "method": str, "threads": int, "M": int, "N": int, "K": int,
        "channels": int, "filters": int, "kernel": int, "batch": int, "out_size": int,
        "verified": bool, "samples_s": list, "min_s": _NUM, "median_s": _NUM, "iqr_s": _NUM,
    },
    # bnnbench accuracy: one row per (network, evaluation) on the digits test set.
    "accuracy": {
        "network": str, "evaluation": str, "accuracy": _NUM, "correct": int,
        "test_samples": int,
    },
    # bnnbench profile: one row per (layer, method, threads) of a model's GEMMs.
    "profile": {
        "model": str, "layer": str, "method": str, "threads": int, "batch": int,
        "M": int, "N": int, "K": int, "binary": bool,
        "verified": bool, "samples_s": list, "min_s": _NUM, "median_s": _NUM, "iqr_s": _NUM,
    },
}
# Fields a row may carry that the report groups by: when present they must
# have these types (None allowed). Numeric extras need no rule here: the
# report coerces them (report.data.NUMERIC_ROW_COLUMNS), a bad one becomes NaN.
OPTIONAL_ROW_FIELDS = {"kind": str}
# Integers beyond 2**53 turn a DataFrame column into Python objects that
# numpy's arithmetic refuses; no count bnnbench measures comes near.
MAX_INT = 2**53
HOST_FIELDS = {"label": str, "arch": str}
_UNTIMED_OK = ("min_s", "median_s", "iqr_s")


RunFileError = untrusted.RejectedFile   # names the file and the reason


class NotARunFile(RunFileError):
    """A file bnnbench writes beside run files that is no run (a host file):
    loaders pass over it without a warning."""


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit():
    """The commit this code is: a source archive shipped by `bnnbench fleet`
    has no .git, so it carries the hash in bnnbench/COMMIT instead."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(here, "COMMIT"), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        pass
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def new_run(kind, host, settings=None, command=None):
    from . import __version__
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "run_id": uuid.uuid4().hex,
        "status": "running",
        "started_at": now_iso(),
        "finished_at": None,
        "bnnbench_version": __version__,
        "git_commit": git_commit(),
        "command": command if command is not None else " ".join(["bnnbench"] + sys.argv[1:]),
        "settings": settings or {},
        "host": host,
        "rows": [],
        # Who writes the file, and when it last did: how a report tells a
        # run still going from one whose process died (bnnbench.liveness).
        "pid": os.getpid(),
        "heartbeat_at": None,
    }


def safe_name(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "host"


def run_filename(run):
    stamp = run["started_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    return f"{run['kind']}-{safe_name(run['host']['label'])}-{stamp[:15]}-{run['run_id'][:8]}.json"


def write_atomic(path, obj):
    files.write_atomic(path, json.dumps(obj, indent=1, allow_nan=False))


class RunWriter:
    """Keeps a run file on disk up to date, row by row.

    If a save fails (disk full, the directory gone read-only), the file on
    disk keeps every row saved before and its status is patched in place
    from "running" to "failed" (same length, so it works on a full disk);
    the WriteError says so in one line and later saves are no-ops."""

    def __init__(self, run, out_dir):
        self.run = run
        self.broken = False
        files.writable_dir(out_dir)
        self.path = os.path.join(out_dir, run_filename(run))
        self.save()

    def add_row(self, row):
        self.run["rows"].append(row)
        self.save()

    def finish(self, status="complete"):
        finish_run(self.run, status)
        self.save()

    def save(self):
        if self.broken:
            return
        self.run["heartbeat_at"] = now_iso()
        try:
            write_atomic(self.path, self.run)
        except files.WriteError as exc:
            self.broken = True
            kept = _mark_failed_in_place(self.path)
            raise files.WriteError(self.path, exc.reason, (
                "the rows saved before are kept and the run is marked failed" if kept
                else "no run file was written"))


def finish_run(run, status):
    """Close `run` with its final status (also for a run whose process died
    while it was "running": bnnbench fleet fetch marks it interrupted)."""
    run["status"] = status
    run["finished_at"] = now_iso()


def _mark_failed_in_place(path):
    """Status "running" -> "failed" in the file on disk, without new space.
    json.dumps(indent=1) puts the top-level key at one space of indent."""
    try:
        return files.patch_in_place(path, b'\n "status": "running",',
                                    b'\n "status": "failed" ,')
    except OSError:
        return False


# ----------------------------------------------------------------- loading

def _migrate(run):
    """Bring an older schema up to SCHEMA_VERSION (none older exists yet)."""
    return run


def _check_type(value, expected):
    if expected is int or expected == (int,):
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT
    if expected is bool:
        return isinstance(value, bool)
    if expected == _NUM:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and abs(value) <= (MAX_INT if isinstance(value, int) else math.inf)
                and math.isfinite(value))
    return isinstance(value, expected)


def validate_run(run, path="<run>"):
    """Raise RunFileError unless `run` is a well-formed run object."""
    if not isinstance(run, dict):
        raise RunFileError(path, "not a bnnbench run file (top level is not an object)")
    if host_files.looks_like(run):
        raise NotARunFile(path, host_files.NOT_A_RUN)
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise RunFileError(path, f"not a bnnbench run file (missing {', '.join(missing)})")
    version = run["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunFileError(path, f"bad schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise RunFileError(path, f"schema_version {version} is newer than this bnnbench "
                                 f"understands ({SCHEMA_VERSION}); upgrade bnnbench")
    run = _migrate(run)
    kind = run["kind"]
    if kind not in ROW_FIELDS:
        raise RunFileError(path, f"unknown run kind {kind!r}")
    if run["status"] not in STATUSES:
        raise RunFileError(path, f"unknown status {run['status']!r}")
    for key in ("run_id", "started_at"):
        if not isinstance(run[key], str):
            raise RunFileError(path, f"{key} must be a string")
    host = run["host"]
    if not isinstance(host, dict):
        raise RunFileError(path, "host must be an object")
    for key, typ in HOST_FIELDS.items():
        if not isinstance(host.get(key), typ):
            raise RunFileError(path, f"host.{key} missing or not a {typ.__name__}")
    if not isinstance(run["rows"], list):
        raise RunFileError(path, "rows must be a list")
    for i, row in enumerate(run["rows"]):
        if not isinstance(row, dict):
            raise RunFileError(path, f"row {i} is not an object")
        for key, typ in ROW_FIELDS[kind].items():
            if key not in row:
                raise RunFileError(path, f"row {i} lacks {key!r}")
            if row.get("verified") is False and key in _UNTIMED_OK and row[key] is None:
                continue  # a result that failed verification is never timed
            if not _check_type(row[key], typ):
                raise RunFileError(path, f"host {host['label']!r:.40}, row {i}: "
                                         f"{key}={row[key]!r:.40} has the wrong type")
        for key, typ in OPTIONAL_ROW_FIELDS.items():
            if row.get(key) is not None and not _check_type(row[key], typ):
                raise RunFileError(path, f"host {host['label']!r:.40}, row {i}: "
                                         f"{key}={row[key]!r:.40} has the wrong type")
        samples = row.get("samples_s")
        if samples is not None and not all(_check_type(s, _NUM) and s >= 0 for s in samples):
            raise RunFileError(path, f"host {host['label']!r:.40}, row {i}: samples_s must be "
                                     f"non-negative numbers")
    return run


def load_run(path):
    """Read and validate one run file; RunFileError names the file and reason.
    A file in an asv results directory is read by bnnbench.asv_results."""
    from . import asv_results
    if asv_results.is_results_file(path):
        run = asv_results.load_run(path)
        if run is not None:
            return run
    return validate_run(untrusted.read_json(path), path)


def parse_run(raw, path="<run>"):
    """Validate the bytes of a run file that arrived some other way than
    from disk (bnnbench fleet reads them from a device), under the same rules."""
    return validate_run(untrusted.parse_bytes(raw, path), path)


def expand_paths(paths, on_skip=untrusted.warn_skip):
    """Files as given; directories searched recursively for *.json (by
    untrusted.walk: regular files only, loops and FIFOs reported to
    on_skip), less asv's own machine.json and benchmarks.json (asv's
    results are runs too)."""
    from .asv_results import is_bookkeeping
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [f for f in untrusted.walk(p, ".json", on_skip) if not is_bookkeeping(f)]
        elif os.path.exists(p):
            files.append(p)
        else:
            raise BnnbenchError(f"no such file or directory: {p}")
    return files


def load_runs(paths, kinds=None):
    """Load every valid run under `paths`; warn about and skip the rest."""
    runs = []
    for path in expand_paths(paths):
        try:
            run = load_run(path)
        except NotARunFile:
            continue
        except RunFileError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        if kinds is None or run["kind"] in kinds:
            run["_path"] = path
            runs.append(run)
    return runs


def _flatten_host(host):
    flat = {}
    for key, value in host.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                flat[f"host_{key}_{sub}"] = v
        elif isinstance(value, list):
            flat[f"host_{key}"] = " ".join(map(str, value))
        else:
            flat[f"host_{key}"] = value
    return flat


def runs_to_frame(runs):
    """One DataFrame row per measured row; run and host fields as columns."""
    records = []
    for run in runs:
        # run_kind: a row may have its own "kind" (a sweep row's is float or xnor)
        base = {"run_id": run["run_id"], "run_kind": run["kind"], "status": run["status"],
                "started_at": run["started_at"], "git_commit": run.get("git_commit"),
                "path": run.get("_path")}
        base.update(_flatten_host(run["host"]))
        for row in run["rows"]:
            rec = dict(base)
            if run["kind"] == "sweep":
                rec["level"] = "gemm"   # rows from before the layer level
            rec.update(row)
            records.append(rec)
    return pd.DataFrame.from_records(records)


def load_frame(paths, kinds=None):
    return runs_to_frame(load_runs(paths, kinds))


SHAPE_KEYS = ["channels", "filters", "kernel", "batch", "out_size", "M", "N", "K"]
# Keys only layer rows have (level "conv"), and each level's float baseline.
LAYER_KEYS = ["height", "width", "stride", "padding"]
BASELINES = {"gemm": "float_blas", "conv": "conv_float_blas"}


def add_speedups(df, baseline=None):
    """speedup = baseline median / method median, inside one run, same level,
    shape and thread count: ratios are never taken across runs or hosts.
    The baseline is the level's (BASELINES) unless one is given."""
    if df.empty:
        return df.assign(speedup=pd.Series(dtype=float))
    if "level" not in df:
        df = df.assign(level="gemm")
    keys = ["run_id", "level"] + SHAPE_KEYS + [k for k in LAYER_KEYS if k in df] + ["threads"]
    base = (df[_is_baseline(df, baseline)][keys + ["median_s"]]
            .rename(columns={"median_s": "baseline_median_s"}))
    out = df.merge(base, on=keys, how="left")
    out["speedup"] = out["baseline_median_s"] / out["median_s"]
    if "verified" in out:
        out.loc[out["verified"] != True, "speedup"] = float("nan")  # noqa: E712
    return _add_intervals(out.drop(columns="baseline_median_s"), keys, baseline)


def _is_baseline(df, baseline=None):
    if baseline:
        return df["method"] == baseline
    return df["method"] == df["level"].map(BASELINES)


def _add_intervals(df, keys, baseline):
    """speedup_low / speedup_high / speedup_noisy for rows whose run file
    predates them (a sweep stores its own), by the sweep's rule (bnnbench.trust)."""
    from . import trust
    for col in ("speedup_low", "speedup_high", "speedup_noisy"):
        if col not in df:
            df[col] = None
    todo = df["speedup_noisy"].isna() & df["speedup"].notna()
    if not todo.any() or "samples_s" not in df:
        return df
    def key(r):   # NaN (a GEMM row's missing layer keys) never equals itself
        return tuple(None if isinstance(r[k], float) and math.isnan(r[k]) else r[k]
                     for k in keys)
    base = {key(r): r for r in df[_is_baseline(df, baseline)].to_dict("records")}
    for i in df.index[todo]:
        row = df.loc[i]
        b = base.get(key(row))
        if b is None:
            continue
        low, high = trust.ratio_interval(b.get("samples_s"), row["samples_s"])
        df.at[i, "speedup_low"], df.at[i, "speedup_high"] = low, high
        wide = row["method"] != b["method"] and trust.interval_is_wide(low, high)
        df.at[i, "speedup_noisy"] = bool(b.get("noisy") is True or row.get("noisy") is True
                                         or wide)
    return df
