"""Ancestral sampling and completion, one sub-pixel at a time, in raster/RGB order.

Two samplers draw the same images for the same seed (up to float rounding of the
logits):

  naive   (`complete_naive`) re-runs the whole network for each of the `H*W*C`
          sub-pixels: `O(H*W)` positions of work per sub-pixel. Any `images ->
          logits` model; the reference the cached one is tested against.
  cached  (`complete_cached`, every family of `models.MODELS`) keeps every map
          that a step reads at other pixels (inputs of spatial convolutions,
          recurrent states) and computes only the current pixel through the
          network: `O(1)` positions per layer and sub-pixel (plus, for the
          Diagonal BiLSTM and the Gated PixelCNN's vertical stack, one pass along
          each row once it is drawn).

`complete` and `sample` take the cached one where the family has it. Both loops are a
`tf.while_loop` over fixed-shape buffers, so they compile into one graph (XLA or not)
and export in a SavedModel.
"""

import contextlib
import typing
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf import distributions
from pixelrnn_tf import models
from pixelrnn_tf.layers import DiagonalBiLSTM
from pixelrnn_tf.layers import MaskedConv2D
from pixelrnn_tf.layers import RowLSTM
from pixelrnn_tf.layers import recurrent
from pixelrnn_tf.layers import scales


def complete(model, images, start, num_levels, seed, labels=None):
  """Re-samples every sub-pixel at flat position >= `start` given those before it.

  Args:
    model: `images -> logits` network (uint8 `(B,H,W,C)` -> `(B,H,W,C,K)`); a Keras
      model of a family in `CACHED_FAMILIES` is sampled with the cached sampler.
    images: uint8 `(B, H, W, C)`; sub-pixels before `start` are kept bit for bit.
    start: int scalar, flat index into `H*W*C` raster/RGB order (`row * W * C` keeps
      the rows above `row`).
    num_levels: 2 or 256, as the model was trained.
    seed: int32 `(2,)` stateless seed; step `p` draws with `fold_in(seed, p)`.
    labels: int32 `(B,)`, the class of each image, for a class-conditional model
      (`models.is_conditional`); None otherwise.

  Returns:
    uint8 `(B, H, W, C)`.
  """
  if has_cached_sampler(model):
    return complete_cached(model, images, start, num_levels, seed, labels)
  return complete_naive(model, images, start, num_levels, seed, labels)


def has_cached_sampler(model):
  """Whether `complete` samples `model` with the cached sampler (its name is in
  `CACHED_FAMILIES`)."""
  return isinstance(model, keras.Model) and model.name in CACHED_FAMILIES


def prefers_xla(model):
  """Whether `model`'s sampler should compile with XLA whatever `--jit_compile` says.

  True wherever the cached sampler runs: its loop body is many small ops per
  sub-pixel, which XLA fuses, updating the caches in place; on the 2-core CPU
  (bench/sampling.py, 2026-12-01) that makes it 6.5-25x faster than without XLA.
  """
  return has_cached_sampler(model)


def complete_naive(model, images, start, num_levels, seed, labels=None):
  """`complete` with one full forward pass of `model` per sub-pixel.

  Sub-pixels are drawn in the generation order of `model`'s family
  (`models.generation_order`, by `model.name`): raster/RGB order for every family
  but `multiscale`, which draws the unknown pixels of the small image first. For
  it, a completion is exact only when `start` is 0 or every sub-pixel of the small
  image is known: the small network's conditionals do not read the known pixels
  off its grid.
  """
  images = tf.convert_to_tensor(images, tf.uint8)
  order = models.generation_order(getattr(model, "name", None), images.shape[1:])

  def logits_at(canvas, i, j, state):
    logits = model(models.network_inputs(model, canvas, labels), training=False)
    return logits[:, i, j], state  # (B, C, K)

  return _ancestral_loop(images, start, num_levels, seed, logits_at, (),
                         order=order)


