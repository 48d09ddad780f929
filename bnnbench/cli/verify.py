"""bnnbench verify: are this build's kernels exact here? Run it first on a new device."""
import sys

from ..measure import levels
from ..methods import kernels
from ..methods.verify import verify_all, verify_layers
from ..progress import Progress

# Whole networks checked here: the CIFAR-10 models (32x32, seconds even under
# qemu); the 224x224 ones with --all-models (their numpy reference takes
# about 15 s natively, minutes under qemu), one image each.
NETWORKS = ("cntk-basic-bn", "cntk-vgg9", "cntk-resnet", "cntk-bnn", "bmxnet-resnet18-cifar10")
IMAGENET_NETWORKS = ("birealnet18", "quicknet-small")


def register(sub):
    p = sub.add_parser("verify", help="check every kernel against numpy; non-zero exit on mismatch",
                       description="Run every available method on awkward shapes (K around "
                                   "word boundaries, M and N of 1 and off the tile sizes) with "
                                   "1 and 2 threads, and compare with numpy: xnor results must "
                                   "equal sign(a) @ sign(b) exactly. Then every whole-layer "
                                   "method of bnnbench's own on awkward layers (strides, "
                                   "paddings, channels off the word size), and bnnbench's "
                                   "network runtime on the CIFAR-10 models of the zoo against "
                                   "the plain numpy network.")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--all-models", action="store_true",
                   help=f"also the 224x224 networks ({', '.join(IMAGENET_NETWORKS)}), one "
                        f"image each: slower, minutes under qemu")
    p.set_defaults(func=run)


def run(args):
    build = kernels.BUILD
    print(f"kernels: path={build['kernel_path']} openmp={build['openmp']} "
          f"flags={build['cflags']!r} compiler={build['compiler']}")
    progress = Progress(0, quiet=args.quiet)
    failures = verify_all(progress=progress)
    progress.close()
    failures += verify_layers()   # whole layers on the same kernels
    failures += verify_networks()
    if args.all_models:
        failures += verify_networks(IMAGENET_NETWORKS, batch=1)
    if failures:
        for f in failures:
            print(f"MISMATCH {f}", file=sys.stderr)
        print(f"verify: {len(failures)} mismatches", file=sys.stderr)
        return 1
    models = len(NETWORKS) + (len(IMAGENET_NETWORKS) if args.all_models else 0)
    print(f"verify: all {len(kernels.METHODS)} methods exact on every shape "
          f"({', '.join(kernels.METHODS)}), every layer method of bnnbench's own, and the "
          f"network runtime on {models} models")
    return 0


def verify_networks(models=NETWORKS, threads=(1, 2), batch=2, seed=0):
    """bnnbench's own network engines against the numpy network, through the
    model level's own check; a list of failures."""
    failures = []
    for name in models:
        shape = levels.NetShape(name, batch)
        operands = levels.MODEL.make_operands(shape, seed)
        check = levels.MODEL.check(operands, seed)
        for engine in ("net_bnnbench", "net_float"):
            for t in threads:
                run = levels.MODEL.prepare(engine, operands, t)
                ok, err = check.check(engine, run(), run)
                if not ok:
                    failures.append(f"{engine} threads={t} {shape.describe()}: max error "
                                    f"{err:g}")
    return failures
