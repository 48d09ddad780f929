"""Putting a report together: load, build sections, render, write files."""
import datetime
import os
import re
from dataclasses import dataclass, field

from ..errors import BnnbenchError
from ..files import writable_dir, write_atomic
from . import data, html, sections

HTML_NAME = "report.html"
# Lists the CSV files of the last report in a directory, so a new report can
# remove the ones it no longer writes (a host that left) and nothing else.
MANIFEST = ".bnnbench-report-files"
_FORMULA = re.compile(r"^[=+\-@\t\r]")


@dataclass
class ReportFiles:
    html: str
    csvs: list
    dataset: object
    skipped: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def _csv_safe(df):
    """Spreadsheets run a cell that starts with = + - @ as a formula; a string
    from another host's file must not. Numbers are left alone."""
    def fix(v):
        if isinstance(v, str) and _FORMULA.match(v):
            try:
                float(v)
                return v
            except ValueError:
                return "'" + v
        return v
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("str", "string"):
            out[col] = out[col].map(fix).astype(object)
    out.columns = [fix(str(c)) for c in out.columns]
    return out


def _prepare_out(out_dir):
    writable_dir(out_dir)
    manifest = os.path.join(out_dir, MANIFEST)
    try:
        with open(manifest, encoding="utf-8") as fh:
            old = [line.strip() for line in fh if line.strip()]
    except OSError:
        old = []
    for name in old:
        if os.path.basename(name) == name and name.endswith(".csv"):
            try:
                os.unlink(os.path.join(out_dir, name))
            except OSError:
                pass


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
    _prepare_out(out_dir)
    csvs = []
    for t in all_tables:
        path = os.path.join(out_dir, csv_names[t.name])
        write_atomic(path, _csv_safe(t.df).to_csv(index=False))
        csvs.append(path)
    write_atomic(os.path.join(out_dir, MANIFEST),
                "".join(os.path.basename(p) + "\n" for p in csvs))
    page = html.render(
        title=title or "bnnbench: binary vs float kernels across devices",
        generated_at=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        version=_version(), inputs=[str(p) for p in paths], host_count=len(ds.hosts),
        run_count=len(ds.runs), skipped=ds.skipped, notes=ds.notes, problems=problems,
        head=head, rooms=rooms, tail=tail, csv_names=csv_names)
    out = os.path.join(out_dir, HTML_NAME)
    write_atomic(out, page)
    return ReportFiles(out, csvs, ds, ds.skipped, problems)


def _version():
    from .. import __version__
    return __version__
