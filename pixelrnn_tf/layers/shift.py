"""Slicing and shifting of feature maps, with gradients that are cheap on CPU.

A strided slice (`x[:, :-1]`, `Cropping2D`) has `StridedSliceGrad` as its gradient;
in op-level profiles of training steps on CPU that op was the largest single cost of
the Diagonal BiLSTM and of the Gated PixelCNN. `tf.slice`'s gradient is a pad.
"""

import keras
import tensorflow as tf


def slice_axis(x, axis, begin, size):
  """`x[..., begin:begin + size, ...]` along `axis`, as `tf.slice`."""
  axis %= x.shape.rank
  begins = [0] * x.shape.rank
  sizes = [-1] * x.shape.rank
  begins[axis], sizes[axis] = begin, size
  return tf.slice(x, begins, sizes)


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class ShiftDown(keras.layers.Layer):
  """Moves a map down one row: `(B, H, W, C) -> (B, H, W, C)`.

  Output row `r` is input row `r - 1`; row 0 is zeros, and the last input row is
  dropped. Needs a static `H`.
  """

  def call(self, inputs):
    height = inputs.shape[1]
    padded = tf.pad(inputs, [[0, 0], [1, 0], [0, 0], [0, 0]])  # (B, H+1, W, C)
    return slice_axis(padded, 1, 0, height)

  def compute_output_shape(self, input_shape):
    return input_shape


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class SliceAxis(keras.layers.Layer):
  """`x[..., begin:begin + size, ...]` along `axis` (`slice_axis` as a layer).

  Args:
    axis: the axis to slice (not the batch axis).
    begin: first index kept.
    size: number of indices kept.
    **kwargs: `keras.layers.Layer` arguments.
  """

  def __init__(self, axis, begin, size, **kwargs):
    super().__init__(**kwargs)
    self.axis, self.begin, self.size = axis, begin, size

  def call(self, inputs):
    return slice_axis(inputs, self.axis, self.begin, self.size)

  def compute_output_shape(self, input_shape):
    shape = list(input_shape)
    shape[self.axis] = self.size
    return tuple(shape)

  def get_config(self):
    return super().get_config() | dict(axis=self.axis, begin=self.begin,
                                       size=self.size)
