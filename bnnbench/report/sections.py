"""The report's sections: each a small function from the Dataset to a Section
that shows its data when present and says plainly when there is none."""
import importlib
import os

import pandas as pd

from . import data, figures, layers, networks, tables
from .page import Section
from .data import BASELINE, finite, with_thread_level

POPCOUNT_FLAGS = {
    "avx512_vpopcntdq": "AVX-512 VPOPCNTDQ (vector popcount)",
    "avx512vpopcntdq": "AVX-512 VPOPCNTDQ (vector popcount)",
    "avx512_bitalg": "AVX-512 BITALG", "avx512bitalg": "AVX-512 BITALG",
    "popcnt": "scalar POPCNT",
    "asimd": "ARMv8 Advanced SIMD (NEON, vector CNT)", "neon": "NEON (vector CNT)",
    "sve": "SVE",
}


# ------------------------------------------------------------------ helpers

def _get(d, *path):
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _num(v):
    return float(v) if finite(v) and not isinstance(v, bool) else None


def _gib(v):
    v = _num(v)
    return f"{v / 2**30:.1f} GiB" if v else None


def _flags(host):
    flags = host.get("cpu_flags")
    if isinstance(flags, list):
        return [str(f) for f in flags]
    if isinstance(flags, str):
        return flags.split()
    return []


def popcount_support(host):
    """The hardware popcount a host's flags show, strongest first: the usual
    answer to 'why is xnor this fast here'."""
    flags = set(_flags(host))
    found = []
    for flag, name in POPCOUNT_FLAGS.items():
        if flag in flags and name not in found:
            found.append(name)
    return found


def host_card(host):
    """(field, value) pairs from a fingerprint; absent fields are left out."""
    rows = []

    def add(name, value):
        if value not in (None, "", [], {}):
            text = str(value)
            rows.append((name, text if len(text) <= 300 else text[:299] + "…"))

    add("CPU", host.get("cpu_brand"))
    add("vendor", host.get("cpu_vendor"))
    add("architecture", host.get("arch"))
    add("relevant CPU flags", " ".join(_flags(host)) or "none recorded")
    add("hardware popcount", ", ".join(popcount_support(host)) or "none recorded")
    phys, logical = host.get("physical_cores"), host.get("logical_cores")
    if phys is not None or logical is not None:
        add("cores", f"{phys} physical, {logical} logical")
    add("memory", _gib(host.get("memory_bytes")))
    freq = _num(_get(host, "frequency_mhz", "max")) or _num(_get(host, "frequency_mhz", "current"))
    add("frequency", f"{freq:.0f} MHz" if freq else None)
    add("OS", host.get("os"))
    py, npv = host.get("python"), host.get("numpy")
    add("Python / numpy", f"{py} / {npv}" if py or npv else None)
    blas = host.get("blas") if isinstance(host.get("blas"), dict) else {}
    if blas:
        parts = [blas.get("library"), blas.get("version"),
                 f"{blas['threads']} threads" if blas.get("threads") else None,
                 f"arch {blas['architecture']}" if blas.get("architecture") else None]
        add("BLAS", ", ".join(str(p) for p in parts if p))
    build = host.get("build") if isinstance(host.get("build"), dict) else {}
    if build:
        add("kernel build", ", ".join(str(p) for p in (
            build.get("compiler"), f"path {build['kernel_path']}" if build.get("kernel_path")
            else None, "OpenMP" if build.get("openmp") is True else "no OpenMP") if p))
        add("compiler flags", build.get("cflags"))
    add("OMP_NUM_THREADS", host.get("omp_num_threads_env"))
    for name, value in probe_lines(host.get("probe")):
        add(name, value)
    if host.get("emulated") is True:
        add("emulated by", host.get("emulator") or "an emulator")
    add("hostname", host.get("hostname"))
    return rows


PROBE_UNITS = {"popcount_gops": "Gbit-op/s popcount", "fma_gflops": "GFLOP/s FMA",
               "copy_gbs": "GB/s copy", "read_gbs": "GB/s read", "pack_gbs": "GB/s sign+pack"}


def _peaks(d):
    if not isinstance(d, dict):
        return None
    parts = [f"{sig(_num(d[k]))} {u}" for k, u in PROBE_UNITS.items() if _num(d.get(k))]
    return ", ".join(parts) or None


