"""The model zoo: each model is a list of layers; every figure is derived.

A spec lists what a framework would be told (a conv's kernel, stride,
padding, channels, bias; a dense layer's width; batch norm; pooling). The
parameter count, the float32 and packed sizes, the MACs and each layer's
GEMM shape are computed from it by walking the layers with the activation
shape: nothing is a hand-typed total, and a spec whose channels do not fit
together is rejected.

Layer semantics (CNTK's, as in the CIFAR-10 write-ups):

- Conv: padding="same" is CNTK's pad=True (output = ceil(input / stride));
  an integer pads that many zeros on each side (out = (in + 2p - k) // s + 1).
- Pool: no padding unless given, so 3x3 stride 2 takes 32 -> 15 -> 7 -> 3.
- BatchNorm: a learnable scale and bias per channel. Running mean and
  variance are statistics, not parameters; for inference they fold into the
  scale and bias, so two floats per channel is also what a deployment stores.
- Dense flattens its input. Activations (ReLU, sign) have no parameters and
  do not change shapes, so most specs leave them out: the network semantics
  place the ReLUs by one rule (numpy_net.relu_layers). A model written from a
  framework's definition whose ReLUs sit elsewhere (QuickNet: after the
  binary conv, before a block's pooling) sets implicit_relus=False and lists
  each one as a ReLU layer.
- DepthwiseConv filters each channel with its own k x k kernel (TF's
  DepthwiseConv2D, depth multiplier 1); always float.

Binarization policy (BMXNet, XNOR-Net): the first and the last weight layer
(first conv, last dense) stay float32, every other conv and dense is binary
(one bit per weight); batch norm, scales and biases stay float. A layer
whose spec sets binary=True/False keeps that choice (cntk-bnn).

Sizes: float_bytes stores every parameter as float32. binary_bytes packs a
binary layer's weights per output channel into 64-bit words,
ceil(K / 64) * 8 bytes with K = k * k * in_channels (in_features for dense),
and keeps its bias and every float layer at 4 bytes per parameter.
MACs are per image; binary MACs become xnor-popcount, 64 to a word, so
ops = float_macs + binary_macs / 64.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from ..errors import BnnbenchError

FLOAT_BYTES = 4
WORD_BITS = 64
WORD_BYTES = WORD_BITS // 8
INPUT = "input"   # name by which a layer reads the network input


# ------------------------------------------------------------------ layers

@dataclass(frozen=True)
class Conv:
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: Union[int, str] = "same"
    bias: bool = True
    binary: Optional[bool] = None   # None: the binarization policy decides
    src: Optional[str] = None       # layer this reads (default: the one before)


@dataclass(frozen=True)
class Dense:
    name: str
    out_features: int
    bias: bool = True
    binary: Optional[bool] = None
    src: Optional[str] = None


@dataclass(frozen=True)
class DepthwiseConv:
    """One k x k filter per channel, no mixing of channels (always float)."""
    name: str
    channels: int
    kernel: int
    stride: int = 1
    padding: Union[int, str] = "same"
    bias: bool = False
    src: Optional[str] = None


@dataclass(frozen=True)
class ReLU:
    """max(x, 0), where a model with implicit_relus=False puts one."""
    name: str
    src: Optional[str] = None


@dataclass(frozen=True)
class BatchNorm:
    name: str
    src: Optional[str] = None


@dataclass(frozen=True)
class Pool:
    name: str
    kind: str          # "max" or "avg"
    kernel: int
    stride: int = 1
    padding: int = 0
    src: Optional[str] = None


@dataclass(frozen=True)
class Add:
    """Residual sum of two layers' outputs (no parameters)."""
    name: str
    srcs: Tuple[str, str]


@dataclass(frozen=True)
class Scale:
    """Element-wise scale per channel; learnable=False for a constant."""
    name: str
    learnable: bool = True
    src: Optional[str] = None


@dataclass(frozen=True)
class Dropout:
    name: str
    rate: float
    src: Optional[str] = None


WEIGHT_LAYERS = (Conv, Dense)


