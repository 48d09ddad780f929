"""How far a measured speedup can be trusted.

A ratio measured on a shared machine can be wrong in three ways, and each
has its own check here:

- sampling spread: the speedup gets an interval (ratio_interval) from both
  rows' samples, and is called noisy when either side spreads or the
  interval is wide;
- a host that is steadily slow for part of the run (another job holds a
  core): the load during each shape (bnnbench.measure.hostload) marks its rows busy;
- results that cannot be right on any quiet host: one of bnnbench's
  parallel kernels slower on n threads than on 1, or a kernel above its
  probed peak (the probe loop timed in the same turns, see
  probe.CEILINGS). Those rows are suspect, with the reason. A library (the
  BLAS, a peer engine) slower on n threads taints only its n-thread rows.

The run then carries one verdict (host busy or not, counts of noisy and
suspect rows, and the headline figure in words), and the report leads only
with rows that survived all of it (row_is_shaky).
"""

import numpy as np

from . import levels

CONFIDENCE = 0.95
RESAMPLES = 1000
# A speedup whose interval spans more than this factor (high / low) is not
# known to within about +-10 %: too loose to quote as a figure.
WIDE_INTERVAL = 1.2
# n threads may cost a little over 1 thread on tiny work (thread start-up,
# barriers): slower than this factor plus this time is no longer overhead.
SLOWER_FACTOR = 1.1
SLOWER_SLACK_S = 1e-4
# A kernel above its probed peak by more than this is measured against a
# wrong peak (the probe ran slowed) or was timed wrongly.
PEAK_TOLERANCE = 1.05


def _clean(samples):
    """Positive finite times as an array; anything else in a file is dropped."""
    if samples is None or isinstance(samples, (str, bytes, dict)):
        return np.empty(0)
    try:
        a = np.asarray(list(samples), dtype=float)
    except (TypeError, ValueError):
        return np.empty(0)
    return a[np.isfinite(a) & (a > 0)] if a.ndim == 1 else np.empty(0)


