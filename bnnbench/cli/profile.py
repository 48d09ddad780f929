"""bnnbench profile: one model's layers timed float against binary on this host."""
import json
import sys

import pandas as pd

from ..measure import hostinfo, levels, profile, timing, trust
from ..measure.sweep import check_memory, run_steps
from ..models import zoo
from ..progress import Progress
from ..runs.writer import RunWriter, new_run
from .interrupt import keep_rows_on_interrupt
from .options import int_list, non_negative_float, positive_int, seed, thread_list

MIN_TIME = 0.1
REPEAT = 5


def register(sub):
    p = sub.add_parser(
        "profile", help="time every conv/dense layer of a model, float vs binary",
        description=(
            "Lower every conv and dense layer of MODEL to its GEMM (im2col view: "
            "M = out channels, K = k*k*in channels, N = batch*out_h*out_w) and time it "
            "on this host with float_blas and, for binary layers, with each binary "
            "method. Each output is checked exactly before it is timed. Prints per-layer "
            "times and speedups and whole-network totals: the float total is float_blas "
            "on every layer; a binary total counts the method on binary layers and "
            "float_blas on the float first and last layers, which a binary network runs "
            "in float. Speedups are taken at the same thread count, in this run. The run "
            f"is saved under --out. Models: {', '.join(zoo.MODELS)}."))
    p.add_argument("model", metavar="MODEL", help="model name (see bnnbench models)")
    p.add_argument("--batch", type=positive_int, default=profile.DEFAULT_BATCH,
                   help=f"images per batch, N = batch*out_h*out_w (default: "
                        f"{profile.DEFAULT_BATCH}: conv GEMMs keep N in the thousands while "
                        f"the largest model, bmxnet-resnet18-cifar10, profiles in about a "
                        f"minute on 2 cores; BMXNet's GEMM experiment used 200)")
    p.add_argument("--level", choices=tuple(levels.LEVELS), default="gemm",
                   help="gemm: each layer as its im2col GEMM (float_blas baseline, default); "
                        "conv: each layer as a whole layer from its float NHWC input "
                        "(conv_float_blas baseline, conv_xnor_* methods)")
    p.add_argument("--threads", type=thread_list, default=None, metavar="LIST",
                   help="thread counts (default: 1 and the number of cores); one-thread "
                        "methods run at 1 only")
    p.add_argument("--methods", default=None, metavar="LIST",
                   help=f"binary methods, comma-separated (default: "
                        f"{','.join(profile.default_methods())}; at --level conv "
                        f"{','.join(levels.CONV.profile_defaults)}); the level's float method "
                        f"({', '.join(levels.BASELINES.values())}) is always the baseline")
    p.add_argument("--min-time", type=non_negative_float, default=MIN_TIME, metavar="SECONDS",
                   help=f"minimum measuring time per layer and method (default: {MIN_TIME}; "
                        f"a model has many layers)")
    p.add_argument("--repeat", type=positive_int, default=REPEAT,
                   help=f"minimum samples per layer and method (default: {REPEAT})")
    p.add_argument("--label", default=None, help="name of this host in results (default: hostname)")
    p.add_argument("--out", default="results", help="directory for the run file (default: results/)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random operands (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="output format (default: table); json prints the run file")
    p.set_defaults(func=run)


def _methods(text, level):
    if text is None:
        return profile.default_methods(level)
    return profile.check_methods([n.strip() for n in text.split(",") if n.strip()], level)


def layer_table(rows, threads, baseline=levels.GEMM.baseline):
    """Per layer at one thread count: float_blas time, each method's time and speedup."""
    df = pd.DataFrame([r for r in rows if r["threads"] == threads])
    if df.empty:
        return df
    df["ms"] = df["median_s"] * 1e3
    order = list(dict.fromkeys(df["layer"]))
    wide = df.pivot_table(index="layer", columns="method", values="ms", aggfunc="first")
    shape = df.drop_duplicates("layer").set_index("layer")[["binary", "M", "K", "N"]]
    out = shape.join(wide).reindex(order)
    base = out.get(baseline)
    methods = [m for m in dict.fromkeys(df["method"]) if m != baseline]
    table = pd.DataFrame({"layer": out.index, "binary": out["binary"].map({True: "yes",
                                                                           False: ""}),
                          "M": out["M"], "K": out["K"], "N": out["N"],
                          f"{baseline}_ms": base})
    for m in methods:
        table[f"{m}_ms"] = out[m]
        table[f"{m}_x"] = base / out[m]
    return table.reset_index(drop=True)


def _fmt(v):
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def print_tables(run_obj):
    rows = run_obj["rows"]
    settings = run_obj["settings"]
    baseline = levels.get(settings.get("level", "gemm")).baseline
    print(f"{settings['model']}: batch {settings['batch']}, times are medians in ms; "
          f"_x = speedup over {baseline} on the same layer and thread count")
    for t in settings["threads"]:
        table = layer_table(rows, t, baseline)
        if table.empty:
            continue
        print(f"\nthreads={t}")
        print(table.to_string(index=False, na_rep="-", formatters={c: _fmt for c in table.columns}))
    timed = [r for r in rows if r.get("verified") is True]
    noisy = sum(1 for r in timed if r.get("noisy"))
    if noisy:
        print(f"\nnote: {noisy} of {len(timed)} timings are noisy ({timing.NOISY_TEXT}); "
              f"a busy host makes totals less certain")
    tot = pd.DataFrame(run_obj["totals"])
    if not tot.empty:
        print(f"\nwhole network (float layers timed with {baseline} in both totals)")
        tot = tot.assign(float_ms=tot["float_s"] * 1e3, binary_ms=tot["binary_s"] * 1e3)
        tot = tot[["threads", "method", "float_ms", "binary_ms", "speedup"]]
        print(tot.to_string(index=False, na_rep="-", formatters={c: _fmt for c in tot.columns}))


def run(args):
    model = zoo.get_model(args.model)
    methods = _methods(args.methods, args.level)
    threads = args.threads or tuple(hostinfo.default_threads())
    level = levels.get(args.level)
    if level is levels.CONV:
        layers = profile.layer_convs(model, args.batch)
    else:
        layers = profile.layer_gemms(model, args.batch)
    check_memory(layers, level, hint="use a smaller --batch")
    steps = profile.plan(layers, methods, threads, args.level)
    settings = {"model": model.name, "batch": args.batch, "threads": list(threads),
                "methods": [level.baseline] + methods, "min_time": args.min_time,
                "repeat": args.repeat, "seed": args.seed, "level": args.level}
    run_obj = new_run("profile", hostinfo.fingerprint(args.label), settings)
    run_obj["totals"] = []
    writer = RunWriter(run_obj, args.out)
    progress = Progress(len(steps), quiet=args.quiet)
    with keep_rows_on_interrupt("profile", writer, progress):
        failed = run_steps(steps, writer, args.min_time, args.repeat, seed=args.seed,
                           progress=progress, level=level)
    progress.close()
    run_obj["totals"] = profile.totals(run_obj["rows"], methods, threads, args.level)
    line = trust.attach_verdict(run_obj, "profile")
    writer.finish("failed" if failed else "complete")
    if args.format == "json":
        json.dump(run_obj, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_tables(run_obj)
    print(f"run file: {writer.path}", file=sys.stderr)
    print(line, file=sys.stderr)
    for row in failed:
        print(f"bnnbench profile: error: {row['method']} threads={row['threads']} on layer "
              f"{row['layer']} (M={row['M']} N={row['N']} K={row['K']}) gave a wrong result; "
              f"not timed", file=sys.stderr)
    return 1 if failed else 0

