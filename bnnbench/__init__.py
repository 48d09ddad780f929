"""bnnbench: what binarization buys on this device, measured.

    bnnbench.METHODS                        methods available in this build
    bnnbench.gemm(method, a, b, threads=1)  C = a @ b by one method
    bnnbench.pack_signs(x, word_bits=64)    sign bits of x packed along the last axis
"""
from .errors import BnnbenchError
from .kernels import BUILD, METHODS, gemm, pack_signs

__version__ = "0.1.0"
__all__ = ["BUILD", "METHODS", "BnnbenchError", "gemm", "pack_signs", "__version__"]
