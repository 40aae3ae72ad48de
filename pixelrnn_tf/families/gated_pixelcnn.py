"""Gated PixelCNN (van den Oord et al., "Conditional Image Generation with PixelCNN
Decoders", NeurIPS 2016): a vertical and a horizontal stack, no blind spot, and
optional class conditioning."""

import dataclasses

import keras
import tensorflow as tf

from pixelrnn_tf.families import base
from pixelrnn_tf.families import common
from pixelrnn_tf.layers import MaskedConv2D
from pixelrnn_tf.layers import ShiftDown
from pixelrnn_tf.layers import caches as caching


def _gate(a, b, name):
  """`tanh(a) * sigmoid(b)` elementwise: channel m of `a` gates channel m of `b`."""
  return keras.layers.Multiply(name=name)([keras.layers.Activation("tanh")(a),
                                           keras.layers.Activation("sigmoid")(b)])


def _class_bias(labels, num_classes, maps, name):
  """A learned vector per class: `(embedding layer, (B, 1, 1, maps) map)`."""
  embedding = keras.layers.Embedding(num_classes, maps, name=name)
  bias = keras.layers.Reshape((1, 1, maps), name=f"{name}_map")(embedding(labels))
  return embedding, bias


@dataclasses.dataclass(frozen=True)
class GatedLayer:
  """One layer of both stacks: its layers, and the symbolic maps a sampler caches.

  `v_conv` (a `(k//2+1) x k` conv of the zero-padded vertical input) and `link` (a
  1x1 conv of the vertical pre-activations shifted down one row) feed the
  horizontal stack's `h_tanh` and `h_sigmoid` masked `1 x k` convs; `h_out` is the
  1x1 mask-B conv after the gate. The class embeddings are None without labels.
  """
  v_conv: keras.layers.Conv2D
  link: keras.layers.Conv2D
  h_tanh: MaskedConv2D
  h_sigmoid: MaskedConv2D
  h_out: MaskedConv2D
  v_class: keras.layers.Embedding | None
  h_class: tuple | None
  vertical_input: keras.KerasTensor
  horizontal_input: keras.KerasTensor
  link_output: keras.KerasTensor


