"""Slicing and shifting layers (`pixelrnn_tf.layers.shift`): values, shapes, config."""

import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf.layers import ShiftDown
from pixelrnn_tf.layers import SliceAxis
from pixelrnn_tf.layers import shift


def test_slice_axis_matches_numpy_slicing():
  x = np.arange(2 * 5 * 3).reshape(2, 5, 3)
  np.testing.assert_array_equal(shift.slice_axis(tf.constant(x), 1, 1, 3), x[:, 1:4])
  np.testing.assert_array_equal(shift.slice_axis(tf.constant(x), -1, 0, 2), x[..., :2])


def test_shift_down_moves_rows_down_and_zeros_the_first():
  x = np.random.default_rng(0).normal(size=(2, 4, 3, 5)).astype(np.float32)
  y = ShiftDown()(x).numpy()
  np.testing.assert_array_equal(y[:, 0], 0.0)
  np.testing.assert_array_equal(y[:, 1:], x[:, :-1])


def test_slice_axis_layer_in_a_saved_model(tmp_path):
  inputs = keras.Input((4, 6, 2))
  outputs = SliceAxis(2, 1, 4, name="crop")(ShiftDown(name="shift")(inputs))
  model = keras.Model(inputs, outputs)
  assert model.output.shape == (None, 4, 4, 2)
  x = np.random.default_rng(1).normal(size=(3, 4, 6, 2)).astype(np.float32)
  expected = np.pad(x[:, :-1], [(0, 0), (1, 0), (0, 0), (0, 0)])[:, :, 1:5]
  np.testing.assert_array_equal(model(x).numpy(), expected)
  path = str(tmp_path / "m.keras")
  model.save(path)
  np.testing.assert_array_equal(keras.models.load_model(path)(x).numpy(), expected)
