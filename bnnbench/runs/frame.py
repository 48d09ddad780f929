"""Runs -> one tidy DataFrame, and the speedups taken inside each run.

Each level's baseline and shape keys come from the levels registry, the
intervals from the trust rules: one rule for the terminal, compare and the
report.
"""
import math

import pandas as pd

from ..measure import levels, trust


def flatten_host(host):
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
        base.update(flatten_host(run["host"]))
        for row in run["rows"]:
            rec = dict(base)
            if run["kind"] == "sweep":
                rec["level"] = "gemm"   # rows from before the layer level
            rec.update(row)
            records.append(rec)
    return pd.DataFrame.from_records(records)


def add_speedups(df, baseline=None):
    """speedup = baseline median / method median, inside one run, same level,
    shape and thread count: ratios are never taken across runs or hosts.
    The baseline is the level's (levels.BASELINES) unless one is given."""
    if df.empty:
        return df.assign(speedup=pd.Series(dtype=float))
    if "level" not in df:
        df = df.assign(level="gemm")
    keys = ["run_id", "level"] + [k for k in levels.ALL_SHAPE_KEYS if k in df] + ["threads"]
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
    return df["method"] == df["level"].map(levels.BASELINES)


def _add_intervals(df, keys, baseline):
    """speedup_low / speedup_high / speedup_noisy for rows whose run file
    predates them (a sweep stores its own), by the sweep's rule (bnnbench.measure.trust)."""
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
