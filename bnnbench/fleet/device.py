"""The fleet's side on a device: run there by the device's own python3 with
the standard library only (bnnbench is not installed there yet).

The controller (job.py) sends this file's text as `python3 -c TEXT MODE ...`:

- run:   take the device lock, unpack the shipped source, create or reuse a
         venv, pip-install the source (the device's compiler builds the
         kernels), with --host-probe NAME `bnnbench host --probe` into the
         file NAME ({stamp} in it: the time, in --stamp-format, UTC), then
         `bnnbench sweep --label LABEL --out DIR ...`;
- fetch: list the files kept on the device (run files, host files) and say
         whether a benchmark holds the lock now;
- check: Python, venv support, compiler, free memory and disk.

It answers with lines `@fleet {json}` on stdout; stderr is progress for a
person. When its stdin closes (the connection dropped, or the controller's
timeout ran out) it interrupts the sweep with SIGINT, so the run file is
marked interrupted and keeps its rows, as Ctrl-C does.
"""
import argparse
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time

MARK = "@fleet "


def tell(**msg):
    _write(sys.stdout, MARK + json.dumps(msg))


def note(text):
    _write(sys.stderr, text)


def _write(stream, line):
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass  # the controller is gone; the run file still records the run


def fail(text, code=3):
    tell(error=text)
    sys.exit(code)


# --------------------------------------------------------------- the lock

def take_lock(path, who, wait):
    """flock() on `path`; None if busy and not `wait`. Held until exit."""
    path = os.path.expanduser(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        if not wait:
            os.close(fd)
            return None
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another run"
        note(f"waiting for the device lock {path} (held by {holder})")
        fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{who}, pid {os.getpid()}, since {time.strftime('%H:%M:%S')}".encode(), 0)
    return fd


# ------------------------------------------------- stopping on a lost stdin

class Stopper:
    """Watches stdin; at EOF interrupts the running child's process group."""

    def __init__(self):
        self.child = None
        self.stopped = False
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except OSError:
            pass
        self.stopped = True
        child = self.child
        if child is not None and child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGINT)
            except OSError:
                pass

    def run(self, cmd, **kw):
        if self.stopped:
            fail("stopped before it started (the controller went away)")
        self.child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True,
                                      **kw)
        if self.stopped:  # raced with _watch: it may have seen no child yet
            os.killpg(self.child.pid, signal.SIGINT)
        try:
            return self.child.wait()
        finally:
            self.child = None


# ------------------------------------------------------------ build steps

def unpack(archive, src, commit):
    stamp = os.path.join(src, ".fleet-commit")
    try:
        with open(stamp) as fh:
            if fh.read().strip() == commit:
                return
    except OSError:
        pass
    tmp = src + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, filter="data")
        else:  # Python < 3.8.17/3.11.4; the archive comes from the controller
            tar.extractall(tmp)
    with open(os.path.join(tmp, ".fleet-commit"), "w") as fh:
        fh.write(commit)
    shutil.rmtree(src, ignore_errors=True)
    os.rename(tmp, src)
    ship = os.path.dirname(archive)
    for name in os.listdir(ship):  # other commits' archives (under the lock)
        if name.startswith("bnnbench-") and name.endswith(".tar") and commit not in name:
            os.unlink(os.path.join(ship, name))


def build_error(log):
    """The line of a failed build log that says why: the compiler's first
    error, else setuptools' or pip's last one."""
    try:
        with open(log, errors="replace") as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
    except OSError:
        return "no log"
    diag = [ln for ln in lines if re.search(r": (fatal )?error: ", ln)]
    if diag:
        return diag[0][:200]
    errors = [ln for ln in lines if ln.startswith("error: ") and "exited-with-error" not in ln]
    if errors:
        cmd = re.match(r"error: Command '\[(.*)\]' returned non-zero exit status (\d+)", errors[-1])
        if cmd:
            argv = [a.strip("'\"") for a in cmd.group(1).split(", ")]
            what = argv[argv.index("-c") + 1] if "-c" in argv[:-1] else ""
            return f"{argv[0]} {'compiling ' + what + ' ' if what else ''}exited with status {cmd.group(2)}"
        return errors[-1][:200]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["empty log"])[-1][:200]


