"""Whole convolution layers on NHWC feature maps: im2col and binary conv.

Binary layers: the feature map is sign + bit-packed along channels once
(bitpack's pack_rows: a pixel's C floats -> CW words), then output pixels
are taken BNN_CONV_ROWS at a time: their bit-level im2col rows (kh x kw
packed pixels each, padding pixels as a given word pattern) are built into
a small per-thread buffer and every weight panel runs the xnor GEMM tile
over them.
The activations are the A operand (broadcast words) and the packed weights
the panels, so the tiles write the [pixels, filters] output, which is NHWC,
directly. Padding bits inside each pixel's last word are 0 in both operands.

When the batch has images to spare (at least two per thread), the pack
runs image by image inside the block loop instead of as a pass of its own
(bconv_layer): each thread packs an image just before its first block needs
it, and while the blocks of one image run, their tiles prefetch the next
image's floats into L2, so the feature map's trip from memory (a third of
a 512-channel layer when packed in a pass of its own) overlaps popcounts.

Narrow layers (a pixel's C channels fit in one word, C < W, and the window
has more than one pixel) build dense rows instead: the window pixels' C
bits back to back, ceil(kh*kw*C / W) words rather than kh*kw, so a 3x3
layer of 16 channels pops 3 words per filter instead of 9 (row_words()
is the rule; weight_panels packs the weights the same way). Padding bits
are then all at the end of the row, in both operands.

Float layers use the same im2col, over floats, into one full buffer for the
BLAS (float_im2col).
"""
import numpy as np

from . import _bitpack
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, uint32_t, uint64_t
from libc.string cimport memcpy
from words cimport word_t
from xnor_tiles cimport (BNN_XNOR_A_SPLIT, BNN_XNOR_B_SPLIT, bnn_prefetch_share,
                         bnn_xnor_split_a_u32, bnn_xnor_split_a_u64, bnn_xnor_split_b,
                         bnn_xnor_tile_pf_u32, bnn_xnor_tile_pf_u64)

cdef extern from "bnn_config.h":
    int BNN_XNOR_MR
    int BNN_CONV_ROWS

cdef extern from "bnn_simd.h" nogil:
    void bnn_pack_signs_u32(const float *x, Py_ssize_t n, uint32_t *out)
    void bnn_pack_signs_u64(const float *x, Py_ssize_t n, uint64_t *out)

ctypedef fused elem_t:
    float
    uint32_t
    uint64_t


cdef struct Geometry:
    Py_ssize_t h, w, c          # input height, width, elements per pixel
    Py_ssize_t ho, wo           # output height, width
    int kh, kw, stride, pad_top, pad_left
    Py_ssize_t bits             # binary: channels per pixel in a dense row, 0 for whole words
    Py_ssize_t kwords           # binary: words of one im2col row


cdef Py_ssize_t _row_words(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t c, Py_ssize_t word_bits,
                           Py_ssize_t *bits) noexcept nogil:
    """Words of one binary im2col row of a kh x kw window over c channels,
    and in bits the channels per pixel of a dense row (0: whole words per
    pixel). Dense when a pixel fits in one word and it saves words."""
    cdef Py_ssize_t cw = (c + word_bits - 1) // word_bits
    cdef Py_ssize_t dense = (kh * kw * c + word_bits - 1) // word_bits
    if cw == 1 and dense < kh * kw:
        bits[0] = c
        return dense
    bits[0] = 0
    return kh * kw * cw


def row_words(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t c, Py_ssize_t word_bits):
    """(words of one im2col row, dense): the layout a binary layer's rows and
    weight panels share; dense rows hold the window's bits back to back."""
    cdef Py_ssize_t bits
    cdef Py_ssize_t n = _row_words(kh, kw, c, word_bits, &bits)
    return n, bits != 0


