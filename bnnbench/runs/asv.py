"""What asv measured, as bnnbench runs and the tidy DataFrame.

An asv results directory (asv.conf.json's results_dir, .asv/results here):

    benchmarks.json                 every benchmark's params and param_names
    <machine>/machine.json          asv's machine description
    <machine>/<commit>-<env>.json   one commit in one environment (asv's
                                    format 2: result_columns + per-benchmark
                                    arrays over the cartesian product of params)
    <machine>/bnnbench-host.jsonl   bnnbench's host fingerprints of that
                                    machine, one line per change (save_host)

Each results file becomes one run of kind "asv" (a commit measured on one
machine in one environment; run_kind in the DataFrame) whose rows carry the
same columns as sweep rows where asv has them: method and its kind (float or
xnor), channels/filters/kernel/batch/out_size/M/N/K, threads, median_s,
min_s, iqr_s; plus commit, machine, environment and the
asv benchmark name, type, unit and raw value (track_ benchmarks have only
that). Shape fields that are not parameters of a benchmark are bnnbench's
defaults (bnnbench.methods.shapes), as in the suites. Files are untrusted: anything
that does not parse is skipped with a warning naming the file.

    python -m bnnbench.runs.asv save-host --results .asv/results --machine NAME
"""
import argparse
import ast
import datetime
import itertools
import json
import math
import os
import sys
import warnings

from ..methods import shapes

from .. import untrusted
from ..errors import BnnbenchError
from ..methods.kernels import ALL_METHODS
from .frame import runs_to_frame
from .schema import RunFileError

RESULTS_VERSION = 2          # asv's results file format this reader knows
HOST_FILE = "bnnbench-host.jsonl"   # not *.json: asv would try to read it as results
SHAPE_PARAMS = ("channels", "filters", "kernel", "batch", "out_size")
INT_PARAMS = SHAPE_PARAMS + ("threads", "word_bits")
_SHAPE_DEFAULTS = {"filters": shapes.DEFAULT_FILTERS[0], "kernel": shapes.DEFAULT_KERNEL[0],
                   "batch": shapes.DEFAULT_BATCH, "out_size": shapes.DEFAULT_OUT_SIZE}
MAX_PARAM = 2**31 - 1   # a shape or thread count beyond this is no measurement
_METHOD_KINDS = {m.name: m.kind for m in ALL_METHODS}
# Fingerprint fields that change between two looks at the same machine.
_VOLATILE_HOST = ("frequency_mhz",)


def is_results_dir(path):
    """True for a directory laid out like asv's results_dir."""
    if not os.path.isdir(path):
        return False
    if os.path.isfile(os.path.join(path, "benchmarks.json")):
        return True
    return any(os.path.isfile(os.path.join(path, d, "machine.json"))
               for d in _listdir(path))


def is_bookkeeping(path):
    """asv's machine.json / benchmarks.json: inside a results dir, not runs."""
    name, parent = os.path.basename(path), os.path.dirname(os.path.abspath(path))
    if name == "benchmarks.json":
        return is_results_dir(parent)
    if name == "machine.json":
        # asv writes benchmarks.json at the top of every results directory.
        return os.path.isfile(os.path.join(os.path.dirname(parent), "benchmarks.json"))
    return False


def is_results_file(path):
    """True for a file where asv keeps results: <machine>/<name>.json beside
    a machine.json."""
    name = os.path.basename(path)
    return (name.endswith(".json") and name not in ("machine.json", "benchmarks.json")
            and os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(path)),
                                            "machine.json")))


def looks_like_results(data):
    """Parsed JSON that claims to be asv's results rather than a bnnbench run."""
    return (isinstance(data, dict) and "schema_version" not in data
            and ("result_columns" in data or "commit_hash" in data))


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _read_json(path):
    return untrusted.read_json(path, allow_nan=True)   # asv writes NaN for a skip


def _warn(message):
    warnings.warn(f"skipping {message}", stacklevel=3)


