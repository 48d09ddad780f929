from libc.stdint cimport uint32_t, uint64_t

# One source serves both word widths: every kernel is written once over
# word_t and Cython stamps out the 32- and 64-bit versions.
ctypedef fused word_t:
    uint32_t
    uint64_t
