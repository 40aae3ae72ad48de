"""Small-image layers of the multi-scale PixelRNN (`pixelrnn_tf.layers.scales`)."""

import keras
import numpy as np
import pytest

from pixelrnn_tf.layers import PlaceSubsampled
from pixelrnn_tf.layers import Subsample


def test_subsample_takes_every_second_pixel():
  x = np.random.default_rng(0).normal(size=(2, 6, 4, 3)).astype(np.float32)
  np.testing.assert_array_equal(Subsample(2)(x).numpy(), x[:, ::2, ::2])


def test_place_subsampled_overwrites_exactly_the_small_image_pixels():
  rng = np.random.default_rng(1)
  full = rng.normal(size=(2, 4, 6, 3, 5)).astype(np.float32)
  small = rng.normal(size=(2, 2, 3, 3, 5)).astype(np.float32)
  out = PlaceSubsampled(2)([small, full]).numpy()
  expected = full.copy()
  expected[:, ::2, ::2] = small
  np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("layer", [Subsample(2), PlaceSubsampled(2)])
def test_odd_sizes_are_refused(layer):
  x = np.zeros((1, 5, 4, 1), np.float32)
  inputs = [x[:, :3, :2], x] if isinstance(layer, PlaceSubsampled) else x
  with pytest.raises(ValueError, match="Expected H and W divisible by 2"):
    layer(inputs)


def test_config_round_trip():
  for layer in (Subsample(2, name="s"), PlaceSubsampled(2, name="p")):
    clone = type(layer).from_config(layer.get_config())
    assert clone.factor == 2 and clone.name == layer.name
  inputs = keras.Input((4, 4, 1))
  model = keras.Model(inputs, Subsample(2)(inputs))
  assert model.output.shape == (None, 2, 2, 1)