# ----------------------------------------------------------------- reading

def load_runs(results_dir, kinds=None):
    """One bnnbench run per asv results file under `results_dir`; files
    that do not parse are skipped with a warning naming them."""
    if kinds is not None and "asv" not in kinds:
        return []
    if not is_results_dir(results_dir):
        raise BnnbenchError(f"{results_dir}: not an asv results directory "
                            f"(no benchmarks.json, no <machine>/machine.json)")
    runs = []
    for machine_dir in _listdir(results_dir):
        mdir = os.path.join(results_dir, machine_dir)
        for name in _listdir(mdir) if os.path.isdir(mdir) else []:
            path = os.path.join(mdir, name)
            if not name.endswith(".json") or name == "machine.json":
                continue
            try:
                run = load_run(path)
            except BnnbenchError as exc:
                _warn(str(exc))
                continue
            if run is None:
                _warn(f"{path}: not an asv results file (no result_columns, no commit_hash)")
            else:
                runs.append(run)
    return runs


def load_frame(results_dir):
    """The tidy DataFrame (bnnbench.runs.frame.runs_to_frame) of an asv results dir."""
    return runs_to_frame(load_runs(results_dir))


def load_run(path):
    """The bnnbench run of one asv results file, with machine.json and the
    saved fingerprints beside it and benchmarks.json above it; RunFileError
    (naming the file) if it cannot be read; None if it is some other JSON
    (say a bnnbench run file that happens to sit beside a machine.json)."""
    data = _read_json(path)
    if not looks_like_results(data):
        return None
    mdir = os.path.dirname(os.path.abspath(path))
    machine = _machine(os.path.join(mdir, "machine.json"), path)
    hosts = _host_lines(os.path.join(mdir, HOST_FILE))
    names = _param_names(os.path.dirname(mdir))
    return _run(path, data, machine, hosts, names)


def _param_names(results_dir):
    path = os.path.join(results_dir, "benchmarks.json")
    if not os.path.exists(path):
        return {}
    try:
        data = _read_json(path)
        if not isinstance(data, dict):
            raise RunFileError(path, "top level is not an object")
    except BnnbenchError as exc:
        _warn(f"{exc} (parameters will be named param1, param2, ...)")
        return {}
    names = {}
    for bench, info in data.items():
        if isinstance(info, dict) and _is_str_list(info.get("param_names")):
            names[bench] = (info["param_names"], info.get("type"), info.get("unit"))
    return names


def _is_str_list(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _machine(path, results_path):
    if not os.path.isfile(path):
        raise RunFileError(results_path, "no asv machine.json beside it")
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("machine"), str):
        raise RunFileError(path, "not an asv machine.json (no machine name)")
    return data


def _host_lines(path):
    """Fingerprints saved for this machine, oldest first; bad lines skipped."""
    if not os.path.exists(path):
        return []
    out = []
    try:
        lines = untrusted.read_text(path).splitlines()
    except RunFileError as exc:
        _warn(str(exc))
        return []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = untrusted.parse_json(line, path)
            ok = (isinstance(entry, dict) and isinstance(entry.get("saved_at"), str)
                  and isinstance(entry.get("host"), dict)
                  and isinstance(entry["host"].get("label"), str)
                  and isinstance(entry["host"].get("arch"), str))
        except RunFileError:
            ok = False
        if ok:
            out.append(entry)
        else:
            _warn(f"{path}: line {i} is not a saved host fingerprint")
    return out


def _pick_host(hosts, machine, measured_at):
    """The newest fingerprint saved before the measurement (else the oldest),
    or what asv's machine.json says."""
    if hosts:
        before = [h for h in hosts if measured_at is None or h["saved_at"] <= measured_at]
        return dict((before or hosts[:1])[-1]["host"])
    return {"label": machine["machine"], "arch": str(machine.get("arch", "unknown")),
            "cpu_brand": machine.get("cpu"), "os": machine.get("os"),
            "logical_cores": _int_or_none(machine.get("num_cpu")),
            "memory_bytes": _int_or_none(machine.get("ram"))}


