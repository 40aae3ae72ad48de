"""Model configs and networks: `ModelConfig` and `build`, for every family.

Every network takes uint8 images `(B, H, W, C)` and returns logits
`(B, H, W, C, K)` (see `pixelrnn_tf.distributions`). The families are modules of
`pixelrnn_tf.families`, reached by name through its registry; `build` makes any of
them. A class-conditional network (`num_classes > 0`, families that take labels)
takes `{"images": ..., "labels": int32 (B,)}` instead (`network_inputs`).
"""

import dataclasses
import json

from pixelrnn_tf import families
from pixelrnn_tf.families import base
from pixelrnn_tf.families.base import is_conditional  # pylint: disable=unused-import
from pixelrnn_tf.families.base import network_inputs  # pylint: disable=unused-import


def names():
  """The families' names (`ModelConfig.model` values), sorted."""
  return families.names()


def conditional_names():
  """The families that can be class-conditional, sorted."""
  return [name for name in families.names() if families.get(name).takes_labels]


def default_sizes(family):
  """The size fields (`num_layers`, `hidden_dims`, ...) that `family` defaults to."""
  return dict(families.get(family).default_sizes)


@dataclasses.dataclass
class ModelConfig:
  """Everything needed to rebuild a network; saved as JSON in `model_dir`.

  Attributes:
    model: a family's name (`names()`).
    image_shape: `(H, W, C)`, C in {1, 3}.
    num_levels: values per sub-pixel: 2 (binary, Bernoulli) or 256 (Categorical).
    num_layers: residual blocks (PixelCNN) or recurrent layers (PixelRNNs).
    hidden_dims: `h` of the paper: residual streams have `2h` maps.
    output_dims: maps of the two 1x1 output layers before the logits.
      These three and `kernel_width`, where not given (None), take the family's
      `default_sizes`.
    num_classes: 0 (unconditional), or the number of class labels that condition
      every layer (families in `conditional_names()`).
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
    family = families.get(self.model)  # ValueError: an unknown family
    for name, value in family.default_sizes.items():
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
    if self.num_classes < 0:
      raise ValueError("Invalid `num_classes`. Expected >= 0 (0: unconditional). "
                       f"Received: num_classes={self.num_classes}")
    if self.class_names and len(self.class_names) != self.num_classes:
      raise ValueError(
          f"Invalid `class_names`. Expected none or num_classes={self.num_classes} "
          f"names. Received: {len(self.class_names)} names")
    if self.num_classes and not family.takes_labels:
      raise ValueError(
          f"Class conditioning is implemented for {conditional_names()} (as in "
          "van den Oord et al. 2016b), not for "
          f"model={self.model!r}. Use --model=gated_pixelcnn, or drop --conditional.")
    if self.num_levels < 2 or self.num_levels > 256:
      raise ValueError("Invalid `num_levels`. Expected 2..256. "
                       f"Received: num_levels={self.num_levels}")
    if family.check_config:
      family.check_config(self)

  @property
  def num_channels(self):
    return self.image_shape[-1]

  def to_json(self):
    return json.dumps(dataclasses.asdict(self), indent=2)

  @classmethod
  def from_json(cls, text):
    return cls(**json.loads(text))


def build(config, name=None):
  """Returns the `keras.Model` of `config`: uint8 `(B,H,W,C)` -> `(B,H,W,C,K)`.

  With `config.num_classes`, its input is `{"images": uint8 (B,H,W,C), "labels":
  int32 (B,)}` (see `network_inputs`). The model carries its family, config and
  parts as `model.pixelrnn` (`families.base.Network`); `name` (default
  `config.model`) is only its Keras name.
  """
  return base.keras_model(families.get(config.model), config, name)


def generation_order(family, image_shape):
  """The order in which `family` draws the sub-pixels of an image.

  Returns:
    int `(H*W*C,)`: flat raster/RGB indices (`(i * W + j) * C + c`) in drawing
    order: raster/RGB order itself for every family but `multiscale`, which draws
    its small image's sub-pixels first.
  """
  return families.get(family).generation_order(image_shape)


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
