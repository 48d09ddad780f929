"""Run files written as a run goes: atomically (temp file + rename) after
every row, so an interrupted run keeps what it measured and says so in
"status"; a failed save marks the file failed in place (works on a full disk).
"""
import datetime
import json
import os
import subprocess
import sys
import uuid

from .. import files
from .schema import SCHEMA_VERSION, run_filename


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit():
    """The commit this code is: a source archive shipped by `bnnbench fleet`
    has no .git, so it carries the hash in bnnbench/COMMIT instead."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # bnnbench/
    try:
        with open(os.path.join(here, "COMMIT"), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        pass
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def new_run(kind, host, settings=None, command=None):
    from .. import __version__
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "run_id": uuid.uuid4().hex,
        "status": "running",
        "started_at": now_iso(),
        "finished_at": None,
        "bnnbench_version": __version__,
        "git_commit": git_commit(),
        "command": command if command is not None else " ".join(["bnnbench"] + sys.argv[1:]),
        "settings": settings or {},
        "host": host,
        "rows": [],
        # Who writes the file, and when it last did: how a report tells a
        # run still going from one whose process died (bnnbench.runs.liveness).
        "pid": os.getpid(),
        "heartbeat_at": None,
    }


def write_atomic(path, obj):
    files.write_atomic(path, json.dumps(obj, indent=1, allow_nan=False))


class RunWriter:
    """Keeps a run file on disk up to date, row by row.

    If a save fails (disk full, the directory gone read-only), the file on
    disk keeps every row saved before and its status is patched in place
    from "running" to "failed" (same length, so it works on a full disk);
    the WriteError says so in one line and later saves are no-ops."""

    def __init__(self, run, out_dir):
        self.run = run
        self.broken = False
        files.writable_dir(out_dir)
        self.path = os.path.join(out_dir, run_filename(run))
        self.save()

    def add_row(self, row):
        self.run["rows"].append(row)
        self.save()

    def finish(self, status="complete"):
        finish_run(self.run, status)
        self.save()

    def save(self):
        if self.broken:
            return
        self.run["heartbeat_at"] = now_iso()
        try:
            write_atomic(self.path, self.run)
        except files.WriteError as exc:
            self.broken = True
            kept = _mark_failed_in_place(self.path)
            raise files.WriteError(self.path, exc.reason, (
                "the rows saved before are kept and the run is marked failed" if kept
                else "no run file was written"))


def finish_run(run, status):
    """Close `run` with its final status (also for a run whose process died
    while it was "running": bnnbench fleet fetch marks it interrupted)."""
    run["status"] = status
    run["finished_at"] = now_iso()


def _mark_failed_in_place(path):
    """Status "running" -> "failed" in the file on disk, without new space.
    json.dumps(indent=1) puts the top-level key at one space of indent."""
    try:
        return files.patch_in_place(path, b'\n "status": "running",',
                                    b'\n "status": "failed" ,')
    except OSError:
        return False
