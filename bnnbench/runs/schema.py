"""Run files: the schema, and the validation every file passes before it is read.

    {"schema_version", "kind", "run_id", "status", "started_at", "finished_at",
     "bnnbench_version", "git_commit", "command", "settings", "host", "rows"}

Files from other hosts are untrusted: validate_run() checks a run before
anything reads it and names the file and the reason when it rejects one.
"""
import math

from .. import untrusted
from ..files import safe_name
from . import host_files

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
# A sweep's whole-network rows (level "model") name a model, not a GEMM.
MODEL_ROW_FIELDS = {
    "method": str, "threads": int, "model": str, "batch": int,
    "verified": bool, "samples_s": list, "min_s": _NUM, "median_s": _NUM, "iqr_s": _NUM,
}
# Fields a row may carry that the report groups by: when present they must
# have these types (None allowed). Numeric extras need no rule here: the
# report coerces them (report.data.NUMERIC_ROW_COLUMNS), a bad one becomes NaN.
OPTIONAL_ROW_FIELDS = {"kind": str, "level": str}
# Integers beyond 2**53 turn a DataFrame column into Python objects that
# numpy's arithmetic refuses; no count bnnbench measures comes near.
MAX_INT = 2**53
HOST_FIELDS = {"label": str, "arch": str}
_UNTIMED_OK = ("min_s", "median_s", "iqr_s")


RunFileError = untrusted.RejectedFile   # names the file and the reason


class NotARunFile(RunFileError):
    """A file bnnbench writes beside run files that is no run (a host file):
    loaders pass over it without a warning."""


def run_filename(run):
    stamp = run["started_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    return f"{run['kind']}-{safe_name(run['host']['label'])}-{stamp[:15]}-{run['run_id'][:8]}.json"


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
        required = (MODEL_ROW_FIELDS if kind == "sweep" and row.get("level") == "model"
                    else ROW_FIELDS[kind])
        for key, typ in required.items():
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


def parse_run(raw, path="<run>"):
    """Validate the bytes of a run file that arrived some other way than
    from disk (bnnbench fleet reads them from a device), under the same rules."""
    return validate_run(untrusted.parse_bytes(raw, path), path)
