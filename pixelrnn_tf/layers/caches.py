"""Maps kept between the steps of a cached sampler, and pixel-sized reads and writes.

A layer that reads other pixels than the current one (a spatial masked convolution,
a recurrent state) keeps its input, or its state, for the whole image in a float32
cache `(B, H + rows - 1, W + kw - 1, C)`: the map zero-padded by `rows - 1` rows
above and `kw // 2` columns at each side (`pad_for_window`), so that the window of
`rows x kw` positions that ends at pixel (i, j)'s row and is centred on its column
starts at cache position (i, j). A step writes what it computes at (i, j) and reads
only windows of earlier positions: every write is `O(C)`, every read `O(rows*kw*C)`.

Sizes are given in full in every slice (never -1) so that XLA compiles them as
dynamic slices of that size and updates the caches in place.
"""

import tensorflow as tf


def pad_for_window(maps, window):
  """Zero-pads `(B, H, W, C)` by `rows - 1` above and `kw // 2` at each side."""
  rows, kw = window
  return tf.pad(tf.cast(maps, tf.float32),
                [[0, 0], [rows - 1, 0], [kw // 2, kw // 2], [0, 0]])


def write_pixel(cache, i, j, values, window):
  """`cache` (padded for `window`) with `values` `(B, C)` at pixel (i, j)."""
  rows, kw = window
  batch = tf.shape(values)[0]
  index = tf.stack([tf.range(batch), tf.fill([batch], i + rows - 1),
                    tf.fill([batch], j + kw // 2)], axis=1)
  return tf.tensor_scatter_nd_update(cache, index, values)


def window(cache, row, column, rows, columns):
  """`cache[:, row:row + rows, column:column + columns]` of `(B, H, W, C)`."""
  size = tf.concat([tf.shape(cache)[:1], [rows, columns], tf.shape(cache)[3:]], 0)
  return tf.slice(cache, [0, row, column, 0], size)


def read_pixel(cache, row, column):
  """`cache[:, row, column]`, `(B, C)`, at padded coordinates."""
  return window(cache, row, column, 1, 1)[:, 0, 0]


def write_row(cache, row, values):
  """`cache` with `values` `(B, W, C)` as its padded row `row`."""
  batch = tf.shape(values)[0]
  index = tf.stack([tf.range(batch), tf.fill([batch], row)], axis=1)
  return tf.tensor_scatter_nd_update(cache, index, values)
