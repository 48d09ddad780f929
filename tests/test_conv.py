"""Whole convolution layers: every layer method of bnnbench's own kernels
against the plain numpy reference, on awkward layers. Binary outputs must
equal sign(x) (*) sign(w) exactly (padding pixels +1); float outputs must be
within rounding of a float64 conv. This file also runs against the
alternate builds (make test-portable, test-avx2, test-avx512-emulated).
"""
import numpy as np
import pytest

import bnnbench
from bnnbench.methods import conv, layer_shapes
from bnnbench.methods.verify import AWKWARD_LAYERS, numpy_conv, verify_layers

OWN = [m for m in bnnbench.CONV_METHODS if not conv.BY_NAME[m].engine]
BINARY = [m for m in OWN if conv.BY_NAME[m].kind == "xnor"]


def layer(rng, b, h, w, c, f, k):
    x = rng.standard_normal((b, h, w, c), dtype=np.float32)
    wt = rng.standard_normal((f, k, k, c), dtype=np.float32)
    x[0, 0, 0, 0] = -0.0     # sign(-0) = +1 must hold in every kernel
    wt[-1, -1, -1, -1] = 0.0
    return x, wt


def check(method, x, w, stride, padding, threads):
    out = bnnbench.conv2d(method, x, w, stride=stride, padding=padding, threads=threads)
    if conv.BY_NAME[method].kind == "xnor":
        ref = numpy_conv(x, w, stride, padding, binary=True)
        assert out.dtype == np.int32 and out.shape == ref.shape
        np.testing.assert_array_equal(out, ref)
    else:
        ref = numpy_conv(x, w, stride, padding)
        assert out.dtype == np.float32 and out.shape == ref.shape
        bound = 4 * np.finfo(np.float32).eps * np.sqrt(w[0].size) * numpy_conv(
            np.abs(x), np.abs(w), stride, padding)
        assert np.all(np.abs(out - ref) <= bound + 1e-30)


@pytest.mark.parametrize("method", OWN)
@pytest.mark.parametrize("shape", AWKWARD_LAYERS, ids=lambda s: "x".join(map(str, s)))
def test_layer_exact(method, shape, rng):
    b, h, w, c, f, k, stride, padding = shape
    x, wt = layer(rng, b, h, w, c, f, k)
    for threads in (1, 2, 3):
        check(method, x, wt, stride, padding, threads)


@pytest.mark.parametrize("method", BINARY)
def test_binary_same_pads_with_plus_one(method):
    # All -1 inputs: a corner output sees 4 of 9 taps inside the image (-1)
    # and 5 padding taps (+1) against +1 weights: 5 - 4 = 1 per channel.
    x = -np.ones((1, 4, 4, 3), np.float32)
    w = np.ones((1, 3, 3, 3), np.float32)
    out = bnnbench.conv2d(method, x, w, padding="same")
    assert out[0, 0, 0, 0] == 3 * (5 - 4)
    assert out[0, 1, 1, 0] == -27


def test_float_same_pads_with_zero():
    x = np.ones((1, 4, 4, 1), np.float32)
    w = np.ones((1, 3, 3, 1), np.float32)
    out = bnnbench.conv2d("conv_float_blas", x, w, padding="same")
    assert out[0, 0, 0, 0] == 4 and out[0, 1, 1, 0] == 9


@pytest.mark.parametrize("method", BINARY)
def test_binary_sweep_sized_layer(method, rng):
    # BMXNet's layer shape at 96 channels: many blocks of output pixels.
    x, w = layer(rng, 6, 12, 12, 96, 64, 5)
    check(method, x, w, 1, "valid", 2)


def test_dabnn_geometry():
    shapes = layer_shapes.dabnn_grid()
    assert [(s.height, s.channels, s.filters, s.out_h) for s in shapes] == [
        (56, 64, 64, 56), (28, 128, 128, 28), (14, 256, 256, 14), (7, 512, 512, 7)]


