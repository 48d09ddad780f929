"""Data sets in the formats users have, read as untrusted input: tiny
synthetic archives written the way the real ones are, and damaged ones that
must each give one line naming the file and what is wrong."""
import gzip
import hashlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest

from bnnbench.errors import BnnbenchError
from bnnbench.models import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ writers

def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _binstring(b):
    """Python 2 str in a protocol-2 pickle (what Python 3 reads as bytes)."""
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b
    return b"T" + struct.pack("<i", len(b)) + b


def _int(v):
    return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)


def py2_batch_pickle(data, labels, batch_label=b"training batch 1 of 5", filenames=None):
    """A CIFAR-10 batch as Python 2's cPickle wrote the originals (protocol 2):
    a dict of str keys, a numpy uint8 array through
    numpy.core.multiarray._reconstruct / numpy.ndarray / numpy.dtype, a list
    of ints, and str everywhere Python 3 now has bytes."""
    assert data.dtype == np.uint8 and data.ndim == 2
    filenames = filenames or [b"img_%d.png" % i for i in range(len(labels))]
    out = [b"\x80\x02}(", _binstring(b"data")]
    # _reconstruct(ndarray, (0,), 'b') then BUILD with its state tuple.
    out += [b"cnumpy.core.multiarray\n_reconstruct\n", b"cnumpy\nndarray\n",
            _int(0), b"\x85", _binstring(b"b"), b"\x87R"]
    out += [b"(", _int(1), _int(data.shape[0]), _int(data.shape[1]), b"\x86",
            b"cnumpy\ndtype\n", _binstring(b"u1"), _int(0), _int(1), b"\x87R",
            b"(", _int(3), _binstring(b"|"), b"NNN", _int(-1), _int(-1), _int(0), b"tb",
            b"\x89", _binstring(data.tobytes()), b"tb"]
    out += [_binstring(b"labels"), b"](", *[_int(int(v)) for v in labels], b"e"]
    out += [_binstring(b"batch_label"), _binstring(batch_label)]
    out += [_binstring(b"filenames"), b"](", *[_binstring(f) for f in filenames], b"e"]
    out += [b"u."]
    return b"".join(out)


def cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            [int(v) for v in rng.integers(0, 10, n)])


