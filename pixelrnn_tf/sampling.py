"""Ancestral sampling and completion, one sub-pixel at a time, in raster/RGB order.

Two samplers draw the same images for the same seed (up to float rounding of the
logits):

  naive   (`complete_naive`) re-runs the whole network for each of the `H*W*C`
          sub-pixels: `O(H*W)` positions of work per sub-pixel. Any `images ->
          logits` model; the reference the cached one is tested against.
  cached  (`complete_cached`, the `pixelcnn` family) keeps the input map of every
          spatial convolution and computes only the current pixel through the
          network: `O(1)` positions per layer and sub-pixel.

`complete` and `sample` take the cached one where the family has it. Both loops are a
`tf.while_loop` over fixed-shape buffers, so they compile into one graph (XLA or not)
and export in a SavedModel.
"""

import keras
import tensorflow as tf

from pixelrnn_tf import distributions
from pixelrnn_tf.layers import MaskedConv2D

CACHED_FAMILIES = ("pixelcnn",)


def complete(model, images, start, num_levels, seed):
  """Re-samples every sub-pixel at flat position >= `start` given those before it.

  Args:
    model: `images -> logits` network (uint8 `(B,H,W,C)` -> `(B,H,W,C,K)`); a Keras
      model of a family in `CACHED_FAMILIES` is sampled with the cached sampler.
    images: uint8 `(B, H, W, C)`; sub-pixels before `start` are kept bit for bit.
    start: int scalar, flat index into `H*W*C` raster/RGB order (`row * W * C` keeps
      the rows above `row`).
    num_levels: 2 or 256, as the model was trained.
    seed: int32 `(2,)` stateless seed; step `p` draws with `fold_in(seed, p)`.

  Returns:
    uint8 `(B, H, W, C)`.
  """
  if has_cached_sampler(model):
    return complete_cached(model, images, start, num_levels, seed)
  return complete_naive(model, images, start, num_levels, seed)


def has_cached_sampler(model):
  """Whether `complete` samples `model` with the cached sampler."""
  return isinstance(model, keras.Model) and model.name in CACHED_FAMILIES


def prefers_xla(model):
  """Whether `model`'s sampler should compile with XLA whatever `--jit_compile` says.

  The cached sampler's loop body is many small ops, which XLA fuses: 10x faster on
  the 2-core CPU (bench/sampling.py); the naive one is slower with XLA there.
  """
  return has_cached_sampler(model)


def complete_naive(model, images, start, num_levels, seed):
  """`complete` with one full forward pass of `model` per sub-pixel."""

  def logits_at(canvas, i, j, state):
    return model(canvas, training=False)[:, i, j], state  # (B, C, K)

  return _ancestral_loop(images, start, num_levels, seed, logits_at, ())


def complete_cached(model, images, start, num_levels, seed):
  """`complete` for a `models.pixelcnn` network, computing one pixel per step.

  Every convolution wider than 1x1 keeps its whole input map, zero-padded as 'same'
  padding would (above and at both sides; masks never read below), filled by one
  forward pass over `images` first. Each step runs the pixel through the blocks
  (writing each 3x3 input at the pixel) to its logits; each draw writes the pixel's
  new value into the first layer's map. Masks never read later pixels, so the maps
  behind them need no update. Runs in float32 whatever the dtype policy.
  """
  images = tf.convert_to_tensor(images, tf.uint8)
  weights = {layer.name: _pixel_weights(layer) for layer in model.layers
             if isinstance(layer, MaskedConv2D)}
  spatial = [name for name, w in weights.items() if w["window"] != (1, 1)]
  inputs = keras.Model(model.input, [model.get_layer(n).input for n in spatial])
  maps = inputs(images, training=False)
  caches = {name: _pad_for_window(tf.cast(x, tf.float32), weights[name]["window"])
            for name, x in zip(spatial, tf.nest.flatten(maps))}
  num_blocks = sum(name.endswith("_residual") for name in
                   (layer.name for layer in model.layers))
  scale = model.get_layer("scale")
  channels = images.shape[-1]

  def logits_at(canvas, i, j, caches):
    caches = dict(caches)
    x = _conv_at(weights["input_conv"], caches["input_conv"], i, j)
    for b in range(num_blocks):
      name = f"block{b}_conv"
      y = _conv_at(weights[f"block{b}_in"], tf.nn.relu(x))
      caches[name] = _write_pixel(caches[name], i, j, y, weights[name]["window"])
      y = _conv_at(weights[name], caches[name], i, j)
      x = x + _conv_at(weights[f"block{b}_out"], y)
    x = _conv_at(weights["output_conv_1"], tf.nn.relu(x))
    logits = _conv_at(weights["output_conv_2"], x)  # (B, C*K)
    return tf.reshape(logits, [tf.shape(logits)[0], channels, -1]), caches

  def on_drawn(canvas, i, j, caches):
    pixel = tf.cast(scale(canvas[:, i, j]), tf.float32)  # (B, C)
    return dict(caches, input_conv=_write_pixel(
        caches["input_conv"], i, j, pixel, weights["input_conv"]["window"]))

  return _ancestral_loop(images, start, num_levels, seed, logits_at, caches,
                         on_drawn)