@dataclass(frozen=True)
class Model:
    name: str
    dataset: str
    input_shape: Tuple[int, int, int]   # channels, height, width
    layers: Tuple
    description: str
    source: str
    implicit_relus: bool = True   # False: only the model's ReLU layers apply


# --------------------------------------------------------- derived figures

@dataclass(frozen=True)
class LayerInfo:
    """One layer resolved against its input shape."""
    name: str
    type: str
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    weights: int            # weight parameters (conv filters, dense matrix)
    biases: int
    other_params: int       # batch norm scale + bias, learnable scales
    binary: bool            # weights stored as one bit each
    macs: int               # per image
    gemm: Optional[Tuple[int, int, int]]   # (M, K, N per image) for conv/dense

    @property
    def params(self):
        return self.weights + self.biases + self.other_params

    @property
    def float_bytes(self):
        return self.params * FLOAT_BYTES

    @property
    def packed_weight_bytes(self):
        """Bytes of the weights packed one bit each, padded per output channel."""
        m, k, _ = self.gemm
        return m * math.ceil(k / WORD_BITS) * WORD_BYTES

    @property
    def binary_bytes(self):
        if not self.binary:
            return self.float_bytes
        return self.packed_weight_bytes + (self.biases + self.other_params) * FLOAT_BYTES


