"""The tables a fleet command ends with: one row per device."""
import os

import pandas as pd

from ..escape import terminal
from ..report.terminal import format_table


def _wall(seconds):
    if seconds is None:
        return "-"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def _gib(n):
    return "-" if n is None else f"{n / 2**30:.1f} GiB"


def _file(path):
    return os.path.relpath(path) if path else "-"


def outcome_table(outcomes):
    """device, status, rows, wall time, run file (run and fetch), and the
    host file where a device has one (--host-probe)."""
    table = pd.DataFrame({
        "device": [o.label for o in outcomes],
        "status": [o.status for o in outcomes],
        "rows": [("-" if o.rows is None else str(o.rows)) for o in outcomes],
        "wall": [_wall(o.wall_s) for o in outcomes],
        "run file": [_file(o.run_file) for o in outcomes],
    })
    if any(o.host_file for o in outcomes):
        table["host file"] = [_file(o.host_file) for o in outcomes]
    return table


def check_table(outcomes):
    """What each device has, before anyone waits for a sweep."""
    rows = []
    for o in outcomes:
        r = o.extra
        rows.append({
            "device": o.label, "status": o.status,
            "python": r.get("python", "-"),
            "venv": {True: "yes", False: "no"}.get(r.get("venv"), "-"),
            "compiler": r.get("compiler") or "-",
            "arch": r.get("arch", "-"), "cores": str(r.get("cores", "-")),
            "mem free": _gib(r.get("mem_free")), "disk free": _gib(r.get("disk_free")),
            "lock": {True: "busy", False: "free"}.get(r.get("busy"), "-"),
            "built": (r.get("built") or "-")[:12],
        })
    return pd.DataFrame(rows)


def _cell(value, width=60):
    """A cell a device may have written (python, compiler, arch): its
    controls shown as escapes, cut to `width` characters."""
    text = terminal(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def show(table):
    """The table as text; every string cell goes through escape.terminal."""
    table = table.copy()
    for col in table.columns:
        if table[col].dtype == object:
            table[col] = table[col].map(lambda v: _cell(v) if isinstance(v, str) else v)
    return format_table(table)
