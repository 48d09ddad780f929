"""bnnbench's whole-network runtime against the plain numpy reference.

Binary layers are compared exactly: each binary layer's int32 output must
equal the reference's integer pre-activation (the reference's own chain of
layers, not the runtime's input), so every folded threshold and every sign
decided the same bit. The logits are checked within network.check's bound.
"""
import numpy as np
import pytest

from bnnbench.errors import BnnbenchError
from bnnbench.methods.verify import numpy_conv
from bnnbench.models import network, weights, zoo
from bnnbench.models.numpy_net import numpy_forward
from bnnbench import _netops
from bnnbench.models.numpy_net import pool as numpy_pool
from bnnbench.models.zoo import Add, BatchNorm, Conv, Dense, Dropout, Model, Pool, Scale

_CASES = {}


def _case(name):
    """(model, tensors, x) of one zoo model, made once."""
    if name not in _CASES:
        model = zoo.get_model(name)
        tensors = weights.model_tensors(model, seed=5)
        c, h, w = model.input_shape
        batch = 1 if name == "birealnet18" else 2
        x = np.random.default_rng(1).standard_normal((batch, h, w, c)).astype(np.float32)
        _CASES[name] = (model, tensors, x)
    return _CASES[name]


def _assert_matches(model, tensors, x, run):
    """network.verify: every binary layer's integers exact, every sign the
    reference's but a few within float rounding of 0, logits in bound."""
    out = run()
    assert out.dtype == np.float32 and out.ndim == 2 and out.shape[0] == x.shape[0]
    ok, err, flips = network.verify(model, tensors, x, run)
    assert ok, f"{model.name}: max |logit error| {err:.3g}"
    assert flips <= 4, f"{model.name}: {flips} signs flipped near 0"
    return out


SMALL = [n for n in zoo.MODELS if n != "birealnet18"]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("engine", network.ENGINES)
@pytest.mark.parametrize("name", SMALL)
def test_every_model_equals_the_reference(name, engine, threads):
    model, tensors, x = _case(name)
    run = network.prepare(model, tensors, x, engine, threads)
    first = _assert_matches(model, tensors, x, run).copy()
    assert run() is run() and np.array_equal(run(), first)   # one buffer, same answer
    kinds = {kind for _, kind, _ in run.steps}
    assert ("binary" in kinds) == (engine == "net_bnnbench")
    binary_names = {i.name for i in zoo.resolve(model) if i.binary}
    if engine == "net_bnnbench":
        assert set(run.inspect()) == binary_names
        assert {n for n, k, _ in run.steps if k == "binary"} == binary_names


@pytest.mark.parametrize("engine", network.ENGINES)
def test_birealnet18(engine):
    model, tensors, x = _case("birealnet18")
    run = network.prepare(model, tensors, x, engine, 2)
    assert _assert_matches(model, tensors, x, run).shape == (1, 1000)


def test_birealnet18_spec():
    model = zoo.get_model("birealnet18")
    infos = {i.name: i for i in zoo.resolve(model)}
    assert model.input_shape == (3, 224, 224) and infos["fc"].out_shape == (1000,)
    binary = [n for n, i in infos.items() if i.binary]
    assert len(binary) == 16 and all(n.endswith(".conv") for n in binary)
    assert infos["maxpool"].out_shape == (64, 56, 56)
    assert infos["stage4.block4.add"].out_shape == (512, 7, 7)
    assert [n for n in infos if n.endswith("down_conv")] == [
        f"stage{s}.block1.down_conv" for s in (2, 3, 4)]
    assert not any(i.biases for n, i in infos.items() if i.type == "Conv")
    assert zoo.summarize(model)["params"] == 11689512   # ResNet-18's count, as Bi-Real's
    assert "Bi-Real" in model.source


