"""bnnbench accuracy: what binarization costs in accuracy, on bundled digits
or on a data set the user already has (--data)."""
import json
import sys

from ..escape import terminal
from ..measure import hostinfo
from ..models import datasets
from ..models.accuracy import XNOR_METHOD, Config, run_experiment
from ..runs.writer import RunWriter, new_run
from .options import positive_int, seed


def register(sub):
    defaults = Config()
    p = sub.add_parser(
        "accuracy", help="train a float net and its binary twin (digits, or --data); compare "
                          "accuracy",
        description=(
            "Train, in pure numpy, a small network (dense 64 -> H, BN, hidden dense "
            "layers + BN, dense -> 10) and its binarized twin (float first and last "
            "layers; hidden layers with +1/-1 weights and sign activations, straight-"
            "through estimator; batch norm float) on scikit-learn's bundled digits "
            "(1797 8x8 images, fixed stratified 75/25 split). Reports the test accuracy "
            "of the float net, of the binary net evaluated with numpy on +1/-1 values, "
            f"and of the binary net evaluated through bnnbench's {XNOR_METHOD} kernel; the "
            "last two must agree prediction by prediction. Deterministic for a given "
            "seed; takes about 20 s with the defaults. With --data, the same experiment "
            "runs on a data set you already have, images flattened: CIFAR-10's python "
            "archive (cifar-10-python.tar.gz) or its extracted directory, or a directory of "
            "MNIST IDX files (raw or .gz); nothing is downloaded. The run is saved under "
            "--out."))
    p.add_argument("--data", metavar="PATH", default=None,
                   help="CIFAR-10's cifar-10-python.tar.gz (or cifar-10-batches-py/), or a "
                        "directory of MNIST IDX files (default: scikit-learn's digits)")
    p.add_argument("--limit", metavar="N", type=positive_int, default=None,
                   help="train on the first N train images only (all test images are "
                        "still used): a quick try of a whole CIFAR-10 archive")
    p.add_argument("--seed", type=seed, default=defaults.seed,
                   help=f"seed of weight initialisation and batch order (default: "
                        f"{defaults.seed}); the train/test split is fixed")
    p.add_argument("--epochs", type=positive_int, default=defaults.epochs,
                   help=f"training epochs of each network (default: {defaults.epochs})")
    p.add_argument("--hidden", type=positive_int, default=defaults.hidden,
                   help=f"hidden width H (default: {defaults.hidden})")
    p.add_argument("--binary-layers", type=positive_int, default=defaults.binary_layers,
                   help=f"binary hidden layers (default: {defaults.binary_layers})")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="output format (default: table)")
    p.add_argument("--label", default=None,
                   help="name of this host in results (default: hostname)")
    p.add_argument("--out", default="results",
                   help="directory for the run file (default: results/)")
    p.set_defaults(func=run)


def rows_of(result):
    """Run-file rows: one per (network, evaluation)."""
    labels = result["labels"]
    rows = []
    for network, evaluation, key in (("float", "numpy float64", "float"),
                                     ("binary", "numpy +1/-1 float32", "binary"),
                                     ("binary", XNOR_METHOD, "xnor")):
        pred = result["predictions"][key]
        correct = sum(int(p == t) for p, t in zip(pred, labels))
        row = {"network": network, "evaluation": evaluation,
               "accuracy": correct / len(labels), "correct": correct,
               "test_samples": len(labels), "predictions": pred}
        if key == "xnor":
            row["matches_reference"] = result["xnor_matches_reference"]
        rows.append(row)
    return rows


def summary(result, run_file):
    out = {k: result[k] for k in ("float_accuracy", "binary_accuracy", "xnor_accuracy",
                                  "xnor_matches_reference", "train_samples", "test_samples",
                                  "train_seconds")}
    out.update(dataset="sklearn digits", xnor_method=XNOR_METHOD, **result["config"])
    out["run_file"] = run_file
    return out


def run(args):
    cfg = Config(seed=args.seed, epochs=args.epochs, hidden=args.hidden,
                 binary_layers=args.binary_layers)
    cfg.check()
    # The data is read and checked before any file is made: a damaged
    # archive costs one line and leaves no run file behind.
    data = None
    data_settings = {"dataset": "sklearn digits"}
    if args.data is not None or args.limit is not None:
        data = datasets.load(args.data, args.limit)
        data_settings = data.describe()
        if args.data is not None:
            data_settings["limit"] = args.limit
            data_settings["data_files"] = data.files
    host = hostinfo.fingerprint(args.label)
    run_obj = new_run("accuracy", host, settings=dict(**data_settings,
                                                      xnor_method=XNOR_METHOD,
                                                      **cfg.__dict__))
    writer = RunWriter(run_obj, args.out)
    try:
        result = run_experiment(cfg, data)
    except KeyboardInterrupt:
        writer.finish("interrupted")
        return 130
    except BaseException:
        writer.finish("failed")
        raise
    for row in rows_of(result):
        writer.add_row(row)
    run_obj["settings"]["train_seconds"] = result["train_seconds"]
    writer.finish("complete" if result["xnor_matches_reference"] else "failed")
    out = summary(result, writer.path)
    if data is not None:
        out.update(data_settings)
    if args.format == "json":
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        name = "digits" if data is None else data.name
        if data is not None and data.path is not None:
            name += f" ({terminal(data_settings['data_file'])}, sha256 {data.sha256[:12]})"
        print(f"{name}: {out['train_samples']} train / {out['test_samples']} test images, "
              f"hidden {cfg.hidden}, {cfg.binary_layers} binary layers, {cfg.epochs} epochs, "
              f"seed {cfg.seed} (trained in {out['train_seconds']:.1f} s)")
        width = max(len(r["evaluation"]) for r in writer.run["rows"])
        print(f"{'network':8} {'evaluation':{width}} {'accuracy':>9} {'correct':>9}")
        for r in writer.run["rows"]:
            print(f"{r['network']:8} {r['evaluation']:{width}} {100 * r['accuracy']:8.2f}% "
                  f"{r['correct']:>4}/{r['test_samples']}")
        print(f"{XNOR_METHOD} matches numpy prediction by prediction: "
              f"{'yes' if out['xnor_matches_reference'] else 'NO'}")
    print(f"run file: {writer.path}", file=sys.stderr)
    if not result["xnor_matches_reference"]:
        print(f"bnnbench accuracy: error: {XNOR_METHOD} disagrees with the numpy reference "
              f"on the binary layers", file=sys.stderr)
        return 1
    return 0
