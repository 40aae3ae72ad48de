"""Ancestral sampling and completion, one sub-pixel at a time, for any family.

Two samplers draw the same images for the same seed (up to float rounding of the
logits):

  naive   (`complete_naive`) re-runs the whole network for each of the `H*W*C`
          sub-pixels: `O(H*W)` positions of work per sub-pixel. Any `images ->
          logits` model; the reference the cached one is tested against.
  cached  (`complete_cached`, every family whose `Family.cached_network` is set)
          keeps every map that a step reads at other pixels (inputs of spatial
          convolutions, recurrent states) and computes only the current pixel
          through the network, each layer by its own one-pixel step: `O(1)`
          positions per layer and sub-pixel (plus, for the Diagonal BiLSTM and the
          Gated PixelCNN's vertical stack, one pass along each row once it is
          drawn).

`complete` and `sample` take the cached one where the family has it. Both loops are a
`tf.while_loop` over fixed-shape buffers, so they compile into one graph (XLA or not)
and export in a SavedModel. The samplers reach a family only through the record
its model carries (`model.pixelrnn`, `families.base.Network`).
"""

import contextlib

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf import distributions
from pixelrnn_tf.families import base


def complete(model, images, start, num_levels, seed, labels=None):
  """Re-samples every sub-pixel at flat position >= `start` given those before it.

  Args:
    model: `images -> logits` network (uint8 `(B,H,W,C)` -> `(B,H,W,C,K)`); a model
      of a family with a cached network (`has_cached_sampler`) is sampled with the
      cached sampler, any other with the naive one.
    images: uint8 `(B, H, W, C)`; sub-pixels before `start` are kept bit for bit.
    start: int scalar, flat index into `H*W*C` raster/RGB order (`row * W * C` keeps
      the rows above `row`).
    num_levels: 2 or 256, as the model was trained.
    seed: int32 `(2,)` stateless seed; step `p` draws with `fold_in(seed, p)`.
    labels: int32 `(B,)`, the class of each image, for a class-conditional model
      (`base.is_conditional`); None otherwise.

  Returns:
    uint8 `(B, H, W, C)`.
  """
  logging.info("Sampling %s with the %s sampler.", model.name,
               sampler_name(model))
  if has_cached_sampler(model):
    return complete_cached(model, images, start, num_levels, seed, labels)
  return complete_naive(model, images, start, num_levels, seed, labels)


def sampler_name(model):
  """"cached" or "naive": the sampler `complete` uses for `model`."""
  return "cached" if has_cached_sampler(model) else "naive"


def _network(model):
  """The `base.Network` record `model` carries, or None (not built by `models`)."""
  return getattr(model, "pixelrnn", None)


def has_cached_sampler(model):
  """Whether `model`'s family has a cached network (`Family.cached_network`)."""
  network = _network(model)
  return network is not None and network.family.cached_network is not None


def prefers_xla(model):
  """Whether `model`'s sampler should compile with XLA whatever `--jit_compile` says.

  True wherever the cached sampler runs: its loop body is many small ops per
  sub-pixel, which XLA fuses, updating the caches in place (bench/sampling_speed.py
  measures by how much).
  """
  return has_cached_sampler(model)


def complete_naive(model, images, start, num_levels, seed, labels=None):
  """`complete` with one full forward pass of `model` per sub-pixel.

  Sub-pixels are drawn in the generation order of `model`'s family
  (`Family.generation_order`; raster/RGB order for a model of no family):
  raster/RGB order for every family but `multiscale`, which draws the unknown
  pixels of the small image first. For it, a completion is exact only when `start`
  is 0 or every sub-pixel of the small image is known: the small network's
  conditionals do not read the known pixels off its grid.
  """
  images = tf.convert_to_tensor(images, tf.uint8)
  network = _network(model)
  order = None if network is None else network.family.generation_order(
      images.shape[1:])

  def logits_at(canvas, i, j, state):
    logits = model(base.network_inputs(model, canvas, labels), training=False)
    return logits[:, i, j], state  # (B, C, K)

  return _ancestral_loop(images, start, num_levels, seed, logits_at, (),
                         order=order)


