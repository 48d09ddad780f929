"""bnnbench compare: two hosts side by side in the terminal."""
import json
import sys

import pandas as pd

from ..errors import BnnbenchError
from ..escape import csv_frame, terminal
from ..measure import levels, timing
from ..report import data, tables
from .options import add_format

# Each level's baseline, as the help and the table's key say it.
_BASELINES = ", ".join(f"{lv.baseline} for {lv.title}" for lv in levels.LEVELS.values())


def register(sub):
    p = sub.add_parser(
        "compare", help="two hosts side by side: times, own speedups, and the ratio between them",
        description=(
            "For each method, shape and thread level measured on both hosts: both median "
            f"times, each host's speedup over its own float baseline ({_BASELINES}; a "
            "ratio inside one run), "
            "and the time ratio A/B (> 1: B is faster). Thread level 1 is one thread; 'all' "
            "is the most threads each host ran, so hosts with different core counts line up. "
            "Host labels are those given with `bnnbench sweep --label` (default: hostname)."))
    p.add_argument("host_a", metavar="HOST_A", help="label of the first host")
    p.add_argument("host_b", metavar="HOST_B", help="label of the second host")
    p.add_argument("--results", action="append", default=None, metavar="DIR",
                   help="run files or directories; repeat for several (default: results/)")
    p.add_argument("--all-runs", action="store_true",
                   help="aggregate every run of a host instead of using the newest")
    add_format(p, choices=("table", "csv", "json"))
    p.set_defaults(func=run)


def _describe(ds, label):
    h = ds.hosts.set_index("host_label").loc[label, "_host"]
    cores = h.get("physical_cores") or h.get("logical_cores") or "?"
    blas = h.get("blas", {}).get("library") if isinstance(h.get("blas"), dict) else None
    text = f"{label}: {h.get('cpu_brand')}, {h.get('arch')}, {cores} cores, BLAS {blas}"
    if h.get("emulated") is True:
        text += f" [EMULATED by {h.get('emulator') or 'an emulator'}: times are not a device's]"
    return text


def run(args):
    ds = data.load(args.results or ["results"], all_runs=args.all_runs)
    for path, reason in ds.skipped:
        print(f"bnnbench compare: warning: skipped {terminal(path)}: {terminal(reason)}",
              file=sys.stderr)
    a = data.host_or_error(ds, args.host_a)
    b = data.host_or_error(ds, args.host_b)
    if a == b:
        raise BnnbenchError("give two different hosts")
    out = tables.compare_hosts(ds.sweep, a, b) if not ds.sweep.empty else pd.DataFrame()
    layers = ds.other.get("layer")
    if layers is not None and not layers.empty:
        both = tables.compare_hosts(layers, a, b, list(levels.LAYER_GEOMETRY)).assign(
            level=levels.CONV.name)
        out = (pd.concat([out.assign(level=levels.GEMM.name), both], ignore_index=True)
               if not out.empty else both)
    if out.empty:
        raise BnnbenchError(f"hosts {a!r} and {b!r} measured no shape in common "
                            f"(compare batch, filters and kernel of their sweeps)")
    if args.format == "csv":
        shown = csv_frame(out.assign(host_a=a, host_b=b), for_terminal=True)
        sys.stdout.write(shown.to_csv(index=False))
    elif args.format == "json":
        records = json.loads(out.to_json(orient="records"))
        json.dump({"host_a": a, "host_b": b, "rows": records}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"A = {terminal(_describe(ds, a))}")
        print(f"B = {terminal(_describe(ds, b))}")
        print(f"speedup = the level's float baseline ({_BASELINES}) median / method median, "
              f"same host, same run; time A/B > 1 means B is faster; noisy: whose speedup is "
              f"not a result ({timing.NOISY_TEXT}, a wide interval, a busy host or a suspect "
              f"shape)")
        print()
        print(format_compare(out))
    return 0


def format_compare(out):
    shown = out.rename(columns={"median_ms_a": "A_ms", "median_ms_b": "B_ms",
                                "speedup_a": "A_speedup", "speedup_b": "B_speedup",
                                "threads_a": "A_thr", "threads_b": "B_thr",
                                "time_a/b": "A/B_time", "out_size": "out"})
    shown = shown.apply(lambda col: col.map(lambda v: terminal(v) if isinstance(v, str) else v))
    return shown.to_string(index=False, na_rep="-", float_format=lambda v: tables.sig(v))
