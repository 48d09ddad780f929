"""bnnbench sweep: BMXNet's GEMM experiment and its siblings."""
import argparse
import json
import os
import sys

from .. import _xnor_gemm
from ..errors import BnnbenchError
from ..measure import hostinfo, hostload, levels, probe, trust
from ..measure.sweep import check_memory, plan, run_steps
from ..methods import kernels, layer_shapes, shapes
from ..models import zoo
from ..progress import Progress
from ..report.terminal import format_table, layer_table, network_table, sweep_table
from ..runs.writer import RunWriter, new_run
from ..runs.frame import runs_to_frame
from .interrupt import keep_rows_on_interrupt
from .options import add_format, int_list, non_negative_float, positive_int, seed, thread_list

REPEAT = 10
# The model level's defaults: the CIFAR-10 binary networks people deploy
# small, and Bi-Real Net 18 at ImageNet size; one image at a time, as a
# deployed model answers.
NET_MODELS = ("cntk-bnn", "cntk-resnet", "bmxnet-resnet18-cifar10", "birealnet18",
              "quicknet-small")
NET_BATCH = 1
QUICK = {"channels": shapes.QUICK_CHANNELS, "batch": shapes.QUICK_BATCH,
         "min_time": 0.05, "repeat": 3}


def register(sub):
    p = sub.add_parser(
        "sweep", help="time every method over convolution shapes (the main job)",
        description=(
            "Time float and xnor GEMMs over convolution layers lowered to GEMM: "
            "M = filters, K = kernel^2 * channels, N = batch * out_size^2. Every "
            "combination of --channels, --filters and --kernel is one shape. Each "
            "(method, shape, threads) is checked exactly against numpy before it is "
            "timed. Speedups are over float_blas (the platform BLAS) at the same "
            "thread count, in this run. The run is saved under --out as it goes."))
    p.add_argument("--channels", type=int_list, default=None, metavar="LIST",
                   help="input channels, comma-separated (default: 1,32,64,128,256,512)")
    p.add_argument("--filters", type=int_list, default=shapes.DEFAULT_FILTERS, metavar="LIST",
                   help="filters = M (default: 64)")
    p.add_argument("--kernel", type=int_list, default=shapes.DEFAULT_KERNEL, metavar="LIST",
                   help="kernel size k for k x k windows (default: 5)")
    p.add_argument("--batch", type=int_list, default=None, metavar="LIST",
                   help=f"images per batch (default: {shapes.DEFAULT_BATCH}; at --level model "
                        f"{NET_BATCH}, and a list there times each batch size)")
    p.add_argument("--out-size", type=positive_int, default=shapes.DEFAULT_OUT_SIZE,
                   help=f"output height = width (default: {shapes.DEFAULT_OUT_SIZE})")
    p.add_argument("--level", type=parse_levels, default=("gemm",), metavar="LIST",
                   help="gemm (convolutions lowered to GEMM, the default), conv (whole "
                        "layers from the float NHWC feature map, with peer engines when "
                        "installed), model (whole networks of the model zoo: bnnbench's "
                        "runtime, its float twin, and LCE and TF Lite when installed), or a "
                        "list such as gemm,conv")
    p.add_argument("--models", type=model_list, default=None, metavar="LIST",
                   help=f"model level: models to run whole (default: {','.join(NET_MODELS)}; "
                        f"all: {','.join(zoo.MODELS)})")
    p.add_argument("--stride", type=positive_int, default=1,
                   help="layer level: stride of the window (default: 1)")
    p.add_argument("--padding", choices=layer_shapes.PADDINGS, default="valid",
                   help="layer level: 'same' pads with +1 for binary layers (LCE's one-padding) "
                        "and 0 for float ones (default: valid)")
    p.add_argument("--preset", choices=("dabnn",), default=None,
                   help="layer level: daBNN's four 3x3 layers at batch 1 (56x56x64, 28x28x128, "
                        "14x14x256, 7x7x512, filters = channels, same padding)")
    p.add_argument("--threads", type=thread_list, default=None, metavar="LIST",
                   help="thread counts (default: 1 and the number of cores); one-thread "
                        "methods run at 1 only")
    p.add_argument("--methods", default=None, metavar="LIST",
                   help=f"methods, comma-separated (default: all available: "
                        f"{','.join(levels.GEMM.methods)})")
    p.add_argument("--min-time", type=non_negative_float, default=None, metavar="SECONDS",
                   help="minimum measuring time per row (default: 0.5)")
    p.add_argument("--repeat", type=positive_int, default=None,
                   help=f"minimum samples per row (default: {REPEAT}: with fewer, the "
                        f"speedup interval of a row whose call takes longer than "
                        f"--min-time / {REPEAT} is often too wide to quote)")
    p.add_argument("--quick", action="store_true",
                   help="small grid for smoke tests (channels 1,32, batch 8, short timing); "
                        "explicit options still win")
    p.add_argument("--label", default=None, help="name of this host in results (default: hostname)")
    p.add_argument("--out", default="results", help="directory for the run file (default: results/)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random operands (default: 0)")
    p.add_argument("--probe", action=argparse.BooleanOptionalAction, default=None,
                   help="measure this host's peaks first (about 10 s) and time the popcount "
                        "and FMA loops in each shape's turns, so rows carry their fraction of "
                        "peak, %%peak (default: on, off with --quick)")
    p.add_argument("--wait-quiet", type=non_negative_float, default=0, metavar="SECONDS",
                   help="before measuring, wait up to SECONDS for other processes to leave "
                        "the cores alone (a progress line says what is running); measures "
                        "anyway when the time is up, and the run says the host was busy")
    p.add_argument("--quiet", action="store_true", help="no progress line (warnings still print)")
    add_format(p)
    p.set_defaults(func=run)


