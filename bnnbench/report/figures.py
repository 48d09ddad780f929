"""matplotlib figures for the report, embedded as base64 PNG.

Figures are drawn with the object API on an Agg canvas (no pyplot, no
display, no global state), so a report can be built on a headless server
or inside tests. Every function returns a Figure or None when its data is
absent: a section then says so instead of showing an empty plot.
"""
import base64
import io
from dataclasses import dataclass, field

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..measure.trust import PEAK_TOLERANCE
from .data import BASELINE, BINARIZING
from .tables import KEY_METHODS, METHOD_ORDER

PARAM_TITLES = {"channels": "input channels", "filters": "filters (M)",
                "kernel": "kernel size k (k×k)"}
SLICE_KEYS = ("channels", "filters", "kernel", "batch", "out_size")
_PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
            "#8c8c8c", "#ccb974", "#64b5cd"]
_DPI = 96


# Tests set this to keep each matplotlib figure beside its PNG, to check
# what was drawn (hollow markers, axis limits) rather than pixels.
KEEP_ARTISTS = False
# Markers: filled for a result, hollow (white face) for a point that is not
# one (noisy on either side, timed on a busy host, or suspect).
HOLLOW = "white"


@dataclass
class Figure:
    title: str
    png_b64: str
    caption: str = ""
    artist: object = field(default=None, repr=False, compare=False)


def _figure(title, fig, caption=""):
    return Figure(title, _encode(fig), caption, fig if KEEP_ARTISTS else None)


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
    found = batch_slices(rows, param)
    if not found:
        return None, None
    return max(found, key=lambda pf: pf[0][param].nunique())


def batch_slices(rows, param):
    """[(rows, fixed)]: for each batch size, the rows where only `param`
    varies, at the fixed values that give the most points; largest batch
    first. One slice per batch, so a quick run's small batch never hides a
    full-size run of the same host (nor the other way round)."""
    others = [k for k in SLICE_KEYS if k != param]
    if rows.empty or rows[param].nunique() < 2:
        return []
    counts = rows.groupby(others)[param].nunique()
    counts = counts[counts >= 2]
    out = []
    for batch in sorted({k[others.index("batch")] for k in counts.index}, reverse=True):
        here = counts[[k[others.index("batch")] == batch for k in counts.index]]
        best = here.sort_values(ascending=False, kind="stable").index[0]
        fixed = dict(zip(others, best))
        mask = np.ones(len(rows), dtype=bool)
        for k, v in fixed.items():
            mask &= (rows[k] == v).to_numpy()
        out.append((rows[mask], fixed))
    return out


def unplotted_batches(rows, params=tuple(PARAM_TITLES)):
    """Batch sizes of `rows` that no figure against a shape parameter shows."""
    if rows.empty:
        return []
    shown = {fixed["batch"] for p in params for _, fixed in batch_slices(rows, p)}
    return sorted(set(rows["batch"]) - shown)


def _thread_panels(rows):
    """One panel at 1 thread and one at the most threads, when both exist."""
    ts = sorted(rows["threads"].unique())
    return [ts[0]] if len(ts) == 1 else [ts[0], ts[-1]]


def _fixed_text(fixed):
    names = {"channels": "channels", "filters": "filters", "kernel": "kernel",
             "batch": "batch", "out_size": "out"}
    return ", ".join(f"{names[k]} {v}" for k, v in fixed.items())


def _flag_col(d, name):
    return d[name].map(lambda v: v is True or v == True).to_numpy(dtype=bool) \
        if name in d else np.zeros(len(d), dtype=bool)  # noqa: E712


def not_a_result(d, value):
    """Per row, whether its point is not a result: for a speedup, the row is
    shaky (data.mark_shaky: either side noisy, busy or suspect); for a time,
    its own samples spread, or it was busy or suspect."""
    if value == "speedup" and "shaky" in d:
        return _flag_col(d, "shaky")
    return _flag_col(d, "noisy") | _flag_col(d, "busy") | _flag_col(d, "suspect")


