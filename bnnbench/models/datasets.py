"""Image data sets in the formats users already have, read as untrusted input.

    load(path=None, limit=None) -> Dataset

- None: scikit-learn's bundled 8x8 digits (offline), split 75/25 as
  bnnbench accuracy always has (stratified, fixed seed).
- CIFAR-10's python archive (cifar-10-python.tar.gz, or a plain .tar), or
  its extracted directory cifar-10-batches-py (or a directory holding it):
  data_batch_1..n and test_batch, each a pickle of a dict with b"data"
  (N x 3072 uint8, channel-major 3x32x32) and b"labels" (N ints in 0..9).
- A directory of MNIST IDX files (train-images-idx3-ubyte,
  train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte),
  each raw or gzipped (.gz). Fashion-MNIST ships the same files.

Every Dataset holds x as float32 NHWC in [0, 1], y as int64, its name and
class count, and a SHA-256 of what was read (the archive's bytes; for a
directory, of the sorted "name  sha256" lines of the files read), so a run
file says which data it saw.

Untrusted-input rules (bnnbench.untrusted, plus what archives need):
- every file goes through untrusted.read_bytes: regular files only (a FIFO
  or device is refused without blocking), size-capped, symlink loops are
  an error, not a hang;
- decompression is capped: a gzip stream is read at most MAX_DECOMPRESSED
  bytes, a tar stream at most MAX_TAR_BYTES in all with at most MAX_MEMBERS
  members; a CIFAR batch member may be at most MAX_BATCH_BYTES (the real
  ones are 31 MB), an IDX file at most MAX_DECOMPRESSED;
- pickles are unpickled by _BatchUnpickler, which resolves only the globals
  a CIFAR batch needs (numpy's ndarray reconstruction) and refuses any
  other (os.system, builtins.eval, ...) before it could run;
- nothing is extracted to disk; tar members that are not regular files are
  refused, so link tricks have nothing to point at.

Anything wrong is a BnnbenchError (untrusted.RejectedFile) of one line naming
the file (and the member, inside an archive) and what is wrong.
"""
import gzip
import hashlib
import io
import numbers
import os
import pickle
import re
import stat
import struct
import tarfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .. import limits, untrusted
from ..errors import BnnbenchError
from ..untrusted import RejectedFile

MAX_ARCHIVE_BYTES = untrusted.MAX_FILE_BYTES   # cifar-10-python.tar.gz is 163 MiB
MAX_DECOMPRESSED = 256 * 2**20                 # one IDX file; MNIST's largest is 45 MiB
MAX_TAR_BYTES = 512 * 2**20                    # CIFAR-10's tar is 178 MiB
MAX_BATCH_BYTES = 64 * 2**20                   # one CIFAR-10 batch pickle is 31 MiB
MAX_MEMBERS = 1000                             # CIFAR-10's tar has 9 entries

CIFAR_SIDE, CIFAR_CHANNELS, CIFAR_CLASSES = 32, 3, 10
CIFAR_ROW = CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
_BATCH = re.compile(r"^(data_batch_([1-9][0-9]*)|test_batch)$")
KNOWN = ("expected CIFAR-10's cifar-10-python.tar.gz, its extracted cifar-10-batches-py "
         "directory, or a directory of MNIST IDX files")


@dataclass
class Dataset:
    name: str
    n_classes: int
    x_train: np.ndarray     # float32 NHWC in [0, 1]
    y_train: np.ndarray     # int64
    x_test: np.ndarray
    y_test: np.ndarray
    path: str = None        # what was given (None for the bundled digits)
    sha256: str = None
    files: dict = field(default_factory=dict)   # name -> sha256 of each file read
    train_available: int = 0                    # train images before --limit

    def split(self):
        return self.x_train, self.y_train, self.x_test, self.y_test

    def describe(self):
        """What a run file records about the data."""
        return {"dataset": self.name, "data_file": os.path.basename(os.path.normpath(self.path))
                if self.path else None, "data_sha256": self.sha256,
                "classes": self.n_classes, "image_shape": list(self.x_train.shape[1:]),
                "train_samples": int(len(self.y_train)), "test_samples": int(len(self.y_test)),
                "train_available": int(self.train_available)}


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _check_limit(limit):
    if limit is None:
        return None
    if isinstance(limit, (bool, np.bool_)) or not isinstance(limit, numbers.Integral) \
            or limit < 1:
        raise BnnbenchError(f"limit must be an integer >= 1, got {limit!r:.40}")
    return int(limit)


