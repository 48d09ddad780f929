"""Peer engines (bnnbench[peers]): exact against the numpy reference on small
layers, thread counts passed on, and one line saying what to install when
they are missing. make test installs the extra where wheels exist."""
import importlib.util

import numpy as np
import pytest

import bnnbench
from bnnbench.methods import conv, peers
from bnnbench.methods.verify import numpy_conv

PEER_METHODS = [m["name"] for m in peers.METHODS]
INSTALLED = [m for m in PEER_METHODS if m in bnnbench.CONV_METHODS]
needs_peers = pytest.mark.skipif(not INSTALLED, reason="bnnbench[peers] is not installed")

# (batch, height, width, channels, filters, kernel, stride, padding)
LAYERS = [
    (2, 6, 7, 33, 17, 3, 1, "same"),
    (1, 9, 9, 64, 8, 3, 2, "same"),
    (3, 8, 8, 5, 4, 5, 1, "valid"),
]


def test_missing_engine_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "larq_compute_engine" else real(name, *a))
    reasons = conv.unavailable()
    for name in ("lce_bconv2d", "lce_bconv2d_indirect"):
        assert "\n" not in reasons[name]
        assert "pip install 'bnnbench[peers]'" in reasons[name]
    with pytest.raises(ValueError, match="not available: Larq Compute Engine is not installed"):
        conv.method("lce_bconv2d")


def test_unavailable_peers_are_not_listed():
    for name in PEER_METHODS:
        assert (name in bnnbench.CONV_METHODS) == (name not in conv.unavailable())


@needs_peers
@pytest.mark.parametrize("method", INSTALLED)
@pytest.mark.parametrize("shape", LAYERS, ids=lambda s: "x".join(map(str, s)))
def test_peer_matches_reference(method, shape, rng):
    b, h, w, c, f, k, stride, padding = shape
    x = rng.standard_normal((b, h, w, c), dtype=np.float32)
    wt = rng.standard_normal((f, k, k, c), dtype=np.float32)
    out = bnnbench.conv2d(method, x, wt, stride=stride, padding=padding)
    if conv.BY_NAME[method].kind == "xnor":
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out, numpy_conv(x, wt, stride, padding, binary=True))
    else:
        ref = numpy_conv(x, wt, stride, padding)
        assert out.dtype == np.float32 and out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@needs_peers
@pytest.mark.parametrize("method", INSTALLED)
def test_peer_gets_the_thread_count(method, monkeypatch, rng):
    from bnnbench.methods.peers.engine import import_tensorflow
    seen = []
    tf = import_tensorflow()
    if conv.BY_NAME[method].engine == "lce":
        from larq_compute_engine.tflite.python import interpreter as module
    else:
        module = tf.lite
    cls_name = "Interpreter"
    real = getattr(module, cls_name)

    def spy(*args, **kwargs):
        seen.append(kwargs.get("num_threads"))
        return real(*args, **kwargs)
    monkeypatch.setattr(module, cls_name, spy)
    x = rng.standard_normal((1, 5, 5, 8), dtype=np.float32)
    wt = rng.standard_normal((4, 3, 3, 8), dtype=np.float32)
    for threads in (1, 2):
        bnnbench.conv2d(method, x, wt, threads=threads)
    assert seen == [1, 2]