def probe_lines(probe):
    """Card rows for the roofline probe: flat peaks, or peaks per thread
    count ({"threads": {"1": {...}, "4": {...}}}) with the popcount used."""
    if not isinstance(probe, dict):
        return []
    rows = []
    per_thread = probe.get("threads")
    if isinstance(per_thread, dict):
        for t, d in sorted(per_thread.items(), key=lambda kv: (len(str(kv[0])), str(kv[0]))):
            peaks = _peaks(d)
            if peaks:
                rows.append((f"probed peaks, {t} thread{'' if str(t) == '1' else 's'}", peaks))
    else:
        peaks = _peaks(probe)
        if peaks:
            rows.append(("probed peaks", peaks))
    if rows and isinstance(probe.get("popcount_method"), str):
        rows.append(("probe popcount", probe["popcount_method"]))
    return rows


def sig(v):
    return tables.sig(v)


def _largest(rows):
    """Rows at the host's largest shape (most M·N·K)."""
    if rows.empty:
        return rows
    size = rows["M"] * rows["N"] * rows["K"]
    top = rows[size == size.max()]
    return top


def _row_at(rows, method, level):
    d = rows[(rows["method"] == method) & (rows["level"] == level) & rows["speedup"].notna()]
    return None if d.empty else d.iloc[0]


def _why(row):
    """Why a row's speedup is not a result (data.mark_shaky), or None."""
    why = row.get("shaky_why") if row is not None else None
    return why if isinstance(why, str) and why else None


def speedup_words(row):
    """A row's speedup with its interval, marked when it is not a result."""
    return tables.speedup_text(row["speedup"], row.get("speedup_low"), row.get("speedup_high"),
                               _why(row))


def best_row(rows):
    """The host's highest speedup among rows that are not shaky, or None."""
    d = rows[(rows["method"] != BASELINE) & rows["speedup"].notna()]
    if "shaky" in d:
        d = d[d["shaky"] != True]  # noqa: E712 - a shaky row is no record
    return d.sort_values("speedup").iloc[-1] if not d.empty else None


def trust_words(ds, label):
    """(short text for the glance, [warning sentences]) about the runs a
    host's numbers come from: busy, probe unreliable, shaky rows."""
    short, warn = [], []
    for rt in ds.runs_shown(label):
        if rt.host_busy:
            short.append(f"busy run {rt.short}")
            warn.append(f"{label}: run {rt.short} ({rt.started_at}) was timed while other "
                        f"processes were using the host"
                        + (f" ({rt.evidence})" if rt.evidence else "")
                        + "; its rows timed under load are marked, not shown as results.")
        if rt.probe_unreliable:
            short.append(f"probe of {rt.short} unreliable")
            warn.append(f"{label}: the peak probe of run {rt.short} is unreliable "
                        f"({rt.probe_unreliable}); its fraction-of-peak figures are left out.")
    rows = ds.sweep[(ds.sweep["host_label"] == label) & (ds.sweep["method"] != BASELINE)
                    & ds.sweep["speedup"].notna()]
    if "shaky" in rows and len(rows):
        n = int(rows["shaky"].sum())
        short.append(f"{n} of {len(rows)} speedups not results" if n else "no shaky speedups")
    return "; ".join(short), warn


# -------------------------------------------------------------- the answer

GLANCE_CELLS = (("xnor_64", "1", "xnor_64 (1 thread)"),
                ("xnor_64_omp", "all", "xnor_64_omp (all)"),
                ("binarize_xnor_64_omp", "all", "binarize_xnor_64_omp (all)"))


