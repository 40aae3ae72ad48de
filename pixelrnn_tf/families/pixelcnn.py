"""PixelCNN (paper Section 3.4, Figure 5): 7x7 mask A, residual blocks, output layers.

Default size: 16 residual blocks of h=32 with 3x11 masked convs (616k parameters,
about `tfd.PixelCNN`'s). The paper gives no binarized-MNIST size; its 3x3 blocks
(`kernel_width=3`) leave a blind spot that wider blocks shrink (docs/RESULTS.md).
"""

import dataclasses

import keras
import tensorflow as tf

from pixelrnn_tf.families import base
from pixelrnn_tf.families import common
from pixelrnn_tf.layers import MaskedConv2D


@dataclasses.dataclass(frozen=True)
class Block:
  """A residual block's convolutions and the symbolic input of its 3 x k one."""
  conv_in: MaskedConv2D
  conv: MaskedConv2D
  conv_out: MaskedConv2D
  conv_input: keras.KerasTensor


@dataclasses.dataclass(frozen=True)
class Parts:
  image: keras.KerasTensor  # the scaled image, the first layer's input
  first: MaskedConv2D
  blocks: list
  output: common.OutputLayers


def network(x, config, images, labels):
  """The PixelCNN of `config` on scaled images `x`: `(logits, Parts)`.

  Each block: ReLU, 1x1 conv 2h->h, ReLU, 3 x `config.kernel_width` (paper: 3x3)
  mask-B conv h->h, ReLU, dropout (`common.residual_dropout`), 1x1 conv h->2h,
  added to the block input. All convolutions are masked (type B) so that the
  colour groups stay causal.
  """
  del images, labels  # unconditional, on the scaled image only
  groups = config.num_channels
  h = config.hidden_dims
  image = x
  x, first = common.first_layer(x, config)  # (B, H, W, 2h)
  blocks = []
  for i in range(config.num_layers):
    y = keras.layers.ReLU()(x)
    conv_in = MaskedConv2D(h, 1, num_groups=groups, activation="relu",
                           name=f"block{i}_in")
    conv = MaskedConv2D(h, (3, config.kernel_width), num_groups=groups,
                        activation="relu", name=f"block{i}_conv")
    y = conv_in(y)
    conv_input = y
    y = common.residual_dropout(conv(y), config, f"block{i}_dropout")
    conv_out = MaskedConv2D(2 * h, 1, num_groups=groups, name=f"block{i}_out")
    x = keras.layers.Add(name=f"block{i}_residual")([x, conv_out(y)])  # (B,H,W,2h)
    blocks.append(Block(conv_in, conv, conv_out, conv_input))
  logits, output = common.output_layers(x, config)
  return logits, Parts(image, first, blocks, output)


def cached_network(model, parts, inputs, start_row):
  """Keeps the input rows of the 7x7 and 3 x k convolutions in row caches
  (`MaskedConv2D.start_cache`); a pixel step runs pixel (i, j) through the residual
  blocks, and each row's end moves every cache down a row."""
  maps = base.maps_of(model, inputs,
                      [parts.image] + [b.conv_input for b in parts.blocks])
  convs = [parts.first] + [block.conv for block in parts.blocks]
  caches = [conv.start_cache(m, start_row) for conv, m in zip(convs, maps)]
  first = parts.first.pixel_fn()
  blocks = [(b.conv_in.vector_fn(), b.conv, b.conv.pixel_fn(), b.conv_out.vector_fn())
            for b in parts.blocks]

  def pixel_step(i, j, caches):
    del i  # the caches hold the current row
    caches = list(caches)
    x = first(caches[0], j)  # (B, 2h)
    for b, (conv_in, conv, at_pixel, conv_out) in enumerate(blocks, start=1):
      caches[b] = conv.write(caches[b], j, conv_in(tf.nn.relu(x)))
      x = x + conv_out(at_pixel(caches[b], j))
    return x, caches

  def write_pixel(caches, i, j, pixel):
    del i
    return [parts.first.write(caches[0], j, pixel)] + list(caches[1:])

  def row_end(i, caches):
    del i
    return [conv.next_row(cache) for conv, cache in zip(convs, caches)]

  return base.CachedNetwork(pixel_step, caches, write_pixel,
                            parts.output.vector_fn(), row_end)


def check_config(config):
  if config.kernel_width < 1 or config.kernel_width % 2 == 0:
    raise ValueError("Invalid `kernel_width`. Expected an odd width >= 1. "
                     f"Received: kernel_width={config.kernel_width}")


FAMILY = base.Family(
    name="pixelcnn", network=network, cached_network=cached_network,
    default_sizes=dict(num_layers=16, hidden_dims=32, output_dims=64,
                       kernel_width=11),
    check_config=check_config)