def complete_cached(model, images, start, num_levels, seed, labels=None):
  """`complete` computing one pixel per step, for a family in `CACHED_FAMILIES`.

  A first forward pass over `images` fills caches of every map that a step reads at
  other pixels (the inputs of the spatial convolutions, the recurrent layers'
  inputs and states); each step then runs only the current pixel through the
  network to its logits, writing what it computes into the caches, and each draw
  writes the pixel's new value into the first layer's cache. A step reads only
  earlier pixels and its own, so nothing else needs updating. What the next row
  reads of a whole row (the Diagonal BiLSTM's right-to-left states, the Gated
  PixelCNN's vertical stack) is computed once the row is drawn. A `multiscale`
  model draws the unknown pixels of its small image with its small network's
  cached sampler first, then the others with its conditional network's. Runs in
  float32 whatever the dtype policy.
  """
  if not has_cached_sampler(model):
    raise ValueError(
        f"No cached sampler for model {model.name!r}. Expected one of "
        f"{sorted(CACHED_FAMILIES)}; use `complete_naive`.")
  with _computing_in_float32(model):
    if model.name == "multiscale":
      return _complete_multiscale(model, images, start, num_levels, seed)
    return _complete_cached(model, model.name, images, start, num_levels, seed,
                            labels)


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


def _complete_multiscale(model, images, start, num_levels, seed):
  """`complete_cached` of a `models.multiscale` network, in its generation order.

  The small image's sub-pixels draw with `fold_in(seed, p)` of their index `p` in
  the full image, as in `complete_naive`, so both samplers draw the same images.
  """
  images = tf.convert_to_tensor(images, tf.uint8)
  small = model.get_layer("subsample_images")(images)  # (B, H/f, W/f, C)
  # The full-image index of each small sub-pixel: the head of the generation order.
  order = models.generation_order(model.name, images.shape[1:])
  grid_index = order[:small.shape[1] * small.shape[2] * small.shape[3]]
  small_start = tf.reduce_sum(tf.cast(
      tf.constant(grid_index, tf.int32) < tf.cast(start, tf.int32), tf.int32))
  small = _complete_cached(model.get_layer("small"), "row_lstm", small, small_start,
                           num_levels, seed, seed_positions=grid_index)
  images = scales.place_subsampled(small, images, models.MULTISCALE_FACTOR)
  # The conditional network steps through every pixel (its states need them all)
  # and keeps the small image's values.
  keep = np.zeros(len(order), bool)
  keep[grid_index] = True
  return _complete_cached(model, "row_lstm", images, start, num_levels, seed,
                          keep=keep)


def _complete_cached(model, family, images, start, num_levels, seed, labels=None,
                     seed_positions=None, keep=None):
  """`complete_cached` with the caches of `family` (a key of `_CACHE_BUILDERS`).

  `seed_positions` and `keep` go to `_ancestral_loop`.
  """
  images = tf.convert_to_tensor(images, tf.uint8)
  channels = images.shape[-1]
  convs = {layer.name: _pixel_weights(layer.masked_kernel(), layer.bias,
                                      layer.activation)
           for layer in model.layers if isinstance(layer, MaskedConv2D)}
  network = _CACHE_BUILDERS[family](
      model, models.network_inputs(model, images, labels), convs)
  scale = model.get_layer("scale")

  def logits_at(canvas, i, j, caches):
    x, caches = network.pixel_step(i, j, dict(caches))  # (B, 2h)
    x = _conv_at(convs["output_conv_1"], tf.nn.relu(x))
    logits = _conv_at(convs["output_conv_2"], x)  # (B, C*K)
    return tf.reshape(logits, [tf.shape(logits)[0], channels, -1]), caches

  def on_drawn(canvas, i, j, c, caches):
    pixel = tf.cast(scale(canvas[:, i, j]), tf.float32)  # (B, C)
    caches = dict(caches)
    for name, window in network.image_windows.items():
      caches[name] = _write_pixel(caches[name], i, j, pixel, window)
    return caches

  return _ancestral_loop(images, start, num_levels, seed, logits_at, network.caches,
                         on_drawn, network.row_end, seed_positions=seed_positions,
                         keep=keep)


