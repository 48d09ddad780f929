"""bnnbench verify: are this build's kernels exact here? Run it first on a new device."""
import sys

from ..methods import kernels
from ..progress import Progress
from ..methods.verify import verify_all


def register(sub):
    p = sub.add_parser("verify", help="check every kernel against numpy; non-zero exit on mismatch",
                       description="Run every available method on awkward shapes (K around "
                                   "word boundaries, M and N of 1 and off the tile sizes) with "
                                   "1 and 2 threads, and compare with numpy: xnor results must "
                                   "equal sign(a) @ sign(b) exactly. Then every whole-layer "
                                   "method of bnnbench's own on awkward layers (strides, "
                                   "paddings, channels off the word size).")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args):
    build = kernels.BUILD
    print(f"kernels: path={build['kernel_path']} openmp={build['openmp']} "
          f"flags={build['cflags']!r} compiler={build['compiler']}")
    progress = Progress(0, quiet=args.quiet)
    failures = verify_all(progress=progress)
    progress.close()
    from ..methods.verify import verify_layers   # whole layers on the same kernels
    failures += verify_layers()
    if failures:
        for f in failures:
            print(f"MISMATCH {f}", file=sys.stderr)
        print(f"verify: {len(failures)} mismatches", file=sys.stderr)
        return 1
    print(f"verify: all {len(kernels.METHODS)} methods exact on every shape "
          f"({', '.join(kernels.METHODS)}), and every layer method of bnnbench's own")
    return 0
