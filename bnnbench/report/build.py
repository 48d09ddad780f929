"""Putting a report together: load, build sections, render, write files."""
import datetime
import os
from dataclasses import dataclass, field

from .. import untrusted
from ..errors import BnnbenchError
from ..escape import csv_frame
from ..files import writable_dir, write_set
from . import data, html, sections

HTML_NAME = "report.html"
# Lists the CSV files of the last report in a directory, so a new report can
# remove the ones it no longer writes (a host that left) and nothing else.
MANIFEST = ".bnnbench-report-files"


@dataclass
class ReportFiles:
    html: str
    csvs: list
    dataset: object
    skipped: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def _old_csvs(out_dir):
    """The CSV files the last report in `out_dir` wrote (its manifest)."""
    try:
        lines = untrusted.read_text(os.path.join(out_dir, MANIFEST)).splitlines()
    except untrusted.RejectedFile:
        return []
    return [os.path.join(out_dir, n) for n in (line.strip() for line in lines)
            if n and os.path.basename(n) == n and n.endswith(".csv")]


def _unique_names(all_tables):
    """CSV names, one per table; two rooms whose labels slug alike get _2."""
    used = {}
    for t in all_tables:
        stem, i = t.name or "table", 2
        while stem in used:
            stem, i = f"{t.name}_{i}", i + 1
        t.name = stem
        used[stem] = f"{stem}.csv"
    return used


def build_report(paths, out_dir="reports", all_runs=False, progress=None, title=None,
                 reference=None):
    """Read the run files under `paths` and write report.html and CSVs to
    `out_dir`. Bad files are skipped (listed in .skipped and in the page)."""
    say = progress or (lambda text: None)
    ds = data.load(paths, all_runs=all_runs)
    if not ds.runs:
        where = ", ".join(map(str, paths))
        why = f" ({len(ds.skipped)} file(s) skipped as invalid)" if ds.skipped else ""
        raise BnnbenchError(f"no bnnbench run files in {where}{why}; run `bnnbench sweep` "
                            f"on each device and pass its results/ directory")
    if reference is not None:
        ds.reference = data.host_or_error(ds, reference)
    say(f"read {len(ds.runs)} run file(s) from {len(ds.hosts)} host(s)"
        + (f"; skipped {len(ds.skipped)}" if ds.skipped else ""))
    head, rooms, tail, problems = sections.build(ds)
    say(f"drew {sum(len(s.figures) for s in head + rooms + tail)} figure(s)")
    all_tables = [t for s in head + rooms + tail for t in s.tables if not t.df.empty]
    for s in head + rooms + tail:
        s.tables = [t for t in s.tables if not t.df.empty]
    csv_names = _unique_names(all_tables)
    writable_dir(out_dir)
    contents = {}
    for t in all_tables:
        contents[os.path.join(out_dir, csv_names[t.name])] = csv_frame(t.df).to_csv(index=False)
    csvs = list(contents)
    contents[os.path.join(out_dir, MANIFEST)] = "".join(os.path.basename(p) + "\n"
                                                        for p in csvs)
    page = html.render(
        title=title or "bnnbench: binary vs float kernels across devices",
        generated_at=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        version=_version(), inputs=[str(p) for p in paths], host_count=len(ds.hosts),
        run_count=len(ds.runs), skipped=ds.skipped, notes=ds.notes, problems=problems,
        head=head, rooms=rooms, tail=tail, csv_names=csv_names)
    out = os.path.join(out_dir, HTML_NAME)
    contents[out] = page
    # Page, tables and manifest replace the last report together or not at
    # all; the last report's CSVs that this one lacks go only once it is in.
    write_set(contents, remove=_old_csvs(out_dir))
    return ReportFiles(out, csvs, ds, ds.skipped, problems)


def _version():
    from .. import __version__
    return __version__
