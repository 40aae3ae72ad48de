"""Layers every family shares: the 7x7 mask-A input layer, the output layers, and
residual dropout, each with what a cached sampler needs of it; and the default size
of every family but the PixelCNN."""

import dataclasses

import keras
import tensorflow as tf

from pixelrnn_tf import distributions
from pixelrnn_tf.layers import MaskedConv2D


# The default size of every family but the PixelCNN (`Family.default_sizes`).
DEFAULT_SIZES = dict(num_layers=12, hidden_dims=16, output_dims=32, kernel_width=3)


def first_layer(x, config):
  """The paper's 7x7 mask-A convolution to `2h` maps: it never sees x[i, j, c].

  Returns:
    `(y, conv)`: its output `(B, H, W, 2h)` and the layer.
  """
  conv = MaskedConv2D(2 * config.hidden_dims, 7, mask_type="A",
                      num_groups=config.num_channels, name="input_conv")
  return conv(x), conv


@dataclasses.dataclass(frozen=True)
class OutputLayers:
  """The two 1x1 output convolutions (`output_layers`)."""
  hidden: MaskedConv2D
  logits: MaskedConv2D

  def vector_fn(self):
    """Returns `fn(x) -> (B, C*K)`: the logits at one pixel from its `(B, maps)`
    input, in float32."""
    hidden, logits = self.hidden.vector_fn(), self.logits.vector_fn()
    return lambda x: logits(hidden(tf.nn.relu(x)))


def output_layers(x, config):
  """ReLU, 1x1 mask-B conv, ReLU, 1x1 mask-B conv to logits `(B, H, W, C, K)`.

  Returns:
    `(logits, OutputLayers)`.
  """
  groups = config.num_channels
  k = distributions.num_logits(config.num_levels)
  x = keras.layers.ReLU()(x)
  hidden = MaskedConv2D(config.output_dims, 1, num_groups=groups,
                        activation="relu", name="output_conv_1")
  # The logits are float32 under a mixed-precision policy too (the head needs them).
  logits = MaskedConv2D(groups * k, 1, num_groups=groups, dtype="float32",
                        name="output_conv_2")
  x = logits(hidden(x))
  # (B, H, W, C*K) -> (B, H, W, C, K): channel c*K + k is in colour group c.
  x = keras.layers.Reshape(config.image_shape + (k,), dtype="float32",
                           name="logits")(x)
  return x, OutputLayers(hidden, logits)


def residual_dropout(y, config, name):
  """Dropout at `config.dropout` on a residual branch's hidden maps (training only).

  It acts on each feature of each pixel on its own, so it keeps every mask's
  causality; at inference it is the identity (the cached samplers skip it).
  """
  if not config.dropout:
    return y
  return keras.layers.Dropout(config.dropout, name=name)(y)


def check_kernel_width(config):
  """For families without a block kernel: `kernel_width` must stay 3."""
  if config.kernel_width != 3:
    raise ValueError(
        "`kernel_width` sets the PixelCNN's residual-block kernel; "
        f"model={config.model!r} has no such kernel. Drop --kernel_width.")
