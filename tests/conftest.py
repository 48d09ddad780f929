import os
import subprocess
import sys
import time

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def sweep_beside_a_hog():
    """run(*args): `bnnbench sweep --quick *args` while a busy process holds
    a core for the whole sweep; the finished process (stdout, stderr)."""
    def run(*args):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.3)
            return subprocess.run([sys.executable, "-m", "bnnbench", "sweep", "--quick", *args],
                                  capture_output=True, text=True, timeout=300)
        finally:
            hog.kill()
            hog.wait()
    return run


def pytest_report_header(config):
    import bnnbench
    b = bnnbench.BUILD
    return (f"bnnbench kernels: path={b['kernel_path']} openmp={b['openmp']} "
            f"flags={b['cflags']!r} from {os.path.dirname(bnnbench.__file__)}")