def ratio_interval(base_samples, samples, confidence=CONFIDENCE, resamples=RESAMPLES, seed=0):
    """(low, high): percentile-bootstrap interval of median(base) / median(samples).

    Each side is resampled on its own (the two rows' samples are taken in
    turns, not in pairs), the ratio of the two resampled medians is formed
    `resamples` times, and the central `confidence` share of those ratios is
    the interval. With fewer than two samples on a side there is nothing to
    resample: (None, None). The README gives its measured coverage.
    """
    b, s = _clean(base_samples), _clean(samples)
    if len(b) < 2 or len(s) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, len(b), (resamples, len(b)))], axis=1)
    ms = np.median(s[rng.integers(0, len(s), (resamples, len(s)))], axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(mb / ms, [tail, 1 - tail])
    return float(low), float(high)


def interval_is_wide(low, high):
    return low is None or high is None or not low > 0 or high / low > WIDE_INTERVAL


def row_is_shaky(row):
    """True when a row's speedup must not be shown as a fact: noisy on either
    side or a wide interval, timed while the host was busy, or suspect.
    Rows from files older than these fields count as shaky when noisy."""
    def flag(key):   # True, or numpy's True from a DataFrame; never NaN or None
        return isinstance(row.get(key), (bool, np.bool_)) and bool(row[key])
    known = isinstance(row.get("speedup_noisy"), (bool, np.bool_))
    return flag("speedup_noisy" if known else "noisy") or flag("suspect") or flag("busy")


# --------------------------------------------------------- one shape's rows

def _key(row):
    return (row["method"], row["threads"])


def _compute_share(row):
    """A row's share of its compute ceiling timed in the same turns (or, in
    files from before those, its peak_fraction). A binarizing row's read
    bound is left out: activations still in cache beat the probe's read
    bandwidth from memory."""
    gops, ceiling = row.get("gops"), row.get("ceiling_gops")
    numbers = isinstance(gops, (int, float)) and isinstance(ceiling, (int, float))
    if numbers and ceiling > 0:
        return gops / ceiling
    return row.get("peak_fraction")


def suspect_reasons(rows, peak_trusted=True, libraries=frozenset()):
    """Reasons the rows of one shape cannot all be right, as (sentence,
    threads) pairs: threads None taints every row of the shape, a number
    only the rows at that thread count.

    Compares each method's n-thread time with its own 1-thread time and,
    unless the probe is known to be wrong (then the fault is the probe's,
    and the run says so), each row's throughput with its probed peak. Own
    parallel kernels split their work statically and scale on a quiet host,
    so one slower on n threads means something else held a core: the whole
    shape is suspect. A library in `libraries` (the BLAS, a peer engine)
    may really be slower on n threads on small work (its threading costs
    more than it saves); that taints only the n-thread rows, whose speedups
    it would inflate."""
    timed = {_key(r): r for r in rows if r.get("verified") and r.get("median_s")}
    reasons = []
    for (method, threads), row in sorted(timed.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        one = timed.get((method, 1))
        if threads > 1 and one and row["median_s"] > SLOWER_FACTOR * one["median_s"] + SLOWER_SLACK_S:
            reasons.append((f"{method} slower on {threads} threads than on 1 "
                            f"({row['median_s'] * 1e3:.3g} ms against "
                            f"{one['median_s'] * 1e3:.3g})",
                            threads if method in libraries else None))
    for row in timed.values() if peak_trusted else ():
        pf = _compute_share(row)
        if pf is not None and pf > PEAK_TOLERANCE:
            reasons.append((f"{row['method']} on {row['threads']} thread"
                            f"{'s' if row['threads'] != 1 else ''} at {100 * pf:.0f} % of the "
                            f"probed peak", None))
    return reasons


def annotate_shape(rows, load=None, busy=False, peak_trusted=True,
                   baseline=levels.GEMM.baseline, libraries=levels.GEMM.blas_methods):
    """Add the trust fields to the rows of one shape (all its methods and
    thread counts, as the sweep times them together): load and busy, the
    speedup interval over the baseline (the BLAS) at the same thread count,
    suspect and its reason, and speedup_noisy, which sums them up.
    `libraries`: methods whose threading is not bnnbench's (suspect_reasons)."""
    reasons = suspect_reasons(rows, peak_trusted, libraries)
    base = {r["threads"]: r for r in rows
            if r["method"] == baseline and r.get("verified") and r.get("median_s")}
    for row in rows:
        mine = [text for text, threads in reasons if threads in (None, row["threads"])]
        row["load"] = load
        row["busy"] = bool(busy)
        row["suspect"] = bool(mine)
        row["suspect_reason"] = "; ".join(mine) if mine else None
        b = base.get(row["threads"])
        if not (b and row.get("verified") and row.get("median_s")):
            row.update(speedup_low=None, speedup_high=None, speedup_noisy=None)
            continue
        low, high = ratio_interval(b.get("samples_s"), row.get("samples_s"))
        row["speedup_low"], row["speedup_high"] = low, high
        spread = bool(b.get("noisy")) or bool(row.get("noisy"))
        wide = row is not b and interval_is_wide(low, high)
        row["speedup_noisy"] = spread or wide or row["busy"] or row["suspect"]
    return rows


# --------------------------------------------------------------- the verdict

def _shape_words(row):
    if row.get("layer") is not None:
        return f"layer {row['layer']} of {row.get('model')}"
    if row.get("level") == levels.MODEL.name:
        return f"{row.get('model')}, batch {row.get('batch')}"
    return f"{row['channels']} channels"


def headline(rows):
    """The run's answer in words: the binary method's speedup over its
    level's baseline at the largest shape the run timed, on 1 thread, with
    its interval; the first of the level's headline methods there whose
    speedup is a result, else the first one with why it is not. None if no
    such row has a speedup."""
    ok = [r for r in rows if r.get("verified") and r.get("median_s")]
    for level in levels.LEVELS.values():
        text = _headline([r for r in ok if r.get("level", "gemm") == level.name], level)
        if text:
            return text
    return None


def _headline(ok, level):
    baseline, methods = level.baseline, level.headline

    def dims(r):
        return tuple(r.get(k) for k in level.shape_keys)
    base = {dims(r): r for r in ok if r["method"] == baseline and r["threads"] == 1}
    cand = [r for r in ok if r["method"] in methods and r["threads"] == 1 and dims(r) in base]
    if not cand:
        return None
    size = max(r["ops"] if r.get("ops") else 0 for r in cand)
    row = min((r for r in cand if (r["ops"] if r.get("ops") else 0) == size),
              key=lambda r: (row_is_shaky(r), methods.index(r["method"])))
    speedup = base[dims(row)]["median_s"] / row["median_s"]
    low, high = row.get("speedup_low"), row.get("speedup_high")
    band = f" ({low:.3g}–{high:.3g})" if low and high else ""
    caveat = " — not a result: " + _why_shaky(row) if row_is_shaky(row) else ""
    return (f"{row['method']}: {speedup:.3g}×{band} over {baseline} at {_shape_words(row)}, "
            f"1 thread{caveat}")


def _why_shaky(row):
    if row.get("suspect"):
        first = str(row.get("suspect_reason") or "").split("; ")[0]
        return f"suspect ({first})" if first else "suspect"
    if row.get("busy"):
        return "timed while the host was busy"
    return "noisy"


def busy_evidence(rows):
    """One sentence on the worst load any row was timed under, or None."""
    from .hostload import describe
    loads = [r["load"] for r in rows if r.get("busy") and isinstance(r.get("load"), dict)]
    if not loads:
        return None
    worst = max(loads, key=lambda d: d.get("other_cores", 0))
    text = f"{describe(worst)} at worst, {len(loads)} of {len(rows)} rows timed under load"
    if worst.get("loadavg_1m") is not None:
        text += f", load average {worst['loadavg_1m']:g}"
    return text


def verdict(rows, probe=None, evidence=None):
    """The run-level summary stored in the run file and printed at the end.
    `evidence`: what was seen before measuring began (--wait-quiet gave up)."""
    timed = [r for r in rows if r.get("verified") and r.get("median_s")]
    busy_rows = sum(1 for r in timed if r.get("busy"))
    return {
        "rows": len(rows),
        "noisy_rows": sum(1 for r in timed if row_is_shaky(r)),
        "suspect_rows": sum(1 for r in timed if r.get("suspect")),
        "busy_rows": busy_rows,
        "host_busy": bool(busy_rows) or bool(evidence),
        "evidence": "; ".join(e for e in (evidence, busy_evidence(rows)) if e) or None,
        "probe_unreliable": probe.get("unreliable") if isinstance(probe, dict) else None,
        "headline": headline(rows),
    }


def attach_verdict(run, command, evidence=None):
    """Store the verdict in the run and return its one-line summary."""
    run["verdict"] = verdict(run["rows"], run["host"].get("probe"), evidence)
    return verdict_line(command, run["verdict"])


def verdict_line(command, v):
    """One plain line: the answer, then how much of the run to trust."""
    parts = [v["headline"] or "no binary speedup measured"]
    parts.append(f"{v['noisy_rows']} of {v['rows']} rows noisy"
                 + (f", {v['suspect_rows']} suspect" if v["suspect_rows"] else ""))
    line = f"bnnbench {command}: " + "; ".join(parts)
    if v["host_busy"]:
        evidence = v["evidence"] or f"{v['busy_rows']} rows timed under load"
        line += f"; warning: host busy ({evidence})"
    if v.get("probe_unreliable"):
        line += f"; probe unreliable ({v['probe_unreliable']})"
    return line
