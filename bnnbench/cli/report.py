"""bnnbench report: one HTML page (and CSV tables) from the runs of many hosts."""
import os
import sys

from ..errors import BnnbenchError
from ..escape import terminal


def register(sub):
    p = sub.add_parser(
        "report", help="one HTML report (plus CSV tables) from run files of any number of hosts",
        description=(
            "Read run files (files or directories, searched recursively for *.json) from any "
            "number of hosts (asv results directories too) and write one self-contained HTML "
            "page that opens offline: the answer first, a comparison across devices, a room per "
            "device (its fingerprint and figures; emulated hosts marked), then model size, "
            "accuracy, per-layer profiles, asv history across commits and published reference "
            "figures. Every table is also written as CSV "
            "beside the page. Speedups are always ratios inside one run on one host. Files "
            "that are corrupt or from an unknown schema are skipped with a warning. Where a "
            "host has several runs of the same shape and thread count, the newest is used "
            "(the page lists which) unless --all-runs."))
    p.add_argument("paths", nargs="*", metavar="PATH", default=None,
                   help="run files or directories (default: results/)")
    p.add_argument("--out", default="reports", metavar="DIR",
                   help="directory for report.html and the CSV files (default: reports/)")
    p.add_argument("--all-runs", action="store_true",
                   help="aggregate every run of a host (medians over runs) instead of using "
                        "the newest run of each shape")
    p.add_argument("--reference", default=None, metavar="HOST",
                   help="host the throughput ratios divide by (default: the real host with "
                        "the most rows)")
    p.add_argument("--title", default=None, help="title of the page")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args):
    paths = args.paths or ["results"]
    if not args.paths and not os.path.isdir("results"):
        raise BnnbenchError("no results/ directory here: run `bnnbench sweep` first, or pass "
                            "run files or directories")
    write_report(paths, args.out, all_runs=args.all_runs, quiet=args.quiet, title=args.title,
                 reference=args.reference)
    return 0


def write_report(paths, out, all_runs=False, quiet=False, title=None, reference=None):
    """Build the report of `paths` into `out`, saying what it skipped and where it is."""
    from ..report.build import build_report  # matplotlib only when a report is made
    say = (lambda text: None) if quiet else (
        lambda text: print(f"bnnbench report: {text}", file=sys.stderr))
    try:
        files = build_report(paths, out, all_runs=all_runs, progress=say,
                             title=title, reference=reference)
    except FileNotFoundError as exc:  # pragma: no cover - raced with a deleted file
        raise BnnbenchError(f"{exc.filename}: vanished while reading")
    for path, reason in files.skipped:
        print(f"bnnbench report: warning: skipped {terminal(path)}: {terminal(reason)}",
              file=sys.stderr)
    for problem in files.problems:
        print(f"bnnbench report: warning: {terminal(problem)}", file=sys.stderr)
    ds = files.dataset
    print(f"report: {terminal(os.path.abspath(files.html))} ({len(ds.hosts)} hosts, "
          f"{len(ds.runs)} runs, {len(files.csvs)} CSV tables beside it)")
    return files
