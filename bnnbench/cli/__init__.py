"""The `bnnbench` command: one module per subcommand, each with register()."""
import argparse
import importlib
import sys

from ..errors import BnnbenchError
from ..escape import terminal

COMMANDS = ("sweep", "host", "verify", "models", "profile", "accuracy", "report", "compare",
            "fleet")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one `--help` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = Parser(prog="bnnbench", description=(
        "Measure what binarization buys on this device: xnor-popcount GEMM against "
        "its float twin (the platform BLAS), over BMXNet-style convolution sweeps."))
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"bnnbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    # Options after `--` belong to another command (bnnbench fleet run passes
    # them to the sweep on every device); argparse's subparsers would not
    # leave them alone.
    passthrough = None
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    args = parser.parse_args(argv)
    if passthrough is not None:
        if not hasattr(args, "passthrough"):
            parser.error("options after '--' are only for bnnbench fleet run")
        args.passthrough = passthrough
    try:
        return args.func(args) or 0
    except BnnbenchError as exc:
        # The message may quote a file's label or path: shown, never obeyed.
        print(f"bnnbench {args.command}: error: {terminal(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except OSError as exc:   # a fault no command foresaw: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bnnbench {args.command}: error: {terminal(where)}{exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except MemoryError:
        print(f"bnnbench {args.command}: error: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
