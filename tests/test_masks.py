"""Masks and MaskedConv2D: literal masks, causality of one layer, equality with the
full masked convolution, config, errors."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from pixelrnn_tf import masks
from pixelrnn_tf.layers import MaskedConv2D
from pixelrnn_tf.layers import masked_conv


def test_3x3_single_group_masks_are_literal():
  a = masks.causal_kernel_mask((3, 3), 1, 1, "A", 1)[..., 0, 0]
  b = masks.causal_kernel_mask((3, 3), 1, 1, "B", 1)[..., 0, 0]
  np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
  np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


def test_rgb_centre_masks_are_literal():
  # Rows: input R, G, B; columns: output R, G, B.
  np.testing.assert_array_equal(masks.channel_mask(3, 3, "A", 3),
                                [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
  np.testing.assert_array_equal(masks.channel_mask(3, 3, "B", 3),
                                [[1, 1, 1], [0, 1, 1], [0, 0, 1]])


def test_rgb_hidden_groups_are_contiguous():
  np.testing.assert_array_equal(masks.channel_groups(6, 3), [0, 0, 1, 1, 2, 2])
  # Output R group (first 2 of 6) under mask A sees no input channel at the centre.
  centre = masks.causal_kernel_mask((3, 3), 3, 6, "A", 3)[1, 1]
  np.testing.assert_array_equal(centre[:, :2], 0)
  np.testing.assert_array_equal(centre[0, 2:], 1)  # G and B see R
  # Off-centre taps above are fully open, taps to the right fully closed.
  full = masks.causal_kernel_mask((3, 3), 3, 6, "A", 3)
  assert full[0].all() and not full[1, 2].any() and not full[2].any()


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("groups", [1, 3])
def test_masked_conv_output_ignores_future_inputs(mask_type, groups):
  layer = MaskedConv2D(6, 3, mask_type=mask_type, num_groups=groups,
                       kernel_initializer="random_normal")
  rng = np.random.default_rng(1)
  x = rng.normal(size=(1, 5, 5, 3)).astype(np.float32)
  base = layer(x).numpy()
  out_group = masks.channel_groups(6, groups)
  in_group = masks.channel_groups(3, groups)
  for c in range(3):
    y = x.copy()
    y[0, 2, 2, c] += 10.0
    changed = np.abs(layer(y).numpy() - base) > 1e-6  # (1, 5, 5, 6)
    # Nothing before (2, 2) in raster order may change.
    assert not changed[0, :2].any() and not changed[0, 2, :2].any()
    # At (2, 2): only output groups allowed to see input group of channel c.
    if mask_type == "A":
      allowed = out_group > in_group[c]
    else:
      allowed = out_group >= in_group[c]
    assert not changed[0, 2, 2, ~allowed].any()
    assert changed[0, 2, 2, allowed].all()
    # And later pixels do see it (the test can fail).
    assert changed[0, 3, 2].any()


@pytest.mark.parametrize("kernel_size", [3, 7, (1, 3), (1, 5), (3, 5)])
@pytest.mark.parametrize("mask_type, groups", [("A", 1), ("B", 1), ("A", 3), ("B", 3)])
def test_masked_conv_equals_same_conv_with_full_masked_kernel(kernel_size, mask_type,
                                                              groups):
  """The layer convolves only the kept taps; the result is the full 'same' one."""
  layer = MaskedConv2D(6, kernel_size, mask_type=mask_type, num_groups=groups,
                       kernel_initializer="random_normal",
                       bias_initializer="random_normal")
  x = np.random.default_rng(2).normal(size=(2, 7, 9, 3)).astype(np.float32)
  got = layer(x).numpy()
  want = tf.nn.conv2d(x, layer.masked_kernel(), 1, "SAME") + layer.bias
  np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_config_round_trip_and_keras_save(tmp_path):
  inputs = keras.Input((6, 6, 3))
  outputs = MaskedConv2D(6, 5, mask_type="A", num_groups=3, name="mc")(inputs)
  model = keras.Model(inputs, outputs)
  layer = model.get_layer("mc")
  clone = MaskedConv2D.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
  np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mask_type="C"), "Invalid `mask_type`. Expected 'A' or 'B'. "
                          "Received: mask_type='C'"),
    (dict(num_groups=2), "Invalid `num_groups`"),
    (dict(padding="valid"), "Invalid `padding`"),
    (dict(data_format="channels_first"), "Invalid `data_format`"),
    (dict(padding="channels_last"), "Invalid `padding`"),
    (dict(data_format=1), "Invalid `data_format`"),
])
def test_bad_arguments_are_pinned(kwargs, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(
      ")", r"\)").replace(".", r"\.")):
    MaskedConv2D(4, 3, **kwargs)


def test_even_kernel_is_rejected():
  with pytest.raises(ValueError, match="odd"):
    MaskedConv2D(4, 2)(np.zeros((1, 4, 4, 1), np.float32))


@pytest.mark.parametrize("kernel_size, in_maps, out_maps, mask_type, groups", [
    ((3, 3), 3, 6, "A", 3), ((7, 7), 1, 4, "A", 1), ((3, 11), 32, 32, "B", 3),
    ((1, 3), 5, 7, "B", 3), ((1, 1), 6, 6, "A", 3)])
def test_the_mask_tensor_equals_the_mask(kernel_size, in_maps, out_maps, mask_type,
                                         groups):
  np.testing.assert_array_equal(
      masked_conv.mask_tensor(kernel_size, in_maps, out_maps, mask_type, groups),
      masks.causal_kernel_mask(kernel_size, in_maps, out_maps, mask_type, groups))


def test_the_mask_tensor_keeps_the_channel_mask_out_of_the_graphs_constants():
  # A SavedModel stores a graph's constants once per traced function: a 64 -> 768
  # channel mask as a constant would be 196 KB in each (the CIFAR-10 output layer).
  graph = tf.function(lambda: masked_conv.mask_tensor((1, 1), 64, 768, "B", 3))
  graph_def = graph.get_concrete_function().graph.as_graph_def()
  const_bytes = sum(n.ByteSize() for n in graph_def.node if n.op == "Const")
  assert const_bytes < 64 * 768  # the groups: (64 + 768) int32, not 64 x 768 floats
  np.testing.assert_array_equal(graph(),
                                masks.causal_kernel_mask((1, 1), 64, 768, "B", 3))
