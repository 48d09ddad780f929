"""xnor-popcount GEMM over packed words: C = K - 2 * popcount(A xor B).

A (M, KW) holds packed rows of the weights; B is the activations packed into
panels (NP, KW, NR) by bitpack.pack_panels. Threads split the panels (the
columns of C), so no two threads write the same output.
"""
import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int32_t, uint32_t, uint64_t
from words cimport word_t
from xnor_tiles cimport (BNN_XNOR_A_SPLIT, BNN_XNOR_B_SPLIT, bnn_prefetch_share,
                         bnn_xnor_split_a_u32, bnn_xnor_split_a_u64, bnn_xnor_split_b,
                         bnn_xnor_tile_pf_u32, bnn_xnor_tile_pf_u64)

cdef extern from "bnn_config.h":
    int BNN_XNOR_MR


# A row tile runs across a block of panels before the next row tile starts:
# at least MIN_BLOCK_PANELS of them, and more while they are short, up to
# PANEL_BLOCK_BYTES (about half of a 32 KiB L1, so a block of short panels
# stays there while every row tile of A passes).
cdef enum:
    PANEL_BLOCK_BYTES = 16384
    MIN_BLOCK_PANELS = 8


cdef void _panels(const word_t[:, ::1] a, const word_t[:, :, ::1] panels, Py_ssize_t p0,
                  Py_ssize_t p1, Py_ssize_t end, int32_t k, int tail_half,
                  int32_t[:, ::1] out, word_t *bsplit) noexcept nogil:
    # Panels p0 .. p1-1 against every row tile; a is (M, KW), or (M, 2 KW)
    # nibble-split rows when the tile wants them, and where it wants the
    # panels split too, the block is split into bsplit first, once for all
    # row tiles (bnn_simd.h, BNN_XNOR_B_SPLIT). Each row tile also
    # prefetches its share of the next block of panels (up to `end`, where
    # this thread's panels stop) into L2: all of B (20 MB at 512 channels)
    # comes from memory once per call, and without this the first row tile
    # of each block waits for it instead of overlapping it with the other
    # tiles' popcounts.
    cdef Py_ssize_t m = a.shape[0], kw = panels.shape[1], lda = a.shape[1], n = out.shape[1]
    cdef Py_ssize_t nrw = panels.shape[2], i, q, p, j0
    cdef Py_ssize_t ntiles = (m + BNN_XNOR_MR - 1) // BNN_XNOR_MR
    cdef Py_ssize_t next_panels = min(p1 + (p1 - p0), end) - p1
    cdef Py_ssize_t lines = next_panels * kw * nrw * sizeof(word_t) // 64
    cdef Py_ssize_t pf_lines
    cdef const char *pf
    cdef const char *next_block = <const char *>&panels[p1 if next_panels > 0 else p0, 0, 0]
    cdef const word_t *tp
    cdef Py_ssize_t tsize = kw * nrw
    cdef int mr
    if BNN_XNOR_B_SPLIT:
        tsize = 2 * kw * nrw
        for p in range(p0, p1):
            bnn_xnor_split_b(&panels[p, 0, 0], kw, bsplit + (p - p0) * tsize,
                             word_t is uint64_t)
    for q in range(ntiles):
        i = q * BNN_XNOR_MR
        mr = <int>min(BNN_XNOR_MR, m - i)
        for p in range(p0, p1):
            # Each tile call takes its share of the next block's lines.
            pf_lines = bnn_prefetch_share(next_block, lines, ntiles * (p1 - p0),
                                          q * (p1 - p0) + p - p0, &pf)
            j0 = p * nrw
            if BNN_XNOR_B_SPLIT:
                tp = bsplit + (p - p0) * tsize
            else:
                tp = &panels[p, 0, 0]
            if word_t is uint64_t:
                bnn_xnor_tile_pf_u64(&a[i, 0], lda, mr, tp, kw, &out[i, j0], n,
                                     <int>min(nrw, n - j0), k, pf, pf_lines, tail_half)
            else:
                bnn_xnor_tile_pf_u32(&a[i, 0], lda, mr, tp, kw, &out[i, j0], n,
                                     <int>min(nrw, n - j0), k, pf, pf_lines, tail_half)


