"""Tables a person reads, built from the tidy DataFrame of run rows."""
import pandas as pd

from . import kernels
from .results import add_speedups

UNITS = {"float": "GFLOP/s", "xnor": "Gbit-op/s"}


def sweep_table(df):
    """Per method and shape: median and min time, spread, speedup over
    float_blas at the same thread count, and throughput."""
    if df.empty:
        return pd.DataFrame()
    df = add_speedups(df)
    order = {name: i for i, name in enumerate(m.name for m in kernels.ALL_METHODS)}
    df = df.assign(_order=df["method"].map(order).fillna(len(order)))
    df = df.sort_values(["filters", "kernel", "channels", "threads", "_order"])
    table = pd.DataFrame({
        "channels": df["channels"], "filters": df["filters"], "kernel": df["kernel"],
        "K": df["K"], "threads": df["threads"], "method": df["method"],
        "median_ms": df["median_s"] * 1e3, "min_ms": df["min_s"] * 1e3,
        "iqr_%": 100 * df["iqr_s"] / df["median_s"],
        "speedup": df["speedup"], "throughput": df["gops"],
        "unit": df["kind"].map(UNITS) if "kind" in df else None,
        "%peak": 100 * df["peak_fraction"] if "peak_fraction" in df else None,
        "verified": df["verified"],
    })
    return table.reset_index(drop=True)


def format_table(table):
    if table.empty:
        return "(no rows)"
    return table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3g}"
                           if abs(v) < 100 else f"{v:.0f}")
