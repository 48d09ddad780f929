"""The report's layer section (sweep rows of level "conv"): whole conv layers
per host, bnnbench's kernels beside the engines people deploy.

Layer rows are kept apart from the GEMM rows as they load (data.split), so
no GEMM table, figure or headline ever mixes the two levels.
"""
import pandas as pd

from ..methods import conv
from .terminal import add_best_float, layer_table
from . import tables
from .page import Section

OWN_BINARY = ("conv_xnor_64", "conv_xnor_64_omp", "conv_xnor_32", "conv_xnor_32_omp")
LCE_CAVEAT = ("Larq Compute Engine and TF Lite rows are other engines, run in this process "
              "through their Python interpreters (copy in, invoke, copy out). On x86 LCE "
              "runs portable C++ kernels — its optimised kernels are for 32- and 64-bit ARM "
              "(maintainers, larq/compute-engine issues #591 and #803) — so its rows are the "
              "engine a user would deploy here, not the best an x86 binary kernel can do.")


def _label(method):
    m = conv.BY_NAME.get(method)
    if m is not None and m.engine:
        return f"{method} (other engine)"
    return method


def _headline(host, d):
    """'a binary KxK conv layer ran N× faster than the best float layer on
    this host': the fastest own binary layer at the largest layer, 1 thread."""
    d = add_best_float(d)
    d = d[(d["threads"] == 1) & d["method"].isin(OWN_BINARY) & d["speedup_best_float"].notna()]
    if d.empty:
        return None
    top = d[d["ops"] == d["ops"].max()]
    row = top.sort_values("speedup_best_float").iloc[-1]
    dims = "×".join(str(int(row[k])) for k in ("batch", "height", "width", "channels"))
    k, ratio = int(row["kernel"]), tables.sig(row["speedup_best_float"])
    return (f"{host}: a binary {k}×{k} conv layer (input {dims}, {int(row['filters'])} "
            f"filters) ran {ratio}× faster than the best float layer on this host "
            f"({row['method']}, 1 thread, the same run).")


def section(ds):
    s = Section("layers", "Whole layers",
                intro="Whole convolution layers from the float feature map to the output, each "
                      "method checked against numpy before it is timed. Speedups are inside one "
                      "run at the same thread count: over conv_float_blas (im2col + the platform "
                      "BLAS) and over the fastest float layer method of that run (best float).",
                empty="No layer-level results (run `bnnbench sweep --level conv`).")
    df = ds.other.get("layer")
    if df is None or df.empty:
        return s
    for host, d in df.groupby("host_label", sort=True):
        line = _headline(host, d)
        if line:
            s.notices.append(("info", line))
        out = layer_table(d)
        out.insert(0, "host", host)
        out["method"] = out["method"].map(_label)
        s.tables.append(tables.Table(
            f"layers_{len(s.tables) + 1}", f"{host}: whole layers", out,
            formats={"vs_conv_float_blas": tables.times, "vs_best_float": tables.times}))
    if df["method"].map(lambda m: bool(getattr(conv.BY_NAME.get(m), "engine", None))).any():
        s.notices.append(("info", LCE_CAVEAT))
    return s


__all__ = ["section", "split"]
