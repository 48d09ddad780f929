"""Packed weight files: what a deployed binary model stores, byte for byte.

A file holds one model's parameters; binary layers' weights are packed one
bit per weight, everything else is float32. Layout (all little-endian):

    offset  size  field
    0       4     magic b"BNNW"
    4       2     format version, uint16 (2)
    6       2     word bits, uint16 (64)
    8       4     header length H, uint32
    12      32    SHA-256 of everything after it (header and body)
    44      H     header: UTF-8 JSON, padded with spaces so the body starts
                  on an 8-byte boundary
    44 + H  ...   body: the tensors back to back, exactly at the offsets the
                  header gives; nothing else, so body size == binary_bytes

Version 1 files (no checksum: the header starts at offset 12) are still
read, with a warning that their bits cannot be checked. Anything wrong with
a file, from its first byte to its last, is one BnnbenchError: "<path>: not
a valid bnnbench weights file (<why>)".

The JSON header is {"format": "bnnbench-weights", "model": name, "seed": s,
"word_bits": 64, "body_bytes": n, "tensors": [...]} and each tensor is
{"name", "layer", "encoding", "shape", "stored_shape", "offset", "nbytes"},
offset counted from the start of the body. Encodings:

- "float32": the values, C order, shape == stored_shape.
- "sign_bits": a binary layer's weights, shape (out, in, k, k) for a conv or
  (out, in) for a dense layer. Each output channel's K = prod(shape[1:])
  weights, flattened in C order, are packed into ceil(K / 64) uint64 words
  (stored_shape (out, words)): bit k % 64 of word k // 64 is 1 where the
  weight is >= 0 (+1) and 0 where it is negative (-1); padding bits are 0.
  This is bnnbench.pack_signs, the layout the xnor kernels read.

Packed tensors come first so that every word sits on an 8-byte boundary;
float32 tensors (4-byte multiples) follow.
"""
import hashlib
import json
import math
import os
import struct
import warnings
from dataclasses import dataclass

import numpy as np

from .. import limits, untrusted
from ..errors import BnnbenchError
from ..files import writable_dir, write_atomic
from .zoo import BatchNorm, Conv, Dense, DepthwiseConv, Scale, WORD_BITS, resolve

MAGIC = b"BNNW"
VERSION = 2
READABLE_VERSIONS = (1, 2)
DIGEST_BYTES = 32        # SHA-256, from version 2
MAX_DIM = 2**40          # no tensor axis is longer: a bigger one is damage
FORMAT = "bnnbench-weights"
SUFFIX = ".bnnw"
_PREFIX = struct.Struct("<4sHHI")   # magic, version, word bits, header length
ALIGN = 8
BN_BIAS_MIN = 0.01       # see model_tensors


@dataclass
class Tensor:
    name: str
    layer: str
    values: np.ndarray   # float32, logical shape
    binary: bool         # stored as sign bits