def _to_float(images, what):
    """uint8 NHWC -> float32 in [0, 1], after checking the memory it needs."""
    limits.check_memory(images.size * 4, f"{what} as float32 ({images.shape[0]} images)",
                        "use --limit to train on fewer images")
    out = images.astype(np.float32)
    out /= 255.0
    return out


def _finish(name, n_classes, x_tr, y_tr, x_te, y_te, path, sha, files, limit):
    """uint8 NHWC images and labels -> a Dataset, train cut to `limit`."""
    available = len(y_tr)
    if limit is not None:
        x_tr, y_tr = x_tr[:limit], y_tr[:limit]
    return Dataset(name, n_classes, _to_float(x_tr, f"{path}: train images"),
                   y_tr.astype(np.int64), _to_float(x_te, f"{path}: test images"),
                   y_te.astype(np.int64), path, sha, files, available)


# ------------------------------------------------------------------ digits

def digits(limit=None):
    """scikit-learn's digits, split as bnnbench accuracy always has."""
    from .accuracy import load_data
    limit = _check_limit(limit)
    x_tr, y_tr, x_te, y_te = load_data()
    available = len(y_tr)
    if limit is not None:
        x_tr, y_tr = x_tr[:limit], y_tr[:limit]
    nhwc = lambda x: x.reshape(-1, 8, 8, 1).astype(np.float32)   # noqa: E731
    return Dataset("sklearn digits", 10, nhwc(x_tr), y_tr.astype(np.int64), nhwc(x_te),
                   y_te.astype(np.int64), train_available=available)


# ------------------------------------------------------------------ capped streams

class _Capped(io.RawIOBase):
    """A read-only stream over `inner` that fails once more than `cap` bytes
    have come through (a decompression bomb stops there, not at memory's end)."""

    def __init__(self, inner, cap, where, what):
        self.inner, self.cap, self.where, self.what, self.seen = inner, cap, where, what, 0

    def readable(self):
        return True

    def readinto(self, buf):
        data = self.inner.read(len(buf))
        self.seen += len(data)
        if self.seen > self.cap:
            raise RejectedFile(self.where, f"{self.what} expands past {self.cap} bytes "
                                           f"(a decompression bomb or not this data set)")
        buf[:len(data)] = data
        return len(data)


