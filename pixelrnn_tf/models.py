"""Model families as `images -> logits` Keras networks, and their typed config.

Every network takes uint8 images `(B, H, W, C)` and returns logits
`(B, H, W, C, K)` (see `pixelrnn_tf.distributions`); a new family is only a new
builder `(scaled images, config) -> logits` registered in `MODELS` (`multiscale`
also takes the uint8 images). A class-conditional network (`num_classes > 0`,
families in `CONDITIONAL_FAMILIES`) takes `{"images": ..., "labels": int32 (B,)}`
instead (`network_inputs`).
"""

import dataclasses
import json

import keras
import numpy as np

from pixelrnn_tf import distributions
from pixelrnn_tf.layers import DiagonalBiLSTM
from pixelrnn_tf.layers import MaskedConv2D
from pixelrnn_tf.layers import PlaceSubsampled
from pixelrnn_tf.layers import RowLSTM
from pixelrnn_tf.layers import ShiftDown
from pixelrnn_tf.layers import SliceAxis
from pixelrnn_tf.layers import Subsample
from pixelrnn_tf.layers import scales


# Sizes of a `ModelConfig` field left at None. The PixelCNN's: 16 residual blocks
# of h=32 with 3x11 masked convs (616k parameters, about `tfd.PixelCNN`'s 625k).
# The paper gives no binarized-MNIST PixelCNN size, and its 3x3 blocks
# (`kernel_width=3`) leave a blind spot that held every 3x3 network here near 85
# nats; this one reaches 81.60 in 24 minutes of bfloat16 training on 2 cores of
# an AMX CPU, where `tfd.PixelCNN` reaches 82.5-82.8 in 30 (README, Results).
_SIZES = dict(num_layers=12, hidden_dims=16, output_dims=32, kernel_width=3)
_FAMILY_SIZES = {
    "pixelcnn": dict(num_layers=16, hidden_dims=32, output_dims=64, kernel_width=11),
}


def default_sizes(family):
  """The size fields (`num_layers`, `hidden_dims`, ...) that `family` defaults to."""
  return {**_SIZES, **_FAMILY_SIZES.get(family, {})}


