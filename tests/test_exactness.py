"""Every kernel against a plain numpy reference, on awkward shapes.

xnor results must equal sign(a) @ sign(b) exactly; float results must be
within rounding of a float64 product. This file also runs against the
portable build (make test-portable).
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bnnbench
from bnnbench.methods import kernels
from bnnbench.methods.verify import AWKWARD_K, AWKWARD_MN, GemmCheck, signs

XNOR = [m for m in bnnbench.METHODS if kernels.BY_NAME[m].kind == "xnor"]
FLOAT = [m for m in bnnbench.METHODS if kernels.BY_NAME[m].kind == "float"]
THREADS = (1, 2, 3)


def reference_xnor(a, b):
    return (signs(a).astype(np.int64) @ signs(b).astype(np.int64)).astype(np.int32)


def test_build_is_the_expected_one():
    expected = os.environ.get("BNNBENCH_EXPECT_PATH")
    if expected:
        assert bnnbench.BUILD["kernel_path"] == expected
    assert bnnbench.BUILD["kernel_path"] in ("avx512-vpopcntdq", "avx512-vpopcntdq-simde", "avx2",
                                             "neon", "portable")


@pytest.mark.parametrize("method", XNOR)
@pytest.mark.parametrize("k", AWKWARD_K)
def test_xnor_exact_over_k(method, k, rng):
    for m, n in ((1, 1), (5, 17), (7, 130)):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        for t in THREADS:
            out = bnnbench.gemm(method, a, b, threads=t)
            assert out.dtype == np.int32
            np.testing.assert_array_equal(out, reference_xnor(a, b))


@pytest.mark.parametrize("method", XNOR)
@pytest.mark.parametrize("m,n", AWKWARD_MN)
def test_xnor_exact_over_m_n(method, m, n, rng):
    k = 97
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    np.testing.assert_array_equal(bnnbench.gemm(method, a, b, threads=2), reference_xnor(a, b))


@pytest.mark.parametrize("method", XNOR)
def test_xnor_sign_of_zero_and_extremes(method):
    # sign(+0) = sign(-0) = +1; tiny negatives, infinities and NaN (-1).
    vals = np.array([0.0, -0.0, 1e-45, -1e-45, np.inf, -np.inf, np.nan, 3.5, -2.0],
                    dtype=np.float32)
    a = np.tile(vals, (3, 7))[:, :61]
    b = np.resize(vals[::-1], (61, 11))
    np.testing.assert_array_equal(bnnbench.gemm(method, a, b), reference_xnor(a, b))


@pytest.mark.parametrize("method", XNOR)
def test_xnor_larger_than_cache_blocks(method, rng):
    a = rng.standard_normal((67, 25 * 130), dtype=np.float32)
    b = rng.standard_normal((25 * 130, 1000), dtype=np.float32)
    np.testing.assert_array_equal(bnnbench.gemm(method, a, b, threads=2), reference_xnor(a, b))


@pytest.mark.parametrize("method", XNOR)
@pytest.mark.parametrize("k", (0, 25, 200))
def test_xnor_short_k_over_blocks_of_panels(method, k, rng):
    # Short K runs each row tile across a block of adjacent panels: N spans
    # many blocks and ends in a partial panel, M ends in a partial row tile.
    a = rng.standard_normal((13, k), dtype=np.float32)
    b = rng.standard_normal((k, 4103), dtype=np.float32)
    for t in THREADS:
        np.testing.assert_array_equal(bnnbench.gemm(method, a, b, threads=t), reference_xnor(a, b))


@pytest.mark.parametrize("method", XNOR)
@pytest.mark.parametrize("k", (65, 96, 97, 800, 801, 831))
def test_xnor_half_word_tail_in_full_tiles(method, k, rng):
    # With 1..32 bits of K in the last 64-bit word the AVX-512 tile counts
    # only that word's low halves; 33+ bits (97, 801, 831) it counts whole. Full
    # row tiles of every build (up to 8 rows) over whole and partial panels.
    a = rng.standard_normal((19, k), dtype=np.float32)
    b = rng.standard_normal((k, 70), dtype=np.float32)
    for t in THREADS:
        np.testing.assert_array_equal(bnnbench.gemm(method, a, b, threads=t), reference_xnor(a, b))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 20), n=st.integers(1, 70), k=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1), threads=st.integers(1, 3),
       method=st.sampled_from(XNOR))
def test_xnor_property(m, n, k, seed, threads, method):
    r = np.random.default_rng(seed)
    a = r.standard_normal((m, k), dtype=np.float32)
    b = r.standard_normal((k, n), dtype=np.float32)
    np.testing.assert_array_equal(bnnbench.gemm(method, a, b, threads=threads),
                                  reference_xnor(a, b))


@pytest.mark.parametrize("method", FLOAT)
@pytest.mark.parametrize("m,n", AWKWARD_MN)
def test_float_close(method, m, n, rng):
    for k in (1, 33, 257, 600):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = bnnbench.gemm(method, a, b, threads=2)
        assert out.dtype == np.float32 and out.shape == (m, n)
        ok, err = GemmCheck(a, b).check(method, out)
        assert ok, f"max error {err}"


@pytest.mark.parametrize("method", FLOAT)
def test_float_over_tile_and_block_edges(method, rng):
    # The register tile and cache blocks of this build (they differ between
    # code paths): partial row tiles, ragged column panels and blocks of B,
    # K blocks that C accumulates across, and groups of columns (a thread's
    # run of columns ends inside one).
    from bnnbench import _float_gemm
    mr, nr = _float_gemm.TILE
    kc, nc, group = _float_gemm.BLOCK
    grouped_k = _float_gemm.A_L2 // (4 * 2 * mr) + kc + 5   # packed A (2 row panels) past A_L2
    for m, n, k in ((mr, nr, kc), (2 * mr + 3, 2 * nc + nr + 5, 2 * kc + 7), (mr - 1, nc - 1, kc + 1),
                    (mr + 1, group + nc + nr + 3, grouped_k)):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        for t in THREADS:
            ok, err = GemmCheck(a, b).check(method, bnnbench.gemm(method, a, b, threads=t))
            assert ok, f"M={m} N={n} K={k} threads={t}: max error {err}"


def test_float_reference_catches_a_dropped_term(rng):
    a = rng.standard_normal((8, 3000), dtype=np.float32)
    b = rng.standard_normal((3000, 40), dtype=np.float32)
    wrong = a[:, 1:] @ b[1:, :]
    assert not GemmCheck(a, b).check("float_gemm", wrong)[0]


# ------------------------------------------------------------- pack_signs

def reference_pack(x, bits):
    x = np.asarray(x)
    k = x.shape[-1]
    nw = -(-k // bits)
    on = np.zeros(x.shape[:-1] + (nw * bits,), dtype=bool)
    on[..., :k] = x >= 0
    weights = (np.uint64(1) << np.arange(bits, dtype=np.uint64))
    words = (on.reshape(x.shape[:-1] + (nw, bits)).astype(np.uint64) * weights).sum(-1)
    return words.astype(np.uint32 if bits == 32 else np.uint64)


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("k", AWKWARD_K)
def test_pack_signs(bits, k, rng):
    x = rng.standard_normal((3, k), dtype=np.float32)
    got = bnnbench.pack_signs(x, word_bits=bits)
    assert got.dtype == (np.uint32 if bits == 32 else np.uint64)
    assert got.shape == (3, -(-k // bits))
    np.testing.assert_array_equal(got, reference_pack(x, bits))


@pytest.mark.parametrize("bits", [32, 64])
def test_pack_signs_special_values(bits, rng):
    # Through the SIMD sign groups and the scalar tail alike (k = 70, 200):
    # sign(-0) = +1, NaN and tiny negatives -1.
    special = np.array([0.0, -0.0, 1e-45, -1e-45, np.inf, -np.inf, np.nan], dtype=np.float32)
    for k in (70, 200):
        x = rng.standard_normal((5, k), dtype=np.float32)
        x.flat[::3] = np.resize(special, x.flat[::3].shape)
        np.testing.assert_array_equal(bnnbench.pack_signs(x, word_bits=bits),
                                      reference_pack(x, bits))


@pytest.mark.parametrize("bits", [32, 64])
def test_pack_rows_refuses_a_wrong_output(bits):
    from bnnbench import _bitpack
    dtype = np.uint32 if bits == 32 else np.uint64
    x = np.ones((4, 70), np.float32)
    with pytest.raises(ValueError, match=r"needs \(4, "):
        _bitpack.pack_rows(x, np.zeros((4, 70 // bits), dtype))
    with pytest.raises(ValueError, match="needs"):
        _bitpack.pack_rows(x, np.zeros((3, -(-70 // bits)), dtype))


@pytest.mark.parametrize("bits", [32, 64])
def test_pack_signs_any_rank_and_dtype(bits, rng):
    x = rng.standard_normal((2, 3, 70))
    x[0, 0, 0] = -1e-50   # would round to -0.0 in float32: must stay negative
    got = bnnbench.pack_signs(x, word_bits=bits)
    assert got.shape == (2, 3, -(-70 // bits))
    np.testing.assert_array_equal(got, reference_pack(x, bits))
    np.testing.assert_array_equal(bnnbench.pack_signs(np.arange(-3, 4), bits),
                                  reference_pack(np.arange(-3, 4), bits))


@pytest.mark.parametrize("bits", [32, 64])
def test_pack_panels_is_pack_signs_of_the_transpose(bits, rng):
    k, n = 130, 45
    b = rng.standard_normal((k, n), dtype=np.float32)
    panels = kernels.pack_panels(b, bits, threads=2)
    nr = panels.shape[2]
    cols = panels.transpose(0, 2, 1).reshape(-1, panels.shape[1])[:n]
    np.testing.assert_array_equal(cols, bnnbench.pack_signs(b.T, bits))
    assert not panels.transpose(0, 2, 1).reshape(-1, panels.shape[1])[n:].any()
    # Panel rows are two zmm registers on AVX-512, 512 bits elsewhere.
    assert nr * bits == (1024 if bnnbench.BUILD["kernel_path"].startswith("avx512") else 512)


@pytest.mark.parametrize("bits", [32, 64])
def test_pack_panels_over_several_runs_of_columns(bits, rng):
    # The SIMD packers read rows in runs of 8192 columns: N spans two runs
    # and a partial one, then a partial panel; K ends in a partial word; the
    # values include the signs of zeros, tiny negatives, infinities and NaN.
    k, n = 70, 2 * 8192 + 16 * 3 + 5
    b = rng.standard_normal((k, n), dtype=np.float32)
    special = np.array([0.0, -0.0, 1e-45, -1e-45, np.inf, -np.inf, np.nan], dtype=np.float32)
    b.flat[rng.choice(b.size, 5000, replace=False)] = np.resize(special, 5000)
    for t in THREADS:
        panels = kernels.pack_panels(b, bits, threads=t)
        cols = panels.transpose(0, 2, 1).reshape(-1, panels.shape[1])
        np.testing.assert_array_equal(cols[:n], reference_pack(b.T, bits))
        assert not cols[n:].any()