def complete_cached(model, images, start, num_levels, seed, labels=None):
  """`complete` computing one pixel per step, for a family with a cached network.

  A first forward pass over `images` fills the caches of every map that a step
  reads at other pixels; each step then runs only the current pixel through the
  network to its logits (`CachedNetwork.pixel_step` and `output`), writing what it
  computes into the caches, and each draw writes the pixel's new value where the
  layers read the image (`write_pixel`). A step reads only earlier pixels and its
  own, so nothing else needs updating; what the next row reads of a whole row is
  computed once the row is drawn (`row_end`). A family that draws in stages
  (multi-scale) runs its `Family.complete_cached`. Runs in float32 whatever the
  dtype policy.

  Raises:
    ValueError: the model's family has no cached network.
  """
  if not has_cached_sampler(model):
    raise ValueError(
        f"No cached sampler for model {model.name!r}: its family has no one-pixel "
        "step (`Family.cached_network`), or it was not built by "
        "`pixelrnn_tf.models.build`. Use `complete_naive`.")
  family = _network(model).family
  with _computing_in_float32(model):
    if family.complete_cached:
      return family.complete_cached(model, images, start, num_levels, seed, labels,
                                    run_cached)
    return run_cached(model, images, start, num_levels, seed, labels)


@contextlib.contextmanager
def _computing_in_float32(model):
  """Every layer of `model` (and of the models nested in it) computes in float32
  inside the block, whatever its dtype policy: the first caches and the scaled
  pixels a draw writes are then those of a float32 model with the same weights."""
  layers = _all_layers(model)
  policies = [layer.dtype_policy for layer in layers]
  try:
    for layer in layers:
      layer.dtype_policy = "float32"
    yield
  finally:
    for layer, policy in zip(layers, policies):
      layer.dtype_policy = policy


def _all_layers(model):
  """The layers of `model` and, recursively, of the models among them."""
  layers = []
  for layer in model.layers:
    layers.append(layer)
    if isinstance(layer, keras.Model):
      layers += _all_layers(layer)
  return layers


