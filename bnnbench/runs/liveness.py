"""Whether a run file that says "running" has a process behind it.

A run killed with SIGKILL (or by the OOM killer, or a power cut) never
writes its final status, so its file says "running" forever. Its writer
records its pid and host name and refreshes "heartbeat_at" with every save
(bnnbench.runs.writer.RunWriter). A "running" run is taken as dead when:

- it ran on this host (same host name) and its pid is gone, or
- its last sign of life (heartbeat, else its start) is older than STALE_AFTER
  (no sweep step takes that long between two saves).
"""
import datetime
import os
import socket

STALE_AFTER = datetime.timedelta(hours=6)


def _parse(text):
    if not isinstance(text, str):
        return None
    try:
        ts = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=datetime.timezone.utc)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0   # exists under another user (or not a pid at all)
    return True


def died(run, now=None, hostname=None):
    """A reason (str) if `run` claims "running" but its process is gone, else None."""
    if run.get("status") != "running" or run.get("finished_at"):
        return None
    host = run.get("host") if isinstance(run.get("host"), dict) else {}
    pid = run.get("pid")
    hostname = hostname or socket.gethostname()
    if (isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2**31
            and host.get("hostname") == hostname and not pid_alive(pid)):
        return f"its process (pid {pid} on this host) is gone"
    last = _parse(run.get("heartbeat_at")) or _parse(run.get("started_at"))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if last is not None and now - last > STALE_AFTER:
        hours = (now - last).total_seconds() / 3600
        return f"no sign of life for {hours:.0f} h"
    return None
