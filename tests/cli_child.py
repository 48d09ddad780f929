"""The command line as users run it: `python -m bnnbench ARGS` in a child
process, so a crash or a hang cannot take the test process with it."""
import subprocess
import sys


def bnnbench(*args, timeout=300, **kw):
    """The finished child (stdout and stderr as text); kw go to subprocess.run."""
    return subprocess.run([sys.executable, "-m", "bnnbench", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)
