"""Loading run files from many hosts and choosing the rows a report shows.

Everything here treats run files as untrusted: a file that fails validation
or trips anything while being read is skipped with a reason, and the rest
still load. Speedups are taken inside each run (runs.frame.add_speedups) before
any selection, so a ratio never mixes two runs or two hosts.
"""
import math
import os
import warnings
from dataclasses import dataclass, field

import pandas as pd

from ..errors import BnnbenchError
from ..measure import levels, trust
from ..methods import kernels
from ..runs import liveness, reader, schema
from ..runs.frame import add_speedups, flatten_host, runs_to_frame

SHAPE = list(levels.GEMM_SHAPE_KEYS)
GROUP = SHAPE + ["threads"]
BASELINE = levels.GEMM.baseline
UNLABELLED = "(unlabelled)"
# Row fields that must be numbers for the arithmetic; validation only checks
# some of them, so anything else in these columns becomes NaN.
NUMERIC_ROW_COLUMNS = ("median_s", "min_s", "iqr_s", "q1_s", "q3_s", "peak_fraction",
                       "max_abs_error")


@dataclass
class Dataset:
    runs: list                     # validated run dicts (each with "_path")
    skipped: list                  # (path, reason) for every file not used
    notes: list                    # plain sentences about what was chosen and why
    sweep_all: pd.DataFrame        # every sweep row, with per-run speedups
    sweep: pd.DataFrame            # the rows the report shows (selected or aggregated)
    hosts: pd.DataFrame            # one row per host label: its newest fingerprint
    runs_table: pd.DataFrame       # one row per run: what it is and whether it was used
    other: dict = field(default_factory=dict)   # kind -> DataFrame of its rows
    all_runs: bool = False
    reference: object = None       # host the throughput ratios divide by (None: chosen)
    trust: dict = field(default_factory=dict)   # run_id -> RunTrust

    def host_labels(self):
        return list(self.hosts["host_label"]) if not self.hosts.empty else []

    def runs_shown(self, label):
        """RunTrust of each run whose sweep rows the report shows for a host."""
        rows = self.sweep[self.sweep["host_label"] == label] if not self.sweep.empty else []
        ids = {r for v in (rows["run_id"] if len(rows) else []) for r in str(v).split()}
        return [self.trust[r] for r in sorted(ids) if r in self.trust]


@dataclass
class RunTrust:
    """What a run says about how far its numbers can be trusted (its verdict
    and its probe), read defensively: a file from another host may lie about
    types, never about the report's safety."""
    run_id: str
    host_label: str
    started_at: str
    host_busy: bool = False
    evidence: str = None           # one sentence on the load, when busy
    busy_rows: int = 0
    probe_unreliable: str = None   # why the probe cannot be trusted

    @property
    def short(self):
        return self.run_id[:8]


def _text(v):
    return v if isinstance(v, str) and v.strip() else None


def run_trust(run):
    verdict = run.get("verdict") if isinstance(run.get("verdict"), dict) else {}
    probe = run["host"].get("probe") if isinstance(run["host"].get("probe"), dict) else {}
    busy_rows = sum(1 for r in run["rows"] if isinstance(r, dict) and r.get("busy") is True)
    return RunTrust(run_id=run["run_id"], host_label=_label(run["host"]),
                    started_at=str(run.get("started_at")),
                    host_busy=verdict.get("host_busy") is True or busy_rows > 0,
                    evidence=_text(verdict.get("evidence")), busy_rows=busy_rows,
                    probe_unreliable=_text(probe.get("unreliable")))


def _skip(skipped, path, reason):
    skipped.append((path, reason))


