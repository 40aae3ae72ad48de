"""Ancestral sampling and completion, one sub-pixel at a time, in raster/RGB order.

The naive sampler re-runs the whole network for each of the `H*W*C` sub-pixels. It is
the reference every faster sampler must match bit for bit for the same seed. The loop
is a `tf.while_loop` over fixed-shape buffers, so it compiles into one graph (XLA or
not) and is exportable in a SavedModel.
"""

import tensorflow as tf

from pixelrnn_tf import distributions


def complete(model, images, start, num_levels, seed):
  """Re-samples every sub-pixel at flat position >= `start` given those before it.

  Args:
    model: `images -> logits` network (uint8 `(B,H,W,C)` -> `(B,H,W,C,K)`).
    images: uint8 `(B, H, W, C)`; sub-pixels before `start` are kept bit for bit.
    start: int scalar, flat index into `H*W*C` raster/RGB order (`row * W * C` keeps
      the rows above `row`).
    num_levels: 2 or 256, as the model was trained.
    seed: int32 `(2,)` stateless seed; step `p` draws with `fold_in(seed, p)`.

  Returns:
    uint8 `(B, H, W, C)`.
  """
  images = tf.convert_to_tensor(images, tf.uint8)
  height, width, channels = images.shape[1:]
  batch = tf.shape(images)[0]
  seed = tf.convert_to_tensor(seed, tf.int32)
  total = height * width * channels

  def step(p, canvas):
    i = p // (width * channels)
    j = (p // channels) % width
    c = p % channels
    logits = model(canvas, training=False)[:, i, j, c]  # (B, K)
    draw_seed = tf.random.experimental.stateless_fold_in(seed, p)
    values = distributions.sample(logits[:, None], num_levels, draw_seed)[:, 0]  # (B,)
    index = tf.stack([tf.range(batch), tf.fill([batch], i), tf.fill([batch], j),
                      tf.fill([batch], c)], axis=1)  # (B, 4)
    canvas = tf.tensor_scatter_nd_update(canvas, index, tf.cast(values, tf.uint8))
    return p + 1, canvas

  _, images = tf.while_loop(lambda p, _: p < total, step,
                            (tf.cast(start, tf.int32), images))
  return images


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