def model_tensors(model, seed=0):
    """Every parameter tensor of `model`, random (seeded), in layer order.

    Weights are N(0, 1/fan_in); batch-norm scales near 1: plausible values,
    though only their bits matter here. Batch-norm biases are N(0, 0.1) kept
    at least BN_BIAS_MIN from 0: where a binary layer's integer is exactly 0
    the next sign is the sign of that bias, and LCE folds scale and bias
    into a float32 popcount threshold near K / 2 whose rounding (ulp(2304) /
    2 = 1.2e-4 at K = 4608) puts a bias within about 1e-4 of 0 on the other
    side. A trained network rarely has one; random weights would have a few
    dozen, and each flipped bit changes a deep random network's logits, so
    the peer check would measure that rounding instead of the engine.
    """
    rng = np.random.default_rng(seed)
    layers = {l.name: l for l in model.layers}
    tensors = []

    def add(layer, suffix, shape, binary=False, std=1.0, mean=0.0):
        values = (mean + std * rng.standard_normal(shape)).astype(np.float32)
        tensors.append(Tensor(f"{layer}.{suffix}", layer, values, binary))

    for info in resolve(model):
        layer = layers[info.name]
        if isinstance(layer, (Conv, Dense)):
            m, k, _ = info.gemm
            if isinstance(layer, Conv):
                shape = (m, layer.in_channels, layer.kernel, layer.kernel)
            else:
                shape = (m, k)
            add(info.name, "weight", shape, info.binary, std=k ** -0.5)
            if info.biases:
                add(info.name, "bias", (info.biases,), std=0.1)
        elif isinstance(layer, DepthwiseConv):
            shape = (layer.channels, 1, layer.kernel, layer.kernel)   # PyTorch's layout
            add(info.name, "weight", shape, std=layer.kernel ** -1.0)
            if info.biases:
                add(info.name, "bias", (info.biases,), std=0.1)
        elif isinstance(layer, BatchNorm):
            add(info.name, "scale", (info.other_params // 2,), std=0.1, mean=1.0)
            add(info.name, "bias", (info.other_params // 2,), std=0.1)
            b = tensors[-1].values
            b[:] = np.where(b >= 0, 1, -1) * np.maximum(np.abs(b), BN_BIAS_MIN)
        elif isinstance(layer, Scale) and info.other_params:
            add(info.name, "scale", (info.other_params,), std=0.1, mean=1.0)
    return tensors


def _encode(tensor):
    """(encoding, stored array) of one tensor, little-endian."""
    from .. import pack_signs
    if tensor.binary:
        rows = tensor.values.reshape(tensor.values.shape[0], -1)
        return "sign_bits", pack_signs(rows, WORD_BITS).astype("<u8")
    return "float32", np.ascontiguousarray(tensor.values, dtype="<f4")


def write_weights(path, model, tensors, seed=None):
    """Write `tensors` of `model` to `path` atomically; return the header dict."""
    encoded = [(t, *_encode(t)) for t in tensors]
    encoded.sort(key=lambda e: e[1] != "sign_bits")  # stable: layer order within each kind
    entries, offset = [], 0
    for t, encoding, stored in encoded:
        entries.append({"name": t.name, "layer": t.layer, "encoding": encoding,
                        "shape": list(t.values.shape), "stored_shape": list(stored.shape),
                        "offset": offset, "nbytes": stored.nbytes})
        offset += stored.nbytes
    header = {"format": FORMAT, "model": model.name, "seed": seed, "word_bits": WORD_BITS,
              "body_bytes": offset, "tensors": entries}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(_PREFIX.size + DIGEST_BYTES + len(text)) % ALIGN)
    body = b"".join(stored.tobytes() for _, _, stored in encoded)
    digest = hashlib.sha256(text + body).digest()
    write_atomic(path, _PREFIX.pack(MAGIC, VERSION, WORD_BITS, len(text)) + digest + text + body)
    return header


def export_model(model, out_dir, seed=0):
    """Write `model`'s random (seeded) weights to out_dir/<name>.bnnw; return the path."""
    limits.check_seed(seed)   # before the directory is made
    path = os.path.join(writable_dir(out_dir), model.name + SUFFIX)
    try:
        write_weights(path, model, model_tensors(model, seed), seed)
    except OSError as exc:
        raise BnnbenchError(f"cannot write {path}: {exc.strerror}")
    return path


@dataclass
class WeightFile:
    header: dict
    header_bytes: int          # prefix + JSON: file size minus body_bytes
    tensors: dict              # name -> stored array (uint64 words or float32)

    @property
    def model(self):
        return self.header["model"]

    def entry(self, name):
        for e in self.header["tensors"]:
            if e["name"] == name:
                return e
        raise BnnbenchError(f"no tensor {name!r} in weights of {self.model}")

    def signs(self, name):
        """A sign_bits tensor unpacked to +1/-1 float32 in its logical shape."""
        e = self.entry(name)
        if e["encoding"] != "sign_bits":
            raise BnnbenchError(f"tensor {name!r} is {e['encoding']}, not sign_bits")
        words = self.tensors[name]
        k = int(np.prod(e["shape"][1:]))
        bits = np.unpackbits(words.astype("<u8").view(np.uint8), axis=-1, bitorder="little")
        return np.where(bits[:, :k] == 1, np.float32(1), np.float32(-1)).reshape(e["shape"])


_DTYPES = {"sign_bits": "<u8", "float32": "<f4"}


def _bad(path, why):
    return BnnbenchError(f"{path}: not a valid bnnbench weights file ({why})")


def read_weights(path):
    """Load a weights file, checking its checksum and every length and
    offset against the file; BnnbenchError naming the file otherwise."""
    try:
        data = untrusted.read_bytes(path, untrusted.MAX_WEIGHTS_BYTES)
    except untrusted.RejectedFile as exc:
        if exc.reason.startswith("cannot read: "):
            raise BnnbenchError(f"cannot read {path}: {exc.reason[len('cannot read: '):]}")
        raise _bad(path, exc.reason)
    try:
        return _parse(path, data)
    except BnnbenchError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError,
            MemoryError, AttributeError) as exc:   # what the checks did not foresee
        raise _bad(path, f"malformed header ({type(exc).__name__})")


def _dims(value, what):
    if not isinstance(value, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIM for d in value):
        raise BnnbenchError(f"{what} is not a list of sizes")
    return tuple(value)


def _parse(path, data):
    if len(data) < _PREFIX.size:
        raise _bad(path, "too short")
    magic, version, word_bits, hlen = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise _bad(path, "wrong magic")
    if version not in READABLE_VERSIONS:
        raise _bad(path, f"format version {version}, this bnnbench reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}")
    if word_bits != WORD_BITS:
        raise _bad(path, f"word bits {word_bits}")
    header_at = _PREFIX.size + (DIGEST_BYTES if version >= 2 else 0)
    start = header_at + hlen
    if start > len(data):
        raise _bad(path, "header runs past the end")
    if version >= 2:
        if hashlib.sha256(memoryview(data)[header_at:]).digest() != data[_PREFIX.size:header_at]:
            raise _bad(path, "checksum mismatch: the file is damaged")
    else:
        warnings.warn(f"{path}: weights format version 1 has no checksum; damage cannot be "
                      f"detected (export it again to add one)", stacklevel=3)
    try:
        header = untrusted.parse_json(data[header_at:start].decode("utf-8"), path)
        entries = header["tensors"]
        body_bytes = header["body_bytes"]
    except (UnicodeDecodeError, BnnbenchError, KeyError, TypeError):
        raise _bad(path, "unreadable header")
    if (header.get("format") != FORMAT or not isinstance(entries, list)
            or not isinstance(body_bytes, int) or isinstance(body_bytes, bool)):
        raise _bad(path, "unreadable header")
    if len(data) - start != body_bytes:
        raise _bad(path, f"body is {len(data) - start} bytes, header says {body_bytes}")
    body = memoryview(data)[start:]
    tensors = {}
    for e in entries:
        try:
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                raise BnnbenchError("no name")
            dtype = np.dtype(_DTYPES[e["encoding"]])
            stored_shape = _dims(e["stored_shape"], "stored_shape")
            _dims(e["shape"], "shape")
            offset, nbytes = e["offset"], e["nbytes"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, nbytes)):
                raise BnnbenchError("offset or nbytes is not an integer")
            name = e["name"]
        except (BnnbenchError, KeyError, TypeError):
            raise _bad(path, "malformed tensor entry")
        count = math.prod(stored_shape)
        if nbytes != count * dtype.itemsize or offset < 0 or offset + nbytes > body_bytes:
            raise _bad(path, f"tensor {name!r:.60} does not fit the body")
        if e["encoding"] == "sign_bits" and (
                len(e["shape"]) < 1 or len(stored_shape) != 2
                or stored_shape != (e["shape"][0], -(-math.prod(e["shape"][1:]) // WORD_BITS))):
            raise _bad(path, f"tensor {name!r:.60}: stored_shape does not match its shape")
        if e["encoding"] == "float32" and tuple(e["shape"]) != stored_shape:
            raise _bad(path, f"tensor {name!r:.60}: stored_shape does not match its shape")
        tensors[name] = np.frombuffer(body, dtype, count, offset).reshape(stored_shape).copy()
    return WeightFile(header, start, tensors)