def _pick(value, quick, key, default):
    if value is not None:
        return value
    return QUICK[key] if quick else default


def model_list(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in zoo.MODELS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown model {', '.join(bad) or text!r}; models: "
                                         f"{', '.join(zoo.MODELS)}")
    return tuple(dict.fromkeys(names))


def parse_levels(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in levels.LEVELS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"levels are {', '.join(levels.LEVELS)}, got {text!r}")
    return tuple(dict.fromkeys(names))


def parse_methods(text, chosen_levels=(levels.GEMM,)):
    """Methods per level: all available by default; a name belongs to the
    level whose registry has it (one-line error if none offers it)."""
    if text is None:
        return {lv.name: list(lv.methods) for lv in chosen_levels}
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BnnbenchError("--methods is empty")
    chosen = {lv.name: [] for lv in chosen_levels}
    for n in dict.fromkeys(names):
        level = next((lv for lv in chosen_levels if n in lv.by_name), None)
        if level is None:
            other = levels.of_method(n)
            if other is None:
                chosen_levels[0].lookup(n)   # the registry's one-line error
            raise BnnbenchError(f"method {n!r} belongs to --level {other.name}")
        level.lookup(n)   # unavailable methods: why, and what to install
        chosen[level.name].append(n)
    return chosen


def _layer_grid(args, channels, batch):
    if args.preset == "dabnn":
        return layer_shapes.dabnn_grid(args.batch[0] if args.batch else 1)
    return layer_shapes.grid(channels, args.filters, args.kernel, batch, args.out_size,
                            args.stride, args.padding)


def wait_for_quiet(seconds, progress, command):
    """--wait-quiet: None when the host is (or became) quiet, else the
    evidence that it was still busy when measuring began."""
    if not seconds:
        return None
    quiet, seen = hostload.wait_quiet(seconds, progress.note)
    if quiet:
        return None
    evidence = f"still busy after waiting {seconds:g} s ({hostload.describe(seen)})"
    progress.warn(f"{evidence}; measuring anyway, the run will say the host was busy")
    return evidence


