"""The network runtime's steps outside the binary layers, on NHWC buffers.

bnnbench.models.network calls these on buffers it allocated at prepare():
nothing here allocates per call. Each walks output rows (images x rows, or
pixels) and, with threads > 1, splits them with prange; the inner loop runs
over the channels of a pixel, contiguous in NHWC, so the compiler vectorises
it.

- pool: max (padding reads as -inf) or average (divides by the real pixels
  of the window), any kernel, stride and padding; float32, and int32 for
  max (a max commutes with the per-channel bias and any non-decreasing map,
  so a max pool may run on a binary layer's exact integers).
- epilogue: a binary layer's int32 y (or a float32 map) -> float32
  scale * y + bias (+ a residual) (then ReLU), one pass: a binary layer's
  bias, BatchNorm and shortcut Add; a lone BatchNorm or Add. With relu_in,
  max(y, 0) goes in instead of y (QuickNet's ReLU on the binary conv).
- depthwise: a float32 depthwise conv (one k x k filter per channel), zero
  padding, + bias, then ReLU.
- bias_relu: a float layer's GEMM output += bias, then ReLU, in place.
- threshold_pack: a threshold fold (y >= t) xor flip, packed 64 channels
  to a word: the next binary layer's input bits.

Float results equal numpy's on the same operations up to the order of
operations noted per function (the network's float bound covers that).
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, uint64_t
from libc.string cimport memcpy

ctypedef fused pool_t:
    float
    int32_t

cdef extern from "<math.h>" nogil:
    float INFINITY
    float NAN

cdef extern from "<limits.h>" nogil:
    int INT_MIN


cdef inline void _clip(Py_ssize_t o, int k, int s, int p, Py_ssize_t n,
                       Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    """[lo, hi): the real pixels (0 .. n-1) of output o's k-wide window
    with stride s and p pixels of padding before it."""
    lo[0] = o * s - p
    hi[0] = min(lo[0] + k, n)
    lo[0] = max(lo[0], 0)


cdef inline void _max_row(const pool_t *x, Py_ssize_t h, Py_ssize_t w, Py_ssize_t c,
                          Py_ssize_t oy, Py_ssize_t wo, int k, int s, int p, pool_t lowest,
                          pool_t *out) noexcept nogil:
    """Output row oy of one image: wo pixels of c channels, max over the
    window's real pixels (lowest when it has none, i.e. all padding)."""
    cdef Py_ssize_t ox, iy, ix, ch, y0, y1, x0, x1
    cdef const pool_t *src
    cdef pool_t *o
    cdef pool_t v
    _clip(oy, k, s, p, h, &y0, &y1)
    for ox in range(wo):
        _clip(ox, k, s, p, w, &x0, &x1)
        o = out + ox * c
        for ch in range(c):
            o[ch] = lowest
        for iy in range(y0, y1):
            for ix in range(x0, x1):
                src = x + (iy * w + ix) * c
                for ch in range(c):
                    v = src[ch]
                    o[ch] = v if v > o[ch] else o[ch]


cdef inline void _window_sum(const float *x, Py_ssize_t w, Py_ssize_t c, Py_ssize_t y0,
                             Py_ssize_t y1, Py_ssize_t x0, Py_ssize_t x1, const float *wt,
                             Py_ssize_t wy, Py_ssize_t wx, int k, float *o) noexcept nogil:
    """o[ch] = the float32 sum over the real pixels [y0, y1) x [x0, x1) of
    x, row by row, each pixel times its weights wt[(iy - wy) * k + ix - wx]
    (C of them) when wt is not NULL: (wy, wx) is the window's origin."""
    cdef Py_ssize_t iy, ix, ch
    cdef const float *src
    cdef const float *wp
    for ch in range(c):
        o[ch] = 0
    for iy in range(y0, y1):
        for ix in range(x0, x1):
            src = x + (iy * w + ix) * c
            if wt == NULL:
                for ch in range(c):
                    o[ch] = o[ch] + src[ch]
            else:
                wp = wt + ((iy - wy) * k + (ix - wx)) * c
                for ch in range(c):
                    o[ch] = o[ch] + src[ch] * wp[ch]


