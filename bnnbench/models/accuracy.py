"""What binarization costs in accuracy: a float network and its binary twin
trained on scikit-learn's bundled `digits` (8x8 images, 10 classes, offline),
or on a data set the user has (CIFAR-10's python archive, MNIST's IDX
files: bnnbench.models.datasets), images flattened.

Both networks have the same shape: dense 64 -> H, BN, then `binary_layers`
x [dense H -> H, BN], then dense H -> 10. The float twin uses ReLU. The
binary twin follows BMXNet / XNOR-Net: the first and last dense layers are
float; the hidden ones read sign(activations) and use sign(weights), both
+1/-1, trained with the straight-through estimator (gradient passed where
|x| <= 1, latent weights clipped to [-1, 1]); batch norm stays float. The
last hidden batch norm feeds the float classifier through hardtanh, as
BMXNet's examples feed their last FullyConnected a tanh.

Training is pure numpy in float64 with one BLAS thread and a fixed seed, so a
seed gives the same weights, accuracies and predictions on every run on a
host (another BLAS build may round differently, and so drift). The
train/test split is fixed (stratified, its own seed) so seeds compare alike.

The trained binary twin is then evaluated twice: with numpy on +1/-1 float32
values, and through bnnbench's xnor-popcount kernel (xnor_64), where each
binary layer's weights are the GEMM's packed left operand (M = out features,
K = in features, N = batch), as in a deployed layer. Integer dot products of
+1/-1 values are exact in both, so the two must agree prediction by
prediction; anything else is a kernel bug.
"""
import time
from dataclasses import asdict, dataclass

import numpy as np

from .. import limits
from ..errors import BnnbenchError

SPLIT_SEED = 0        # the train/test split never moves with --seed
TEST_FRACTION = 0.25
BN_EPS = 1e-5
BN_MOMENTUM = 0.9
XNOR_METHOD = "xnor_64"


@dataclass(frozen=True)
class Config:
    seed: int = 0
    epochs: int = 30
    hidden: int = 256
    binary_layers: int = 2
    batch_size: int = 32
    lr: float = 0.005

    def check(self):
        for key in ("epochs", "hidden", "binary_layers", "batch_size"):
            if getattr(self, key) < 1:
                raise BnnbenchError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not self.lr > 0:
            raise BnnbenchError(f"lr must be > 0, got {self.lr}")
        limits.check_seed(self.seed)
        limits.check_memory(self.training_bytes(), f"--hidden {self.hidden} with "
                            f"{self.binary_layers} binary layers",
                            "use a smaller --hidden or fewer --binary-layers")

    def training_bytes(self, n_in=64, n_out=10, train_samples=1347):
        """What training holds at its peak, in float64: each weight with its
        gradient and two Adam moments, and a whole-split forward pass
        (evaluation sees all test images at once) for every layer."""
        weights = (n_in + self.binary_layers * self.hidden + n_out) * self.hidden
        activations = train_samples * self.hidden * (self.binary_layers + 1) * 4
        return 8 * (4 * weights + activations)


