"""The fleet inventory: a TOML file with one [[device]] table per device,
and an optional [defaults] table whose keys every device inherits.

    [defaults]
    identity_file = "~/.ssh/id_ed25519"

    [[device]]
    label = "rpi4"                 # the run file's label and the report room
    host = "raspberrypi.local"     # or an alias from ~/.ssh/config
    port = 22
    user = "pi"
    env = { BNNBENCH_PORTABLE = "1" }

Every mistake is one BnnbenchError line naming the file, the device and the key.
"""
import dataclasses
import os
import sys

from .. import untrusted
from ..errors import BnnbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

MAX_INVENTORY_BYTES = 1 << 20   # a thousand devices take ~300 kB
DEFAULT_WORKDIR = "~/bnnbench-fleet"
# One lock per user and machine: two inventory entries that reach the same
# machine never benchmark at once, whatever their workdirs.
DEFAULT_LOCK = "~/.bnnbench-fleet.lock"


@dataclasses.dataclass(frozen=True)
class Device:
    label: str
    host: str
    port: int = None
    user: str = None
    identity_file: str = None
    known_hosts: str = None
    workdir: str = DEFAULT_WORKDIR
    python: str = "python3"
    env: dict = dataclasses.field(default_factory=dict)
    lock: str = DEFAULT_LOCK
    timeout: float = None
    sweep_args: tuple = ()

    @property
    def address(self):
        return f"{self.host}:{self.port}" if self.port else self.host


def _is_str(v):
    return isinstance(v, str) and v != ""


def _is_port(v):
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535


def _is_env(v):
    return isinstance(v, dict) and all(isinstance(k, str) and k and isinstance(x, str)
                                       for k, x in v.items())


def _is_timeout(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _is_args(v):
    return isinstance(v, list) and all(isinstance(a, str) for a in v)


# key -> (check, what a good value is)
KEYS = {
    "label": (_is_str, "a non-empty string"),
    "host": (_is_str, "a non-empty string"),
    "port": (_is_port, "an integer 1-65535"),
    "user": (_is_str, "a non-empty string"),
    "identity_file": (_is_str, "a path"),
    "known_hosts": (_is_str, "a path"),
    "workdir": (_is_str, "a path on the device"),
    "python": (_is_str, "a command on the device"),
    "env": (_is_env, "a table of strings, e.g. { BNNBENCH_PORTABLE = \"1\" }"),
    "lock": (_is_str, "a path on the device"),
    "timeout": (_is_timeout, "a positive number of seconds"),
    "sweep_args": (_is_args, "a list of strings, e.g. [\"--threads\", \"1,4\"]"),
}
REQUIRED = ("label", "host")
LOCAL_PATHS = ("identity_file", "known_hosts")


def parse(text, name="<inventory>"):
    """Devices from TOML text; BnnbenchError on the first problem."""
    if tomllib is None:  # pragma: no cover
        raise BnnbenchError("reading the inventory needs tomli on Python < 3.11: "
                            "pip install 'bnnbench[fleet]'")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BnnbenchError(f"{name}: invalid TOML: {exc}")
    extra = sorted(set(doc) - {"device", "defaults"})
    if extra:
        raise BnnbenchError(f"{name}: unknown top-level key {extra[0]!r} "
                            f"(expected [[device]] tables and an optional [defaults])")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise BnnbenchError(f"{name}: [defaults] must be a table")
    _check_keys(defaults, f"{name}: [defaults]", skip=("label", "host"))
    tables = doc.get("device")
    if not tables:
        raise BnnbenchError(f"{name}: no devices (add a [[device]] table with label and host)")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise BnnbenchError(f"{name}: 'device' must be [[device]] tables")
    devices, seen = [], {}
    for i, table in enumerate(tables, 1):
        where = f"{name}: device {i}" + (f" ({table['label']})" if _is_str(table.get("label"))
                                         else "")
        merged = {**defaults, **table}
        for key in REQUIRED:
            if key not in merged:
                raise BnnbenchError(f"{where}: missing {key!r}")
        _check_keys(merged, where)
        label = merged["label"]
        if label in seen:
            raise BnnbenchError(f"{where}: label {label!r} is also device {seen[label]}'s "
                                f"(each device needs its own label: it names its run files)")
        seen[label] = i
        for key in LOCAL_PATHS:
            if key in merged:
                merged[key] = os.path.expanduser(merged[key])
        if "sweep_args" in merged:
            merged["sweep_args"] = tuple(merged["sweep_args"])
        devices.append(Device(**merged))
    return devices


def _check_keys(table, where, skip=()):
    for key, value in table.items():
        if key not in KEYS or key in skip:
            known = ", ".join(k for k in KEYS if k not in skip)
            raise BnnbenchError(f"{where}: unknown key {key!r} (known keys: {known})")
        check, expected = KEYS[key]
        if not check(value):
            raise BnnbenchError(f"{where}: {key} = {value!r:.60} is not {expected}")


def load(path):
    """Devices of the inventory file `path`, read under the untrusted rules:
    a regular file of at most MAX_INVENTORY_BYTES (a FIFO, a device or a
    symlink loop is one line, never a hang)."""
    try:
        text = untrusted.read_text(path, MAX_INVENTORY_BYTES)
    except untrusted.RejectedFile as exc:
        raise BnnbenchError(f"cannot read inventory {path}: {exc.reason}")
    return parse(text, path)