def build(stopper, workdir, commit, env):
    """A venv in workdir with this commit installed; rebuilt only when the
    commit, the build's environment or the Python changes."""
    venv = os.path.join(workdir, "venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        note(f"creating a venv in {venv} ({platform.python_implementation()} "
             f"{platform.python_version()})")
        log = os.path.join(workdir, "venv.log")
        with open(log, "w") as fh:
            code = stopper.run([sys.executable, "-m", "venv", venv], stdout=fh, stderr=fh, env=env)
        if code != 0:
            shutil.rmtree(venv, ignore_errors=True)
            fail(f"cannot create a venv: {build_error(log)} (on Debian/Raspberry Pi OS: "
                 f"sudo apt install python3-venv)")
    key = json.dumps({"commit": commit, "python": sys.version, "env": env_for_key(env)},
                     sort_keys=True)
    stamp = os.path.join(venv, ".bnnbench-build")
    try:
        with open(stamp) as fh:
            if fh.read() == key:
                note(f"reusing the build of {commit[:12]} in {venv}")
                return os.path.join(venv, "bin", "bnnbench")
    except OSError:
        pass
    if os.path.exists(stamp):
        os.unlink(stamp)
    log = os.path.join(workdir, "build.log")
    note(f"building bnnbench {commit[:12]} with this device's compiler (log: {log})")
    t0 = time.monotonic()
    with open(log, "w") as fh:
        code = stopper.run([py, "-m", "pip", "install", "--disable-pip-version-check",
                            os.path.join(workdir, "src")], stdout=fh, stderr=fh, env=env)
    if code != 0:
        fail(f"build failed: {build_error(log)} (log: {log} on the device)")
    with open(stamp, "w") as fh:
        fh.write(key)
    note(f"built in {time.monotonic() - t0:.0f} s")
    return os.path.join(venv, "bin", "bnnbench")


def env_for_key(env):
    """The variables a build depends on (the inventory's, and compiler ones)."""
    return {k: v for k, v in env.items()
            if k.startswith(("BNNBENCH_", "CC", "CXX", "CFLAGS", "LDFLAGS", "CPPFLAGS"))}


# ------------------------------------------------------------------ modes

def mode_run(args):
    workdir = os.path.expanduser(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, **json.loads(args.env))
    stopper = Stopper()
    take_lock(args.lock, f"bnnbench fleet run {args.label}", wait=True)
    unpack(os.path.join(workdir, args.archive), os.path.join(workdir, "src"), args.commit)
    bnnbench = build(stopper, workdir, args.commit, env)
    out = os.path.join(workdir, "results", args.token)
    os.makedirs(out, exist_ok=True)
    host_file = host_error = name = None
    if args.host_probe:  # under the lock: never beside a sweep on this device
        name = args.host_probe.replace("{stamp}", time.strftime(args.stamp_format, time.gmtime()))
        host_error = probe_host(stopper, bnnbench, args.label, os.path.join(out, name), env)
        if host_error is None:
            host_file = os.path.relpath(os.path.join(out, name), workdir)
    note(f"sweep: bnnbench sweep {' '.join(args.sweep)} (run file in {out})")
    code = stopper.run([bnnbench, "sweep", "--label", args.label, "--out", out] + args.sweep,
                       stdout=subprocess.DEVNULL, env=env)
    note(f"sweep ended (exit status {code})")
    files = sorted(f for f in os.listdir(out) if f.endswith(".json") and f != name)
    tell(exit=code, stopped=stopper.stopped, host_file=host_file, host_error=host_error,
         run_files=[os.path.relpath(os.path.join(out, f), workdir) for f in files])


def probe_host(stopper, bnnbench, label, path, env):
    """`bnnbench host --probe --format json` into `path` by way of a
    temporary name, so no fetch ever sees half of it. Why it failed, or None."""
    note("probing this device's peaks: bnnbench host --probe (about 10 s)")
    tmp = path + ".part"
    with open(tmp, "w") as fh:
        code = stopper.run([bnnbench, "host", "--probe", "--format", "json", "--label", label],
                           stdout=fh, env=env)
    if code != 0:
        os.unlink(tmp)
        return f"bnnbench host --probe exited with status {code} (see the lines above)"
    os.replace(tmp, path)
    return None


def mode_fetch(args):
    workdir = os.path.expanduser(args.workdir)
    busy = take_lock(args.lock, "bnnbench fleet fetch", wait=False) is None
    root = os.path.join(workdir, "results")
    found = []
    if os.path.isdir(root):
        for token in sorted(os.listdir(root)):
            d = os.path.join(root, token)
            if os.path.isdir(d):
                found += [os.path.relpath(os.path.join(d, f), workdir)
                          for f in sorted(os.listdir(d)) if f.endswith(".json")]
    tell(busy=busy, files=found)


def _first_line(cmd):
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=20).stdout.decode("utf-8", "replace").strip()
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return None


def _free_memory():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def mode_check(args):
    workdir = os.path.expanduser(args.workdir)
    env = dict(os.environ, **json.loads(args.env))
    probe = workdir
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        import ensurepip  # noqa: F401  Debian splits venv's pip into python3-venv
        has_venv = True
    except ImportError:
        has_venv = False
    cc = env.get("CC", "cc").split()[0]
    busy = take_lock(args.lock, "bnnbench fleet check", wait=False) is None
    built = None
    try:
        with open(os.path.join(workdir, "venv", ".bnnbench-build")) as fh:
            built = json.loads(fh.read())["commit"]
    except (OSError, ValueError, KeyError):
        pass
    tell(python=platform.python_version(), venv=has_venv,
         compiler=_first_line([cc, "--version"]) if shutil.which(cc) else None,
         arch=platform.machine(), cores=os.cpu_count(), mem_free=_free_memory(),
         disk_free=shutil.disk_usage(probe).free, busy=busy, built=built)


def main(argv=None):
    p = argparse.ArgumentParser(prog="bnnbench-fleet-device")
    p.add_argument("mode", choices=("run", "fetch", "check"))
    p.add_argument("--workdir", required=True)
    p.add_argument("--lock", required=True)
    p.add_argument("--env", default="{}")
    p.add_argument("--label")
    p.add_argument("--archive")
    p.add_argument("--commit")
    p.add_argument("--token")
    p.add_argument("--host-probe", metavar="NAME")
    p.add_argument("--stamp-format")
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    args.sweep = argv[cut + 1:]
    try:
        {"run": mode_run, "fetch": mode_fetch, "check": mode_check}[args.mode](args)
    except OSError as exc:
        fail(f"{exc.filename or 'device'}: {exc.strerror}")


if __name__ == "__main__":
    main()