def glance(ds):
    """The first thing a reader sees: per host, what binarization bought at
    its largest measured shape, and the hardware that explains it. A figure
    that is noisy on either side, timed on a busy host or suspect is shown
    greyed and says why, never as a result."""
    s = Section("glance", "At a glance",
                intro="Per host, at the largest shape it measured: how many times faster "
                      "the binary kernels ran than the same host's float_blas (the platform "
                      "BLAS) — a ratio inside one run, with its 95 % interval in brackets — "
                      "and the hardware behind the number. A greyed cell is not a result: "
                      "its samples spread (on either side of the ratio), the host was busy, "
                      "or the shape shows an impossible pattern.",
                empty="No sweep results were found. Run `bnnbench sweep` on each device, copy "
                      "the results/ directories to one place and pass them to bnnbench report.")
    if ds.sweep.empty:
        return s
    df = with_thread_level(ds.sweep)
    recs, text, muted = [], {}, {}
    for _, h in ds.hosts.iterrows():
        label = h["host_label"]
        rows = df[df["host_label"] == label]
        if rows.empty:
            continue
        host = h["_host"]
        top = _largest(rows)
        first = top.iloc[0]
        rec = {"host": label + (" (emulated)" if h["host_emulated"] else ""),
               "CPU": host.get("cpu_brand"), "arch": host.get("arch"),
               "threads": int(rows["threads"].max()),
               "largest M×N×K": f"{first['M']}×{first['N']}×{first['K']}"}
        for method, level, col in GLANCE_CELLS:
            row = _row_at(top, method, level)
            rec[col] = None if row is None else float(row["speedup"])
            rec[f"{col} low"] = None if row is None else row.get("speedup_low")
            rec[f"{col} high"] = None if row is None else row.get("speedup_high")
            rec[f"{col} not a result"] = _why(row)
            text.setdefault(col, []).append(None if row is None else speedup_words(row))
            muted.setdefault(col, []).append(_why(row) is not None)
        best = best_row(rows)
        rec["best (not shaky)"] = (f"{speedup_words(best)} {best['method']} at K={best['K']}, "
                                   f"batch {best['batch']}, {best['threads']} thr"
                                   if best is not None else
                                   "none: every speedup is noisy, busy or suspect")
        muted.setdefault("best (not shaky)", []).append(best is None)
        rec["trust"], warnings = trust_words(ds, label)
        for w in warnings:
            s.notices.append(("warn", w))
        rec["hardware popcount"] = ", ".join(popcount_support(host)) or "none recorded"
        rec["BLAS"] = _get(host, "blas", "library")
        recs.append(rec)
    for sentence in headline(recs):
        s.notices.insert(0, ("info", sentence))
    table = pd.DataFrame.from_records(recs)
    shown = [c for c in table.columns if not c.endswith((" low", " high", " not a result"))]
    s.tables.append(tables.Table("glance", "Speedup over float_blas at the largest shape",
                                 table, formats={c: tables.times for _, _, c in GLANCE_CELLS},
                                 shown=shown, text=text, muted=muted,
                                 caption="The CSV has each figure's interval (low, high) and, "
                                         "for a figure that is not a result, why."))
    if ds.hosts["host_emulated"].any():
        s.notices.append(("warn", "Hosts marked (emulated) ran under an emulator: their times "
                                  "are the emulator's, not a device's."))
    return s


def headline(recs):
    """Where binarization pays off most and least, in words, from the real
    hosts' speedup with input binarization included (the deployable number);
    only figures that are results (not shaky) are named."""
    key = "binarize_xnor_64_omp (all)"
    real = [r for r in recs if not r["host"].endswith("(emulated)") and finite(r.get(key))
            and not r.get(f"{key} not a result")]
    if not real:
        return []
    real.sort(key=lambda r: r[key])
    top, low = real[-1], real[0]

    def fig(r):
        return tables.speedup_text(r[key], r.get(f"{key} low"), r.get(f"{key} high"))
    out = [f"Binary layers, input binarization included (binarize_xnor_64_omp on all threads), "
           f"run {fig(top)} as fast as float_blas on {top['host']} "
           f"({top['CPU']}, {top['arch']}) at M×N×K {top['largest M×N×K']}."]
    if low is not top:
        same = low["largest M×N×K"] == top["largest M×N×K"]
        out.append(f"The smallest gain is on {low['host']}: {fig(low)} at "
                   f"{low['largest M×N×K']}" + ("." if same else
                                                 " — a different shape, so the two are not "
                                                 "compared here (Across devices compares "
                                                 "hosts on the shapes they share)."))
    return out


# ------------------------------------------------------------------- rooms

def room_summary(rows, host):
    """One sentence: what binarization bought here, and the hardware behind it."""
    top = _largest(with_thread_level(rows))
    first = top.iloc[0]
    parts = []
    for method, level, words in (("xnor_64", "1", "on 1 thread"),
                                 ("binarize_xnor_64_omp", "all",
                                  f"with input binarization on {top['threads'].max()} threads")):
        row = _row_at(top, method, level)
        if row is not None:
            parts.append(f"{method} {words}: {speedup_words(row)}")
    pop = ", ".join(popcount_support(host)) or "no hardware popcount flag recorded"
    blas = _get(host, "blas", "library") or "unknown"
    what = "; ".join(parts) if parts else "no xnor_64 speedups measured"
    return (f"At its largest shape (M×N×K {first['M']}×{first['N']}×{first['K']}), against "
            f"float_blas ({blas}): {what}. Popcount here: {pop}.")


def runs_used(rows, all_rows, all_runs):
    """Which of a host's sweep runs the room shows, when it has several."""
    n = all_rows["run_id"].nunique()
    if n < 2:
        return None
    if all_runs:
        return f"{n} sweep runs from this host, aggregated (--all-runs): medians over runs."
    starts = all_rows.drop_duplicates("run_id").set_index("run_id")["started_at"]
    used = rows["run_id"].value_counts()
    parts = [f"run {r[:8]} ({starts.get(r, '?')}, {k} rows)" for r, k in used.items()]
    return (f"{n} sweep runs from this host; shown, for each shape and thread count, the "
            f"newest with a float_blas baseline: {', '.join(parts)}. The others are listed "
            f"under Run files; --all-runs aggregates them all.")


