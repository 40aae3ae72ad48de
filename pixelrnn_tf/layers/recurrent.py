"""Row LSTM and Diagonal BiLSTM: the two-dimensional LSTM layers of PixelRNN.

Both layers compute the input-to-state part of the four gates for the whole map with
one masked convolution (mask B), then run an LSTM recurrence with `tf.scan` over rows
(Row LSTM) or over the columns of the skewed map (Diagonal BiLSTM). The scans have a
fixed number of steps and static shapes, so they compile with XLA.

Gate layout and colour groups: the gate pre-activations have `4 * units` channels laid
out gate-major, `[i | f | o | g]`, each block `units` wide. The input-to-state kernel
of gate block `q` is masked as a `units`-channel causal kernel, so channel `q*units + k`
has the colour group of hidden channel `k` (`k * num_groups // units`, as in
`pixelrnn_tf.masks`). The gate nonlinearities and the cell update are elementwise, so
`c[k]` and `h[k]` see only the input groups their group may see at the current pixel,
for any `units` (also when `units` is not a multiple of 3). The state-to-state
convolutions read only earlier pixels and are not masked.

References:
  van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML
  2016, Sections 3.1 and 3.2 and Figures 2 and 3.
"""

import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf import masks
from pixelrnn_tf.layers import caches
from pixelrnn_tf.layers.masked_conv import causal_conv2d
from pixelrnn_tf.layers.shift import slice_axis

# Cache windows (`caches.pad_for_window`): a Row LSTM's input is read on the pixel's
# row at columns j-1..j+1, the (h, c) states one row up at j-1..j+1 (and for the
# Diagonal BiLSTM one column left too), the right-to-left states one row up at j.
_ROW, _ABOVE_3, _ABOVE_1 = (1, 3), (2, 3), (2, 1)

NUM_GATES = 4  # i, f, o, g


def lstm_update(pre, c_prev):
  """One LSTM cell update from gate pre-activations.

  Args:
    pre: `(..., 4 * units)` pre-activations, gate-major `[i | f | o | g]`.
    c_prev: `(..., units)` previous cell state.

  Returns:
    `(h, c)`, each `(..., units)`.
  """
  i, f, o, g = tf.split(pre, NUM_GATES, axis=-1)  # 4 x (..., units)
  i, f, o, g = tf.sigmoid(i), tf.sigmoid(f), tf.sigmoid(o), tf.tanh(g)
  c = f * c_prev + i * g  # c = f * c_prev + i * g
  h = o * tf.tanh(c)  # h = o * tanh(c)
  return h, c


def gate_kernel_mask(kernel_size, in_channels, units, num_groups):
  """Returns the mask-B `(kh, kw, in_channels, 4 * units)` mask of a gate kernel.

  Each gate block `[q*units, (q+1)*units)` repeats the `units`-channel causal mask, so
  gate channel `q*units + k` is in the colour group of hidden channel `k`.
  """
  mask = masks.causal_kernel_mask(kernel_size, in_channels, units, "B", num_groups)
  return np.tile(mask, (1, 1, 1, NUM_GATES))  # (kh, kw, in, 4*units)


def _gate_bias_initializer(units, unit_forget_bias):
  """Zeros, with the forget-gate block set to 1 when `unit_forget_bias`."""

  def initializer(shape, dtype=None):
    bias = np.zeros(shape, np.float32)
    if unit_forget_bias:
      bias[..., units:2 * units] = 1.0
    return keras.ops.convert_to_tensor(bias, dtype=dtype)

  return initializer


def skew(x):
  """Shifts row `r` right by `r`: `(..., H, W, C)` -> `(..., H, W + H - 1, C)`.

  `skew(x)[..., r, r + j, :] == x[..., r, j, :]`; every other entry is 0. Column `t`
  of the skewed map holds the anti-diagonal `{(r, t - r)}` of the input.
  """
  *lead, height, width, channels = x.shape
  lead = tf.shape(x)[:len(lead)]
  length = width + height - 1
  paddings = [[0, 0]] * (x.shape.rank - 2) + [[0, height], [0, 0]]
  x = tf.pad(x, paddings)  # (..., H, W+H, C)
  x = tf.reshape(x, tf.concat([lead, [height * (width + height), channels]], 0))
  x = slice_axis(x, -2, 0, height * length)  # (..., H*(W+H-1), C)
  return tf.reshape(x, tf.concat([lead, [height, length, channels]], 0))


