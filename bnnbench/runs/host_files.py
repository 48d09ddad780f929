"""Host files: what `bnnbench host --probe --format json` prints (a host's
fingerprint and its probed peaks) kept as a file of its own beside the run
files, named host-LABEL-YYYYmmddTHHMMSS.json (UTC). `bnnbench fleet run
--host-probe` fetches one per device.

A host file is not a run (it has no rows): the run loaders pass over it
without a warning (schema.NotARunFile), the report with one note. Fetched
from a device it is untrusted input, checked here before it is kept: the
size, UTF-8 and nesting limits of bnnbench.untrusted, then its shape.
"""
import math
import re
import time

from .. import untrusted
from ..files import safe_name
from ..untrusted import RejectedFile

PREFIX = "host-"
NAME = re.compile(r"host-[A-Za-z0-9._-]+-[0-9]{8}T[0-9]{6}\.json")
# What every fingerprint holds (hostinfo.fingerprint) and no run file has
# at its top level: how a host file is told from a run.
TEXT_FIELDS = ("label", "hostname", "arch", "cpu_brand")
NOT_A_RUN = "a host fingerprint (bnnbench host output), not a run"


STAMP = "%Y%m%dT%H%M%S"  # UTC, as in run file names


def filename(label, when=None, stamp=None):
    """The host file's name; `stamp` in place of the time of `when` (now)."""
    stamp = stamp or time.strftime(STAMP, time.gmtime(when))
    return f"{PREFIX}{safe_name(label)}-{stamp}.json"


def is_for(name, label):
    """True if `name` is a host file of the device labelled `label` (entries
    of one machine may share a workdir, and so its files)."""
    return re.fullmatch(rf"{PREFIX}{re.escape(safe_name(label))}-[0-9]{{8}}T[0-9]{{6}}\.json",
                        name) is not None


def looks_like(obj):
    """True for a fingerprint as `bnnbench host --format json` prints it."""
    return (isinstance(obj, dict) and "rows" not in obj and "schema_version" not in obj
            and all(isinstance(obj.get(k), str) for k in TEXT_FIELDS)
            and isinstance(obj.get("build"), dict))


def _number(v):
    return (v is None or isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) and v >= 0)


def _probe_problem(probe):
    """Why `probe` is not the probe's output, or None."""
    if not isinstance(probe, dict):
        return "no probe (bnnbench host --probe was asked for)"
    per = probe.get("threads")
    if not isinstance(per, dict) or not per:
        return "probe.threads missing or empty"
    for t, peaks in per.items():
        if not t.isdigit() or not isinstance(peaks, dict):
            return f"probe.threads[{t!r:.20}] is not a thread count's peaks"
        bad = [k for k, v in peaks.items() if not _number(v)]
        if bad:
            return f"probe.threads[{t}].{bad[0]:.40} is not a non-negative number"
    if not isinstance(probe.get("unreliable"), (str, type(None))):
        return "probe.unreliable must be text"
    return None


def validate(obj, path, label=None, probe=False):
    """`obj` if it is a fingerprint (labelled `label`, holding a probe if
    `probe`), else RejectedFile naming `path` and why."""
    if not looks_like(obj):
        raise RejectedFile(path, f"not the output of bnnbench host (expected an object with "
                                 f"{', '.join(TEXT_FIELDS)} and build)")
    if label is not None and obj["label"] != label:
        raise RejectedFile(path, f"labelled {obj['label']!r:.40}, not {label!r}")
    why = _probe_problem(obj.get("probe")) if probe else None
    if why:
        raise RejectedFile(path, why)
    return obj


def parse(raw, path, label=None, probe=False):
    """A host file's bytes from elsewhere (a device), checked."""
    return validate(untrusted.parse_bytes(raw, path), path, label, probe)