ROOM_FIGURES = (("channels", "time"), ("channels", "speedup"), ("filters", "speedup"),
                ("kernel", "speedup"))


def room(ds, host_row, index):
    label = host_row["host_label"]
    host = host_row["_host"]
    emulated = bool(host_row["host_emulated"])
    s = Section(f"room-{index}", f"{label}", emulated=emulated,
                empty="No sweep rows for this host.")
    s.card = host_card(host)
    if emulated:
        emulator = host.get("emulator") or "an emulator"
        s.notices.append(("warn", f"Emulated host: these runs ran under {emulator}. Its timings "
                                  f"are those of the emulator and say nothing about a real "
                                  f"device's speed. What they do show is that every kernel "
                                  f"gives exact results on this architecture and how the "
                                  f"methods rank against each other."))
    others = {kind: df["run_id"][df["host_label"] == label].nunique()
              for kind, df in ds.other.items()}
    where = {"asv": "Across commits", "accuracy": "Accuracy", "profile": "Per-layer model profile",
             "layer": "Whole layers", "network": "Whole networks"}
    # Layer and network rows come from sweep runs: named by what they hold.
    noun = {"layer": "whole-layer", "network": "whole-network"}
    also = [f"{n} {noun.get(kind, kind)} run{'s' if n != 1 else ''} "
            f"(see {where.get(kind, kind)})" for kind, n in others.items() if n]
    if also:
        s.notices.append(("info", "Also from this host: " + ", ".join(also) + "."))
    rows = ds.sweep[ds.sweep["host_label"] == label]
    if rows.empty:
        return s   # the page says there are no sweep rows where the figures would be
    summary = room_summary(rows, host)
    s.notices.append(("info", ("Under the emulator (read the ranking, not the times): "
                               + summary[0].lower() + summary[1:]) if emulated else summary))
    all_rows = ds.sweep_all[ds.sweep_all["host_label"] == label]
    which = runs_used(rows, all_rows, ds.all_runs)
    if which:
        s.notices.append(("info", which))
    for param, value in ROOM_FIGURES:
        s.figures.extend(figures.versus(rows, param, value))
    for fig in (figures.thread_scaling(all_rows), figures.peak_fraction(rows, ds.trust)):
        if fig:
            s.figures.append(fig)
    if not any(f.title.startswith("Processing time") for f in s.figures):
        s.notices.append(("info", "Figures against channels, filters or kernel size need a "
                                  "sweep over at least two values of one of them."))
    unplotted = figures.unplotted_batches(rows)
    if unplotted:
        s.notices.append(("info", f"Batch {', '.join(map(str, unplotted))} was measured at a "
                                  f"single shape only, so no figure against a shape parameter "
                                  f"shows it; the table below has its rows."))
    for rt in ds.runs_shown(label):
        if rt.host_busy:
            s.notices.append(("warn", f"Run {rt.short} was timed while other processes used "
                                      f"the host" + (f" ({rt.evidence})" if rt.evidence else "")
                                      + ": its busy rows are hollow points in the figures "
                                        "and flagged busy in the table."))
        if rt.probe_unreliable:
            s.notices.append(("warn", f"The peak probe of run {rt.short} is unreliable "
                                      f"({rt.probe_unreliable}): its %peak is left out of the "
                                      f"figure and the table."))
    unverified = int((~rows["verified"]).sum())
    if unverified:
        s.notices.append(("warn", f"{unverified} row(s) failed the exactness check on this host; "
                                  f"they have no time and no speedup."))
    shaky = rows[(rows["method"] != BASELINE) & rows["speedup"].notna()]
    if "shaky" in shaky and shaky["shaky"].any():
        s.notices.append(("info", f"{int(shaky['shaky'].sum())} of {len(shaky)} speedups are not "
                                  f"results: noisy on either side (IQR above 10 % of the median, "
                                  f"or an interval wider than ±10 %), timed on a busy host, or "
                                  f"suspect (the flags column says which). The figures show them "
                                  f"as hollow points."))
    s.tables.append(tables.room_table(rows, label))
    return s


# -------------------------------------------------------------- comparison