def test_quicknet_small_spec():
    """larq-zoo's QuickNetSmall: its published parameter count and size
    (12,655,688; 4.00 MB) fall out of the spec; 16 binary 3x3 convs, each
    behind a ReLU on its integers, fused into the block's epilogue."""
    model = zoo.get_model("quicknet-small")
    infos = {i.name: i for i in zoo.resolve(model)}
    binary = [n for n, i in infos.items() if i.binary]
    assert len(binary) == 16 and all(n.endswith(".conv") for n in binary)
    s = zoo.summarize(model)
    assert s["params"] == 12655688 and round(s["binary_bytes"] / 2**20, 2) == 4.00
    assert infos["stem.pw_bn"].out_shape == (32, 56, 56)
    assert infos["section2.transition.pool"].out_shape == (32, 55, 55)
    assert infos["section4.block4.add"].out_shape == (512, 7, 7)
    assert [n for n in infos if n.endswith(".transition.pw")] == [
        f"section{s}.transition.pw" for s in (2, 3, 4)]
    model, tensors, x = _case("quicknet-small")
    run = network.prepare(model, tensors, x[:1], "net_bnnbench")
    kinds = [(n, k) for n, k, _ in run.steps]
    # each block: its binary conv, then one epilogue step named after its Add
    assert kinds[3:5] == [("section1.block1.conv", "binary"), ("section1.block1.add", "other")]
    assert not any(n.endswith((".relu", ".bn")) for n, _ in kinds)


def _relu_model():
    """Explicit ReLU layers in every place the runtime treats apart."""
    from bnnbench.models.zoo import DepthwiseConv, ReLU
    return Model("relus", "none", (3, 9, 9), (
        Conv("c0", 3, 16, 3, 1, "same", bias=True, binary=False),
        ReLU("r0"),                                   # joins the float conv's step
        DepthwiseConv("dw", 16, 3, 2, "same"),
        BatchNorm("dw_bn"),                           # folds into the depthwise weights
        ReLU("r_dw"),                                 # joins that step too
        Conv("b1", 16, 70, 3, 1, "same", bias=True, binary=True),
        ReLU("r1"),                                   # after a bias: the layer's own epilogue
        Conv("b2", 70, 40, 3, 1, 1, bias=False, binary=True),
        ReLU("r2"),                                   # relu_in, chain of the ReLU alone
        Pool("p2", "max", 2, 1),
        ReLU("r_p2"),                                 # after a pool: a step of its own
        Conv("b3", 40, 40, 1, 1, 0, bias=False, binary=True),
        ReLU("r3"),                                   # relu_in, then BN and the shortcut
        BatchNorm("bn3"),
        Add("add", ("bn3", "r_p2")),
        ReLU("r_add", src="add"),
        ReLU("r_twice", src="r_p2"),                  # its source has other readers
        Add("add2", ("r_add", "r_twice")),
        Dense("out", 5, binary=False)), "", "", implicit_relus=False)


@pytest.mark.parametrize("threads", [1, 2])
def test_explicit_relus_equal_the_reference(threads):
    model = _relu_model()
    t = weights.model_tensors(model, seed=3)
    x = np.random.default_rng(4).standard_normal((2, 9, 9, 3)).astype(np.float32)
    for engine in network.ENGINES:
        run = network.prepare(model, t, x, engine, threads)
        _assert_matches(model, t, x, run)
    steps = [n for n, _, _ in network.prepare(model, t, x, "net_bnnbench", threads).steps]
    assert steps == ["c0", "dw", "b1", "b2", "r2", "p2", "r_p2", "b3", "add", "r_twice",
                     "add2", "out"]
    assert numpy_forward(model, t, x).shape == (2, 5)


def test_steps_sizes_and_each_step_alone():
    model, tensors, x = _case("cntk-vgg9")
    run = network.prepare(model, tensors, x, "net_bnnbench")
    out = run().copy()
    for _, _, fn in run.steps:      # each step re-runs on the buffers left: same logits
        fn()
    assert np.array_equal(run(), out)
    assert run.deployed_bytes == zoo.summarize(model)["binary_bytes"]
    assert run.held_bytes > run.deployed_bytes
    twin = network.prepare(model, tensors, x, "net_float")
    assert twin.deployed_bytes == zoo.summarize(model)["float_bytes"]
    # conv1b -> conv2a has a pool between; conv2a -> conv2b and dense1 -> dense2
    # fold their bias into thresholds and pass bits.
    names = [(n, k) for n, k, _ in run.steps]
    assert ("conv2a", "other") in names and ("dense1", "other") in names
    assert ("conv1b", "other") not in names


