"""matplotlib figures for the report, embedded as base64 PNG.

Figures are drawn with the object API on an Agg canvas (no pyplot, no
display, no global state), so a report can be built on a headless server
or inside tests. Every function returns a Figure or None when its data is
absent: a section then says so instead of showing an empty plot.
"""
import base64
import io
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .data import BASELINE
from .tables import KEY_METHODS, METHOD_ORDER

PARAM_TITLES = {"channels": "input channels", "filters": "filters (M)",
                "kernel": "kernel size k (k×k)"}
SLICE_KEYS = ("channels", "filters", "kernel", "batch", "out_size")
_PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
            "#8c8c8c", "#ccb974", "#64b5cd"]
_DPI = 96


@dataclass
class Figure:
    title: str
    png_b64: str
    caption: str = ""


def text(value, limit=40):
    """A string from a run file as matplotlib text: '$' would start mathtext
    (and a malformed formula raises at draw time), so it is escaped."""
    s = str(value)
    s = s if len(s) <= limit else s[:limit - 1] + "…"
    return s.replace("$", r"\$")


def method_color(name):
    i = METHOD_ORDER.get(name)
    if i is None:
        i = len(METHOD_ORDER) + sum(map(ord, str(name))) % 2
    return _PALETTE[i % len(_PALETTE)]


def host_color(i):
    return _PALETTE[i % len(_PALETTE)]