def _int_or_none(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _iso(ms):
    """ISO time of a JavaScript timestamp (ms); None for what is no date
    (not a number, or outside years 1-9999)."""
    if isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms):
        try:
            return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(
                timespec="seconds")
        except (OverflowError, ValueError, OSError):
            return None
    return None


def _run(path, data, machine, hosts, names):
    if data.get("version") != RESULTS_VERSION:
        raise RunFileError(path, f"asv results format {data.get('version')!r}; "
                           f"this reader knows {RESULTS_VERSION}")
    for key, typ in (("commit_hash", str), ("env_name", str), ("results", dict),
                     ("result_columns", list)):
        if not isinstance(data.get(key), typ):
            raise RunFileError(path, f"not an asv results file ({key} missing or not a "
                               f"{typ.__name__})")
    columns = data["result_columns"]
    if not _is_str_list(columns) or "result" not in columns or "params" not in columns:
        raise RunFileError(path, "result_columns lacks result/params")
    commit, env = data["commit_hash"], data["env_name"]
    rows, started = [], []
    for bench, values in sorted(data["results"].items()):
        if not isinstance(values, list) or len(values) > len(columns):
            _warn(f"{path}: benchmark {bench!r} is not a list of result columns")
            continue
        entry = dict(zip(columns, values))
        if isinstance(entry.get("started_at"), (int, float)):
            started.append(entry["started_at"])
        try:
            rows += _rows(bench, entry, names.get(bench))
        except ValueError as exc:
            _warn(f"{path}: benchmark {bench!r}: {exc}")
    measured_at = _iso(min(started)) if started else None
    host = _pick_host(hosts, machine, measured_at)
    base = {"commit": commit, "commit_date": _iso(data.get("date")),
            "machine": machine["machine"], "environment": env,
            "python": data.get("python") if isinstance(data.get("python"), str) else None}
    for row in rows:
        row.update(base)
    return {
        "schema_version": 1, "kind": "asv",
        "run_id": f"asv:{machine['machine']}:{commit[:12]}:{env}",
        "status": "complete", "started_at": measured_at or base["commit_date"] or "",
        "finished_at": None, "bnnbench_version": None, "git_commit": commit,
        "command": "asv run", "settings": {"environment": env}, "host": host,
        "rows": rows, "_path": path,
    }


def _rows(bench, entry, described):
    params = entry["params"]
    if not isinstance(params, list) or not all(_is_str_list(p) for p in params):
        raise ValueError("params is not a list of lists of strings")
    # One result per combination: check the count before expanding the grid,
    # which a hostile file can make astronomically large.
    n_combos = math.prod(len(p) for p in params)
    n_results = len(entry["result"]) if isinstance(entry["result"], list) else 1
    if n_combos != n_results:
        raise ValueError(f"{n_combos} parameter combinations but {n_results} results")
    combos = list(itertools.product(*params)) if params else [()]
    if described and len(described[0]) == len(params):
        names, kind, unit = described
    else:
        names, kind, unit = [f"param{i + 1}" for i in range(len(params))], None, None
    func = bench.rsplit(".", 1)[-1]
    kind = kind or func.split("_", 1)[0]
    unit = unit or ("seconds" if kind == "time" else None)
    results = entry["result"]
    if not params and not isinstance(results, list):
        results = [results]   # older asv wrote a bare value for unparameterized benchmarks
    if not isinstance(results, list) or len(results) != len(combos):
        raise ValueError(f"{len(combos)} parameter combinations but "
                         f"{len(results) if isinstance(results, list) else 'no'} results")
    stats = {key: _column(entry, key, len(combos)) for key in
             ("stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples")}
    rows = []
    for i, combo in enumerate(combos):
        value = results[i]
        if isinstance(value, float) and math.isnan(value):
            continue  # skipped by the benchmark's setup: the combination does not apply
        if value is not None and not _finite(value):
            raise ValueError(f"result {i} is {value!r:.40}, not a number")
        row = {"benchmark": bench, "asv_type": kind, "unit": unit, "value": value,
               "verified": value is not None}
        for name, raw in zip(names, combo):
            row[name] = _param_value(raw, name)
        row.setdefault("method", func.split("_", 1)[-1])
        if row["method"] in _METHOD_KINDS:
            row["kind"] = _METHOD_KINDS[row["method"]]   # float or xnor, as in sweep rows
        if kind == "time":
            _time_stats(row, value, {k: v[i] for k, v in stats.items()})
        _shape(row)
        rows.append(row)
    return rows