def unskew(x, width):
  """Inverse of `skew`: `(..., H, W + H - 1, C)` -> `(..., H, W, C)`."""
  *lead, height, length, channels = x.shape
  if length != width + height - 1:
    raise ValueError(
        f"Invalid skewed map. Expected width + height - 1 = {width + height - 1} "
        f"columns. Received: shape={x.shape}")
  lead = tf.shape(x)[:len(lead)]
  x = tf.reshape(x, tf.concat([lead, [height * length, channels]], 0))
  paddings = [[0, 0]] * (x.shape.rank - 2) + [[0, height], [0, 0]]
  x = tf.pad(x, paddings)  # (..., H*(W+H), C)
  x = tf.reshape(x, tf.concat([lead, [height, length + 1, channels]], 0))
  return slice_axis(x, -2, 0, width)  # (..., H, W, C)


class _RecurrentBase(keras.layers.Layer):
  """Argument checks, config and output shape shared by the two layers."""

  def __init__(self, units, num_groups=1, kernel_initializer="glorot_uniform",
               recurrent_initializer="orthogonal", unit_forget_bias=True, **kwargs):
    super().__init__(**kwargs)
    if not isinstance(units, (int, np.integer)) or units < 1:
      raise ValueError(
          f"Invalid `units`. Expected a positive int. Received: units={units!r}")
    if num_groups not in (1, 3):
      raise ValueError(
          "Invalid `num_groups`. Expected 1 (grayscale) or 3 (RGB). "
          f"Received: num_groups={num_groups!r}")
    if units < num_groups:
      raise ValueError(
          "Invalid `units`. Expected units >= num_groups so that every colour "
          f"group has a hidden channel. Received: units={units}, "
          f"num_groups={num_groups}")
    self.units = units
    self.num_groups = num_groups
    self.kernel_initializer = keras.initializers.get(kernel_initializer)
    self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
    self.unit_forget_bias = unit_forget_bias

  def _check_input_shape(self, input_shape):
    if len(input_shape) != 4 or None in tuple(input_shape[1:]):
      raise ValueError(
          f"Invalid input shape for {type(self).__name__}. Expected (B, H, W, C) "
          f"with static H, W, C. Received: input_shape={tuple(input_shape)}")
    if input_shape[-1] < self.num_groups:
      raise ValueError(
          "Invalid input channels. Expected at least num_groups="
          f"{self.num_groups}. Received: input_shape={tuple(input_shape)}")

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:-1]) + (self.units,)

  def get_config(self):
    config = super().get_config()
    config.update(
        units=self.units, num_groups=self.num_groups,
        kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        recurrent_initializer=keras.initializers.serialize(
            self.recurrent_initializer),
        unit_forget_bias=self.unit_forget_bias)
    return config


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class RowLSTM(_RecurrentBase):
  """Row LSTM: an LSTM over the rows of the map, a whole row at a time.

  The gates of row `i` are `K_is * x[i] + K_ss * h[i-1]`, with `K_is` a 1x3 mask-B
  convolution of the layer input (computed for all rows at once) and `K_ss` a plain
  1x3 convolution ('same' along the row) of the previous row's hidden state. Then
  `c = f * c_prev + i * g` and `h = o * tanh(c)`, gates `i, f, o` sigmoid and `g`
  tanh. The recurrence is one `tf.scan` over the `H` rows.

  Args:
    units: `h`, the hidden and cell state channels.
    num_groups: colour groups of the input and state channels: 1 (grayscale or
      binary) or 3 (RGB). Needs `units >= num_groups`.
    kernel_initializer: initializer of the input-to-state kernel.
    recurrent_initializer: initializer of the state-to-state kernel.
    unit_forget_bias: start the forget-gate bias at 1 (else 0).
    **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

  Input shape:
    `(B, H, W, C_in)`, H, W and C_in static.

  Output shape:
    `(B, H, W, units)`: the hidden states `h`.

  Causality:
    Output `[i, j, group g]` reads input pixels `(i - d, j')` for `d >= 1` and
    `j - d - 1 <= j' <= j + d` (the triangle of the paper's Figure 4), `(i, j - 1)`,
    and at `(i, j)` the input groups `<= g`. It never reads a pixel right of `j` on
    row `i`, nor `(i, j - 2)` and further left on row `i`, nor a later row.

  References:
    van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016, Section 3.1.
  """

  kernel_width = 3

  def build(self, input_shape):
    self._check_input_shape(input_shape)
    in_channels = input_shape[-1]
    units, width = self.units, self.kernel_width
    self.input_kernel = self.add_weight(
        name="input_kernel", shape=(1, width, in_channels, NUM_GATES * units),
        initializer=self.kernel_initializer)
    self.recurrent_kernel = self.add_weight(
        name="recurrent_kernel", shape=(width, units, NUM_GATES * units),
        initializer=self.recurrent_initializer)
    self.bias = self.add_weight(
        name="bias", shape=(NUM_GATES * units,),
        initializer=_gate_bias_initializer(units, self.unit_forget_bias))
    self._input_mask = gate_kernel_mask((1, width), in_channels, units,
                                        self.num_groups)

  def masked_input_kernel(self):
    """The input-to-state kernel as applied: `(1, 3, C_in, 4 * units)`, mask B."""
    return self.input_kernel * tf.cast(self._input_mask, self.input_kernel.dtype)

  def call(self, inputs):
    return self.hidden_and_cell(inputs)[0]

  def hidden_and_cell(self, inputs):
    """The states of every pixel: `(h, c)`, each `(B, H, W, units)`."""
    # Input-to-state for every row at once: 1x3 mask-B conv.
    pre_is = causal_conv2d(inputs, self.input_kernel,
                           self._input_mask) + self.bias  # (B, H, W, 4h)
    pre_is = tf.transpose(pre_is, (1, 0, 2, 3))  # (H, B, W, 4h): rows time-major
    zeros = tf.zeros_like(pre_is[0, ..., :self.units])  # (B, W, h)
    width = zeros.shape[1]
    # The 1x3 state-to-state conv as one matmul over the taps [w-1 | w | w+1]:
    # faster on CPU than a conv1d, with or without XLA.
    recurrent_kernel = tf.reshape(
        self.recurrent_kernel, (self.kernel_width * self.units, -1))  # (3h, 4h)

    def step(state, pre_row):
      h_prev, c_prev = state  # (B, W, h) each: the previous row
      padded = tf.pad(h_prev, [[0, 0], [1, 1], [0, 0]])  # (B, W+2, h)
      taps = tf.concat([slice_axis(padded, 1, k, width) for k in range(3)],
                       axis=-1)  # (B, W, 3h): columns w-1, w, w+1
      # One 2-D matmul: faster on CPU than the same einsum.
      pre_ss = tf.reshape(tf.matmul(tf.reshape(taps, (-1, 3 * self.units)),
                                    recurrent_kernel),
                          tf.shape(pre_row))  # (B, W, 4h)
      return lstm_update(pre_row + pre_ss, c_prev)

    h, c = tf.scan(step, pre_is, initializer=(zeros, zeros))  # (H, B, W, h) each
    return tf.transpose(h, (1, 0, 2, 3)), tf.transpose(c, (1, 0, 2, 3))

  # One pixel at a time (the cached samplers). ------------------------------------

  def start_state(self, inputs):
    """The float32 caches `step_fn` reads, from the layer input `(B, H, W, C_in)`:
    the input map (read on the pixel's row at j-1..j) and the `[h | c]` states of
    every pixel (read one row up at j-1..j+1), side by side in one map: one window
    read serves both (a separate read of c, fused by XLA into the update that
    overwrites it, made XLA copy the cache every step)."""
    h, c = self.hidden_and_cell(inputs)
    return {"x": caches.pad_for_window(inputs, _ROW),
            "hc": caches.pad_for_window(tf.concat([h, c], -1), _ABOVE_3)}

  def step_fn(self):
    """Returns `fn(state, i, j, x) -> (h, state)`: the cell at pixel (i, j) for the
    layer input `x` `(B, C_in)` there, its float32 hidden state `h` `(B, units)`,
    and `state` (`start_state`) with `x`, `h` and `c` written at (i, j)."""
    units = self.units
    input_matrix = tf.reshape(
        tf.cast(self.masked_input_kernel(), tf.float32)[0],
        (-1, NUM_GATES * units))  # (3 C_in, 4h): columns j-1, j, j+1
    bias = tf.cast(self.bias, tf.float32)
    # State to state: a 1x3 conv of the previous row's h as one matmul over the
    # flattened h of row i-1, columns j-1..j+1: `(3h, 4h)`.
    recurrent_matrix = tf.reshape(tf.cast(self.recurrent_kernel, tf.float32),
                                  (-1, NUM_GATES * units))

    def step(state, i, j, x):
      state = dict(state, x=caches.write_pixel(state["x"], i, j, x, _ROW))
      row = caches.window(state["x"], i, j, 1, 3)  # row i, columns j-1..j+1
      above = caches.window(state["hc"], i, j, 1, 3)  # row i - 1, j-1..j+1
      batch = tf.shape(x)[0]
      pre = (tf.matmul(tf.reshape(row, [batch, -1]), input_matrix) + bias +
             tf.matmul(tf.reshape(above[..., :units], [batch, -1]),
                       recurrent_matrix))  # (B, 4h)
      h, c = lstm_update(pre, above[:, 0, 1, units:])  # c of (i - 1, j)
      state["hc"] = caches.write_pixel(state["hc"], i, j, tf.concat([h, c], -1),
                                       _ABOVE_3)
      return h, state

    return step


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class DiagonalBiLSTM(_RecurrentBase):
  """Diagonal BiLSTM: two LSTMs along the diagonals of the map, one per direction.

  Each direction skews its map (row `r` shifted right by `r`, `(B, H, W, .)` ->
  `(B, H, W + H - 1, .)`), computes the gates' input-to-state part with a 1x1 mask-B
  convolution and runs an LSTM over the skewed columns whose state-to-state part is
  a 2x1 convolution: cell `(r, t)` reads `h_prev` of column `t - 1` at rows `r` and
  `r - 1`, i.e. its left and upper neighbours in the unskewed map. The left-to-right
  direction runs on the map, the right-to-left one on the horizontally flipped map;
  both run in one `tf.scan` (a leading direction axis, with per-direction weights).
  The right-to-left output is flipped back, shifted down one row and added to the
  left-to-right output.

  Args:
    units: `h`, the hidden and cell state channels of each direction.
    num_groups: colour groups of the input and state channels: 1 (grayscale or
      binary) or 3 (RGB). Needs `units >= num_groups`.
    kernel_initializer: initializer of the input-to-state kernels.
    recurrent_initializer: initializer of the state-to-state kernels.
    unit_forget_bias: start the forget-gate bias at 1 (else 0).
    **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

  Input shape:
    `(B, H, W, C_in)`, H, W and C_in static.

  Output shape:
    `(B, H, W, units)`: the sum of the two directions' hidden states.

  Causality:
    Output `[i, j, group g]` reads every input pixel of the rows above `i`, the
    pixels `(i, j')` with `j' < j`, and at `(i, j)` the input groups `<= g`: the
    full context. The left-to-right direction covers `(i' <= i, j' <= j)`; the
    shifted right-to-left one covers `(i' < i, j' >= j)`, so no pixel right of `j`
    on row `i` is ever read.

  References:
    van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016, Section 3.2
    and Figure 3.
  """

  num_directions = 2  # left-to-right, right-to-left

  def build(self, input_shape):
    self._check_input_shape(input_shape)
    in_channels = input_shape[-1]
    units, dirs = self.units, self.num_directions
    self.input_kernel = self.add_weight(
        name="input_kernel", shape=(dirs, in_channels, NUM_GATES * units),
        initializer=self.kernel_initializer)
    # Rows [0, h) read the state above (row r - 1), rows [h, 2h) the state at row r.
    self.recurrent_kernel = self.add_weight(
        name="recurrent_kernel", shape=(dirs, 2 * units, NUM_GATES * units),
        initializer=self.recurrent_initializer)
    self.bias = self.add_weight(
        name="bias", shape=(dirs, NUM_GATES * units),
        initializer=_gate_bias_initializer(units, self.unit_forget_bias))
    self._input_mask = gate_kernel_mask((1, 1), in_channels, units,
                                        self.num_groups)[0, 0]  # (C_in, 4h)

  def masked_input_kernel(self):
    """The input-to-state kernels as applied: `(2, C_in, 4 * units)`, mask B."""
    return self.input_kernel * tf.cast(self._input_mask, self.input_kernel.dtype)

  def call(self, inputs):
    h, _ = self.directional_states(inputs)
    left_to_right, right_to_left = tf.unstack(h)  # (B, H, W, h) each
    # Shift down one row: output row i gets the right-to-left state of row i - 1.
    height = right_to_left.shape[1]
    right_to_left = tf.pad(slice_axis(right_to_left, 1, 0, height - 1),
                           [[0, 0], [1, 0], [0, 0], [0, 0]])
    return left_to_right + right_to_left  # (B, H, W, h)

  def directional_states(self, inputs):
    """Each direction's states at every pixel, in the input's orientation, unshifted.

    Returns `(h, c)`, each `(2, B, H, W, units)`: index 0 left-to-right (cell
    `(i, j)` follows `(i, j - 1)` and `(i - 1, j)`), 1 right-to-left (cell `(i, j)`
    follows `(i, j + 1)` and `(i - 1, j)`).
    """
    width = inputs.shape[2]
    x = tf.stack([inputs, tf.reverse(inputs, axis=[2])])  # (2, B, H, W, C_in)
    # Input-to-state: 1x1 mask-B conv, per direction.
    pre_is = tf.einsum("dbhwc,dcn->dbhwn", x, self.masked_input_kernel())
    bias = tf.reshape(self.bias, (self.num_directions, 1, 1, 1, -1))
    pre_is += bias  # (2, B, H, W, 4h)
    # Zero columns of the skew give zero pre-activations, so the cells left of each
    # row's start keep h = c = 0: they act as the zero initial state.
    pre_is = skew(pre_is)  # (2, B, H, W+H-1, 4h)
    pre_is = tf.transpose(pre_is, (3, 0, 1, 2, 4))  # (W+H-1, 2, B, H, 4h)
    zeros = tf.zeros_like(pre_is[0, ..., :self.units])  # (2, B, H, h)
    height = zeros.shape[2]

    def step(state, pre_column):
      h_prev, c_prev = state  # (2, B, H, h) each: the previous skewed column
      h_above = tf.pad(slice_axis(h_prev, 2, 0, height - 1),
                       [[0, 0], [0, 0], [1, 0], [0, 0]])
      taps = tf.concat([h_above, h_prev], axis=-1)  # (2, B, H, 2h)
      pre_ss = tf.einsum("dbrc,dcn->dbrn", taps, self.recurrent_kernel)  # 2x1 conv
      return lstm_update(pre_column + pre_ss, c_prev)

    states = tf.scan(step, pre_is, initializer=(zeros, zeros))  # (W+H-1, 2, B, H, h)

    def unskewed(s):
      s = unskew(tf.transpose(s, (1, 2, 3, 0, 4)), width)  # (2, B, H, W, h)
      left_to_right, right_to_left = tf.unstack(s)
      return tf.stack([left_to_right, tf.reverse(right_to_left, axis=[2])])

    return tuple(unskewed(s) for s in states)

  # One pixel at a time (the cached samplers). ------------------------------------
  #
  # In the image's own coordinates the left-to-right cell (i, j) follows (i, j - 1)
  # and (i - 1, j); the right-to-left cell (i, j) follows (i, j + 1) and (i - 1, j)
  # and reaches the output one row down. So `step_fn` computes the left-to-right
  # cell of a pixel, and `row_fn`, once row `i` is known, the right-to-left states
  # of the whole row as one scan along it.

  def start_state(self, inputs):
    """The float32 caches `step_fn` and `row_fn` read, from the layer input
    `(B, H, W, C_in)`: the input map, the left-to-right `[h | c]` states (read one
    row up and one column left) and the right-to-left `h` (read one row up)."""
    h, c = self.directional_states(inputs)  # (2, B, H, W, h) each
    return {"x": tf.cast(inputs, tf.float32),
            "hc": caches.pad_for_window(tf.concat([h[0], c[0]], -1), _ABOVE_3),
            "h_rtl": caches.pad_for_window(h[1], _ABOVE_1)}

  def _step_weights(self):
    return (tf.cast(self.masked_input_kernel(), tf.float32),  # (2, C_in, 4h)
            tf.cast(self.bias, tf.float32),  # (2, 4h)
            tf.cast(self.recurrent_kernel, tf.float32))  # (2, 2h, 4h)

  def step_fn(self):
    """Returns `fn(state, i, j, x) -> (y, state)`: for the layer input `x`
    `(B, C_in)` at pixel (i, j), the layer output `y` `(B, units)` there (the
    left-to-right cell plus the right-to-left state of (i - 1, j)), and `state`
    with `x` and the left-to-right `h`, `c` written at (i, j)."""
    units = self.units
    input_kernel, bias, recurrent_kernel = self._step_weights()

    def step(state, i, j, x):
      state = dict(state, x=caches.write_pixel(state["x"], i, j, x, (1, 1)))
      window = caches.window(state["hc"], i, j, 2, 2)  # rows i-1..i, j-1..j
      above, left = window[:, 0, 1, :units], window[:, 1, 0, :units]
      pre = (tf.matmul(x, input_kernel[0]) + bias[0] +
             tf.matmul(tf.concat([above, left], -1), recurrent_kernel[0]))
      h, c = lstm_update(pre, window[:, 1, 0, units:])  # c of (i, j - 1)
      state["hc"] = caches.write_pixel(state["hc"], i, j, tf.concat([h, c], -1),
                                       _ABOVE_3)
      right_to_left_above = caches.read_pixel(state["h_rtl"], i, j)  # (i - 1, j)
      return h + right_to_left_above, state

    return step

  def row_fn(self):
    """Returns `fn(state, i) -> state`: the right-to-left states of row `i`, from
    its inputs in `state` (all written), as row `i + 1` reads them."""
    units = self.units
    input_kernel, bias, recurrent_kernel = self._step_weights()
    along_row = recurrent_kernel[1, units:]  # (h, 4h): reads the cell at j + 1

    def step(carry, pre_j):
      h_right, c_right = carry
      return lstm_update(pre_j + tf.matmul(h_right, along_row), c_right)

    def row(state, i):
      inputs = tf.gather(state["x"], i, axis=1)  # (B, W, C_in)
      above = tf.gather(state["h_rtl"], i, axis=1)  # row i - 1: (B, W, h)
      pre = (tf.einsum("bwc,cn->wbn", inputs, input_kernel[1]) + bias[1] +
             tf.einsum("bwc,cn->wbn", above, recurrent_kernel[1, :units]))
      zeros = tf.zeros_like(pre[0, :, :units])  # (B, h)
      h_row, _ = tf.scan(step, pre, initializer=(zeros, zeros), reverse=True)
      return dict(state, h_rtl=caches.write_row(state["h_rtl"], i + 1,
                                                tf.transpose(h_row, (1, 0, 2))))

    return row