def _ancestral_loop(images, start, num_levels, seed, logits_at, state,
                    on_drawn=None):
  """Draws sub-pixels `start..H*W*C-1` in order into `images`.

  `logits_at(canvas, i, j, state) -> (logits (B, C, K) at pixel (i, j), state)`
  supplies each conditional; `on_drawn(canvas, i, j, state) -> state`, if given,
  sees the canvas after each draw at pixel (i, j).
  """
  images = tf.convert_to_tensor(images, tf.uint8)
  height, width, channels = images.shape[1:]
  batch = tf.shape(images)[0]
  seed = tf.convert_to_tensor(seed, tf.int32)
  total = height * width * channels

  def step(p, canvas, state):
    i = p // (width * channels)
    j = (p // channels) % width
    c = p % channels
    logits, state = logits_at(canvas, i, j, state)
    draw_seed = tf.random.experimental.stateless_fold_in(seed, p)
    values = distributions.sample(logits[:, c][:, None], num_levels,
                                  draw_seed)[:, 0]  # (B,)
    index = tf.stack([tf.range(batch), tf.fill([batch], i), tf.fill([batch], j),
                      tf.fill([batch], c)], axis=1)  # (B, 4)
    canvas = tf.tensor_scatter_nd_update(canvas, index, tf.cast(values, tf.uint8))
    if on_drawn is not None:
      state = on_drawn(canvas, i, j, state)
    return p + 1, canvas, state

  _, images, _ = tf.while_loop(lambda p, *_: p < total, step,
                               (tf.cast(start, tf.int32), images, state))
  return images


def _pixel_weights(layer):
  """A MaskedConv2D as one matmul at a pixel: the kernel rows above and at the
  pixel (`window` = (kh//2 + 1, kw)) flattened to `(rows*kw*C_in, filters)`."""
  kernel = tf.cast(layer.masked_kernel(), tf.float32)
  kh, kw, c_in, filters = kernel.shape
  rows = kh // 2 + 1
  return {"matrix": tf.reshape(kernel[:rows], (rows * kw * c_in, filters)),
          "bias": tf.cast(layer.bias, tf.float32), "activation": layer.activation,
          "window": (rows, kw)}


def _pad_for_window(maps, window):
  """Zero-pads `(B, H, W, C)` by `rows - 1` above and `kw // 2` at each side."""
  rows, kw = window
  return tf.pad(maps, [[0, 0], [rows - 1, 0], [kw // 2, kw // 2], [0, 0]])


def _write_pixel(cache, i, j, values, window):
  """`cache` (padded by `_pad_for_window`) with `values` `(B, C)` at pixel (i, j)."""
  rows, kw = window
  batch = tf.shape(values)[0]
  index = tf.stack([tf.range(batch), tf.fill([batch], i + rows - 1),
                    tf.fill([batch], j + kw // 2)], axis=1)
  return tf.tensor_scatter_nd_update(cache, index, values)


def _conv_at(weights, inputs, i=None, j=None):
  """The layer's output `(B, filters)` at pixel (i, j) of a padded input cache, or,
  for a 1x1 layer, of the pixel's input vector `inputs` `(B, C_in)`."""
  if i is not None:
    rows, kw = weights["window"]
    window = tf.slice(inputs, [0, i, j, 0], [-1, rows, kw, -1])
    inputs = tf.reshape(window, [tf.shape(window)[0], -1])
  return weights["activation"](tf.matmul(inputs, weights["matrix"]) +
                               weights["bias"])


def sample(model, num_samples, image_shape, num_levels, seed):
  """Draws `num_samples` images, uint8 `(num_samples, H, W, C)`; same seed, same images."""
  blank = tf.zeros(tf.concat([[num_samples], image_shape], 0), tf.uint8)
  blank = tf.ensure_shape(blank, (None,) + tuple(image_shape))
  return complete(model, blank, 0, num_levels, seed)


def image_grid(images, columns=None):
  """Tiles uint8 `(N, H, W, C)` into one `(rows*H, columns*W, C)` image (blank fill)."""
  images = tf.convert_to_tensor(images)
  n, h, w, c = images.shape
  columns = columns or max(1, int(n ** 0.5 + 0.5))
  rows = -(-n // columns)
  pad = tf.zeros((rows * columns - n, h, w, c), images.dtype)
  tiles = tf.concat([images, pad], 0)
  tiles = tf.reshape(tiles, (rows, columns, h, w, c))
  tiles = tf.transpose(tiles, (0, 2, 1, 3, 4))  # (rows, H, columns, W, C)
  return tf.reshape(tiles, (rows * h, columns * w, c))