def comparison(ds):
    s = Section("comparison", "Across devices",
                intro="Each host's speedup over its own float_blas — never one host's time "
                      "against another's float — and, separately, how the hosts' throughputs "
                      "compare on the same shape. Only shapes that two or more hosts measured "
                      "are compared.",
                empty="Nothing to compare: the results hold fewer than two hosts with sweep "
                      "rows on a common shape.")
    hosts = list(ds.hosts["host_label"])
    long = tables.comparison_long(ds.sweep)
    shapes = figures.shared_shapes(long)
    measured = sorted(set(ds.sweep["host_label"])) if not ds.sweep.empty else []
    if len(measured) >= 2 and not shapes:
        s.notices.append(("info", "The hosts share no measured shape, so none is compared "
                                  "here: " + "; ".join(_shapes_of(ds.sweep, h) for h in measured)
                          + ". Run the same sweep (same batch, filters and kernel) on each "
                            "to compare them."))
    if not shapes:
        return s
    sharing = set(long[[k in set(shapes) for k in long[figures.SHAPE_COLS].apply(tuple, axis=1)]]
                  ["host"])
    alone = [h for h in measured if h not in sharing]
    if alone:
        s.notices.append(("info", f"{', '.join(alone)} shares no measured shape with the other "
                                  f"hosts and is left out of this comparison "
                                  f"({'; '.join(_shapes_of(ds.sweep, h) for h in alone)})."))
    emulated = set(ds.hosts.loc[ds.hosts["host_emulated"], "host_label"])
    s.figures.extend(figures.comparison(long, hosts, emulated))
    table, _ = tables.speedup_comparison(ds.sweep, hosts, shapes)
    s.tables.append(table)
    ref = tables.reference_host(ds)
    s.tables.append(tables.throughput_ratios(ds.sweep, hosts, ref))
    if emulated:
        s.notices.append(("warn", "Throughput ratios involving an emulated host compare an "
                                  "emulator, not a device."))
    return s


def _shapes_of(sweep, host):
    """'ws: batch 8, filters 64, kernel 5, channels 1–32' (what a host's sweep covered)."""
    d = sweep[sweep["host_label"] == host]
    parts = []
    for col in ("batch", "filters", "kernel", "channels"):
        v = sorted(d[col].dropna().unique())
        parts.append(f"{col} {v[0]}" if len(v) == 1 else f"{col} {v[0]}–{v[-1]}")
    return f"{host}: " + ", ".join(parts)


# ------------------------------------------------ other kinds of results

def model_size(ds):
    s = Section("model-size", "Model size",
                intro="What binarization does to a model's weights: every parameter as float32 "
                      "against binary layers packed one bit per weight (first and last layer "
                      "kept in float, as BMXNet and XNOR-Net do). Computed from the layer "
                      "specifications, not measured on a host.",
                empty="No model-size data: this bnnbench has no model definitions "
                      "(bnnbench.models.zoo), and no run file carries model sizes.")
    df = ds.other.get("models")
    if df is not None and not df.empty:
        s.tables.append(tables.generic(df, "model_size_runs", "Model sizes in the run files"))
    sizes = _optional_table("bnnbench.models.zoo", ("summary_frame",))
    if sizes is not None and not sizes.empty:
        s.tables.append(model_size_table(sizes))
    if s.tables:
        # Each table once on the page: the published sizes are in their section.
        s.notices.append(("info", "Published model sizes (BMXNet's ResNet-18, 44.7 MB → 1.5 MB) "
                                  "are under Published figures, with their source."))
    return s


def model_size_table(sizes):
    out = sizes.copy()
    if {"float_bytes", "binary_bytes"} <= set(out):
        out.insert(out.columns.get_loc("float_bytes"), "float_MB", out["float_bytes"] / 1e6)
        out.insert(out.columns.get_loc("binary_bytes"), "binary_MB", out["binary_bytes"] / 1e6)
    return tables.Table("model_size", "Model sizes computed from the architectures", out,
                        caption="MB = 10^6 bytes. compression = float bytes / binary bytes. "
                                "MACs per image; ops counts a 64-bit xnor-popcount word "
                                "as one operation.",
                        formats={"compression": tables.times})


ACCURACY_SETTINGS = ("setting_dataset", "setting_seed", "setting_epochs", "setting_hidden",
                     "setting_binary_layers")


