"""Model specs: every figure derived layer by layer, checked against hand sums."""
import json
import math

import pytest

from bnnbench.models import zoo
from bnnbench.cli import main
from bnnbench.errors import BnnbenchError
from bnnbench.models.zoo import Add, BatchNorm, Conv, Dense, Model, Pool


def layers(name):
    return {i.name: i for i in zoo.resolve(zoo.get_model(name))}


def words(k):
    """Bytes of one output channel's K weights packed into 64-bit words."""
    return math.ceil(k / 64) * 8


def test_every_reference_model_has_a_spec():
    assert set(zoo.MODELS) == {"cntk-basic", "cntk-basic-dropout", "cntk-basic-bn",
                                  "cntk-vgg9", "cntk-resnet", "cntk-bnn",
                                  "bmxnet-resnet18-cifar10", "birealnet18", "quicknet-small",
                                  "digits-bnn"}


def test_cntk_basic_layer_by_layer():
    ls = layers("cntk-basic")
    assert ls["conv1"].params == 5 * 5 * 3 * 32 + 32
    assert ls["conv2"].params == 5 * 5 * 32 * 32 + 32
    assert ls["conv3"].params == 5 * 5 * 32 * 64 + 64
    # CNTK pooling 3x3 stride 2 without padding: 32 -> 15 -> 7 -> 3.
    assert [ls[f"pool{i}"].out_shape[1] for i in (1, 2, 3)] == [15, 7, 3]
    assert ls["dense1"].params == 3 * 3 * 64 * 64 + 64
    assert ls["dense2"].params == 64 * 10 + 10
    # Policy: first conv and last dense float, the rest binary.
    assert [n for n, i in ls.items() if i.binary] == ["conv2", "conv3", "dense1"]
    assert ls["conv2"].gemm == (32, 5 * 5 * 32, 15 * 15)
    assert ls["conv2"].binary_bytes == 32 * words(800) + 32 * 4


def test_cntk_basic_totals_by_hand():
    s = zoo.summarize(zoo.get_model("cntk-basic"))
    params = (5*5*3*32 + 32) + (5*5*32*32 + 32) + (5*5*32*64 + 64) + (576*64 + 64) + (64*10 + 10)
    assert s["params"] == params == 116906
    assert s["float_bytes"] == 4 * params
    binary_bytes = (4 * (5*5*3*32 + 32)                   # conv1 float
                    + 32 * words(800) + 4 * 32             # conv2 packed + float bias
                    + 64 * words(800) + 4 * 64             # conv3
                    + 64 * words(576) + 4 * 64             # dense1
                    + 4 * (64*10 + 10))                    # dense2 float
    assert s["binary_bytes"] == binary_bytes
    assert s["compression"] == pytest.approx(4 * params / binary_bytes)
    float_macs = 32 * 75 * 32 * 32 + 64 * 10
    binary_macs = 32 * 800 * 15 * 15 + 64 * 800 * 7 * 7 + 576 * 64
    assert (s["float_macs"], s["binary_macs"]) == (float_macs, binary_macs)
    assert s["ops"] == float_macs + binary_macs / 64


def test_dropout_and_bn_variants():
    base = zoo.summarize(zoo.get_model("cntk-basic"))
    drop = zoo.summarize(zoo.get_model("cntk-basic-dropout"))
    bn = zoo.summarize(zoo.get_model("cntk-basic-bn"))
    assert {k: v for k, v in drop.items() if k != "name"} == \
        {k: v for k, v in base.items() if k != "name"}
    # BatchNorm: scale + bias per channel, after convs of 32, 32, 64 and dense 64.
    assert bn["params"] == base["params"] + 2 * (32 + 32 + 64 + 64)
    assert bn["binary_bytes"] == base["binary_bytes"] + 4 * 2 * (32 + 32 + 64 + 64)


def test_cntk_vgg9_totals_by_hand():
    convs = [(3, 64), (64, 64), (64, 96), (96, 96), (96, 128), (128, 128)]
    conv_params = sum(9 * cin * cout + cout for cin, cout in convs)
    dense_params = (1152 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 10 + 10)
    s = zoo.summarize(zoo.get_model("cntk-vgg9"))
    assert s["params"] == conv_params + dense_params
    float_part = 4 * ((27 * 64 + 64) + (1024 * 10 + 10))
    binary_part = sum(cout * words(9 * cin) + 4 * cout for cin, cout in convs[1:])
    binary_part += 1024 * words(1152) + 4 * 1024 + 1024 * words(1024) + 4 * 1024
    assert s["binary_bytes"] == float_part + binary_part