def run(args):
    channels = _pick(args.channels, args.quick, "channels", shapes.DEFAULT_CHANNELS)
    if args.batch and len(args.batch) > 1 and set(args.level) - {levels.MODEL.name}:
        raise BnnbenchError("--batch takes one value at the gemm and conv levels")
    batch = _pick(args.batch and args.batch[0], args.quick, "batch", shapes.DEFAULT_BATCH)
    min_time = _pick(args.min_time, args.quick, "min_time", 0.5)
    repeat = _pick(args.repeat, args.quick, "repeat", REPEAT)
    threads = args.threads or tuple(hostinfo.default_threads())
    chosen = [levels.get(name) for name in args.level]
    methods = parse_methods(args.methods, chosen)
    work = []   # (level, steps)
    for level in chosen:
        if level is levels.GEMM:
            grid = shapes.grid(channels, args.filters, args.kernel, batch, args.out_size)
        elif level is levels.CONV:
            grid = _layer_grid(args, channels, batch)
        else:
            grid = levels.net_grid(args.models or NET_MODELS, args.batch or (NET_BATCH,))
        check_memory(grid, level)
        if methods[level.name]:
            work.append((level, plan(grid, methods[level.name], threads, level)))
    steps = [step for _, level_steps in work for step in level_steps]
    settings = {"channels": list(channels), "filters": list(args.filters),
                "kernel": list(args.kernel), "batch": batch, "out_size": args.out_size,
                "threads": list(threads), "methods": [m for ms in methods.values() for m in ms],
                "min_time": min_time, "repeat": repeat, "seed": args.seed, "quick": args.quick,
                "level": list(args.level), "stride": args.stride, "padding": args.padding,
                "models": list(args.models or NET_MODELS) if levels.MODEL.name in args.level
                else None,
                "preset": args.preset}
    host = hostinfo.fingerprint(args.label)
    writer = RunWriter(new_run("sweep", host, settings), args.out)
    progress = Progress(len(steps), quiet=args.quiet)
    with keep_rows_on_interrupt("sweep", writer, progress):
        evidence = wait_for_quiet(args.wait_quiet, progress, "sweep")
        wants_probe = args.probe if args.probe is not None else not args.quick
        # Whole networks have no roofline: a model-only run needs no probe.
        if wants_probe and any(level.roofline for level, _ in work):
            if not args.quiet:
                print("bnnbench sweep: probing this host's peaks ...", file=sys.stderr)
            host["probe"] = probe.checked_probe(threads)
            if host["probe"].get("unreliable"):
                progress.warn(f"the probe is unreliable: {host['probe']['unreliable']}; "
                              f"%peak figures of this run are not to be trusted")
            writer.save()
        failed = []
        for level, level_steps in work:
            failed += run_steps(level_steps, writer, min_time, repeat, seed=args.seed,
                                progress=progress, peaks=host.get("probe"), level=level)
    progress.close()
    line = trust.attach_verdict(writer.run, "sweep", evidence)
    writer.finish("failed" if failed else "complete")
    if args.format == "json":
        json.dump(writer.run, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(_tables(runs_to_frame([writer.run])))
    # Which kernels ran: a build elsewhere on PYTHONPATH loses to the source
    # tree's in-place one when run from the repository root.
    build = kernels.BUILD
    print(f"kernels: path {build['kernel_path']}, flags {build['cflags']!r}, "
          f"from {os.path.dirname(os.path.abspath(_xnor_gemm.__file__))}", file=sys.stderr)
    print(f"run file: {writer.path}", file=sys.stderr)
    print(line, file=sys.stderr)
    if failed:
        for row in failed:
            where = (f"model={row['model']} batch={row['batch']}" if "model" in row
                     else f"M={row['M']} N={row['N']} K={row['K']}")
            print(f"bnnbench sweep: error: {row['level']} {row['method']} "
                  f"threads={row['threads']} {where} gave a wrong result (max error "
                  f"{row['max_abs_error']:g}); not timed", file=sys.stderr)
        return 1
    return 0


def _tables(df):
    """The GEMM table, then the layer table when the run has layer rows."""
    if df.empty:
        return format_table(df)
    parts = []
    gemm = df[df["level"] == levels.GEMM.name]
    if not gemm.empty:
        parts.append(format_table(sweep_table(gemm)))
    layers = df[df["level"] == levels.CONV.name]
    if not layers.empty:
        parts.append(f"whole layers (speedups over {levels.CONV.baseline} and the best float "
                     f"layer method, same run and threads):\n" + format_table(layer_table(layers)))
    nets = df[df["level"] == levels.MODEL.name]
    if not nets.empty:
        parts.append(f"whole networks (ms per image; speedups over {levels.MODEL.baseline}, "
                     f"the best float engine and LCE, same run and threads):\n"
                     + format_table(network_table(nets)))
    return "\n\n".join(parts)