def _fold_model():
    """Binary into binary through bias, BatchNorm, Scale and Dropout; a fold
    end read by two binary layers; a binary dense on packed bits."""
    return Model("fold", "none", (5, 9, 9), (
        Conv("b0", 5, 70, 3, 1, "same", bias=True, binary=True),
        BatchNorm("bn0"),
        Scale("sc0"),
        Dropout("d0", 0.1),
        Conv("b1", 70, 33, 3, 2, 1, bias=False, binary=True),
        BatchNorm("bn1"),
        Conv("b1b", 70, 33, 3, 2, 1, bias=True, binary=True, src="d0"),
        Add("sum", ("bn1", "b1b")),
        Dense("b2", 20, binary=True),
        BatchNorm("bn2"),
        Dense("b3", 12, bias=False, binary=True),
        Dense("out", 4, binary=False)), "", "")


def test_threshold_fold_awkward_scales_and_ties():
    model = _fold_model()
    t = {tt.name: tt.values.copy() for tt in weights.model_tensors(model, seed=2)}
    rng = np.random.default_rng(3)
    # b0: K = 45, so y is odd. Channel groups: scale 0 with bias 0 (value 0:
    # all +1) and with bias -1 (all -1); negative scales; exact ties at y = -1.
    t["b0.bias"][:] = rng.integers(-3, 4, 70).astype(np.float32)
    t["b0.bias"][:10] = 1.0
    s, b = t["bn0.scale"], t["bn0.bias"]
    s[:5], b[:5] = 0.0, 0.0                    # scale 0, value exactly 0 -> +1
    s[5:10], b[5:10] = 0.0, -1.0               # scale 0 -> all -1
    s[10:30] = -rng.uniform(0.1, 2, 20)        # decreasing
    s[30:40], b[30:40] = -0.5, 0.0             # ties: (y + b0) * -0.5 == 0 at y = -b0
    t["sc0.scale"][:] = np.where(rng.random(70) < 0.3, -1, 1) * t["sc0.scale"]
    t["sc0.scale"][40:45] = 0.0
    t["bn2.scale"][:6] = 0.0
    t["bn2.scale"][6:12] *= -1
    t["bn2.bias"][:3] = 0.0
    c, h, w = model.input_shape
    x = rng.standard_normal((3, h, w, c)).astype(np.float32)
    x[0, :4] = 0.0                             # sign(0) = +1 on the input
    x[1, :, :3] = -0.0                         # and sign(-0.0) = +1 too
    for threads in (1, 2):
        run = network.prepare(model, t, x, "net_bnnbench", threads)
        _assert_matches(model, t, x, run)
        folded = [n for n, k, _ in run.steps if k == "other"]
        assert "d0" in folded and "bn2" in folded   # the two threshold steps
    # the zero inputs really reached the kernel as +1
    signs, y = run.inspect()["b0"]
    assert (signs[0, :4] == 1).all() and (signs[1, :, :3] == 1).all()
    ohwi = np.ascontiguousarray(t["b0.weight"].transpose(0, 2, 3, 1))
    assert np.array_equal(y, numpy_conv(x, ohwi, 1, "same", binary=True))
    # scale 0 / value 0 channels of bn0 feed b1 as +1, every pixel
    signs_b1, _ = run.inspect()["b1"]
    sc = t["sc0.scale"]
    assert (signs_b1[..., :5][..., sc[:5] != 0] == 1).all()


def test_threshold_table_directly():
    # chain: (y + 1) * -0.5 + 0 ; y in [-3, 3]: value >= 0 <=> y <= -1
    tt, flip = network._threshold([(None, np.array([1.0, 0.0, 0.0])),
                                   (np.array([-0.5, 0.0, 2.0]), np.array([0.0, -1.0, 0.0]))],
                                  3, 3)
    y = np.arange(-3, 4)[:, None]
    bits = (y >= tt) ^ flip
    assert bits[:, 0].tolist() == [True, True, True, False, False, False, False]
    assert bits[:, 1].tolist() == [False] * 7          # scale 0, bias -1
    assert bits[:, 2].tolist() == [False] * 3 + [True] * 4   # 2y >= 0: y = 0 -> +1


