"""One device's part of a fleet command, and all devices at once.

run:   connect, ship the source archive, let device.py lock, build, probe
       (if asked) and sweep there (its progress lines shown as
       `[label] ...`), then copy the run file and the host file into the
       local results directory atomically, each checked first.
fetch: copy run and host files kept on the device that are not here yet; a
       run still "running" while nothing holds the device lock died with
       its process (a dropped connection, a reboot) and is marked interrupted.
check: what the device has before anyone waits for a sweep.

A failure stops its own device only: it becomes the Outcome's one-line
`error`, and the other devices go on.

What a device sends back is untrusted (it may be compromised, or just
broken): its output lines reach the terminal through escape.terminal; its
answer must be a JSON object of the expected types, within the size and
depth limits of bnnbench.untrusted; a file it names must be a plain .json
name under its workdir (never a path, '..' or a symlink), is read with a
size cap, checked, and written only into --results under that plain name;
and anything unexpected it causes ends its own job with one line.
"""
import asyncio
import dataclasses
import json
import os
import re
import shlex
import sys
import time
import uuid

from .. import files, untrusted
from ..escape import terminal

from ..runs import host_files, reader, schema, writer
from . import transport
from .device import MARK
from .transport import FleetError

DEVICE_SCRIPT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "device.py")
GRACE = 60  # seconds a stopped sweep gets to save its rows and exit
# A name the device gives a file becomes a local path: a plain file name only.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.json")
MAX_SHOWN = 500     # characters of one device line shown on the terminal


class NotThisDevice(FleetError):
    """A run file in the device's workdir that another device wrote."""


@dataclasses.dataclass
class Outcome:
    label: str
    status: str            # a run's status, or "error" / "timed out" / "busy" / ...
    rows: int = None
    wall_s: float = None
    run_file: str = None
    host_file: str = None
    error: str = None
    extra: dict = dataclasses.field(default_factory=dict)


def device_command(device, mode, *args):
    with open(DEVICE_SCRIPT_PATH, encoding="utf-8") as fh:
        script = fh.read()
    argv = [device.python, "-c", script, mode, "--workdir", device.workdir,
            "--lock", device.lock, "--env", json.dumps(device.env), *args]
    return " ".join(shlex.quote(a) for a in argv)