@pytest.mark.parametrize("size,kernel,stride,padding,out,before", [
    (12, 5, 1, "valid", 8, 0), (7, 3, 2, "same", 4, 1), (8, 3, 2, "same", 4, 0),
    (4, 5, 1, "same", 4, 2), (3, 5, 1, "valid", 0, 0)])
def test_output_size(size, kernel, stride, padding, out, before):
    assert layer_shapes.output_size(size, kernel, stride, padding) == (out, before)


def f32(*shape):
    return np.ones(shape, dtype=np.float32)


@pytest.mark.parametrize("call,match", [
    (lambda: bnnbench.conv2d("nope", f32(1, 3, 3, 1), f32(1, 3, 3, 1)),
     "unknown conv method 'nope'"),
    (lambda: bnnbench.conv2d("conv_xnor_64", f32(1, 3, 3, 1).astype(np.float64), f32(1, 3, 3, 1)),
     "x must be float32"),
    (lambda: bnnbench.conv2d("conv_xnor_64", f32(3, 3, 1), f32(1, 3, 3, 1)), "x must be 4-D"),
    (lambda: bnnbench.conv2d("conv_xnor_64", f32(1, 3, 3, 2), f32(1, 3, 3, 1)), "channels differ"),
    (lambda: bnnbench.conv2d("conv_xnor_64", f32(1, 2, 2, 1), f32(1, 3, 3, 1)), "larger than"),
    (lambda: bnnbench.conv2d("conv_xnor_64", f32(1, 3, 3, 1), f32(1, 3, 3, 1), padding="full"),
     "padding must be 'valid', 'same' or pixels"),
    (lambda: bnnbench.conv2d("conv_xnor_64", f32(1, 3, 3, 1), f32(1, 3, 3, 1), stride=0),
     "stride must be an integer >= 1"),
    (lambda: bnnbench.conv2d("conv_float_blas", f32(1, 3, 3, 1), f32(1, 3, 3, 1), threads=0),
     "threads must be an integer >= 1"),
    (lambda: bnnbench.conv2d("conv_xnor_64", [[1.0]], f32(1, 3, 3, 1)), "x must be a numpy array"),
])
def test_errors_are_one_line_value_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_conv_methods_lists_own_kernels():
    assert isinstance(bnnbench.CONV_METHODS, tuple)
    assert {"conv_float_blas", "conv_xnor_32", "conv_xnor_64"} <= set(bnnbench.CONV_METHODS)
    for name in bnnbench.CONV_METHODS:
        assert name in conv.BY_NAME
    for name, reason in conv.unavailable().items():
        assert name not in bnnbench.CONV_METHODS and "\n" not in reason


def test_verify_layers_finds_no_mismatch():
    assert verify_layers(threads=(1, 2)) == []


@pytest.mark.parametrize("batch", (1, 6))   # two passes, and the per-image pipeline
def test_bconv_takes_plain_or_tile_panels(batch, rng):
    # A model splits its weights for the tiles once (tile_panels); a caller
    # that passes the plain packed panels gets them split on every call.
    from bnnbench import _bconv
    from bnnbench.methods.kernels import cache_aligned_zeros, pack_signs
    x, wt = layer(rng, batch, 7, 6, 70, 19, 3)
    words = conv.weight_panels(wt, 64)
    pad_pixel = pack_signs(np.ones(70, np.float32), 64)
    ref = numpy_conv(x, wt, 1, "valid", binary=True)
    for panels in (words, _bconv.tile_panels(words)):
        packed = cache_aligned_zeros((batch, 7, 6, 2), np.uint64)
        out = np.zeros(ref.shape, np.int32)
        work = cache_aligned_zeros(_bconv.work_shape(words.shape[1], 2), np.uint64)
        _bconv.bconv_layer(x, packed, pad_pixel, panels, 3, 3, 1, 0, 0, 9 * 70, out, work, 2)
        np.testing.assert_array_equal(out, ref)
    with pytest.raises(ValueError, match="disagree"):
        _bconv.bconv_layer(x, packed, pad_pixel, words[:, :-1].copy(), 3, 3, 1, 0, 0, 9 * 70, out,
                           work, 2)
