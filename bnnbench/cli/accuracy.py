"""bnnbench accuracy: what binarization costs in accuracy, on bundled digits
or on a data set the user already has (--data): a numpy MLP and its binary
twin, or (--model) a zoo model's float and binary twins trained by Larq,
the binary one evaluated through bnnbench's own runtime beside Larq."""
import json
import sys

from ..errors import BnnbenchError
from ..escape import terminal
from ..measure import hostinfo
from ..models import datasets
from ..models.accuracy import LARQ_EPOCHS, XNOR_METHOD, Config, run_experiment
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
            "--out. With --model NAME, a zoo model (bnnbench models) is trained "
            "instead, with Larq (needs bnnbench[peers]): its float twin and its binary "
            "twin (QuantConv2D / QuantDense, ste_sign, latent weights clipped, Adam), the "
            "model's input and class count fitted to the data; the binary twin is "
            "exported and evaluated through bnnbench's runtime (net_bnnbench) beside "
            "Larq's own evaluation, and the images where the two predict differently "
            "are counted (the target is none). digits-bnn is made for the default "
            "digits."))
    p.add_argument("--model", metavar="NAME", default=None,
                   help="a zoo model to train with Larq (e.g. digits-bnn); without it, the "
                        "numpy MLP experiment")
    p.add_argument("--data", metavar="PATH", default=None,
                   help="CIFAR-10's cifar-10-python.tar.gz (or cifar-10-batches-py/), or a "
                        "directory of MNIST IDX files (default: scikit-learn's digits)")
    p.add_argument("--limit", metavar="N", type=positive_int, default=None,
                   help="train on the first N train images only (all test images are "
                        "still used): a quick try of a whole CIFAR-10 archive")
    p.add_argument("--seed", type=seed, default=defaults.seed,
                   help=f"seed of weight initialisation and batch order (default: "
                        f"{defaults.seed}); the train/test split is fixed")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"training epochs of each network (default: {defaults.epochs}; "
                        f"{LARQ_EPOCHS} with --model)")
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


def _experiment(writer, experiment, *args):
    """experiment(*args) with its run file kept honest: marked interrupted on
    Ctrl-C (then None) and failed on any error, which still propagates."""
    try:
        return experiment(*args)
    except KeyboardInterrupt:
        writer.finish("interrupted")
        return None
    except BaseException:
        writer.finish("failed")
        raise


def run(args):
    if args.model is not None:
        return run_model(args)
    cfg = Config(seed=args.seed, epochs=args.epochs or Config().epochs, hidden=args.hidden,
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
    result = _experiment(writer, run_experiment, cfg, data)
    if result is None:
        return 130
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


# ------------------------------------------------- --model: a zoo model, by Larq

LARQ_EVALUATIONS = (("float", "larq", "float_larq"), ("binary", "larq", "binary_larq"),
                    ("binary", "net_bnnbench", "binary_net_bnnbench"))


def model_rows(result):
    """Run-file rows of a --model run: one per (network, evaluation)."""
    labels = result["labels"]
    rows = []
    for network, evaluation, key in LARQ_EVALUATIONS:
        pred = result["predictions"][key]
        correct = sum(int(p == t) for p, t in zip(pred, labels))
        row = {"network": network, "evaluation": evaluation,
               "accuracy": correct / len(labels), "correct": correct,
               "test_samples": len(labels), "model": result["model"],
               "predictions": pred}
        if evaluation == "net_bnnbench":
            row["differing_images"] = len(result["differing_images"])
            row["agrees_with_larq"] = not result["differing_images"]
        rows.append(row)
    return rows


def _peer_versions():
    import importlib.metadata as md
    out = {}
    for dist in ("tensorflow", "larq"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def run_model(args):
    from ..methods.peers import larq_train
    from ..models import accuracy, zoo
    model = zoo.get_model(args.model)
    reason = larq_train.missing()
    if reason:
        raise BnnbenchError(f"--model trains with Larq: {reason}")
    epochs = args.epochs or LARQ_EPOCHS
    # Data and fit are checked before any file is made.
    data = datasets.load(args.data, args.limit)
    fitted = accuracy.fit_to_data(model, data)
    data_settings = data.describe()
    data_settings["limit"] = args.limit
    if args.data is not None:
        data_settings["data_files"] = data.files
    host = hostinfo.fingerprint(args.label)
    settings = dict(**data_settings, model=model.name, trainer="larq", epochs=epochs,
                    seed=args.seed, input_shape=list(fitted.input_shape),
                    **{f"{k}_version": v for k, v in _peer_versions().items()})
    run_obj = new_run("accuracy", host, settings=settings)
    writer = RunWriter(run_obj, args.out)
    result = _experiment(writer, accuracy.run_larq_experiment, fitted, data, epochs, args.seed)
    if result is None:
        return 130
    for row in model_rows(result):
        writer.add_row(row)
    ndiff = len(result["differing_images"])
    run_obj["settings"].update(train_seconds=result["train_seconds"],
                               differing_images=ndiff,
                               binary_input_bits=result["binary_input_bits"],
                               threshold_disagreements=result["threshold_disagreements"])
    writer.finish("complete")
    rows = writer.run["rows"]
    if args.format == "json":
        out = {"model": model.name, "epochs": epochs, "seed": args.seed,
               "train_samples": result["train_samples"], "test_samples": result["test_samples"],
               "differing_images": result["differing_images"],
               "binary_input_bits": result["binary_input_bits"],
               "threshold_disagreements": result["threshold_disagreements"],
               "train_seconds": result["train_seconds"], "run_file": writer.path,
               "accuracy": {f"{r['network']} {r['evaluation']}": r["accuracy"] for r in rows},
               **data_settings}
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        name = "digits" if data.path is None else data.name
        if data.path is not None:
            name += f" ({terminal(data_settings['data_file'])}, sha256 {data.sha256[:12]})"
        secs = result["train_seconds"]
        print(f"{name}: {result['train_samples']} train / {result['test_samples']} test "
              f"images; {model.name} as {'x'.join(map(str, fitted.input_shape))} -> "
              f"{data.n_classes} classes, trained by Larq for {epochs} "
              f"epoch{'s' * (epochs != 1)}, seed {args.seed} "
              f"(float {secs['float']:.1f} s, binary {secs['binary']:.1f} s)")
        width = max(len(r["evaluation"]) for r in rows)
        print(f"{'network':8} {'evaluation':{width}} {'accuracy':>9} {'correct':>9}")
        for r in rows:
            print(f"{r['network']:8} {r['evaluation']:{width}} {100 * r['accuracy']:8.2f}% "
                  f"{r['correct']:>4}/{r['test_samples']}")
        bits = result["binary_input_bits"]
        flipped = sum(b["differ"] or 0 for b in bits.values())
        total = sum(b["total"] for b in bits.values())
        print(f"net_bnnbench vs Larq: {ndiff} of {result['test_samples']} test images predicted "
              f"differently; {flipped} of {total} input bits of binary layers differ")
        folds = result["threshold_disagreements"]
        if folds:
            print(f"folded thresholds vs Keras' BatchNorm at every integer: "
                  f"{sum(folds.values())} channel(s) decide differently "
                  f"({', '.join(f'{k}: {v}' for k, v in folds.items())})")
    print(f"run file: {writer.path}", file=sys.stderr)
    if ndiff:
        print(f"bnnbench accuracy: error: net_bnnbench and Larq predict {ndiff} test image(s) "
              f"differently", file=sys.stderr)
        return 1
    return 0