class Job:
    def __init__(self, device, results_dir=None, accept_new=False, timeout=None, out=None):
        self.device, self.results_dir, self.accept_new = device, results_dir, accept_new
        self.timeout = device.timeout or timeout
        self.out = out or sys.stderr
        self.reply, self.t0 = None, time.monotonic()
        self.host_file = None  # here once fetched, whatever happens after

    def say(self, text):
        """One line on the terminal; device text has its controls shown as
        escapes (escape.terminal) and is cut at MAX_SHOWN characters."""
        text = str(text)
        if len(text) > MAX_SHOWN:
            text = text[:MAX_SHOWN] + " [...]"
        self.out.write(f"[{terminal(self.device.label)}] {terminal(text)}\n")
        self.out.flush()

    def _on_err(self, line):
        if line.strip():
            self.say(line)

    def _on_out(self, line):
        if line.startswith(MARK):
            try:
                reply = untrusted.parse_json(line[len(MARK):], "the device's answer")
            except untrusted.RejectedFile as exc:
                self.say(f"ignored an answer: {exc.reason}")
                return
            if isinstance(reply, dict):
                self.reply = reply
            else:
                self.say(f"ignored an answer that is a {type(reply).__name__}, not an object")
            return
        self._on_err(line)

    def remaining(self):
        if self.timeout is None:
            return None
        return max(0.0, self.timeout - (time.monotonic() - self.t0))

    async def connect(self):
        return await transport.connect(self.device, self.accept_new, self.say)

    async def remote(self, conn, mode, *args):
        """Run device.py in `mode`; its reply, or FleetError."""
        self.reply = None
        cmd = transport.Command(conn, device_command(self.device, mode, *args), self._on_out,
                                self._on_err)
        code = await cmd.run()
        return self._answer(code)

    def _answer(self, code):
        if self.reply is None:
            if code == 127:
                raise FleetError(f"{self.device.python} not found on the device (set python "
                                 f"in the inventory)")
            if code is None:
                raise FleetError("connection lost before the device answered")
            raise FleetError(f"the device command exited with status {code} without an "
                             f"answer (see the lines above)")
        if "error" in self.reply:
            raise FleetError(str(self.reply["error"])[:MAX_SHOWN])
        return self.reply

    @staticmethod
    def _field(reply, key, kind, default=None):
        """reply[key] if it is of `kind` (a list: of strings), FleetError if not."""
        value = reply.get(key, default)
        ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))
              and (kind is not list or all(isinstance(v, str) for v in value)))
        if value is None and default is None and kind is not list:
            return None
        if not ok:
            raise FleetError(f"the device's answer has {key} = {value!r:.60}, not "
                             f"{'a list of names' if kind is list else kind.__name__}")
        return value

    # --------------------------------------------------------------- run

    async def run(self, source, sweep_args, host_probe=False):
        try:
            return await self._run(source, sweep_args, host_probe)
        except FleetError as exc:
            return self._failed(str(exc))
        except asyncio.TimeoutError:
            return self._failed(f"timed out after {self.timeout:g} s before the sweep started")
        except transport.connection_errors() as exc:
            return self._failed(f"{transport.lost(exc)} (rows it kept: bnnbench fleet fetch, "
                                f"once it is back)")

    def _failed(self, error, status="error"):
        return Outcome(self.device.label, status, wall_s=time.monotonic() - self.t0,
                       host_file=self.host_file, error=error)

    async def _run(self, source, sweep_args, host_probe):
        dev = self.device
        conn = await asyncio.wait_for(self.connect(), self.remaining())
        async with conn:
            async with conn.start_sftp_client() as sftp:
                await asyncio.wait_for(self._ship(sftp, source), self.remaining())
            token = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
            args = ["--label", dev.label, "--archive", f"ship/{source.name}",
                    "--commit", source.commit, "--token", token]
            if host_probe:  # the device stamps it with the time it probes
                args += ["--host-probe", host_files.filename(dev.label, stamp="{stamp}"),
                         "--stamp-format", host_files.STAMP]
            args += ["--", *dev.sweep_args, *sweep_args]
            self.reply = None
            cmd = transport.Command(conn, device_command(dev, "run", *args), self._on_out,
                                    self._on_err)
            task = asyncio.ensure_future(cmd.run())
            timed_out = False
            try:
                code = await asyncio.wait_for(asyncio.shield(task), self.remaining())
            except asyncio.TimeoutError:
                timed_out = True
                self.say(f"timed out after {self.timeout:g} s: stopping it (finished rows are kept)")
                cmd.stop()
                try:
                    code = await asyncio.wait_for(task, GRACE)
                except asyncio.TimeoutError:
                    raise FleetError(f"timed out after {self.timeout:g} s, and the device did "
                                     f"not stop within {GRACE} s")
            reply = self._answer(code)
            host_error = self._field(reply, "host_error", str)
            host_file = self._field(reply, "host_file", str)
            run_files = self._field(reply, "run_files", list, [])
            exit_code = self._field(reply, "exit", int)
            async with conn.start_sftp_client() as sftp:
                if host_file:
                    try:
                        if not host_files.is_for(os.path.basename(host_file), dev.label):
                            raise FleetError(f"the device named its host file "
                                             f"{host_file!r:.80}")
                        await self._fetch_host(sftp, host_file)
                    except FleetError as exc:  # the run file still comes home
                        host_error = str(exc)
                if not run_files:
                    raise FleetError(f"the sweep wrote no run file (it exited with status "
                                     f"{exit_code}; see the lines above)")
                path, run = await self._fetch(sftp, run_files[-1], dead=False)
        rows = len(run["rows"])
        out = Outcome(dev.label, "timed out" if timed_out else run["status"], rows=rows,
                      wall_s=time.monotonic() - self.t0, run_file=path,
                      host_file=self.host_file)
        if timed_out:
            out.error = f"timed out after {self.timeout:g} s; kept {rows} finished rows"
        elif run["status"] == "failed":
            out.error = "some kernels gave wrong results on this device (see the run file)"
        elif run["status"] == "interrupted":
            out.error = f"the sweep was interrupted on the device; kept {rows} finished rows"
        elif run["status"] != "complete" or exit_code != 0:
            out.error = f"the sweep exited with status {exit_code} (see the lines above)"
        if host_error:
            out.error = "; ".join(filter(None, [out.error, f"host probe: {host_error}"]))
        return out

    async def _ship(self, sftp, source):
        ship = f"{transport.sftp_path(self.device.workdir)}/ship"
        target = f"{ship}/{source.name}"
        await sftp.makedirs(ship, exist_ok=True)
        if await sftp.exists(target) and (await sftp.stat(target)).size == len(source.archive):
            self.say(f"source {source.commit[:12]} is already there")
            return
        self.say(f"shipping the source of {source.commit[:12]} "
                 f"({len(source.archive) / 1e6:.1f} MB)")
        await transport.put_atomic(sftp, source.archive, target)

    async def _fetch(self, sftp, rel, dead):
        """Copy one device run file (workdir-relative) here atomically;
        mark it interrupted if it is "running" and its process is `dead`."""
        path, raw = await self._read(sftp, rel)
        try:
            run = schema.parse_run(raw, f"{self.device.label}:{rel}")
        except schema.RunFileError as exc:
            raise FleetError(f"the device's run file is not valid: {exc}")
        label = (run.get("host") or {}).get("label")
        if label != self.device.label:
            raise NotThisDevice(f"the device's run file {os.path.basename(rel)} is labelled "
                                f"{label!r:.60}, not {self.device.label!r}")
        if dead and run["status"] == "running":
            writer.finish_run(run, "interrupted")
            writer.write_atomic(path, run)
        else:
            files.write_atomic(path, raw)
        return path, run

    async def _fetch_host(self, sftp, rel):
        """Copy the device's host file (workdir-relative) here atomically,
        once it is checked to be this device's fingerprint with its probe."""
        path, raw = await self._read(sftp, rel)
        try:
            host_files.parse(raw, f"{self.device.label}:{rel}", self.device.label, probe=True)
        except host_files.RejectedFile as exc:
            raise FleetError(f"the device's host file is not valid: {exc}")
        files.write_atomic(path, raw)
        self.host_file = path
        return path

    @staticmethod
    def _plain(rel):
        """The plain file name of a workdir-relative path a device named, or
        FleetError: no absolute path, no '..', a plain .json name."""
        parts = rel.split("/") if isinstance(rel, str) else None
        if (not parts or rel.startswith("/") or any(p in ("", ".", "..") for p in parts)
                or not SAFE_NAME.fullmatch(parts[-1])):
            raise FleetError(f"the device named a file {rel!r:.80}: not a plain .json name "
                             f"under its workdir")
        return parts[-1]

    async def _read(self, sftp, rel):
        """(local path, bytes) of a device file; its name must be a plain one."""
        name = self._plain(rel)
        remote = f"{transport.sftp_path(self.device.workdir)}/{rel}"
        return os.path.join(self.results_dir, name), await transport.read_bytes(sftp, remote)

    # ------------------------------------------------------------- fetch

    async def fetch(self):
        try:
            return await asyncio.wait_for(self._fetch_all(), self.remaining())
        except FleetError as exc:
            return self._failed(str(exc))
        except asyncio.TimeoutError:
            return self._failed(f"timed out after {self.timeout:g} s")
        except transport.connection_errors() as exc:
            return self._failed(transport.lost(exc))

    async def _fetch_all(self):
        conn = await self.connect()
        fetched, rows = [], 0
        async with conn:
            reply = await self.remote(conn, "fetch")
            busy = self._field(reply, "busy", bool, False)
            async with conn.start_sftp_client() as sftp:
                for rel in self._field(reply, "files", list, []):
                    name = self._plain(rel)
                    if host_files.NAME.fullmatch(name):
                        if (host_files.is_for(name, self.device.label)
                                and not os.path.exists(os.path.join(self.results_dir, name))):
                            fetched.append(await self._fetch_host(sftp, rel))
                            self.say(f"fetched {fetched[-1]} (host file)")
                        continue
                    if self._have(name):
                        continue
                    try:
                        path, run = await self._fetch(sftp, rel, dead=not busy)
                    except NotThisDevice:
                        # Devices may share a workdir: another entry's runs are
                        # its own to fetch, and never land under this label.
                        continue
                    fetched.append(path)
                    rows += len(run["rows"])
                    self.say(f"fetched {path} ({run['status']}, {len(run['rows'])} rows)")
        status = f"fetched {len(fetched)}" if fetched else "nothing new"
        if busy:
            status += " (busy)"
            self.say("a benchmark holds the device lock now: a run still going was fetched "
                     "as it stands; fetch again when it ends")
        return Outcome(self.device.label, status, rows=rows, wall_s=time.monotonic() - self.t0,
                       run_file=next((f for f in reversed(fetched) if f != self.host_file),
                                     None),
                       host_file=self.host_file, extra={"files": fetched})

    _check_reply = staticmethod(lambda reply: _check_reply_fields(reply))

    def _have(self, name):
        """A finished copy is here already (a "running" one is fetched again)."""
        path = os.path.join(self.results_dir, name)
        if not os.path.exists(path):
            return False
        try:
            return reader.load_run(path)["status"] != "running"
        except schema.RunFileError:
            return False

    # ------------------------------------------------------------- check

    async def check(self):
        try:
            conn = await asyncio.wait_for(self.connect(), self.remaining())
            async with conn:
                reply = await asyncio.wait_for(self.remote(conn, "check"), self.remaining())
        except FleetError as exc:
            return self._failed(str(exc), status="unreachable")
        except asyncio.TimeoutError:
            return self._failed(f"timed out after {self.timeout:g} s", status="unreachable")
        except transport.connection_errors() as exc:
            return self._failed(transport.lost(exc), status="unreachable")
        reply = self._check_reply(reply)
        problems = []
        if not reply.get("venv"):
            problems.append("no venv module (sudo apt install python3-venv)")
        if not reply.get("compiler"):
            problems.append("no C compiler (sudo apt install gcc)")
        return Outcome(self.device.label, "ok" if not problems else "not ready",
                       wall_s=time.monotonic() - self.t0, error="; ".join(problems) or None,
                       extra=reply)


