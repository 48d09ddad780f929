"""TF Lite float twin: a Keras Conv2D (zero padding) converted by
tf.lite.TFLiteConverter and run by tf.lite.Interpreter, which applies the
XNNPACK delegate to float models by default."""
import numpy as np

from .engine import cached, import_tensorflow, keras_kernel, keras_layer_args, weights_key

REQUIRES = ("tensorflow",)


@cached
def _flatbuffer(x_shape, key, stride, padding, w_bytes):
    tf = import_tensorflow()
    w = np.frombuffer(w_bytes, dtype=np.float32).reshape(key[1])
    inp = tf.keras.Input(shape=x_shape[1:], batch_size=x_shape[0])
    layer = tf.keras.layers.Conv2D(**keras_layer_args(w, stride, padding))
    model = tf.keras.Model(inp, layer(inp))
    layer.set_weights([keras_kernel(w)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def prepare(name, x, w, stride, padding, threads):
    tf = import_tensorflow()
    model = _flatbuffer(x.shape, weights_key(w), stride, padding, w.tobytes())
    interp = tf.lite.Interpreter(model_content=model, num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    outp = interp.get_output_details()[0]["index"]

    def run():
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(outp)
    run.held_bytes = len(model) + 2 * x.nbytes + 2 * int(np.prod(
        interp.get_output_details()[0]["shape"])) * 4
    return run
