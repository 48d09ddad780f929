#!/usr/bin/env python3
"""Time xnor tile variants side by side: build tile_bench.c once per variant
(compiler flags, e.g. a -D knob of the kernel headers), run the builds in
alternation for several rounds, print each variant's rate and its ratio to the
first, with the spread of the per-round ratios and the load of the host.

    tools/tiles/compare.py                          # this host's default variants
    tools/tiles/compare.py --variant lookup=-mno-avx512f \\
        --variant popcnt1="-mno-avx512f -DBNN_AVX2_POPCNT_ROWS=1"

Standard library only, so it runs before any virtualenv exists. Every build
checks the results of its timed tile against a plain popcount (tile_bench.c)."""
import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KERNELS = os.path.join(ROOT, "kernels_pyx")
SOURCE = os.path.join(HERE, "tile_bench.c")


X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")
# gcc on ARM takes -mcpu=native (older ones no -march=native), x86 -march
NATIVE = "-march=native" if X86 else "-mcpu=native"


def default_variants():
    """The AVX2 tile's popcount mixes on x86 (an AVX-512 host builds them with
    -mno-avx512f), else just the native build."""
    if not X86:
        return [("native", "")]
    avx2 = "-mno-avx512f"
    return [("lookup", avx2)] + [(f"popcnt{n}", f"{avx2} -DBNN_AVX2_POPCNT_ROWS={n}")
                                 for n in (1, 2, 4)]


def parse_variant(text):
    name, sep, flags = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--variant wants NAME=FLAGS, got {text!r}")
    return name, flags


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit():
    try:
        out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build(cc, name, flags, outdir):
    exe = os.path.join(outdir, f"tile_bench-{name}")
    cmd = [cc, "-O3", NATIVE, *shlex.split(flags), f"-I{KERNELS}", SOURCE, "-o", exe]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        first = (res.stderr.strip().splitlines() or ["no output"])[0]
        sys.exit(f"compare.py: variant {name} does not build ({' '.join(cmd)}): {first}")
    return exe


def run(name, exe, quick):
    res = subprocess.run([exe] + (["--quick"] if quick else []), capture_output=True, text=True)
    if res.returncode == -signal.SIGINT:
        raise KeyboardInterrupt  # Ctrl-C reached the timer before this process
    if res.returncode != 0:
        sys.exit(f"compare.py: variant {name} failed: {res.stderr.strip() or res.returncode}")
    rows = [dict(kv.split("=", 1) for kv in line.split()) for line in res.stdout.splitlines()]
    return rows[0]["path"], {int(r["k_bits"]): float(r["gbit_mac_per_s"]) for r in rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", type=parse_variant, metavar="NAME=FLAGS",
                    help="a build to time (repeat; the first is the baseline of the ratios). "
                         "Default on x86: the AVX2 tile with 0, 1, 2 and 4 rows by POPCNT")
    ap.add_argument("--rounds", type=int, default=5,
                    help="alternations of all variants (default 5)")
    ap.add_argument("--quick", action="store_true", help="short runs: checks, not figures")
    ap.add_argument("--format", choices=("table", "json"), default="table",
                    help="table for a person (default), json for a machine")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler (default $CC or cc)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if shutil.which(args.cc) is None:
        ap.error(f"C compiler {args.cc!r} not found (set --cc or CC)")
    variants = args.variant or default_variants()
    if len({name for name, _ in variants}) != len(variants):
        ap.error("variant names must differ")

    load_before = os.getloadavg()[0]
    rates = {name: [] for name, _ in variants}
    paths = {}
    done = 0
    try:
        with tempfile.TemporaryDirectory(prefix="tile_bench-") as tmp:
            exes = [(name, build(args.cc, name, flags, tmp)) for name, flags in variants]
            for rnd in range(args.rounds):
                print(f"round {rnd + 1}/{args.rounds}", file=sys.stderr, flush=True)
                for name, exe in exes:
                    paths[name], by_k = run(name, exe, args.quick)
                    rates[name].append(by_k)
                done += 1
    except KeyboardInterrupt:
        # whole rounds only, so every ratio pairs runs made side by side
        if done == 0:
            sys.exit("compare.py: interrupted before the first round finished; nothing to report")
        print(f"compare.py: interrupted; reporting the {done} whole round(s) done",
              file=sys.stderr)
        for name in rates:
            del rates[name][done:]
    args.rounds = done
    load_after = os.getloadavg()[0]

    base = variants[0][0]
    ks = sorted(rates[base][0])
    result = {"cpu": cpu_name(), "commit": commit(), "cc": args.cc, "rounds": args.rounds,
              "loadavg_1min": [round(load_before, 2), round(load_after, 2)],
              "unit": "Gbit-MAC/s, best of 7 per round", "variants": []}
    for name, flags in variants:
        row = {"name": name, "flags": flags, "path": paths[name], "k": {}}
        for k in ks:
            own = [r[k] for r in rates[name]]
            ratio = [r[k] / b[k] for r, b in zip(rates[name], rates[base])]
            row["k"][k] = {"median": statistics.median(own), "min": min(own), "max": max(own),
                           "ratio": statistics.median(ratio), "ratio_min": min(ratio),
                           "ratio_max": max(ratio)}
        result["variants"].append(row)

    if args.format == "json":
        print(json.dumps(result, indent=1))
        return 0
    print(f"CPU: {result['cpu']}; commit {result['commit']}; {args.cc}; "
          f"{args.rounds} rounds; load {load_before:.2f} -> {load_after:.2f} (1-min avg)")
    print(f"u64 xnor tile, 1 thread, Gbit-MAC/s median (min-max) and ratio to {base} "
          f"(median of per-round ratios, min-max)")
    head = f"{'variant':<12} {'path':<18}" + "".join(f"{'K=' + str(k):>34}" for k in ks)
    print(head)
    for row in result["variants"]:
        cells = "".join(
            f"{c['median']:7.0f} ({c['min']:.0f}-{c['max']:.0f}) "
            f"{c['ratio']:5.3f} ({c['ratio_min']:.2f}-{c['ratio_max']:.2f})".rjust(34)
            for c in row["k"].values())
        print(f"{row['name']:<12} {row['path']:<18}{cells}")
    if max(load_before, load_after) > 0.5:
        print("note: the host was busy (1-min load above 0.5); ratios from a quiet host are "
              "the ones to quote", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
