"""Larq Compute Engine: a larq QuantConv2D (ste_sign on input and kernel,
pad_values=1 so "same" pads with +1 as bnnbench's binary layers do) converted
with larq_compute_engine.convert_keras_model, run by LCE's interpreter as
LceQuantize + LceBconv2d. Its float output is the integer count sign(x) (*)
sign(w) and is returned as int32.

On x86 LCE runs portable C++ kernels (its optimised kernels are for 32- and
64-bit ARM), so this is the deployed engine's figure, not an x86 ceiling.
"""
import numpy as np

from ...errors import BnnbenchError
from .engine import cached, import_tensorflow, keras_kernel, keras_layer_args, weights_key

REQUIRES = ("larq_compute_engine", "larq", "tensorflow")


@cached
def _flatbuffer(x_shape, key, stride, padding, w_bytes):
    import_tensorflow()
    import larq as lq
    import larq_compute_engine as lce
    import tensorflow as tf
    w = np.frombuffer(w_bytes, dtype=np.float32).reshape(key[1])
    inp = tf.keras.Input(shape=x_shape[1:], batch_size=x_shape[0])
    layer = lq.layers.QuantConv2D(**keras_layer_args(w, stride, padding), pad_values=1.0,
                                  input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                  kernel_constraint="weight_clip")  # training only; quiets larq
    model = tf.keras.Model(inp, layer(inp))
    layer.set_weights([keras_kernel(w)])
    return lce.convert_keras_model(model)


def prepare(name, x, w, stride, padding, threads):
    import_tensorflow()   # first: importing LCE imports TensorFlow
    from larq_compute_engine.tflite.python.interpreter import Interpreter
    model = _flatbuffer(x.shape, weights_key(w), stride, padding, w.tobytes())
    try:
        interp = Interpreter(model, num_threads=threads,
                             use_indirect_bgemm=name == "lce_bconv2d_indirect")
    except TypeError as exc:  # an LCE without the indirect kernel switch
        raise BnnbenchError(f"{name}: this larq-compute-engine lacks use_indirect_bgemm "
                            f"({exc}); install larq-compute-engine==0.16.0") from None
    lite = interp.interpreter
    out = np.empty(lite.output_shapes[0], dtype=np.int32)

    def run():
        out[...] = lite.predict([x])[0]
        return out
    run.held_bytes = len(model) + x.nbytes + 2 * out.nbytes
    return run
