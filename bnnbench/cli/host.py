"""bnnbench host: the fingerprint every run file carries."""
import json

from .. import hostinfo
from .options import add_format


def register(sub):
    p = sub.add_parser("host", help="print this host's fingerprint",
                       description="Print the host fingerprint recorded in every run file: "
                                   "CPU, flags, cores, memory, BLAS, kernel build flags.")
    p.add_argument("--label", default=None, help="name of this host (default: hostname)")
    add_format(p)
    p.set_defaults(func=run)


def _lines(d, prefix=""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _lines(value, f"{prefix}{key}.")
        else:
            if isinstance(value, list):
                value = " ".join(map(str, value)) or "-"
            yield f"{prefix}{key:<{max(1, 22 - len(prefix))}} {value}"


def run(args):
    fp = hostinfo.fingerprint(args.label)
    print(json.dumps(fp, indent=1) if args.format == "json" else "\n".join(_lines(fp)))
    return 0