def load_data():
    """digits scaled to [0, 1], split once: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = digits.data / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=TEST_FRACTION,
                                              stratify=digits.target, random_state=SPLIT_SEED)
    return x_tr, y_tr, x_te, y_te


def sign(x):
    """+1 where x >= 0, else -1 (the kernels' convention: sign(0) = +1)."""
    return np.where(x >= 0, 1.0, -1.0)


# ------------------------------------------------------------------ network

def init_params(rng, n_in, n_out, cfg):
    """Glorot-uniform weights; BN scale 1, bias 0, running stats 0 / 1."""
    sizes = [n_in] + [cfg.hidden] * (cfg.binary_layers + 1)
    hidden = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        hidden.append({"W": rng.uniform(-limit, limit, (fan_in, fan_out)),
                       "gamma": np.ones(fan_out), "beta": np.zeros(fan_out),
                       "mean": np.zeros(fan_out), "var": np.ones(fan_out)})
    limit = np.sqrt(6.0 / (cfg.hidden + n_out))
    last = {"W": rng.uniform(-limit, limit, (cfg.hidden, n_out)), "b": np.zeros(n_out)}
    return {"hidden": hidden, "last": last}


def _numpy_binary_matmul(acts, weights):
    # +1/-1 in float32: every partial sum is an integer below 2**24, so exact.
    return (acts.astype(np.float32) @ weights.astype(np.float32)).astype(np.float64)


def xnor_binary_matmul(acts, weights):
    """acts @ weights through the xnor kernel, weights as the packed operand."""
    from .. import gemm
    out = gemm(XNOR_METHOD, np.ascontiguousarray(weights.T, dtype=np.float32),
               np.ascontiguousarray(acts.T, dtype=np.float32))
    return out.T.astype(np.float64)


def forward(params, x, binary, train=False, binary_matmul=_numpy_binary_matmul):
    """Logits, plus the caches backward() needs when train=True."""
    a = x
    caches = []
    n_hidden = len(params["hidden"])
    for i, layer in enumerate(params["hidden"]):
        is_binary = binary and i > 0     # the first layer stays float
        if is_binary:
            w = sign(layer["W"])
            z = a @ w if train else binary_matmul(a, w)
        else:
            w = layer["W"]
            z = a @ w
        if train:
            mu, var = z.mean(axis=0), z.var(axis=0)
            layer["mean"] = BN_MOMENTUM * layer["mean"] + (1 - BN_MOMENTUM) * mu
            layer["var"] = BN_MOMENTUM * layer["var"] + (1 - BN_MOMENTUM) * var
        else:
            mu, var = layer["mean"], layer["var"]
        inv = 1.0 / np.sqrt(var + BN_EPS)
        xhat = (z - mu) * inv
        y = layer["gamma"] * xhat + layer["beta"]
        if not binary:
            out = np.maximum(y, 0.0)
        elif i < n_hidden - 1:
            out = sign(y)                 # the next (binary) layer reads +1/-1
        else:
            out = np.clip(y, -1.0, 1.0)   # the float classifier reads hardtanh
        caches.append((a, w, xhat, inv, y, is_binary))
        a = out
    logits = a @ params["last"]["W"] + params["last"]["b"]
    caches.append(a)
    return logits, caches


def backward(params, caches, logits, y_true, binary):
    """Gradients of the mean softmax cross-entropy, same structure as params."""
    n = logits.shape[0]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(n), y_true] -= 1.0
    d = p / n
    a_last = caches[-1]
    grads = {"last": {"W": a_last.T @ d, "b": d.sum(axis=0)}, "hidden": []}
    da = d @ params["last"]["W"].T
    for layer, (a, w, xhat, inv, y, is_binary) in zip(reversed(params["hidden"]),
                                                     reversed(caches[:-1])):
        # Activation: ReLU for float; sign and hardtanh both pass |y| <= 1 (STE).
        dy = da * (y > 0) if not binary else da * (np.abs(y) <= 1.0)
        dgamma = (dy * xhat).sum(axis=0)
        dbeta = dy.sum(axis=0)
        dxhat = dy * layer["gamma"]
        dz = inv * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))
        dw = a.T @ dz
        if is_binary:
            dw *= np.abs(layer["W"]) <= 1.0   # STE through sign(W)
        grads["hidden"].insert(0, {"W": dw, "gamma": dgamma, "beta": dbeta})
        da = dz @ w.T
    return grads


class Adam:
    def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.state = {}
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        for key, p, g in _leaves(params, grads):
            m, v = self.state.get(key, (np.zeros_like(p), np.zeros_like(p)))
            m = self.b1 * m + (1 - self.b1) * g
            v = self.b2 * v + (1 - self.b2) * g * g
            self.state[key] = (m, v)
            mhat = m / (1 - self.b1 ** self.t)
            vhat = v / (1 - self.b2 ** self.t)
            p -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


def _leaves(params, grads):
    for name, g in grads["last"].items():
        yield ("last", name), params["last"][name], g
    for i, (layer, lg) in enumerate(zip(params["hidden"], grads["hidden"])):
        for name, g in lg.items():
            yield (i, name), layer[name], g