def run_cached(model, images, start, num_levels, seed, labels=None,
               seed_positions=None, keep=None):
  """The cached loop over `model`'s `Family.cached_network`, in raster/RGB order.

  `seed_positions` and `keep` go to `_ancestral_loop`.
  """
  network = _network(model)
  images = tf.convert_to_tensor(images, tf.uint8)
  height, width, channels = images.shape[1:]
  # The row of the first draw (the last row when nothing is left to draw).
  start_row = tf.minimum(tf.cast(start, tf.int32) // (width * channels), height - 1)
  cached = network.family.cached_network(
      model, network.parts, base.network_inputs(model, images, labels), start_row)

  def logits_at(canvas, i, j, caches):
    x, caches = cached.pixel_step(i, j, caches)  # (B, maps)
    logits = cached.output(x)  # (B, C*K)
    return tf.reshape(logits, [tf.shape(logits)[0], channels, -1]), caches

  def on_drawn(canvas, i, j, c, caches):
    pixel = tf.cast(network.scale(canvas[:, i, j]), tf.float32)  # (B, C)
    return cached.write_pixel(caches, i, j, pixel)

  return _ancestral_loop(images, start, num_levels, seed, logits_at, cached.caches,
                         on_drawn, cached.row_end, seed_positions=seed_positions,
                         keep=keep)


def _ancestral_loop(images, start, num_levels, seed, logits_at, state,
                    on_drawn=None, on_row_drawn=None, order=None,
                    seed_positions=None, keep=None):
  """Draws the sub-pixels at flat raster/RGB index `>= start` into `images`.

  They are drawn in generation `order` (flat indices, `Family.generation_order`;
  None: raster/RGB order). `logits_at(canvas, i, j, state) -> (logits (B, C, K) at
  pixel (i, j), state)` supplies each conditional; `on_drawn(canvas, i, j, c,
  state) -> state`, if given, sees the canvas after each draw of sub-pixel (i, j, c),
  and `on_row_drawn(i, state) -> state` (raster order only) after the last draw
  of row `i`. Sub-pixel `p` draws with `fold_in(seed, seed_positions[p])` (None:
  `p`); where bool `keep[p]` (None: nowhere) it is stepped through but keeps its
  value.
  """
  if on_row_drawn is not None and order is not None:
    raise ValueError("`on_row_drawn` needs raster/RGB order (`order=None`).")
  images = tf.convert_to_tensor(images, tf.uint8)
  height, width, channels = images.shape[1:]
  batch = tf.shape(images)[0]
  seed = tf.convert_to_tensor(seed, tf.int32)
  total = height * width * channels
  start = tf.cast(start, tf.int32)
  if seed_positions is not None:
    seed_positions = tf.constant(seed_positions, tf.int32)
  if keep is not None:
    keep = tf.constant(keep, tf.bool)
  # The known sub-pixels (index < start) first, the rest after them in `order`:
  # static shapes, so the loop compiles with XLA too.
  order = tf.constant(np.arange(total) if order is None else order, tf.int32)
  known = tf.cast(order < start, tf.int32)
  todo = tf.gather(order, tf.argsort(1 - known, stable=True))
  first = tf.reduce_sum(known)

  def step(k, canvas, state):
    p = todo[k]
    i = p // (width * channels)
    j = (p // channels) % width
    c = p % channels
    logits, state = logits_at(canvas, i, j, state)
    seed_position = p if seed_positions is None else tf.gather(seed_positions, p)
    draw_seed = tf.random.experimental.stateless_fold_in(seed, seed_position)
    values = distributions.sample(logits[:, c][:, None], num_levels,
                                  draw_seed)[:, 0]  # (B,)
    if keep is not None:
      values = tf.where(tf.gather(keep, p), tf.cast(canvas[:, i, j, c], values.dtype),
                        values)
    index = tf.stack([tf.range(batch), tf.fill([batch], i), tf.fill([batch], j),
                      tf.fill([batch], c)], axis=1)  # (B, 4)
    canvas = tf.tensor_scatter_nd_update(canvas, index, tf.cast(values, tf.uint8))
    if on_drawn is not None:
      state = on_drawn(canvas, i, j, c, state)
    return k + 1, canvas, state

  if on_row_drawn is None:
    _, images, _ = tf.while_loop(lambda k, *_: k < total, step,
                                 (first, images, state))
    return images
  row_size = width * channels

  # In raster order `todo[k] == k`, so a row's draws are those `k < row_end`. One
  # loop per row, not a `tf.cond` per draw: XLA then updates the state in place.
  def draw_row(k, canvas, state):
    row_end = (k // row_size + 1) * row_size
    k, canvas, state = tf.while_loop(lambda k, *_: k < row_end, step,
                                     (k, canvas, state))
    return k, canvas, on_row_drawn(k // row_size - 1, state)

  _, images, _ = tf.while_loop(lambda k, *_: k < total, draw_row,
                               (first, images, state))
  return images


def sample(model, num_samples, image_shape, num_levels, seed, labels=None):
  """Draws `num_samples` images, uint8 `(num_samples, H, W, C)`; same seed, same
  images. A class-conditional model draws image `n` of class `labels[n]`."""
  return complete(model, blank_images(num_samples, image_shape), 0, num_levels,
                  seed, labels)


def blank_images(num_samples, image_shape):
  """uint8 zeros `(num_samples, H, W, C)`, static in all but `num_samples`: what
  `sample` completes from its first sub-pixel."""
  blank = tf.zeros(tf.concat([[num_samples], image_shape], 0), tf.uint8)
  return tf.ensure_shape(blank, (None,) + tuple(image_shape))


def image_grid(images, columns=None):
  """Tiles uint8 `(N, H, W, C)` into one `(rows*H, columns*W, C)` image (blank fill)."""
  images = tf.convert_to_tensor(images)
  n, h, w, c = images.shape
  columns = columns or max(1, int(n ** 0.5 + 0.5))
  rows = -(-n // columns)
  pad = tf.zeros((rows * columns - n, h, w, c), images.dtype)
  tiles = tf.concat([images, pad], 0)
  tiles = tf.reshape(tiles, (rows, columns, h, w, c))
  # Transposed as float32: oneDNN's integer transposes log an error-level fallback.
  tiles = tf.transpose(tf.cast(tiles, tf.float32), (0, 2, 1, 3, 4))  # (rows, H, cols, W, C)
  return tf.cast(tf.reshape(tiles, (rows * h, columns * w, c)), images.dtype)
