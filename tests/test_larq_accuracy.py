"""bnnbench accuracy --model: a zoo model's float and binary twins trained
by Larq, the binary one exported and evaluated through net_bnnbench, which
must predict every test image as Larq does. Without the peers installed,
--model is one line saying what to install; a model that cannot take the
data's images is one line too."""
import dataclasses
import glob
import importlib.util
import json

import numpy as np
import pytest

from bnnbench.cli import main
from bnnbench.errors import BnnbenchError
from bnnbench.methods.peers import larq_train
from bnnbench.models import accuracy, datasets, zoo
from bnnbench.runs import reader
from test_datasets import cifar_members, write_tar

MISSING = larq_train.missing()
needs_peers = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("bnnbench accuracy: error: ")
    return err


# ------------------------------------------------------- without TensorFlow

def test_without_larq_model_is_one_line(monkeypatch, capsys, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    err = _one_line_error(capsys, ["accuracy", "--model", "digits-bnn", "--out", str(tmp_path)])
    assert "Larq is not installed (tensorflow missing)" in err
    assert "pip install 'bnnbench[peers]'" in err
    assert not list(tmp_path.iterdir())      # no run file


def test_fit_to_data_retargets_input_and_classes():
    digits = datasets.load(None)
    model = accuracy.fit_to_data(zoo.get_model("digits-bnn"), digits)
    assert model.input_shape == (1, 8, 8)
    assert zoo.resolve(model)[-1].out_shape == (10,)
    cifar_like = datasets.Dataset("tiny", 4, np.zeros((2, 32, 32, 3), np.float32),
                                  np.zeros(2, np.int64), np.zeros((1, 32, 32, 3), np.float32),
                                  np.zeros(1, np.int64))
    fitted = accuracy.fit_to_data(zoo.get_model("digits-bnn"), cifar_like)
    assert fitted.input_shape == (3, 32, 32) and fitted.layers[0].in_channels == 3
    assert zoo.resolve(fitted)[-1].out_shape == (4,)
    # cntk-bnn's last weight layer is a conv: its width becomes the class count.
    bnn = accuracy.fit_to_data(zoo.get_model("cntk-bnn"), cifar_like)
    assert zoo.resolve(bnn)[-1].out_shape == (4, 1, 1)
    assert zoo.get_model("digits-bnn").input_shape == (1, 8, 8)   # the zoo is untouched


@pytest.mark.parametrize("name", ["cntk-basic", "bmxnet-resnet18-cifar10"])
def test_model_that_cannot_take_the_images_is_one_line(name):
    with pytest.raises(BnnbenchError) as info:
        accuracy.fit_to_data(zoo.get_model(name), datasets.load(None))
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{name} does not fit the 8x8x1 images of ")


@needs_peers
def test_cli_refuses_a_model_that_cannot_fit(capsys, tmp_path):
    err = _one_line_error(capsys, ["accuracy", "--model", "cntk-basic", "--out", str(tmp_path)])
    assert "cntk-basic does not fit the 8x8x1 images of sklearn digits" in err
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------ with Larq

@needs_peers
def test_digits_larq_and_net_bnnbench_agree_image_for_image():
    data = datasets.load(None)
    model = accuracy.fit_to_data(zoo.get_model("digits-bnn"), data)
    r = accuracy.run_larq_experiment(model, data, epochs=1, seed=0)
    labels = np.array(r["labels"])
    acc = {k: float(np.mean(np.array(v) == labels)) for k, v in r["predictions"].items()}
    # Both twins learned something in one epoch (chance is 10 %).
    assert acc["float_larq"] > 0.6 and acc["binary_larq"] > 0.4, acc
    # The target: net_bnnbench predicts every test image as Larq does ...
    assert r["differing_images"] == []
    assert r["predictions"]["binary_net_bnnbench"] == r["predictions"]["binary_larq"]
    # ... because every bit entering a binary layer is the same, and the
    # folded thresholds decide every integer as Keras' BatchNorm does.
    for layer, bits in r["binary_input_bits"].items():
        assert bits["differ"] == 0 and bits["total"] > 0, layer
    assert set(r["binary_input_bits"]) == {"bconv2", "bdense3"}
    assert r["threshold_disagreements"] == {"bn2": 0, "bn3": 0}
    assert r["test_samples"] == 450 and r["train_samples"] == 1347
    # The threshold probe sees a fold that decides differently: bn2's bias
    # moved by one step of its scale shifts each threshold by one integer.
    scale = next(t.values for t in r["tensors"] if t.name == "bn2.scale")
    moved = [dataclasses.replace(t, values=t.values - scale)
             if t.name == "bn2.bias" else t for t in r["tensors"]]
    found = larq_train.bn_threshold_disagreements(model, r["keras"]["binary"], moved)
    assert found["bn3"] == 0 and found["bn2"] > 0


@needs_peers
def test_cifar_archive_end_to_end_through_the_cli(tmp_path, capsys):
    members, _ = cifar_members(sizes=(24, 24), test=16, seed=3)
    archive = write_tar(str(tmp_path / "cifar-10-python.tar.gz"), members)
    out = tmp_path / "out"
    assert main(["accuracy", "--model", "cntk-bnn", "--data", archive, "--limit", "40",
                 "--epochs", "1", "--format", "json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "cntk-bnn" and summary["dataset"] == "CIFAR-10"
    assert summary["train_samples"] == 40 and summary["train_available"] == 48
    assert summary["test_samples"] == 16 and summary["differing_images"] == []
    run = reader.load_run(glob.glob(str(out / "accuracy-*.json"))[0])
    assert run["status"] == "complete"
    rows = {(r["network"], r["evaluation"]): r for r in run["rows"]}
    assert set(rows) == {("float", "larq"), ("binary", "larq"), ("binary", "net_bnnbench")}
    net = rows[("binary", "net_bnnbench")]
    assert net["differing_images"] == 0 and net["agrees_with_larq"] is True
    assert net["predictions"] == rows[("binary", "larq")]["predictions"]
    assert all(r["model"] == "cntk-bnn" and r["test_samples"] == 16 for r in rows.values())
    s = run["settings"]
    assert (s["model"], s["epochs"], s["limit"], s["trainer"]) == ("cntk-bnn", 1, 40, "larq")
    assert s["data_file"] == "cifar-10-python.tar.gz" and s["differing_images"] == 0
    assert s["input_shape"] == [3, 32, 32]