cdef inline Py_ssize_t _window(const Geometry *g, Py_ssize_t n, Py_ssize_t *iy0,
                               Py_ssize_t *ix0) noexcept nogil:
    """Output pixel n (in (batch, y, x) order): its image, and in iy0 / ix0
    the input row and column of its window's top-left (padding included)."""
    cdef Py_ssize_t pix = g.ho * g.wo, b = n // pix, rest = n - b * pix
    iy0[0] = (rest // g.wo) * g.stride - g.pad_top
    ix0[0] = (rest % g.wo) * g.stride - g.pad_left
    return b


cdef void _im2col_rows(const elem_t *src, const Geometry *g, const elem_t *pad_pixel,
                       Py_ssize_t n0, Py_ssize_t n1, elem_t *dst,
                       Py_ssize_t ldd) noexcept nogil:
    """Rows n0 .. n1-1 of the im2col matrix (row n: output pixel n in
    (batch, y, x) order; columns (ky, kx, channel)) into dst, ldd apart.
    A window row wholly inside the image is one copy of kw pixels."""
    cdef Py_ssize_t n, b, iy, ix, ix0, iy0, ky, kx
    cdef Py_ssize_t c = g.c, kwc = g.kw * g.c
    cdef elem_t *seg
    for n in range(n0, n1):
        b = _window(g, n, &iy0, &ix0)
        for ky in range(g.kh):
            iy = iy0 + ky
            seg = dst + (n - n0) * ldd + ky * kwc
            if 0 <= iy < g.h and ix0 >= 0 and ix0 + g.kw <= g.w:
                memcpy(seg, src + ((b * g.h + iy) * g.w + ix0) * c, kwc * sizeof(elem_t))
                continue
            for kx in range(g.kw):
                ix = ix0 + kx
                if 0 <= iy < g.h and 0 <= ix < g.w:
                    memcpy(seg + kx * c, src + ((b * g.h + iy) * g.w + ix) * c,
                           c * sizeof(elem_t))
                else:
                    memcpy(seg + kx * c, pad_pixel, c * sizeof(elem_t))


cdef inline void _put_bits(word_t v, Py_ssize_t c, word_t *acc, Py_ssize_t *fill,
                           word_t **out) noexcept nogil:
    """Append the c low bits of v (the rest 0) to a row being written word
    by word: acc holds the word in progress, fill its bits so far."""
    cdef Py_ssize_t nbits = sizeof(word_t) * 8, f0 = fill[0]
    acc[0] |= v << f0
    fill[0] = f0 + c
    if fill[0] >= nbits:
        out[0][0] = acc[0]
        out[0] += 1
        fill[0] -= nbits
        acc[0] = (v >> (nbits - f0)) if fill[0] else 0   # f0 > 0 here: c < nbits


cdef void _im2col_dense(const word_t *src, const Geometry *g, const word_t *pad_pixel,
                        Py_ssize_t n0, Py_ssize_t n1, word_t *dst) noexcept nogil:
    """Dense binary im2col rows n0 .. n1-1 (one word per pixel in src, its
    g.bits low bits the channels, the rest 0): window pixel i's bits land at
    bit i * g.bits of the row, g.kwords words apart, the rest of the last
    word 0."""
    cdef Py_ssize_t n, b, iy, ix, ix0, iy0, ky, kx, fill
    cdef Py_ssize_t c = g.bits
    cdef word_t acc, pad = pad_pixel[0]
    cdef const word_t *line
    cdef word_t *out
    for n in range(n0, n1):
        out = dst + (n - n0) * g.kwords
        acc, fill = 0, 0
        b = _window(g, n, &iy0, &ix0)
        for ky in range(g.kh):
            iy = iy0 + ky
            if not 0 <= iy < g.h:
                for kx in range(g.kw):
                    _put_bits(pad, c, &acc, &fill, &out)
                continue
            line = src + (b * g.h + iy) * g.w
            if ix0 >= 0 and ix0 + g.kw <= g.w:
                for kx in range(g.kw):
                    _put_bits(line[ix0 + kx], c, &acc, &fill, &out)
            else:
                for kx in range(g.kw):
                    ix = ix0 + kx
                    _put_bits(line[ix] if 0 <= ix < g.w else pad, c, &acc, &fill, &out)
        if fill:
            out[0] = acc


cdef Geometry _geometry(Py_ssize_t h, Py_ssize_t w, Py_ssize_t c, Py_ssize_t ho, Py_ssize_t wo,
                        int kh, int kw, int stride, int pad_top, int pad_left):
    cdef Geometry g
    g.h, g.w, g.c, g.ho, g.wo = h, w, c, ho, wo
    g.kh, g.kw, g.stride, g.pad_top, g.pad_left = kh, kw, stride, pad_top, pad_left
    g.bits, g.kwords = 0, kh * kw * c
    return g


cdef Geometry _binary_geometry(Py_ssize_t h, Py_ssize_t w, Py_ssize_t cw, Py_ssize_t ho,
                               Py_ssize_t wo, int kh, int kw, int stride, int pad_top,
                               int pad_left, int k, Py_ssize_t word_bits):
    """A binary layer's geometry: cw packed words per pixel, k = kh*kw*C."""
    cdef Geometry g = _geometry(h, w, cw, ho, wo, kh, kw, stride, pad_top, pad_left)
    if kh > 0 and kw > 0:
        g.kwords = _row_words(kh, kw, k // (kh * kw), word_bits, &g.bits)
    return g


def float_im2col(const float[:, :, :, ::1] x, Py_ssize_t ho, Py_ssize_t wo, int kh,
                        int kw, int stride, int pad_top, int pad_left, float[:, ::1] out,
                        int threads=1):
    """out (B*ho*wo, kh*kw*C): the im2col matrix of x (B, H, W, C), zero padding."""
    cdef Geometry g = _geometry(x.shape[1], x.shape[2], x.shape[3], ho, wo, kh, kw, stride,
                                pad_top, pad_left)
    cdef Py_ssize_t n = out.shape[0], i, rows = 256, nblocks
    cdef float[::1] zeros = np.zeros(max(1, x.shape[3]), dtype=np.float32)
    if n == 0 or out.shape[1] == 0:
        return
    if n != x.shape[0] * ho * wo or out.shape[1] != kh * kw * x.shape[3]:
        raise ValueError("im2col buffer does not match the layer")
    nblocks = (n + rows - 1) // rows
    with nogil:
        if threads > 1:
            for i in prange(nblocks, num_threads=threads, schedule="static"):
                _im2col_rows(&x[0, 0, 0, 0], &g, &zeros[0], i * rows, min(n, i * rows + rows),
                             &out[i * rows, 0], out.shape[1])
        else:
            for i in range(nblocks):
                _im2col_rows(&x[0, 0, 0, 0], &g, &zeros[0], i * rows, min(n, i * rows + rows),
                             &out[i * rows, 0], out.shape[1])


cdef inline void _pack_pixel(const float *x, Py_ssize_t c, word_t *out) noexcept nogil:
    if word_t is uint64_t:
        bnn_pack_signs_u64(x, c, out)
    else:
        bnn_pack_signs_u32(x, c, out)


cdef void _bconv_block(const word_t *packed, const Geometry *g, const word_t *pad_pixel,
                       const word_t *panels, Py_ssize_t npanels, Py_ssize_t nrw,
                       Py_ssize_t n0, Py_ssize_t n1,
                       int32_t k, word_t *rows, word_t *split, int32_t *out,
                       Py_ssize_t nf, const char *pf, Py_ssize_t pf_lines) noexcept nogil:
    """Output pixels n0 .. n1-1: build their im2col rows, then every panel of
    weights against every row tile of them; the tile calls share out the
    prefetch of pf_lines cache lines from pf."""
    cdef Py_ssize_t kwords = g.kwords, lda = kwords, i, q, p, j0
    # panels as the tiles read them: nibble-split (twice the words) where they ask
    cdef Py_ssize_t nrows = n1 - n0, psize = (2 if BNN_XNOR_B_SPLIT else 1) * kwords * nrw
    cdef Py_ssize_t ntiles = (nrows + BNN_XNOR_MR - 1) // BNN_XNOR_MR
    cdef Py_ssize_t lines, nbits = sizeof(word_t) * 8
    cdef const char *start
    cdef int mr
    cdef word_t *a = rows
    # tail_half: only a dense row has all its padding in the last word
    cdef int tail_half = g.bits != 0 and 0 < k % nbits <= nbits // 2
    if g.bits:
        _im2col_dense(packed, g, pad_pixel, n0, n1, rows)
    else:
        _im2col_rows(packed, g, pad_pixel, n0, n1, rows, kwords)
    if BNN_XNOR_A_SPLIT:
        for i in range(nrows):
            if word_t is uint64_t:
                bnn_xnor_split_a_u64(rows + i * kwords, kwords, split + 2 * i * kwords)
            else:
                bnn_xnor_split_a_u32(rows + i * kwords, kwords, split + 2 * i * kwords)
        a = split
        lda = 2 * kwords
    for p in range(npanels):
        j0 = p * nrw
        for i in range(ntiles):
            q = i * BNN_XNOR_MR
            mr = <int>min(BNN_XNOR_MR, nrows - q)
            lines = bnn_prefetch_share(pf, pf_lines, npanels * ntiles, p * ntiles + i, &start)
            if word_t is uint64_t:
                bnn_xnor_tile_pf_u64(a + q * lda, lda, mr, panels + p * psize, kwords,
                                     out + (n0 + q) * nf + j0, nf, <int>min(nrw, nf - j0), k,
                                     start, lines, tail_half)
            else:
                bnn_xnor_tile_pf_u32(a + q * lda, lda, mr, panels + p * psize, kwords,
                                     out + (n0 + q) * nf + j0, nf, <int>min(nrw, nf - j0), k,
                                     start, lines, tail_half)


def work_shape(Py_ssize_t kwords, int threads, Py_ssize_t rows=0):
    """Shape of bconv's per-thread buffer: rows, then their nibble-split form
    where the tiles want it."""
    rows = rows or BNN_CONV_ROWS
    return (threads, rows * kwords * (3 if BNN_XNOR_A_SPLIT else 1))


def tile_panels(const word_t[:, :, ::1] panels):
    """The packed weights as the tiles read them: split into nibbles where
    they ask (bnn_simd.h, BNN_XNOR_B_SPLIT: twice the words per panel), else
    the panels themselves. bconv and bconv_layer take either form and split
    plain panels on every call; a model does it once, with its weights (at
    batch 1 the split and its allocation are not small next to a 7 x 7
    layer's O(pixels * F * KW))."""
    cdef Py_ssize_t p
    cdef word_t[:, :, ::1] out
    if not BNN_XNOR_B_SPLIT:
        return panels
    out = np.empty((panels.shape[0], 2 * panels.shape[1], panels.shape[2]),
                   dtype=np.asarray(panels).dtype)
    with nogil:
        for p in range(panels.shape[0]):
            bnn_xnor_split_b(&panels[p, 0, 0], panels.shape[1], &out[p, 0, 0],
                             word_t is uint64_t)
    return out


def _check_operands(const word_t[:, :, :, ::1] packed, const word_t[::1] pad_pixel,
                    const word_t[:, :, ::1] panels, word_t[:, ::1] work, Py_ssize_t kwords,
                    Py_ssize_t nf, int threads, Py_ssize_t rows):
    """The binary conv's buffers agree with each other, or a ValueError."""
    if (panels.shape[1] not in (kwords, (2 if BNN_XNOR_B_SPLIT else 1) * kwords)
            or pad_pixel.shape[0] != packed.shape[3]):
        raise ValueError("packed weights, feature map and padding pixel disagree")
    if work.shape[0] < threads or work.shape[1] < rows * kwords * (3 if BNN_XNOR_A_SPLIT else 1):
        raise ValueError("work buffer too small")
    if panels.shape[0] * panels.shape[2] < nf:
        raise ValueError("fewer packed filters than output channels")


def bconv(const word_t[:, :, :, ::1] packed, const word_t[::1] pad_pixel,
          const word_t[:, :, ::1] panels, int kh, int kw, int stride, int pad_top,
          int pad_left, int k, int32_t[:, :, :, ::1] out, word_t[:, ::1] work,
          int threads=1, Py_ssize_t rows=0):
    """out (B, Ho, Wo, F) = k - 2 * popcount(window xor filter) per pixel.

    packed (B, H, W, CW) is the packed feature map; pad_pixel (CW,) the words
    a padding pixel reads as; panels (ceil(F/NR), row_words(), NR) the packed
    weights, or tile_panels() of them; k = kh*kw*C the bits that count; work
    has work_shape() rows.
    """
    cdef Geometry g = _binary_geometry(packed.shape[1], packed.shape[2], packed.shape[3],
                                       out.shape[1], out.shape[2], kh, kw, stride, pad_top,
                                       pad_left, k, sizeof(word_t) * 8)
    cdef Py_ssize_t kwords = g.kwords, nf = out.shape[3]
    cdef Py_ssize_t n = out.shape[0] * out.shape[1] * out.shape[2], b, nblocks, t
    cdef Py_ssize_t nbits = sizeof(word_t) * 8
    cdef word_t *buf
    rows = rows or BNN_CONV_ROWS
    if n == 0 or nf == 0:
        return
    if kh < 1 or kw < 1 or k < 1 or k % (kh * kw) or \
            (k // (kh * kw) + nbits - 1) // nbits != packed.shape[3]:
        raise ValueError("k does not match the window and the packed words per pixel")
    _check_operands(packed, pad_pixel, panels, work, kwords, nf, threads, rows)
    if panels.shape[1] == kwords:
        panels = tile_panels(panels)
    nblocks = (n + rows - 1) // rows
    with nogil:
        if threads > 1:
            for b in prange(nblocks, num_threads=threads, schedule="static"):
                t = threadid()
                buf = &work[t, 0]
                _bconv_block(&packed[0, 0, 0, 0], &g, &pad_pixel[0], &panels[0, 0, 0],
                             panels.shape[0], panels.shape[2], b * rows,
                             min(n, b * rows + rows), k, buf, buf + rows * kwords,
                             &out[0, 0, 0, 0], nf, NULL, 0)
        else:
            buf = &work[0, 0]
            for b in range(nblocks):
                _bconv_block(&packed[0, 0, 0, 0], &g, &pad_pixel[0], &panels[0, 0, 0],
                             panels.shape[0], panels.shape[2], b * rows,
                             min(n, b * rows + rows), k, buf, buf + rows * kwords,
                             &out[0, 0, 0, 0], nf, NULL, 0)


def conv_rows():
    return BNN_CONV_ROWS


cdef void _bconv_images(const float *x, word_t *packed, const Geometry *g,
                        const word_t *pad_pixel, const word_t *panels, Py_ssize_t npanels,
                        Py_ssize_t nrw, Py_ssize_t img0, Py_ssize_t img1, Py_ssize_t rows,
                        int32_t k, word_t *buf, int32_t *out, Py_ssize_t nf) noexcept nogil:
    """Images img0 .. img1-1 of the layer: each packed just before its first
    block, the next one's floats prefetched by the blocks before that. g.c is
    the packed words per pixel; x holds k / (kh * kw) floats per pixel."""
    cdef Py_ssize_t c = k // (g.kh * g.kw), cw = g.c, kwords = g.kwords
    cdef Py_ssize_t img_pixels = g.h * g.w, out_pixels = g.ho * g.wo, i
    cdef Py_ssize_t img_lines = (img_pixels * c * sizeof(float) + 63) // 64
    cdef Py_ssize_t blocks = (out_pixels + rows - 1) // rows
    cdef Py_ssize_t per_block = (img_lines + blocks - 1) // blocks
    cdef Py_ssize_t n = img0 * out_pixels, nend = img1 * out_pixels, n1, packed_to = img0
    cdef Py_ssize_t pf_left = 0, lines
    cdef const char *pf = NULL
    while n < nend:
        n1 = min(n + rows, nend)
        while packed_to <= (n1 - 1) // out_pixels:
            for i in range(packed_to * img_pixels, (packed_to + 1) * img_pixels):
                _pack_pixel(x + i * c, c, packed + i * cw)
            packed_to += 1
            pf_left = img_lines if packed_to < img1 else 0
            pf = <const char *>(x + packed_to * img_pixels * c) if pf_left else NULL
        lines = min(per_block, pf_left)
        _bconv_block(packed, g, pad_pixel, panels, npanels, nrw, n, n1, k, buf,
                     buf + rows * kwords, out, nf, pf, lines)
        if lines:
            pf += 64 * lines
            pf_left -= lines
        n = n1


def bconv_layer(const float[:, :, :, ::1] x, word_t[:, :, :, ::1] packed,
                const word_t[::1] pad_pixel, const word_t[:, :, ::1] panels, int kh, int kw,
                int stride, int pad_top, int pad_left, int k, int32_t[:, :, :, ::1] out,
                word_t[:, ::1] work, int threads=1, Py_ssize_t rows=0):
    """The whole binary layer from floats: x's pixels packed into packed, then
    bconv(); as one pipeline when the batch has at least two images per
    thread (each thread takes a run of whole images), else as two passes."""
    cdef Geometry g = _binary_geometry(packed.shape[1], packed.shape[2], packed.shape[3],
                                       out.shape[1], out.shape[2], kh, kw, stride, pad_top,
                                       pad_left, k, sizeof(word_t) * 8)
    cdef Py_ssize_t nimg = x.shape[0], per, t, kwords = g.kwords
    cdef Py_ssize_t nf = out.shape[3]
    rows = rows or BNN_CONV_ROWS
    if (x.shape[1] != packed.shape[1] or x.shape[2] != packed.shape[2]
            or packed.shape[0] != nimg or out.shape[0] != nimg or k != kh * kw * x.shape[3]):
        raise ValueError("feature map, packed buffer, output and k disagree")
    if nimg < 2 * threads or out.shape[1] * out.shape[2] == 0 or nf == 0 or x.shape[3] == 0:
        _bitpack.pack_rows(np.asarray(x).reshape(-1, x.shape[3]),
                           np.asarray(packed).reshape(-1, packed.shape[3]), threads)
        bconv(packed, pad_pixel, panels, kh, kw, stride, pad_top, pad_left, k, out, work,
              threads, rows)
        return
    _check_operands(packed, pad_pixel, panels, work, kwords, nf, threads, rows)
    if panels.shape[1] == kwords:
        panels = tile_panels(panels)
    per = (nimg + threads - 1) // threads
    with nogil:
        if threads > 1:
            for t in prange(threads, num_threads=threads, schedule="static"):
                if t * per < nimg:
                    _bconv_images(&x[0, 0, 0, 0], &packed[0, 0, 0, 0], &g, &pad_pixel[0],
                                  &panels[0, 0, 0], panels.shape[0], panels.shape[2], t * per,
                                  min(nimg, t * per + per), rows, k, &work[t, 0],
                                  &out[0, 0, 0, 0], nf)
        else:
            _bconv_images(&x[0, 0, 0, 0], &packed[0, 0, 0, 0], &g, &pad_pixel[0],
                          &panels[0, 0, 0], panels.shape[0], panels.shape[2], 0, nimg, rows, k,
                          &work[0, 0], &out[0, 0, 0, 0], nf)
