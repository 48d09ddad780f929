"""bnnbench: what binarization buys on this device, measured.

    bnnbench.METHODS                        methods available in this build
    bnnbench.gemm(method, a, b, threads=1)  C = a @ b by one method
    bnnbench.pack_signs(x, word_bits=64)    sign bits of x packed along the last axis
    bnnbench.CONV_METHODS                   whole-layer methods this build and install offer
    bnnbench.conv2d(method, x, w, stride=1, padding="valid", threads=1)
                                            one conv layer, NHWC x and OHWI w
"""
from .methods.conv import CONV_METHODS, conv2d
from .errors import BnnbenchError
from .methods.kernels import BUILD, METHODS, gemm, pack_signs

__version__ = "0.1.0"
__all__ = ["BUILD", "CONV_METHODS", "METHODS", "BnnbenchError", "conv2d", "gemm", "pack_signs",
           "__version__"]
