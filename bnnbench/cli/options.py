"""Argument types shared by the subcommands."""
import argparse

from .. import limits
from ..errors import BnnbenchError


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected a positive integer)")
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r} (must be >= 1)")
    return value


def int_list(text):
    """'1,32,256' -> (1, 32, 256); every value a positive integer."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected e.g. 1,32,256)")
    values = []
    for p in parts:
        try:
            v = int(p)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid value {p!r} in {text!r} (expected comma-separated positive integers)")
        if v < 1:
            raise argparse.ArgumentTypeError(f"invalid value {p!r} in {text!r} (must be >= 1)")
        values.append(v)
    return tuple(dict.fromkeys(values))


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected a number of seconds)")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid value {text!r} (must be >= 0 and finite)")
    return value


def add_format(parser, choices=("table", "json"), default="table"):
    parser.add_argument("--format", choices=choices, default=default,
                        help=f"output format (default: {default})")


def thread_list(text):
    """An int_list of thread counts, each within limits.check_threads."""
    values = int_list(text)
    try:
        return tuple(limits.check_threads(v, "--threads value") for v in values)
    except BnnbenchError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def seed(text):
    """A seed numpy accepts: 0 .. 2**63-1 (checked before any file is made)."""
    try:
        return limits.check_seed(int(text))
    except ValueError as exc:
        if isinstance(exc, BnnbenchError):
            raise argparse.ArgumentTypeError(f"invalid value {text!r} ({exc})")
        raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected an integer)")
