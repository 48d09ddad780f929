"""One report from the run files of many hosts: an HTML page and its tables as CSV.

    build_report(paths, out_dir, all_runs=False) -> ReportFiles

The page is self-contained (figures are base64 PNG, styles inline, a
content security policy forbids any fetch), so it opens offline and can be
mailed around. It never re-runs a kernel: it only reads run files.
"""
from .build import ReportFiles, build_report

__all__ = ["ReportFiles", "build_report"]