def _out_size(size, kernel, stride, padding, what):
    if padding == "same":
        out = -(-size // stride)
    else:
        out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise BnnbenchError(f"{what}: a {kernel}x{kernel} window with stride {stride} and "
                            f"padding {padding} does not fit a {size}x{size} input")
    return out


def binary_flags(model):
    """Which weight layers are binary, by name (explicit choices win)."""
    weight_layers = [l for l in model.layers if isinstance(l, WEIGHT_LAYERS)]
    flags = {}
    for i, layer in enumerate(weight_layers):
        if layer.binary is not None:
            flags[layer.name] = layer.binary
        else:
            flags[layer.name] = 0 < i < len(weight_layers) - 1
    return flags


def resolve(model):
    """Walk the layers with the activation shape; one LayerInfo per layer.

    Raises BnnbenchError when the spec does not fit together (a conv whose
    in_channels differ from what reaches it, a residual sum of unequal
    shapes, a window larger than its input, a duplicate name).
    """
    shapes = {INPUT: tuple(model.input_shape)}
    flags = binary_flags(model)
    infos = []
    prev = INPUT
    for layer in model.layers:
        where = f"{model.name}.{layer.name}"
        if layer.name in shapes:
            raise BnnbenchError(f"{where}: duplicate layer name")
        srcs = layer.srcs if isinstance(layer, Add) else (layer.src or prev,)
        for s in srcs:
            if s not in shapes:
                raise BnnbenchError(f"{where}: reads {s!r}, which is not an earlier layer")
        shape = shapes[srcs[0]]
        weights = biases = other = macs = 0
        gemm = None
        binary = False
        if isinstance(layer, Conv):
            if len(shape) != 3 or shape[0] != layer.in_channels:
                raise BnnbenchError(f"{where}: expects {layer.in_channels} input channels "
                                    f"but receives shape {shape}")
            c, h, w = shape
            oh = _out_size(h, layer.kernel, layer.stride, layer.padding, where)
            ow = _out_size(w, layer.kernel, layer.stride, layer.padding, where)
            k = layer.kernel * layer.kernel * c
            out = (layer.out_channels, oh, ow)
            weights = layer.out_channels * k
            biases = layer.out_channels if layer.bias else 0
            macs = layer.out_channels * k * oh * ow
            gemm = (layer.out_channels, k, oh * ow)
            binary = flags[layer.name]
        elif isinstance(layer, DepthwiseConv):
            if len(shape) != 3 or shape[0] != layer.channels:
                raise BnnbenchError(f"{where}: expects {layer.channels} channels "
                                    f"but receives shape {shape}")
            c, h, w = shape
            out = (c, _out_size(h, layer.kernel, layer.stride, layer.padding, where),
                   _out_size(w, layer.kernel, layer.stride, layer.padding, where))
            weights = c * layer.kernel * layer.kernel
            biases = c if layer.bias else 0
            macs = weights * out[1] * out[2]
        elif isinstance(layer, Dense):
            k = math.prod(shape)
            out = (layer.out_features,)
            weights = layer.out_features * k
            biases = layer.out_features if layer.bias else 0
            macs = weights
            gemm = (layer.out_features, k, 1)
            binary = flags[layer.name]
        elif isinstance(layer, BatchNorm):
            out = shape
            other = 2 * shape[0]
        elif isinstance(layer, Pool):
            if layer.kind not in ("max", "avg"):
                raise BnnbenchError(f"{where}: pool kind must be 'max' or 'avg'")
            c, h, w = shape
            out = (c, _out_size(h, layer.kernel, layer.stride, layer.padding, where),
                   _out_size(w, layer.kernel, layer.stride, layer.padding, where))
        elif isinstance(layer, Add):
            if shapes[srcs[1]] != shape:
                raise BnnbenchError(f"{where}: cannot add shapes {shape} and {shapes[srcs[1]]}")
            out = shape
        elif isinstance(layer, Scale):
            out = shape
            other = shape[0] if layer.learnable else 0
        elif isinstance(layer, (Dropout, ReLU)):
            out = shape
        else:
            raise BnnbenchError(f"{where}: unknown layer type {type(layer).__name__}")
        shapes[layer.name] = out
        prev = layer.name
        infos.append(LayerInfo(layer.name, type(layer).__name__, shape, out, weights, biases,
                               other, binary, macs, gemm))
    return infos


SUMMARY_KEYS = ("name", "dataset", "params", "float_bytes", "binary_bytes", "compression",
                "float_macs", "binary_macs", "ops")


def summarize(model):
    """The figures `bnnbench models` prints, summed layer by layer."""
    infos = resolve(model)
    float_bytes = sum(i.float_bytes for i in infos)
    binary_bytes = sum(i.binary_bytes for i in infos)
    float_macs = sum(i.macs for i in infos if not i.binary)
    binary_macs = sum(i.macs for i in infos if i.binary)
    return {
        "name": model.name,
        "dataset": model.dataset,
        "params": sum(i.params for i in infos),
        "float_bytes": float_bytes,
        "binary_bytes": binary_bytes,
        "compression": float_bytes / binary_bytes,
        "float_macs": float_macs,
        "binary_macs": binary_macs,
        "ops": float_macs + binary_macs / WORD_BITS,
    }


# -------------------------------------------------------------- the specs

CIFAR10 = "cifar10"
CIFAR_INPUT = (3, 32, 32)
CLASSES = 10
WRITEUPS = "CIFAR-10 write-ups (CNTK tutorials), as summarised in REFERENCE.md"


def _cntk_basic(name, dropout=False, bn=False):
    layers = []
    cin = 3
    for i, filters in enumerate((32, 32, 64), start=1):
        layers.append(Conv(f"conv{i}", cin, filters, 5))
        if bn:
            layers.append(BatchNorm(f"bn{i}"))
        layers.append(Pool(f"pool{i}", "max", 3, 2))
        cin = filters
    layers.append(Dense("dense1", 64))
    if bn:
        layers.append(BatchNorm("bn4"))
    if dropout:
        layers.append(Dropout("dropout", 0.25))
    layers.append(Dense("dense2", CLASSES))
    what = ("3 x [conv 5x5 (32, 32, 64) ReLU, maxpool 3x3/2], dense 64 ReLU, dense 10"
            + (", BatchNorm after each conv and dense 64" if bn else "")
            + (", dropout 0.25 before the last dense" if dropout else ""))
    return Model(name, CIFAR10, CIFAR_INPUT, tuple(layers), what, WRITEUPS)


def _cntk_vgg9():
    layers = []
    cin = 3
    for i, filters in enumerate((64, 96, 128), start=1):
        layers.append(Conv(f"conv{i}a", cin, filters, 3))
        layers.append(Conv(f"conv{i}b", filters, filters, 3))
        layers.append(Pool(f"pool{i}", "max", 3, 2))
        cin = filters
    layers += [Dense("dense1", 1024), Dense("dense2", 1024), Dense("dense3", CLASSES)]
    return Model("cntk-vgg9", CIFAR10, CIFAR_INPUT, tuple(layers),
                 "3 x [conv 3x3 x2 (64, 96, 128) ReLU, maxpool 3x3/2], dense 1024 x2, dense 10",
                 WRITEUPS)


def _basic_block(prefix, block_input, channels, padding, stride=1, in_channels=None):
    """conv3x3+BN+ReLU, conv3x3+BN, + shortcut, ReLU (ReLUs carry no parameters).

    With stride 2 (or a change of width) the shortcut is a 1x1 conv with the
    same stride, followed by BN, read from the block's input.
    """
    cin = in_channels or channels
    layers = [
        Conv(f"{prefix}.conv1", cin, channels, 3, stride, padding, bias=False, src=block_input),
        BatchNorm(f"{prefix}.bn1"),
        Conv(f"{prefix}.conv2", channels, channels, 3, 1, padding, bias=False),
        BatchNorm(f"{prefix}.bn2"),
    ]
    shortcut = block_input
    if stride != 1 or cin != channels:
        one_by_one = "same" if padding == "same" else 0
        layers += [Conv(f"{prefix}.proj", cin, channels, 1, stride, one_by_one, bias=False,
                        src=block_input),
                   BatchNorm(f"{prefix}.proj_bn")]
        shortcut = f"{prefix}.proj_bn"
    layers.append(Add(f"{prefix}.add", (f"{prefix}.bn2", shortcut)))
    return layers, f"{prefix}.add"


def _resnet(stages, stem_width, padding):
    """Stem conv 3x3 + BN, then (width, blocks, first stride) stages."""
    layers = [Conv("conv1", 3, stem_width, 3, 1, padding, bias=False), BatchNorm("bn1")]
    prev, cin = "bn1", stem_width
    for s, (width, blocks, stride) in enumerate(stages, start=1):
        for b in range(1, blocks + 1):
            block, prev = _basic_block(f"stage{s}.block{b}", prev, width, padding,
                                       stride if b == 1 else 1, cin)
            layers += block
            cin = width
    return layers


def _cntk_resnet():
    # CNTK pad=True on a stride-2 conv halves the size: 32 -> 16 -> 8.
    layers = _resnet([(16, 3, 1), (32, 3, 2), (64, 3, 2)], 16, "same")
    layers += [Pool("avgpool", "avg", 8, 1), Dense("dense", CLASSES)]
    return Model("cntk-resnet", CIFAR10, CIFAR_INPUT, tuple(layers),
                 "conv 3x3 16 + BN; 3 basic blocks of 16; down-sampling block + 2 blocks of 32; "
                 "the same for 64; global average pool 8x8; dense 10; no conv biases",
                 WRITEUPS)


def _bmxnet_resnet18():
    # Standard ResNet-18 choices where REFERENCE.md is silent: convs without
    # bias, explicit padding 1 for 3x3 and 0 for 1x1, a 1x1 projection + BN
    # shortcut where the width or stride changes, global average pool 4x4.
    # Its float32 size, 44.7 MB, is the one BMXNet reports.
    layers = _resnet([(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)], 64, 1)
    layers += [Pool("avgpool", "avg", 4, 1), Dense("fc", CLASSES)]
    return Model("bmxnet-resnet18-cifar10", CIFAR10, CIFAR_INPUT, tuple(layers),
                 "ResNet-18 (BasicBlock x[2,2,2,2], 64-128-256-512) with a 3x3 stem conv and a "
                 "10-way classifier; stem and classifier float, BN float",
                 "BMXNet (Yang et al., ACM MM 2017, arXiv 1705.09864)")


def _cntk_bnn():
    # Binary convs keep their (float) bias: CNTK convolutions have one unless
    # said otherwise. The input scale 1/256 is a constant; the per-class
    # scale after the average pool is learned.
    layers = (
        Scale("input_scale", learnable=False),
        Conv("conv1", 3, 32, 3, binary=False),
        Pool("pool1", "max", 3, 2),
        BatchNorm("bn2"),
        Conv("bconv2", 32, 128, 3, binary=True),
        Pool("pool2", "max", 3, 2),
        BatchNorm("bn3"),
        Conv("bconv3", 128, 128, 3, binary=True),
        Pool("pool3", "max", 3, 2),
        BatchNorm("bn4"),
        Conv("bconv4", 128, CLASSES, 1, binary=True),
        Pool("avgpool", "avg", 3, 1),
        Scale("class_scale"),
    )
    return Model("cntk-bnn", CIFAR10, CIFAR_INPUT, layers,
                 "XNOR-Net style: input / 256; conv 3x3 32 float; maxpool; 2 x [BN, binary conv "
                 "3x3 128, maxpool]; BN, binary conv 1x1 10; average pool; per-class scale",
                 WRITEUPS + " (deployed with Microsoft ELL)")


def _birealnet18():
    # larq-zoo's BiRealNetFactory (larq_zoo/literature/birealnet.py): convs
    # without bias and TF 'same' padding (a stride-2 3x3 conv on 56x56 pads
    # only bottom/right), the dense head with its bias. The max pool takes
    # padding 1 as in the paper's ResNet stem (larq-zoo writes 'same', which
    # pads bottom/right only; zoo pools take explicit padding). The float
    # ReLUs of the network semantics apply (after the stem BN and each
    # shortcut BN); Bi-Real itself has none.
    layers = [Conv("conv1", 3, 64, 7, 2, "same", bias=False, binary=False), BatchNorm("bn1"),
              Pool("maxpool", "max", 3, 2, 1)]
    prev, cin = "maxpool", 64
    for s, width in enumerate((64, 128, 256, 512), start=1):
        for b in range(1, 5):
            p = f"stage{s}.block{b}"
            stride = 2 if s > 1 and b == 1 else 1
            shortcut = prev
            if stride != 1:
                layers += [Pool(f"{p}.down_pool", "avg", 2, 2, src=prev),
                           Conv(f"{p}.down_conv", cin, width, 1, 1, 0, bias=False, binary=False),
                           BatchNorm(f"{p}.down_bn")]
                shortcut = f"{p}.down_bn"
            layers += [Conv(f"{p}.conv", cin, width, 3, stride, "same", bias=False, binary=True,
                            src=prev),
                       BatchNorm(f"{p}.bn"),
                       Add(f"{p}.add", (f"{p}.bn", shortcut))]
            prev, cin = f"{p}.add", width
    layers += [Pool("avgpool", "avg", 7, 1), Dense("fc", 1000, binary=False)]
    return Model("birealnet18", "imagenet", (3, 224, 224), tuple(layers),
                 "Bi-Real Net 18: conv 7x7/2 64 + BN, maxpool 3x3/2; 4 stages (64, 128, 256, "
                 "512) of 4 binary 3x3 convs + BN, each with its own real-valued shortcut "
                 "(avgpool 2x2/2 + float 1x1 conv + BN where the stride is 2); global average "
                 "pool 7x7; dense 1000; no conv biases",
                 "Bi-Real Net (Liu et al., ECCV 2018, arXiv 1808.00278); larq-zoo's "
                 "BiRealNetFactory")


def _quicknet_small():
    # larq-zoo's QuickNetSmallFactory (larq_zoo/sota/quicknet.py, v2): TF
    # 'same' padding, no conv biases, binary 3x3 convs with one-padding and
    # a ReLU on their integer output before the batch norm. Sections of 4
    # residual blocks (32, 64, 256, 512); where the width changes, a
    # transition (ReLU, maxpool 2x2/1, a 3x3/2 depthwise blur, float 1x1
    # conv + BN) comes first. Stem: float conv 3x3/2 to 8 + BN + ReLU,
    # depthwise 3x3/2 + BN, float 1x1 conv to 32 + BN. Head: ReLU, global
    # average pool, float dense 1000 with bias. larq-zoo's blur kernels are
    # fixed [1 2 1]^2 / 16 and its stem BN after the depthwise conv has no
    # scale or centre; here every kernel and BN is a parameter like any
    # other (only the values differ, not the network).
    filters = (32, 64, 256, 512)
    layers = [Conv("stem.conv", 3, filters[0] // 4, 3, 2, "same", bias=False, binary=False),
              BatchNorm("stem.bn"), ReLU("stem.relu"),
              DepthwiseConv("stem.dw", filters[0] // 4, 3, 2, "same"),
              BatchNorm("stem.dw_bn"),
              Conv("stem.pw", filters[0] // 4, filters[0], 1, 1, 0, bias=False, binary=False),
              BatchNorm("stem.pw_bn")]
    prev, cin = "stem.pw_bn", filters[0]
    for s, width in enumerate(filters, start=1):
        for b in range(1, 5):
            p = f"section{s}.block{b}"
            if width != cin:
                t = f"section{s}.transition"
                layers += [ReLU(f"{t}.relu", src=prev), Pool(f"{t}.pool", "max", 2, 1),
                           DepthwiseConv(f"{t}.blur", cin, 3, 2, "same"),
                           Conv(f"{t}.pw", cin, width, 1, 1, 0, bias=False, binary=False),
                           BatchNorm(f"{t}.bn")]
                prev, cin = f"{t}.bn", width
            layers += [Conv(f"{p}.conv", cin, cin, 3, 1, "same", bias=False, binary=True,
                            src=prev),
                       ReLU(f"{p}.relu"), BatchNorm(f"{p}.bn"),
                       Add(f"{p}.add", (f"{p}.bn", prev))]
            prev = f"{p}.add"
    layers += [ReLU("head.relu", src=prev), Pool("avgpool", "avg", 7, 1),
               Dense("fc", 1000, binary=False)]
    return Model("quicknet-small", "imagenet", (3, 224, 224), tuple(layers),
                 "QuickNet (small): stem conv 3x3/2 8 + BN + ReLU, depthwise 3x3/2 + BN, "
                 "conv 1x1 32 + BN; 4 sections (32, 64, 256, 512) of 4 residual blocks "
                 "[binary conv 3x3, ReLU, BN, + shortcut], each width change behind a "
                 "transition (ReLU, maxpool 2x2/1, depthwise 3x3/2, float conv 1x1 + BN); "
                 "ReLU, global average pool 7x7, dense 1000",
                 "larq-zoo's QuickNetSmallFactory (larq_zoo/sota/quicknet.py); LCE README",
                 implicit_relus=False)


def _digits_bnn():
    # bnnbench's own small model for 8x8x1 images (not from a paper), the
    # default of `bnnbench accuracy --model`. The BatchNorm before the first
    # binary layer reads the pooled ReLU output (as cntk-bnn's bn2 does), not
    # the float conv directly: a BN right after a float conv gets the ReLU
    # (the network semantics), and sign(ReLU(x)) is +1 everywhere.
    layers = (
        Conv("conv1", 1, 16, 3, binary=False),
        Pool("pool1", "max", 2, 2),
        BatchNorm("bn1"),
        Conv("bconv2", 16, 32, 3, bias=False, binary=True),
        BatchNorm("bn2"),
        Dense("bdense3", 64, bias=False, binary=True),
        BatchNorm("bn3"),
        Dense("dense4", CLASSES, binary=False),
    )
    return Model("digits-bnn", "digits", (1, 8, 8), layers,
                 "conv 3x3 16 float, ReLU, maxpool 2x2; BN, binary conv 3x3 32; BN, binary "
                 "dense 64; BN, dense 10 float; binary layers without bias",
                 "bnnbench's own small model for scikit-learn's 8x8 digits (not from a paper)")


MODELS = {m.name: m for m in (
    _cntk_basic("cntk-basic"),
    _cntk_basic("cntk-basic-dropout", dropout=True),
    _cntk_basic("cntk-basic-bn", bn=True),
    _cntk_vgg9(),
    _cntk_resnet(),
    _cntk_bnn(),
    _bmxnet_resnet18(),
    _birealnet18(),
    _quicknet_small(),
    _digits_bnn(),
)}


def get_model(name):
    try:
        return MODELS[name]
    except KeyError:
        raise BnnbenchError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")


def summary_frame(models=None):
    """One row per model with SUMMARY_KEYS as columns."""
    import pandas as pd
    models = list(MODELS.values()) if models is None else models
    return pd.DataFrame([summarize(m) for m in models], columns=list(SUMMARY_KEYS))