def _load_one(path):
    """(run, [problems]) for one file. reader.load_run also reads asv results
    files where this bnnbench can; what it had to leave out of a file that
    still loads (an unreadable benchmark) comes back as warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = reader.load_run(path)
    return run, [str(w.message).replace("skipping ", "", 1) for w in caught]


def read_runs(paths):
    """(runs, skipped, not_runs): every valid run file under `paths`, the
    rest with a reason, and the files bnnbench writes beside runs that are
    none (host files), passed over without a warning.

    Unlike reader.load_runs this also survives what validation does not
    foresee (a JSON nesting deep enough to exhaust recursion, a file that
    vanishes mid-read), keeps what a partly readable file offers, and drops
    a second copy of the same run."""
    runs, skipped, not_runs, seen = [], [], [], {}
    for path in reader.expand_paths(paths, lambda p, why: _skip(skipped, p, why)):
        try:
            run, problems = _load_one(path)
        except schema.NotARunFile:
            not_runs.append(path)
            continue
        except schema.RunFileError as exc:
            _skip(skipped, path, exc.reason)
            continue
        except (RecursionError, MemoryError, OSError, TypeError, ValueError) as exc:
            _skip(skipped, path, f"unreadable ({type(exc).__name__})")
            continue
        for problem in problems:
            _skip(skipped, path, f"part skipped: {problem}")
        if run["run_id"] in seen:
            _skip(skipped, path, f"same run as {seen[run['run_id']]} (run_id {run['run_id']:.12})")
            continue
        seen[run["run_id"]] = path
        run["_path"] = path
        runs.append(run)
    return runs, skipped, not_runs


def _label(host):
    label = host.get("label", "")
    return label if label.strip() else UNLABELLED


def _timestamp(text):
    ts = pd.to_datetime(text, utc=True, errors="coerce") if isinstance(text, str) else pd.NaT
    return ts if not pd.isna(ts) else pd.Timestamp(0, tz="UTC")


# Columns the loader fills from the run, not from a row: a row that carried
# one of these (say a hand-edited "run_id") could pass for part of another run.
_RUN_COLUMNS = ("run_id", "status", "started_at", "git_commit", "path", "run_kind")


def _own_rows(run):
    """The run with rows stripped of run-level and host-level keys."""
    rows = [{k: v for k, v in row.items() if k not in _RUN_COLUMNS and not k.startswith("host_")}
            for row in run["rows"]]
    return dict(run, rows=rows)


BINARIZING = [m.name for m in kernels.ALL_METHODS if m.binarizes_input]


def _drop_roofline_without_read_bandwidth(df, host):
    """Binarizing rows are judged against a roofline that needs the probe's
    read bandwidth; runs probed before it was measured judged them against
    the popcount peak alone, a figure that means something else, so it is
    left out rather than plotted beside the new one."""
    probe = host.get("probe") if isinstance(host, dict) else None
    per_thread = probe.get("threads") if isinstance(probe, dict) else None
    if isinstance(per_thread, dict) and any(isinstance(p, dict) and "read_gbs" in p
                                            for p in per_thread.values()):
        return
    if "peak_fraction" in df and "method" in df:
        df.loc[df["method"].isin(BINARIZING), "peak_fraction"] = None


def _run_frame(run):
    """One run's rows as a frame; run kind kept apart from a row's own
    "kind" (a sweep row's kind is float/xnor, which would overwrite it)."""
    df = runs_to_frame([_own_rows(run)])
    if df.empty:
        return df
    settings = run.get("settings") if isinstance(run.get("settings"), dict) else {}
    for k, v in settings.items():
        if isinstance(v, (str, int, float, bool)) and not isinstance(k, bool):
            df[f"setting_{k}"] = v
    _drop_roofline_without_read_bandwidth(df, run["host"])
    df = df.assign(run_kind=run["kind"], host_label=_label(run["host"]),
                   started_ts=_timestamp(run["started_at"]),
                   finished_at=run.get("finished_at") if isinstance(run.get("finished_at"), str)
                   else None)
    if "host_emulated" in df:
        df["host_emulated"] = df["host_emulated"].map(lambda v: v is True)
    else:
        df["host_emulated"] = False
    return df


LAYER_INT_COLUMNS = ("channels", "filters", "kernel", "batch", "out_size", "M", "N", "K", "height",
               "width", "stride", "threads")


def split(frame):
    """(GEMM rows, layer rows, network rows) of one sweep run's frame; rows
    without a level are GEMM rows (files from before the layer level)."""
    if "level" not in frame:
        return frame, frame.iloc[0:0], frame.iloc[0:0]
    is_layer = frame["level"] == levels.CONV.name
    is_net = frame["level"] == levels.MODEL.name
    layer, net = frame[is_layer].copy(), frame[is_net].copy()
    for part in (layer, net):
        for col in LAYER_INT_COLUMNS:   # whole numbers again where GEMM rows widened them
            if col in part and part[col].notna().all():
                part[col] = part[col].astype("int64")
    return frame[~(is_layer | is_net)].copy(), layer, net


def _clean_sweep(df):
    """Coerce what validation leaves loose; recompute throughput from the
    shape rather than trusting a number in the file."""
    for col in NUMERIC_ROW_COLUMNS:
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    # A zero or negative time cannot be a measurement; it would make an infinite speedup.
    df.loc[~(df["median_s"] > 0), "median_s"] = float("nan")
    # A shape or thread count below 1 is no layer (and breaks log axes).
    positive = (df[SHAPE + ["threads"]].apply(pd.to_numeric, errors="coerce") > 0).all(axis=1)
    df = df[positive].copy()
    # The same (method, shape, threads) twice in one run: the later row wins,
    # as a re-measurement would.
    df = df.drop_duplicates(["method"] + GROUP, keep="last")
    df["ops"] = 2.0 * df["M"] * df["N"] * df["K"]
    df["gops"] = df["ops"] / df["median_s"] / 1e9
    df["verified"] = df["verified"].map(lambda v: v is True)
    if "noisy" in df:
        df["noisy"] = df["noisy"].map(lambda v: v is True)
    _clean_trust(df)
    if "peak_fraction" in df:
        # Above 1 happens (a probe run on a busy host reads a low peak) and is
        # shown as measured; only what cannot be a fraction is dropped.
        df.loc[~(df["peak_fraction"] >= 0) | ~df["peak_fraction"].map(finite),
               "peak_fraction"] = float("nan")
    return df


def _clean_trust(df):
    """The trust fields as the report reads them: busy and suspect true only
    when a file says exactly true; speedup_noisy true, false or unknown (an
    older file: add_speedups then decides it from both rows' spread);
    an interval only when both ends are positive numbers."""
    for col in ("busy", "suspect"):
        df[col] = df[col].map(lambda v: v is True) if col in df else False
    if "speedup_noisy" in df:
        df["speedup_noisy"] = df["speedup_noisy"].map(
            lambda v: v if isinstance(v, bool) else None).astype(object)
    for col in ("speedup_low", "speedup_high"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
            df.loc[~(df[col] > 0) | ~df[col].map(finite), col] = float("nan")
    if "suspect_reason" in df:
        df["suspect_reason"] = df["suspect_reason"].map(_text)


def _flag(row, name):
    return row.get(name) is True


def shaky_reason(row, base=None):
    """Why a speedup must not be shown as a fact, in a few words, or None.
    `base` is the float_blas row it was divided by: a quiet candidate over a
    noisy baseline is no more certain than the baseline (trust.row_is_shaky
    covers both sides in new files; this also holds for files that do not)."""
    if not trust.row_is_shaky(row) and not (base is not None and trust.row_is_shaky(
            {k: base.get(k) for k in ("noisy", "busy", "suspect")})):
        return None
    if _flag(row, "suspect"):
        first = str(row.get("suspect_reason") or "").split("; ")[0]
        return f"suspect: {first}" if first else "suspect"
    if _flag(row, "busy"):
        return "timed while the host was busy"
    if _flag(row, "noisy"):
        return "noisy"
    if base is not None and any(_flag(base, k) for k in ("noisy", "busy")):
        return "float_blas baseline noisy"
    low, high = row.get("speedup_low"), row.get("speedup_high")
    if finite(low) and finite(high) and trust.interval_is_wide(low, high):
        return "interval too wide"
    return "noisy"


PROFILE_GROUP = ["model", "layer", "batch", "threads"]


def mark_shaky(df, group=GROUP):
    """Add `shaky` (bool) and `shaky_why` (str or None) to rows (of a sweep;
    of a profile with group=PROFILE_GROUP): the one test every figure,
    table and headline of the report applies. `group`: what makes a row and
    its float_blas baseline the same measurement, inside one run."""
    if df.empty:
        return df.assign(shaky=pd.Series(dtype=bool), shaky_why=pd.Series(dtype=object))
    keys = ["run_id"] + group
    base = {tuple(r[k] for k in keys): r
            for r in df[df["method"] == BASELINE].to_dict("records")}
    why = [shaky_reason(r, base.get(tuple(r[k] for k in keys)) if r["method"] != BASELINE
                        else None)
           for r in df.to_dict("records")]
    return df.assign(shaky=[w is not None for w in why], shaky_why=why)


def _drop_peaks_of_unreliable_probe(df, rt):
    """A run whose probe could not be trusted keeps its rows' %peak in the
    file; the report shows none of them rather than plot a wrong peak."""
    if rt.probe_unreliable and "peak_fraction" in df:
        df["peak_fraction"] = float("nan")
    return df


# What makes two runs of a kind "the same configuration" on one host (beyond
# the sweep's shape and thread count): the newest run of each is shown.
OTHER_KEYS = {
    "profile": ["model", "layer", "batch", "threads"],
    "network": ["model", "batch", "threads"],
    "accuracy": lambda df: sorted(c for c in df.columns if c.startswith("setting_"))
    + ["network", "evaluation"],
    # asv: every commit is shown (a history is the point), so no key here.
}


def _clean_profile(df):
    for col in NUMERIC_ROW_COLUMNS:
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df.loc[~(df["median_s"] > 0), "median_s"] = float("nan")
    df["verified"] = df["verified"].map(lambda v: v is True)
    if "noisy" in df:
        df["noisy"] = df["noisy"].map(lambda v: v is True)
    _clean_trust(df)
    return df.drop_duplicates(["run_id", "model", "layer", "method", "threads", "batch"],
                              keep="last")


def asv_speedups(df):
    """asv time rows with a shape: float_blas median / method median at the
    same shape and threads, inside one asv run (one commit, one environment)."""
    df = df.copy()
    for col in NUMERIC_ROW_COLUMNS + ("value",):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in GROUP:
        # track_ rows lack a shape: nullable integers keep 1 from printing as 1.0.
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
    if "median_s" not in df or not set(GROUP) <= set(df.columns):
        return df.assign(speedup=float("nan"))
    df.loc[~(df["median_s"] > 0), "median_s"] = float("nan")
    timed = df["median_s"].notna() & df[GROUP].notna().all(axis=1)
    keys = ["run_id"] + GROUP
    base = (df[timed & (df["method"] == BASELINE)][keys + ["median_s"]]
            .drop_duplicates(keys).rename(columns={"median_s": "_base"}))
    out = df.merge(base, on=keys, how="left")
    out["speedup"] = out["_base"] / out["median_s"]
    return out.drop(columns="_base")


def profile_speedups(df):
    """Per layer: the level's float baseline (float_blas; conv_float_blas for
    whole layers) median / method median, same run and threads."""
    keys = ["run_id", "model", "layer", "batch", "threads"]
    level = df["level"].fillna("gemm") if "level" in df else pd.Series("gemm", index=df.index)
    is_base = df["method"] == level.map(levels.BASELINES)
    base = (df[is_base & df["verified"]][keys + ["median_s"]]
            .drop_duplicates(keys).rename(columns={"median_s": "_base"}))
    out = df.merge(base, on=keys, how="left")
    out["speedup"] = out["_base"] / out["median_s"]
    out.loc[~out["verified"], "speedup"] = float("nan")
    return out.drop(columns="_base")


def select_newest(df, key=GROUP, prefer_baseline=True, per_method=False):
    """For each host and `key` (for a sweep: shape and thread count), the rows
    of the newest run that measured it, preferring runs with a verified
    float_blas row there (the baseline its speedups need). per_method picks
    the newest run separately for each method, so a later run of only some
    methods does not hide the others' measurements.
    Returns (rows, {run_id: rows used})."""
    if df.empty:
        return df, {}
    key = [k for k in key if k in df]
    group = ["host_label"] + key
    pick = group + (["method"] if per_method and "method" in df else [])
    cand = (df.groupby(pick + ["run_id"], sort=False, dropna=False)
            .agg(started_ts=("started_ts", "first"), finished_at=("finished_at", "first"))
            .reset_index())
    if prefer_baseline and "method" in df:
        base = df[(df["method"] == BASELINE) & (df["verified"] == True)]  # noqa: E712
        base = base[group + ["run_id"]].drop_duplicates().assign(_base=True)
        cand = cand.merge(base, on=group + ["run_id"], how="left")
        cand["_base"] = cand["_base"].fillna(False).astype(bool)
    else:
        cand["_base"] = True
    cand = cand.sort_values(["_base", "started_ts", "finished_at", "run_id"],
                            ascending=False, na_position="last")
    chosen = cand.drop_duplicates(pick)[pick + ["run_id"]]
    out = df.merge(chosen, on=pick + ["run_id"], how="inner")
    return out, out.groupby("run_id").size().to_dict()


def aggregate_runs(df):
    """--all-runs: per host, method, shape and threads, the median over runs of
    each run's median time and of each run's own speedup."""
    if df.empty:
        return df
    keys = ["host_label", "method"] + GROUP
    agg = df.groupby(keys, sort=False, dropna=False).agg(
        median_s=("median_s", "median"), min_s=("min_s", "min"), iqr_s=("iqr_s", "median"),
        speedup=("speedup", "median"), verified=("verified", "all"),
        n_runs=("run_id", "nunique"), run_id=("run_id", lambda s: " ".join(sorted(set(s)))),
        started_ts=("started_ts", "max"))
    if "peak_fraction" in df:
        agg["peak_fraction"] = df.groupby(keys, sort=False, dropna=False)["peak_fraction"].median()
    # The widest interval over the runs, and shaky when any run's figure was:
    # a median over runs is no firmer than the shakiest run it includes.
    grouped = df.groupby(keys, sort=False, dropna=False)
    for col, how in (("speedup_low", "min"), ("speedup_high", "max"), ("noisy", "any"),
                     ("busy", "any"), ("suspect", "any"), ("shaky", "any")):
        if col in df:
            agg[col] = grouped[col].agg(how)
    if "shaky_why" in df:
        agg["shaky_why"] = grouped["shaky_why"].agg(
            lambda s: "; ".join(dict.fromkeys(v for v in s if isinstance(v, str))) or None)
    agg = agg.reset_index()
    agg = agg.join(df.groupby("host_label")["host_emulated"].any(), on="host_label")
    if "kind" in df:   # a sweep row's kind (float/xnor) belongs to its method
        agg = agg.join(df.groupby("method")["kind"].first(), on="method")
    agg["gops"] = 2.0 * agg["M"] * agg["N"] * agg["K"] / agg["median_s"] / 1e9
    return agg


def _host_rows(runs):
    """One row per host label, from its newest run's fingerprint."""
    newest = {}
    variants = {}
    for run in runs:
        label = _label(run["host"])
        key = (_timestamp(run["started_at"]), str(run.get("finished_at")), run["run_id"])
        if label not in newest or key > newest[label][0]:
            newest[label] = (key, run)
        h = run["host"]
        variants.setdefault(label, set()).add(
            (str(h.get("cpu_brand")), str(h.get("arch")), str(h.get("hostname"))))
    records = []
    for label, (_, run) in newest.items():
        host = dict(run["host"])
        rec = flatten_host(host)
        rec["host_label"] = label
        rec["host_emulated"] = host.get("emulated") is True
        rec["machines"] = len(variants[label])
        rec["n_runs"] = sum(1 for r in runs if _label(r["host"]) == label)
        rec["_host"] = host
        records.append(rec)
    hosts = pd.DataFrame.from_records(records)
    if hosts.empty:
        return pd.DataFrame(columns=["host_label", "host_emulated"])
    # Real devices first; an emulator's numbers come after them everywhere.
    return hosts.sort_values(["host_emulated", "host_label"]).reset_index(drop=True)


def _runs_table(runs, used, all_runs):
    records = []
    for run in runs:
        n = len(run["rows"])
        k = used.get(run["run_id"], 0)
        if all_runs:
            use = "aggregated (--all-runs)" if run["kind"] == "sweep" else "shown (--all-runs)"
        elif n == 0:
            use = "no rows"
        elif k == n:
            use = "used"
        elif k == 0:
            use = "not used: a newer run measured the same shapes"
        else:
            use = f"partly: {k} of {n} rows (newer runs measured the rest)"
        dead = liveness.died(run)
        records.append({
            "host": _label(run["host"]), "kind": run["kind"], "started_at": run["started_at"],
            "status": f"died ({dead})" if dead else run["status"], "rows": n, "used": use,
            "run_id": run["run_id"],
            "command": run.get("command") if isinstance(run.get("command"), str) else "",
            "file": os.path.basename(run["_path"]),
        })
    df = pd.DataFrame.from_records(records, columns=[
        "host", "kind", "started_at", "status", "rows", "used", "run_id", "command", "file"])
    return df.sort_values(["host", "kind", "started_at"]).reset_index(drop=True)


def _frames_by_kind(runs, skipped):
    """(runs that could be read, {kind: [frames]}, {run_id: RunTrust}).

    A sweep run's whole layers and whole networks become frames of their own
    ("layer", "network"), each with the speedups taken inside the run; its
    GEMM rows are cleaned and marked shaky. A run whose rows cannot be read
    (valid by the schema, unusable all the same) is skipped with its reason."""
    frames, good, trusts = {}, [], {}
    for run in runs:
        try:
            rt = run_trust(run)
            frame = _run_frame(run)
            if run["kind"] == "sweep" and not frame.empty:
                frame, layer, net = split(frame)
                if not layer.empty:
                    frames.setdefault("layer", []).append(add_speedups(layer))
                if not net.empty:
                    frames.setdefault("network", []).append(add_speedups(net))
                if not frame.empty:
                    frame = mark_shaky(add_speedups(_clean_sweep(frame)))
                    frame = _drop_peaks_of_unreliable_probe(frame, rt)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            _skip(skipped, run["_path"], f"rows could not be read ({type(exc).__name__}: "
                                         f"{str(exc)[:80]})")
            continue
        good.append(run)
        trusts[run["run_id"]] = rt
        if not frame.empty:
            frames.setdefault(run["kind"], []).append(frame)
    return good, frames, trusts


def _select_other(frames, all_runs, used, notes):
    """Every kind but the GEMM sweep as one frame each, with its speedups,
    and (unless all_runs) the newest run of each configuration on a host."""
    other = {kind: pd.concat(f, ignore_index=True) for kind, f in frames.items()
             if kind != "sweep"}
    if "profile" in other:
        other["profile"] = mark_shaky(profile_speedups(_clean_profile(other["profile"])),
                                      PROFILE_GROUP)
    if "asv" in other:
        other["asv"] = asv_speedups(other["asv"])
    for kind, df in list(other.items()):
        key = OTHER_KEYS.get(kind)
        if key is None or all_runs:
            used.update(df.groupby("run_id").size().to_dict())
            continue
        key = key(df) if callable(key) else key
        other[kind], kind_used = select_newest(df, key, prefer_baseline=(kind == "profile"))
        used.update(kind_used)
        if df["run_id"].nunique() > len(kind_used):
            notes.append(f"Several {kind} runs of the same configuration on one host: the "
                         f"newest is shown (the runs table says which); --all-runs shows all.")
    return other


def _select_sweep(frames, all_runs, used, notes):
    """(every GEMM row, the rows shown): the newest run of each method,
    shape and thread count per host, or with all_runs the median over runs."""
    sweep_all = (pd.concat(frames["sweep"], ignore_index=True) if "sweep" in frames
                 else pd.DataFrame(columns=["host_label", "method", "run_id"] + GROUP))
    if all_runs:
        sweep = aggregate_runs(sweep_all)
        if not sweep.empty:
            notes.append("Every run of a host is aggregated (--all-runs): times and speedups "
                         "are medians over runs of each run's own median and speedup.")
        return sweep_all, sweep
    sweep, sweep_used = select_newest(sweep_all, per_method=True)
    used.update(sweep_used)
    if not sweep_all.empty and sweep_all["run_id"].nunique() > 1:
        notes.append("Where a host has several runs of the same method, shape and thread "
                     "count, the newest run with a float_blas baseline is used (each "
                     "speedup is taken inside its own run); the run column and the runs "
                     "table say which. Pass --all-runs to aggregate them instead.")
    return sweep_all, sweep


def _host_files_note(not_runs):
    if not not_runs:
        return []
    return [f"Not runs, so not read: {len(not_runs)} host file(s) (bnnbench host output, "
            f"e.g. from bnnbench fleet run --host-probe): "
            f"{', '.join(os.path.basename(p) for p in not_runs)}."]


def _notes_on_runs(runs, hosts):
    """What a reader must know about the runs: those that died while
    running, and one label shared by several machines."""
    notes = []
    for run in runs:
        why = liveness.died(run)
        if why:
            notes.append(f"Run {os.path.basename(run['_path'])} of {_label(run['host'])} says "
                         f"it is still running, but {why}: it died, and its "
                         f"{len(run['rows'])} rows are all it measured.")
    for _, h in hosts.iterrows():
        if h.get("machines", 1) > 1:
            notes.append(f"Runs labelled {h['host_label']!r} come from {h['machines']} "
                         f"different machines (CPU, arch or hostname differ); the card "
                         f"shows the newest.")
    return notes


def load(paths, all_runs=False):
    """Read every run under `paths` into a Dataset; never raises for a bad file."""
    runs, skipped, not_runs = read_runs(paths)
    runs, frames, trusts = _frames_by_kind(runs, skipped)
    used, notes = {}, _host_files_note(not_runs)
    other = _select_other(frames, all_runs, used, notes)
    sweep_all, sweep = _select_sweep(frames, all_runs, used, notes)
    hosts = _host_rows(runs)
    notes += _notes_on_runs(runs, hosts)
    return Dataset(runs=runs, skipped=skipped, notes=notes, sweep_all=sweep_all, sweep=sweep,
                   hosts=hosts, runs_table=_runs_table(runs, used, all_runs), other=other,
                   all_runs=all_runs, trust=trusts)


def thread_level(threads, max_threads):
    """'1', 'all' (the most threads that host ran) or the count itself: what
    two hosts with different core counts can be compared on."""
    if threads == 1:
        return "1"
    if threads == max_threads:
        return "all"
    return str(threads)


def with_thread_level(df):
    if df.empty:
        return df.assign(level=pd.Series(dtype=str))
    top = df.groupby(["host_label"] + SHAPE)["threads"].transform("max")
    return df.assign(level=[thread_level(t, m) for t, m in zip(df["threads"], top)])


def host_or_error(ds, label):
    labels = ds.host_labels()
    if label in labels:
        return label
    shown = ", ".join(repr(x) for x in labels) if labels else "none"
    raise BnnbenchError(f"host {label!r} not found in the results; hosts: {shown}")


def finite(x):
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