def network(x, config, images, labels):
  """The Gated PixelCNN of `config` on scaled images `x`: `(logits, [GatedLayer])`.

  The vertical stack convolves the rows above and the current row (`(k//2+1) x k`
  kernels) and reaches the horizontal stack only shifted down one row, so it carries
  strictly earlier rows, all of them within its reach. The horizontal stack runs
  `1 x k` masked convolutions along the current row (mask A in the first layer, B
  after, colour groups kept). Every layer gates both stacks with `tanh(a) *
  sigmoid(b)`; the horizontal pre-activations also get a 1x1 of the shifted vertical
  ones, and the gated horizontal maps go through a 1x1 mask-B conv, added to the
  layer input after the first layer. A 7-wide first layer, then `config.num_layers`
  3-wide layers, `2h` maps per stack; the horizontal stack feeds the output layers.

  With `labels` (int32 `(B,)`), every layer adds a learned vector per class to the
  pre-activations of both stacks (the paper's `V^T h` for a one-hot `h`, Eq. 4).
  """
  del images
  groups = config.num_channels
  maps = 2 * config.hidden_dims
  vertical, horizontal = x, x
  layers = []
  for i in range(config.num_layers + 1):
    first = i == 0
    k = 7 if first else 3
    name = f"gated{i}"
    vertical_input, horizontal_input = vertical, horizontal
    # Vertical: output row r reads input rows r - k//2 .. r, columns +-k//2.
    v = keras.layers.ZeroPadding2D(((k // 2, 0), (k // 2, k // 2)),
                                   name=f"{name}_v_pad")(vertical)
    v_conv = keras.layers.Conv2D(2 * maps, (k // 2 + 1, k), name=f"{name}_v_conv")
    v = v_conv(v)
    v_class = h_class = None
    if labels is not None:
      v_class, bias = _class_bias(labels, config.num_classes, 2 * maps,
                                  f"{name}_v_class")
      v = keras.layers.Add(name=f"{name}_v_conditioned")([v, bias])
    # Shifted down one row: row r of the horizontal stack sees vertical rows < r.
    link = keras.layers.Conv2D(2 * maps, 1, name=f"{name}_link")
    link_output = link(ShiftDown(name=f"{name}_shift")(v))
    # Halves by `split` (gradient: a concat), not strided slices (`v[..., :maps]`):
    # see `pixelrnn_tf.layers.shift`.
    vertical = _gate(*keras.ops.split(v, 2, axis=-1), f"{name}_v_gate")
    # Horizontal: the tanh half and the sigmoid half, each a masked 1 x k conv plus
    # its half of the link (two convs keep colour group g on channels m of both).
    halves, convs, class_embeddings = [], [], []
    for half, link_half in zip(("tanh", "sigmoid"),
                               keras.ops.split(link_output, 2, axis=-1)):
      conv = MaskedConv2D(maps, (1, k), mask_type="A" if first else "B",
                          num_groups=groups, name=f"{name}_h_conv_{half}")
      pre = [conv(horizontal), link_half]
      if labels is not None:
        embedding, bias = _class_bias(labels, config.num_classes, maps,
                                      f"{name}_h_class_{half}")
        class_embeddings.append(embedding)
        pre.append(bias)
      convs.append(conv)
      halves.append(keras.layers.Add(name=f"{name}_h_{half}")(pre))
    if labels is not None:
      h_class = tuple(class_embeddings)
    gated = common.residual_dropout(_gate(*halves, f"{name}_h_gate"), config,
                                    f"{name}_h_dropout")
    h_out = MaskedConv2D(maps, 1, num_groups=groups, name=f"{name}_h_out")
    y = h_out(gated)
    horizontal = y if first else keras.layers.Add(name=f"{name}_residual")(
        [horizontal, y])  # (B, H, W, 2h)
    layers.append(GatedLayer(v_conv, link, *convs, h_out, v_class, h_class,
                             vertical_input, horizontal_input, link_output))
  logits, output = common.output_layers(horizontal, config)
  return logits, (layers, output)


def cached_network(model, parts, inputs, start_row):
  """Caches each layer's vertical and horizontal stack inputs and the links from
  the vertical stack into the horizontal one.

  The vertical stack at row `r` reads columns right of the pixel too, and reaches
  the horizontal stack only at row `r + 1` (through the link), so `row_end(i,
  caches)` computes it for the whole of row `i` once the row is drawn, writing the
  next layer's vertical input and the links of row `i + 1`. A pixel step runs pixel
  (i, j) through the horizontal stack. A class-conditional network adds each
  image's class vectors to both stacks' pre-activations.
  """
  layers, output = parts
  num_layers = len(layers)
  labels = inputs["labels"] if base.is_conditional(model) else None

  def class_vector(embedding):
    """Each image's class vector `(B, maps)` (0 without labels)."""
    if embedding is None:
      return 0.0
    return tf.gather(tf.cast(embedding.embeddings, tf.float32), labels)

  h_class = [(class_vector(l.h_class and l.h_class[0]),
              class_vector(l.h_class and l.h_class[1])) for l in layers]
  v_class = [class_vector(l.v_class) for l in layers]
  v_windows = [tuple(l.v_conv.kernel_size) for l in layers]
  maps = base.maps_of(model, inputs,
                      [l.vertical_input for l in layers] +
                      [l.horizontal_input for l in layers[1:]] +
                      [l.link_output for l in layers])
  v_maps = maps[:num_layers]
  h_maps = maps[num_layers:2 * num_layers - 1]
  links = maps[2 * num_layers - 1:]
  caches = {
      # The image, as the first layer's two stacks read it.
      "v": [caching.pad_for_window(m, w) for m, w in zip(v_maps, v_windows)],
      "h": [layers[0].h_tanh.start_cache(v_maps[0], start_row)] + [
          l.h_tanh.start_cache(m, start_row) for l, m in zip(layers[1:], h_maps)],
      # One zero row below: the last row's vertical stack writes links no row reads.
      "link": [tf.pad(m, [[0, 0], [0, 1], [0, 0], [0, 0]]) for m in links],
  }
  steps = [(l.h_tanh.pixel_fn(), l.h_sigmoid.pixel_fn(), l.h_out.vector_fn())
           for l in layers]

  def pixel_step(i, j, caches):
    caches = {name: list(c) for name, c in caches.items()}
    x = None
    for l, (tanh_at, sigmoid_at, h_out) in enumerate(steps):
      if l:
        caches["h"][l] = layers[l].h_tanh.write(caches["h"][l], j, x)
      link = caching.read_pixel(caches["link"][l], i, j)  # (B, 2 * maps)
      half = link.shape[-1] // 2
      a = tanh_at(caches["h"][l], j) + h_class[l][0] + link[:, :half]
      b = sigmoid_at(caches["h"][l], j) + h_class[l][1] + link[:, half:]
      y = h_out(tf.tanh(a) * tf.sigmoid(b))
      x = y if l == 0 else x + y
    return x, caches

  def row_end(i, caches):
    caches = {name: list(c) for name, c in caches.items()}
    for l, layer in enumerate(layers):
      rows = v_windows[l][0]
      slab = tf.slice(caches["v"][l], [0, i, 0, 0], [-1, rows, -1, -1])  # i-rows+1..i
      v = layer.v_conv(slab)[:, 0]  # (B, W, 2 * maps)
      if labels is not None:
        v += v_class[l][:, None]
      if l + 1 < num_layers:  # the next layer's vertical input, row i
        half = v.shape[-1] // 2
        gated = tf.tanh(v[..., :half]) * tf.sigmoid(v[..., half:])  # (B, W, maps)
        next_rows, kw = v_windows[l + 1]
        gated = tf.pad(gated, [[0, 0], [kw // 2, kw // 2], [0, 0]])
        caches["v"][l + 1] = caching.write_row(caches["v"][l + 1],
                                               i + next_rows - 1, gated)
      link = layer.link(v[:, None])[:, 0]  # (B, W, 2 * maps)
      caches["link"][l] = caching.write_row(caches["link"][l], i + 1, link)
    caches["h"] = [l.h_tanh.next_row(c) for l, c in zip(layers, caches["h"])]
    return caches

  def write_pixel(caches, i, j, pixel):
    caches = {name: list(c) for name, c in caches.items()}
    caches["v"][0] = caching.write_pixel(caches["v"][0], i, j, pixel, v_windows[0])
    caches["h"][0] = layers[0].h_tanh.write(caches["h"][0], j, pixel)
    return caches

  return base.CachedNetwork(pixel_step, caches, write_pixel, output.vector_fn(),
                            row_end)


FAMILY = base.Family(
    name="gated_pixelcnn", network=network, cached_network=cached_network,
    default_sizes=common.DEFAULT_SIZES,
    takes_labels=True, check_config=common.check_kernel_width)