def _new(width=4.3, height=3.0, ncols=1, legend=0.0, left=0.8, bottom=0.55, top=0.32,
         gap=0.8):
    """A figure of `ncols` panels of `width` inches; `legend` inches on the
    right for one shared legend (a method has the same colour in every panel).
    Margins are fixed in inches rather than found by a layout engine, which
    would draw every figure twice."""
    total = width * ncols + legend
    fig = MplFigure(figsize=(total, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    right = total - legend - 0.15
    axis_w = (right - left - gap * (ncols - 1)) / ncols
    fig.subplots_adjust(left=left / total, right=right / total, bottom=bottom / height,
                        top=1 - top / height, wspace=gap / axis_w if ncols > 1 else 0.2)
    fig._bnn_legend_at = ((right + 0.1) / total, 1 - top / height)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _encode(fig):
    buf = io.BytesIO()
    # tight: legends sit outside the axes and long host labels must not be cut
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _legend(fig, axes):
    handles, labels = {}, {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles.keys()), loc="upper left",
                   bbox_to_anchor=getattr(fig, "_bnn_legend_at", (0.8, 0.9)), fontsize=8,
                   frameon=False, borderaxespad=0)


def _plain_log_axis(axis, subs=None):
    """1, 10, 0.01 rather than mathtext powers: easier to read, and mathtext
    layout is most of the drawing time. `subs` (e.g. 1, 2, 5) labels more
    than the decades, for axes that span only one or two of them."""
    if subs:
        axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _methods(df):
    return sorted(df["method"].unique(), key=lambda m: (METHOD_ORDER.get(m, 99), m))


def choose_slice(rows, param):
    """The rows where only `param` varies (the others fixed), picking the
    fixed values that give the most points; None if `param` never varies."""
    others = [k for k in SLICE_KEYS if k != param]
    if rows.empty or rows[param].nunique() < 2:
        return None, None
    counts = rows.groupby(others)[param].nunique()
    counts = counts[counts >= 2]
    if counts.empty:
        return None, None
    best = counts.sort_values(ascending=False, kind="stable").index[0]
    fixed = dict(zip(others, best))
    mask = np.ones(len(rows), dtype=bool)
    for k, v in fixed.items():
        mask &= (rows[k] == v).to_numpy()
    return rows[mask], fixed


def _thread_panels(rows):
    """One panel at 1 thread and one at the most threads, when both exist."""
    ts = sorted(rows["threads"].unique())
    return [ts[0]] if len(ts) == 1 else [ts[0], ts[-1]]


def _fixed_text(fixed):
    names = {"channels": "channels", "filters": "filters", "kernel": "kernel",
             "batch": "batch", "out_size": "out"}
    return ", ".join(f"{names[k]} {v}" for k, v in fixed.items())


def versus(rows, param, value):
    """Median time (value='time') or speedup over float_blas (value='speedup')
    against one shape parameter, a line per method, a panel per thread count."""
    part, fixed = choose_slice(rows, param)
    if part is None:
        return None
    if value == "speedup":
        part = part[(part["method"] != BASELINE) & part["speedup"].notna()]
    else:
        part = part[part["median_s"].notna()]
    if part.empty or part[param].nunique() < 2:
        return None
    panels = _thread_panels(part)
    fig, axes = _new(ncols=len(panels), legend=1.7)
    for ax, t in zip(axes, panels):
        sub = part[part["threads"] == t]
        for m in _methods(sub):
            d = sub[sub["method"] == m].sort_values(param)
            y = d["median_s"] * 1e3 if value == "time" else d["speedup"]
            ax.plot(d[param], y, marker="o", ms=4, lw=1.6, label=text(m), color=method_color(m),
                    ls="--" if m == BASELINE else "-")
        ax.set_xscale("log", base=2)
        _plain_log_axis(ax.xaxis)
        ax.set_xticks(sorted(sub[param].unique()))
        ax.set_xlabel(PARAM_TITLES.get(param, param))
        if value == "time":
            ax.set_yscale("log")
            _plain_log_axis(ax.yaxis, subs=(1.0, 2.0, 5.0))
            ax.set_ylabel("median time (ms, log)")
        else:
            ax.axhline(1, color="#333", lw=0.8, ls=":")
            ax.set_ylabel("speedup over float_blas (×)")
            ax.set_ylim(bottom=0)
        ax.set_title(f"{t} thread{'s' if t != 1 else ''}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    _legend(fig, axes)
    what = "Processing time" if value == "time" else "Speedup over float_blas"
    title = f"{what} vs {PARAM_TITLES.get(param, param)}"
    caption = f"Fixed: {_fixed_text(fixed)}."
    if value == "speedup":
        caption += " Dotted line: as fast as float_blas. Each point is a ratio inside one run."
    return Figure(title, _encode(fig), caption)


def thread_scaling(all_rows):
    """Median time at 1 thread / at n threads, per parallel method, on the
    largest shape of the newest run that ran several thread counts."""
    if all_rows.empty:
        return None
    multi = all_rows.groupby("run_id")["threads"].nunique()
    multi = multi[multi >= 2]
    if multi.empty:
        return None
    runs = all_rows[all_rows["run_id"].isin(multi.index)]
    run_id = runs.sort_values("started_ts", ascending=False)["run_id"].iloc[0]
    run = runs[(runs["run_id"] == run_id) & runs["median_s"].notna()]
    run = run.assign(_size=run["M"] * run["N"] * run["K"])
    shapes = run[run["threads"] > 1]
    if shapes.empty:
        return None
    biggest = shapes.sort_values("_size").iloc[-1]
    same = run[(run[list(SLICE_KEYS)] == biggest[list(SLICE_KEYS)]).all(axis=1)]
    fig, (ax,) = _new(legend=1.7)
    drawn = 0
    top = 1
    for m in _methods(same):
        d = same[same["method"] == m].sort_values("threads")
        one = d[d["threads"] == 1]["median_s"]
        if len(d) < 2 or one.empty:
            continue
        ax.plot(d["threads"], one.iloc[0] / d["median_s"], marker="o", ms=4,
                label=text(m), color=method_color(m))
        top = max(top, d["threads"].max())
        drawn += 1
    if not drawn:
        return None
    ax.plot([1, top], [1, top], color="#999", ls=":", lw=1, label="ideal")
    ax.set_xlabel("threads")
    ax.set_ylabel("time at 1 thread / time at n")
    ax.set_xticks(sorted(same["threads"].unique()))
    ax.grid(True, alpha=0.3)
    _legend(fig, [ax])
    caption = (f"Run {run_id[:8]}, shape {_fixed_text({k: biggest[k] for k in SLICE_KEYS})}; "
               f"each method against its own one-thread time.")
    return Figure("Thread scaling", _encode(fig), caption)


def peak_fraction(rows):
    """Share of the host's probed peak each method reaches, when the sweep
    recorded it (rows with peak_fraction)."""
    if "peak_fraction" not in rows or rows["peak_fraction"].notna().sum() == 0:
        return None
    d = rows[rows["peak_fraction"].notna()]
    part, fixed = choose_slice(d, "channels")
    if part is None:
        part, fixed = d, None
    panels = _thread_panels(part)
    fig, axes = _new(ncols=len(panels), legend=1.7)
    for ax, t in zip(axes, panels):
        sub = part[part["threads"] == t]
        for m in _methods(sub):
            s = sub[sub["method"] == m].sort_values("K")
            ax.plot(s["K"], 100 * s["peak_fraction"], marker="o", ms=4, label=text(m),
                    color=method_color(m))
        ax.set_xscale("log", base=2)
        _plain_log_axis(ax.xaxis)
        ax.set_xticks(sorted(sub["K"].unique()))
        ax.set_xlabel("K = kernel² · channels")
        ax.set_ylabel("% of probed peak")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{t} thread{'s' if t != 1 else ''}", fontsize=10)
        ax.grid(True, alpha=0.3)
    _legend(fig, axes)
    caption = ("Throughput as a share of the peak the host's probe measured, at the same "
               "thread count: float methods against FMA, xnor methods against popcount, "
               "binarize_* against the lower of popcount and what the read bandwidth allows "
               "(they must read the float activations). Above 100 %: the probe read a lower "
               "peak than the kernel reached, e.g. on a busy host")
    caption += f" (fixed: {_fixed_text(fixed)})." if fixed else "."
    return Figure("Fraction of peak", _encode(fig), caption)


def comparison(long, hosts, emulated=()):
    """Grouped bars, a figure per key method: per shape, each host's speedup
    over its own float_blas (xnor_64 at 1 thread, the _omp methods at all
    threads). A list, empty when there is nothing to draw."""
    if long.empty:
        return []
    picks = []
    for m in KEY_METHODS:
        level = "1" if not m.endswith("_omp") else "all"
        d = long[(long["method"] == m) & (long["level"] == level) & long["speedup"].notna()]
        if not d.empty:
            picks.append((m, level, d))
    if not picks:
        return []
    shared = None
    for _, _, d in picks:
        keys = set(map(tuple, d[["channels", "filters", "kernel", "batch", "out_size"]].values))
        shared = keys if shared is None else shared | keys
    shapes = sorted(shared, key=lambda s: (s[1], s[2], s[3], s[4], s[0]))
    if len(shapes) > 16:
        shapes = shapes[-16:]   # the largest; the table has every one
    present = [h for h in hosts if h in set(long["host"])]
    rotate = len(shapes) > 4
    width = 0.8 / max(1, len(present))
    x = np.arange(len(shapes))
    out = []
    # One figure per method (rather than panels side by side) so each stays
    # legible at page width however many hosts and shapes there are.
    for m, level, d in picks:
        fig, (ax,) = _new(width=max(3.8, 0.22 * len(shapes) * len(present) + 1.3),
                          height=3.4 if rotate else 3.0, legend=1.7,
                          bottom=0.95 if rotate else 0.5)
        for i, h in enumerate(present):
            dh = d[d["host"] == h].set_index(["channels", "filters", "kernel", "batch",
                                              "out_size"])["speedup"]
            y = [dh.get(s, np.nan) for s in shapes]
            name = text(h, 24) + (" (emulated)" if h in emulated else "")
            ax.bar(x + (i - (len(present) - 1) / 2) * width, y, width, label=name,
                   color=host_color(hosts.index(h) if h in hosts else i),
                   hatch="//" if h in emulated else None,
                   edgecolor="white" if h not in emulated else "#333")
        ax.axhline(1, color="#333", lw=0.8, ls=":")
        ax.set_xticks(x)
        ax.set_xticklabels([_short_shape(s, shapes) for s in shapes], rotation=45 if rotate
                           else 0, ha="right" if rotate else "center", fontsize=8)
        ax.set_ylabel("speedup over own float_blas (×)")
        ax.grid(True, axis="y", alpha=0.3)
        _legend(fig, [ax])
        threads = "1 thread" if level == "1" else "all threads"
        out.append(Figure(f"{m} ({threads}): speedup over each host's own float_blas",
                          _encode(fig), "Bars are ratios inside each host's own run: compare "
                          "heights, not raw times. Dotted line: as fast as float_blas. "
                          "Hatched: an emulated host."))
    return out


def _short_shape(s, shapes):
    """Name a shape by what varies among the plotted ones."""
    names = ("c", "f", "k", "b", "o")
    varying = [i for i in range(5) if len({t[i] for t in shapes}) > 1] or [0]
    return " ".join(f"{names[i]}{s[i]}" for i in varying)


def layer_bars(d, title, limit=40):
    """Per-layer median time (ms, log) as horizontal bars, a bar per method,
    layers in model order (as the run lists them)."""
    if d.empty:
        return None
    layers = list(dict.fromkeys(d["layer"]))[:limit]
    methods = _methods(d)[:6]
    height = max(2.0, 0.18 * len(layers) * max(1, len(methods)) ** 0.5 + 1.0)
    fig, (ax,) = _new(width=5.6, height=height, legend=1.7, left=1.5)
    bar = 0.8 / len(methods)
    y = np.arange(len(layers))
    for i, m in enumerate(methods):
        dm = d[d["method"] == m].drop_duplicates("layer").set_index("layer")["_ms"]
        ax.barh(y + (i - (len(methods) - 1) / 2) * bar, [dm.get(lay, np.nan) for lay in layers],
                bar, label=text(m), color=method_color(m))
    ax.set_yticks(y)
    ax.set_yticklabels([text(v, 28) for v in layers], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("median time (ms, log)")
    ax.grid(True, axis="x", alpha=0.3)
    _legend(fig, [ax])
    return Figure(title, _encode(fig), "Layers top to bottom in model order.")


def commit_history(d, title):
    """Speedup over float_blas per commit (oldest left) for the key methods
    at the largest shape every commit measured, one line per (method, threads)."""
    d = d[d["method"].isin(KEY_METHODS)]
    if d.empty:
        return None
    commits = (d.drop_duplicates("commit").sort_values(["_when", "commit"])["commit"].tolist())
    per_shape = (d.assign(_size=d["M"] * d["N"] * d["K"]).groupby(list(SLICE_KEYS))
                 .agg(n=("commit", "nunique"), size=("_size", "max")))
    shape = per_shape.sort_values(["n", "size"]).index[-1]
    mask = np.ones(len(d), dtype=bool)
    for k, v in zip(SLICE_KEYS, shape):
        mask &= (d[k] == v).to_numpy()
    d = d[mask]
    fig, (ax,) = _new(width=max(4.0, 0.6 * len(commits) + 2.0), legend=2.2, bottom=0.7)
    x = {c: i for i, c in enumerate(commits)}
    for (m, t), g in d.groupby(["method", "threads"], sort=False):
        g = g.drop_duplicates("commit").sort_values("_when")
        ax.plot([x[c] for c in g["commit"]], g["speedup"], marker="o", ms=4,
                color=method_color(m), ls="-" if t == 1 else "--",
                label=text(f"{m}, {t} thr"))
    ax.set_xticks(range(len(commits)))
    ax.set_xticklabels([str(c)[:8] for c in commits], rotation=30, ha="right", fontsize=7)
    ax.set_xlim(-0.5, len(commits) - 0.5)
    ax.set_ylim(bottom=0)
    ax.axhline(1, color="#333", lw=0.8, ls=":")
    ax.set_ylabel("speedup over float_blas (×)")
    ax.grid(True, alpha=0.3)
    _legend(fig, [ax])
    return Figure(title, _encode(fig), f"Shape {_fixed_text(dict(zip(SLICE_KEYS, shape)))}; "
                  f"commits oldest to newest by commit date.")


def accuracy_bars(df):
    """Test accuracy of each network and evaluation, per accuracy run."""
    d = df[df["accuracy"].notna()]
    if d.empty:
        return None
    runs = list(dict.fromkeys(zip(d["host_label"], d["run_id"])))[:12]
    evals = list(dict.fromkeys(zip(d["network"], d["evaluation"])))[:6]
    fig, (ax,) = _new(width=max(3.6, 1.1 * len(runs) + 1.2), height=3.0, legend=2.4,
                      bottom=0.6)
    bar = 0.8 / max(1, len(evals))
    x = np.arange(len(runs))
    for i, (net, ev) in enumerate(evals):
        y = []
        for host, run in runs:
            v = d[(d["host_label"] == host) & (d["run_id"] == run) & (d["network"] == net)
                  & (d["evaluation"] == ev)]["accuracy"]
            y.append(100 * float(v.iloc[0]) if len(v) else np.nan)
        ax.bar(x + (i - (len(evals) - 1) / 2) * bar, y, bar, color=_PALETTE[i % len(_PALETTE)],
               label=text(f"{net}: {ev}", 36))
    ax.set_xticks(x)
    ax.set_xticklabels([text(h, 16) + f"\n{r[:8]}" for h, r in runs], fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, axis="y", alpha=0.3)
    _legend(fig, [ax])
    return Figure("Test accuracy", _encode(fig), "Per host and run: the float network, its "
                  "binary twin in numpy, and the binary twin through the xnor kernel.")
