"""Digits accuracy: reproducible training; xnor and numpy binary nets agree exactly."""
import glob
import json

import numpy as np
import pytest

from bnnbench.models import accuracy

from bnnbench.runs import reader
from bnnbench.models.accuracy import Config
from bnnbench.cli import main
from bnnbench.errors import BnnbenchError

# Small enough for the test suite (well under a second of training each).
SMALL = dict(epochs=3, hidden=64)


@pytest.fixture(scope="module")
def small_run():
    return accuracy.run_experiment(Config(seed=1, **SMALL))


def test_same_seed_same_accuracy_and_predictions(small_run):
    again = accuracy.run_experiment(Config(seed=1, **SMALL))
    for key in ("float_accuracy", "binary_accuracy", "xnor_accuracy"):
        assert again[key] == small_run[key]
    assert again["predictions"] == small_run["predictions"]


def test_xnor_and_numpy_binary_predictions_agree(small_run):
    p = small_run["predictions"]
    assert small_run["xnor_matches_reference"] is True
    assert p["xnor"] == p["binary"]
    assert small_run["xnor_accuracy"] == small_run["binary_accuracy"]
    # The networks learned something: chance is 10 %.
    assert small_run["float_accuracy"] > 0.9 and small_run["binary_accuracy"] > 0.8
    assert small_run["test_samples"] == 450 and small_run["train_samples"] == 1347


def test_xnor_agrees_when_width_is_not_a_word_multiple():
    # K = 100 leaves 28 padding bits in each row's second word.
    cfg = Config(seed=2, epochs=1, hidden=100)
    x_tr, y_tr, x_te, y_te = accuracy.load_data()
    params = accuracy.train(x_tr, y_tr, True, cfg)
    ref = accuracy.binary_preactivations(params, x_te, accuracy._numpy_binary_matmul)
    xnor = accuracy.binary_preactivations(params, x_te, accuracy.xnor_binary_matmul)
    assert len(ref) == cfg.binary_layers
    for a, b in zip(ref, xnor):
        assert np.array_equal(a, b)
    assert np.array_equal(accuracy.predict(params, x_te, True),
                          accuracy.predict(params, x_te, True, accuracy.xnor_binary_matmul))


def test_xnor_matmul_is_the_integer_product(rng):
    acts = np.where(rng.standard_normal((7, 130)) >= 0, 1.0, -1.0)
    weights = np.where(rng.standard_normal((130, 9)) >= 0, 1.0, -1.0)
    assert np.array_equal(accuracy.xnor_binary_matmul(acts, weights), acts @ weights)


def test_split_is_fixed_and_stratified():
    _, y_tr, _, y_te = accuracy.load_data()
    _, y_tr2, _, y_te2 = accuracy.load_data()
    assert np.array_equal(y_te, y_te2)
    total = np.bincount(y_tr) + np.bincount(y_te)
    assert np.all(np.abs(np.bincount(y_te) - 0.25 * total) <= 1)   # stratified 75/25


def test_float_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    cfg = Config(hidden=6, binary_layers=1)
    params = accuracy.init_params(rng, 5, 3, cfg)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)

    def loss():
        logits, _ = accuracy.forward(params, x, False, train=True)
        z = logits - logits.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(8), y]))

    logits, caches = accuracy.forward(params, x, False, train=True)
    grads = accuracy.backward(params, caches, logits, y, False)
    for key, p, g in accuracy._leaves(params, grads):
        for idx in list(np.ndindex(p.shape))[:4]:
            old = p[idx]
            p[idx] = old + 1e-6
            up = loss()
            p[idx] = old - 1e-6
            down = loss()
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-7), key


@pytest.mark.parametrize("field,value", [("epochs", 0), ("hidden", 0), ("lr", 0.0)])
def test_bad_config(field, value):
    with pytest.raises(BnnbenchError, match=field):
        accuracy.run_experiment(Config(**{field: value}))


def test_cli_json_and_run_file(tmp_path, capsys):
    assert main(["accuracy", "--format", "json", "--seed", "1", "--epochs", "3",
                 "--hidden", "64", "--out", str(tmp_path), "--label", "ci-host"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"float_accuracy", "binary_accuracy", "xnor_accuracy",
            "xnor_matches_reference"} <= set(out)
    assert out["xnor_matches_reference"] is True
    files = glob.glob(str(tmp_path / "*.json"))
    assert files == [out["run_file"]]
    run = reader.load_run(files[0])
    assert run["kind"] == "accuracy" and run["status"] == "complete"
    assert run["host"]["label"] == "ci-host" and "cpu_brand" in run["host"]
    df = reader.load_frame(files)
    assert list(df["evaluation"]) == ["numpy float64", "numpy +1/-1 float32", "xnor_64"]
    assert list(df["accuracy"]) == [out["float_accuracy"], out["binary_accuracy"],
                                    out["xnor_accuracy"]]


def test_cli_table(tmp_path, capsys):
    assert main(["accuracy", "--epochs", "1", "--hidden", "32", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "xnor_64" in out and "matches numpy prediction by prediction: yes" in out
