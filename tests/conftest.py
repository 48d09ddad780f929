import os

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_report_header(config):
    import bnnbench
    b = bnnbench.BUILD
    return (f"bnnbench kernels: path={b['kernel_path']} openmp={b['openmp']} "
            f"flags={b['cflags']!r} from {os.path.dirname(bnnbench.__file__)}")
