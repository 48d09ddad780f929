"""bnnbench host: the fingerprint every run file carries."""
import json

from ..measure import hostinfo, probe
from .options import add_format


def register(sub):
    p = sub.add_parser("host", help="print this host's fingerprint",
                       description="Print the host fingerprint recorded in every run file: "
                                   "CPU, flags, cores, memory, BLAS, kernel build flags.")
    p.add_argument("--label", default=None, help="name of this host (default: hostname)")
    p.add_argument("--probe", action="store_true",
                   help="also measure the peaks the kernels are judged against (about 10 s): "
                        "xor+popcount and float32 FMA throughput, read, copy and sign+pack "
                        "bandwidth, on 1 thread and on every core")
    add_format(p)
    p.set_defaults(func=run)


def _flat(d, prefix=""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            if isinstance(value, list):
                value = " ".join(map(str, value)) or "-"
            elif isinstance(value, float):
                value = f"{value:.4g}"
            yield f"{prefix}{key}", value


def _lines(d):
    pairs = list(_flat(d))
    width = max(len(k) for k, _ in pairs)
    return [f"{k:<{width}}  {v}" for k, v in pairs]


def run(args):
    fp = hostinfo.fingerprint(args.label)
    if args.probe:
        fp["probe"] = probe.checked_probe()
    print(json.dumps(fp, indent=1) if args.format == "json" else "\n".join(_lines(fp)))
    return 0