cdef inline void _avg_row(const float *x, Py_ssize_t h, Py_ssize_t w, Py_ssize_t c,
                          Py_ssize_t oy, Py_ssize_t wo, int k, int s, int p,
                          float *out) noexcept nogil:
    """Output row oy: the float32 sum of the window's real pixels (row by
    row, as numpy's window-by-window sum adds them), times 1 / count."""
    cdef Py_ssize_t ox, ch, y0, y1, x0, x1
    cdef float *o
    cdef float inv
    _clip(oy, k, s, p, h, &y0, &y1)
    for ox in range(wo):
        _clip(ox, k, s, p, w, &x0, &x1)
        o = out + ox * c
        _window_sum(x, w, c, y0, y1, x0, x1, NULL, 0, 0, k, o)
        if y1 > y0 and x1 > x0:
            inv = 1.0 / <float>((y1 - y0) * (x1 - x0))
        else:
            inv = NAN   # no real pixel (padding >= kernel): 0 / 0, as numpy
        for ch in range(c):
            o[ch] = o[ch] * inv


def pool_out_size(Py_ssize_t n, int k, int s, int p):
    return (n + 2 * p - k) // s + 1


def pool(const pool_t[:, :, :, ::1] x, pool_t[:, :, :, ::1] out, str kind, int k, int s,
         int p, int threads=1):
    """out (B, Ho, Wo, C) = kind ("max" or "avg") pool of x (B, H, W, C),
    kernel k, stride s, padding p on every side; avg on float32 only."""
    cdef Py_ssize_t b = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
    cdef Py_ssize_t ho = out.shape[1], wo = out.shape[2], i, n, img, oy
    cdef bint is_max = kind == "max"
    cdef pool_t lowest
    if kind not in ("max", "avg"):
        raise ValueError(f"unknown pool kind {kind!r}")
    if k < 1 or s < 1 or p < 0:
        raise ValueError("pool needs kernel >= 1, stride >= 1, padding >= 0")
    if (out.shape[0] != b or out.shape[3] != c or ho != pool_out_size(h, k, s, p)
            or wo != pool_out_size(w, k, s, p)):
        raise ValueError("pool output buffer does not match the layer")
    if pool_t is int32_t:
        if not is_max:
            raise ValueError("average pooling runs on float32 only")
        lowest = INT_MIN
    else:
        lowest = -INFINITY
    n = b * ho
    if n <= 0 or wo <= 0 or c == 0:
        return
    with nogil:
        if is_max:
            if threads > 1:
                for i in prange(n, num_threads=threads, schedule="static"):
                    img = i // ho
                    _max_row(&x[img, 0, 0, 0], h, w, c, i - img * ho, wo, k, s, p, lowest,
                             &out[img, i - img * ho, 0, 0])
            else:
                for i in range(n):
                    img = i // ho
                    oy = i - img * ho
                    _max_row(&x[img, 0, 0, 0], h, w, c, oy, wo, k, s, p, lowest,
                             &out[img, oy, 0, 0])
        else:
            if pool_t is float:
                if threads > 1:
                    for i in prange(n, num_threads=threads, schedule="static"):
                        img = i // ho
                        _avg_row(&x[img, 0, 0, 0], h, w, c, i - img * ho, wo, k, s, p,
                                 &out[img, i - img * ho, 0, 0])
                else:
                    for i in range(n):
                        img = i // ho
                        oy = i - img * ho
                        _avg_row(&x[img, 0, 0, 0], h, w, c, oy, wo, k, s, p,
                                 &out[img, oy, 0, 0])


cdef inline void _epilogue_pixel(const pool_t *y, const float *scale, const float *bias,
                                 const float *res, bint relu, bint relu_in, Py_ssize_t c,
                                 float *out) noexcept nogil:
    """One pixel; plain loops rather than one with branches, so each
    vectorises."""
    cdef Py_ssize_t ch
    cdef float v, r
    if relu_in:
        for ch in range(c):
            v = <float>y[ch]
            v = v if v > 0 else 0
            r = res[ch] if res != NULL else 0
            v = (v * scale[ch] + bias[ch]) + r
            if relu:
                v = v if v > 0 else 0
            out[ch] = v
    elif res == NULL and not relu:
        for ch in range(c):
            out[ch] = <float>y[ch] * scale[ch] + bias[ch]
    elif res == NULL:
        for ch in range(c):
            v = <float>y[ch] * scale[ch] + bias[ch]
            out[ch] = v if v > 0 else 0
    elif not relu:
        for ch in range(c):
            out[ch] = (<float>y[ch] * scale[ch] + bias[ch]) + res[ch]
    else:
        for ch in range(c):
            v = (<float>y[ch] * scale[ch] + bias[ch]) + res[ch]
            out[ch] = v if v > 0 else 0