cdef void _blocks(const word_t[:, ::1] a, const word_t[:, :, ::1] panels, Py_ssize_t p0,
                  Py_ssize_t p1, Py_ssize_t block, int32_t k, int tail_half,
                  int32_t[:, ::1] out, word_t *bsplit) noexcept nogil:
    # Panels p0 .. p1-1 (one thread's share) in blocks of `block`; bsplit
    # holds one block split (this thread's own).
    cdef Py_ssize_t b = p0
    while b < p1:
        _panels(a, panels, b, min(p1, b + block), p1, k, tail_half, out, bsplit)
        b += block


def xnor_gemm(const word_t[:, ::1] a, const word_t[:, :, ::1] panels, int k,
              int32_t[:, ::1] out, int threads=1):
    """out (M, N) = K - 2 * popcount(a[i] xor column j of the panels)."""
    cdef Py_ssize_t t, i, block, npanels = panels.shape[0], kw = a.shape[1]
    cdef word_t[:, ::1] split
    cdef word_t[:, ::1] bsplit
    # Both operands are packed along K from bit 0 (bitpack.pyx), so when
    # K mod 64 is 1..32 the last u64 word is all padding above its low half.
    cdef int tail_half = word_t is uint64_t and 0 < k - 64 * (kw - 1) <= 32
    if a.shape[0] == 0 or out.shape[1] == 0:
        return
    if kw != panels.shape[1]:
        raise ValueError("packed operands disagree on the number of words along K")
    if BNN_XNOR_A_SPLIT:
        # O(M*KW) once per call, next to O(M*N*KW) in the tiles.
        split = np.empty((a.shape[0], 2 * kw), dtype=np.asarray(a).dtype)
        with nogil:
            for i in range(a.shape[0]):
                if word_t is uint64_t:
                    bnn_xnor_split_a_u64(&a[i, 0], kw, &split[i, 0])
                else:
                    bnn_xnor_split_a_u32(&a[i, 0], kw, &split[i, 0])
        a = split
    # Short panels: a tile is then mostly its epilogue, and running a row
    # tile across many adjacent panels writes longer runs of each output
    # row. Long panels in blocks of 8 too, rather than one at a time (each
    # in L1 while all of A streamed past it): a row tile of A then stays in
    # L1 across the block, and the next block's prefetch (the panels come
    # from memory) has eight panels' time to arrive. It measured faster at
    # K >= 3200 and no slower below (figures: docs/measurements.md).
    # The budget counts the panels as the tiles read them (split: twice).
    split_words = (2 if BNN_XNOR_B_SPLIT else 0) * panels.shape[1] * panels.shape[2]
    panel_bytes = max(1, panels.shape[1] * panels.shape[2] * panels.itemsize
                      * (2 if BNN_XNOR_B_SPLIT else 1))
    block = max(MIN_BLOCK_PANELS, PANEL_BLOCK_BYTES // panel_bytes)
    bsplit = np.empty((max(1, threads), max(1, block * split_words)), dtype=np.asarray(a).dtype)
    # Each thread takes an equal run of panels rather than a share of whole
    # blocks: 800 panels (32 channels) in blocks of 9 split 405 / 395
    # between two threads, which idled one of them at the end of each call.
    with nogil:
        if threads > 1:
            for t in prange(threads, num_threads=threads, schedule="static"):
                _blocks(a, panels, t * npanels // threads, (t + 1) * npanels // threads,
                        block, k, tail_half, out, &bsplit[t, 0])
        else:
            _blocks(a, panels, 0, npanels, block, k, tail_half, out, &bsplit[0, 0])