class _CachedNetwork(typing.NamedTuple):
  """A family's network for `complete_cached`, over float32 caches.

  Attributes:
    pixel_step: `(i, j, caches) -> (x, caches)`: pixel (i, j) through the network
      to the output layers' input `x` `(B, maps)`, writing what it computes.
    caches: name -> padded float32 map, filled by a forward pass.
    image_windows: name -> window of each cache that holds the scaled image; a
      draw writes the pixel there.
    row_end: `(i, caches) -> caches`, run once row `i` is drawn, or None.
  """
  pixel_step: Callable
  caches: dict
  image_windows: dict
  row_end: Callable | None = None


def _image_windows(convs):
  """The image cache of the families that start with `models.first_layer`."""
  return {"input_conv": convs["input_conv"]["window"]}


def _first_layer_at(convs, caches, i, j):
  """The 7x7 mask-A conv's output `(B, 2h)` at pixel (i, j) of its input cache."""
  return _conv_at(convs["input_conv"], caches["input_conv"], i, j)


def _pixelcnn_caches(model, inputs, convs):
  """`models.pixelcnn`: caches the input maps of the 7x7 and 3 x k block convolutions.

  Its `pixel_step` runs pixel (i, j) through the residual blocks.
  """
  spatial = [name for name, w in convs.items() if w["window"] != (1, 1)]
  maps = _layer_inputs(model, inputs, spatial)
  caches = {name: _pad_for_window(x, convs[name]["window"])
            for name, x in zip(spatial, maps)}
  num_blocks = sum(name.startswith("block") and name.endswith("_conv")
                   for name in convs)

  def pixel_step(i, j, caches):
    x = _first_layer_at(convs, caches, i, j)
    for b in range(num_blocks):
      name = f"block{b}_conv"
      y = _conv_at(convs[f"block{b}_in"], tf.nn.relu(x))
      caches[name] = _write_pixel(caches[name], i, j, y, convs[name]["window"])
      y = _conv_at(convs[name], caches[name], i, j)
      x = x + _conv_at(convs[f"block{b}_out"], y)
    return x, caches

  return _CachedNetwork(pixel_step, caches, _image_windows(convs))