def accuracy(ds):
    s = Section("accuracy", "Accuracy",
                intro="What binarization costs in accuracy: a float network and its binary twin "
                      "(first and last layers float), trained the same way. The small MLP is "
                      "trained by numpy and its binary twin evaluated with numpy and through "
                      "bnnbench's xnor kernel; a zoo model (accuracy --model) is trained by "
                      "Larq and its binary twin evaluated by Larq and through bnnbench's "
                      "network runtime. Either pair must agree prediction by prediction.",
                empty="No accuracy runs in these results (run `bnnbench accuracy` on a host "
                      "and include its run file).")
    df = ds.other.get("accuracy")
    if df is None or df.empty:
        return s
    df = df.assign(accuracy=pd.to_numeric(df["accuracy"], errors="coerce"))
    settings = [c for c in ACCURACY_SETTINGS if c in df]
    for keys, d in df.groupby(["host_label", "run_id"], sort=True):
        acc = dict(zip(zip(d["network"], d["evaluation"]), d["accuracy"]))
        fl = [v for (n, _), v in acc.items() if n == "float"]
        bi = [v for (n, e), v in acc.items() if n == "binary"]
        if fl and bi and finite(fl[0]) and finite(bi[0]):
            s.notices.append(("info", f"{keys[0]} (run {keys[1][:8]}): float {100 * fl[0]:.1f} % "
                                      f"→ binary {100 * bi[0]:.1f} % "
                                      f"({100 * (bi[0] - fl[0]):+.1f} points)."))
        if "matches_reference" in d and (d["matches_reference"] == False).any():  # noqa: E712
            s.notices.append(("warn", f"{keys[0]} (run {keys[1][:8]}): the xnor kernel's "
                                      f"predictions differ from numpy's: a kernel bug on this "
                                      f"host."))
        if "agrees_with_larq" in d and (d["agrees_with_larq"] == False).any():  # noqa: E712
            n = pd.to_numeric(d.get("differing_images"), errors="coerce").max()
            s.notices.append(("warn", f"{keys[0]} (run {keys[1][:8]}): bnnbench's network "
                                      f"runtime classifies {n:.0f} test image(s) differently "
                                      f"from Larq's own evaluation of the same weights."))
    fig = figures.accuracy_bars(df)
    if fig:
        s.figures.append(fig)
    cols = {"host_label": "host", **{c: c[len("setting_"):] for c in settings},
            "network": "network", "evaluation": "evaluation"}
    out = df[list(cols)].rename(columns=cols)
    out["accuracy_%"] = 100 * df["accuracy"]
    for c in ("model", "correct", "test_samples", "matches_reference", "differing_images"):
        if c in df:
            out[c] = df[c]
    out["run"] = df["run_id"].str[:8]
    s.tables.append(tables.Table("accuracy", "Measured accuracy", out.reset_index(drop=True),
                                 formats={"accuracy_%": lambda v: f"{v:.2f}"}))
    return s


def profile(ds):
    s = Section("profile", "Per-layer model profile",
                intro="Each layer of a model lowered to its GEMM and timed by each method: where "
                      "a model's time goes, and which layers binarization speeds up. Speedups "
                      "are over float_blas on the same layer, in the same run.",
                empty="No model-profile runs in these results (run `bnnbench profile` on a host "
                      "and include its run file).")
    df = ds.other.get("profile")
    if df is None or df.empty:
        return s
    for (host, model), d in df.groupby(["host_label", "model"], sort=True):
        top = d["threads"].max()
        d = d[(d["threads"] == top) & d["median_s"].notna()]
        fig = figures.layer_bars(d.assign(_ms=d["median_s"] * 1e3),
                                 f"{host}: {model}, {top} thread{'s' if top != 1 else ''}")
        if fig:
            s.figures.append(fig)
    # Model order of layers, as the run lists them; then methods in their usual order.
    layer_pos = {k: i for i, k in enumerate(dict.fromkeys(zip(df["model"], df["layer"])))}
    d = df.assign(_m=df["method"].map(tables.METHOD_ORDER).fillna(99),
                  _l=[layer_pos[k] for k in zip(df["model"], df["layer"])])
    d = d.sort_values(["host_label", "model", "threads", "_l", "_m"], kind="stable")
    out = pd.DataFrame({
        "host": d["host_label"], "model": d["model"], "layer": d["layer"],
        "binary": d["binary"], "threads": d["threads"], "method": d["method"],
        "M": d["M"], "N": d["N"], "K": d["K"], "median_ms": d["median_s"] * 1e3,
        "speedup": d["speedup"], "verified": d["verified"], "run": d["run_id"].str[:8]})
    whole = profile_totals(df)
    if not whole.empty:
        s.tables.append(tables.Table(
            "profile_totals", "Whole network", whole,
            caption="float = float_blas on every layer; binary = the method on the binary "
                    "layers and float_blas on the float ones (first and last), as a binary "
                    "network runs them; both from the same run and thread count. A total "
                    "that sums a layer that is not a result is greyed: not a result either.",
            formats={"speedup": tables.times}, shown=[c for c in whole if c != "not a result"],
            text={"speedup": [tables.speedup_text(v, why=w) if w else None
                              for v, w in zip(whole["speedup"], whole["not a result"])]},
            muted={"speedup": list(whole["not a result"].notna())}))
    out = out.reset_index(drop=True)
    shaky = list(d["shaky"] == True) if "shaky" in d else [False] * len(d)  # noqa: E712
    s.tables.append(tables.Table(
        "profile", "Per-layer times", out, formats={"speedup": tables.times},
        text={"speedup": [tables.speedup_text(v, why=w) if bad else None
                          for v, w, bad in zip(out["speedup"], d["shaky_why"] if "shaky_why"
                                               in d else [None] * len(d), shaky)]},
        muted={"speedup": shaky}))
    for rt in {rt.run_id: rt for rt in ds.trust.values()
               if rt.run_id in set(df["run_id"]) and rt.host_busy}.values():
        s.notices.append(("warn", f"{rt.host_label}: profile run {rt.short} was timed while "
                                  f"other processes were using the host"
                                  + (f" ({rt.evidence})" if rt.evidence else "")
                                  + "; its speedups are greyed, not results."))
    return s


