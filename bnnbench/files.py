"""Writing output safely: a directory checked up front with a one-line
error, and files replaced atomically (temp file in the same directory, then
rename) so a crash or Ctrl-C never leaves half a file behind."""
import os
import tempfile

from .errors import BnnbenchError


def writable_dir(path):
    """Create `path` if needed; BnnbenchError if it cannot be written."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise BnnbenchError(f"cannot create output directory {path}: {exc.strerror}")
    if not os.access(path, os.W_OK):
        raise BnnbenchError(f"output directory {path} is not writable")
    return path


def write_atomic(path, data):
    """Replace `path` with `data` (str as UTF-8, or bytes) in one rename."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