def _row_lstm_caches(model, inputs, convs):
  """`models.row_lstm`: caches the 7x7 conv's input and, per Row LSTM layer, its
  input (read at the pixel and its left neighbour) and its hidden and cell states
  side by side in one map (the previous row's: h read at columns j-1..j+1, c at
  column j). One window read serves both states: a separate read of c, fused by
  XLA into the update that overwrites it, made XLA copy the cache every step.

  Its `pixel_step` runs pixel (i, j) through the recurrent blocks to the sum of
  the skips. In a multi-scale network's conditional stack each layer's input also
  gets its bias map (`layer{b}_bias`, a function of the small image alone), read
  at the pixel.
  """
  lstms = [layer for layer in model.layers if isinstance(layer, RowLSTM)]
  maps = _layer_inputs(model, inputs, ["input_conv"] + [l.name for l in lstms])
  bias_names = [f"layer{b}_bias" for b in range(len(lstms))]
  if any(layer.name == bias_names[0] for layer in model.layers):
    biases = _maps(model, inputs, [model.get_layer(n).output for n in bias_names])
  else:
    biases = None
  caches = {"input_conv": _pad_for_window(maps[0], convs["input_conv"]["window"])}
  steps = []
  for layer, x in zip(lstms, maps[1:]):
    h, c = layer.hidden_and_cell(x)
    caches[layer.name + "/x"] = _pad_for_window(x, _ROW_WINDOW)
    caches[layer.name + "/hc"] = _pad_for_window(
        tf.cast(tf.concat([h, c], -1), tf.float32), _ABOVE_3)
    # State to state: a 1x3 conv of the previous row's h, one matmul over the
    # flattened h of row i-1, columns j-1..j+1: `(3h, 4h)`.
    recurrent_matrix = tf.reshape(tf.cast(layer.recurrent_kernel, tf.float32),
                                  (-1, recurrent.NUM_GATES * layer.units))
    steps.append((layer.name, layer.units,
                  _pixel_weights(layer.masked_input_kernel(), layer.bias),
                  recurrent_matrix))

  def pixel_step(i, j, caches):
    x = _first_layer_at(convs, caches, i, j)
    skips = 0.0
    for b, (name, units, input_weights, recurrent_matrix) in enumerate(steps):
      x_in = x if biases is None else x + biases[b][:, i, j]
      caches[name + "/x"] = _write_pixel(caches[name + "/x"], i, j, x_in,
                                         _ROW_WINDOW)
      above = _window(caches[name + "/hc"], i, j, 1, 3)  # row i - 1, j-1..j+1
      h_above = tf.reshape(above[..., :units], [tf.shape(above)[0], -1])
      c_above = above[:, 0, 1, units:]  # (i - 1, j)
      pre = (_conv_at(input_weights, caches[name + "/x"], i, j) +
             tf.matmul(h_above, recurrent_matrix))  # (B, 4h)
      h, c = recurrent.lstm_update(pre, c_above)
      caches[name + "/hc"] = _write_pixel(caches[name + "/hc"], i, j,
                                          tf.concat([h, c], -1), _ABOVE_3)
      x = x + _conv_at(convs[f"layer{b}_out"], h)
      skips += _conv_at(convs[f"layer{b}_skip"], x)
    return skips, caches

  return _CachedNetwork(pixel_step, caches, _image_windows(convs))