def _column(entry, key, n):
    values = entry.get(key)
    if isinstance(values, list) and len(values) == n:
        return values
    return [None] * n


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _param_value(raw, name):
    try:
        value = ast.literal_eval(raw) if len(raw) <= 1000 else raw
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        value = raw
    if name in INT_PARAMS:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARAM:
            raise ValueError(f"parameter {name} is {raw:.40}, not an integer from 1 to "
                             f"{MAX_PARAM}")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return raw   # beyond what a DataFrame column holds exactly: keep the text
    if isinstance(value, float) and not math.isfinite(value):
        return raw
    return value if isinstance(value, (str, int, float, bool)) or value is None else raw


def _time_stats(row, median, stats):
    q1, q3 = stats["stats_q_25"], stats["stats_q_75"]
    samples = stats["samples"]
    if not (isinstance(samples, list) and samples and all(_finite(s) for s in samples)):
        samples = None
    row.update(median_s=median,
               q1_s=q1 if _finite(q1) else None, q3_s=q3 if _finite(q3) else None,
               samples_s=samples or [],
               min_s=min(samples) if samples else None,
               number=stats["stats_number"] if _finite(stats["stats_number"]) else None,
               repeat=stats["stats_repeat"] if _finite(stats["stats_repeat"]) else None)
    row["iqr_s"] = (row["q3_s"] - row["q1_s"]
                    if row["q1_s"] is not None and row["q3_s"] is not None else None)


def _shape(row):
    if "channels" not in row:
        return
    for key, default in _SHAPE_DEFAULTS.items():
        row.setdefault(key, default)
    shape = shapes.ConvShape(*(row[k] for k in SHAPE_PARAMS))
    row.update(M=shape.M, N=shape.N, K=shape.K)


# ----------------------------------------------------------------- writing

def save_host(results_dir, machine, fingerprint=None):
    """Append this host's fingerprint to <results_dir>/<machine>/HOST_FILE
    unless it equals the last one saved; return the file's path."""
    if not machine or os.sep in machine or machine in (".", ".."):
        raise BnnbenchError(f"bad asv machine name {machine!r}")
    if fingerprint is None:
        from ..measure.hostinfo import fingerprint as take
        fingerprint = take(label=machine)
    mdir = os.path.join(results_dir, machine)
    os.makedirs(mdir, exist_ok=True)
    path = os.path.join(mdir, HOST_FILE)
    hosts = _host_lines(path)

    def stable(host):
        return {k: v for k, v in host.items() if k not in _VOLATILE_HOST}

    if hosts and stable(hosts[-1]["host"]) == stable(fingerprint):
        return path
    saved_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"saved_at": saved_at, "machine": machine, "host": fingerprint},
                            sort_keys=True, allow_nan=False) + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bnnbench.runs.asv",
                                     description="asv results and bnnbench")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("save-host", help="save this host's fingerprint beside asv's machine.json")
    p.add_argument("--results", required=True, help="asv results directory")
    p.add_argument("--machine", required=True, help="asv machine name")
    args = parser.parse_args(argv)
    try:
        print(save_host(args.results, args.machine))
    except BnnbenchError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