@dataclasses.dataclass
class ModelConfig:
  """Everything needed to rebuild a network; saved as JSON in `model_dir`.

  Attributes:
    model: a key of `MODELS`.
    image_shape: `(H, W, C)`, C in {1, 3}.
    num_levels: values per sub-pixel: 2 (binary, Bernoulli) or 256 (Categorical).
    num_layers: residual blocks (PixelCNN) or recurrent layers (PixelRNNs).
    hidden_dims: `h` of the paper: residual streams have `2h` maps.
    output_dims: maps of the two 1x1 output layers before the logits.
      These three and `kernel_width`, where not given (None), take the family's
      `default_sizes`.
    num_classes: 0 (unconditional), or the number of class labels that condition
      every layer (families in `CONDITIONAL_FAMILIES`).
    class_names: the classes' names in label order (empty, or `num_classes` of
      them).
    dropout: rate of the dropout on every residual branch in training (0: none);
      see `residual_dropout`.
    kernel_width: PixelCNN only: its residual blocks' masked conv is
      `3 x kernel_width` (odd; the paper's 3x3 is 3, the default 11). Wider
      kernels shrink the blind spot: a block reaches `kernel_width // 2` columns
      right in the row above instead of 1.
  """
  model: str = "pixelcnn"
  image_shape: tuple = (28, 28, 1)
  num_levels: int = 2
  num_layers: int | None = None
  hidden_dims: int | None = None
  output_dims: int | None = None
  num_classes: int = 0
  dropout: float = 0.0
  kernel_width: int | None = None
  class_names: tuple = ()

  def __post_init__(self):
    self.image_shape = tuple(int(d) for d in self.image_shape)
    self.class_names = tuple(str(n) for n in self.class_names)
    if self.model not in MODELS:
      raise ValueError(
          f"Invalid `model`. Expected one of {sorted(MODELS)}. "
          f"Received: model={self.model!r}")
    for name, value in default_sizes(self.model).items():
      if getattr(self, name) is None:
        setattr(self, name, value)
    if len(self.image_shape) != 3 or self.image_shape[-1] not in (1, 3):
      raise ValueError(
          "Invalid `image_shape`. Expected (H, W, C) with C = 1 or 3. "
          f"Received: image_shape={self.image_shape}")
    for name in ("num_layers", "hidden_dims", "output_dims"):
      if getattr(self, name) < 1:
        raise ValueError(f"Invalid `{name}`. Expected >= 1. "
                         f"Received: {name}={getattr(self, name)}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError("Invalid `dropout`. Expected a rate in [0, 1). "
                       f"Received: dropout={self.dropout}")
    if self.kernel_width < 1 or self.kernel_width % 2 == 0:
      raise ValueError("Invalid `kernel_width`. Expected an odd width >= 1. "
                       f"Received: kernel_width={self.kernel_width}")
    if self.kernel_width != 3 and self.model != "pixelcnn":
      raise ValueError(
          "`kernel_width` sets the PixelCNN's residual-block kernel; "
          f"model={self.model!r} has no such kernel. Drop --kernel_width.")
    if self.num_classes < 0:
      raise ValueError("Invalid `num_classes`. Expected >= 0 (0: unconditional). "
                       f"Received: num_classes={self.num_classes}")
    if self.class_names and len(self.class_names) != self.num_classes:
      raise ValueError(
          f"Invalid `class_names`. Expected none or num_classes={self.num_classes} "
          f"names. Received: {len(self.class_names)} names")
    if self.num_classes and self.model not in CONDITIONAL_FAMILIES:
      raise ValueError(
          f"Class conditioning is implemented for {list(CONDITIONAL_FAMILIES)} (as "
          "in van den Oord et al. 2016b), not for "
          f"model={self.model!r}. Use --model=gated_pixelcnn, or drop --conditional.")
    if self.model == "multiscale" and any(
        d % MULTISCALE_FACTOR for d in self.image_shape[:2]):
      raise ValueError(
          f"Invalid `image_shape` for model='multiscale'. Expected H and W divisible "
          f"by {MULTISCALE_FACTOR} (the small image is x[::{MULTISCALE_FACTOR}, "
          f"::{MULTISCALE_FACTOR}]). Received: image_shape={self.image_shape}")
    if self.num_levels < 2 or self.num_levels > 256:
      raise ValueError("Invalid `num_levels`. Expected 2..256. "
                       f"Received: num_levels={self.num_levels}")

  @property
  def num_channels(self):
    return self.image_shape[-1]

  def to_json(self):
    return json.dumps(dataclasses.asdict(self), indent=2)

  @classmethod
  def from_json(cls, text):
    return cls(**json.loads(text))


def build(config, name=None):
  """Returns the `keras.Model` for `config`: uint8 `(B,H,W,C)` -> `(B,H,W,C,K)`.

  With `config.num_classes`, its input is `{"images": uint8 (B,H,W,C), "labels":
  int32 (B,)}` (see `network_inputs`). The model is named `name`, by default
  `config.model` (the samplers pick a family's cached sampler by this name).
  """
  name = name or config.model
  images = keras.Input(config.image_shape, dtype="uint8", name="images")
  x = scale_images(images, config.num_levels)
  if config.model == "multiscale":  # its small network reads the uint8 images
    return keras.Model(images, multiscale(x, config, images), name=name)
  if not config.num_classes:
    return keras.Model(images, MODELS[config.model](x, config), name=name)
  labels = keras.Input((), dtype="int32", name="labels")
  logits = MODELS[config.model](x, config, labels=labels)
  return keras.Model({"images": images, "labels": labels}, logits, name=name)


def is_conditional(model):
  """Whether the network `model` (from `build`) takes class labels."""
  return isinstance(model.input, dict)


