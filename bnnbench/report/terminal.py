"""Tables a person reads, built from the tidy DataFrame of run rows."""
import pandas as pd

from ..measure.levels import CONV, METHOD_ORDER, MODEL
from ..runs.frame import add_speedups

UNITS = {"float": "GFLOP/s", "xnor": "Gbit-op/s"}
SHAPE_ORDER = ("filters", "kernel", "batch", "out_size", "channels", "threads")


def method_sort(df, extra=()):
    """Rows by `extra` columns, then shape and threads, then method in
    registry order (float_blas first)."""
    order = df["method"].map(METHOD_ORDER).fillna(len(METHOD_ORDER))
    keys = [k for k in (*extra, *SHAPE_ORDER) if k in df]
    return df.assign(_m=order).sort_values(keys + ["_m", "method"]).drop(columns="_m")


def sweep_table(df, extra=()):
    """Per method and shape: median and min time, spread, speedup over
    float_blas at the same thread count, throughput and share of the host's
    peak. `extra` row columns are shown after the kernel size. Rows come
    sorted by method_sort; speedups are added unless df already has them."""
    if df.empty:
        return pd.DataFrame()
    if "speedup" not in df:
        df = add_speedups(df)
    df = method_sort(df)
    cols = {"channels": df["channels"], "filters": df["filters"], "kernel": df["kernel"]}
    cols.update({c: df[c] for c in extra if c in df})
    cols.update({
        "K": df["K"], "threads": df["threads"], "method": df["method"],
        "median_ms": df["median_s"] * 1e3, "min_ms": df["min_s"] * 1e3,
        "iqr_%": 100 * df["iqr_s"] / df["median_s"],
        "speedup": df["speedup"], "ci95": [_band(lo, hi) for lo, hi in
                                           zip(df.get("speedup_low", pd.Series(index=df.index,
                                                                                dtype=float)),
                                               df.get("speedup_high", pd.Series(index=df.index,
                                                                                 dtype=float)))],
        "throughput": df["gops"],
        "unit": df["kind"].map(UNITS) if "kind" in df else None,
    })
    if "peak_fraction" in df and df["peak_fraction"].notna().any():
        peak = 100 * df["peak_fraction"]
        if "host_probe_unreliable" in df:
            # The run says its probe is wrong: no share of it is printed as a fact.
            peak = peak.where(df["host_probe_unreliable"].isna())
        cols["%peak"] = peak
    cols["verified"] = df["verified"]
    cols["flags"] = [_flags(r) for r in df.to_dict("records")]
    return pd.DataFrame(cols).reset_index(drop=True)


def _band(low, high):
    """'17.1-18.3': the speedup's 95 % interval, as the terminal shows it."""
    ok = all(isinstance(v, (int, float)) and v == v for v in (low, high))
    return f"{low:.3g}-{high:.3g}" if ok else "-"


def _flags(row):
    """Why a row's speedup is not a result: noisy (spread or a wide interval),
    busy (the host was), suspect (an impossible pattern in its shape)."""
    out = [name for name in ("busy", "suspect") if row.get(name) is True]
    if not out and (row.get("speedup_noisy") is True or row.get("noisy") is True):
        out.append("noisy")
    return ",".join(out) or "-"


def format_table(table):
    if table.empty:
        return "(no rows)"
    return table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3g}"
                           if abs(v) < 100 else f"{v:.0f}")


def add_best_float(df):
    """speedup_best_float: the fastest verified float layer method of the same
    run, shape and thread count over this row (so binary layers are never
    only compared with the weakest float)."""
    keys = ["run_id", *CONV.shape_keys, "threads"]
    floats = df[(df["kind"] == "float") & (df["verified"] == True)]  # noqa: E712
    best = floats.groupby(keys, dropna=False)["median_s"].min().rename("best_float_s")
    out = df.merge(best.reset_index(), on=keys, how="left")
    out["speedup_best_float"] = out["best_float_s"] / out["median_s"]
    return out.drop(columns="best_float_s")


def layer_table(df):
    """The layer rows of a sweep for people: time, the two speedups, share
    of the roofline and the memory each method holds."""
    if df.empty:
        return pd.DataFrame()
    if "speedup" not in df:
        df = add_speedups(df)
    df = add_best_float(df)
    df = (df.assign(_m=df["method"].map(METHOD_ORDER))
          .sort_values(["filters", "kernel", "stride", "height", "channels", "threads", "_m"]))
    cols = {
        "input": [f"{int(b)}x{int(h)}x{int(w)}x{int(c)}" for b, h, w, c in
                  zip(df["batch"], df["height"], df["width"], df["channels"])],
        "filters": df["filters"], "k": df["kernel"], "s": df["stride"], "pad": df["padding"],
        "threads": df["threads"], "method": df["method"],
        "median_ms": df["median_s"] * 1e3, "iqr_%": 100 * df["iqr_s"] / df["median_s"],
        f"vs_{CONV.baseline}": df["speedup"], "vs_best_float": df["speedup_best_float"],
    }
    if "peak_fraction" in df and df["peak_fraction"].notna().any():
        cols["%peak"] = 100 * df["peak_fraction"]
    if "im2col_share" in df and df["im2col_share"].notna().any():
        cols["im2col_%"] = 100 * df["im2col_share"]
    cols["held_MB"] = df["held_bytes"] / 1e6
    cols["verified"] = df["verified"]
    return pd.DataFrame(cols).reset_index(drop=True)


def network_table(df):
    """Whole-network rows for people: ms per image, the speedup over the
    float twin (the level's baseline), over the fastest float engine and
    over LCE in the same run and threads, the model's deployed bytes, and
    the share of time outside binary layers."""
    if df.empty:
        return pd.DataFrame()
    if "speedup" not in df:
        df = add_speedups(df)
    keys = ["run_id", "model", "batch", "threads"]
    ok = df[df["verified"] == True]  # noqa: E712
    best_float = (ok[ok["kind"] == "float"].groupby(keys)["median_s"].min()
                  .rename("_best_float_s").reset_index())
    lce = ok[ok["method"] == "net_lce"][keys + ["median_s"]].rename(columns={"median_s": "_lce_s"})
    df = df.merge(best_float, on=keys, how="left").merge(lce, on=keys, how="left")
    df = (df.assign(_m=df["method"].map(METHOD_ORDER))
          .sort_values(["model", "batch", "threads", "_m"]))
    cols = {
        "model": df["model"], "batch": df["batch"], "threads": df["threads"],
        "method": df["method"],
        "ms_per_image": df["median_s"] * 1e3 / df["batch"],
        "iqr_%": 100 * df["iqr_s"] / df["median_s"],
        f"vs_{MODEL.baseline}": df["speedup"],
        "ci95": [_band(lo, hi) for lo, hi in
                 zip(df.get("speedup_low", pd.Series(index=df.index, dtype=float)),
                     df.get("speedup_high", pd.Series(index=df.index, dtype=float)))],
        "vs_best_float": df["_best_float_s"] / df["median_s"],
        "vs_lce": df["_lce_s"] / df["median_s"],
        "model_MB": df.get("deployed_bytes", pd.Series(index=df.index, dtype=float)) / 1e6,
        "outside_binary_%": 100 * df.get("outside_binary_share",
                                         pd.Series(index=df.index, dtype=float)),
        "verified": df["verified"],
        "flags": [_flags(r) for r in df.to_dict("records")],
    }
    return pd.DataFrame(cols).reset_index(drop=True)
