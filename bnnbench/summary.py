"""Tables a person reads, built from the tidy DataFrame of run rows."""
import pandas as pd

from . import kernels
from .results import add_speedups

UNITS = {"float": "GFLOP/s", "xnor": "Gbit-op/s"}
METHOD_ORDER = {m.name: i for i, m in enumerate(kernels.ALL_METHODS)}
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
        "speedup": df["speedup"], "throughput": df["gops"],
        "unit": df["kind"].map(UNITS) if "kind" in df else None,
    })
    if "peak_fraction" in df and df["peak_fraction"].notna().any():
        cols["%peak"] = 100 * df["peak_fraction"]
    cols["verified"] = df["verified"]
    return pd.DataFrame(cols).reset_index(drop=True)


def format_table(table):
    if table.empty:
        return "(no rows)"
    return table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3g}"
                           if abs(v) < 100 else f"{v:.0f}")