def epilogue(const pool_t[:, ::1] y, const float[::1] scale not None,
             const float[::1] bias not None, float[:, ::1] out,
             const float[:, ::1] res=None, bint relu=False, int threads=1,
             bint relu_in=False):
    """out (pixels, C) float32 = relu?(scale * y' + bias + res) per channel,
    in that order, one pass, with y' = max(y, 0) when relu_in, else y; res
    may be None. The caller passes ones and
    zeros for a missing scale or bias: y * 1 + 0 == y, exactly.

    y is a binary layer's exact int32 output (y -> float32 is exact: |y| <=
    K < 2^24) or float32 (a BatchNorm, an Add: y + res). The compiler may
    fuse scale * y + bias into one rounding (FMA) where numpy rounds twice."""
    cdef Py_ssize_t n = y.shape[0], c = y.shape[1], i
    cdef const float *rp = NULL
    if out.shape[0] != n or out.shape[1] != c:
        raise ValueError("epilogue output does not match its input")
    if scale.shape[0] != c or bias.shape[0] != c:
        raise ValueError("epilogue scale or bias does not match the channels")
    if res is not None and (res.shape[0] != n or res.shape[1] != c):
        raise ValueError("epilogue residual does not match its input")
    if n == 0 or c == 0:
        return
    if res is not None:
        rp = &res[0, 0]
    with nogil:
        if threads > 1:
            for i in prange(n, num_threads=threads, schedule="static"):
                _epilogue_pixel(&y[i, 0], &scale[0], &bias[0],
                                rp + i * c if rp != NULL else NULL, relu, relu_in, c,
                                &out[i, 0])
        else:
            for i in range(n):
                _epilogue_pixel(&y[i, 0], &scale[0], &bias[0],
                                rp + i * c if rp != NULL else NULL, relu, relu_in, c,
                                &out[i, 0])