@pytest.mark.parametrize("x,engine,threads,message", [
    (np.zeros((1, 32, 32, 3), np.float64), "net_bnnbench", 1, "must be a float32"),
    (np.zeros((1, 3, 32, 32), np.float32), "net_bnnbench", 1, "must be NHWC [B, 32, 32, 3]"),
    (np.zeros((32, 32, 3), np.float32), "net_bnnbench", 1, "must be NHWC"),
    ([[0.0]], "net_bnnbench", 1, "must be a float32 numpy array, got list"),
    (np.zeros((1, 32, 32, 3), np.float32), "net_lce", 1, "unknown network engine 'net_lce'"),
    (np.zeros((1, 32, 32, 3), np.float32), "net_float", 0, "threads must be"),
])
def test_bad_arguments_are_one_line(x, engine, threads, message):
    model = zoo.get_model("cntk-bnn")
    with pytest.raises(BnnbenchError) as err:
        network.prepare(model, weights.model_tensors(model), x, engine, threads)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_check_bound():
    model = zoo.get_model("cntk-bnn")
    ref = np.array([[1.0, 2.0, 3.0]])
    assert network.check(model, ref + 1e-4, ref)[0]
    assert not network.check(model, ref + 0.1, ref)[0]
    assert not network.check(model, np.array([[1.0, 3.0, 2.0]]), ref)[0]


def test_run_restores_the_blas_thread_count():
    from threadpoolctl import threadpool_info
    model, tensors, x = _case("cntk-bnn")
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    network.prepare(model, tensors, x, "net_float", 1)()
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


# ------------------------------------------------- the runtime's own kernels