CHECK_FIELDS = {"python": str, "venv": bool, "compiler": str, "arch": str, "cores": int,
                "mem_free": int, "disk_free": int, "busy": bool, "built": str}


def _check_reply_fields(reply):
    """The check answer's known fields, each of its type or left out."""
    out = {}
    for key, kind in CHECK_FIELDS.items():
        value = reply.get(key)
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            out[key] = value
    return out


async def _each(devices, job_kw, method, *args):
    """Every device's job at once. Whatever one device's job raises ends that
    job only, as one line: no device's answer can stop the others."""
    jobs = [Job(d, **job_kw) for d in devices]
    results = await asyncio.gather(*(getattr(j, method)(*args) for j in jobs),
                                   return_exceptions=True)
    outcomes = []
    for job, result in zip(jobs, results):
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result   # Ctrl-C, cancellation: the whole command stops
        if isinstance(result, Exception):
            why = str(result).splitlines()[0][:MAX_SHOWN] if str(result) else ""
            result = job._failed(f"unexpected {type(result).__name__}"
                                 + (f": {why}" if why else "") + " (a bnnbench bug: please "
                                 "report it)", status="unreachable" if method == "check"
                                 else "error")
        outcomes.append(result)
    return outcomes


def run_all(devices, source, sweep_args, host_probe=False, **job_kw):
    return asyncio.run(_each(devices, job_kw, "run", source, sweep_args, host_probe))


def fetch_all(devices, **job_kw):
    return asyncio.run(_each(devices, job_kw, "fetch"))


def check_all(devices, **job_kw):
    return asyncio.run(_each(devices, job_kw, "check"))
