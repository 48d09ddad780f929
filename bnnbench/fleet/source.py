"""What the fleet ships to its devices, which build it with their own compiler.

Two ways, one archive format (a tar with bnnbench/COMMIT in it when the
commit is known, so run files made from it name the commit; the archive
has no .git):

- from a git clone (`pip install -e .`): `git archive` of the checkout's
  current commit. Uncommitted changes are never shipped: a dirty tree gets
  a warning saying which commit the devices run.
- from any other install (`pip install 'bnnbench[fleet]'`, an unpacked
  source tree): an sdist-like archive of what is installed: the package's
  source files (.py, templates: build products such as .so, .c and
  __pycache__ left out), the kernel sources (.pyx, .pxd, .h of
  kernels_pyx/, which a wheel carries inside the package), and setup.py,
  pyproject.toml and README.md. The commit
  is the one it came from when known: bnnbench/COMMIT (an archive a fleet
  shipped before), pip's direct_url.json (pip install git+URL@REV), or the
  enclosing git tree; else the archive is named by its content's hash.
  A piece the build needs that the install lacks is one line naming it.
"""
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import tarfile

from ..errors import BnnbenchError

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Files of an installed package that are build products, not source.
SKIP_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".pyc", ".pyo", ".c", ".o")
KERNEL_SUFFIXES = (".pyx", ".pxd", ".h")
BUILD_FILES = ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "LICENSE")
NEEDED_BUILD_FILES = ("setup.py", "pyproject.toml", "README.md")


@dataclasses.dataclass(frozen=True)
class Source:
    commit: str            # the commit shipped, or "installed-<hash>" when unknown
    archive: bytes
    dirty: bool
    origin: str = "git"    # "git" (git archive of a clone) or "installed"

    @property
    def name(self):
        return f"bnnbench-{self.commit}.tar"


def _git(root, *args):
    try:
        proc = subprocess.run(["git", "-C", root, *args], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BnnbenchError(f"bnnbench fleet ships a git checkout's source, and git failed: {exc}")
    if proc.returncode != 0:
        raise BnnbenchError(f"bnnbench fleet ships the source of a git checkout, and this "
                            f"bnnbench ({PACKAGE_DIR}) is not in one: run it from a clone "
                            f"(pip install -e .)")
    return proc.stdout


def checkout_root():
    root = os.path.dirname(PACKAGE_DIR)
    top = _git(root, "rev-parse", "--show-toplevel").decode().strip()
    if os.path.realpath(top) != os.path.realpath(root):
        raise BnnbenchError(f"bnnbench fleet ships the source of a git checkout, and this "
                            f"bnnbench ({PACKAGE_DIR}) is not at the top of one")
    return root


def _in_checkout():
    root = os.path.dirname(PACKAGE_DIR)
    if not os.path.exists(os.path.join(root, ".git")):
        return False
    try:
        checkout_root()
    except BnnbenchError:
        return False
    return True


def current():
    """The Source to ship: the clone's HEAD from a git checkout, else what
    is installed."""
    if _in_checkout():
        return from_checkout()
    return from_install()


def _add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def from_checkout():
    """The Source of this checkout's HEAD."""
    root = checkout_root()
    commit = _git(root, "rev-parse", "HEAD").decode().strip()
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no").strip())
    buf = io.BytesIO(_git(root, "archive", "--format=tar", commit))
    with tarfile.open(fileobj=buf, mode="a") as tar:
        _add_bytes(tar, "bnnbench/COMMIT", (commit + "\n").encode())
    return Source(commit, buf.getvalue(), dirty, "git")


# ------------------------------------------------------ from a plain install

def _package_files(package_dir):
    """(archive name, path) of the package's source files, sorted."""
    out = []
    for top, dirs, names in os.walk(package_dir):
        # A wheel's kernels_pyx/ is shipped as the archive's own kernels_pyx/.
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "kernels_pyx")
                         and not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or name.endswith(SKIP_SUFFIXES) or name == "COMMIT":
                continue
            path = os.path.join(top, name)
            if os.path.isfile(path):
                rel = os.path.relpath(path, os.path.dirname(package_dir))
                out.append((rel.replace(os.sep, "/"), path))
    return out


def _kernel_dir(package_dir):
    """Where the kernel sources are: kernels_pyx/ beside the package (a
    source tree) or inside it (an install that carries them); None if
    neither."""
    for d in (os.path.join(os.path.dirname(package_dir), "kernels_pyx"),
              os.path.join(package_dir, "kernels_pyx")):
        if os.path.isdir(d) and any(n.endswith(".pyx") for n in os.listdir(d)):
            return d
    return None


def _distribution():
    try:
        from importlib import metadata
        return metadata.distribution("bnnbench")
    except Exception:   # not installed through pip: a source tree on sys.path
        return None


def _build_file(name, package_dir, dist):
    """The bytes of setup.py / pyproject.toml / README.md: from beside the
    package (a source tree), from bnnbench/kernels_pyx/ (a built wheel
    carries them there, see setup.py's BuildPy), else (README only) from the
    installed metadata."""
    for path in (os.path.join(os.path.dirname(package_dir), name),
                 os.path.join(package_dir, "kernels_pyx", name)):
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                return fh.read()
    if name == "README.md" and dist is not None:
        text = dist.metadata.get_payload() if hasattr(dist.metadata, "get_payload") else None
        return (text or "bnnbench\n").encode()
    return None


def installed_commit(package_dir=PACKAGE_DIR, dist=None):
    """The commit an installed bnnbench came from, or None if unknown."""
    try:
        with open(os.path.join(package_dir, "COMMIT"), encoding="utf-8") as fh:
            commit = fh.read().strip()
            if commit:
                return commit
    except OSError:
        pass
    dist = dist if dist is not None else _distribution()
    if dist is not None:
        try:
            info = json.loads(dist.read_text("direct_url.json") or "{}")
            commit = (info.get("vcs_info") or {}).get("commit_id")
            if isinstance(commit, str) and commit:
                return commit
        except (ValueError, AttributeError):
            pass
    try:
        proc = subprocess.run(["git", "-C", package_dir, "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def from_install(package_dir=PACKAGE_DIR):
    """An sdist-like Source of the installed package (see the module doc)."""
    dist = _distribution()
    kernels = _kernel_dir(package_dir)
    build = {name: _build_file(name, package_dir, dist) for name in BUILD_FILES}
    missing = ([] if kernels else ["the kernel sources (kernels_pyx/*.pyx)"]) + \
        [name for name in NEEDED_BUILD_FILES if build[name] is None]
    if missing:
        raise BnnbenchError(
            f"bnnbench fleet ships the installed source for the devices to build, and this "
            f"install ({package_dir}) lacks {', '.join(missing)}: install from a source tree "
            f"or a clone (pip install -e .), or run from one")
    members = _package_files(package_dir)
    members += [(f"kernels_pyx/{n}", os.path.join(kernels, n)) for n in sorted(os.listdir(kernels))
                if n.endswith(KERNEL_SUFFIXES) and os.path.isfile(os.path.join(kernels, n))]
    commit = installed_commit(package_dir, dist)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in BUILD_FILES:
            if build[name] is not None:
                _add_bytes(tar, name, build[name])
        for name, path in members:
            with open(path, "rb") as fh:
                _add_bytes(tar, name, fh.read())
        if commit:
            _add_bytes(tar, "bnnbench/COMMIT", (commit + "\n").encode())
    data = buf.getvalue()
    ident = commit or f"installed-{hashlib.sha256(data).hexdigest()[:16]}"
    return Source(ident, data, False, "installed")
