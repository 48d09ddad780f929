"""Record what a venv has installed as a pip constraints file (Makefile: PIN).

usage: VENV/bin/python tools/constraints.py OUT [NAME ...]

Every line carries a marker for this Python minor version, machine and OS:
the set was tested there, and elsewhere pip resolves freely rather than
fail on a pin with no wheel. NAMEs keep only those packages (the build
environment's). bnnbench itself, an editable install, is left out.
"""
import platform
import re
import subprocess
import sys
from pathlib import Path

HEADER = """\
# The versions `make test` passed with, for `pip install -c` (Makefile: PIN).
# Written from {venv} by tools/constraints.py, not by hand: after
# `make clean test PIN=0` passes, `make constraints` writes them again.
"""


def canonical(name):
    """A package name as PEP 503 compares them (tf_keras is tf-keras)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def main(out, names):
    where = (f'python_version == "{sys.version_info[0]}.{sys.version_info[1]}" and '
             f'platform_machine == "{platform.machine()}" and sys_platform == "{sys.platform}"')
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                            check=True, capture_output=True, text=True).stdout.split()
    keep = {canonical(n) for n in names}
    pins = [p for p in frozen if "==" in p and (not keep or canonical(p.split("==")[0]) in keep)]
    missing = keep - {canonical(p.split("==")[0]) for p in pins}
    if missing:
        sys.exit(f"constraints: {out}: not installed in {sys.prefix}: {sorted(missing)}")
    venv = Path(sys.prefix).name
    text = HEADER.format(venv=venv) + "".join(f"{p} ; {where}\n" for p in pins)
    tmp = Path(out + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    print(f"{out}: {len(pins)} pins for {where}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__.strip())
    main(sys.argv[1], sys.argv[2:])
