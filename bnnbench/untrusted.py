"""Reading files bnnbench did not write: results directories copied in from
other devices, asv results, weight files.

One policy for all of them:

- Only regular files are read. A FIFO would block forever, a device such as
  /dev/zero never ends, so anything else (after following symlinks) is
  rejected with a reason, and the check is repeated on the open descriptor.
- At most MAX_FILE_BYTES (256 MiB; MAX_WEIGHTS_BYTES for weight files) is
  read from one file; a larger file is rejected before it is read.
- Directories are walked with symlinks followed once: a directory already
  visited (two links to ".", a link to a parent) is skipped with a warning,
  so the walk always ends.
- JSON nested deeper than MAX_JSON_DEPTH is rejected; no reader recurses
  through it afterwards.

Every rejection is a RejectedFile naming the file and the reason.
"""
import json
import os
import stat
import warnings

from .errors import BnnbenchError

MAX_FILE_BYTES = 256 * 2**20      # a sweep of ~100k rows with all its samples
MAX_WEIGHTS_BYTES = 4 * 2**30     # the largest model zoo file is ~50 MB
MAX_JSON_DEPTH = 64               # run files nest 5 levels; asv results 4


class RejectedFile(BnnbenchError):
    """A file that cannot be used, with its path and why."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _kind(mode):
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path, limit=None):
    """The bytes of regular file `path`, at most `limit` (default MAX_FILE_BYTES)."""
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise block.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise RejectedFile(path, f"cannot read: {exc.strerror}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RejectedFile(path, f"{_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise RejectedFile(path, f"{st.st_size} bytes, over the {limit}-byte limit "
                                     f"for one file")
        chunks, size = [], 0
        while True:    # a file growing while read is still cut at the limit
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise RejectedFile(path, f"grew past the {limit}-byte limit while read")
        return b"".join(chunks)
    except OSError as exc:
        raise RejectedFile(path, f"cannot read: {exc.strerror}")
    finally:
        os.close(fd)


def read_text(path, limit=None):
    try:
        return read_bytes(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedFile(path, "not UTF-8 text")


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed")


def json_depth_ok(obj, limit=MAX_JSON_DEPTH):
    """True if `obj` nests at most `limit` containers deep (no recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return False
        stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return True


def parse_json(text, path, allow_nan=False):
    """Parsed JSON of `text` (from `path`), or RejectedFile saying why not."""
    try:
        obj = json.loads(text, **({} if allow_nan else {"parse_constant": _reject_constant}))
    except RecursionError:
        raise RejectedFile(path, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    except ValueError as exc:
        raise RejectedFile(path, f"not valid JSON ({str(exc).splitlines()[0]})")
    if not json_depth_ok(obj):
        raise RejectedFile(path, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


def parse_bytes(raw, path):
    """Parsed JSON of bytes that arrived some other way than from a local
    file (bnnbench fleet reads them from a device), under the same limits."""
    if len(raw) > MAX_FILE_BYTES:
        raise RejectedFile(path, f"{len(raw)} bytes, over the {MAX_FILE_BYTES}-byte limit "
                                 f"for one file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedFile(path, "not UTF-8 text")
    return parse_json(text, path)


def read_json(path, allow_nan=False):
    """A JSON file read under this module's rules. allow_nan for asv's files,
    which write NaN for a skipped benchmark."""
    return parse_json(read_text(path), path, allow_nan)


def warn_skip(path, reason):
    warnings.warn(f"skipping {path}: {reason}", stacklevel=3)


def walk(root, suffix=".json", on_skip=warn_skip):
    """Paths under directory `root` whose name ends with `suffix`, sorted,
    regular files only; on_skip(path, reason) hears of loops and special
    files (by default a warning)."""
    found, seen = [], set()
    pending = [root]
    while pending:
        top = pending.pop()
        try:
            st = os.stat(top)
            if (st.st_dev, st.st_ino) in seen:
                on_skip(top, "a link back to a directory already read")
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except OSError as exc:
            on_skip(top, f"cannot list: {exc.strerror}")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue   # hidden, as for a shell glob: temporaries, .git
            wanted = entry.name.endswith(suffix)
            try:
                is_dir = entry.is_dir()
                mode = os.stat(entry.path).st_mode if wanted and not is_dir else None
            except OSError as exc:   # a dangling link, a permission problem
                if wanted:
                    on_skip(entry.path, f"cannot read: {exc.strerror}")
                continue
            if is_dir:
                pending.append(entry.path)
            elif mode is not None:
                if stat.S_ISREG(mode):
                    found.append(entry.path)
                else:
                    on_skip(entry.path, f"{_kind(mode)}, not a regular file")
    return sorted(found)
