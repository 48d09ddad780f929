"""SSH to one device, through asyncssh: connect with the host key checked
against known_hosts, run a command streaming its lines, copy files by SFTP.

asyncssh is imported here only, and only when a fleet command runs, so the
rest of bnnbench works without it. Every way a connection can fail becomes
one FleetError line that says why in a person's words."""
import asyncio
import os
import shlex
import socket
import stat
import uuid
import warnings

from .. import untrusted
from ..errors import BnnbenchError

CONNECT_TIMEOUT = 20
# A device that vanishes without closing the connection (power cut, Wi-Fi
# gone) is noticed after about KEEPALIVE * KEEPALIVE_COUNT seconds.
KEEPALIVE, KEEPALIVE_COUNT = 15, 4
# What a device sends back is untrusted: a line of its output is cut at
# MAX_LINE characters (a reply with thousands of run files is ~100 kB), and
# one file copy takes at most untrusted.MAX_FILE_BYTES and READ_TIMEOUT s.
MAX_LINE = 1 << 20
READ_TIMEOUT = 300


class FleetError(BnnbenchError):
    """One device failed; the message is the one line that says why."""


def asyncssh():
    try:
        # cryptography 51 deprecated DSA, and asyncssh names DSA types when
        # its modules load: five warnings on every command's stderr, about a
        # key type bnnbench never asks for, would bury the one line that says
        # what went wrong. Only that import is quietened.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="DSA is deprecated")
            import asyncssh as mod
    except ImportError:
        raise BnnbenchError("bnnbench fleet needs asyncssh: pip install 'bnnbench[fleet]'")
    return mod


def known_hosts_path(device):
    return device.known_hosts or os.path.expanduser("~/.ssh/known_hosts")


def _options(device, known_hosts):
    opts = {"known_hosts": known_hosts, "connect_timeout": CONNECT_TIMEOUT,
            "keepalive_interval": KEEPALIVE, "keepalive_count_max": KEEPALIVE_COUNT}
    if device.port:
        opts["port"] = device.port
    if device.user:
        opts["username"] = device.user
    if device.identity_file:
        opts["client_keys"] = [device.identity_file]
    return opts


class Target:
    """Where ssh goes for a device and the known_hosts name it checks the key
    under: an alias from ~/.ssh/config resolved to its HostName, Port and
    HostKeyAlias, as OpenSSH (and asyncssh, which connects) resolve it."""

    def __init__(self, device):
        ssh = asyncssh()
        try:
            opts = ssh.SSHClientConnectionOptions(
                host=device.host, port=device.port or (), username=device.user or (),
                known_hosts=None, client_keys=None, agent_path=None, config=())
        except (OSError, ValueError, ssh.Error) as exc:
            raise FleetError(f"cannot read the ssh config for {device.host}: {describe(exc)}")
        self.host, self.port = opts.host or device.host, opts.port or 22
        self.key_alias = getattr(opts, "host_key_alias", None)
        # known_hosts writes a port other than 22 as [host]:port; a
        # HostKeyAlias stands alone, port or not.
        self.name = self.key_alias or (self.host if self.port == 22
                                       else f"[{self.host}]:{self.port}")
        real = f"{self.host}:{self.port}" if self.port != 22 else self.host
        self.where = device.address if device.host == self.host else f"{device.host} ({real})"


def _known_keys(target, path):
    """Keys known_hosts holds under the name ssh would look the target up by
    (empty if none or no file)."""
    ssh = asyncssh()
    if not os.path.exists(path):
        return []
    try:
        keys = ssh.read_known_hosts(path).match(target.name, "", target.port)[0]
    except (OSError, ValueError, ssh.KeyImportError):
        return []
    return list(keys)


async def _add_host_key(device, target, path, say):
    """Trust on first use, out loud: fetch the key (through the ssh config,
    as the connection goes), append it under the target's name, say so."""
    ssh = asyncssh()
    key = await ssh.get_server_host_key(device.host, device.port or ())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{target.name} {key.export_public_key().decode().strip()}\n")
    say(f"new host key {key.get_fingerprint()} of {target.where} added to {path} as "
        f"{target.name} (--accept-new-host-keys)")


async def connect(device, accept_new=False, say=lambda text: None):
    """An open asyncssh connection, or FleetError naming why not."""
    ssh = asyncssh()
    target = Target(device)
    where = target.where
    path = known_hosts_path(device)
    for attempt in (1, 2):
        # None would turn checking off: a missing file is an empty one.
        known = path if os.path.exists(path) else ssh.import_known_hosts("")
        try:
            return await ssh.connect(device.host, **_options(device, known))
        except ssh.HostKeyNotVerifiable:
            if _known_keys(target, path):
                raise FleetError(
                    f"host key of {where} does not match {path}: refusing to connect (if "
                    f"the device was reinstalled: ssh-keygen -R {shlex.quote(target.name)}, "
                    f"then connect once by hand)")
            if not accept_new or attempt == 2:
                raise FleetError(
                    f"host key of {where} is not in {path} (connect once with ssh, or pass "
                    f"--accept-new-host-keys to add it on first use)")
            try:
                await _add_host_key(device, target, path, say)
            except (OSError, ssh.Error) as exc:
                raise FleetError(f"cannot read the host key of {where}: {describe(exc)}")
        except ssh.PermissionDenied:
            raise FleetError(f"{where} refused our keys (as user {device.user or 'default'}): "
                             f"ssh-copy-id it, or set identity_file")
        except Exception as exc:  # every other connect failure is one line too
            raise FleetError(f"cannot connect to {where}: {describe(exc)}")


