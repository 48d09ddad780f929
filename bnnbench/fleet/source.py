"""What the fleet ships: `git archive` of the checkout's current commit,
with the hash written into bnnbench/COMMIT so run files made from it name
the commit (the archive has no .git). Uncommitted changes are never
shipped: a dirty tree gets a warning saying which commit the devices run."""
import dataclasses
import io
import os
import subprocess
import tarfile

from ..errors import BnnbenchError

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Source:
    commit: str
    archive: bytes
    dirty: bool

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


def current():
    """The Source of this checkout's HEAD."""
    root = checkout_root()
    commit = _git(root, "rev-parse", "HEAD").decode().strip()
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no").strip())
    buf = io.BytesIO(_git(root, "archive", "--format=tar", commit))
    with tarfile.open(fileobj=buf, mode="a") as tar:
        info = tarfile.TarInfo("bnnbench/COMMIT")
        data = (commit + "\n").encode()
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return Source(commit, buf.getvalue(), dirty)
