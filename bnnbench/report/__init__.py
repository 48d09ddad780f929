"""One report from the run files of many hosts: an HTML page and its tables as CSV.

    bnnbench.report.build.build_report(paths, out_dir, all_runs=False) -> ReportFiles

The page is self-contained (figures are base64 PNG, styles inline, a
content security policy forbids any fetch), so it opens offline and can be
mailed around. It never re-runs a kernel: it only reads run files.

This package face imports nothing: the terminal tables (terminal.py) and
the data steps serve `bnnbench sweep` and `compare` on hosts that never make
a page, so they must not pull in the page's jinja2 and matplotlib.
"""
