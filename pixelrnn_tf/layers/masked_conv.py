"""Masked 2-D convolution: a `keras.layers.Conv2D` that never reads the future."""

import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf import masks
from pixelrnn_tf.layers import caches

# Conv2D arguments that a causal convolution keeps at their defaults, and the ways
# of spelling each default that a caller may still pass.
FIXED_ARGUMENTS = {"padding": ("same",), "strides": (1, (1, 1), [1, 1]),
                   "dilation_rate": (1, (1, 1), [1, 1]),
                   "data_format": ("channels_last",)}


def mask_tensor(kernel_size, in_channels, out_channels, mask_type, num_groups):
  """`masks.causal_kernel_mask` as a tensor composed of small constants.

  The `(kh, kw, C_in, C_out)` mask is the sum of a spatial part (the rows above and
  the taps left of the centre read every channel) and the centre tap times the
  `(C_in, C_out)` channel mask, which compares the input and output channels'
  colour groups in the graph: a graph (and a SavedModel, one copy per traced
  function) then holds `2 kh kw + C_in + C_out` numbers per layer, not
  `kh kw C_in C_out`.
  """
  kh, kw = kernel_size
  masks.check_channel_mask_args(in_channels, out_channels, mask_type, num_groups)
  spatial = masks.causal_kernel_mask(kernel_size, 1, 1, "A", 1)[:, :, 0, 0]
  centre = np.zeros((kh, kw), np.float32)
  centre[kh // 2, kw // 2] = 1.0
  in_group = tf.constant(masks.channel_groups(in_channels, num_groups), tf.int32)
  out_group = tf.constant(masks.channel_groups(out_channels, num_groups), tf.int32)
  reads = masks.group_reads(in_group[:, None], out_group[None, :],
                            mask_type)  # (C_in, C_out)
  return (tf.constant(spatial)[:, :, None, None] +
          tf.constant(centre)[:, :, None, None] * tf.cast(reads, tf.float32))


def causal_conv2d(inputs, kernel, mask):
  """'same', stride-1 convolution of `inputs` with `kernel * mask`, causal `mask`.

  Computes only the taps a causal mask (`pixelrnn_tf.masks`) can leave non-zero:
  the rows up to the centre, and in a one-row kernel the columns up to the centre.
  The input gets the 'same' padding of the full kernel less the skipped part, then a
  'valid' convolution with the kept taps: a 3x3 kernel costs a 2x3 one, 1x3 a 1x2.

  Args:
    inputs: `(B, H, W, C_in)`.
    kernel: `(kh, kw, C_in, C_out)`, odd `kh` and `kw`.
    mask: 0/1 array or tensor of the kernel's shape, zero below the centre row
      and, in the centre row, right of the centre.

  Returns:
    `(B, H, W, C_out)`, equal to the full 'same' convolution with `kernel * mask`.
  """
  kh, kw = kernel.shape[:2]
  rows, cols = kh // 2 + 1, (kw // 2 + 1 if kh == 1 else kw)
  # `ops.slice`, not `kernel[:rows]`: its gradient is a pad, not StridedSliceGrad.
  kept = keras.ops.slice(kernel, (0, 0, 0, 0), (rows, cols) + tuple(kernel.shape[2:]))
  kept = kept * keras.ops.cast(mask[:rows, :cols], kernel.dtype)  # bfloat16 if mixed
  if (kh, kw) != (1, 1):
    inputs = keras.ops.pad(
        inputs, ((0, 0), (kh // 2, 0), (kw // 2, cols - 1 - kw // 2), (0, 0)))
  return keras.ops.conv(inputs, kept, padding="valid", data_format="channels_last")


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class MaskedConv2D(keras.layers.Conv2D):
  """2-D convolution whose kernel is multiplied by a causal mask in the forward pass.

  The mask (see `pixelrnn_tf.masks.causal_kernel_mask`) is applied on every call, so
  the layer is causal at initialisation and after every update, not only after an
  optimizer step. Padding is always 'same' and strides 1, so outputs align with inputs.
  It convolves through `causal_conv2d`, which skips the taps every causal mask zeroes:
  a 3x3 kernel costs a 2x3 one. The kernel variable keeps its full `(kh, kw)` shape.

  Args:
    filters: number of output channels.
    kernel_size: odd int or `(kh, kw)` with odd entries.
    mask_type: 'A' (the first layer: output channel group `g` sees input groups
      `< g` at the current pixel) or 'B' (groups `<= g`).
    num_groups: colour groups the channels are split into: 1 (grayscale or binary
      images) or 3 (RGB).
    **kwargs: any other `keras.layers.Conv2D` argument (activation, initializers,
      regularizers, ...), except `padding`, `strides` and `dilation_rate` other than 1
      and `data_format` other than 'channels_last'.

  Input shape:
    `(B, H, W, C_in)`.

  Output shape:
    `(B, H, W, filters)`.

  Causality:
    Output `[i, j, group g]` reads input pixels `(i', j')` with `i' < i`, or `i' == i`
    and `j' < j`, and at `(i, j)` the input groups allowed by `mask_type`.

  References:
    van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016, Section 3.4.
  """

  def __init__(self, filters, kernel_size, mask_type="B", num_groups=1, **kwargs):
    if mask_type not in masks.MASK_TYPES:
      raise ValueError(
          "Invalid `mask_type`. Expected 'A' or 'B'. "
          f"Received: mask_type={mask_type!r}")
    if num_groups not in (1, 3):
      raise ValueError(
          "Invalid `num_groups`. Expected 1 (grayscale) or 3 (RGB). "
          f"Received: num_groups={num_groups!r}")
    for fixed, defaults in FIXED_ARGUMENTS.items():
      value = kwargs.pop(fixed, None)
      if value is not None and value not in defaults:
        raise ValueError(
            f"Invalid `{fixed}` for MaskedConv2D: a causal convolution keeps the "
            f"default. Received: {fixed}={value!r}")
    super().__init__(filters, kernel_size, padding="same",
                     data_format="channels_last", **kwargs)
    self.mask_type = mask_type
    self.num_groups = num_groups

  def build(self, input_shape):
    super().build(input_shape)
    kh, kw, in_channels, out_channels = self.kernel.shape
    self._mask_args = ((kh, kw), in_channels, out_channels, self.mask_type,
                       self.num_groups)

  def _mask(self):
    """The kernel's causal mask as a tensor (`mask_tensor`)."""
    return mask_tensor(*self._mask_args)

  def convolution_op(self, inputs, kernel):
    return causal_conv2d(inputs, kernel, self._mask())

  def call(self, inputs):
    # `Conv2D.call` with the bias added as the rank-1 vector it is. Keras adds it
    # reshaped to (1, 1, 1, filters); Grappler's oneDNN remapper then fuses a
    # convolution, its bias and a residual `Add` that also feeds the next block
    # into one node, fails ("remapper failed: ... fanout ... exist for missing
    # node") and drops every fusion of the graph. The sum is the same.
    outputs = self.convolution_op(inputs, self.kernel)
    if self.use_bias:
      outputs = outputs + self.bias
    return self.activation(outputs)

  def masked_kernel(self):
    """The kernel as the layer applies it: `(kh, kw, C_in, filters)`, mask applied."""
    return self.kernel * keras.ops.cast(self._mask(), self.kernel.dtype)

  # One pixel at a time (the cached samplers). ------------------------------------
  #
  # A sampler keeps the layer's input in a row cache: the zero-padded input rows
  # that the current row's pixels read, `(B, rows, W + kw - 1, C_in)`, the last one
  # the current row. A pixel writes its input there, reads its window, and once the
  # row is drawn `next_row` moves the cache down one row: writes copy `rows` rows,
  # not the whole map, also where no compiler updates it in place.

  @property
  def window(self):
    """`(rows, kw)`: the input positions an output pixel reads, the rows up to its
    own (a causal mask keeps no row below) by the kernel's width."""
    kh, kw = self.kernel_size
    return kh // 2 + 1, kw

  def start_cache(self, inputs, row):
    """The row cache of the input map `(B, H, W, C_in)` at row `row` (an int
    tensor): its rows `row - rows + 1 .. row`, zero-padded, in float32."""
    rows, _ = self.window
    padded = caches.pad_for_window(inputs, self.window)  # (B, H + rows - 1, ...)
    return caches.window(padded, row, 0, rows, padded.shape[2])

  def write(self, cache, j, values):
    """The row cache with the input `values` `(B, C_in)` at column `j` of the
    current row."""
    return caches.write_pixel(cache, 0, j, values, self.window)

  def next_row(self, cache):
    """The row cache of the next row: the rows move up one, the new one is zeros."""
    if self.window[0] == 1:
      return tf.zeros_like(cache)
    return tf.concat([cache[:, 1:], tf.zeros_like(cache[:, :1])], 1)

  def pixel_fn(self):
    """Returns `fn(cache, j) -> (B, filters)`: the layer's float32 output at column
    `j` of the current row, from its row cache (`start_cache`): one matmul of the
    window. The weights are read once, here, not in every call."""
    matrix, bias = self._pixel_weights()
    rows, kw = self.window

    def at_pixel(cache, j):
      inputs = caches.window(cache, 0, j, rows, kw)  # (B, rows, kw, C_in)
      inputs = tf.reshape(inputs, [tf.shape(inputs)[0], -1])
      return self.activation(tf.matmul(inputs, matrix) + bias)

    return at_pixel

  def vector_fn(self):
    """Returns `fn(x) -> (B, filters)` of a 1x1 layer: its float32 output for the
    input vector `x` `(B, C_in)` of one pixel."""
    if self.window != (1, 1):
      raise ValueError(f"`vector_fn` is for 1x1 kernels; {self.name!r} is "
                       f"{self.kernel_size}: use `pixel_fn`.")
    matrix, bias = self._pixel_weights()
    return lambda x: self.activation(tf.matmul(x, matrix) + bias)

  def _pixel_weights(self):
    """The masked kernel's rows up to the centre as a `(rows*kw*C_in, filters)`
    float32 matrix, and the float32 bias."""
    rows, kw = self.window
    kernel = tf.cast(self.masked_kernel(), tf.float32)[:rows]
    bias = tf.cast(self.bias, tf.float32) if self.use_bias else 0.0
    return tf.reshape(kernel, (rows * kw * kernel.shape[2], self.filters)), bias

  def get_config(self):
    config = super().get_config()
    for fixed in FIXED_ARGUMENTS:
      config.pop(fixed, None)
    config.update(mask_type=self.mask_type, num_groups=self.num_groups)
    return config
