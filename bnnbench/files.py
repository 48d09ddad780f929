"""Writing output safely.

- writable_dir(): a directory checked up front with a one-line error.
- write_set(): several files (a report's page, CSVs and manifest) committed
  as one: every file is first written to a temporary beside its target;
  only when all of them are on disk are they renamed into place. If a write
  fails (disk full, a read-only or directory-shaped target), only this
  call's temporaries are removed and every target keeps its previous
  version; if a rename fails half-way, the targets already replaced get
  their previous versions back. write_atomic() is the one-file case.
- Files are created with the permissions the umask gives (0666 & ~umask),
  as open() would, not mkstemp's 0600: a report in a group directory or
  under a web server stays readable.

Failures raise WriteError: one line naming the file and the reason.
"""
import os
import re
import stat
import tempfile

from .errors import BnnbenchError


def safe_name(text):
    """`text` (a host label, say) as a file name part: no path, no odd characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "host"


class WriteError(BnnbenchError):
    def __init__(self, path, reason, consequence=""):
        super().__init__(f"cannot write {path}: {reason}"
                         + (f"; {consequence}" if consequence else ""))
        self.path, self.reason = path, reason


def writable_dir(path):
    """Create `path` if needed; BnnbenchError if it cannot be written."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise BnnbenchError(f"cannot create output directory {path}: {exc.strerror}")
    if not os.access(path, os.W_OK):
        raise BnnbenchError(f"output directory {path} is not writable")
    return path


def file_mode():
    """0666 less the process umask: what open() would create."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _check_target(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WriteError(path, exc.strerror)
    if stat.S_ISDIR(st.st_mode):
        raise WriteError(path, "it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise WriteError(path, "it is not a regular file")


def _write_temp(path, data, mode):
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _backup(path):
    """A hard link to the current `path` (no data copied), or None."""
    if not os.path.isfile(path):
        return None
    name = os.path.join(os.path.dirname(os.path.abspath(path)),
                        f".bak-{os.getpid()}-{os.path.basename(path)}")
    _remove(name)
    try:
        os.link(path, name)
    except OSError:
        return None
    return name


def write_set(contents, remove=()):
    """Write {path: str or bytes} as one: all files or none. `remove`: files
    the new set no longer has (a previous report's CSVs), deleted only
    after the set is in place."""
    mode = file_mode()
    items = [(path, data.encode("utf-8") if isinstance(data, str) else data)
             for path, data in contents.items()]
    for path, _ in items:
        _check_target(path)
    temps = []
    try:
        for path, data in items:
            try:
                temps.append((path, _write_temp(path, data, mode)))
            except OSError as exc:
                raise WriteError(path, exc.strerror, "nothing was replaced")
        _commit(temps)
    except BaseException:
        for _, tmp in temps:
            _remove(tmp)
        raise
    for path in remove:
        if path not in contents:
            _remove(path)


def _commit(temps):
    done = []   # (path, backup or None, existed) already replaced
    try:
        for path, tmp in temps:
            existed = os.path.lexists(path)
            backup = _backup(path) if len(temps) > 1 else None
            try:
                os.replace(tmp, path)
            except OSError as exc:
                _remove(backup) if backup else None
                raise WriteError(path, exc.strerror, "the previous files are left as they were")
            done.append((path, backup, existed))
    except BaseException:
        for path, backup, existed in reversed(done):
            if backup:
                os.replace(backup, path)
            elif not existed:
                _remove(path)
        raise
    for _, backup, _ in done:
        if backup:
            _remove(backup)


def write_atomic(path, data):
    """Replace `path` with `data` (str as UTF-8, or bytes) in one rename."""
    write_set({path: data})


def patch_in_place(path, old, new):
    """Overwrite the first `old` in `path` with `new` of the same length,
    without allocating: what still works on a full disk."""
    if len(old) != len(new):
        raise ValueError("patch must keep the length")
    with open(path, "r+b") as fh:
        data = fh.read()
        at = data.find(old)
        if at < 0:
            return False
        fh.seek(at)
        fh.write(new)
        fh.flush()
        os.fsync(fh.fileno())
    return True
