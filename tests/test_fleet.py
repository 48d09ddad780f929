"""bnnbench fleet against real OpenSSH servers on 127.0.0.1.

Each "device" is an sshd of its own (Debian's openssh-server; `make test`
installs it where apt-get can) with a generated host key, reached with a
generated user key; its workdir is a temporary directory, where the real
thing happens: the shipped source is built into a venv and swept. The two
good devices share one workdir and the default lock, as two entries for one
machine would, so the source is built once per test run and the sweeps take
turns. The faults: a refused port, an sshd killed mid-sweep, a build whose
compiler is broken, a wrong host key. Nothing leaves loopback.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest

from bnnbench.runs import host_files, reader, schema, writer
from bnnbench.fleet import inventory

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [
    pytest.mark.skipif(not os.path.exists(SSHD), reason=(
        "OpenSSH server not installed (make test installs it where apt-get works: "
        "apt-get install openssh-server)")),
    pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen not installed"),
    pytest.mark.skipif(shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git"))
                       and not os.path.isfile(os.path.join(ROOT, ".git")),
                       reason="bnnbench fleet ships a git checkout; this is none"),
]
asyncssh = pytest.importorskip("asyncssh", reason="pip install 'bnnbench[fleet]'")

QUICK = ["--quick", "--threads", "1", "--methods", "float_blas,xnor_64"]
DEVICE_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


class Sshd:
    """One OpenSSH server on 127.0.0.1 with its own host key and config."""

    def __init__(self, base, name, authorized_keys):
        self.dir = base / name
        self.dir.mkdir()
        self.host_key = keygen(self.dir / "host_key")
        self.port = free_port()
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}", f"AuthorizedKeysFile {authorized_keys}",
            f"PidFile {self.dir / 'sshd.pid'}", "StrictModes no", "UsePAM no",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "Subsystem sftp internal-sftp",
            "LogLevel ERROR", ""]))
        self.proc = None
        self.start()

    def start(self):
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                     stderr=open(self.dir / "sshd.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "sshd.log").read_text())
            time.sleep(0.05)
        raise RuntimeError(f"sshd on port {self.port} did not start")

    def known_hosts_line(self):
        key = (self.dir / "host_key.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {' '.join(key)}\n"

    def kill(self):
        """The server and every connection it holds, as if the network went:
        the commands it started live on (they are the device's)."""
        import psutil
        procs = [p for p in psutil.Process(self.proc.pid).children(recursive=True)
                 if p.name().startswith("sshd")] + [psutil.Process(self.proc.pid)]
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.kill()


def device_toml(label, sshd, user_key, known_hosts, workdir, **extra):
    lines = ["[[device]]", f'label = "{label}"', 'host = "127.0.0.1"', f"port = {sshd.port}",
             'user = "root"', f'identity_file = "{user_key}"', f'known_hosts = "{known_hosts}"',
             f'workdir = "{workdir}"', f'python = "{DEVICE_PYTHON}"']
    for key, value in extra.items():
        if isinstance(value, dict):  # a TOML inline table
            value = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
        else:
            value = json.dumps(value)
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("fleet")
    user_key = keygen(base / "user_key")
    authorized = base / "authorized_keys"
    authorized.write_text((base / "user_key.pub").read_text())
    servers = {name: Sshd(base, name, authorized) for name in ("alpha", "beta", "gamma")}
    known = base / "known_hosts"
    known.write_text("".join(s.known_hosts_line() for s in servers.values()))
    lab = type("Lab", (), {})()
    lab.base, lab.user_key, lab.known, lab.servers = base, user_key, known, servers
    lab.workdir = base / "device"  # alpha and beta: one machine, one workdir, one build
    lab.lock = base / "device.lock"
    yield lab
    for s in servers.values():
        s.stop()


def fleet(*args, timeout=900, **kw):
    return subprocess.run([sys.executable, "-m", "bnnbench", "fleet", *args], text=True,
                          capture_output=True, timeout=timeout, **kw)


def toml(lab, label, server, **extra):
    extra.setdefault("lock", str(lab.lock))
    return device_toml(label, lab.servers[server], lab.user_key, lab.known,
                       extra.pop("workdir", lab.workdir), **extra)


def no_temp_files(path):
    return [p.name for p in path.iterdir() if p.name.startswith(".tmp-")] == []


@pytest.fixture(scope="module")
def happy(lab):
    """`bnnbench fleet run --host-probe` on alpha and beta: the run every
    test below reads."""
    inv = lab.base / "fleet.toml"
    inv.write_text(toml(lab, "alpha", "alpha") + toml(lab, "beta", "beta"))
    res, rep = lab.base / "results", lab.base / "reports"
    proc = fleet("run", str(inv), "--results", str(res), "--report-out", str(rep),
                 "--host-probe", "--", *QUICK)
    return inv, res, rep, proc


def head_commit():
    return subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_two_devices_deliver_run_files_and_one_report(happy):
    inv, res, rep, proc = happy
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[alpha] " in proc.stderr and "[beta] " in proc.stderr
    files = sorted(res.glob("sweep-*.json"))
    assert len(files) == 2 and no_temp_files(res)
    runs = {reader.load_run(str(f))["host"]["label"]: reader.load_run(str(f)) for f in files}
    assert set(runs) == {"alpha", "beta"}
    for run in runs.values():
        assert run["status"] == "complete" and run["rows"]
        assert run["git_commit"] == head_commit()
        assert all(r["verified"] for r in run["rows"])
    with warnings.catch_warnings(record=True) as caught:  # host files: passed over quietly
        warnings.simplefilter("always")
        df = reader.load_frame([str(res)])
    assert set(df["host_label"]) == {"alpha", "beta"} and not caught, caught
    table = proc.stdout.splitlines()
    assert table[0].split() == ["device", "status", "rows", "wall", "run", "file", "host", "file"]
    assert any(ln.split()[:2] == ["alpha", "complete"] for ln in table)
    assert any(ln.split()[:2] == ["beta", "complete"] for ln in table)
    page = (rep / "report.html").read_text()
    assert "alpha" in page and "beta" in page
    assert "2 hosts" in proc.stdout
    assert "bnnbench report: warning" not in proc.stderr
    assert "Not runs, so not read: 2 host file(s)" in page


def test_host_probe_files_arrive_checked_and_listed(happy):
    """--host-probe: each device's `bnnbench host --probe` JSON, a file of
    its own, in the table beside its run file."""
    inv, res, rep, proc = happy
    found = sorted(res.glob("host-*.json"))
    assert [f.name.split("-")[1] for f in found] == ["alpha", "beta"]
    for f in found:
        assert host_files.NAME.fullmatch(f.name)
        fp = host_files.parse(f.read_bytes(), str(f), label=f.name.split("-")[1], probe=True)
        assert fp["probe"]["threads"]["1"]["popcount_gops"] > 0
        row = next(ln.split() for ln in proc.stdout.splitlines()
                   if ln.split()[0] == fp["label"])
        assert row[-1] == os.path.relpath(f) and row[-2].endswith(".json")
        with pytest.raises(schema.NotARunFile):
            reader.load_run(str(f))


def test_host_probe_waits_for_the_device_lock(happy):
    """alpha and beta share one device lock: whichever waited probes only
    after the other's sweep ended, never beside it."""
    err = happy[3].stderr.splitlines()
    waited = next(ln.split("]")[0][1:] for ln in err if "waiting for the device lock" in ln)
    other = ({"alpha", "beta"} - {waited}).pop()
    probing = err.index(next(ln for ln in err if ln.startswith(f"[{waited}] probing")))
    ended = err.index(next(ln for ln in err if ln.startswith(f"[{other}] sweep ended")))
    assert ended < probing


def test_the_two_entries_of_one_machine_take_turns_and_share_the_build(happy):
    proc = happy[3]
    assert "waiting for the device lock" in proc.stderr
    assert proc.stderr.count("building bnnbench") == 1
    assert "reusing the build of" in proc.stderr


def test_model_level_rows_arrive_like_any_others(lab, happy, tmp_path):
    """`fleet run INVENTORY -- --level model`: the options reach the device's
    sweep unchanged, and its whole-network rows arrive as a run file like
    any other (the build of the run above is reused)."""
    inv = tmp_path / "fleet.toml"
    inv.write_text(toml(lab, "alpha", "alpha"))
    res = tmp_path / "results"
    proc = fleet("run", str(inv), "--results", str(res), "--no-report", "--",
                 "--level", "model", "--models", "cntk-bnn", "--quick", "--threads", "1",
                 "--methods", "net_bnnbench,net_float")
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(res.glob("sweep-*.json"))
    assert len(files) == 1 and no_temp_files(res)
    run = reader.load_run(str(files[0]))
    assert run["status"] == "complete" and run["host"]["label"] == "alpha"
    assert {r["method"] for r in run["rows"]} == {"net_bnnbench", "net_float"}
    assert all(r["level"] == "model" and r["verified"] and r["model"] == "cntk-bnn"
               for r in run["rows"])
    df = reader.load_frame([str(res)])
    assert set(df["level"]) == {"model"} and set(df["host_label"]) == {"alpha"}


def test_two_uploads_of_one_file_both_land(lab, tmp_path):
    """Two entries of one machine ship the same source at once: neither may
    fail on the other's rename (the later one now and then did)."""
    import asyncio

    from bnnbench.fleet import transport
    device = inventory.parse(toml(lab, "alpha", "alpha"))[0]
    target = str(tmp_path / "archive.tar.gz")

    async def race():
        async with await transport.connect(device) as one, await transport.connect(device) as two:
            async with one.start_sftp_client() as a, two.start_sftp_client() as b:
                for n in range(5):
                    await asyncio.gather(transport.put_atomic(a, b"A" * 100_000, target),
                                         transport.put_atomic(b, b"B" * 100_000, target))
    asyncio.run(race())
    assert (tmp_path / "archive.tar.gz").read_bytes() in (b"A" * 100_000, b"B" * 100_000)
    assert [p.name for p in tmp_path.iterdir()] == ["archive.tar.gz"]   # no .part left


def test_check_table(lab, happy):
    inv = happy[0]
    proc = fleet("check", str(inv), timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["device", "status", "python", "venv"]
    for label in ("alpha", "beta"):
        row = next(ln for ln in lines if ln.split()[0] == label)
        assert " ok " in row and head_commit()[:12] in row and "GiB" in row


def test_faults_stop_their_device_only(lab, happy, tmp_path):
    """Refused port, wrong host key, broken compiler, and an sshd killed
    mid-sweep: one line each, alpha still completes, nothing half-written;
    then `fleet fetch` brings the killed device's rows, marked interrupted."""
    gamma = lab.servers["gamma"]
    wrong = lab.base / "wrong_known_hosts"
    other = Sshd(lab.base, "impostor", lab.base / "authorized_keys")  # a key, not gamma's
    other.stop()
    wrong.write_text(f"[127.0.0.1]:{gamma.port} "
                     f"{' '.join((other.dir / 'host_key.pub').read_text().split()[:2])}\n")
    refused = free_port()
    inv = tmp_path / "faults.toml"
    inv.write_text(
        toml(lab, "alpha", "alpha")
        # gamma's sweep is slow enough to be killed in the middle
        + toml(lab, "victim", "gamma", sweep_args=["--channels", "1,8,16,32,64,128",
                                                   "--min-time", "1"])
        + toml(lab, "refused", "alpha").replace(f"port = {lab.servers['alpha'].port}",
                                                f"port = {refused}")
        + toml(lab, "impostor", "gamma").replace(f'known_hosts = "{lab.known}"',
                                                 f'known_hosts = "{wrong}"')
        + toml(lab, "nocc", "beta", workdir=str(lab.base / "nocc"), lock=str(lab.base / "nocc.lock"),
               env={"CC": "/bin/false"}))
    res = tmp_path / "results"
    p = subprocess.Popen([sys.executable, "-m", "bnnbench", "fleet", "run", str(inv),
                          "--results", str(res), "--no-report", "--", *QUICK],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err, killed = [], False
    for line in p.stderr:
        err.append(line)
        # The sweep saves a shape's rows once they are timed: when the second
        # shape starts, the first one's rows are on the device's disk.
        if not killed and line.startswith("[victim] [") and " channels=8 " in line:
            gamma.kill()
            killed = True
    out = p.stdout.read()
    p.wait(timeout=600)
    stderr = "".join(err)
    assert p.returncode == 1 and killed, stderr[-3000:]
    lines = {ln.split(":", 2)[1].strip(): ln for ln in stderr.splitlines()
             if ln.startswith("bnnbench fleet: ") and ln.count(":") >= 2
             and ln.split(":", 2)[1].strip() in ("refused", "impostor", "nocc", "victim")}
    assert set(lines) == {"refused", "impostor", "nocc", "victim"}, stderr
    assert "connection refused" in lines["refused"]
    assert "does not match" in lines["impostor"] and "refusing" in lines["impostor"]
    assert "build failed: /bin/false compiling" in lines["nocc"]
    assert "connection lost" in lines["victim"] and "fetch" in lines["victim"], stderr
    assert "Traceback" not in stderr
    table = {ln.split()[0]: ln.split() for ln in out.splitlines()[1:]}
    assert table["alpha"][1] == "complete"
    assert all(table[d][1] == "error" for d in ("refused", "impostor", "nocc", "victim"))
    files = list(res.glob("*.json"))
    assert [reader.load_run(str(f))["host"]["label"] for f in files] == ["alpha"]
    assert no_temp_files(res)

    # The device is back: its kept rows come home, marked interrupted.
    gamma.start()
    proc = fleet("fetch", str(inv), "--results", str(res), "--devices", "victim", timeout=120)
    assert proc.returncode == 0, proc.stderr
    runs = [reader.load_run(str(f)) for f in res.glob("*.json")]
    victim = [r for r in runs if r["host"]["label"] == "victim"]
    assert len(victim) == 1 and victim[0]["status"] == "interrupted"
    assert victim[0]["rows"] and victim[0]["git_commit"] == head_commit()
    assert no_temp_files(res)
    again = fleet("fetch", str(inv), "--results", str(res), "--devices", "victim", timeout=120)
    assert "nothing new" in again.stdout


@pytest.mark.parametrize("text,message", [
    ("[[device]]\nhost = 'x'\n", "device 1: missing 'label'"),
    ("[[device]]\nlabel = 'a'\nhost = 'x'\nhots = 1\n", "unknown key 'hots'"),
    ("[[device]]\nlabel = 'a'\nhost = 'x'\nport = 0\n", "port = 0 is not an integer"),
    ("[[device]]\nlabel = 'a'\nhost = 'x'\n[[device]]\nlabel = 'a'\nhost = 'y'\n",
     "label 'a' is also device 1's"),
    ("[[device]\n", "invalid TOML"),
    ("", "no devices"),
])
def test_inventory_mistakes_are_one_line(tmp_path, text, message):
    path = tmp_path / "inv.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        inventory.load(str(path))
    proc = fleet("check", str(path), timeout=60)
    assert proc.returncode == 2 and message.split("'")[0] in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_inventory_defaults_and_example():
    devs = inventory.parse("""
[defaults]
user = "pi"
env = { BNNBENCH_PORTABLE = "1" }
[[device]]
label = "rpi4"
host = "raspberrypi.local"
[[device]]
label = "laptop"
host = "laptop"
user = "me"
sweep_args = ["--threads", "1,4"]
""")
    assert [d.user for d in devs] == ["pi", "me"]
    assert devs[0].env == {"BNNBENCH_PORTABLE": "1"} and devs[1].sweep_args == ("--threads", "1,4")
    assert devs[0].workdir == inventory.DEFAULT_WORKDIR and devs[0].port is None


def test_sweep_options_checked_before_any_device(tmp_path, lab):
    inv = tmp_path / "inv.toml"
    inv.write_text(toml(lab, "alpha", "alpha"))
    for args, message in ((["--channels", "0"], "invalid value '0'"),
                          (["--label", "x"], "--label is the fleet's")):
        proc = fleet("run", str(inv), "--results", str(tmp_path / "r"), "--", *args, timeout=60)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


def test_fetch_marks_a_run_whose_process_died_interrupted(lab, tmp_path):
    """A run file left "running" on a device where nothing holds the lock
    (the sweep died with a reboot) comes home marked interrupted; one whose
    sweep still holds the lock is fetched as it stands."""
    workdir = tmp_path / "device"
    kept = workdir / "results" / "20260101T000000-deadbeef"
    run = writer.new_run("sweep", {"label": "ghost", "arch": "x86_64"})
    run_writer = writer.RunWriter(run, str(kept))
    # host files: this device's comes home; another entry's in a shared workdir stays
    from test_host_files import fingerprint
    for label in ("ghost", "other"):
        (kept / host_files.filename(label, when=0)).write_text(json.dumps(fingerprint(label)))
    inv = tmp_path / "inv.toml"
    inv.write_text(toml(lab, "ghost", "beta", workdir=str(workdir), lock=str(tmp_path / "lock")))
    res = tmp_path / "results"
    holder = subprocess.Popen(["flock", str(tmp_path / "lock"), "sleep", "60"],
                              start_new_session=True)
    try:
        time.sleep(0.3)
        proc = fleet("fetch", str(inv), "--results", str(res), timeout=120)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # flock and the sleep holding the lock
        holder.wait()
    assert proc.returncode == 0, proc.stderr
    local = res / os.path.basename(run_writer.path)
    assert reader.load_run(str(local))["status"] == "running" and "busy" in proc.stdout
    proc = fleet("fetch", str(inv), "--results", str(res), timeout=120)
    assert proc.returncode == 0, proc.stderr
    fetched = reader.load_run(str(local))
    assert fetched["status"] == "interrupted" and fetched["finished_at"]
    assert fetched["run_id"] == run["run_id"] and no_temp_files(res)
    assert sorted(p.name for p in res.glob("host-*")) == [host_files.filename("ghost", when=0)]


@pytest.fixture
def alias_home(lab, tmp_path):
    """A home whose ~/.ssh/config names beta `myalias` (HostName 127.0.0.1,
    its Port, user and key), with an inventory that reaches it by the alias
    alone and keeps its host keys in that home's ~/.ssh/known_hosts."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    config = home / ".ssh" / "config"
    config.write_text(f"Host myalias\n  HostName 127.0.0.1\n  Port {lab.servers['beta'].port}\n"
                      f"  User root\n  IdentityFile {lab.user_key}\n")
    inv = tmp_path / "alias.toml"
    inv.write_text(f'[[device]]\nlabel = "aliased"\nhost = "myalias"\nworkdir = "{lab.workdir}"\n'
                   f'python = "{DEVICE_PYTHON}"\nlock = "{lab.lock}"\n')
    env = dict(os.environ, HOME=str(home))
    return home, config, inv, env


@pytest.mark.parametrize("inventory_port", [False, True])
def test_alias_with_a_mismatched_key_under_its_real_name_is_refused(lab, alias_home,
                                                                    inventory_port):
    """--accept-new-host-keys must not take an alias for a new host when
    known_hosts holds another key under the name ssh checks ([HostName]:Port),
    whether the port comes from the ssh config or the inventory."""
    home, config, inv, env = alias_home
    if inventory_port:
        inv.write_text(inv.read_text() + f"port = {lab.servers['beta'].port}\n")
    impostor = Sshd(lab.base, f"alias-impostor-{os.getpid()}-{time.monotonic_ns()}",
                    lab.base / "authorized_keys")
    impostor.stop()
    known = home / ".ssh" / "known_hosts"
    known.write_text(f"[127.0.0.1]:{lab.servers['beta'].port} "
                     f"{' '.join((impostor.dir / 'host_key.pub').read_text().split()[:2])}\n")
    before = known.read_text()
    proc = fleet("check", str(inv), "--accept-new-host-keys", timeout=120, env=env)
    assert proc.returncode == 1, proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("bnnbench fleet: aliased: host key of myalias "
                                              f"(127.0.0.1:{lab.servers['beta'].port}) does "
                                              f"not match"), proc.stderr
    assert "refusing to connect" in err[0]
    assert known.read_text() == before


def test_alias_new_host_key_is_recorded_under_the_name_ssh_looks_up(lab, alias_home):
    home, config, inv, env = alias_home
    known = home / ".ssh" / "known_hosts"
    proc = fleet("check", str(inv), timeout=120, env=env)
    assert proc.returncode == 1 and "is not in" in proc.stderr and not known.exists()
    proc = fleet("check", str(inv), "--accept-new-host-keys", timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "new host key" in proc.stderr
    port = lab.servers["beta"].port
    assert known.read_text().split()[:2] == [f"[127.0.0.1]:{port}", "ssh-ed25519"]
    again = fleet("check", str(inv), timeout=120, env=env)
    assert again.returncode == 0, again.stderr
    # OpenSSH's own client, strict, finds the key where it was written.
    ssh = shutil.which("ssh")
    if ssh:
        out = subprocess.run([ssh, "-F", str(config), "-o", f"UserKnownHostsFile={known}",
                              "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                              "-o", "StrictHostKeyChecking=yes", "myalias", "true"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr


# ----------------------------------------------------------- hostile devices
# A device is untrusted: its answer, its output lines and the files it names
# may be anything. Each "device" below is the real loopback sshd whose
# `python` is a stand-in that prints a canned answer (no build needed), so
# all of them run at once in one `fleet run`, beside one that behaves.

FAKE_PYTHON = """#!{python}
import sys
with open({canned!r}, "rb") as fh:
    out, err = fh.read().split(b"\\0SPLIT\\0")
sys.stderr.buffer.write(err); sys.stderr.flush()
sys.stdout.buffer.write(out); sys.stdout.flush()
"""


_SPREAD = __import__("itertools").count()


def hostile_device(lab, tmp_path, label, stdout, stderr=b"", files=None):
    """An inventory entry whose device prints `stdout`/`stderr` as its
    answer, with `files` {workdir-relative path: bytes | callable(path)}
    on its disk."""
    workdir = tmp_path / f"dev-{label}"
    (workdir / "results" / "t").mkdir(parents=True)
    for rel, content in (files or {}).items():
        path = workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content(path) if callable(content) else path.write_bytes(content)
    canned = tmp_path / f"canned-{label}"
    canned.write_bytes((stdout if isinstance(stdout, bytes) else stdout.encode())
                       + b"\0SPLIT\0" + (stderr if isinstance(stderr, bytes) else stderr.encode()))
    fake = tmp_path / f"python-{label}"
    fake.write_text(FAKE_PYTHON.format(python=DEVICE_PYTHON, canned=str(canned)))
    fake.chmod(0o755)
    # spread over the three servers: sshd drops logins beyond MaxStartups (10)
    server = ("alpha", "beta", "gamma")[next(_SPREAD) % 3]
    return toml(lab, label, server, workdir=str(workdir),
                lock=str(tmp_path / f"{label}.lock")).replace(
        f'python = "{DEVICE_PYTHON}"', f'python = "{fake}"')


def reply(**msg):
    return "@fleet " + json.dumps(msg) + "\n"


def run_file_bytes(label, status="complete"):
    run = writer.new_run("sweep", {"label": label, "arch": "x86_64"})
    writer.finish_run(run, status)
    return json.dumps(run).encode(), writer.run_filename(run)


def test_hostile_devices_stay_in_their_lane(lab, tmp_path):
    good_run, good_name = run_file_bytes("good")
    other_run, _ = run_file_bytes("good")          # someone else's label
    outside = tmp_path / "outside"
    ok = {"exit": 0, "stopped": False, "host_file": None, "host_error": None}
    devices = [
        # behaves, but its progress line tries to clear the screen and forge a line
        hostile_device(lab, tmp_path, "good",
                       reply(**ok, run_files=[f"results/t/{good_name}"]),
                       "\x1b[2J\x1b]0;owned\x07progress\rbnnbench fleet: all fine\n",
                       {f"results/t/{good_name}": good_run}),
        # names a path that climbs out of its workdir (and of --results here)
        hostile_device(lab, tmp_path, "climber",
                       reply(**ok, run_files=[f"../../{outside.name}/evil.json"])),
        hostile_device(lab, tmp_path, "absolute",
                       reply(**ok, run_files=[str(outside / "evil.json")])),
        # a run file that is a symlink to a file outside, one that is a FIFO
        hostile_device(lab, tmp_path, "linker", reply(**ok, run_files=["results/t/sweep-l.json"]),
                       files={"results/t/sweep-l.json":
                              lambda p: os.symlink("/etc/passwd", p)}),
        hostile_device(lab, tmp_path, "piper", reply(**ok, run_files=["results/t/sweep-p.json"]),
                       files={"results/t/sweep-p.json": lambda p: os.mkfifo(p)}),
        # oversized (sparse) and deeply nested run files
        hostile_device(lab, tmp_path, "bloat", reply(**ok, run_files=["results/t/sweep-b.json"]),
                       files={"results/t/sweep-b.json":
                              lambda p: open(p, "wb").truncate(300 << 20)}),
        hostile_device(lab, tmp_path, "nested", reply(**ok, run_files=["results/t/sweep-n.json"]),
                       files={"results/t/sweep-n.json": b"[" * 100000 + b"]" * 100000}),
        # a valid run file of another device's label, under a plain name
        hostile_device(lab, tmp_path, "forger", reply(**ok, run_files=[f"results/t/{good_name}"]),
                       files={f"results/t/{good_name}": other_run}),
        # answers that are not what device.py says: wrong types, a list,
        # nesting deep enough to crash a recursive parser, a megabyte line
        hostile_device(lab, tmp_path, "typed", reply(exit="zero", run_files=[1, 2])),
        hostile_device(lab, tmp_path, "listy", "@fleet [1, 2, 3]\n"),
        hostile_device(lab, tmp_path, "deep", "@fleet " + "[" * 200000 + "\n",
                       "x" * (3 << 20)),
        # an error answer with controls and a forged second line
        hostile_device(lab, tmp_path, "shouter",
                       reply(error="\x1b[31mred\nbnnbench fleet: good: forged")),
    ]
    inv = tmp_path / "hostile.toml"
    inv.write_text("".join(devices))
    res = tmp_path / "results"
    proc = fleet("run", str(inv), "--results", str(res), "--no-report", "--timeout", "300",
                 timeout=600)
    err = proc.stderr
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err and "\x1b" not in err + proc.stdout and "\x07" not in err
    assert "\\x1b[2J" in err and "\\x1b]0;owned\\x07" in err   # shown, not obeyed
    assert "progress\\x0dbnnbench fleet: all fine" in err           # one line, not two
    lines = {}
    for ln in err.splitlines():
        if ln.startswith("bnnbench fleet: ") and ln.count(":") >= 2:
            lines.setdefault(ln.split(":", 2)[1].strip(), []).append(ln)
    assert "good" not in lines, lines.get("good")      # the forged line never appears raw
    expect = {"climber": "not a plain .json name", "absolute": "not a plain .json name",
              "linker": "a symlink", "piper": "a FIFO", "bloat": "over the",
              "nested": "nested deeper", "forger": "labelled 'good'",
              "typed": "run_files = [1, 2]", "listy": "without an answer",
              "deep": "without an answer", "shouter": "\\x1b[31mred\\x0abnnbench fleet: good"}
    for label, needle in expect.items():
        assert len(lines.get(label, [])) == 1 and needle in lines[label][0], (label, err[-4000:])
    table = {ln.split()[0]: ln.split() for ln in proc.stdout.splitlines()[1:]}
    assert table["good"][1] == "complete"
    assert all(table[label][1] == "error" for label in expect)
    # only the good device's file arrived; nothing was written outside --results
    assert [p.name for p in res.iterdir()] == [good_name]
    assert reader.load_run(str(res / good_name))["host"]["label"] == "good"
    assert not outside.exists()
    assert max(len(ln) for ln in err.splitlines()) < 2000   # the 3 MB line was cut


def test_hostile_fetch_answers(lab, tmp_path):
    """`fleet fetch` from a device that lists paths, symlinks and wrong types:
    one line per device, nothing outside --results."""
    good_run, good_name = run_file_bytes("fine")
    devices = [
        hostile_device(lab, tmp_path, "fine", reply(busy=False, files=[f"results/t/{good_name}"]),
                       files={f"results/t/{good_name}": good_run}),
        hostile_device(lab, tmp_path, "dots", reply(busy=False, files=["results/t/../../x.json",
                                                                      ".."])),
        hostile_device(lab, tmp_path, "weird", reply(busy="no", files="sweep.json")),
    ]
    inv = tmp_path / "fetch.toml"
    inv.write_text("".join(devices))
    res = tmp_path / "results"
    proc = fleet("fetch", str(inv), "--results", str(res), timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert [p.name for p in res.iterdir()] == [good_name]
    err = proc.stderr
    assert "dots: the device named a file 'results/t/../../x.json'" in err, err
    assert "weird: the device's answer has busy = 'no'" in err, err


def test_fleet_ships_a_plain_install(tmp_path):
    """Without a git clone (pip install 'bnnbench[fleet]', an unpacked tree),
    the fleet ships an sdist-like archive of what is installed, with the
    commit it came from when known; an install without the kernel sources
    is one line saying so."""
    import io
    import tarfile

    from bnnbench.fleet import source
    tree = tmp_path / "tree"
    shutil.copytree(os.path.join(ROOT, "bnnbench"), tree / "bnnbench",
                    ignore=shutil.ignore_patterns("__pycache__", "COMMIT"))
    shutil.copytree(os.path.join(ROOT, "kernels_pyx"), tree / "kernels_pyx")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), tree / name)
    (tree / "bnnbench" / "COMMIT").write_text("abc123def4567890\n")
    src = source.from_install(str(tree / "bnnbench"))
    assert src.origin == "installed" and src.commit == "abc123def4567890" and not src.dirty
    names = tarfile.open(fileobj=io.BytesIO(src.archive)).getnames()
    assert {"setup.py", "pyproject.toml", "README.md", "kernels_pyx/xnor_gemm.pyx",
            "kernels_pyx/bnn_config.h", "kernels_pyx/words.pxd", "bnnbench/__init__.py",
            "bnnbench/fleet/device.py", "bnnbench/report/templates/report.html.j2",
            "bnnbench/COMMIT"} <= set(names)
    assert not [n for n in names if n.endswith((".so", ".c", ".pyc")) or "__pycache__" in n]
    tar = tarfile.open(fileobj=io.BytesIO(src.archive))
    assert tar.extractfile("bnnbench/COMMIT").read() == b"abc123def4567890\n"
    assert source.from_install(str(tree / "bnnbench")).archive == src.archive  # stable bytes
    # no commit known: named by content, no COMMIT shipped
    (tree / "bnnbench" / "COMMIT").unlink()
    monkey = source.installed_commit
    try:
        source.installed_commit = lambda *a, **k: None
        anon = source.from_install(str(tree / "bnnbench"))
    finally:
        source.installed_commit = monkey
    assert anon.commit.startswith("installed-")
    assert "bnnbench/COMMIT" not in tarfile.open(fileobj=io.BytesIO(anon.archive)).getnames()
    # a wheel install: the package alone, no kernel sources nor setup.py
    wheel = tmp_path / "site"
    shutil.copytree(tree / "bnnbench", wheel / "bnnbench")
    with pytest.raises(ValueError, match="lacks the kernel sources") as info:
        source.from_install(str(wheel / "bnnbench"))
    assert "\n" not in str(info.value)
    # the clone path is kept: from a clone, git archive of HEAD
    assert source.current().origin == "git" and source.current().commit == head_commit()


def test_fleet_ships_a_wheel_install(tmp_path):
    """A built package (what a wheel holds: setup.py's build_py) carries the
    kernel sources and the build files inside bnnbench/kernels_pyx/, so
    `pip install 'bnnbench[fleet]'` alone can ship a source the devices
    build."""
    import io
    import tarfile

    from bnnbench.fleet import source
    lib = tmp_path / "lib"
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (lib / "kernels_pyx").exists()   # nothing outside the package
    src = source.from_install(str(lib / "bnnbench"))
    names = set(tarfile.open(fileobj=io.BytesIO(src.archive)).getnames())
    assert {"setup.py", "pyproject.toml", "README.md", "kernels_pyx/xnor_gemm.pyx",
            "kernels_pyx/netops.pyx", "kernels_pyx/bnn_config.h", "kernels_pyx/words.pxd",
            "bnnbench/__init__.py"} <= names
    assert not [n for n in names if n.startswith("bnnbench/kernels_pyx")]   # shipped once
