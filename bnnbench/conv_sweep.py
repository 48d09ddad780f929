"""The layer level of the sweep (bnnbench sweep --level conv): whole conv
layers from a seeded float32 feature map, each method verified against the
numpy reference before it is timed, and the layer-only columns of a row."""
import numpy as np
import pandas as pd

from . import conv
from .sweep import Level
from .verify import EPS32


def make_operands(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((shape.batch, shape.height, shape.width, shape.channels),
                            dtype=np.float32)
    w = rng.standard_normal((shape.filters, shape.kernel, shape.kernel, shape.channels),
                            dtype=np.float32)
    return x, w, shape.stride, shape.padding


class LayerReference:
    """Binary outputs against the exact reference in full; float outputs on
    a sample of output pixels within 4 * eps32 * sqrt(K) * (|x| (*) |w|),
    as GEMM rows are checked (verify.Reference)."""

    def __init__(self, x, w, stride, padding, pixels=256, seed=0):
        self.x, self.w, self.stride, self.padding = x, w, stride, padding
        self.pixels, self.seed = pixels, seed
        self._binary = self._float = None

    def binary(self):
        if self._binary is None:
            self._binary = conv.reference(self.x, self.w, self.stride, self.padding, binary=True)
        return self._binary

    def float(self):
        if self._float is None:
            # Both references on the whole layer cost a float64 conv; a sample
            # of pixels from the im2col view keeps this cheap at 512 channels.
            cols = conv._windows(self.x, self.w.shape[1], self.w.shape[2], self.stride,
                                 conv.layer_geometry(self.x.shape, self.w.shape, self.stride,
                                                     self.padding), 0)
            flat = cols.reshape(-1, int(np.prod(self.w.shape[1:])))
            rng = np.random.default_rng(self.seed)
            idx = np.sort(rng.choice(flat.shape[0], size=min(self.pixels, flat.shape[0]),
                                     replace=False))
            sample = flat[idx].astype(np.float64)
            wmat = self.w.reshape(self.w.shape[0], -1).astype(np.float64).T
            bound = 4 * EPS32 * np.sqrt(max(1, wmat.shape[0])) * (np.abs(sample) @ np.abs(wmat))
            self._float = (idx, sample @ wmat, bound)
        return self._float

    def check(self, name, out):
        if conv.BY_NAME[name].kind == "xnor":
            ref = self.binary()
            if out.dtype != np.int32 or out.shape != ref.shape:
                return False, float("inf")
            return (bool(np.array_equal(out, ref)),
                    float(np.max(np.abs(out.astype(np.int64) - ref), initial=0)))
        idx, exact, bound = self.float()
        got = out.reshape(-1, out.shape[-1])[idx].astype(np.float64)
        if got.shape != exact.shape:
            return False, float("inf")
        err = np.abs(got - exact)
        return out.dtype == np.float32 and bool(np.all(err <= bound + 1e-30)), float(
            np.max(err, initial=0))


def shape_bytes(shape):
    """Peak bytes of one layer's steps: feature map and weights, the float
    im2col buffer, outputs and the reference (int64 windows of the binary
    reference are taken as views)."""
    n, k, f = shape.N, shape.K, shape.filters
    return 2 * shape.feature_map_bytes + 4 * f * k * 2 + 4 * n * k + 8 * n * f * 4


def row_fields(shape, name):
    """Binary layers read the float feature map once per call: their roofline
    is min(popcount peak, read bandwidth x bit-ops per byte of it)."""
    fields = {"feature_map_bytes": shape.feature_map_bytes}
    if conv.BY_NAME[name].kind == "xnor":
        fields["read_bytes"] = shape.feature_map_bytes
    return fields


LAYER = Level(
    name="conv", methods=conv.CONV_METHODS, by_name=conv.BY_NAME, baseline="conv_float_blas",
    blas_methods=frozenset({"conv_float_blas"}), make_operands=make_operands,
    prepare=lambda name, ops, threads: conv.prepare(name, *ops, threads=threads),
    reference=lambda ops, seed: LayerReference(*ops, seed=seed), shape_bytes=shape_bytes,
    row_fields=row_fields)


def add_best_float(df):
    """speedup_best_float: the fastest verified float layer method of the same
    run, shape and thread count over this row (so binary layers are never
    only compared with the weakest float)."""
    keys = ["run_id", "channels", "filters", "kernel", "batch", "height", "width", "stride",
            "padding", "threads"]
    floats = df[(df["kind"] == "float") & (df["verified"] == True)]  # noqa: E712
    best = floats.groupby(keys, dropna=False)["median_s"].min().rename("best_float_s")
    out = df.merge(best.reset_index(), on=keys, how="left")
    out["speedup_best_float"] = out["best_float_s"] / out["median_s"]
    return out.drop(columns="best_float_s")


def layer_table(df):
    """The layer rows of a sweep for people: time, the two speedups, share
    of the roofline and the memory each method holds."""
    if df.empty:
        return pd.DataFrame()
    from .results import add_speedups
    if "speedup" not in df:
        df = add_speedups(df)
    df = add_best_float(df)
    order = {name: i for i, name in enumerate(conv.BY_NAME)}
    df = (df.assign(_m=df["method"].map(order))
          .sort_values(["filters", "kernel", "stride", "height", "channels", "threads", "_m"]))
    cols = {
        "input": [f"{int(b)}x{int(h)}x{int(w)}x{int(c)}" for b, h, w, c in
                  zip(df["batch"], df["height"], df["width"], df["channels"])],
        "filters": df["filters"], "k": df["kernel"], "s": df["stride"], "pad": df["padding"],
        "threads": df["threads"], "method": df["method"],
        "median_ms": df["median_s"] * 1e3, "iqr_%": 100 * df["iqr_s"] / df["median_s"],
        "vs_conv_float_blas": df["speedup"], "vs_best_float": df["speedup_best_float"],
    }
    if "peak_fraction" in df and df["peak_fraction"].notna().any():
        cols["%peak"] = 100 * df["peak_fraction"]
    if "im2col_share" in df and df["im2col_share"].notna().any():
        cols["im2col_%"] = 100 * df["im2col_share"]
    cols["held_MB"] = df["held_bytes"] / 1e6
    cols["verified"] = df["verified"]
    return pd.DataFrame(cols).reset_index(drop=True)


# Awkward layers (batch, height, width, channels, filters, kernel, stride,
# padding): C off word multiples and C = 1, stride 2, both paddings and
# explicit ones, kernels 1/3/5, batch 1, H != W, F off the panel width (8,
# 16 or 32 columns) and over one panel, and a batch that binary layers
# pipeline image by image on every thread count the tests use. The tests
# and `bnnbench verify` use them.
AWKWARD_LAYERS = [
    (1, 5, 7, 1, 3, 3, 1, "same"),
    (2, 9, 6, 33, 17, 3, 2, "same"),
    (1, 12, 12, 65, 70, 5, 1, "valid"),
    (3, 8, 11, 64, 5, 1, 1, "valid"),
    (1, 7, 7, 129, 33, 5, 2, "same"),
    (2, 6, 6, 32, 64, 3, 1, "same"),
    (1, 4, 4, 3, 2, 5, 1, "same"),      # kernel larger than the input: all edges
    (1, 10, 13, 31, 1, 3, 2, "valid"),
    (2, 9, 9, 96, 40, 5, 2, "valid"),
    (1, 3, 17, 200, 19, 1, 2, "same"),
    (2, 8, 9, 35, 6, 3, 2, 1),          # explicit padding (model specs)
    (1, 6, 6, 70, 9, 5, 1, 2),
    (7, 5, 6, 70, 17, 3, 2, "same"),    # images split unevenly over 2 and 3 threads
]


def verify_layers(methods=None, threads=(1, 2), seed=0):
    """bnnbench's own layer methods on every awkward layer; a list of failures."""
    methods = methods or [m for m in conv.CONV_METHODS if not conv.BY_NAME[m].engine]
    rng = np.random.default_rng(seed)
    failures = []
    for b, h, w, c, f, k, stride, padding in AWKWARD_LAYERS:
        x = rng.standard_normal((b, h, w, c), dtype=np.float32)
        wt = rng.standard_normal((f, k, k, c), dtype=np.float32)
        ref = LayerReference(x, wt, stride, padding, seed=seed)
        for name in methods:
            for t in threads:
                ok, err = ref.check(name, conv.conv2d(name, x, wt, stride, padding, t))
                if not ok:
                    failures.append(f"{name} threads={t} layer {b}x{h}x{w}x{c} filters={f} "
                                    f"kernel={k} stride={stride} padding={padding}: "
                                    f"max error {err:g}")
    return failures
