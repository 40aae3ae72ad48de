"""The PixelRNN body (paper Section 3.3, Figure 5) around recurrent layers, shared by
the Row LSTM, Diagonal BiLSTM and multi-scale families, and its cached network."""

import dataclasses

import keras
import tensorflow as tf

from pixelrnn_tf.families import base
from pixelrnn_tf.families import common
from pixelrnn_tf.layers import MaskedConv2D
from pixelrnn_tf.layers import SliceAxis


@dataclasses.dataclass(frozen=True)
class Stack:
  """The layers of a recurrent stack and the symbolic maps a sampler caches.

  Attributes:
    image: the first layer's input (the scaled image, padded right if asked).
    first: the 7x7 mask-A convolution.
    recurrent: the recurrent layers (each with `start_state` and `step_fn`, and
      `row_fn` if it reads whole rows).
    inputs: each recurrent layer's symbolic input.
    outs, skips: each block's 1x1 residual and skip convolutions.
    biases: each layer's symbolic conditioning map, or None.
    output: the output layers.
  """
  image: keras.KerasTensor
  first: MaskedConv2D
  recurrent: list
  inputs: list
  outs: list
  skips: list
  biases: list | None
  output: common.OutputLayers


def network(x, config, make_layer, pad_right=0, conditioning=None):
  """PixelRNN body: `(logits, Stack)`.

  7x7 mask-A conv to `2h` maps, then `config.num_layers` blocks: a recurrent layer
  `2h -> h` and a 1x1 mask-B conv `h -> 2h` added to the block input (residual).
  Each block's output also feeds a learnable skip connection (a 1x1 mask-B conv
  `2h -> 2h`); the skips are summed into `common.output_layers`.

  Args:
    x: scaled images `(B, H, W, C)`.
    config: `ModelConfig`.
    make_layer: `fn(units, num_groups, name) -> layer`, `(B,H,W,2h) -> (B,H,W,h)`.
    pad_right: zero columns added right of the image before the first layer and
      cropped before the output layers (see `diagonal_bilstm`).
    conditioning: None, or maps `(B, H, W, c)` that every recurrent layer reads
      at each pixel: a learned 1x1 convolution of them (unmasked: they must hold
      only what precedes every pixel) is added to the layer's input.
  """
  groups = config.num_channels
  h = config.hidden_dims
  if pad_right:
    x = keras.layers.ZeroPadding2D(((0, 0), (0, pad_right)), name="pad_right")(x)
  image = x
  x, first = common.first_layer(x, config)  # (B, H, W + pad_right, 2h)
  recurrent, inputs, outs, skips, skip_maps = [], [], [], [], []
  biases = [] if conditioning is not None else None
  for i in range(config.num_layers):
    y = x
    if conditioning is not None:
      bias = keras.layers.Conv2D(2 * h, 1, name=f"layer{i}_bias")(conditioning)
      biases.append(bias)
      y = keras.layers.Add(name=f"layer{i}_biased")([x, bias])
    layer = make_layer(h, groups, f"layer{i}_lstm")
    inputs.append(y)
    y = common.residual_dropout(layer(y), config, f"layer{i}_dropout")  # (B,H,W,h)
    out = MaskedConv2D(2 * h, 1, num_groups=groups, name=f"layer{i}_out")
    x = keras.layers.Add(name=f"layer{i}_residual")([x, out(y)])  # (B, H, W, 2h)
    skip = MaskedConv2D(2 * h, 1, num_groups=groups, name=f"layer{i}_skip")
    skip_maps.append(skip(x))
    recurrent.append(layer)
    outs.append(out)
    skips.append(skip)
  if len(skip_maps) > 1:
    x = keras.layers.Add(name="skips")(skip_maps)  # (B, H, W, 2h)
  else:
    x = skip_maps[0]
  if pad_right:
    x = SliceAxis(2, 0, x.shape[2] - pad_right, name="crop_right")(x)
  logits, output = common.output_layers(x, config)  # (B, H, W, C, K)
  return logits, Stack(image, first, recurrent, inputs, outs, skips, biases,
                       output)


def cached_network(model, stack, inputs, start_row):
  """Caches the 7x7 conv's input rows and each recurrent layer's state
  (`start_state`); a pixel step runs pixel (i, j) through the blocks to the sum of
  the skips, each layer by its own `step_fn`. Layers with a `row_fn` (they read
  whole rows) get it once a row is drawn, after a step through the padding column
  right of the image (`network`'s `pad_right`); then the 7x7 conv's cache moves
  down a row. A conditioned stack adds each layer's bias map, read at the
  pixel."""
  biases = stack.biases or []
  maps = base.maps_of(model, inputs, [stack.image] + stack.inputs + biases)
  num_layers = len(stack.recurrent)
  states = [layer.start_state(m)
            for layer, m in zip(stack.recurrent, maps[1:1 + num_layers])]
  bias_maps = maps[1 + num_layers:]
  caches = {"image": stack.first.start_cache(maps[0], start_row), "layers": states}
  first = stack.first.pixel_fn()
  blocks = [(layer.step_fn(), out.vector_fn(), skip.vector_fn())
            for layer, out, skip in zip(stack.recurrent, stack.outs, stack.skips)]

  def pixel_step(i, j, caches):
    states = list(caches["layers"])
    x = first(caches["image"], j)  # (B, 2h)
    skips = 0.0
    for b, (step, out, skip) in enumerate(blocks):
      x_in = x + bias_maps[b][:, i, j] if bias_maps else x
      h, states[b] = step(states[b], i, j, x_in)
      x = x + out(h)
      skips += skip(x)
    return skips, dict(caches, layers=states)

  def write_pixel(caches, i, j, pixel):
    return dict(caches, image=stack.first.write(caches["image"], j, pixel))

  rows = [layer.row_fn() for layer in stack.recurrent if hasattr(layer, "row_fn")]
  padded_width = stack.image.shape[2]

  def row_end(i, caches):
    if rows:  # every layer reads whole rows
      _, caches = pixel_step(i, padded_width - 1, caches)
      caches = dict(caches, layers=[row(state, i) for row, state in
                                    zip(rows, caches["layers"])])
    return dict(caches, image=stack.first.next_row(caches["image"]))

  return base.CachedNetwork(pixel_step, caches, write_pixel,
                            stack.output.vector_fn(), row_end)
