"""Each layer's one-pixel step computes what its `call` computes for the whole map.

A step is driven here as a sampler drives it: caches started from a blank map, the
input written pixel by pixel in raster order, rows ended in turn; its output at
every pixel must equal the layer's output for the whole input map.
"""

import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf.layers import DiagonalBiLSTM
from pixelrnn_tf.layers import MaskedConv2D
from pixelrnn_tf.layers import RowLSTM

B, H, W = 2, 4, 5


def random_map(channels, seed=0):
  return tf.constant(np.random.default_rng(seed).normal(size=(B, H, W, channels)),
                     tf.float32)


def output_with_random_weights(layer, inputs):
  """Builds `layer` for `inputs`, gives it random weights, and returns its output
  for the whole map."""
  layer(inputs)  # builds the weights
  rng = np.random.default_rng(1)
  for v in layer.weights:
    v.assign(rng.normal(0.0, 0.5, v.shape).astype(np.float32))
  return layer(inputs).numpy()


@pytest.mark.parametrize("kernel_size, mask_type, groups", [
    ((7, 7), "A", 1), ((3, 5), "B", 3), ((1, 3), "A", 3), ((3, 11), "B", 1)])
def test_masked_conv_pixel_fn_matches_call(kernel_size, mask_type, groups):
  layer = MaskedConv2D(6, kernel_size, mask_type=mask_type, num_groups=groups,
                       activation="relu")
  inputs = random_map(3)
  expected = output_with_random_weights(layer, inputs)
  at_pixel = layer.pixel_fn()
  cache = layer.start_cache(tf.zeros_like(inputs), 0)
  for i in range(H):
    for j in range(W):
      cache = layer.write(cache, j, inputs[:, i, j])
      np.testing.assert_allclose(at_pixel(cache, j), expected[:, i, j], atol=1e-5)
    cache = layer.next_row(cache)


def test_masked_conv_row_cache_starts_at_any_row():
  layer = MaskedConv2D(4, (3, 3), num_groups=1)
  inputs = random_map(2)
  expected = output_with_random_weights(layer, inputs)
  for row in range(H):
    cache = layer.start_cache(inputs, tf.constant(row))
    np.testing.assert_allclose(layer.pixel_fn()(cache, 2), expected[:, row, 2],
                               atol=1e-5)
  with pytest.raises(ValueError, match="`vector_fn` is for 1x1 kernels"):
    layer.vector_fn()


def test_row_lstm_step_matches_call():
  layer = RowLSTM(3, num_groups=3)
  inputs = random_map(6)
  expected = output_with_random_weights(layer, inputs)
  step = layer.step_fn()
  state = layer.start_state(tf.zeros_like(inputs))
  for i in range(H):
    for j in range(W):
      h, state = step(state, i, j, inputs[:, i, j])
      np.testing.assert_allclose(h, expected[:, i, j], atol=1e-5)


def test_diagonal_bilstm_steps_match_call():
  layer = DiagonalBiLSTM(3, num_groups=1)
  inputs = random_map(4)
  expected = output_with_random_weights(layer, inputs)
  step, row = layer.step_fn(), layer.row_fn()
  state = layer.start_state(tf.zeros_like(inputs))
  for i in range(H):
    for j in range(W):
      y, state = step(state, i, j, inputs[:, i, j])
      np.testing.assert_allclose(y, expected[:, i, j], atol=1e-5)
    state = row(state, i)
