"""Masked 2-D convolution: a `keras.layers.Conv2D` that never reads the future."""

import keras

from pixelrnn_tf import masks


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class MaskedConv2D(keras.layers.Conv2D):
  """2-D convolution whose kernel is multiplied by a causal mask in the forward pass.

  The mask (see `pixelrnn_tf.masks.causal_kernel_mask`) is applied on every call, so
  the layer is causal at initialisation and after every update, not only after an
  optimizer step. Padding is always 'same' and strides 1, so outputs align with inputs.

  Args:
    filters: number of output channels.
    kernel_size: odd int or `(kh, kw)` with odd entries.
    mask_type: 'A' (the first layer: output channel group `g` sees input groups
      `< g` at the current pixel) or 'B' (groups `<= g`).
    num_groups: colour groups the channels are split into: 1 (grayscale or binary
      images) or 3 (RGB).
    **kwargs: any other `keras.layers.Conv2D` argument (activation, initializers,
      regularizers, ...), except `padding`, `strides` and `dilation_rate` other than 1.

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
    for fixed in ("padding", "strides", "dilation_rate"):
      value = kwargs.pop(fixed, None)
      if value not in (None, "same", 1, (1, 1), [1, 1]):
        raise ValueError(
            f"Invalid `{fixed}` for MaskedConv2D: a causal convolution keeps the "
            f"default. Received: {fixed}={value!r}")
    super().__init__(filters, kernel_size, padding="same", **kwargs)
    self.mask_type = mask_type
    self.num_groups = num_groups

  def build(self, input_shape):
    super().build(input_shape)
    kh, kw, in_channels, out_channels = self.kernel.shape
    self._mask = masks.causal_kernel_mask(
        (kh, kw), in_channels, out_channels, self.mask_type, self.num_groups)

  def convolution_op(self, inputs, kernel):
    mask = keras.ops.cast(self._mask, kernel.dtype)  # bfloat16/float16 when mixed
    return super().convolution_op(inputs, kernel * mask)

  def masked_kernel(self):
    """The kernel as the layer applies it: `(kh, kw, C_in, filters)`, mask applied."""
    return self.kernel * keras.ops.cast(self._mask, self.kernel.dtype)

  def get_config(self):
    config = super().get_config()
    for fixed in ("padding", "strides", "dilation_rate"):
      config.pop(fixed, None)
    config.update(mask_type=self.mask_type, num_groups=self.num_groups)
    return config