def test_cntk_resnet_totals_by_hand():
    ls = layers("cntk-resnet")
    assert ls["conv1"].params == 3 * 3 * 3 * 16            # no bias
    assert ls["stage2.block1.conv1"].out_shape == (32, 16, 16)
    assert ls["stage2.block1.proj"].params == 16 * 32      # 1x1 projection, stride 2
    assert ls["stage3.block3.add"].out_shape == (64, 8, 8)
    assert ls["avgpool"].out_shape == (64, 1, 1)
    convs = (9 * 3 * 16 + 6 * 9 * 16 * 16
             + 9 * 16 * 32 + 5 * 9 * 32 * 32 + 16 * 32
             + 9 * 32 * 64 + 5 * 9 * 64 * 64 + 32 * 64)
    bns = 2 * (16 + 6 * 16 + 7 * 32 + 7 * 64)
    assert zoo.summarize(zoo.get_model("cntk-resnet"))["params"] == \
        convs + bns + 64 * 10 + 10


def test_resnet18_matches_bmxnet_published_sizes():
    s = zoo.summarize(zoo.get_model("bmxnet-resnet18-cifar10"))
    assert s["params"] == 11_173_962
    # BMXNet: 44.7 MB full precision, 1.5 MB packed (about 29x).
    assert round(s["float_bytes"] / 1e6, 1) == 44.7
    assert round(s["binary_bytes"] / 1e6, 1) == 1.5
    ls = layers("bmxnet-resnet18-cifar10")
    assert not ls["conv1"].binary and not ls["fc"].binary
    assert ls["stage4.block2.conv2"].binary and ls["stage4.block1.proj"].binary


def test_cntk_bnn_keeps_its_own_binary_layers():
    ls = layers("cntk-bnn")
    assert [n for n, i in ls.items() if i.binary] == ["bconv2", "bconv3", "bconv4"]
    assert ls["conv1"].params == 9 * 3 * 32 + 32
    assert ls["bconv4"].out_shape == (10, 3, 3) and ls["avgpool"].out_shape == (10, 1, 1)
    assert ls["class_scale"].params == 10 and ls["input_scale"].params == 0
    assert ls["bconv3"].binary_bytes == 128 * words(9 * 128) + 4 * 128


def test_params_sum_over_layers_for_every_model():
    for model in zoo.MODELS.values():
        infos = zoo.resolve(model)
        s = zoo.summarize(model)
        assert s["params"] == sum(i.params for i in infos)
        assert s["float_macs"] + s["binary_macs"] == sum(i.macs for i in infos)
        assert s["binary_bytes"] < s["float_bytes"]


def _tiny(*layers):
    return Model("tiny", "none", (3, 8, 8), tuple(layers), "", "")


@pytest.mark.parametrize("spec,message", [
    (_tiny(Conv("c", 4, 8, 3)), "expects 4 input channels"),
    (_tiny(Conv("c", 3, 8, 9, padding=0)), "does not fit"),
    (_tiny(Conv("c", 3, 8, 3), Conv("c", 8, 8, 3)), "duplicate layer name"),
    (_tiny(Conv("c", 3, 8, 3), Add("a", ("c", "input"))), "cannot add"),
    (_tiny(Dense("d", 4, src="nowhere")), "not an earlier layer"),
    (_tiny(Pool("p", "median", 2, 2)), "pool kind"),
])
def test_bad_specs_are_rejected(spec, message):
    with pytest.raises(BnnbenchError, match=message):
        zoo.resolve(spec)


def test_same_padding_and_explicit_padding():
    ls = {i.name: i for i in zoo.resolve(_tiny(
        Conv("same", 3, 4, 3, stride=2), Conv("p1", 4, 4, 3, stride=2, padding=1),
        BatchNorm("bn"), Pool("pool", "avg", 2, 2), Dense("d", 5)))}
    assert ls["same"].out_shape == (4, 4, 4)       # ceil(8 / 2)
    assert ls["p1"].out_shape == (4, 2, 2)         # (4 + 2 - 3) // 2 + 1
    assert ls["pool"].out_shape == (4, 1, 1)
    assert ls["d"].gemm == (5, 4, 1)


def test_cli_json_has_exactly_the_keys(capsys):
    assert main(["models", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(zoo.MODELS)
    for r in rows:
        assert tuple(r) == zoo.SUMMARY_KEYS
        assert r == zoo.summarize(zoo.get_model(r["name"]))


def test_cli_table_csv_and_errors(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "cntk-vgg9" in out and "compression" in out.splitlines()[0]
    assert main(["models", "cntk-bnn", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",") == list(zoo.SUMMARY_KEYS) and len(lines) == 2
    assert main(["models", "--layers", "cntk-basic"]) == 0
    assert "dense1" in capsys.readouterr().out
    assert main(["models", "alexnet"]) == 2
    assert "unknown model 'alexnet'" in capsys.readouterr().err


def test_cli_layers_json(capsys):
    assert main(["models", "--layers", "cntk-basic", "--format", "json"]) == 0
    rows = {r["layer"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["conv2"]["binary"] is True and rows["conv2"]["M"] == 32
    assert rows["conv2"]["K"] == 800 and rows["conv2"]["N_per_image"] == 225
    assert rows["pool1"]["M"] is None and rows["pool1"]["out"] == "32x15x15"
    assert sum(r["params"] for r in rows.values()) == 116906