def network_inputs(model, images, labels=None):
  """What `model` takes: `images`, or `{"images", "labels"}` if it is conditional.

  Raises:
    ValueError: labels missing for a conditional model, or given to another one.
  """
  if not is_conditional(model):
    if labels is not None:
      raise ValueError(f"Model {model.name!r} is unconditional; it takes no labels.")
    return images
  if labels is None:
    raise ValueError(f"Model {model.name!r} is class-conditional: pass `labels`, "
                     "int32 (B,), one class per image.")
  # Keras takes a dict of tensors only, never tensors mixed with arrays.
  return {"images": keras.ops.convert_to_tensor(images),
          "labels": keras.ops.convert_to_tensor(labels, "int32")}


def scale_images(images, num_levels):
  """Maps integer levels `0..num_levels-1` to floats in [-1, 1]."""
  return keras.layers.Rescaling(2.0 / (num_levels - 1), offset=-1.0,
                                name="scale")(images)


def first_layer(x, config):
  """The paper's 7x7 mask-A convolution to `2h` maps: it never sees x[i, j, c]."""
  return MaskedConv2D(2 * config.hidden_dims, 7, mask_type="A",
                      num_groups=config.num_channels, name="input_conv")(x)


def output_layers(x, config):
  """ReLU, 1x1 mask-B conv, ReLU, 1x1 mask-B conv to logits `(B, H, W, C, K)`."""
  groups = config.num_channels
  k = distributions.num_logits(config.num_levels)
  x = keras.layers.ReLU()(x)
  x = MaskedConv2D(config.output_dims, 1, num_groups=groups, activation="relu",
                   name="output_conv_1")(x)
  # The logits are float32 under a mixed-precision policy too (the head needs them).
  x = MaskedConv2D(groups * k, 1, num_groups=groups, dtype="float32",
                   name="output_conv_2")(x)
  # (B, H, W, C*K) -> (B, H, W, C, K): channel c*K + k is in colour group c.
  return keras.layers.Reshape(config.image_shape + (k,), dtype="float32",
                              name="logits")(x)


def residual_dropout(y, config, name):
  """Dropout at `config.dropout` on a residual branch's hidden maps (training only).

  It acts on each feature of each pixel on its own, so it keeps every mask's
  causality; at inference it is the identity (the cached samplers skip it).
  """
  if not config.dropout:
    return y
  return keras.layers.Dropout(config.dropout, name=name)(y)


def pixelcnn(x, config):
  """PixelCNN (paper Section 3.4, Figure 5): 7x7 mask A, residual blocks, output.

  Each block: ReLU, 1x1 conv 2h->h, ReLU, 3 x `config.kernel_width` (paper: 3x3;
  default 3x11) mask-B conv h->h, ReLU, dropout
  (`residual_dropout`), 1x1 conv h->2h, added to the block input. All
  convolutions are masked (type B) so that the colour groups stay causal.
  """
  groups = config.num_channels
  h = config.hidden_dims
  x = first_layer(x, config)  # (B, H, W, 2h)
  for i in range(config.num_layers):
    y = keras.layers.ReLU()(x)
    y = MaskedConv2D(h, 1, num_groups=groups, activation="relu",
                     name=f"block{i}_in")(y)
    y = MaskedConv2D(h, (3, config.kernel_width), num_groups=groups,
                     activation="relu", name=f"block{i}_conv")(y)
    y = residual_dropout(y, config, f"block{i}_dropout")
    y = MaskedConv2D(2 * h, 1, num_groups=groups, name=f"block{i}_out")(y)
    x = keras.layers.Add(name=f"block{i}_residual")([x, y])  # (B, H, W, 2h)
  return output_layers(x, config)


