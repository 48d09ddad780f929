"""Sign + bit-packing on its own.

pack_panels is what binarize_xnor_64_omp adds to xnor_64_omp in its timed
call: the activations B (K x N) to sign bits in the xnor kernels' panel
layout. pack_signs packs weights A (M x K) along K, done once per layer.
"""
import numpy as np

from .common import THREADS, PinnedBlas, kernels, operands, shape, skip_threads_without_openmp

WORD_BITS = [32, 64]
# One size that fits in cache and one that does not.
PACK_CHANNELS = [32, 256]


class TimePackPanels(PinnedBlas):
    params = [WORD_BITS, PACK_CHANNELS, THREADS]
    param_names = ["word_bits", "channels", "threads"]
    timeout = 300
    repeat = (5, 20, 5.0)

    def setup(self, word_bits, channels, threads):
        skip_threads_without_openmp(threads)
        self.pin_blas(threads)
        _, self.b = operands(shape(channels))
        self.panels = kernels.pack_panels(self.b, word_bits, threads)
        # The layout's contract: column j of B is packed like a row of its own.
        if not np.array_equal(self.panels[0, :, 0], kernels.pack_signs(self.b[:, 0], word_bits)):
            raise AssertionError("pack_panels disagrees with pack_signs on column 0")

    def time_pack_panels(self, word_bits, channels, threads):
        kernels.pack_panels(self.b, word_bits, threads, out=self.panels)


class TimePackSigns:
    # pack_signs has no threads argument: one thread, said as a parameter
    # so that every row of the suites has a thread count.
    params = [WORD_BITS, PACK_CHANNELS, [1]]
    param_names = ["word_bits", "channels", "threads"]
    timeout = 300
    repeat = (5, 20, 5.0)

    def setup(self, word_bits, channels, threads):
        self.a, _ = operands(shape(channels))

    def time_pack_signs(self, word_bits, channels, threads):
        kernels.pack_signs(self.a, word_bits)