def write_tar(path, members, gz=True):
    """members: {name: bytes} into a tar (gzipped like the real archive)."""
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def cifar_members(sizes=(4, 3), test=5, seed=0):
    members, expect = {}, {"train": [], "test": None}
    for i, n in enumerate(sizes, 1):
        data, labels = cifar_arrays(n, seed + i)
        members[f"data_batch_{i}"] = py2_batch_pickle(data, labels)
        expect["train"].append((data, labels))
    data, labels = cifar_arrays(test, seed + 99)
    members["test_batch"] = py2_batch_pickle(data, labels, b"testing batch 1 of 1")
    expect["test"] = (data, labels)
    members["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2)
    members["readme.html"] = b"<html></html>"
    return members, expect


@pytest.fixture
def cifar_tgz(tmp_path):
    members, expect = cifar_members()
    return write_tar(str(tmp_path / "cifar-10-python.tar.gz"), members), expect


def idx_bytes(arr, magic):
    arr = np.asarray(arr, dtype=np.uint8)
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_mnist(directory, gz, n_train=6, n_test=4, seed=0, side=28):
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    for name, arr in arrays.items():
        raw = idx_bytes(arr, 0x803 if "images" in name else 0x801)
        if gz:
            with gzip.open(os.path.join(directory, name + ".gz"), "wb") as f:
                f.write(raw)
        else:
            with open(os.path.join(directory, name), "wb") as f:
                f.write(raw)
    return str(directory), arrays


def one_line_error(path, **kw):
    with pytest.raises(BnnbenchError) as info:
        datasets.load(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg and msg.strip() == msg
    return msg


def nhwc(data):
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255


# ------------------------------------------------------------------ round trips

def test_cifar_tgz_round_trip(cifar_tgz):
    path, expect = cifar_tgz
    ds = datasets.load(path)
    assert ds.name == "CIFAR-10" and ds.n_classes == 10
    x_tr, y_tr, x_te, y_te = ds.split()
    assert x_tr.dtype == np.float32 and x_tr.shape == (7, 32, 32, 3)
    assert y_tr.dtype == np.int64 and list(y_tr) == expect["train"][0][1] + expect["train"][1][1]
    assert np.array_equal(x_tr, np.concatenate([nhwc(d) for d, _ in expect["train"]]))
    assert np.array_equal(x_te, nhwc(expect["test"][0])) and list(y_te) == expect["test"][1]
    assert 0.0 <= x_tr.min() and x_tr.max() <= 1.0
    # Channel-major rows: the first 1024 bytes are the red plane.
    assert x_tr[0, 0, 1, 0] == expect["train"][0][0][0, 1] / np.float32(255)
    assert ds.sha256 == hashlib.sha256(_read(path)).hexdigest()
    d = ds.describe()
    assert d["data_file"] == "cifar-10-python.tar.gz" and d["train_samples"] == 7
    assert d["test_samples"] == 5


def test_cifar_limit_plain_tar_and_extracted_dir(tmp_path):
    members, expect = cifar_members()
    ref = datasets.load(write_tar(str(tmp_path / "a.tar.gz"), members))
    plain = datasets.load(write_tar(str(tmp_path / "a.tar"), members, gz=False), limit=5)
    assert len(plain.y_train) == 5 and plain.train_available == 7
    assert np.array_equal(plain.x_train, ref.x_train[:5])
    extracted = tmp_path / "out"
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        tar.extractall(extracted, filter="data")
    for where in (extracted, extracted / "cifar-10-batches-py"):
        ds = datasets.load(str(where))
        assert np.array_equal(ds.x_train, ref.x_train) and np.array_equal(ds.y_test, ref.y_test)
        assert set(ds.files) == {"data_batch_1", "data_batch_2", "test_batch"}


@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar_batches_repickled_by_python3(tmp_path, protocol):
    # protocol 2 from Python 3 spells bytes as _codecs.encode(str, 'latin1').
    data, labels = cifar_arrays(3, 5)
    batch = pickle.dumps({b"data": data, b"labels": labels}, protocol=protocol)
    path = write_tar(str(tmp_path / "c.tar.gz"), {"data_batch_1": batch, "test_batch": batch})
    ds = datasets.load(path)
    assert np.array_equal(ds.x_test, nhwc(data)) and list(ds.y_train) == labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_round_trip(tmp_path, gz):
    path, arrays = write_mnist(tmp_path / "mnist", gz)
    ds = datasets.load(path)
    assert ds.name == "MNIST (IDX)" and ds.x_train.shape == (6, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.array_equal(ds.x_train[..., 0] * 255,
                          arrays["train-images-idx3-ubyte"].astype(np.float32))
    assert np.array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.n_classes == max(arrays["train-labels-idx1-ubyte"].max(),
                               arrays["t10k-labels-idx1-ubyte"].max()) + 1
    assert len(ds.files) == 4 and len(ds.sha256) == 64


def test_default_is_digits_split_as_always():
    from bnnbench.models import accuracy
    ds = datasets.load()
    x_tr, y_tr, x_te, y_te = accuracy.load_data()
    assert ds.name == "sklearn digits" and ds.x_train.shape == (1347, 8, 8, 1)
    assert np.array_equal(ds.y_test, y_te)
    assert np.allclose(ds.x_train.reshape(len(x_tr), -1), x_tr)


# ------------------------------------------------------------------ damage

def test_truncated_gzip(tmp_path, cifar_tgz):
    path, _ = cifar_tgz
    raw = _read(path)
    bad = tmp_path / "cut.tar.gz"
    bad.write_bytes(raw[:len(raw) // 2])
    msg = one_line_error(str(bad))
    assert msg.startswith(str(bad)) and "truncated" in msg


def test_truncated_tar(tmp_path):
    members, _ = cifar_members()
    raw = _read(write_tar(str(tmp_path / "a.tar"), members, gz=False))
    bad = tmp_path / "cut.tar"
    bad.write_bytes(raw[:len(raw) // 2])
    msg = one_line_error(str(bad))
    assert msg.startswith(str(bad)) and "truncated" in msg
    # The same, gzipped whole: the tar inside is what is short.
    badgz = tmp_path / "cut.tar.gz"
    badgz.write_bytes(gzip.compress(raw[:len(raw) // 2]))
    assert "truncated" in one_line_error(str(badgz))


def test_forbidden_global_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = (b"\x80\x02}(U\x04datacos\nsystem\n(U" + bytes([len(f"touch {marker}")])
            + f"touch {marker}".encode() + b"tRU\x06labels](eu.")
    members, _ = cifar_members()
    members["data_batch_1"] = evil
    path = write_tar(str(tmp_path / "evil.tar.gz"), members)
    msg = one_line_error(path)
    assert "os.system" in msg and "data_batch_1" in msg and msg.startswith(path)
    assert not marker.exists()
    # builtins.eval through a protocol-4 pickle of Python 3: the same.
    class Boom:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w')",))
    members["data_batch_1"] = pickle.dumps({b"data": Boom(), b"labels": []}, protocol=4)
    msg = one_line_error(write_tar(str(tmp_path / "evil2.tar.gz"), members))
    assert "builtins.eval" in msg and not marker.exists()


def test_batch_that_is_not_cifar(tmp_path):
    members, _ = cifar_members()
    members["test_batch"] = pickle.dumps({b"data": np.zeros((2, 10), np.uint8),
                                          b"labels": [0, 1]}, protocol=2)
    msg = one_line_error(write_tar(str(tmp_path / "x.tar.gz"), members))
    assert "test_batch" in msg and "(N, 3072)" in msg
    members["test_batch"] = py2_batch_pickle(np.zeros((2, 3072), np.uint8), [0, 10])
    assert "label outside 0..9" in one_line_error(write_tar(str(tmp_path / "y.tar.gz"), members))
    members["test_batch"] = py2_batch_pickle(np.zeros((2, 3072), np.uint8), [0])
    assert "2 images but 1 labels" in one_line_error(write_tar(str(tmp_path / "z.tar.gz"),
                                                               members))
    members["test_batch"] = b"\x80\x02}(U\x04data"     # a pickle cut short
    assert "not a readable CIFAR-10 batch" in one_line_error(
        write_tar(str(tmp_path / "w.tar.gz"), members))
    del members["test_batch"]
    assert "no test_batch" in one_line_error(write_tar(str(tmp_path / "v.tar.gz"), members))


def test_oversized_member(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_BATCH_BYTES", 20_000)
    members, _ = cifar_members(sizes=(4,))
    members["data_batch_2"] = b"\0" * 30_000
    msg = one_line_error(write_tar(str(tmp_path / "big.tar.gz"), members))
    assert "data_batch_2" in msg and "over the 20000-byte limit" in msg


def test_tar_bomb_stops_at_the_cap(tmp_path, monkeypatch):
    # 8 MiB of zeros in a member nobody reads: the stream still stops at the cap.
    monkeypatch.setattr(datasets, "MAX_TAR_BYTES", 2**20)
    members, _ = cifar_members(sizes=(1,))
    members = {"padding": b"\0" * 8 * 2**20, **members}
    msg = one_line_error(write_tar(str(tmp_path / "bomb.tar.gz"), members))
    assert "expands past 1048576 bytes" in msg


def test_gzip_bomb_idx(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_DECOMPRESSED", 2**20)
    path, _ = write_mnist(tmp_path / "m", gz=True)
    # A header that claims 100000 images of 28x28: far past the cap.
    bomb = struct.pack(">IIII", 0x803, 100000, 28, 28) + b"\0" * (4 * 2**20)
    with gzip.open(os.path.join(path, "train-images-idx3-ubyte.gz"), "wb") as f:
        f.write(bomb)
    msg = one_line_error(path)
    assert "train-images-idx3-ubyte.gz" in msg and "over the 1048576-byte limit" in msg


def test_wrong_idx_magic(tmp_path):
    path, arrays = write_mnist(tmp_path / "m", gz=False)
    name = os.path.join(path, "train-labels-idx1-ubyte")
    with open(name, "wb") as f:     # an image file's magic where labels belong
        f.write(idx_bytes(arrays["train-labels-idx1-ubyte"][:, None, None], 0x803))
    msg = one_line_error(path)
    assert msg.startswith(name) and "magic number 0x00000803, expected 0x00000801" in msg


@pytest.mark.parametrize("gz", [True, False])
def test_idx_counts_disagree_with_file_size(tmp_path, gz):
    path, arrays = write_mnist(tmp_path / "m", gz=gz)
    raw = idx_bytes(arrays["t10k-images-idx3-ubyte"], 0x803)[:-100]   # 100 bytes short
    name = os.path.join(path, "t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    with open(name, "wb") as f:
        f.write(gzip.compress(raw) if gz else raw)
    msg = one_line_error(path)
    assert msg.startswith(name) and f"{len(raw)} bytes, but its header (4 x 28 x 28) needs " \
                                      f"{len(raw) + 100}" in msg


def test_idx_image_and_label_counts_differ(tmp_path):
    path, arrays = write_mnist(tmp_path / "m", gz=True)
    name = os.path.join(path, "train-labels-idx1-ubyte.gz")
    with gzip.open(name, "wb") as f:
        f.write(idx_bytes(arrays["train-labels-idx1-ubyte"][:5], 0x801))
    msg = one_line_error(path)
    assert msg.startswith(name) and "5 labels but" in msg and "holds 6 images" in msg


def test_idx_truncated_gzip(tmp_path):
    path, _ = write_mnist(tmp_path / "m", gz=True)
    name = os.path.join(path, "t10k-labels-idx1-ubyte.gz")
    raw = _read(name)
    with open(name, "wb") as f:
        f.write(raw[:-12])
    msg = one_line_error(path)
    assert msg.startswith(name) and "truncated gzip" in msg


def test_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "cifar-10-python.tar.gz"
    os.mkfifo(fifo)
    result = {}
    t = threading.Thread(target=lambda: result.update(msg=one_line_error(str(fifo))),
                         daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading a FIFO hung"
    assert "a FIFO, not a regular file" in result["msg"]
    # A FIFO where an IDX file belongs: the same.
    path, _ = write_mnist(tmp_path / "m", gz=False)
    os.remove(os.path.join(path, "t10k-images-idx3-ubyte"))
    os.mkfifo(os.path.join(path, "t10k-images-idx3-ubyte"))
    assert "a FIFO, not a regular file" in one_line_error(path)


def test_symlink_loop_and_missing(tmp_path):
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    assert "symbolic links" in one_line_error(str(loop))
    assert "No such file" in one_line_error(str(tmp_path / "absent.tar.gz"))
    path, _ = write_mnist(tmp_path / "m", gz=False)
    name = os.path.join(path, "train-images-idx3-ubyte")
    os.remove(name)
    os.symlink(name, name)
    assert "symbolic links" in one_line_error(path)


def test_tar_member_that_is_a_link(tmp_path):
    path = str(tmp_path / "link.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    assert "not a regular file inside the archive" in one_line_error(path)


def test_wrong_formats(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    assert "not a data set bnnbench reads" in one_line_error(str(other))
    gz = tmp_path / "x.tar.gz"
    gz.write_bytes(gzip.compress(b"not a tar at all" * 100))
    assert "not a readable tar archive" in one_line_error(str(gz))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "a directory with no data set" in one_line_error(str(empty))
    path, _ = write_mnist(tmp_path / "m", gz=False)
    assert "give the directory" in one_line_error(os.path.join(path, "t10k-images-idx3-ubyte"))
    os.remove(os.path.join(path, "t10k-labels-idx1-ubyte"))
    assert "no t10k-labels-idx1-ubyte" in one_line_error(path)
    with pytest.raises(BnnbenchError, match="limit must be an integer >= 1"):
        datasets.load(path, limit=0)


# ------------------------------------------------------------------ the command

def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "bnnbench", "accuracy", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": ROOT})


def test_cli_accuracy_on_cifar_archive(tmp_path):
    members, _ = cifar_members(sizes=(20, 20), test=10)
    path = write_tar(str(tmp_path / "cifar-10-python.tar.gz"), members)
    out = tmp_path / "results"
    r = _cli("--data", path, "--limit", "30", "--epochs", "1", "--hidden", "32",
             "--format", "json", "--out", str(out), "--label", "ci", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["dataset"] == "CIFAR-10" and summary["train_samples"] == 30
    assert summary["test_samples"] == 10 and summary["xnor_matches_reference"] is True
    from bnnbench.runs import reader
    run = reader.load_run(summary["run_file"])      # a valid run file
    assert run["kind"] == "accuracy" and run["status"] == "complete" and len(run["rows"]) == 3
    s = run["settings"]
    assert s["dataset"] == "CIFAR-10" and s["data_file"] == "cifar-10-python.tar.gz"
    assert s["data_sha256"] == hashlib.sha256(_read(path)).hexdigest()
    assert (s["train_samples"], s["test_samples"], s["limit"]) == (30, 10, 30)
    assert s["train_available"] == 40


def test_cli_damaged_archive_is_one_line(tmp_path):
    members, _ = cifar_members()
    raw = _read(write_tar(str(tmp_path / "good.tar.gz"), members))
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(raw[:len(raw) - 40])
    out = tmp_path / "results"
    r = _cli("--data", str(bad), "--out", str(out), cwd=str(tmp_path))
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bnnbench accuracy: error: ")
    assert str(bad) in lines[0]
    assert not out.exists() or not os.listdir(out)    # no run file for a bad archive


def test_pickle_cannot_make_numpy_allocate(tmp_path):
    # _reconstruct(ndarray, (2**30,), "b") would allocate a GiB before any check.
    huge = (b"\x80\x02}(U\x04datacnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
            b"J\x00\x00\x00\x40\x85U\x01b\x87RU\x06labels](eu.")
    members, _ = cifar_members()
    members["test_batch"] = huge
    msg = one_line_error(write_tar(str(tmp_path / "huge.tar.gz"), members))
    assert "test_batch" in msg and "arguments no array pickle uses" in msg


def test_batches_must_be_numbered_without_gaps(tmp_path):
    members, _ = cifar_members(sizes=(2, 2))
    members["data_batch_999999999"] = members.pop("data_batch_2")
    msg = one_line_error(write_tar(str(tmp_path / "gap.tar.gz"), members))
    assert "data_batch_2 is missing (data_batch_999999999 is there)" in msg
