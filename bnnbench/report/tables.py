"""The report's tables as pandas DataFrames (numbers for the CSV files),
each with the formatting the HTML and the terminal use.

Speedups here are always the `speedup` column frame.add_speedups made
inside one run; cross-host numbers are ratios of those, or of throughputs.
"""
import math
import re
from dataclasses import dataclass, field

import pandas as pd

from .terminal import METHOD_ORDER, method_sort, sweep_table
from ..measure.trust import row_is_shaky
from .data import BASELINE, SHAPE, with_thread_level

KEY_METHODS = ("xnor_64", "xnor_64_omp", "binarize_xnor_64_omp")
# What a row carries about how far its speedup can be trusted (data.mark_shaky).
TRUST_COLUMNS = ("speedup_low", "speedup_high", "shaky", "shaky_why", "noisy", "busy",
                 "suspect")
LEVEL_ORDER = {"1": 0, "all": 99}


@dataclass
class Table:
    name: str              # CSV file stem; also the HTML anchor
    title: str
    df: pd.DataFrame       # numbers, as written to the CSV
    caption: str = ""
    formats: dict = field(default_factory=dict)   # column -> value -> str
    shown: list = None     # columns the page shows (default all); the CSV has every one
    # column -> one display string per row, in place of the formatted number
    # (e.g. a speedup with its interval); the CSV keeps the number.
    text: dict = field(default_factory=dict)
    # column -> one bool per row: the cell is not a result (shown greyed, its
    # text says why).
    muted: dict = field(default_factory=dict)

    def _shown(self):
        return self.df[self.shown] if self.shown else self.df

    def cells(self):
        """Header and rows of display strings (escaped later by the template)."""
        df = self._shown()
        cols = list(df.columns)
        formats = {c: self.formats.get(c) or (_whole if _integral(df[c]) else None)
                   for c in cols}
        rows = []
        for i, rec in enumerate(df.itertuples(index=False)):
            rows.append([self.text[c][i] if c in self.text and self.text[c][i] is not None
                         else fmt_cell(v, formats[c]) for c, v in zip(cols, rec)])
        return [str(c) for c in cols], rows

    def cell_classes(self):
        """Per row, per shown column: 'muted' for a cell that is not a result."""
        cols = list(self._shown().columns)
        return [["muted" if c in self.muted and bool(self.muted[c][i]) else ""
                 for c in cols] for i in range(len(self.df))]

    def numeric_columns(self):
        df = self._shown()
        return [pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool for c in df.columns]


def _integral(col):
    """A float column holding whole numbers only (integers with gaps, which
    pandas stores as float): shown as 5, not 5.00."""
    if not pd.api.types.is_float_dtype(col):
        return False
    v = col.dropna()
    return len(v) > 0 and bool(((v % 1 == 0) & (v.abs() < 1e15)).all())


def _whole(v):
    return f"{v:.0f}"


