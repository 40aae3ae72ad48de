"""PixelRNN with Row LSTM layers (paper Section 3.1): a triangular context."""

from pixelrnn_tf.families import base
from pixelrnn_tf.families import common
from pixelrnn_tf.families import recurrent_stack
from pixelrnn_tf.layers import RowLSTM


def make_layer(units, groups, name):
  """A Row LSTM layer of the stack (`recurrent_stack.network`'s `make_layer`)."""
  return RowLSTM(units, num_groups=groups, name=name)


def network(x, config, images, labels):
  """The Row LSTM network of `config` on scaled images `x`: `(logits, Stack)`."""
  del images, labels
  return recurrent_stack.network(x, config, make_layer)


FAMILY = base.Family(
    name="row_lstm", network=network, cached_network=recurrent_stack.cached_network,
    default_sizes=common.DEFAULT_SIZES,
    check_config=common.check_kernel_width)
