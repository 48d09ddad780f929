"""The sweep's turn-taking: which turns get the BLAS settle pause."""
from bnnbench.measure import sweep


def test_kernels_wait_out_spinning_blas_workers(monkeypatch):
    log = []

    class FakeLimit:
        def __init__(self, threads):
            log.append(f"limit {threads}")

        def restore_original_limits(self):
            log.append("restore")

    monkeypatch.setattr(sweep.time, "sleep", lambda s: log.append("sleep"))
    monkeypatch.setattr(sweep.kernels, "blas_threads", FakeLimit)
    steps = [(1, "float_blas"), (1, "xnor_64"), (1, "xnor_32"),
             (2, "float_blas"), (2, "xnor_64_omp"), (2, "xnor_32_omp")]
    turns = sweep._Turns(steps)
    for _ in range(2):
        for i, (threads, name) in enumerate(steps):
            turns(i)
            log.append(f"{name}@{threads}")
    turns.close()
    one_round = [
        "float_blas@1",
        "sleep", "xnor_64@1",       # the limit just changed: workers may spin
        "xnor_32@1",                # a 1-thread BLAS call leaves none spinning
        "restore", "limit 2", "float_blas@2",
        "sleep", "xnor_64_omp@2",   # after a 2-thread BLAS call
        "xnor_32_omp@2",
    ]
    assert log == (["limit 1"] + one_round + ["restore", "limit 1"] + one_round
                   + ["restore"])
