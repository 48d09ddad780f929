"""What both peer adapters share: importing TensorFlow quietly with the
Keras its converters need, caching converted models, and the timed call
(copy the input in, invoke, copy the output out)."""
import contextlib
import functools
import hashlib
import os
import sys


def import_tensorflow():
    # larq 0.14 and LCE's converter need Keras 2 (tf-keras) under TF 2.16;
    # TF reads this variable once, on its first import.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")   # its C++ start-up noise
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")   # converter chatter about unbuilt metrics
    return tf


@contextlib.contextmanager
def native_stderr_quiet():
    """The converters log through absl and the interpreters announce their
    delegates from C++, straight to file descriptor 2, whatever
    TF_CPP_MIN_LOG_LEVEL says: silence that descriptor while they run, so a
    sweep's terminal keeps its progress line and its one-line errors."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:   # no descriptor 2 to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def weights_key(w):
    """A cache key for weights: converted models are reused across thread
    counts and repeated calls with the same layer."""
    return hashlib.sha1(w.tobytes()).hexdigest(), w.shape


def cached(fn):
    return functools.lru_cache(maxsize=16)(fn)


def keras_layer_args(w, stride, padding):
    f, kh, kw, _ = w.shape
    return dict(filters=f, kernel_size=(kh, kw), strides=(stride, stride), padding=padding,
                use_bias=False)


def keras_kernel(w):
    """OHWI -> Keras HWIO."""
    return w.transpose(1, 2, 3, 0)
