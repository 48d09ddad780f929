"""How these kernels were built: flags, compiler, code path, OpenMP."""

cdef extern from "bnn_config.h":
    const char* BNNBENCH_CFLAGS
    const char* BNN_COMPILER
    const char* BNN_PATH
    int BNN_HAVE_OPENMP


def build_info():
    return {
        "cflags": BNNBENCH_CFLAGS.decode(),
        "compiler": BNN_COMPILER.decode(),
        "kernel_path": BNN_PATH.decode(),
        "openmp": bool(BNN_HAVE_OPENMP),
    }