def train(x, y, binary, cfg, n_classes=10):
    """Train one network; the seed fixes the initial weights and batch order."""
    from ..methods.kernels import blas_threads
    rng = np.random.default_rng(cfg.seed)
    params = init_params(rng, x.shape[1], n_classes, cfg)
    opt = Adam(cfg.lr)
    with blas_threads(1):   # one thread: the same sums in the same order every run
        for epoch in range(cfg.epochs):
            order = rng.permutation(len(x))
            # Halve the step size over the last third: binary weights settle.
            opt.lr = cfg.lr * (0.5 if epoch >= 2 * cfg.epochs // 3 else 1.0)
            for start in range(0, len(x), cfg.batch_size):
                idx = order[start:start + cfg.batch_size]
                if len(idx) < 2:
                    continue    # batch norm needs two samples
                logits, caches = forward(params, x[idx], binary, train=True)
                grads = backward(params, caches, logits, y[idx], binary)
                opt.step(params, grads)
                if binary:
                    for layer in params["hidden"][1:]:
                        np.clip(layer["W"], -1.0, 1.0, out=layer["W"])
    return params


def predict(params, x, binary, binary_matmul=_numpy_binary_matmul):
    logits, _ = forward(params, x, binary, binary_matmul=binary_matmul)
    return logits.argmax(axis=1)


def binary_preactivations(params, x, binary_matmul):
    """Each binary layer's integer GEMM output on x (for exact comparison)."""
    outs = []

    def record(acts, weights):
        z = binary_matmul(acts, weights)
        outs.append(z)
        return z
    forward(params, x, True, binary_matmul=record)
    return outs


def flat_data(data, cfg):
    """(x_train, y_train, x_test, y_test, classes) of a datasets.Dataset,
    images flattened to float64 rows, after checking training fits in memory."""
    n_in = int(np.prod(data.x_train.shape[1:]))
    n_train, n_test = len(data.y_train), len(data.y_test)
    if n_train < 2:
        raise BnnbenchError(f"{data.name}: {n_train} train image(s); training needs at least 2")
    if n_test < 1:
        raise BnnbenchError(f"{data.name}: no test images")
    limits.check_memory(cfg.training_bytes(n_in, data.n_classes, max(n_train, n_test))
                        + 8 * n_in * (n_train + n_test),
                        f"training on {n_train} {data.name} images of {n_in} values",
                        "use --limit to train on fewer images, or a smaller --hidden")
    flat = lambda x: x.reshape(len(x), n_in).astype(np.float64)   # noqa: E731
    return flat(data.x_train), data.y_train, flat(data.x_test), data.y_test, data.n_classes


def run_experiment(cfg=None, data=None):
    """Train both twins and evaluate three ways; return a result dict.
    `data`: a bnnbench.models.datasets.Dataset (default: the digits split
    of load_data(), exactly as always)."""
    cfg = cfg or Config()
    cfg.check()
    if data is None:
        x_tr, y_tr, x_te, y_te = load_data()
        n_classes = 10
    else:
        x_tr, y_tr, x_te, y_te, n_classes = flat_data(data, cfg)
    t0 = time.perf_counter()
    float_params = train(x_tr, y_tr, False, cfg, n_classes)
    binary_params = train(x_tr, y_tr, True, cfg, n_classes)
    train_s = time.perf_counter() - t0
    pred_float = predict(float_params, x_te, False)
    pred_binary = predict(binary_params, x_te, True)
    pred_xnor = predict(binary_params, x_te, True, binary_matmul=xnor_binary_matmul)
    ints_numpy = binary_preactivations(binary_params, x_te, _numpy_binary_matmul)
    ints_xnor = binary_preactivations(binary_params, x_te, xnor_binary_matmul)
    same_ints = all(np.array_equal(a, b) for a, b in zip(ints_numpy, ints_xnor))
    return {
        "float_accuracy": float(np.mean(pred_float == y_te)),
        "binary_accuracy": float(np.mean(pred_binary == y_te)),
        "xnor_accuracy": float(np.mean(pred_xnor == y_te)),
        "xnor_matches_reference": bool(same_ints and np.array_equal(pred_binary, pred_xnor)),
        "train_samples": int(len(y_tr)),
        "test_samples": int(len(y_te)),
        "train_seconds": train_s,
        "config": asdict(cfg),
        "predictions": {"float": pred_float.tolist(), "binary": pred_binary.tolist(),
                        "xnor": pred_xnor.tolist()},
        "labels": y_te.tolist(),
        "dataset": data.describe() if data is not None else {"dataset": "sklearn digits"},
    }


# ------------------------------------------------- a zoo model, trained by Larq

LARQ_EPOCHS = 10
LARQ_EVAL_BATCH = 256    # images per net_bnnbench call (bounds its buffers)


def fit_to_data(model, data):
    """`model` (a zoo spec) re-targeted to a data set: its input shape is
    the images' (C, H, W), the first conv reads C channels and the last
    weight layer is as wide as the data has classes. A spec that still does
    not fit (a window larger than what reaches it, logits that are not one
    per class) is a one-line BnnbenchError."""
    import dataclasses
    import math

    from . import zoo
    h, w, c = data.x_train.shape[1:]
    layers = list(model.layers)
    weight_idx = [i for i, l in enumerate(layers) if isinstance(l, zoo.WEIGHT_LAYERS)]
    if not weight_idx:
        raise BnnbenchError(f"{model.name} has no weight layer to train")
    first, last = weight_idx[0], weight_idx[-1]
    if isinstance(layers[first], zoo.Conv):
        layers[first] = dataclasses.replace(layers[first], in_channels=c)
    if isinstance(layers[last], zoo.Conv):
        layers[last] = dataclasses.replace(layers[last], out_channels=data.n_classes)
    else:
        layers[last] = dataclasses.replace(layers[last], out_features=data.n_classes)
    fitted = dataclasses.replace(model, input_shape=(c, h, w), layers=tuple(layers))
    what = f"{model.name} does not fit the {h}x{w}x{c} images of {data.name}"
    try:
        infos = zoo.resolve(fitted)
    except BnnbenchError as e:
        raise BnnbenchError(f"{what}: {e}") from None
    out = infos[-1].out_shape
    if math.prod(out) != data.n_classes or out[0] != data.n_classes:
        shape = "x".join(map(str, out))
        raise BnnbenchError(f"{what}: its output is {shape}, not {data.n_classes} logits "
                            f"(one per class)")
    return fitted


def _runtime_eval(model, tensors, x):
    """(logits, {binary layer: input signs flattened per image}) of the
    binary twin through bnnbench's runtime (net_bnnbench), in chunks."""
    from . import network
    logits, signs = [], {}
    for start in range(0, len(x), LARQ_EVAL_BATCH):
        chunk = np.ascontiguousarray(x[start:start + LARQ_EVAL_BATCH], dtype=np.float32)
        run = network.prepare(model, tensors, chunk, engine="net_bnnbench", threads=1)
        logits.append(run().copy())
        for name, (s, _) in run.inspect().items():
            signs.setdefault(name, []).append(s.reshape(len(chunk), -1))
    return (np.concatenate(logits),
            {n: np.concatenate(parts) for n, parts in signs.items()})


def run_larq_experiment(model, data, epochs=LARQ_EPOCHS, seed=0):
    """Train `model`'s float twin and binary twin with Larq on `data` (a
    datasets.Dataset; the model already fit_to_data), export the binary
    twin, and evaluate it through net_bnnbench beside Larq's own evaluation.
    Returns a result dict (predictions per evaluation, the images where
    Larq and net_bnnbench differ, input bits of binary layers that differ)."""
    from ..methods.peers import larq_train
    from ..methods.peers.networks import tensors_from_keras
    limits.check_seed(seed)
    x_tr, y_tr, x_te, y_te = data.split()
    if len(y_tr) < 2:
        raise BnnbenchError(f"{data.name}: {len(y_tr)} train image(s); training needs at least 2")
    if len(y_te) < 1:
        raise BnnbenchError(f"{data.name}: no test images")
    float_net, float_s = larq_train.train(model, x_tr, y_tr, data.n_classes, True, epochs, seed)
    binary_net, binary_s = larq_train.train(model, x_tr, y_tr, data.n_classes, False, epochs,
                                            seed)
    pred_float = larq_train.predict(float_net, x_te).argmax(axis=1)
    pred_larq = larq_train.predict(binary_net, x_te).argmax(axis=1)
    tensors = tensors_from_keras(model, binary_net)
    logits, our_signs = _runtime_eval(model, tensors, x_te)
    pred_net = logits.argmax(axis=1)
    keras_inputs = larq_train.binary_inputs(model, binary_net, x_te)
    bits = {}
    for name, ours in our_signs.items():
        theirs = np.where(keras_inputs[name] >= 0, 1, -1)
        bits[name] = {"differ": int((theirs != ours).sum()) if theirs.shape == ours.shape
                      else None, "total": int(ours.size)}
    differ = np.flatnonzero(pred_larq != pred_net)
    return {
        "model": model.name,
        "epochs": epochs, "seed": seed,
        "train_samples": int(len(y_tr)), "test_samples": int(len(y_te)),
        "train_seconds": {"float": float_s, "binary": binary_s},
        "labels": y_te.tolist(),
        "predictions": {"float_larq": pred_float.tolist(), "binary_larq": pred_larq.tolist(),
                        "binary_net_bnnbench": pred_net.tolist()},
        "differing_images": differ.tolist(),
        "binary_input_bits": bits,
        "threshold_disagreements": larq_train.bn_threshold_disagreements(model, binary_net,
                                                                         tensors),
        "dataset": data.describe(),
        # Not for run files: what a caller may look into further.
        "keras": {"float": float_net, "binary": binary_net},
        "tensors": tensors,
    }