def profile_totals(df):
    """Whole-network float and binary times per host, model, run and threads,
    summed by bnnbench.measure.profile.totals (one rule for the CLI and the report)."""
    try:
        from ..measure.profile import totals
    except ImportError:
        return pd.DataFrame()
    recs = []
    for (host, model, run_id), d in df.groupby(["host_label", "model", "run_id"], sort=True):
        rows = d.to_dict("records")
        methods = [m for m in dict.fromkeys(d["method"]) if m != BASELINE and m in
                   tables.METHOD_ORDER]
        for t in totals(rows, methods, sorted(d["threads"].unique())):
            # A sum is no firmer than its shakiest part (either method's rows).
            parts = d[(d["threads"] == t["threads"]) & d["method"].isin([BASELINE, t["method"]])]
            why = (next((w for w in parts["shaky_why"] if isinstance(w, str)), None)
                   if "shaky_why" in parts else None)
            recs.append({"host": host, "model": model, "threads": t["threads"],
                         "method": t["method"], "float_ms": 1e3 * t["float_s"],
                         "binary_ms": 1e3 * t["binary_s"], "speedup": t["speedup"],
                         "run": run_id[:8], "not a result": why})
    return pd.DataFrame.from_records(recs)


def asv_history(ds):
    s = Section("asv", "Across commits (asv)",
                intro="asv runs the benchmark suites over the project's history: each commit "
                      "is one run on one machine. Speedups are over float_blas in the same "
                      "commit's run, so a kernel change shows as a moving ratio even when the "
                      "machine's speed drifts.",
                empty="No asv results here (pass asv's results directory, e.g. .asv/results, "
                      "to bnnbench report).")
    df = ds.other.get("asv")
    if df is None or df.empty:
        return s
    df = df.assign(_when=pd.to_datetime(df.get("commit_date"), utc=True, errors="coerce"))
    timed = df[df["median_s"].notna() & df["speedup"].notna()] if "median_s" in df else df[:0]
    for host, d in timed.groupby("host_label", sort=True):
        fig = figures.commit_history(d, f"{host}: speedup over float_blas by commit")
        if fig:
            s.figures.append(fig)
    if not timed.empty:
        d = timed.sort_values(["host_label", "_when", "commit"], kind="stable")
        d = tables.method_sort(d, extra=("host_label", "_when"))
        out = pd.DataFrame({
            "host": d["host_label"], "commit": d["commit"].astype(str).str[:10],
            "date": d["commit_date"], "environment": d["environment"],
            "benchmark": d["benchmark"], "method": d["method"], "channels": d["channels"],
            "filters": d["filters"], "kernel": d["kernel"], "batch": d["batch"],
            "threads": d["threads"], "median_ms": d["median_s"] * 1e3, "speedup": d["speedup"]})
        s.tables.append(tables.Table("asv_times", "Timed benchmarks by commit",
                                     out.reset_index(drop=True),
                                     formats={"speedup": tables.times}))
    if "asv_type" in df:
        track = df[df["asv_type"] == "track"]
        if not track.empty:
            cols = [c for c in ("host_label", "commit", "commit_date", "benchmark", "method",
                                "channels", "threads", "value", "unit") if c in track]
            out = track.sort_values(["host_label", "_when", "benchmark"], kind="stable")[cols]
            out = out.rename(columns={"host_label": "host"})
            out["commit"] = out["commit"].astype(str).str[:10]
            s.tables.append(tables.Table("asv_track", "Tracked values by commit (track_ "
                                         "benchmarks)", out.reset_index(drop=True)))
    return s