def describe(exc):
    """An exception as a short phrase."""
    ssh = asyncssh()
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {CONNECT_TIMEOUT} s"
    if isinstance(exc, ssh.DisconnectError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def lost(exc):
    """What went wrong once connected, as one phrase."""
    if isinstance(exc, asyncssh().SFTPError):
        return f"file transfer failed: {exc.reason}"
    why = describe(exc)
    return "connection lost" if why.lower() == "connection lost" else f"connection lost: {why}"


def connection_errors():
    """What a dropped connection raises while a command or a copy runs."""
    ssh = asyncssh()
    return (OSError, ssh.Error, EOFError, asyncio.IncompleteReadError)


class Command:
    """A remote command: its stderr lines go to `on_err`, its stdout lines
    to `on_out`; stop() closes its stdin, which device.py takes as 'stop'."""

    def __init__(self, conn, command, on_out, on_err):
        self.conn, self.command = conn, command
        self.on_out, self.on_err = on_out, on_err
        self.process = None

    async def run(self):
        self.process = await self.conn.create_process(self.command, encoding="utf-8",
                                                      errors="replace")
        await asyncio.gather(self._pump(self.process.stdout, self.on_out),
                             self._pump(self.process.stderr, self.on_err))
        result = await self.process.wait(check=False)
        return result.exit_status

    @staticmethod
    async def _pump(stream, handle):
        """Lines of `stream` to `handle`; a line longer than MAX_LINE is cut
        there (the rest of it dropped), so a device that never sends a
        newline cannot fill this process's memory."""
        pending, cut = "", False
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split("\n")
            for line in lines:
                if not cut:
                    handle(line.rstrip("\r"))
                cut = False
            if len(pending) > MAX_LINE:
                if not cut:
                    handle(pending[:MAX_LINE] + " [line cut]")
                pending, cut = "", True
        if pending and not cut:
            handle(pending.rstrip("\r"))

    def stop(self):
        if self.process is not None:
            try:
                self.process.stdin.write_eof()
            except connection_errors():
                pass


def sftp_path(path):
    """A device path for SFTP, which starts in the home directory and does
    not expand '~'."""
    if path == "~":
        return "."
    if path.startswith("~/"):
        return path[2:]
    return path


async def put_atomic(sftp, data, path):
    """Write bytes to a device path by way of a temporary name.

    Two uploads of one file may race (two inventory entries of one machine
    ship the same source at once), so the temporary name is unique and the
    last step replaces the file in one operation (OpenSSH's posix-rename):
    with a check for an old file and a plain rename after it, the later of
    two uploads found the name taken in between and failed."""
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.part"
    async with sftp.open(tmp, "wb") as fh:
        await fh.write(data)
    try:
        await sftp.posix_rename(tmp, path)
        return
    except asyncssh().SFTPOpUnsupported:
        pass   # a server without the extension: remove, then rename
    if await sftp.exists(path):
        await sftp.remove(path)
    await sftp.rename(tmp, path)


def _remote_kind(attrs):
    """'a symlink', 'a FIFO', ... for a non-regular file's lstat attributes,
    None for a regular file."""
    ssh = asyncssh()
    mode = attrs.permissions
    if mode is not None and stat.S_IFMT(mode):
        if stat.S_ISREG(mode):
            return None
        if stat.S_ISLNK(mode):
            return "a symlink"
        return untrusted._kind(mode)
    kinds = {ssh.FILEXFER_TYPE_REGULAR: None, ssh.FILEXFER_TYPE_SYMLINK: "a symlink",
             ssh.FILEXFER_TYPE_DIRECTORY: "a directory", ssh.FILEXFER_TYPE_FIFO: "a FIFO"}
    return kinds.get(attrs.type, "not a regular file")


async def read_bytes(sftp, path, limit=None):
    """The bytes of a device file, under the untrusted rules: a regular file
    (not a symlink: lstat), at most `limit` bytes (untrusted.MAX_FILE_BYTES),
    within READ_TIMEOUT seconds. FleetError otherwise."""
    limit = untrusted.MAX_FILE_BYTES if limit is None else limit
    attrs = await sftp.lstat(path)
    kind = _remote_kind(attrs)
    if kind:
        raise FleetError(f"the device's file {path!r:.80} is {kind}, not a regular file")
    if attrs.size is not None and attrs.size > limit:
        raise FleetError(f"the device's file {path!r:.80} has {attrs.size} bytes, over the "
                         f"{limit}-byte limit for one file")

    async def read():
        async with sftp.open(path, "rb") as fh:
            return await fh.read(limit + 1)
    try:
        data = await asyncio.wait_for(read(), READ_TIMEOUT)
    except asyncio.TimeoutError:
        raise FleetError(f"the device's file {path!r:.80} was not read within "
                         f"{READ_TIMEOUT} s")
    if len(data) > limit:
        raise FleetError(f"the device's file {path!r:.80} grew past the {limit}-byte limit "
                         f"while read")
    return data
