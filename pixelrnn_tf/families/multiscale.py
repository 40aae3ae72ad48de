"""Multi-scale PixelRNN (paper Section 3.5) with Row LSTM networks.

The small image `s = x[::2, ::2]` is generated first by an unconditional Row LSTM
network, then the remaining sub-pixels by a conditional Row LSTM network whose every
layer is biased by an upsampling network of `s`.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf.families import base
from pixelrnn_tf.families import common
from pixelrnn_tf.families import recurrent_stack
from pixelrnn_tf.families import row_lstm
from pixelrnn_tf.layers import PlaceSubsampled
from pixelrnn_tf.layers import Subsample
from pixelrnn_tf.layers import scales

FACTOR = 2  # the small image is x[::2, ::2]


@dataclasses.dataclass(frozen=True)
class Parts:
  subsample_images: Subsample  # uint8 images -> the small image
  small: keras.Model  # the small image's Row LSTM network
  stack: recurrent_stack.Stack  # the conditional network


def network(x, config, images, labels):
  """The multi-scale network of `config`: `(logits, Parts)`.

  `x` is the scaled image, `images` the uint8 one. The small image is modelled by
  the nested model `small` (the `row_lstm` network of `s`'s shape and `config`'s
  sizes, on the uint8 small image); the other sub-pixels, in raster/RGB order, by
  the conditional stack whose layers are biased by `upsampling_network(s)`. The
  logits at the small image's pixels are the small network's, elsewhere the
  conditional network's, so `p(x) = p(s) * prod p(x_ijc | s, earlier sub-pixels)`
  exactly and the head and loss are those of every family. The generation order is
  `generation_order(image_shape)`.
  """
  del labels
  small = Subsample(FACTOR, name="subsample")(x)  # (B, H/2, W/2, C)
  subsample_images = Subsample(FACTOR, name="subsample_images")
  small_images = subsample_images(images)
  small_network = base.keras_model(
      row_lstm.FAMILY, dataclasses.replace(config, model="row_lstm",
                                           image_shape=small.shape[1:]),
      name="small")
  conditional, stack = recurrent_stack.network(
      x, config, row_lstm.make_layer,
      conditioning=upsampling_network(small, config))  # (B, H, W, C, K)
  logits = PlaceSubsampled(FACTOR, dtype="float32", name="place_small")(
      [small_network(small_images), conditional])
  return logits, Parts(subsample_images, small_network, stack)


def upsampling_network(small, config):
  """Maps `(B, H/2, W/2, C)` (scaled small image) to `(B, H, W, 2h)` features.

  Unmasked: every output reads the whole small image, which precedes every
  sub-pixel that the conditional network models.
  """
  maps = 2 * config.hidden_dims
  y = keras.layers.Conv2D(maps, 3, padding="same", activation="relu",
                          name="upsample_in")(small)
  y = keras.layers.Conv2DTranspose(maps, 3, strides=FACTOR, padding="same",
                                   activation="relu", name="upsample_deconv")(y)
  return keras.layers.Conv2D(maps, 3, padding="same", activation="relu",
                             name="upsample_out")(y)


def generation_order(image_shape):
  """The small image's sub-pixels (raster/RGB over `x[::2, ::2]`) first, then the
  others in raster/RGB order, as flat raster/RGB indices."""
  height, width, channels = image_shape
  flat = np.arange(height * width * channels).reshape(height, width, channels)
  on_grid = scales.subsampled_positions(height, width, FACTOR)
  return np.concatenate([flat[on_grid].reshape(-1), flat[~on_grid].reshape(-1)])


def cached_network(model, parts, inputs, start_row):
  """The conditional stack's cached network (`recurrent_stack.cached_network`)."""
  return recurrent_stack.cached_network(model, parts.stack, inputs, start_row)


def complete_cached(model, images, start, num_levels, seed, labels, run):
  """Draws the unknown pixels of the small image with the small network's cached
  sampler, then the others with the conditional network's (`run`:
  `sampling.run_cached`).

  The small image's sub-pixels draw with `fold_in(seed, p)` of their index `p` in
  the full image, as the naive sampler does, so both samplers draw the same images.
  The conditional network steps through every pixel (its states need them all) and
  keeps the small image's values.
  """
  del labels
  parts = model.pixelrnn.parts
  images = tf.convert_to_tensor(images, tf.uint8)
  small = parts.subsample_images(images)  # (B, H/f, W/f, C)
  order = generation_order(images.shape[1:])
  grid_index = order[:small.shape[1] * small.shape[2] * small.shape[3]]
  small_start = tf.reduce_sum(tf.cast(
      tf.constant(grid_index, tf.int32) < tf.cast(start, tf.int32), tf.int32))
  small = run(parts.small, small, small_start, num_levels, seed,
              seed_positions=grid_index)
  images = scales.place_subsampled(small, images, FACTOR)
  keep = np.zeros(len(order), bool)
  keep[grid_index] = True
  return run(model, images, start, num_levels, seed, keep=keep)


def check_config(config):
  common.check_kernel_width(config)
  if any(d % FACTOR for d in config.image_shape[:2]):
    raise ValueError(
        f"Invalid `image_shape` for model='multiscale'. Expected H and W divisible "
        f"by {FACTOR} (the small image is x[::{FACTOR}, ::{FACTOR}]). Received: "
        f"image_shape={config.image_shape}")


FAMILY = base.Family(
    name="multiscale", network=network, cached_network=cached_network,
    complete_cached=complete_cached, generation_order=generation_order,
    default_sizes=common.DEFAULT_SIZES,
    check_config=check_config)