def is_missing(v):
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def fmt_cell(v, fmt=None):
    if is_missing(v):
        return "–"
    if fmt is not None:
        try:
            return fmt(v)
        except (TypeError, ValueError):
            return str(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return sig(v)
    return str(v)


def sig(v, digits=3):
    """3 significant digits without scientific notation for ordinary sizes."""
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e6:
        mag = int(math.floor(math.log10(abs(v))))
        return f"{v:.{max(0, digits - 1 - mag)}f}"
    return f"{v:.{digits - 1}e}"


def times(v):
    return f"{sig(v)}×"


def speedup_text(value, low=None, high=None, why=None):
    """'17.7× (17.1–18.3)': a speedup and its 95 % interval; a shaky one
    reads as what it is: 'not a result — noisy (28.8×, 3.1–60)'. Only the
    kind of reason is shown ('suspect', not which row made it so); tables
    keep the whole reason in their CSV."""
    if is_missing(value):
        return "–"
    why = str(why).split(":")[0] if why else None
    band = (f"{sig(low)}–{sig(high)}" if not is_missing(low) and not is_missing(high)
            else "")
    if why:
        return f"not a result — {why} ({times(value)}" + (f", {band})" if band else ")")
    return times(value) + (f" ({band})" if band else "")


def percent(v):
    return f"{v:.0f} %" if abs(v) >= 10 else f"{v:.1f} %"


# ------------------------------------------------------------------ rooms

def room_table(rows, host):
    """The sweep table of one host: what bnnbench sweep prints, from the rows
    the report chose, naming the run each row came from."""
    rows = method_sort(rows)
    out = sweep_table(rows, extra=("batch",))
    out["run"] = rows["run_id"].map(lambda r: " ".join(x[:8] for x in str(r).split())).values
    if "n_runs" in rows:
        out["n_runs"] = rows["n_runs"].values
    return Table(f"room_{_slug(host)}", f"All measurements on {host}", out,
                 caption="speedup = float_blas median / method median at the same shape and "
                         "thread count, in the same run. Throughput = 2·M·N·K / median time.",
                 formats={"speedup": times, "iqr_%": percent, "%peak": percent})


# -------------------------------------------------------------- comparison

def comparison_long(sweep, methods=KEY_METHODS):
    """Per host, shape, method and thread level: median time, speedup over the
    host's own float_blas, throughput. `level` is 1, all (the most threads
    that host ran) or an explicit count."""
    df = with_thread_level(sweep)
    df = df[df["method"].isin(methods)]
    if df.empty:
        return pd.DataFrame(columns=["host", "emulated", "method", "level", "threads", *SHAPE,
                                     "median_ms", "speedup", "gops", *TRUST_COLUMNS])
    df = method_sort(df, extra=("host_label",))
    missing = {"speedup_low": float("nan"), "speedup_high": float("nan"), "shaky": False,
               "shaky_why": None, "noisy": False, "busy": False, "suspect": False}
    return pd.DataFrame({
        "host": df["host_label"], "emulated": df["host_emulated"], "method": df["method"],
        "level": df["level"], "threads": df["threads"],
        **{k: df[k] for k in SHAPE},
        "median_ms": df["median_s"] * 1e3, "speedup": df["speedup"], "gops": df["gops"],
        **{c: df[c] if c in df else missing[c] for c in TRUST_COLUMNS},
    }).reset_index(drop=True)


def _level_key(s):
    return s.map(lambda v: LEVEL_ORDER.get(v, int(v) if str(v).isdigit() else 50))


def comparison_wide(long, hosts, value="speedup"):
    """Rows: shape x method x thread level; one column per host."""
    if long.empty:
        return pd.DataFrame()
    idx = ["channels", "filters", "kernel", "batch", "out_size", "method", "level"]
    wide = long.pivot_table(index=idx, columns="host", values=value, aggfunc="first",
                            dropna=False)
    wide = wide.dropna(how="all").reset_index()
    wide = wide.assign(_m=wide["method"].map(METHOD_ORDER).fillna(99), _l=_level_key(wide["level"]))
    wide = wide.sort_values(["filters", "kernel", "batch", "out_size", "channels", "_m", "_l"])
    cols = idx + [h for h in hosts if h in wide.columns]
    wide = wide[cols].reset_index(drop=True)
    wide.columns.name = None
    return wide


WIDE_INDEX = ["channels", "filters", "kernel", "batch", "out_size", "method", "level"]


def speedup_comparison(sweep, hosts, shapes=None):
    """The wide table of speedups, one column per host; `shapes` (tuples of
    channels, filters, kernel, batch, out_size) limits it to those. A cell
    that is not a result is greyed and says why; the CSV has each host's
    interval and reason in columns of their own."""
    long = comparison_long(sweep)
    if shapes is not None:
        keys = long[WIDE_INDEX[:5]].apply(tuple, axis=1) if not long.empty else []
        long = long[[k in set(shapes) for k in keys]] if len(long) else long
    wide = comparison_wide(long, hosts)
    text, muted = {}, {}
    if not wide.empty:
        by_key = {tuple(r[k] for k in WIDE_INDEX) + (r["host"],): r
                  for r in long.to_dict("records")}
        for h in [h for h in hosts if h in wide.columns]:
            cells = [by_key.get(tuple(k) + (h,)) for k in wide[WIDE_INDEX].itertuples(index=False)]
            shaky = [c is not None and c.get("shaky") == True for c in cells]  # noqa: E712
            text[h] = [None if c is None else
                       speedup_text(c["speedup"], c.get("speedup_low"), c.get("speedup_high"),
                                    c.get("shaky_why") if bad else None)
                       for c, bad in zip(cells, shaky)]
            muted[h] = shaky
            wide[f"{h}: 95 % interval"] = [
                None if c is None or is_missing(c.get("speedup_low")) else
                f"{sig(c['speedup_low'])}-{sig(c['speedup_high'])}" for c in cells]
            wide[f"{h}: not a result"] = [c.get("shaky_why") if bad else None
                                          for c, bad in zip(cells, shaky)]
    shown = [c for c in wide.columns if not str(c).endswith((": 95 % interval",
                                                              ": not a result"))]
    return Table("compare_speedup", "Speedup over each host's own float_blas", wide,
                 caption="Each cell is a ratio measured inside one run on that host: float_blas "
                         "median / method median at the same shape and thread count, with its "
                         "95 % interval. level 1 = one thread; all = the most threads that "
                         "host ran (its core count by default), so hosts with different core "
                         "counts line up. A greyed cell is not a result.",
                 formats={h: times for h in hosts}, shown=shown or None, text=text,
                 muted=muted), long


def reference_host(ds):
    """The host the throughput ratios divide by: the real (not emulated)
    host with the most sweep rows, ties broken by label."""
    if ds.reference is not None:
        return ds.reference
    if ds.sweep.empty:
        return None
    counts = ds.sweep.groupby("host_label").size()
    emu = ds.sweep.groupby("host_label")["host_emulated"].any()
    ranked = sorted(counts.index, key=lambda h: (bool(emu[h]), -counts[h], h))
    return ranked[0] if ranked else None


def throughput_ratios(sweep, hosts, ref, methods=(BASELINE,) + KEY_METHODS):
    """Throughput of each host / throughput of `ref`, per shape, method and level."""
    long = comparison_long(sweep, methods)
    wide = comparison_wide(long, hosts, value="gops")
    if wide.empty or ref not in wide:
        return Table("compare_throughput", "Throughput relative to " + str(ref), pd.DataFrame())
    others = [h for h in hosts if h in wide.columns]
    out = wide.copy()
    for h in others:
        out[h] = wide[h] / wide[ref]
    out = out.dropna(subset=[h for h in others if h != ref], how="all") if len(others) > 1 else out
    out = out.reset_index(drop=True)
    # A ratio of two times is no firmer than either: greyed when either row's
    # own samples spread, or it was timed busy or in a suspect shape.
    own = {tuple(r[k] for k in WIDE_INDEX) + (r["host"],):
           any(r.get(k) == True for k in ("noisy", "busy", "suspect"))  # noqa: E712
           for r in long.to_dict("records")}
    keys = [tuple(k) for k in out[WIDE_INDEX].itertuples(index=False)]
    muted = {h: [own.get(k + (h,), False) or own.get(k + (ref,), False) for k in keys]
             for h in others}
    text = {h: [f"not a result — noisy, busy or suspect ({times(v)})"
                if bad and not is_missing(v) else None for v, bad in zip(out[h], muted[h])]
            for h in others}
    return Table("compare_throughput", f"Throughput relative to {ref}", out,
                 caption=f"Throughput on each host divided by throughput on {ref} for the same "
                         f"shape, method and thread level (> 1: faster than {ref}). Throughput "
                         f"is 2·M·N·K / median time for float and xnor alike. A greyed cell "
                         f"divides a time that is not a result (on either host).",
                 formats={h: times for h in others}, text=text, muted=muted)


def compare_hosts(sweep, a, b, extra_keys=()):
    """bnnbench compare: per method, shape and thread level, both hosts'
    median times and speedups, and the time ratio a / b. extra_keys: shape
    columns beyond the GEMM's (a whole layer's input size, stride, padding)."""
    df = with_thread_level(sweep)
    cols = ["method", "level"] + SHAPE + list(extra_keys)
    # "noisy" here is the trust rule: spread on either side of the speedup,
    # a wide interval, a busy host or a suspect shape (bnnbench.measure.trust; the
    # report's loader adds the float_blas side for older files as "shaky").
    df = df.assign(noisy=df["shaky"].map(lambda v: v == True) if "shaky" in df  # noqa: E712
                   else [row_is_shaky(r) for r in df.to_dict("records")])
    keep = cols + ["threads", "median_s", "speedup", "noisy"]
    da = df[df["host_label"] == a][keep]
    db = df[df["host_label"] == b][keep]
    m = da.merge(db, on=cols, suffixes=("_a", "_b"))
    m = method_sort(m.assign(threads=m["threads_a"]))
    out = pd.DataFrame({
        "method": m["method"], "channels": m["channels"], "filters": m["filters"],
        "kernel": m["kernel"], "batch": m["batch"], "out_size": m["out_size"], "K": m["K"],
        "threads_a": m["threads_a"], "threads_b": m["threads_b"],
        "median_ms_a": m["median_s_a"] * 1e3, "median_ms_b": m["median_s_b"] * 1e3,
        "speedup_a": m["speedup_a"], "speedup_b": m["speedup_b"],
        "time_a/b": m["median_s_a"] / m["median_s_b"],
        # Which side's speedup is not a result (row_is_shaky).
        "noisy": [("A" if na is True else "") + ("B" if nb is True else "")
                  for na, nb in zip(m["noisy_a"], m["noisy_b"])],
    }).reset_index(drop=True)
    return out


# ------------------------------------------------------------------ others

def generic(df, name, title, caption="", drop_prefixes=("host_",), keep=("host_label",)):
    """A table of every scalar column of a kind we only know the rows of."""
    if df is None or df.empty:
        return Table(name, title, pd.DataFrame(), caption)
    cols = [c for c in df.columns if c in keep or not (
        c.startswith(drop_prefixes) or c in ("path", "git_commit", "started_ts", "finished_at",
                                             "run_kind", "status"))]
    cols = [c for c in cols if not df[c].map(lambda v: isinstance(v, (list, dict))).any()]
    out = df[cols].rename(columns={"host_label": "host"})
    return Table(name, title, out.reset_index(drop=True), caption)


def _slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_")[:40] or "host"