POOLS = [   # (batch, h, w, channels, kernel, stride, padding)
    (2, 7, 5, 1, 3, 2, 1),      # odd sizes, padding, one channel
    (1, 9, 9, 33, 3, 2, 0),     # 33 channels: no vector width divides it
    (3, 4, 6, 33, 5, 1, 2),     # kernel larger than the input
    (1, 3, 3, 1, 4, 1, 1),      # kernel larger than input, windows clipped on both sides
    (2, 5, 5, 33, 2, 2, 0),     # stride 2, odd size: the last row and column unused
    (1, 1, 1, 3, 1, 1, 0),
    (1, 7, 7, 64, 7, 1, 0),     # global pool
    (1, 8, 6, 3, 3, 3, 1),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("b,h,w,c,k,s,p", POOLS)
def test_pool_kernel_equals_numpy(b, h, w, c, k, s, p, kind, threads):
    rng = np.random.default_rng(b * 1000 + h * 100 + k * 10 + p)
    x = rng.standard_normal((b, h, w, c)).astype(np.float32)
    x[..., 0] = -np.abs(x[..., 0]) - 1      # all negative: -inf padding must not win
    ref = numpy_pool(x.astype(np.float64), kind, k, s, p)
    out = np.full(ref.shape, np.nan, np.float32)
    _netops.pool(x, out, kind, k, s, p, threads)
    if kind == "max":
        assert np.array_equal(out, ref.astype(np.float32))
    else:
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    if kind == "max":   # on integers (a binary layer's y), exactly
        y = rng.integers(-50, 50, (b, h, w, c)).astype(np.int32)
        yo = np.zeros(ref.shape, np.int32)
        _netops.pool(y, yo, "max", k, s, p, threads)
        assert np.array_equal(yo, numpy_pool(y.astype(np.float64), "max", k, s, p))


def test_pool_kernel_rejects_bad_buffers():
    x = np.zeros((1, 5, 5, 3), np.float32)
    with pytest.raises(ValueError, match="does not match"):
        _netops.pool(x, np.zeros((1, 3, 3, 3), np.float32), "max", 3, 2, 0)
    with pytest.raises(ValueError, match="float32 only"):
        _netops.pool(x.astype(np.int32), np.zeros((1, 2, 2, 3), np.int32), "avg", 3, 2, 0)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("n,c", [(1, 1), (7, 33), (13, 64), (5, 3)])
def test_epilogue_equals_numpy(n, c, relu, residual, threads):
    rng = np.random.default_rng(n * 100 + c)
    y = rng.integers(-300, 301, (n, c)).astype(np.int32)
    scale = rng.uniform(-2, 2, c).astype(np.float32)
    bias = rng.uniform(-50, 50, c).astype(np.float32)
    res = rng.standard_normal((n, c)).astype(np.float32) * 10 if residual else None
    out = np.full((n, c), np.nan, np.float32)
    _netops.epilogue(y, scale, bias, out, res, relu, threads)
    ref = y.astype(np.float64) * scale + bias + (0 if res is None else res)
    if relu:
        ref = np.maximum(ref, 0)
    # numpy rounds scale * y and + bias apart; the kernel may fuse them (FMA)
    size = np.abs(y * scale.astype(np.float64)) + np.abs(bias) + (0 if res is None else
                                                                   np.abs(res))
    assert (np.abs(out - ref) <= 2 * np.finfo(np.float32).eps * size).all()
    # a float map with scale 1, bias 0: exactly numpy's y + res (an Add)
    x = rng.standard_normal((n, c)).astype(np.float32)
    _netops.epilogue(x, np.ones(c, np.float32), np.zeros(c, np.float32), out, res, relu,
                     threads)
    ref = x if res is None else x + res
    assert np.array_equal(out, np.maximum(ref, 0) if relu else ref)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("relu", [False, True])
def test_epilogue_relu_in_clamps_the_integers_first(relu, residual, threads):
    rng = np.random.default_rng(7)
    n, c = 9, 33
    y = rng.integers(-300, 301, (n, c)).astype(np.int32)
    scale = rng.uniform(-2, 2, c).astype(np.float32)
    bias = rng.uniform(-50, 50, c).astype(np.float32)
    res = rng.standard_normal((n, c)).astype(np.float32) * 10 if residual else None
    out = np.full((n, c), np.nan, np.float32)
    _netops.epilogue(y, scale, bias, out, res, relu, threads, relu_in=True)
    ref = np.maximum(y, 0).astype(np.float64) * scale + bias + (0 if res is None else res)
    if relu:
        ref = np.maximum(ref, 0)
    size = np.abs(np.maximum(y, 0) * scale.astype(np.float64)) + np.abs(bias) + (
        0 if res is None else np.abs(res))
    assert (np.abs(out - ref) <= 2 * np.finfo(np.float32).eps * size).all()


DEPTHWISE = [   # (batch, h, w, channels, kernel, stride, padding)
    (2, 7, 5, 1, 3, 2, "same"),     # odd sizes, one channel
    (1, 9, 9, 33, 3, 2, "same"),    # 33 channels: no vector width divides it
    (1, 8, 8, 8, 3, 2, "same"),     # even size, stride 2: padding at the bottom/right only
    (3, 6, 4, 17, 3, 1, "valid"),
    (1, 5, 5, 64, 5, 1, 2),         # explicit padding, windows clipped on both sides
    (1, 55, 55, 32, 3, 2, "same"),  # QuickNet's transition
    (1, 3, 3, 3, 1, 1, 0),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("b,h,w,c,k,s,p", DEPTHWISE)
def test_depthwise_kernel_equals_numpy(b, h, w, c, k, s, p, threads):
    from bnnbench.methods.layer_shapes import layer_geometry
    from bnnbench.methods.verify import numpy_depthwise
    rng = np.random.default_rng(b * 1000 + h * 100 + k * 10 + c)
    x = rng.standard_normal((b, h, w, c)).astype(np.float32)
    wt = rng.standard_normal((k, k, c)).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    ho, wo, top, left = layer_geometry(x.shape, (1, k, k, c), s, p)
    for relu, bb in ((False, None), (True, bias)):
        out = np.full((b, ho, wo, c), np.nan, np.float32)
        _netops.depthwise(x, wt, bb, out, s, top, left, relu, threads)
        ref = numpy_depthwise(x, wt, s, p) + (0 if bb is None else bb)
        if relu:
            ref = np.maximum(ref, 0)
        size = numpy_depthwise(np.abs(x), np.abs(wt), s, p) + np.abs(bias)
        assert (np.abs(out - ref) <= 4 * k * k * np.finfo(np.float32).eps * size).all()


def test_depthwise_kernel_rejects_bad_buffers():
    x = np.zeros((1, 5, 5, 3), np.float32)
    with pytest.raises(ValueError, match="do not match"):
        _netops.depthwise(x, np.zeros((3, 3, 4), np.float32), None,
                          np.zeros((1, 3, 3, 3), np.float32), 2, 1, 1)
    with pytest.raises(ValueError, match="padding < kernel"):
        _netops.depthwise(x, np.zeros((3, 3, 3), np.float32), None,
                          np.zeros((1, 3, 3, 3), np.float32), 2, 3, 1)
    with pytest.raises(ValueError, match="past the input"):
        _netops.depthwise(x, np.zeros((3, 3, 3), np.float32), None,
                          np.zeros((1, 9, 9, 3), np.float32), 1, 1, 1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("c", [1, 33, 64, 65, 130])
def test_threshold_pack_equals_numpy(c, threads):
    rng = np.random.default_rng(c)
    n = 11
    y = rng.integers(-9, 10, (n, c)).astype(np.int32)
    t = rng.integers(-9, 10, c).astype(np.int32)
    flip = rng.random(c) < 0.5
    bits = np.full((n, -(-c // 64)), np.uint64(2 ** 64 - 1))     # stale bits everywhere
    _netops.threshold_pack(y, t, flip.astype(np.uint8), bits, threads)
    want = np.zeros((n, bits.shape[1] * 8), np.uint8)
    want[:, :-(-c // 8)] = np.packbits((y >= t) ^ flip, axis=-1, bitorder="little")
    assert np.array_equal(bits.view(np.uint8), want)     # padding bits cleared


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("c", [1, 33])
def test_bias_relu_equals_numpy(c, threads):
    x = np.random.default_rng(c).standard_normal((9, c)).astype(np.float32)
    bias = np.linspace(-1, 1, c).astype(np.float32)
    for b, relu in ((bias, True), (bias, False), (None, True)):
        out = x.copy()
        _netops.bias_relu(out, b, relu, threads)
        ref = x + b if b is not None else x
        assert np.array_equal(out, np.maximum(ref, 0) if relu else ref)


def _fuse_model():
    """Every fusion of the runtime: a BatchNorm folded into a float conv and
    into a float 1x1 shortcut conv (ReLU after each), a Scale folded into the
    float dense layer that reads it, a max pool with padding
    on a binary layer's integers then a BatchNorm with negative scales folded
    into thresholds, a binary layer's BatchNorm and Add in one epilogue whose
    shortcut comes later in the list, an odd channel count (33)."""
    return Model("fuse", "none", (3, 11, 11), (
        Conv("c0", 3, 8, 3, 2, "same", bias=True, binary=False),
        BatchNorm("bn0"),
        Conv("b1", 8, 33, 3, 1, 1, bias=True, binary=True),
        Pool("p1", "max", 3, 2, 1),
        BatchNorm("bn1"),
        Conv("b2", 33, 33, 3, 1, "same", bias=False, binary=True),
        BatchNorm("bn2"),
        Conv("proj", 8, 33, 1, 2, 0, bias=False, binary=False, src="bn0"),
        BatchNorm("proj_bn"),
        Add("add", ("bn2", "proj_bn")),
        Scale("sc"),
        Dense("out", 5, binary=False)), "", "")


@pytest.mark.parametrize("threads", [1, 2])
def test_fusions_equal_the_reference(threads):
    model = _fuse_model()
    t = {tt.name: tt.values.copy() for tt in weights.model_tensors(model, seed=4)}
    rng = np.random.default_rng(8)
    t["bn1.scale"][::3] *= -1                  # decreasing: the max must come first
    t["bn1.scale"][1] = 0.0
    c, h, w = model.input_shape
    x = rng.standard_normal((3, h, w, c)).astype(np.float32)
    run = network.prepare(model, t, x, "net_bnnbench", threads)
    _assert_matches(model, t, x, run)
    names = [(n, k) for n, k, _ in run.steps]
    assert names == [("c0", "float"), ("b1", "binary"), ("p1", "other"), ("b2", "binary"),
                     ("proj", "float"), ("add", "other"), ("out", "float")]
    out = run().copy()
    for _, _, fn in run.steps:
        fn()
    assert np.array_equal(run(), out)
    twin = network.prepare(model, t, x, "net_float", threads)
    twin_ref = numpy_forward(model, t, x, float_twin=True)
    assert network.check(model, twin(), twin_ref)[0]
