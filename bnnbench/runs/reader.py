"""Reading runs: run files, asv results and host files told apart, each
validated before anything reads it, and the rest skipped with a warning.
"""
import os
import warnings

from .. import untrusted
from ..errors import BnnbenchError
from . import asv
from .frame import runs_to_frame
from .schema import NotARunFile, RunFileError, validate_run


def load_run(path):
    """Read and validate one run file; RunFileError names the file and reason.
    A file in an asv results directory is read by bnnbench.runs.asv."""
    if asv.is_results_file(path):
        run = asv.load_run(path)
        if run is not None:
            return run
    return validate_run(untrusted.read_json(path), path)


def expand_paths(paths, on_skip=untrusted.warn_skip):
    """Files as given; directories searched recursively for *.json (by
    untrusted.walk: regular files only, loops and FIFOs reported to
    on_skip), less asv's own machine.json and benchmarks.json (asv's
    results are runs too)."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [f for f in untrusted.walk(p, ".json", on_skip) if not asv.is_bookkeeping(f)]
        elif os.path.exists(p):
            files.append(p)
        else:
            raise BnnbenchError(f"no such file or directory: {p}")
    return files


def load_runs(paths, kinds=None):
    """Load every valid run under `paths`; warn about and skip the rest."""
    runs = []
    for path in expand_paths(paths):
        try:
            run = load_run(path)
        except NotARunFile:
            continue
        except RunFileError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        if kinds is None or run["kind"] in kinds:
            run["_path"] = path
            runs.append(run)
    return runs


def load_frame(paths, kinds=None):
    return runs_to_frame(load_runs(paths, kinds))
