"""The report's whole-network section (sweep rows of level "model"): per
host and model, ms per image by engine with intervals, the speedups over the
float twin, the best float engine and LCE, the deployed model's size, the
share of time outside binary layers, and the published network figures.
"""
import pandas as pd

from ..measure import levels
from . import tables
from .page import Section
from .terminal import network_table

# Published whole-network latencies (REFERENCE.md's sources): the anchors a
# reader compares a device with. Larq Compute Engine README, Raspberry Pi 4B
# at 1.5 GHz, lce_benchmark_model, ms per image, 1 / 4 threads.
PUBLISHED = pd.DataFrame([
    ("QuickNetSmall", "Raspberry Pi 4B (1.5 GHz)", "LCE", 27.7, 12.1, "59.4 %",
     "larq/compute-engine README, Performance (2022-04-20)"),
    ("QuickNet", "Raspberry Pi 4B (1.5 GHz)", "LCE", 45.0, 20.8, "63.3 %",
     "larq/compute-engine README, Performance (2022-04-20)"),
    ("QuickNetLarge", "Raspberry Pi 4B (1.5 GHz)", "LCE", 77.0, 31.7, "66.9 %",
     "larq/compute-engine README, Performance (2022-04-20)"),
    ("Bi-Real Net 18", "Google Pixel 1", "daBNN", 61.3, None, "56.4 %",
     "JDAI-CV/dabnn README chart; daBNN paper (arXiv 1908.05858)"),
    ("Bi-Real Net 18", "Google Pixel 1", "TF Lite float", 220.0, None, "",
     "JDAI-CV/dabnn README chart"),
], columns=["model", "device", "engine", "ms_1_thread", "ms_4_threads", "top1_imagenet",
            "source"])


def _headline(host, d):
    """(level, text): '<model> ran N× its float twin and M× LCE' for the
    slowest (largest) network bnnbench's runtime ran on 1 thread; a warning
    that says why when its row is not a result."""
    t = d[(d["threads"] == 1) & (d["method"] == "net_bnnbench") & d["verified"].eq(True)]
    if t.empty:
        return None
    row = t.sort_values(["ms_per_image", "batch"]).iloc[-1]
    ratios = ((f"vs_{levels.MODEL.baseline}", "its float twin"),
              ("vs_best_float", "the fastest float engine"), ("vs_lce", "Larq Compute Engine"))
    said = ", ".join(f"{tables.sig(row[col])}× {what}" for col, what in ratios
                     if pd.notna(row.get(col)))
    share = row.get("outside_binary_%")
    outside = (f"; {share:.0f} % of its time is outside the binary layers"
               if pd.notna(share) else "")
    text = (f"{host}: {row['model']} (batch {int(row['batch'])}) ran at "
            f"{tables.sig(row['ms_per_image'])} ms per image on bnnbench's runtime, {said}, "
            f"1 thread, the same run{outside}.")
    if row.get("flags") not in (None, "-"):
        return "warn", text + f" Not a result: its rows were flagged {row['flags']}."
    return "info", text


def section(ds):
    s = Section("networks", "Whole networks",
                intro="Whole forward passes of the model zoo's networks, input to logits, on "
                      "the same weights in every engine: bnnbench's runtime (binary layers on "
                      "its xnor kernels, batch norm and sign folded into thresholds), its float "
                      "twin on the same runtime, and, where installed, the Larq model through "
                      "Larq Compute Engine and the float twin through TF Lite (XNNPACK). Each "
                      "engine's logits are checked against a plain numpy network before it is "
                      "timed. Speedups are ratios inside one run at the same thread count.",
                empty="No whole-network results (run `bnnbench sweep --level model`).")
    df = ds.other.get("network")
    if df is not None and not df.empty:
        for host, d in df.groupby("host_label", sort=True):
            shown = network_table(d)
            notice = _headline(host, shown)
            if notice:
                s.notices.append(notice)
            shown.insert(0, "host", host)
            s.tables.append(tables.Table(
                f"networks_{len(s.tables) + 1}", f"{host}: whole networks", shown,
                formats={c: tables.times for c in shown.columns if c.startswith("vs_")},
                # The title names the host; the CSV keeps the column for joins.
                shown=[c for c in shown.columns if c != "host"]))
    s.tables.append(tables.Table(
        "networks_published", "Published whole-network latencies (not measured here)",
        PUBLISHED, caption="As each source reports them; ms per image."))
    return s