cdef inline void _bias_relu_row(float *x, const float *bias, bint relu,
                                Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t ch
    cdef float v
    for ch in range(c):
        v = x[ch]
        if bias != NULL:
            v = v + bias[ch]
        if relu:
            v = v if v > 0 else 0
        x[ch] = v


def bias_relu(float[:, ::1] x, const float[::1] bias, bint relu, int threads=1):
    """In place, per row of x (pixels, C): x = x + bias (bias may be None),
    then max(x, 0) when relu; numpy's np.add then np.maximum, in one pass."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], i
    cdef const float *bp = NULL
    if bias is not None:
        if bias.shape[0] != c:
            raise ValueError("bias does not match the channels")
        bp = &bias[0] if c else NULL
    if n == 0 or c == 0 or (bp == NULL and not relu):
        return
    with nogil:
        if threads > 1:
            for i in prange(n, num_threads=threads, schedule="static"):
                _bias_relu_row(&x[i, 0], bp, relu, c)
        else:
            for i in range(n):
                _bias_relu_row(&x[i, 0], bp, relu, c)


cdef inline void _threshold_pixel(const int32_t *y, const int32_t *t, const unsigned char *flip,
                                  Py_ssize_t c, uint64_t *bits) noexcept nogil:
    """64 channels at a time: the bits as bytes 0/1 first (a compare loop the
    compiler vectorises), then each 8 bytes to 8 bits with one multiply:
    byte i of g (0 or 1) lands on bit 56 + i of g * 0x0102040810204080, and
    no two products share a bit (the bytes are read little-endian, as every
    host bnnbench runs on is)."""
    cdef Py_ssize_t w0, j, cnt
    cdef unsigned char m[64]
    cdef uint64_t word, g
    for w0 in range(0, c, 64):
        cnt = min(c - w0, 64)
        for j in range(cnt):
            m[j] = (y[w0 + j] >= t[w0 + j]) ^ flip[w0 + j]
        for j in range(cnt, (cnt + 7) // 8 * 8):
            m[j] = 0
        word = 0
        for j in range(0, cnt, 8):
            memcpy(&g, &m[j], 8)
            word |= ((g * <uint64_t>0x0102040810204080) >> 56) << j
        bits[w0 // 64] = word


def threshold_pack(const int32_t[:, ::1] y, const int32_t[::1] t not None,
                   const unsigned char[::1] flip not None, uint64_t[:, ::1] bits,
                   int threads=1):
    """bits (pixels, ceil(C / 64)): bit c of pixel p is (y[p, c] >= t[c])
    xor flip[c] (the network's threshold fold), channel c at bit c % 64 of
    word c // 64 (little-endian bit order, as bitpack packs signs); the bits
    past C in the last word are 0."""
    cdef Py_ssize_t n = y.shape[0], c = y.shape[1], i
    if t.shape[0] != c or flip.shape[0] != c:
        raise ValueError("threshold table does not match the channels")
    if bits.shape[0] != n or bits.shape[1] != (c + 63) // 64:
        raise ValueError("bit buffer does not match y")
    if n == 0 or c == 0:
        return
    with nogil:
        if threads > 1:
            for i in prange(n, num_threads=threads, schedule="static"):
                _threshold_pixel(&y[i, 0], &t[0], &flip[0], c, &bits[i, 0])
        else:
            for i in range(n):
                _threshold_pixel(&y[i, 0], &t[0], &flip[0], c, &bits[i, 0])



cdef inline void _depthwise_row(const float *x, Py_ssize_t h, Py_ssize_t w, Py_ssize_t c,
                                const float *wt, int k, int s, int top, int left,
                                Py_ssize_t oy, Py_ssize_t wo, const float *bias, bint relu,
                                float *out) noexcept nogil:
    """Output row oy of one image: per pixel, the float32 sum over the
    window's real pixels (row by row) of x * w, per channel; then + bias and
    ReLU. wt is [k, k, C]."""
    cdef Py_ssize_t ox, ch, y0, y1, x0, x1
    cdef float *o
    cdef float v
    _clip(oy, k, s, top, h, &y0, &y1)
    for ox in range(wo):
        _clip(ox, k, s, left, w, &x0, &x1)
        o = out + ox * c
        _window_sum(x, w, c, y0, y1, x0, x1, wt, oy * s - top, ox * s - left, k, o)
        if bias != NULL or relu:
            for ch in range(c):
                v = o[ch]
                if bias != NULL:
                    v = v + bias[ch]
                if relu:
                    v = v if v > 0 else 0
                o[ch] = v


def depthwise(const float[:, :, :, ::1] x, const float[:, :, ::1] w,
              const float[::1] bias, float[:, :, :, ::1] out, int stride, int top,
              int left, bint relu=False, int threads=1):
    """out (B, Ho, Wo, C) = relu?(depthwise conv of x (B, H, W, C) with w
    (k, k, C) + bias), stride `stride`, `top` / `left` pixels of zero padding
    before the first row / column (the rest, as far as the windows reach,
    after them); bias may be None."""
    cdef Py_ssize_t b = x.shape[0], h = x.shape[1], wd = x.shape[2], c = x.shape[3]
    cdef Py_ssize_t ho = out.shape[1], wo = out.shape[2], i, n, img
    cdef int k = w.shape[0]
    cdef const float *bp = NULL
    if w.shape[1] != k or w.shape[2] != c or out.shape[0] != b or out.shape[3] != c:
        raise ValueError("depthwise weights or output do not match the input")
    if stride < 1 or top < 0 or left < 0 or top >= k or left >= k:
        raise ValueError("depthwise needs stride >= 1 and 0 <= padding < kernel")
    if (ho - 1) * stride - top >= h or (wo - 1) * stride - left >= wd:
        raise ValueError("depthwise output has windows past the input")
    if bias is not None:
        if bias.shape[0] != c:
            raise ValueError("bias does not match the channels")
        bp = &bias[0] if c else NULL
    n = b * ho
    if n <= 0 or wo <= 0 or c == 0:
        return
    with nogil:
        if threads > 1:
            for i in prange(n, num_threads=threads, schedule="static"):
                img = i // ho
                _depthwise_row(&x[img, 0, 0, 0], h, wd, c, &w[0, 0, 0], k, stride, top, left,
                               i - img * ho, wo, bp, relu, &out[img, i - img * ho, 0, 0])
        else:
            for i in range(n):
                img = i // ho
                _depthwise_row(&x[img, 0, 0, 0], h, wd, c, &w[0, 0, 0], k, stride, top, left,
                               i - img * ho, wo, bp, relu, &out[img, i - img * ho, 0, 0])