def _diagonal_bilstm_caches(model, inputs, convs):
  """`models.diagonal_bilstm`: caches the 7x7 conv's input and, per layer, its
  input, the left-to-right hidden and cell states side by side in one map (read
  one row up and one column left, in one window as for the Row LSTM) and the
  right-to-left hidden states (read one row up).

  In the image's own coordinates the left-to-right cell (i, j) follows (i, j - 1)
  and (i - 1, j); the right-to-left cell (i, j) follows (i, j + 1) and (i - 1, j),
  and reaches the layer output one row down. So a pixel step computes the
  left-to-right cell of every layer, and `row_end(i, caches)`, once row `i` is
  drawn, computes the model's zero column right of the image (see
  `models.diagonal_bilstm`) and then each layer's right-to-left states of row `i`
  as one scan along the row.

  Its `pixel_step` runs pixel (i, j) through the recurrent blocks to the sum of
  the skips.
  """
  lstms = [layer for layer in model.layers if isinstance(layer, DiagonalBiLSTM)]
  maps = _layer_inputs(model, inputs, ["input_conv"] + [l.name for l in lstms])
  padded_width = maps[0].shape[2]  # W + 1
  caches = {"input_conv": _pad_for_window(maps[0], convs["input_conv"]["window"])}
  layers = []
  for layer, x in zip(lstms, maps[1:]):
    h, c = (tf.cast(s, tf.float32) for s in layer.directional_states(x))
    caches[layer.name + "/x"] = x  # (B, H, W + 1, 2h)
    caches[layer.name + "/hc"] = _pad_for_window(tf.concat([h[0], c[0]], -1),
                                                 _ABOVE_3)
    caches[layer.name + "/h_rtl"] = _pad_for_window(h[1], _ABOVE_1)
    layers.append((layer.name, layer.units,
                   tf.cast(layer.masked_input_kernel(), tf.float32),  # (2, C_in, 4h)
                   tf.cast(layer.bias, tf.float32),  # (2, 4h)
                   tf.cast(layer.recurrent_kernel, tf.float32)))  # (2, 2h, 4h)

  def pixel_step(i, j, caches):
    x = _first_layer_at(convs, caches, i, j)
    skips = 0.0
    for b, (name, units, input_kernel, bias, recurrent_kernel) in enumerate(layers):
      caches[name + "/x"] = _write_pixel(caches[name + "/x"], i, j, x, (1, 1))
      window = _window(caches[name + "/hc"], i, j, 2, 2)  # rows i-1..i, j-1..j
      above, left = window[:, 0, 1, :units], window[:, 1, 0, :units]
      c_left = window[:, 1, 0, units:]
      pre = (tf.matmul(x, input_kernel[0]) + bias[0] +
             tf.matmul(tf.concat([above, left], -1), recurrent_kernel[0]))
      h, c = recurrent.lstm_update(pre, c_left)  # (B, h) each
      caches[name + "/hc"] = _write_pixel(caches[name + "/hc"], i, j,
                                          tf.concat([h, c], -1), _ABOVE_3)
      right_to_left_above = _read_pixel(caches[name + "/h_rtl"], i, j)  # (i - 1, j)
      x = x + _conv_at(convs[f"layer{b}_out"], h + right_to_left_above)
      skips += _conv_at(convs[f"layer{b}_skip"], x)
    return skips, caches

  def row_end(i, caches):
    _, caches = pixel_step(i, padded_width - 1, caches)
    for name, units, input_kernel, bias, recurrent_kernel in layers:
      row = tf.gather(caches[name + "/x"], i, axis=1)  # (B, W + 1, 2h)
      above = tf.gather(caches[name + "/h_rtl"], i, axis=1)  # row i - 1: (B, W+1, h)
      pre = (tf.einsum("bwc,cn->wbn", row, input_kernel[1]) + bias[1] +
             tf.einsum("bwc,cn->wbn", above, recurrent_kernel[1, :units]))
      along_row = recurrent_kernel[1, units:]  # (h, 4h): reads the cell at j + 1

      def step(state, pre_j, along_row=along_row):
        h_right, c_right = state
        return recurrent.lstm_update(pre_j + tf.matmul(h_right, along_row), c_right)

      zeros = tf.zeros_like(pre[0, :, :units])  # (B, h)
      h_row, _ = tf.scan(step, pre, initializer=(zeros, zeros), reverse=True)
      caches[name + "/h_rtl"] = _write_row(caches[name + "/h_rtl"], i + 1,
                                           tf.transpose(h_row, (1, 0, 2)))
    return caches

  return _CachedNetwork(pixel_step, caches, _image_windows(convs), row_end)


