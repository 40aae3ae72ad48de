"""Model families as `images -> logits` Keras networks, and their typed config.

Every network takes uint8 images `(B, H, W, C)` and returns logits
`(B, H, W, C, K)` (see `pixelrnn_tf.distributions`); a new family is only a new
builder registered in `MODELS`.
"""

import dataclasses
import json

import keras

from pixelrnn_tf import distributions
from pixelrnn_tf.layers import MaskedConv2D


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
  """
  model: str = "pixelcnn"
  image_shape: tuple = (28, 28, 1)
  num_levels: int = 2
  num_layers: int = 12
  hidden_dims: int = 16
  output_dims: int = 32

  def __post_init__(self):
    self.image_shape = tuple(int(d) for d in self.image_shape)
    if self.model not in MODELS:
      raise ValueError(
          f"Invalid `model`. Expected one of {sorted(MODELS)}. "
          f"Received: model={self.model!r}")
    if len(self.image_shape) != 3 or self.image_shape[-1] not in (1, 3):
      raise ValueError(
          "Invalid `image_shape`. Expected (H, W, C) with C = 1 or 3. "
          f"Received: image_shape={self.image_shape}")
    for name in ("num_layers", "hidden_dims", "output_dims"):
      if getattr(self, name) < 1:
        raise ValueError(f"Invalid `{name}`. Expected >= 1. "
                         f"Received: {name}={getattr(self, name)}")
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


def build(config):
  """Returns the `keras.Model` for `config`: uint8 `(B,H,W,C)` -> `(B,H,W,C,K)`."""
  images = keras.Input(config.image_shape, dtype="uint8", name="images")
  x = scale_images(images, config.num_levels)
  logits = MODELS[config.model](x, config)
  return keras.Model(images, logits, name=config.model)


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
  x = MaskedConv2D(groups * k, 1, num_groups=groups, name="output_conv_2")(x)
  # (B, H, W, C*K) -> (B, H, W, C, K): channel c*K + k is in colour group c.
  return keras.layers.Reshape(config.image_shape + (k,), name="logits")(x)


def pixelcnn(x, config):
  """PixelCNN (paper Section 3.4, Figure 5): 7x7 mask A, residual blocks, output.

  Each block: ReLU, 1x1 conv 2h->h, ReLU, 3x3 mask-B conv h->h, ReLU, 1x1 conv
  h->2h, added to the block input. All convolutions are masked (type B) so that the
  colour groups stay causal.
  """
  groups = config.num_channels
  h = config.hidden_dims
  x = first_layer(x, config)  # (B, H, W, 2h)
  for i in range(config.num_layers):
    y = keras.layers.ReLU()(x)
    y = MaskedConv2D(h, 1, num_groups=groups, activation="relu",
                     name=f"block{i}_in")(y)
    y = MaskedConv2D(h, 3, num_groups=groups, activation="relu",
                     name=f"block{i}_conv")(y)
    y = MaskedConv2D(2 * h, 1, num_groups=groups, name=f"block{i}_out")(y)
    x = keras.layers.Add(name=f"block{i}_residual")([x, y])  # (B, H, W, 2h)
  return output_layers(x, config)


MODELS = {
    "pixelcnn": pixelcnn,
}