def _optional_table(module, names):
    """A DataFrame from another part of bnnbench if it exists in this version."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        return None
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn):
            out = fn()
            return out if isinstance(out, pd.DataFrame) else None
    return None


def _published():
    return _optional_table("bnnbench.models.published", ("published",))


def published_display(ref):
    """The reference rows with one readable 'figure' column ('≈13 x',
    '7–23 x') after the subject; the raw value columns stay for the CSV."""
    def num(v):
        return f"{v:g}" if isinstance(v, (int, float)) else str(v)

    def figure(r):
        v = num(r.get("value"))
        if not tables.is_missing(r.get("value_max")):
            v += "–" + num(r.get("value_max"))
        unit = str(r.get("unit") or "")
        unit = "×" if unit == "x" else " " + unit
        return ("≈ " if r.get("approx") is True else "") + v + unit
    out = ref.copy()
    if "value" in out:
        out.insert(min(3, len(out.columns)), "figure",
                   [figure(r) for r in out.to_dict("records")])
    return out


def published_table(name, title, ref):
    out = published_display(ref).reset_index(drop=True)
    raw = {"value", "unit", "approx", "value_max"}
    shown = [c for c in out.columns if c not in raw] if "figure" in out else None
    if shown and "where" in shown and "source" in shown:   # the locator beside the source
        shown.remove("where")
        shown.insert(shown.index("source") + 1, "where")
    return tables.Table(name, title, out, shown=shown,
                        caption="The CSV also has the figures as numbers (value, value_max, "
                                "unit, approx).")


def published(ds):
    s = Section("published", "Published figures (not measured here)",
                intro="Numbers from papers and write-ups, each with its source. They come from "
                      "other hardware and other code and are never mixed into the measured "
                      "tables above.",
                empty="This bnnbench has no reference table (bnnbench.models.published).")
    ref = _published()
    if ref is not None and not ref.empty and "where" in ref:
        # Only what a reader can look up: a figure without a public source
        # (measured while the project was built) is not "published".
        unsourced = ref["where"].map(lambda v: not isinstance(v, str) or not v.strip())
        if unsourced.any():
            s.notices.append(("info", f"{int(unsourced.sum())} figure(s) in bnnbench.models.published "
                                      f"have no public source (they were measured on the "
                                      f"project's own host) and are not listed here."))
        ref = ref[~unsourced]
    if ref is not None and not ref.empty:
        s.tables.append(published_table("published", "Published figures", ref))
    return s


def runs_section(ds):
    s = Section("runs", "Run files",
                intro="Every run file read, and whether its rows are in the report.",
                empty="No run files were read.")
    if not ds.runs_table.empty:
        s.tables.append(tables.Table("runs", "Runs", ds.runs_table))
    return s


def safely(fn, *args, problems, about=""):
    """A section that fails to build becomes a notice, not a failed report."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - a report must survive odd input
        name = getattr(fn, "__name__", "section")
        problems.append(f"section {name}{about} could not be built "
                        f"({type(exc).__name__}: {str(exc)[:200]})")
        sec = Section(name, name.replace("_", " ").capitalize(),
                      empty="This section could not be built from these results.")
        sec.notices.append(("warn", problems[-1]))
        return sec


def _files_of(ds, host_row):
    """The run files of a host, for a notice that names where to look."""
    return [os.path.basename(r["_path"]) for r in ds.runs
            if data._label(r["host"]) == host_row["host_label"]][:3]


def build(ds):
    """(sections, rooms, problems) for the template."""
    problems = []
    # The answer first (per host, then across hosts); the evidence after it.
    head = [safely(glance, ds, problems=problems), safely(comparison, ds, problems=problems)]
    # Whole networks, then whole layers, lead when a run has them.
    if ds.other.get("layer") is not None:
        head.insert(0, safely(layers.section, ds, problems=problems))
    if ds.other.get("network") is not None:
        head.insert(0, safely(networks.section, ds, problems=problems))
    rooms = [safely(room, ds, row, i, problems=problems,
                    about=f" of host {row['host_label']!r} ({', '.join(_files_of(ds, row))})")
             for i, (_, row) in enumerate(ds.hosts.iterrows())]
    tail = [safely(fn, ds, problems=problems)
            for fn in (model_size, accuracy, profile, asv_history, published, runs_section)]
    return head, rooms, tail, problems


__all__ = ["Section", "build", "host_card", "popcount_support"]
