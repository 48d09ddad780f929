"""What else the host was doing while we measured.

A benchmark on a shared machine (a laptop, a CI runner, a VM) can be
steadily slowed by another job without its samples spreading at all, so
spread alone cannot tell a busy host. What can: the CPU time the whole
system spent busy minus the CPU time of this process (its OpenMP and BLAS
threads included), over the same wall-clock window. That difference, in
cores, is the other processes' share; steal time is what the hypervisor
gave to other guests. Both come from the kernel's counters (psutil), so
watching costs nothing while the kernels run.
"""
import os
import time
from dataclasses import dataclass

import psutil

# Other processes using at least this many cores' worth of CPU (or this
# share of the host's time stolen by the hypervisor) make a window busy.
# A quarter of a core is far above a quiet desktop's background (a few
# hundredths) and well below one hog thread.
BUSY_OTHER_CORES = 0.25
BUSY_STEAL_SHARE = 0.10
QUIET_WINDOW_S = 2.0


@dataclass
class Snapshot:
    wall: float
    busy: float      # system-wide busy CPU seconds (all cores)
    steal: float
    own: float       # this process's CPU seconds (all its threads)


def _system_busy(t):
    # Linux lists guest time inside user; psutil's other platforms lack some fields.
    return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))


class LoadMonitor:
    def __init__(self):
        self.proc = psutil.Process(os.getpid())
        self.cpus = psutil.cpu_count() or 1

    def snapshot(self):
        t = psutil.cpu_times()
        own = self.proc.cpu_times()
        return Snapshot(time.monotonic(), _system_busy(t), getattr(t, "steal", 0.0),
                        own.user + own.system)

    def since(self, start):
        """The load between `start` and now, as stored in a run file's rows."""
        end = self.snapshot()
        wall = max(end.wall - start.wall, 1e-9)
        other = max(0.0, (end.busy - start.busy) - (end.own - start.own)) / wall
        steal = max(0.0, end.steal - start.steal) / (wall * self.cpus)
        return {
            "other_cores": round(min(other, float(self.cpus)), 3),
            "steal_share": round(steal, 4),
            "loadavg_1m": _loadavg(),
            "freq_mhz": _freq(),
            "cpus": self.cpus,
            "wall_s": round(wall, 3),
        }


def is_busy(load):
    return bool(load) and (load.get("other_cores", 0) >= BUSY_OTHER_CORES
                           or (load.get("steal_share") or 0) >= BUSY_STEAL_SHARE)


def describe(load):
    """'other processes used 0.93 of 2 cores' (+ steal when there is some)."""
    text = f"other processes used {load['other_cores']:.2g} of {load['cpus']} cores"
    if (load.get("steal_share") or 0) >= 0.01:
        text += f", the hypervisor stole {100 * load['steal_share']:.0f} %"
    return text


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _freq():
    try:
        f = psutil.cpu_freq()
    except Exception:  # noqa: BLE001 - absent on some VMs and ARM kernels
        return None
    return round(f.current, 0) if f and f.current else None


def wait_quiet(limit_s, say, monitor=None, window_s=QUIET_WINDOW_S, sleep=time.sleep):
    """Wait until one window of `window_s` seconds is quiet, at most `limit_s`
    seconds. Returns (quiet, load of the last window); `say(text)` gets a
    progress line per window."""
    monitor = monitor or LoadMonitor()
    t0 = time.monotonic()
    while True:
        start = monitor.snapshot()
        sleep(window_s)
        load = monitor.since(start)
        if not is_busy(load):
            return True, load
        waited = time.monotonic() - t0
        if waited >= limit_s:
            return False, load
        say(f"waiting for a quiet host: {describe(load)} ({waited:.0f} of {limit_s:g} s)")