def _points(ax, x, y, bad, color, low=None, high=None):
    """Markers on a line already drawn: filled for results, hollow for points
    that are not; error bars from the interval where there is one."""
    x, y, bad = np.asarray(x, float), np.asarray(y, float), np.asarray(bad, bool)
    if low is not None and high is not None:
        lo, hi = np.asarray(low, float), np.asarray(high, float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.errorbar(x[ok], y[ok], yerr=[np.clip(y[ok] - lo[ok], 0, None),
                                            np.clip(hi[ok] - y[ok], 0, None)],
                        fmt="none", ecolor=color, elinewidth=0.9, capsize=2, alpha=0.8)
    if (~bad).any():
        ax.plot(x[~bad], y[~bad], ls="none", marker="o", ms=4.5, color=color, gid="result")
    if bad.any():
        ax.plot(x[bad], y[bad], ls="none", marker="o", ms=5.5, mfc=HOLLOW, mec=color,
                mew=1.4, gid="not-a-result", zorder=3)


def _marker_key(axes, any_bad, bars=False):
    """Legend entries saying what filled and hollow markers mean."""
    if not any_bad:
        return
    ax = axes[0]
    ax.plot([], [], ls="none", marker="o", ms=4.5, color="#555", label="result")
    ax.plot([], [], ls="none", marker="o", ms=5.5, mfc=HOLLOW, mec="#555", mew=1.4,
            label="hollow: not a result")


def _cap_to_results(ax, y, bad, high=None):
    """The y scale set by the points that are results (with their interval),
    or by the points alone when none is: a wild noisy point, or the whisker
    of a wide interval, must not flatten the rest. Returns (points left
    above the axis, whether the axis was cut)."""
    y = np.asarray(y, float)
    bad = np.asarray(bad, bool)
    finite_ = np.isfinite(y)
    good = y[~bad & finite_]
    if good.size:
        top = good.max()
        if high is not None:
            h = np.asarray(high, float)[~bad]
            h = h[np.isfinite(h)]
            top = max(top, h.max()) if h.size else top
    elif finite_.any():
        top = y[finite_].max()
    else:
        return 0, False
    top *= 1.2
    if ax.get_ylim()[1] <= top:
        return 0, False
    ax.set_ylim(top=top)
    return int(np.sum(y > top)), True


def versus(rows, param, value):
    """Median time (value='time') or speedup over float_blas (value='speedup')
    against one shape parameter, a line per method, a panel per thread count;
    one figure per batch size measured. A list, empty when `param` never
    varies."""
    out = []
    for part, fixed in batch_slices(rows, param):
        fig = _versus_one(part, fixed, param, value)
        if fig:
            out.append(fig)
    return out


def _versus_one(part, fixed, param, value):
    if value == "speedup":
        part = part[(part["method"] != BASELINE) & part["speedup"].notna()]
    else:
        part = part[part["median_s"].notna()]
    if part.empty or part[param].nunique() < 2:
        return None
    panels = _thread_panels(part)
    fig, axes = _new(ncols=len(panels), legend=1.9)
    any_bad, over, cut = False, 0, False
    for ax, t in zip(axes, panels):
        sub = part[part["threads"] == t]
        ys, bads, highs = [], [], []
        for m in _methods(sub):
            d = sub[sub["method"] == m].sort_values(param)
            y = (d["median_s"] * 1e3 if value == "time" else d["speedup"]).to_numpy(float)
            bad = not_a_result(d, value)
            color = method_color(m)
            ax.plot(d[param], y, lw=1.6, label=text(m), color=color,
                    ls="--" if m == BASELINE else "-")
            band = ((d["speedup_low"], d["speedup_high"])
                    if value == "speedup" and "speedup_low" in d else (None, None))
            _points(ax, d[param], y, bad, color, *band)
            any_bad |= bool(bad.any())
            ys.append(y), bads.append(bad)
            highs.append(band[1].to_numpy(float) if band[1] is not None
                         else np.full(len(d), np.nan))
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
            if ys:
                n, cut_here = _cap_to_results(ax, np.concatenate(ys), np.concatenate(bads),
                                              np.concatenate(highs))
                over, cut = over + n, cut or cut_here
        ax.set_title(f"{t} thread{'s' if t != 1 else ''}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    _marker_key(axes, any_bad)
    _legend(fig, axes)
    what = "Processing time" if value == "time" else "Speedup over float_blas"
    title = f"{what} vs {PARAM_TITLES.get(param, param)}, batch {fixed['batch']}"
    caption = f"Fixed: {_fixed_text(fixed)}."
    if value == "speedup":
        caption += (" Dotted line: as fast as float_blas. Each point is a ratio inside one run; "
                    "bars: its 95 % interval.")
    if any_bad and value == "speedup":
        caption += (" Hollow points are not results: noisy (on either side of the ratio), "
                    "timed on a busy host, or suspect.")
    elif any_bad:
        caption += (" Hollow points are not results: their samples spread (IQR above 10 % of "
                    "the median), the host was busy, or the shape is suspect.")
    if over:
        caption += f" {over} hollow point(s) lie above the axis."
    if cut:
        caption += (" The scale is set by the results (by the points, where none is); longer "
                    "whiskers are cut at the top.")
    return _figure(title, fig, caption)


def thread_scaling(all_rows):
    """Median time at 1 thread / at n threads, per parallel method, on the
    largest shape any run timed on several thread counts (the newest such
    run on a tie)."""
    if all_rows.empty:
        return None
    multi = all_rows.groupby("run_id")["threads"].nunique()
    multi = multi[multi >= 2]
    if multi.empty:
        return None
    runs = all_rows[all_rows["run_id"].isin(multi.index)]
    # The run with the largest multi-thread shape (newest on a tie): a quick
    # run must not stand in for a full-size one.
    runs = runs[runs["median_s"].notna()]
    runs = runs.assign(_size=runs["M"] * runs["N"] * runs["K"])
    parallel = runs[runs["threads"] > 1]
    if parallel.empty:
        return None
    run_id = parallel.sort_values(["_size", "started_ts"], ascending=False)["run_id"].iloc[0]
    run = runs[runs["run_id"] == run_id]
    shapes = run[run["threads"] > 1]
    if shapes.empty:
        return None
    biggest = shapes.sort_values("_size").iloc[-1]
    same = run[(run[list(SLICE_KEYS)] == biggest[list(SLICE_KEYS)]).all(axis=1)]
    fig, (ax,) = _new(legend=1.7)
    drawn = 0
    top = 1
    any_bad = False
    for m in _methods(same):
        d = same[same["method"] == m].sort_values("threads")
        one = d[d["threads"] == 1]["median_s"]
        if len(d) < 2 or one.empty:
            continue
        y = (one.iloc[0] / d["median_s"]).to_numpy(float)
        bad = not_a_result(d, "time")
        ax.plot(d["threads"], y, lw=1.6, label=text(m), color=method_color(m))
        _points(ax, d["threads"], y, bad, method_color(m))
        any_bad |= bool(bad.any())
        top = max(top, d["threads"].max())
        drawn += 1
    if not drawn:
        return None
    ax.plot([1, top], [1, top], color="#999", ls=":", lw=1, label="ideal")
    ax.set_xlabel("threads")
    ax.set_ylabel("time at 1 thread / time at n")
    ax.set_xticks(sorted(same["threads"].unique()))
    ax.grid(True, alpha=0.3)
    _marker_key([ax], any_bad)
    _legend(fig, [ax])
    caption = (f"Run {run_id[:8]}, shape {_fixed_text({k: biggest[k] for k in SLICE_KEYS})}; "
               f"each method against its own one-thread time.")
    if any_bad:
        caption += " Hollow points are not results (noisy, busy or suspect)."
    return _figure("Thread scaling", fig, caption)


def peak_fraction(rows, trust=None):
    """Share of the host's probed peak each method reaches, from one run and
    that run's own probe (two runs' probes are never mixed in one figure):
    the run with the most such rows, the newest on a tie. Runs whose probe
    is unreliable have no peak_fraction here (data leaves them out)."""
    if "peak_fraction" not in rows or rows["peak_fraction"].notna().sum() == 0:
        return None
    d = rows[rows["peak_fraction"].notna() & ~rows["run_id"].astype(str).str.contains(" ")]
    if d.empty:
        return None   # only medians over several runs (--all-runs): no one probe
    per_run = d.groupby("run_id").agg(n=("peak_fraction", "size"), ts=("started_ts", "max"))
    run_id = per_run.sort_values(["n", "ts"]).index[-1]
    d = d[d["run_id"] == run_id]
    part, fixed = choose_slice(d, "channels")
    if part is None:
        part, fixed = d, None
    panels = _thread_panels(part)
    fig, axes = _new(ncols=len(panels), legend=1.9)
    any_bad = False
    for ax, t in zip(axes, panels):
        sub = part[part["threads"] == t]
        for m in _methods(sub):
            g = sub[sub["method"] == m].sort_values("K")
            y = 100 * g["peak_fraction"].to_numpy(float)
            # Above the line is impossible against a compute ceiling; the read
            # bound of a row that must read float activations (binarize_*, a
            # whole binary layer: read_bytes) is memory's, which activations
            # still in cache beat (the sweep's suspect rule leaves it out too).
            read_bound = m in BINARIZING or ("read_bytes" in g and g["read_bytes"].notna().any())
            above = False if read_bound else y > 100 * PEAK_TOLERANCE
            bad = not_a_result(g, "time") | above
            ax.plot(g["K"], y, lw=1.6, label=text(m), color=method_color(m))
            _points(ax, g["K"], y, bad, method_color(m))
            any_bad |= bool(bad.any())
        ax.set_xscale("log", base=2)
        _plain_log_axis(ax.xaxis)
        ax.set_xticks(sorted(sub["K"].unique()))
        ax.set_xlabel("K = kernel² · channels")
        ax.set_ylabel("% of probed peak")
        ax.axhline(100, color="#333", lw=0.8, ls=":")
        ax.set_ylim(0, max(110, ax.get_ylim()[1]))   # the peak line always in view
        ax.set_title(f"{t} thread{'s' if t != 1 else ''}", fontsize=10)
        ax.grid(True, alpha=0.3)
    _marker_key(axes, any_bad)
    _legend(fig, axes)
    caption = (f"Run {str(run_id)[:8]} against its own probe, at the same thread count: float "
               "methods against the FMA loop, xnor methods against the popcount loop (each "
               "loop timed in the same turns as the rows where the run did so), binarize_* "
               "against the lower of popcount and what the read bandwidth allows (they must "
               "read the float activations). Dotted line: the probed peak; a point above it "
               "is suspect, unless the row must read float activations (binarize_*, binary "
               "layers): those may have stayed in cache")
    caption += f" (fixed: {_fixed_text(fixed)})." if fixed else "."
    if any_bad:
        caption += " Hollow points are not results (noisy, busy or suspect)."
    others = sorted(set(rows["run_id"].astype(str)) - {str(run_id)})
    unreliable = [r for r in others if trust and r in trust and trust[r].probe_unreliable]
    if unreliable:
        caption += (" Left out, their probe unreliable: run "
                    + ", ".join(r[:8] for r in unreliable) + ".")
    with_peaks = set(rows.loc[rows["peak_fraction"].notna(), "run_id"].astype(str))
    rest = [r for r in others if r in with_peaks and " " not in r]
    if rest:
        caption += (" Other runs of this host, each with its own probe, are in the table: "
                    + ", ".join(r[:8] for r in rest) + ".")
    return _figure("Fraction of peak", fig, caption)


SHAPE_COLS = ["channels", "filters", "kernel", "batch", "out_size"]


def shared_shapes(long):
    """Shapes (channels, filters, kernel, batch, out_size) that at least two
    hosts measured, with any key method: what a cross-device chart shows."""
    if long.empty:
        return []
    counts = long.groupby(SHAPE_COLS)["host"].nunique()
    return sorted((tuple(k) for k in counts[counts >= 2].index),
                  key=lambda s: (s[1], s[2], s[3], s[4], s[0]))


def comparison(long, hosts, emulated=()):
    """Grouped bars, a figure per key method: per shape that two or more
    hosts measured, each host's speedup over its own float_blas (xnor_64 at
    1 thread, the _omp methods at all threads). Bars that are not results
    are hollow; whiskers are the 95 % interval; emulated hosts are hatched
    and never set the y scale. A list, empty when there is nothing to draw."""
    shapes = shared_shapes(long)
    if not shapes:
        return []
    if len(shapes) > 16:
        shapes = shapes[-16:]   # the largest; the table has every one
    present = [h for h in hosts if h in set(long["host"])]
    out = []
    # One figure per method (rather than panels side by side) so each stays
    # legible at page width however many hosts and shapes there are.
    for m in KEY_METHODS:
        level = "1" if not m.endswith("_omp") else "all"
        d = long[(long["method"] == m) & (long["level"] == level) & long["speedup"].notna()]
        if d.empty:
            continue
        fig, (ax,) = _new(width=max(3.8, 0.22 * len(shapes) * len(present) + 1.3),
                          height=3.4, legend=1.9, bottom=0.95)
        drawn = [_host_bars(ax, d, h, i, shapes, present, hosts, emulated)
                 for i, h in enumerate(present)]
        any_bad = any(bool(bad.any()) for _, _, _, _, bad in drawn)
        top = _bar_scale(drawn)
        _cut_tall_bars(ax, drawn, top)
        ax.axhline(1, color="#333", lw=0.8, ls=":")
        ax.set_xticks(np.arange(len(shapes)))
        ax.set_xticklabels([_short_shape(s, shapes) for s in shapes], fontsize=8)
        ax.set_ylabel("speedup over own float_blas (×)")
        ax.grid(True, axis="y", alpha=0.3)
        if any_bad:
            ax.bar([0], [0], 0, color="none", edgecolor="#555", label="hollow: not a result")
        _legend(fig, [ax])
        fit_ticklabels(fig, ax.xaxis)
        threads = "1 thread" if level == "1" else "all threads"
        out.append(_figure(f"{m} ({threads}): speedup over each host's own float_blas", fig,
                           _comparison_caption(drawn, top, any_bad, set(emulated) & set(present))))
    return out


def _host_bars(ax, d, h, i, shapes, present, hosts, emulated):
    """One host's bars and whiskers; returns (emulated, xs, y, whisker tops, not-a-result)."""
    width = 0.8 / max(1, len(present))
    dh = d[d["host"] == h].set_index(SHAPE_COLS)
    cells = [dh.loc[s] if s in dh.index else None for s in shapes]
    y = np.array([np.nan if c is None else float(c["speedup"]) for c in cells])
    lo = np.array([np.nan if c is None else float(c.get("speedup_low", np.nan)) for c in cells])
    hi = np.array([np.nan if c is None else float(c.get("speedup_high", np.nan)) for c in cells])
    bad = np.array([c is not None and c.get("shaky") == True for c in cells])  # noqa: E712
    name = text(h, 24) + (" (emulated)" if h in emulated else "")
    color = host_color(hosts.index(h) if h in hosts else i)
    xs = np.arange(len(shapes)) + (i - (len(present) - 1) / 2) * width
    for j in range(len(shapes)):
        if not np.isfinite(y[j]):
            continue
        ax.bar(xs[j], y[j], width, color=color if not bad[j] else "none",
               edgecolor=color if bad[j] else ("#333" if h in emulated else "white"),
               linewidth=1.3 if bad[j] else 0.8, hatch="//" if h in emulated else None,
               label=name if j == int(np.nanargmax(np.isfinite(y))) else None,
               gid="not-a-result" if bad[j] else "result")
    ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(y)
    if ok.any():
        ax.errorbar(xs[ok], y[ok], yerr=[np.clip(y[ok] - lo[ok], 0, None),
                                         np.clip(hi[ok] - y[ok], 0, None)],
                    fmt="none", ecolor="#333", elinewidth=0.8, capsize=1.5)
    return h in emulated, xs, y, np.where(ok, hi, y), bad


def _cut_tall_bars(ax, drawn, top):
    """Real devices' results set the scale; a taller bar (an emulator, or a
    figure that is not a result) is cut at the top and labelled with its value."""
    if not top:
        return
    ax.set_ylim(0, top)
    for _, xs, y, _, _ in drawn:
        for xj, yj in zip(xs, y):
            if np.isfinite(yj) and yj > top:
                # Upright along the bar, so neighbours' labels never collide.
                ax.annotate(f"{sig_text(yj)}↑", (xj, top), xytext=(0, -3),
                            textcoords="offset points", ha="center", va="top", rotation=90,
                            fontsize=7, color="#333",
                            bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none",
                                      alpha=0.8))


def _comparison_caption(drawn, top, any_bad, any_emulated):
    caption = ("Bars are ratios inside each host's own run: compare heights, not raw "
               "times. Whiskers: 95 % interval. Dotted line: as fast as float_blas. Only "
               "shapes two or more hosts measured.")
    if any_bad:
        caption += (" Hollow bars are not results: noisy on either side, timed on a busy "
                    "host, or suspect.")
    if any_emulated:
        caption += " Hatched: an emulated host."
    if top and any(np.nanmax(np.append(y, 0)) > top for _, _, y, _, _ in drawn):
        caption += (" The real devices' results set the scale; a bar above it is cut and "
                    "labelled with its value.")
    return caption


def _bar_scale(drawn):
    """The y limit of a bar chart: the real hosts' results with their
    intervals; failing those, the real hosts' bars; failing those, all bars.
    `drawn`: (emulated, x, y, top of whisker, not a result) per host."""
    def most(values):
        values = [v for v in values if np.isfinite(v)]
        return max(values) * 1.15 if values else None
    real = [d for d in drawn if not d[0]]
    return (most([v for _, _, y, hi, bad in real for v in hi[~bad]])
            or most([v for _, _, y, _, _ in real for v in y])
            or most([v for _, _, y, _, _ in drawn for v in y]))


def sig_text(v):
    return f"{v:.3g}×"


def fit_ticklabels(fig, axis, rotation=45):
    """Tick labels that do not overlap: as they are if they fit, else
    rotated (x only), else every k-th one shown (the rest hidden)."""
    labels = [t for t in axis.get_ticklabels() if t.get_text()]
    if len(labels) < 2 or not ticklabels_overlap(fig, axis):
        return
    if axis.axis_name == "x":
        for t in labels:
            t.set_rotation(rotation)
            t.set_ha("right")
            t.set_rotation_mode("anchor")
        if not ticklabels_overlap(fig, axis):
            return
    for step in range(2, len(labels) + 1):
        for i, t in enumerate(labels):
            t.set_visible(i % step == 0)
        if not ticklabels_overlap(fig, axis):
            return


def ticklabels_overlap(fig, axis):
    """True when two visible tick labels of `axis` overlap. Level labels
    are compared by their boxes; slanted ones (parallel strips) by the gap
    between neighbouring ticks across the slant against the text height."""
    renderer = fig.canvas.get_renderer()
    labels = [t for t in axis.get_ticklabels() if t.get_text() and t.get_visible()]
    if len(labels) < 2:
        return False
    vertical = axis.axis_name == "y"
    angle = labels[0].get_rotation() % 180
    if not vertical and angle not in (0, 90):
        ax = axis.axes
        pos = sorted(ax.transData.transform([(t.get_position()[0], 0) for t in labels])[:, 0])
        height = max(t.get_size() for t in labels) * fig.dpi / 72 * 1.2   # one line of text
        return bool(min(np.diff(pos)) * np.sin(np.radians(angle)) < height * 0.95)
    boxes = [t.get_window_extent(renderer) for t in labels]
    boxes.sort(key=lambda b: b.y0 if vertical else b.x0)
    return any((b.y0 < a.y1 - 0.5) if vertical else (b.x0 < a.x1 - 0.5)
               for a, b in zip(boxes, boxes[1:]))


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
    any_bad = False
    for i, m in enumerate(methods):
        dm = d[d["method"] == m].drop_duplicates("layer").set_index("layer")
        bad = dict(zip(dm.index, not_a_result(dm, "time")))
        color = method_color(m)
        bars = ax.barh(y + (i - (len(methods) - 1) / 2) * bar,
                       [dm["_ms"].get(lay, np.nan) for lay in layers], bar,
                       color=[("none" if bad.get(lay) else color) for lay in layers],
                       edgecolor=color, linewidth=1.0)
        ax.barh([0], [0], 0, color=color, label=text(m))   # a filled swatch in the legend
        for patch, lay in zip(bars.patches, layers):
            patch.set_gid("not-a-result" if bad.get(lay) else "result")
        any_bad |= any(bad.values())
    if any_bad:
        ax.barh([0], [0], 0, color="none", edgecolor="#555", label="hollow: not a result")
    ax.set_yticks(y)
    ax.set_yticklabels([text(v, 28) for v in layers], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("median time (ms, log)")
    ax.grid(True, axis="x", alpha=0.3)
    _legend(fig, [ax])
    fit_ticklabels(fig, ax.yaxis)
    caption = "Layers top to bottom in model order."
    if any_bad:
        caption += (" Hollow bars are not results: their samples spread, the host was busy, "
                    "or the layer is suspect.")
    return _figure(title, fig, caption)


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
    fit_ticklabels(fig, ax.xaxis, rotation=30)
    return _figure(title, fig, f"Shape {_fixed_text(dict(zip(SLICE_KEYS, shape)))}; "
                  f"commits oldest to newest by commit date.")


def accuracy_bars(df):
    """Test accuracy of each network and evaluation, per accuracy run, as
    points on an axis that spans the values (not 0-100 %, where 92 and 91
    look alike), each labelled, with binary − float in points written beside
    each run: the difference is what the figure is about."""
    d = df[df["accuracy"].notna()]
    if d.empty:
        return None
    runs = list(dict.fromkeys(zip(d["host_label"], d["run_id"])))[:12]
    evals = list(dict.fromkeys(zip(d["network"], d["evaluation"])))[:6]
    fig, (ax,) = _new(width=max(3.6, 1.3 * len(runs) + 1.2), height=3.2, legend=2.4,
                      bottom=0.6)
    step = 0.8 / max(1, len(evals))
    x = np.arange(len(runs))
    values = []
    for i, (net, ev) in enumerate(evals):
        y = []
        for host, run in runs:
            v = d[(d["host_label"] == host) & (d["run_id"] == run) & (d["network"] == net)
                  & (d["evaluation"] == ev)]["accuracy"]
            y.append(100 * float(v.iloc[0]) if len(v) else np.nan)
        xs = x + (i - (len(evals) - 1) / 2) * step
        ax.plot(xs, y, ls="none", marker="os^Dv<"[i % 6], ms=7,
                color=_PALETTE[i % len(_PALETTE)], label=text(f"{net}: {ev}", 36))
        for xj, yj in zip(xs, y):
            if np.isfinite(yj):
                ax.annotate(f"{yj:.1f}", (xj, yj), xytext=(0, 6), textcoords="offset points",
                            ha="center", fontsize=7)
        values += [v for v in y if np.isfinite(v)]
    for j, (host, run) in enumerate(runs):
        r = d[(d["host_label"] == host) & (d["run_id"] == run)]
        fl = r[r["network"] == "float"]["accuracy"]
        bi = r[r["network"] == "binary"]["accuracy"]
        if len(fl) and len(bi):
            ax.annotate(f"binary − float\n{100 * (bi.iloc[0] - fl.iloc[0]):+.1f} points",
                        (x[j], 0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7,
                        color="#333")
    lo, hi = min(values), max(values)
    pad = max(1.0, 0.5 * (hi - lo))
    # Room below for the difference label, above for the value labels.
    ax.set_ylim(max(0.0, lo - 2.2 * pad), min(100.0, hi + pad) + 0.3 * pad)
    ax.set_xlim(-0.6, len(runs) - 0.4)
    ax.set_xticks(x)
    ax.set_xticklabels([text(h, 16) + f"\n{r[:8]}" for h, r in runs], fontsize=7)
    ax.set_ylabel("test accuracy (%; axis not from 0)")
    ax.grid(True, axis="y", alpha=0.3)
    _legend(fig, [ax])
    fit_ticklabels(fig, ax.xaxis)
    return _figure("Test accuracy", fig, "Per host and run: the float network, its binary twin "
                   "in numpy, and the binary twin through the xnor kernel. The axis spans the "
                   "measured values, not 0–100 %, so a difference of a point is visible; the "
                   "figure under each run is binary − float in percentage points.")
