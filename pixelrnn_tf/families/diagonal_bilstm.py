"""PixelRNN with Diagonal BiLSTM layers (paper Section 3.2): the full context."""

from pixelrnn_tf.families import base
from pixelrnn_tf.families import common
from pixelrnn_tf.families import recurrent_stack
from pixelrnn_tf.layers import DiagonalBiLSTM


def make_layer(units, groups, name):
  """A Diagonal BiLSTM layer of the stack (`recurrent_stack.network`'s
  `make_layer`)."""
  return DiagonalBiLSTM(units, num_groups=groups, name=name)


def network(x, config, images, labels):
  """The Diagonal BiLSTM network of `config` on scaled images `x`:
  `(logits, Stack)`.

  The image gets one zero column on the right (cropped before the output layers).
  Without it the last pixel of row `i - 1` would be lost to row `i`: the 7x7 mask-A
  conv puts `x[i-1, W-1]` on row `i - 1` only at columns >= W, outside the map, and
  row `i` reads its own row only leftwards. The extra column holds it, and the
  shifted right-to-left pass carries it to every pixel of row `i`. Its outputs
  depend on whole rows, so they are never used as logits.
  """
  del images, labels
  return recurrent_stack.network(x, config, make_layer, pad_right=1)


FAMILY = base.Family(
    name="diagonal_bilstm", network=network,
    cached_network=recurrent_stack.cached_network,
    default_sizes=common.DEFAULT_SIZES,
    check_config=common.check_kernel_width)
