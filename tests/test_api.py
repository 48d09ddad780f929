"""The public API's contract and its one-line errors."""
import numpy as np
import pytest

import bnnbench


def f32(*shape):
    return np.ones(shape, dtype=np.float32)


def test_methods_tuple():
    assert isinstance(bnnbench.METHODS, tuple)
    assert {"float_blas", "float_gemm", "xnor_32", "xnor_64"} <= set(bnnbench.METHODS)
    if bnnbench.BUILD["openmp"]:
        assert {"xnor_64_omp", "binarize_xnor_64_omp", "float_gemm_omp"} <= set(bnnbench.METHODS)


@pytest.mark.parametrize("call,match", [
    (lambda: bnnbench.gemm("nope", f32(2, 3), f32(3, 2)), "unknown method 'nope'; valid methods: float_blas"),
    (lambda: bnnbench.gemm("xnor_64", f32(2, 3).astype(np.float64), f32(3, 2)), "a must be float32"),
    (lambda: bnnbench.gemm("xnor_64", f32(2, 3), f32(3, 2, 1)), "b must be 2-D"),
    (lambda: bnnbench.gemm("xnor_64", f32(2, 3), f32(4, 2)), "inner dimensions differ"),
    (lambda: bnnbench.gemm("xnor_64", f32(2, 3), f32(3, 2), threads=0), "threads must be an integer >= 1"),
    (lambda: bnnbench.gemm("float_blas", f32(2, 3), f32(3, 2), threads=1.5), "threads must be"),
    (lambda: bnnbench.gemm("xnor_64", [[1.0]], f32(1, 1)), "a must be a numpy array"),
    (lambda: bnnbench.pack_signs(f32(3), word_bits=16), "word_bits must be 32 or 64"),
    (lambda: bnnbench.pack_signs(np.float32(1)), "at least one axis"),
    (lambda: bnnbench.pack_signs(np.array(["a"])), "real numeric"),
])
def test_errors_are_one_line_value_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_outputs_types(rng):
    a = rng.standard_normal((3, 5), dtype=np.float32)
    b = rng.standard_normal((5, 4), dtype=np.float32)
    for m in bnnbench.METHODS:
        out = bnnbench.gemm(m, a, b)
        assert out.shape == (3, 4)
        assert out.dtype == (np.int32 if "xnor" in m else np.float32)


def test_gemm_returns_a_fresh_array(rng):
    a = rng.standard_normal((3, 5), dtype=np.float32)
    b = rng.standard_normal((5, 4), dtype=np.float32)
    first = bnnbench.gemm("xnor_64", a, b)
    second = bnnbench.gemm("xnor_64", -a, b)
    np.testing.assert_array_equal(first, -second)