def _gated_pixelcnn_caches(model, inputs, convs):
  """`models.gated_pixelcnn`: caches each layer's vertical and horizontal stack
  inputs and the links from the vertical stack into the horizontal one.

  The vertical stack at row `r` reads columns right of the pixel too, and reaches
  the horizontal stack only at row `r + 1` (through the link), so `row_end(i,
  caches)` computes it for the whole of row `i` once the row is drawn, writing the
  next layer's vertical input and the links of row `i + 1`. Its `pixel_step` runs
  pixel (i, j) through the horizontal stack. A class-conditional network adds each
  image's class vectors to both stacks' pre-activations.
  """
  num_layers = sum(layer.name.endswith("_v_conv") for layer in model.layers)

  def layer(l, part):
    return model.get_layer(f"gated{l}_{part}")

  def class_vectors(part):
    """Per layer, each image's class vector `(B, maps)` of its `part`."""
    return [tf.gather(tf.cast(layer(l, part).embeddings, tf.float32),
                      inputs["labels"]) for l in range(num_layers)]

  # Looked up once here, not in every step.
  if models.is_conditional(model):
    h_class = list(zip(class_vectors("h_class_tanh"),
                       class_vectors("h_class_sigmoid")))
    v_class = [c[:, None] for c in class_vectors("v_class")]  # (B, 1, 2 * maps)
  else:
    h_class, v_class = [(0.0, 0.0)] * num_layers, [0.0] * num_layers
  vertical = [(tf.cast(layer(l, "v_conv").kernel, tf.float32),
               tf.cast(layer(l, "v_conv").bias, tf.float32),
               tf.cast(layer(l, "link").kernel[0, 0], tf.float32),
               tf.cast(layer(l, "link").bias, tf.float32)) for l in range(num_layers)]
  v_windows = [(k.shape[0], k.shape[1]) for k, _, _, _ in vertical]
  h_windows = [convs[f"gated{l}_h_conv_tanh"]["window"] for l in range(num_layers)]
  maps = _maps(model, inputs,
               [layer(l, "v_pad").input for l in range(num_layers)] +
               [layer(l, "h_conv_tanh").input for l in range(1, num_layers)] +
               [layer(l, "link").output for l in range(num_layers)])
  v_maps, h_maps = maps[:num_layers], maps[num_layers:2 * num_layers - 1]
  caches = {"image_v": _pad_for_window(v_maps[0], v_windows[0]),
            "image_h": _pad_for_window(v_maps[0], h_windows[0])}
  for l in range(1, num_layers):
    caches[f"gated{l}/v"] = _pad_for_window(v_maps[l], v_windows[l])
    caches[f"gated{l}/h"] = _pad_for_window(h_maps[l - 1], h_windows[l])
  for l, link in enumerate(maps[2 * num_layers - 1:]):
    # One zero row below: the last row's vertical stack writes links no row reads.
    caches[f"gated{l}/link"] = tf.pad(link, [[0, 0], [0, 1], [0, 0], [0, 0]])

  def pixel_step(i, j, caches):
    x = None
    for l in range(num_layers):
      h_cache = "image_h" if l == 0 else f"gated{l}/h"
      if l:
        caches[h_cache] = _write_pixel(caches[h_cache], i, j, x, h_windows[l])
      link = _read_pixel(caches[f"gated{l}/link"], i, j)  # (B, 2 * maps)
      half = link.shape[-1] // 2
      a = (_conv_at(convs[f"gated{l}_h_conv_tanh"], caches[h_cache], i, j) +
           h_class[l][0])
      b = (_conv_at(convs[f"gated{l}_h_conv_sigmoid"], caches[h_cache], i, j) +
           h_class[l][1])
      y = _conv_at(convs[f"gated{l}_h_out"], tf.tanh(a + link[:, :half]) *
                   tf.sigmoid(b + link[:, half:]))
      x = y if l == 0 else x + y
    return x, caches

  def row_end(i, caches):
    for l, (kernel, bias, link_kernel, link_bias) in enumerate(vertical):
      v_cache = "image_v" if l == 0 else f"gated{l}/v"
      rows = v_windows[l][0]
      slab = tf.slice(caches[v_cache], [0, i, 0, 0], [-1, rows, -1, -1])  # i-rows+1..i
      v = tf.nn.conv2d(slab, kernel, 1, "VALID")[:, 0] + bias + v_class[l]
      if l + 1 < num_layers:  # the next layer's vertical input, row i
        half = v.shape[-1] // 2
        gated = tf.tanh(v[..., :half]) * tf.sigmoid(v[..., half:])  # (B, W, maps)
        rows, kw = v_windows[l + 1]
        gated = tf.pad(gated, [[0, 0], [kw // 2, kw // 2], [0, 0]])
        name = f"gated{l + 1}/v"
        caches[name] = _write_row(caches[name], i + rows - 1, gated)
      link = tf.einsum("bwc,cn->bwn", v, link_kernel) + link_bias
      caches[f"gated{l}/link"] = _write_row(caches[f"gated{l}/link"], i + 1, link)
    return caches

  return _CachedNetwork(pixel_step, caches,
                        {"image_v": v_windows[0], "image_h": h_windows[0]}, row_end)


# Cache windows (see `_pad_for_window`): a Row LSTM layer's input is read on the
# pixel's row at columns j-1..j+1; recurrent states one row up at j-1..j+1 (and,
# for the Diagonal BiLSTM, one column left); its right-to-left states one row up
# at j.
_ROW_WINDOW, _ABOVE_3, _ABOVE_1 = (1, 3), (2, 3), (2, 1)

# Family -> `(model, inputs, convs) -> _CachedNetwork`.
_CACHE_BUILDERS = {"pixelcnn": _pixelcnn_caches,
                   "gated_pixelcnn": _gated_pixelcnn_caches,
                   "row_lstm": _row_lstm_caches,
                   "diagonal_bilstm": _diagonal_bilstm_caches}
# Families with a cached sampler: a multi-scale network uses the Row LSTM's twice.
CACHED_FAMILIES = (*_CACHE_BUILDERS, "multiscale")


def _layer_inputs(model, inputs, names):
  """The float32 input maps `(B, H, W, C)` of the named layers of `model`."""
  return _maps(model, inputs, [model.get_layer(n).input for n in names])


def _maps(model, inputs, tensors):
  """The values of `model`'s symbolic `tensors` for `inputs` (what `model` takes:
  `models.network_inputs`), as float32."""
  maps = keras.Model(model.input, tensors)(inputs, training=False)
  return [tf.cast(x, tf.float32) for x in tf.nest.flatten(maps)]


def _ancestral_loop(images, start, num_levels, seed, logits_at, state,
                    on_drawn=None, on_row_drawn=None, order=None,
                    seed_positions=None, keep=None):
  """Draws the sub-pixels at flat raster/RGB index `>= start` into `images`.

  They are drawn in generation `order` (flat indices, `models.generation_order`;
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


def _pixel_weights(kernel, bias, activation=None):
  """A causal convolution as one matmul at a pixel: the kernel rows above and at
  the pixel (`window` = (kh//2 + 1, kw)) flattened to `(rows*kw*C_in, filters)`."""
  kernel = tf.cast(kernel, tf.float32)
  kh, kw, c_in, filters = kernel.shape
  rows = kh // 2 + 1
  return {"matrix": tf.reshape(kernel[:rows], (rows * kw * c_in, filters)),
          "bias": tf.cast(bias, tf.float32), "activation": activation or tf.identity,
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


def _window(cache, row, column, rows, columns):
  """`cache[:, row:row + rows, column:column + columns]` of `(B, H, W, C)`.

  Its size is given in full (no -1), so XLA compiles it as a dynamic slice of that
  size; with a -1 size it pads the whole cache to twice its size on every call.
  """
  size = tf.concat([tf.shape(cache)[:1], [rows, columns], tf.shape(cache)[3:]], 0)
  return tf.slice(cache, [0, row, column, 0], size)


def _read_pixel(cache, row, column):
  """`cache[:, row, column]`, `(B, C)`, at padded coordinates."""
  return _window(cache, row, column, 1, 1)[:, 0, 0]


def _write_row(cache, row, values):
  """`cache` with `values` `(B, W, C)` as its padded row `row`."""
  batch = tf.shape(values)[0]
  index = tf.stack([tf.range(batch), tf.fill([batch], row)], axis=1)
  return tf.tensor_scatter_nd_update(cache, index, values)


def _conv_at(weights, inputs, i=None, j=None):
  """The layer's output `(B, filters)` at pixel (i, j) of a padded input cache, or,
  for a 1x1 layer, of the pixel's input vector `inputs` `(B, C_in)`."""
  if i is not None:
    rows, kw = weights["window"]
    window = _window(inputs, i, j, rows, kw)
    inputs = tf.reshape(window, [tf.shape(window)[0], -1])
  return weights["activation"](tf.matmul(inputs, weights["matrix"]) +
                               weights["bias"])


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
  tiles = tf.transpose(tiles, (0, 2, 1, 3, 4))  # (rows, H, columns, W, C)
  return tf.reshape(tiles, (rows * h, columns * w, c))
