"""The pinned versions installs take (constraints/, Makefile: PIN) agree with
what pyproject.toml asks for, so a pin can never hold back a requirement."""
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ImportError:    # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FILES = {"main": ("test",), "peers": ("test", "peers"), "build": ()}
# The host the pins were recorded on (tools/constraints.py writes its marker).
PINNED_HOST = {"python_version": "3.11", "platform_machine": "x86_64", "sys_platform": "linux"}


def pins(name):
    """{canonical name: Requirement} of constraints/<name>.txt."""
    out = {}
    for line in (ROOT / "constraints" / f"{name}.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==" and req.marker.evaluate(PINNED_HOST), line
            out[canonicalize_name(req.name)] = req
    return out


def pinned_version(req):
    return next(iter(req.specifier)).version


@pytest.mark.parametrize("name", FILES)
def test_pins_meet_pyproject(name):
    have = pins(name)
    wanted = (PYPROJECT["build-system"]["requires"] if name == "build" else
              PYPROJECT["project"]["dependencies"]
              + [r for extra in FILES[name] for r in PYPROJECT["project"]["optional-dependencies"][extra]])
    checked = 0
    for line in wanted:
        req = Requirement(line)
        # A requirement the pinned host does not have (tomli on Python < 3.11,
        # tensorflow off x86_64) needs no pin.
        if req.marker is not None and not req.marker.evaluate(PINNED_HOST):
            continue
        pin = have.get(canonicalize_name(req.name))
        assert pin is not None, f"constraints/{name}.txt pins no {req.name}"
        assert req.specifier.contains(pinned_version(pin), prereleases=True), \
            f"constraints/{name}.txt: {pin.name}=={pinned_version(pin)} is outside {line!r}"
        checked += 1
    assert checked


def test_build_pins_are_the_venvs():
    """The kernels' C comes from the build environment's Cython and numpy in
    `pip install` and from the venv's in the alternate builds: the same ones."""
    main = pins("main")
    for key, req in pins("build").items():
        assert pinned_version(main[key]) == pinned_version(req), req.name