def gated_pixelcnn(x, config, labels=None):
  """Gated PixelCNN (van den Oord et al., "Conditional Image Generation with
  PixelCNN Decoders", NeurIPS 2016): a vertical and a horizontal stack, no blind spot.

  The vertical stack convolves the rows above and the current row (`(k//2+1) x k`
  kernels) and reaches the horizontal stack only shifted down one row, so it carries
  strictly earlier rows, all of them within its reach. The horizontal stack runs
  `1 x k` masked convolutions along the current row (mask A in the first layer, B
  after, colour groups kept). Every layer gates both stacks with `tanh(a) *
  sigmoid(b)`; the horizontal pre-activations also get a 1x1 of the shifted vertical
  ones, and the gated horizontal maps go through a 1x1 mask-B conv, added to the
  layer input after the first layer. A 7-wide first layer, then `config.num_layers`
  3-wide layers, `2h` maps per stack; the horizontal stack feeds `output_layers`.

  With `labels` (int32 `(B,)`), every layer adds a learned vector per class to the
  pre-activations of both stacks (the paper's `V^T h` for a one-hot `h`, Eq. 4).
  """
  groups = config.num_channels
  maps = 2 * config.hidden_dims
  vertical, horizontal = x, x
  for i in range(config.num_layers + 1):
    first = i == 0
    k = 7 if first else 3
    name = f"gated{i}"
    # Vertical: output row r reads input rows r - k//2 .. r, columns +-k//2.
    v = keras.layers.ZeroPadding2D(((k // 2, 0), (k // 2, k // 2)),
                                   name=f"{name}_v_pad")(vertical)
    v = keras.layers.Conv2D(2 * maps, (k // 2 + 1, k), name=f"{name}_v_conv")(v)
    if labels is not None:
      v = keras.layers.Add(name=f"{name}_v_conditioned")(
          [v, _class_bias(labels, config.num_classes, 2 * maps, f"{name}_v_class")])
    # Shifted down one row: row r of the horizontal stack sees vertical rows < r.
    link = ShiftDown(name=f"{name}_shift")(v)
    link = keras.layers.Conv2D(2 * maps, 1, name=f"{name}_link")(link)
    # Halves by `split` (gradient: a concat), not strided slices (`v[..., :maps]`):
    # see `pixelrnn_tf.layers.shift`.
    vertical = _gate(*keras.ops.split(v, 2, axis=-1), f"{name}_v_gate")
    # Horizontal: the tanh half and the sigmoid half, each a masked 1 x k conv plus
    # its half of the link (two convs keep colour group g on channels m of both).
    halves = []
    for half, link_half in zip(("tanh", "sigmoid"), keras.ops.split(link, 2, axis=-1)):
      conv = MaskedConv2D(maps, (1, k), mask_type="A" if first else "B",
                          num_groups=groups, name=f"{name}_h_conv_{half}")
      pre = [conv(horizontal), link_half]
      if labels is not None:
        pre.append(_class_bias(labels, config.num_classes, maps,
                               f"{name}_h_class_{half}"))
      halves.append(keras.layers.Add(name=f"{name}_h_{half}")(pre))
    gated = residual_dropout(_gate(*halves, f"{name}_h_gate"), config,
                             f"{name}_h_dropout")
    y = MaskedConv2D(maps, 1, num_groups=groups, name=f"{name}_h_out")(gated)
    horizontal = y if first else keras.layers.Add(name=f"{name}_residual")(
        [horizontal, y])  # (B, H, W, 2h)
  return output_layers(horizontal, config)


def _class_bias(labels, num_classes, maps, name):
  """A learned vector per class, `(B, 1, 1, maps)`, to add to `(B, H, W, maps)`."""
  bias = keras.layers.Embedding(num_classes, maps, name=name)(labels)
  return keras.layers.Reshape((1, 1, maps), name=f"{name}_map")(bias)


def _gate(a, b, name):
  """`tanh(a) * sigmoid(b)` elementwise: channel m of `a` gates channel m of `b`."""
  return keras.layers.Multiply(name=name)([keras.layers.Activation("tanh")(a),
                                           keras.layers.Activation("sigmoid")(b)])


def recurrent_stack(x, config, make_layer, pad_right=0, conditioning=None):
  """PixelRNN body (paper Section 3.3 and Figure 5) around recurrent layers.

  7x7 mask-A conv to `2h` maps, then `config.num_layers` blocks: a recurrent layer
  `2h -> h` and a 1x1 mask-B conv `h -> 2h` added to the block input (residual).
  Each block's output also feeds a learnable skip connection (a 1x1 mask-B conv
  `2h -> 2h`); the skips are summed into `output_layers`.

  Args:
    x: scaled images `(B, H, W, C)`.
    config: `ModelConfig`.
    make_layer: `fn(units, num_groups, name) -> layer`, `(B,H,W,2h) -> (B,H,W,h)`.
    pad_right: zero columns added right of the image before the first layer and
      cropped before the output layers (see `diagonal_bilstm`).
    conditioning: None, or maps `(B, H, W, c)` that every recurrent layer reads
      at each pixel: a learned 1x1 convolution of them (unmasked: they must hold
      only what precedes every pixel) is added to the layer's input.
  """
  groups = config.num_channels
  h = config.hidden_dims
  if pad_right:
    x = keras.layers.ZeroPadding2D(((0, 0), (0, pad_right)), name="pad_right")(x)
  x = first_layer(x, config)  # (B, H, W + pad_right, 2h)
  skips = []
  for i in range(config.num_layers):
    y = x
    if conditioning is not None:
      bias = keras.layers.Conv2D(2 * h, 1, name=f"layer{i}_bias")(conditioning)
      y = keras.layers.Add(name=f"layer{i}_biased")([x, bias])
    y = make_layer(h, groups, f"layer{i}_lstm")(y)  # (B, H, W, h)
    y = residual_dropout(y, config, f"layer{i}_dropout")
    y = MaskedConv2D(2 * h, 1, num_groups=groups, name=f"layer{i}_out")(y)
    x = keras.layers.Add(name=f"layer{i}_residual")([x, y])  # (B, H, W, 2h)
    skips.append(MaskedConv2D(2 * h, 1, num_groups=groups,
                              name=f"layer{i}_skip")(x))
  if len(skips) > 1:
    x = keras.layers.Add(name="skips")(skips)  # (B, H, W, 2h)
  else:
    x = skips[0]
  if pad_right:
    x = SliceAxis(2, 0, x.shape[2] - pad_right, name="crop_right")(x)
  return output_layers(x, config)  # (B, H, W, C, K)


def row_lstm(x, config):
  """PixelRNN with Row LSTM layers (paper Section 3.1): a triangular context."""
  return recurrent_stack(x, config, _row_lstm_layer)


def _row_lstm_layer(units, groups, name):
  return RowLSTM(units, num_groups=groups, name=name)


def diagonal_bilstm(x, config):
  """PixelRNN with Diagonal BiLSTM layers (paper Section 3.2): the full context.

  The image gets one zero column on the right (cropped before the output layers).
  Without it the last pixel of row `i - 1` would be lost to row `i`: the 7x7 mask-A
  conv puts `x[i-1, W-1]` on row `i - 1` only at columns >= W, outside the map, and
  row `i` reads its own row only leftwards. The extra column holds it, and the
  shifted right-to-left pass carries it to every pixel of row `i`. Its outputs
  depend on whole rows, so they are never used as logits.
  """
  return recurrent_stack(x, config, lambda units, groups, name: DiagonalBiLSTM(
      units, num_groups=groups, name=name), pad_right=1)


MULTISCALE_FACTOR = 2  # the small image is x[::2, ::2]


def multiscale(x, config, images):
  """Multi-scale PixelRNN (paper Section 3.5) with Row LSTM networks.

  `x` is the scaled image, `images` the uint8 one. The small image `s = x[::2,
  ::2]` is generated first by an unconditional Row LSTM network on `s` (the nested
  model `small`: `build` of a `row_lstm` config of `s`'s shape and `config`'s
  sizes, on the uint8 small image); then the remaining
  sub-pixels, in raster/RGB order, by a conditional Row LSTM network on the full
  image whose every layer is biased by an upsampling network of `s` (a 3x3 conv, a
  stride-2 transposed conv and a 3x3 conv to `2h` maps, `upsampling_network`). The
  logits at the small image's pixels are the small network's, elsewhere the
  conditional network's, so `p(x) = p(s) * prod p(x_ijc | s, earlier sub-pixels)`
  exactly and the head and loss are those of every family. The generation order is
  `generation_order("multiscale", image_shape)`.
  """
  small = Subsample(MULTISCALE_FACTOR, name="subsample")(x)  # (B, H/2, W/2, C)
  small_images = Subsample(MULTISCALE_FACTOR, name="subsample_images")(images)
  small_network = build(dataclasses.replace(config, model="row_lstm",
                                            image_shape=small.shape[1:]),
                        name="small")
  conditional = recurrent_stack(
      x, config, _row_lstm_layer,
      conditioning=upsampling_network(small, config))  # (B, H, W, C, K)
  return PlaceSubsampled(MULTISCALE_FACTOR, dtype="float32", name="place_small")(
      [small_network(small_images), conditional])


def upsampling_network(small, config):
  """Maps `(B, H/2, W/2, C)` (scaled small image) to `(B, H, W, 2h)` features.

  Unmasked: every output reads the whole small image, which precedes every
  sub-pixel that the conditional network models.
  """
  maps = 2 * config.hidden_dims
  y = keras.layers.Conv2D(maps, 3, padding="same", activation="relu",
                          name="upsample_in")(small)
  y = keras.layers.Conv2DTranspose(maps, 3, strides=MULTISCALE_FACTOR,
                                   padding="same", activation="relu",
                                   name="upsample_deconv")(y)
  return keras.layers.Conv2D(maps, 3, padding="same", activation="relu",
                             name="upsample_out")(y)


def generation_order(family, image_shape):
  """The order in which `family` generates the sub-pixels of an image.

  Returns:
    int `(H*W*C,)`: flat raster/RGB indices (`(i * W + j) * C + c`) in generation
    order. Raster/RGB order itself for every family but `multiscale`, whose order
    is the small image's sub-pixels (raster/RGB over `x[::2, ::2]`) first, then the
    others in raster/RGB order.
  """
  height, width, channels = image_shape
  flat = np.arange(height * width * channels).reshape(height, width, channels)
  if family != "multiscale":
    return flat.reshape(-1)
  on_grid = scales.subsampled_positions(height, width, MULTISCALE_FACTOR)
  return np.concatenate([flat[on_grid].reshape(-1), flat[~on_grid].reshape(-1)])


MODELS = {
    "pixelcnn": pixelcnn,
    "gated_pixelcnn": gated_pixelcnn,
    "row_lstm": row_lstm,
    "diagonal_bilstm": diagonal_bilstm,
    "multiscale": multiscale,
}
CONDITIONAL_FAMILIES = ("gated_pixelcnn",)


# The paper's configurations (Section 5 and Table 1): `ModelConfig` kwargs by name,
# e.g. `ModelConfig(**PRESETS["row_lstm_mnist_7x16"])`. Output layers: 32 maps for
# binarized MNIST, 1024 for CIFAR-10.
_PAPER_SETUPS = {
    "mnist_7x16": dict(image_shape=(28, 28, 1), num_levels=2, num_layers=7,
                       hidden_dims=16, output_dims=32),
    "mnist_1x32": dict(image_shape=(28, 28, 1), num_levels=2, num_layers=1,
                       hidden_dims=32, output_dims=32),
    "cifar10_12x128": dict(image_shape=(32, 32, 3), num_levels=256, num_layers=12,
                           hidden_dims=128, output_dims=1024),
}
PRESETS = {f"{model}_{setup}": dict(model=model, **kwargs)
           for model in ("row_lstm", "diagonal_bilstm")
           for setup, kwargs in _PAPER_SETUPS.items()}
