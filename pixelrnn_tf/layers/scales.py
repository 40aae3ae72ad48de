"""Moving between an image and its subsampled small image (multi-scale PixelRNN).

The small image of a `(B, H, W, C)` map with factor `f` holds the pixels `(f*a, f*b)`:
`(B, H/f, W/f, C)`, `x[:, ::f, ::f]`. `Subsample` takes it; `PlaceSubsampled`
(`place_subsampled`) puts per-pixel values of the small image back at those positions
of a full-size map.
"""

import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf.layers.shift import slice_axis


def subsampled_positions(height, width, factor):
  """`(H, W)` bool: True at the pixels `(f*a, f*b)` of the small image."""
  mask = np.zeros((height, width), bool)
  mask[::factor, ::factor] = True
  return mask


def place_subsampled(small, full, factor):
  """`full` `(B, H, W, ...)` with `small` `(B, H/f, W/f, ...)` at the pixels
  `(f*a, f*b)`: `small[a, b]` there, `full` everywhere else (any dtype)."""
  height, width = full.shape[1:3]
  trailing = full.shape[3:]
  # (B, H/f, 1, W/f, 1, ...) padded to (B, H/f, f, W/f, f, ...): zeros off-grid.
  blocks = tf.expand_dims(tf.expand_dims(small, 2), 4)
  no_pad = [[0, 0]] * len(trailing)
  blocks = tf.pad(blocks, [[0, 0], [0, 0], [0, factor - 1], [0, 0], [0, factor - 1]]
                  + no_pad)
  placed = tf.reshape(blocks, [-1, height, width, *trailing])
  on_grid = subsampled_positions(height, width, factor).reshape(
      (1, height, width) + (1,) * len(trailing))
  return placed + tf.cast(~on_grid, full.dtype) * full


class _FactorLayer(keras.layers.Layer):
  """A layer with a subsampling `factor` that divides the input's H and W."""

  def __init__(self, factor, **kwargs):
    super().__init__(**kwargs)
    self.factor = factor

  def _check_divides(self, height, width):
    if height % self.factor or width % self.factor:
      raise ValueError(
          f"Invalid image size for subsampling by {self.factor}. Expected H and W "
          f"divisible by {self.factor}. Received: H={height}, W={width}")

  def get_config(self):
    return super().get_config() | {"factor": self.factor}


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class Subsample(_FactorLayer):
  """`(B, H, W, C) -> (B, H/f, W/f, C)`: the pixels `(f*a, f*b)`, `x[:, ::f, ::f]`."""

  def call(self, inputs):
    height, width, channels = inputs.shape[1:]
    self._check_divides(height, width)
    f = self.factor
    blocks = tf.reshape(inputs, [-1, height // f, f, width // f, f, channels])
    corner = slice_axis(slice_axis(blocks, 2, 0, 1), 4, 0, 1)  # top-left of a block
    return tf.reshape(corner, [-1, height // f, width // f, channels])

  def compute_output_shape(self, input_shape):
    batch, height, width, channels = input_shape
    return (batch, height // self.factor, width // self.factor, channels)


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class PlaceSubsampled(_FactorLayer):
  """Overwrites a full map at the small image's pixels with the small map's values.

  Inputs `[small, full]`: `small` `(B, H/f, W/f, ...)`, `full` `(B, H, W, ...)` with
  the same trailing shape. Output `(B, H, W, ...)`: `small[a, b]` at `(f*a, f*b)`,
  `full` everywhere else.
  """

  def call(self, inputs):
    small, full = inputs
    self._check_divides(*full.shape[1:3])
    return place_subsampled(small, full, self.factor)

  def compute_output_shape(self, input_shape):
    return input_shape[1]
