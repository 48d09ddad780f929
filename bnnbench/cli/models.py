"""bnnbench models: the model zoo's sizes and operation counts, and their weights."""
import json
import sys

import pandas as pd

from ..models import zoo
from ..errors import BnnbenchError
from .options import seed


def register(sub):
    p = sub.add_parser(
        "models", help="parameters, float vs packed binary size and MACs of the model zoo",
        description=(
            "For each model spec (CIFAR-10 models from the CNTK write-ups and BMXNet's "
            "ResNet-18), derived layer by layer: params, float_bytes (every parameter as "
            "float32), binary_bytes (binary layers' weights packed into 64-bit words per "
            "output channel, ceil(K/64)*8 bytes with K = k*k*in_channels; biases, batch norm, "
            "and the float first and last layers at 4 bytes), compression = float_bytes / "
            "binary_bytes, float_macs and binary_macs per image (binary MACs become "
            "xnor-popcount), and ops = float_macs + binary_macs / 64. First conv and last "
            "dense stay float, as in BMXNet and XNOR-Net; cntk-bnn keeps its own choice."))
    p.add_argument("names", nargs="*", metavar="MODEL",
                   help=f"models to show (default: all: {', '.join(zoo.MODELS)})")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="output format (default: table); json is a list of objects")
    p.add_argument("--layers", action="store_true",
                   help="per-layer breakdown (shapes, params, MACs, GEMM M/K/N per image)")
    p.add_argument("--export", metavar="DIR", default=None,
                   help="also write each model's weights (random, seeded) to DIR/<model>.bnnw "
                        "in the packed format of bnnbench.models.weights: binary_bytes plus a "
                        "small header")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of the exported random weights (default: 0)")
    p.add_argument("--published", action="store_true",
                   help="print the published reference figures (with sources) instead")
    p.set_defaults(func=run)


def _human_bytes(n):
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _millions(n):
    return f"{n / 1e6:.2f}"


def summary_table(frame):
    """The summary frame as a person reads it (sizes in MB = 10^6 bytes)."""
    return pd.DataFrame({
        "model": frame["name"],
        "dataset": frame["dataset"],
        "params": frame["params"].map("{:,}".format),
        "float32": frame["float_bytes"].map(_human_bytes),
        "binary": frame["binary_bytes"].map(_human_bytes),
        "compression": frame["compression"].map("{:.1f}x".format),
        "float_MMACs": frame["float_macs"].map(_millions),
        "binary_MMACs": frame["binary_macs"].map(_millions),
        "MOps": frame["ops"].map(_millions),
    })


def published_table(frame):
    """Reference figures, one line each: ~ marks "about", a-b a range."""
    from ..models.published import SHORT

    def value(row):
        text = ("~" if row["approx"] else "") + f"{row['value']:g}"
        if pd.notna(row["value_max"]):
            text += f"-{row['value_max']:g}"
        return f"{text} {row['unit']}"

    return pd.DataFrame({
        "source": frame["source"].map(SHORT),
        "subject": frame["subject"],
        "metric": frame["metric"],
        "value": frame.apply(value, axis=1),
        "epochs": frame["epochs"].map(lambda e: "" if pd.isna(e) else f"{e:.0f}"),
        "hardware": frame["hardware"].fillna("").map(lambda h: h if len(h) <= 40
                                                     else h[:39] + "…"),
    })


def layer_table(model):
    rows = []
    for i in zoo.resolve(model):
        rows.append({
            "model": model.name, "layer": i.name, "type": i.type,
            "in": "x".join(map(str, i.in_shape)), "out": "x".join(map(str, i.out_shape)),
            "params": i.params, "binary": i.binary,
            "float_bytes": i.float_bytes, "binary_bytes": i.binary_bytes, "macs": i.macs,
            "M": i.gemm[0] if i.gemm else None, "K": i.gemm[1] if i.gemm else None,
            "N_per_image": i.gemm[2] if i.gemm else None,
        })
    return pd.DataFrame(rows).astype({"M": "Int64", "K": "Int64", "N_per_image": "Int64"})


def run(args):
    if args.published:
        from ..models.published import published
        frame = published()
        if args.format == "json":
            print(frame.to_json(orient="records", indent=1))
        elif args.format == "csv":
            sys.stdout.write(frame.to_csv(index=False))
        else:
            print(published_table(frame).to_string(index=False))
        return 0
    selected = [zoo.get_model(n) for n in dict.fromkeys(args.names)] or None
    if args.layers:
        frame = pd.concat([layer_table(m) for m in selected or zoo.MODELS.values()],
                          ignore_index=True)
    else:
        frame = zoo.summary_frame(selected)
    if args.export is not None:
        from ..models.weights import export_model
        for m in selected or zoo.MODELS.values():
            path = export_model(m, args.export, seed=args.seed)
            print(f"wrote {path}", file=sys.stderr)
    if args.format == "json":
        json.dump(frame.to_dict(orient="records"), sys.stdout, indent=1, default=_json_default)
        sys.stdout.write("\n")
    elif args.format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif args.layers:
        shown = frame.assign(binary=frame["binary"].map({True: "yes", False: ""}))
        for col in ("M", "K", "N_per_image"):
            shown[col] = shown[col].map(lambda v: "" if v is None or v is pd.NA else str(v))
        print(shown.to_string(index=False))
    else:
        print(summary_table(frame).to_string(index=False))
    return 0


def _json_default(value):
    # numpy scalars from the frame: plain Python numbers in the JSON.
    if hasattr(value, "item"):
        return value.item()
    raise BnnbenchError(f"cannot write {type(value).__name__} as JSON")
