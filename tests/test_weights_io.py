"""Packed weight files: size equals binary_bytes plus the header; bits round-trip."""
import os
import struct

import numpy as np
import pytest

from bnnbench.models import zoo, weights

from bnnbench import pack_signs
from bnnbench.cli import main
from bnnbench.errors import BnnbenchError


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_file_size_is_binary_bytes_plus_header(tmp_path, name):
    model = zoo.get_model(name)
    path = weights.export_model(model, str(tmp_path), seed=3)
    wf = weights.read_weights(path)
    assert os.path.getsize(path) == zoo.summarize(model)["binary_bytes"] + wf.header_bytes
    assert wf.header_bytes % 8 == 0 and wf.header_bytes < 16 * 1024
    assert wf.model == name and wf.header["seed"] == 3


def test_round_trip_bit_for_bit(tmp_path):
    model = zoo.get_model("cntk-bnn")
    tensors = weights.model_tensors(model, seed=7)
    path = weights.export_model(model, str(tmp_path), seed=7)
    wf = weights.read_weights(path)
    assert set(wf.tensors) == {t.name for t in tensors}
    binary_layers = {i.name for i in zoo.resolve(model) if i.binary}
    for t in tensors:
        stored = wf.tensors[t.name]
        if t.binary:
            assert t.layer in binary_layers
            rows = t.values.reshape(t.values.shape[0], -1)
            assert stored.dtype == np.uint64
            assert np.array_equal(stored, pack_signs(rows, 64))
            signs = np.where(t.values >= 0, 1, -1).astype(np.float32)
            assert np.array_equal(wf.signs(t.name), signs)
        else:
            assert stored.dtype == np.float32
            assert stored.tobytes() == t.values.tobytes()


def test_header_layout_and_padding_bits(tmp_path):
    # K = 3*3*32 = 288 is not a multiple of 64: the last word's padding bits are 0.
    model = zoo.get_model("cntk-bnn")
    path = weights.export_model(model, str(tmp_path))
    with open(path, "rb") as fh:
        magic, version, word_bits, hlen = struct.unpack("<4sHHI", fh.read(12))
    assert (magic, version, word_bits) == (b"BNNW", 2, 64)
    wf = weights.read_weights(path)
    assert wf.header_bytes == 12 + 32 + hlen
    entry = wf.entry("bconv2.weight")
    assert entry["shape"] == [128, 32, 3, 3] and entry["stored_shape"] == [128, 5]
    assert entry["offset"] % 8 == 0
    assert not (wf.tensors["bconv2.weight"][:, -1] >> np.uint64(288 - 256)).any()


def test_same_seed_same_bytes(tmp_path):
    model = zoo.get_model("cntk-basic")
    a = weights.export_model(model, str(tmp_path / "a"), seed=1)
    b = weights.export_model(model, str(tmp_path / "b"), seed=1)
    c = weights.export_model(model, str(tmp_path / "c"), seed=2)
    data = [open(p, "rb").read() for p in (a, b, c)]
    assert data[0] == data[1] != data[2]


def test_reader_rejects_damaged_files(tmp_path):
    path = weights.export_model(zoo.get_model("cntk-basic"), str(tmp_path))
    data = open(path, "rb").read()
    cases = {"magic": b"XXXX" + data[4:], "truncated": data[:-8], "short": data[:5],
             "extra": data + b"\0"}
    for name, blob in cases.items():
        bad = tmp_path / f"{name}.bnnw"
        bad.write_bytes(blob)
        with pytest.raises(BnnbenchError, match="not a valid bnnbench weights file"):
            weights.read_weights(str(bad))
    with pytest.raises(BnnbenchError, match="cannot read"):
        weights.read_weights(str(tmp_path / "missing.bnnw"))


def test_cli_export(tmp_path, capsys):
    assert main(["models", "cntk-basic", "cntk-vgg9", "--export", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["cntk-basic.bnnw", "cntk-vgg9.bnnw"]
