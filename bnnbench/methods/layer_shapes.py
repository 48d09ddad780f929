"""Whole convolution layers: geometry, padding, and the layer-level grids.

A layer takes an NHWC float32 feature map [batch, height, width, channels]
and OHWI weights [filters, kernel, kernel, channels] to [batch, Ho, Wo,
filters]. Its im2col view is the GEMM of shapes.py with M = filters,
K = kernel^2 * channels and N = batch * Ho * Wo, so ops = 2 * M * N * K.

Padding follows TF/Keras: "valid" none; "same" Ho = ceil(H / stride) with
the total padding split top/left first, the odd pixel at the bottom/right.
Padding pixels read as 0 in float layers and as +1 in binary layers (Larq
Compute Engine's one-padding), so a binary layer stays a pure xnor-popcount.
"""
import itertools
from dataclasses import asdict, dataclass

from ..errors import BnnbenchError
from .shapes import DEFAULT_BATCH, DEFAULT_CHANNELS, DEFAULT_FILTERS, DEFAULT_KERNEL, GemmDims

PADDINGS = ("valid", "same")
DEFAULT_OUT_SIZE = 8   # BMXNet's layer: 12x12 input, 5x5 valid -> 8x8

# daBNN's chart (JDAI-CV/dabnn README, Google Pixel 1): 3x3 binary convs,
# batch 1, filters = channels, stride 1, same padding.
DABNN_LAYERS = ((56, 64), (28, 128), (14, 256), (7, 512))


def _explicit(padding):
    return isinstance(padding, int) and not isinstance(padding, bool)


def output_size(size, kernel, stride, padding):
    """(output size, padding before) along one axis; the rest pads after.
    An int pads that many pixels on every side (a model's explicit padding)."""
    if _explicit(padding):
        padded = size + 2 * padding
        return (padded - kernel) // stride + 1 if padded >= kernel else 0, padding
    if padding == "valid":
        return (size - kernel) // stride + 1 if size >= kernel else 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2


def input_size(out_size, kernel, stride, padding):
    """Smallest input size giving out_size outputs (how --out-size maps to
    an input on the layer level)."""
    if padding == "valid":
        return (out_size - 1) * stride + kernel
    return out_size * stride


@dataclass(frozen=True, order=True)
class LayerShape(GemmDims):
    channels: int
    filters: int
    kernel: int
    batch: int
    height: int
    width: int
    stride: int = 1
    padding: str = "valid"

    @property
    def out_h(self):
        return output_size(self.height, self.kernel, self.stride, self.padding)[0]

    @property
    def out_w(self):
        return output_size(self.width, self.kernel, self.stride, self.padding)[0]

    @property
    def out_size(self):
        return self.out_h   # square layers in every grid; kept for the GEMM tables

    @property
    def N(self):
        return self.batch * self.out_h * self.out_w

    @property
    def feature_map_bytes(self):
        return 4 * self.batch * self.height * self.width * self.channels

    def fields(self):
        return dict(asdict(self), out_size=self.out_size, M=self.M, N=self.N, K=self.K)

    def describe(self):
        return (f"input {self.batch}x{self.height}x{self.width}x{self.channels} "
                f"filters={self.filters} kernel={self.kernel} stride={self.stride} "
                f"padding={self.padding} (M={self.M} N={self.N} K={self.K})")


def layer_geometry(x_shape, w_shape, stride, padding):
    """(Ho, Wo, pad_top, pad_left) of a layer, or a one-line BnnbenchError."""
    if not (padding in PADDINGS or (_explicit(padding) and padding >= 0)):
        raise BnnbenchError(f"padding must be 'valid', 'same' or pixels >= 0, got {padding!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise BnnbenchError(f"stride must be an integer >= 1, got {stride!r}")
    b, h, w, c = x_shape
    f, kh, kw, wc = w_shape
    if wc != c:
        raise BnnbenchError(f"channels differ: x is {tuple(x_shape)}, w is {tuple(w_shape)}")
    if min(b, h, w, c, f, kh, kw) < 1:
        raise BnnbenchError(f"empty layer: x is {tuple(x_shape)}, w is {tuple(w_shape)}")
    ho, top = output_size(h, kh, stride, padding)
    wo, left = output_size(w, kw, stride, padding)
    if ho < 1 or wo < 1:
        raise BnnbenchError(f"kernel {kh}x{kw} is larger than the {h}x{w} input with "
                            f"padding={padding!r}")
    return ho, wo, top, left


def grid(channels=DEFAULT_CHANNELS, filters=DEFAULT_FILTERS, kernel=DEFAULT_KERNEL,
         batch=DEFAULT_BATCH, out_size=DEFAULT_OUT_SIZE, stride=1, padding="valid"):
    """Every combination, in the GEMM sweep's order; the input is sized so
    the output is out_size x out_size (BMXNet: 12x12 in, 8x8 out)."""
    shapes = []
    for f, k, c in itertools.product(filters, kernel, channels):
        size = input_size(out_size, k, stride, padding)
        shapes.append(LayerShape(c, f, k, batch, size, size, stride, padding))
    return shapes


def dabnn_grid(batch=1):
    """daBNN's four 3x3 layers, batch 1, same padding, filters = channels."""
    return [LayerShape(c, c, 3, batch, s, s, 1, "same") for s, c in DABNN_LAYERS]

