"""Argument types shared by the subcommands."""
import argparse


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
