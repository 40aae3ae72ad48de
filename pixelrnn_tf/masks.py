"""Causal masks for convolution kernels over (row, column, colour channel) order.

Pixels are generated in raster order and, within a pixel, colour channel by colour
channel (R, then G, then B). A masked kernel may read

* every pixel in rows above the centre row,
* pixels left of the centre on the centre row,
* at the centre pixel only: input colour groups *before* the output's group (mask A),
  or before-or-equal (mask B).

Feature maps are split into ``num_groups`` contiguous channel groups: channel ``k`` of a
map with ``n`` channels belongs to group ``k * num_groups // n``. With this layout, the
``C * K`` output channels of the last layer reshape to ``(C, K)`` with colour ``c`` in
group ``c``.

References:
  van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML
  2016, Section 3.4 and Figure 4.
"""

import numpy as np

MASK_TYPES = ("A", "B")


def channel_groups(num_channels, num_groups):
  """Returns the colour group of each channel, shape `(num_channels,)`, int."""
  return np.arange(num_channels) * num_groups // num_channels


def check_channel_mask_args(in_channels, out_channels, mask_type, num_groups):
  """Raises ValueError unless `mask_type` is 'A' or 'B' and
  `1 <= num_groups <= min(in_channels, out_channels)`."""
  if mask_type not in MASK_TYPES:
    raise ValueError(
        f"Invalid `mask_type`. Expected 'A' or 'B'. Received: mask_type={mask_type!r}")
  if num_groups < 1 or num_groups > min(in_channels, out_channels):
    raise ValueError(
        "Invalid `num_groups`. Expected 1 <= num_groups <= min(in_channels, "
        f"out_channels)={min(in_channels, out_channels)}. Received: "
        f"num_groups={num_groups}")


def group_reads(in_group, out_group, mask_type):
  """Whether an output of colour group `out_group` reads an input of `in_group` at
  the centre tap: `in_group < out_group` for mask A, `<=` for mask B. Elementwise
  with broadcasting, on NumPy arrays or tensors alike; boolean."""
  return in_group < out_group if mask_type == "A" else in_group <= out_group


def channel_mask(in_channels, out_channels, mask_type, num_groups):
  """Returns the `(in_channels, out_channels)` 0/1 mask for the centre tap.

  Output group `g` reads input groups `< g` for mask A, `<= g` for mask B.
  """
  check_channel_mask_args(in_channels, out_channels, mask_type, num_groups)
  in_group = channel_groups(in_channels, num_groups)[:, None]  # (in, 1)
  out_group = channel_groups(out_channels, num_groups)[None, :]  # (1, out)
  return group_reads(in_group, out_group, mask_type).astype(np.float32)


def causal_kernel_mask(kernel_size, in_channels, out_channels, mask_type,
                       num_groups):
  """Returns the `(kh, kw, in_channels, out_channels)` 0/1 mask of a causal kernel.

  Args:
    kernel_size: `(kh, kw)`, both odd; the centre tap is the current pixel.
    in_channels: channels of the input map.
    out_channels: channels of the output map.
    mask_type: 'A' (first layer: the current channel is hidden) or 'B'.
    num_groups: 1 for grayscale/binary images, 3 for RGB.
  """
  kh, kw = kernel_size
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(
        "Invalid `kernel_size`. Expected odd sizes so the centre is the current "
        f"pixel. Received: kernel_size={tuple(kernel_size)}")
  mask = np.zeros((kh, kw, in_channels, out_channels), np.float32)
  ch, cw = kh // 2, kw // 2
  mask[:ch] = 1.0  # rows above
  mask[ch, :cw] = 1.0  # left on the current row
  mask[ch, cw] = channel_mask(in_channels, out_channels, mask_type, num_groups)
  return mask
