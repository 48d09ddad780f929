"""Peer engines timed beside bnnbench's layer methods: one adapter module per
engine (lce.py: Larq Compute Engine; tflite.py: TF Lite with XNNPACK).

Engines are imported only when a peer method is prepared, so nothing else in
bnnbench imports TensorFlow. Each adapter exposes REQUIRES (the modules it
needs, checked without importing them) and prepare(method, x, w, stride,
padding, threads) with the contract of bnnbench.methods.conv.prepare.

Whole networks (the model level) run through networks.py: NET_ENGINES are
its engines, missing(engine) says why one cannot run, and
prepare_net(engine, model, tensors, x, threads) returns the timed call.
"""
import importlib
import importlib.util

from ...errors import BnnbenchError

INSTALL_HINT = "pip install 'bnnbench[peers]' (Linux x86_64/aarch64, Python 3.9-3.11)"

# Layer methods of the peers, as bnnbench.methods.conv.ConvMethod fields.
METHODS = (
    dict(name="lce_bconv2d", kind="xnor", word_bits=None, parallel=True, needs_openmp=False,
         engine="lce", description="Larq Compute Engine LceBconv2d, default kernel "
                                   "(portable C++ on x86)"),
    dict(name="lce_bconv2d_indirect", kind="xnor", word_bits=None, parallel=True,
         needs_openmp=False, engine="lce",
         description="Larq Compute Engine LceBconv2d with use_indirect_bgemm=True"),
    dict(name="tflite_conv2d", kind="float", word_bits=None, parallel=True, needs_openmp=False,
         engine="tflite", description="TF Lite float Conv2D (XNNPACK)"),
)
ENGINES = {"lce": "Larq Compute Engine", "tflite": "TF Lite"}

# Model-level engines: a zoo network converted whole (networks.py).
NET_ENGINES = {
    "net_lce": "Larq Compute Engine (the binary network converted by LCE's converter)",
    "net_tflite_float": "TF Lite (the float twin, XNNPACK)",
}
_NET_REQUIRES = {"net_lce": ("larq_compute_engine", "larq", "tensorflow"),
                 "net_tflite_float": ("tensorflow",)}


def _adapter(engine):
    return importlib.import_module(f"{__name__}.{engine}")


def missing(engine):
    """None if `engine` (a layer or a network engine) can run here, else a
    one-line reason."""
    if engine in NET_ENGINES:
        requires, label = _NET_REQUIRES[engine], NET_ENGINES[engine].split(" (")[0]
    else:
        requires, label = _adapter(engine).REQUIRES, ENGINES[engine]
    for module in requires:
        if importlib.util.find_spec(module) is None:
            return f"{label} is not installed ({module} missing): {INSTALL_HINT}"
    return None


def prepare(engine, name, x, w, stride, padding, threads):
    if padding not in ("valid", "same"):
        raise BnnbenchError(f"{name}: {ENGINES[engine]} layers pad 'valid' or 'same' only, "
                            f"not {padding!r}")
    return _adapter(engine).prepare(name, x, w, stride, padding, threads)


def prepare_net(engine, model, tensors, x, threads):
    """The timed call of a whole zoo network on a peer engine (networks.py);
    a one-line BnnbenchError when the engine is unknown or not installed."""
    if engine not in NET_ENGINES:
        raise BnnbenchError(f"unknown network engine {engine!r}; known: "
                            f"{', '.join(NET_ENGINES)}")
    reason = missing(engine)
    if reason:
        raise BnnbenchError(f"{engine}: {reason}")
    return _adapter("networks").prepare_net(engine, model, tensors, x, threads)