def _gunzip(raw, where, cap, over_ok=False):
    """The decompressed bytes of gzip data `raw`, at most `cap` of them (or
    cap + 1 with over_ok, for a caller that reports the excess itself)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            data = gz.read(cap + 1)
    except EOFError:
        raise RejectedFile(where, "truncated gzip data (the stream ends before its end marker)")
    except (OSError, zlib.error) as exc:
        raise RejectedFile(where, f"damaged gzip data ({_first_line(exc)})")
    if len(data) > cap and not over_ok:
        raise RejectedFile(where, f"decompresses past {cap} bytes (a decompression bomb "
                                  f"or not this data set)")
    return data


def _is_gzip(raw):
    return raw[:2] == b"\x1f\x8b"


# ------------------------------------------------------------------ CIFAR-10 pickles

def _reconstruct(subtype, shape, dtype):
    """numpy's _reconstruct as ndarray.__reduce__ uses it: an empty ndarray
    that BUILD then fills from the pickle's own bytes. Any other shape would
    make numpy allocate what the pickle asks for before a byte of data is
    checked, so it is refused."""
    try:
        from numpy._core.multiarray import _reconstruct as fn   # numpy >= 2
    except ImportError:    # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    if subtype is not np.ndarray or not isinstance(shape, tuple) or shape != (0,):
        raise pickle.UnpicklingError("numpy _reconstruct with arguments no array pickle uses")
    return fn(subtype, shape, dtype)


def _latin1_encode(obj, encoding="latin1", errors="strict"):
    """_codecs.encode as a Python 3 protocol-2 pickle of bytes uses it, and
    nothing else: str -> bytes through latin-1."""
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1",
                                                                              "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only as str -> latin-1 bytes")
    return obj.encode("latin-1")


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch; resolves only numpy's array reconstruction.

    The original batches were written by Python 2's cPickle (protocol 2):
    numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype, and str
    for everything else. A batch re-pickled by Python 3 names
    numpy._core.multiarray._reconstruct (numpy 2) and, at protocol 2,
    _codecs.encode for its bytes (allowed only as latin-1 encoding)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise _Forbidden(f"{module}.{name}"[:80])
        if name == "_reconstruct":
            return _reconstruct
        if name == "encode":
            return _latin1_encode
        return getattr(np, name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


class _Forbidden(pickle.UnpicklingError):
    pass


def _key(d, name):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    return None


def _read_batch(data, where):
    """(images uint8 NHWC, labels int64) of one CIFAR-10 batch pickle."""
    try:
        obj = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except _Forbidden as exc:
        raise RejectedFile(where, f"the pickle calls {exc}, which a CIFAR-10 batch never "
                                  f"does; refused without running it")
    except RecursionError:
        raise RejectedFile(where, "not a CIFAR-10 batch (a pickle nested too deep)")
    except Exception as exc:   # any damage: truncation, bad opcodes, bad numpy state
        raise RejectedFile(where, f"not a readable CIFAR-10 batch pickle "
                                  f"({type(exc).__name__}: {_first_line(exc)})")
    if not isinstance(obj, dict):
        raise RejectedFile(where, f"not a CIFAR-10 batch (a pickled {type(obj).__name__}, "
                                  f"not a dict)")
    x, y = _key(obj, "data"), _key(obj, "labels")
    if not isinstance(x, np.ndarray):
        raise RejectedFile(where, "not a CIFAR-10 batch (no b'data' array)")
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != CIFAR_ROW:
        raise RejectedFile(where, f"b'data' is {x.dtype} {x.shape}, expected uint8 "
                                  f"(N, {CIFAR_ROW})")
    if not isinstance(y, (list, np.ndarray)):
        raise RejectedFile(where, "not a CIFAR-10 batch (no b'labels' list)")
    if isinstance(y, list) and not all(type(v) is int for v in y):
        raise RejectedFile(where, "b'labels' holds something other than integers")
    try:
        labels = np.asarray(y, dtype=np.int64).reshape(-1)
    except (ValueError, TypeError, OverflowError):
        raise RejectedFile(where, "b'labels' holds something other than integers")
    if len(labels) != len(x):
        raise RejectedFile(where, f"{len(x)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= CIFAR_CLASSES):
        raise RejectedFile(where, f"a label outside 0..{CIFAR_CLASSES - 1} "
                                  f"({int(labels.min())}..{int(labels.max())})")
    images = x.reshape(-1, CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE).transpose(0, 2, 3, 1)
    return images, labels


def _assemble_cifar(batches, path, sha, files, limit):
    """batches: {member name: (images, labels)} -> Dataset."""
    if "test_batch" not in batches:
        raise RejectedFile(path, f"no test_batch: not CIFAR-10's python archive ({KNOWN})")
    nums = sorted(int(n.rsplit("_", 1)[1]) for n in batches if n != "test_batch")
    if not nums:
        raise RejectedFile(path, "no data_batch_1: not CIFAR-10's python archive")
    for want, got in enumerate(nums, 1):     # 1, 2, ... with no gap
        if got != want:
            raise RejectedFile(path, f"data_batch_{want} is missing (data_batch_{got} is there)")
    train = [batches[f"data_batch_{n}"] for n in nums]
    available = sum(len(b[1]) for b in train)
    if limit is not None:     # copy only what is used: 150 MB less for a --limit run
        kept, left = [], limit
        for x, y in train:
            if left <= 0:
                break
            kept.append((x[:left], y[:left]))
            left -= len(y)
        train = kept
    x_tr = np.concatenate([b[0] for b in train])
    y_tr = np.concatenate([b[1] for b in train])
    x_te, y_te = batches["test_batch"]
    ds = _finish("CIFAR-10", CIFAR_CLASSES, x_tr, y_tr, x_te, y_te, path, sha, files, limit)
    ds.train_available = available
    return ds


def _cifar_archive(path, raw, limit):
    """CIFAR-10 from the bytes of its .tar.gz (or plain .tar) archive."""
    sha = _sha(raw)
    batches = {}
    stream = io.BytesIO(raw)
    what = "the tar inside"
    if _is_gzip(raw):
        stream = gzip.GzipFile(fileobj=stream)
        what = "the gzip stream"
    capped = io.BufferedReader(_Capped(stream, MAX_TAR_BYTES, path, what))
    count = 0
    try:
        with tarfile.open(fileobj=capped, mode="r|") as tar:
            for member in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise RejectedFile(path, f"more than {MAX_MEMBERS} members: not CIFAR-10's "
                                             f"python archive")
                base = member.name.rstrip("/").rsplit("/", 1)[-1]
                if not _BATCH.match(base):
                    continue
                where = f"{path}: {member.name}"
                if not member.isreg():
                    raise RejectedFile(where, "not a regular file inside the archive")
                if base in batches:
                    raise RejectedFile(where, f"a second {base} in the archive")
                if member.size > MAX_BATCH_BYTES:
                    raise RejectedFile(where, f"{member.size} bytes, over the "
                                              f"{MAX_BATCH_BYTES}-byte limit for one batch")
                data = tar.extractfile(member).read()
                if len(data) != member.size:
                    raise RejectedFile(where, "truncated (the archive ends inside it)")
                batches[base] = _read_batch(data, where)
    except RejectedFile:
        raise
    except EOFError:
        raise RejectedFile(path, "truncated gzip data (the stream ends before its end marker)")
    except tarfile.ReadError as exc:
        msg = _first_line(exc)
        if "unexpected end" in msg or "truncated" in msg:
            raise RejectedFile(path, "truncated tar archive (it ends inside a member)")
        raise RejectedFile(path, f"not a readable tar archive ({msg}); {KNOWN}")
    except (tarfile.TarError, OSError, zlib.error) as exc:
        raise RejectedFile(path, f"damaged archive ({_first_line(exc)})")
    if not batches:
        raise RejectedFile(path, f"no CIFAR-10 batches (data_batch_N, test_batch) in the "
                                 f"archive; {KNOWN}")
    return _assemble_cifar(batches, path, sha, {os.path.basename(path): sha}, limit)


def _dir_digest(files):
    lines = "".join(f"{name}  {digest}\n" for name, digest in sorted(files.items()))
    return _sha(lines.encode())


def _cifar_dir(path, names, limit):
    """CIFAR-10 from its extracted directory."""
    batches, files = {}, {}
    for name in names:
        if not _BATCH.match(name):
            continue
        where = os.path.join(path, name)
        data = untrusted.read_bytes(where, MAX_BATCH_BYTES)
        files[name] = _sha(data)
        batches[name] = _read_batch(data, where)
    return _assemble_cifar(batches, path, _dir_digest(files), files, limit)


# ------------------------------------------------------------------ MNIST IDX

def _idx(data, where, magic):
    """The array in IDX bytes `data`: magic checked, dimensions against size."""
    if len(data) < 4:
        raise RejectedFile(where, f"{len(data)} bytes: too short for an IDX header")
    (got,) = struct.unpack(">I", data[:4])
    if got != magic:
        raise RejectedFile(where, f"magic number 0x{got:08x}, expected 0x{magic:08x} "
                                  f"(an IDX {'image' if magic == IDX_IMAGES else 'label'} file "
                                  f"of unsigned bytes)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise RejectedFile(where, f"{len(data)} bytes: too short for its {ndim}-dimension "
                                  f"IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=object))
    if len(data) != expected:
        raise RejectedFile(where, f"{len(data)} bytes, but its header "
                                  f"({' x '.join(map(str, dims))}) needs {expected}")
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise RejectedFile(where, f"images of {dims[1]} x {dims[2]} pixels")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _find_idx(path, names, stem):
    """The file of `stem` in the directory: raw, or .gz; None if neither."""
    for candidate in (stem, stem + ".gz"):
        if candidate in names:
            return candidate
    # Some mirrors spell the files with a dot: train-images.idx3-ubyte.
    dotted = stem.replace("-idx", ".idx")
    for candidate in (dotted, dotted + ".gz"):
        if candidate in names:
            return candidate
    return None


def _read_idx_file(path, name, magic):
    where = os.path.join(path, name)
    raw = untrusted.read_bytes(where, MAX_ARCHIVE_BYTES)
    digest = _sha(raw)
    if name.endswith(".gz") or _is_gzip(raw):
        # The header says how big the file must be: read no more than that.
        head = _gunzip_head(raw, where)
        need = _idx_size(head, where, magic)
        if need is not None and need > MAX_DECOMPRESSED:
            raise RejectedFile(where, f"its header asks for {need} bytes, over the "
                                      f"{MAX_DECOMPRESSED}-byte limit")
        raw = _gunzip(raw, where, MAX_DECOMPRESSED if need is None else need,
                      over_ok=need is not None)
    return _idx(raw, where, magic), digest


def _gunzip_head(raw, where):
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            return gz.read(16)
    except EOFError:
        raise RejectedFile(where, "truncated gzip data (the stream ends before its end marker)")
    except (OSError, zlib.error) as exc:
        raise RejectedFile(where, f"damaged gzip data ({_first_line(exc)})")


def _idx_size(head, where, magic):
    """Total bytes the IDX header in `head` declares, or None if it is short
    (then _idx reports what is wrong)."""
    ndim = magic & 0xFF
    if len(head) < 4 + 4 * ndim or struct.unpack(">I", head[:4])[0] != magic:
        return None
    dims = struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])
    return 4 + 4 * ndim + int(np.prod(dims, dtype=object))


def _mnist_dir(path, names, limit):
    found = {k: _find_idx(path, names, stem) for k, stem in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, v in found.items() if v is None]
    if missing:
        raise RejectedFile(path, f"no {missing[0]}[.gz] in this directory of MNIST IDX files")
    arrays, files = {}, {}
    for key, name in found.items():
        magic = IDX_IMAGES if key.endswith("images") else IDX_LABELS
        arrays[key], files[name] = _read_idx_file(path, name, magic)
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if len(images) != len(labels):
            raise RejectedFile(os.path.join(path, found[f"{part}_labels"]),
                               f"{len(labels)} labels but {found[f'{part}_images']} holds "
                               f"{len(images)} images")
    tr, te = arrays["train_images"], arrays["test_images"]
    if tr.shape[1:] != te.shape[1:]:
        raise RejectedFile(path, f"train images are {tr.shape[1]} x {tr.shape[2]} but test "
                                 f"images {te.shape[1]} x {te.shape[2]}")
    n_classes = int(max(arrays["train_labels"].max(initial=0),
                        arrays["test_labels"].max(initial=0))) + 1
    return _finish("MNIST (IDX)", max(n_classes, 2), tr[..., None], arrays["train_labels"],
                   te[..., None], arrays["test_labels"], path, _dir_digest(files), files, limit)


# ------------------------------------------------------------------ dispatch

def load(path=None, limit=None):
    """The data set at `path` (None: the bundled digits); `limit` keeps the
    first N train images. BnnbenchError, one line, if it cannot be used."""
    limit = _check_limit(limit)
    if path is None:
        return digits(limit)
    path = os.fspath(path)
    try:
        st = os.stat(path)     # stat never blocks, even on a FIFO
    except OSError as exc:
        raise RejectedFile(path, f"cannot read: {exc.strerror}")
    if stat.S_ISDIR(st.st_mode):
        return _load_dir(path, limit)
    raw = untrusted.read_bytes(path, MAX_ARCHIVE_BYTES)    # regular files only
    base = os.path.basename(path)
    if any(base.startswith(stem) for stem in MNIST_FILES.values()):
        raise RejectedFile(path, "one MNIST IDX file: give the directory holding all four "
                                 f"({', '.join(MNIST_FILES.values())}, raw or .gz)")
    if _BATCH.match(base):
        raise RejectedFile(path, "one CIFAR-10 batch: give the archive or the directory "
                                 "holding data_batch_1.. and test_batch")
    if _is_gzip(raw) or base.endswith((".tar", ".tar.gz", ".tgz")) or _looks_like_tar(raw):
        return _cifar_archive(path, raw, limit)
    raise RejectedFile(path, f"not a data set bnnbench reads ({KNOWN})")


def _looks_like_tar(raw):
    return raw[257:262] == b"ustar"


def _load_dir(path, limit, top=True):
    try:
        names = set(os.listdir(path))
    except OSError as exc:
        raise RejectedFile(path, f"cannot list: {exc.strerror}")
    if any(_BATCH.match(n) for n in names):
        return _cifar_dir(path, names, limit)
    if top and "cifar-10-batches-py" in names:    # the directory the archive extracts to
        return _load_dir(os.path.join(path, "cifar-10-batches-py"), limit, top=False)
    if any(_find_idx(path, names, stem) for stem in MNIST_FILES.values()):
        return _mnist_dir(path, names, limit)
    archives = sorted(n for n in names if n.endswith((".tar.gz", ".tgz")))
    hint = f" (it holds {archives[0]}: give that file)" if archives else ""
    raise RejectedFile(path, f"a directory with no data set bnnbench reads{hint}; {KNOWN}")
