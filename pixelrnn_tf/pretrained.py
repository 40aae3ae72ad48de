"""Trained models shipped with the package, by name.

Each model is a folder `<family>_<dataset>` (e.g. `pixelcnn_binarized_mnist`):

  1/                 the SavedModel (`pixelrnn_tf.export`; TF Serving's
                     `--model_base_path` can point at the folder)
  model.weights.h5   the Keras weights, to score, sample or fine-tune in Python
  config.json        `{"model": ModelConfig, "train": TrainConfig}` as train.py wrote
  card.json          how it was made: commands, steps, hours, machine, dates, and
                     its whole-split validation figure

    pretrained.names()                       # ['pixelcnn_binarized_mnist', ...]
    pretrained.load("pixelcnn_binarized_mnist").signatures["serving_default"]
    pretrained.build("pixelcnn_binarized_mnist")  # keras.Model with its weights

The folders are looked up in `pixelrnn_tf/_pretrained/` (where `pip install`
puts them) and then in `pretrained/` beside the package (a checkout);
`$PIXELRNN_PRETRAINED_DIR` takes precedence over both.
"""

import json
import os

import tensorflow as tf

from pixelrnn_tf import configs
from pixelrnn_tf import models

PREFIX = "pretrained:"  # `--init_from=pretrained:NAME`
VERSION = "1"  # the SavedModel version folder of every shipped model
CARD_FILE = "card.json"
WEIGHTS_FILE = "model.weights.h5"
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_SEARCH_PATH = (os.path.join(_PACKAGE, "_pretrained"),
                os.path.join(os.path.dirname(_PACKAGE), "pretrained"))


class PretrainedError(ValueError):
  """No shipped model of that name, or its folder is incomplete."""


def root():
  """The directory that holds the shipped models' folders."""
  if os.environ.get("PIXELRNN_PRETRAINED_DIR"):
    return os.environ["PIXELRNN_PRETRAINED_DIR"]
  return next((d for d in _SEARCH_PATH if os.path.isdir(d)), _SEARCH_PATH[-1])


def names():
  """The names of the shipped models, sorted."""
  if not os.path.isdir(root()):
    return []
  return sorted(n for n in os.listdir(root())
                if os.path.isfile(os.path.join(root(), n, CARD_FILE)))


def path(name):
  """The folder of the shipped model `name`.

  Raises:
    PretrainedError: no model of that name (the message lists the known ones).
  """
  if name not in names():
    raise PretrainedError(
        f"Unknown pretrained model {name!r}. Expected one of: "
        f"{', '.join(names()) or '(none installed in ' + root() + ')'}.")
  return os.path.join(root(), name)


def load(name):
  """The SavedModel of the shipped model `name` (`tf.saved_model.load`)."""
  return tf.saved_model.load(os.path.join(path(name), VERSION))


def build(name):
  """The Keras network of the shipped model `name`, with its trained weights:
  uint8 images `(B, H, W, C)` -> logits `(B, H, W, C, K)` (`models.build`)."""
  folder = path(name)
  model_config, _ = configs.load_config(folder)
  model = models.build(model_config)
  model.load_weights(os.path.join(folder, WEIGHTS_FILE))
  return model


def card(name):
  """The model card of the shipped model `name`, as a dict."""
  with open(os.path.join(path(name), CARD_FILE)) as f:
    return json.load(f)
