"""The configs a model_dir is rebuilt from: `ModelConfig` and `TrainConfig`.

`model_dir/config.json` (and a shipped model's) is
`{"model": ModelConfig fields, "train": TrainConfig fields}`, written before the
first step; `load_config` checks it field by field.
"""

import dataclasses
import json
import os
import typing

from absl import logging
import tensorflow as tf

from pixelrnn_tf import models

CONFIG_FILE = "config.json"
LR_SCHEDULES = ("constant", "cosine")
BAD_FILES = ("refuse", "skip")


class ConfigError(ValueError):
  """A config.json (or a config value) is unusable; the message names the field."""


@dataclasses.dataclass
class TrainConfig:
  """How a model is trained; saved beside the checkpoints.

  Attributes:
    dataset: `pixelrnn_tf.data` dataset name or `folder:/path`.
    data_dir: TFDS data dir (None: `$TFDS_DATA_DIR` or TFDS's default).
    image_size: side of folder images after resize and crop (folders only).
    batch_size: global batch size.
    train_steps: optimizer steps in total (a resumed run counts the steps done).
    learning_rate: Adam learning rate (the peak one under a warmup or decay).
    lr_schedule: "constant", or "cosine": decay to 0 at `train_steps` along half a
      cosine (`keras.optimizers.schedules.CosineDecay`).
    warmup_steps: ramp the learning rate linearly from 0 over this many first
      steps (0: none).
    steps_per_loop: steps between checkpoints and summaries (one Keras "epoch").
    eval_every_loops: validate on `eval_examples` images every this many loops
      (0: never during training).
    eval_examples: images of the evaluation split used for periodic validation.
    jit_compile: compile the train and evaluation steps and the naive samplers with
      XLA (off by default: on CPU the steps run faster without it,
      bench/step_time.py). The cached samplers always compile
      (`sampling.prefers_xla`: several times faster).
    mixed_precision: compute in float16 (GPU, with loss scaling) or bfloat16
      (TPU/CPU) with float32 weights; the logits, head and loss stay float32.
    summary_samples: images sampled into TensorBoard at the end of training (0:
      none).
    seed: seeds weights, shuffling and samples.
    init_from: where the first step's weights come from: None (random), a
      model_dir, or `pretrained:NAME` (`pixelrnn_tf.pretrained`). A resumed run
      restores its own checkpoint instead.
    channels: folder datasets: colour channels every image is converted to (1 or
      3; None: decided from the files, `data.load`).
    num_levels: folder datasets: levels 8-bit values are quantized to (None: 256).
    bad_files: folder datasets: "refuse" unreadable image files, or "skip" them.
  """
  dataset: str = "binarized_mnist"
  data_dir: str | None = None
  image_size: int | None = None
  batch_size: int = 64
  train_steps: int = 20_000
  learning_rate: float = 3e-3
  lr_schedule: str = "cosine"
  warmup_steps: int = 0
  steps_per_loop: int = 500
  eval_every_loops: int = 1
  eval_examples: int = 10_000
  jit_compile: bool = False
  mixed_precision: bool = False
  summary_samples: int = 16
  seed: int = 0
  init_from: str | None = None
  channels: int | None = None
  num_levels: int | None = None
  bad_files: str = "refuse"

  def __post_init__(self):
    for name in ("batch_size", "train_steps", "steps_per_loop"):
      if getattr(self, name) < 1:
        raise ValueError(f"Invalid `{name}`. Expected >= 1. "
                         f"Received: {name}={getattr(self, name)}")
    if self.summary_samples < 0:
      raise ValueError("Invalid `summary_samples`. Expected >= 0. "
                       f"Received: summary_samples={self.summary_samples}")
    if not self.learning_rate > 0:
      raise ValueError("Invalid `learning_rate`. Expected > 0. "
                       f"Received: learning_rate={self.learning_rate}")
    if self.lr_schedule not in LR_SCHEDULES:
      raise ValueError(f"Invalid `lr_schedule`. Expected one of {LR_SCHEDULES}. "
                       f"Received: lr_schedule={self.lr_schedule!r}")
    if not 0 <= self.warmup_steps < self.train_steps:
      raise ValueError("Invalid `warmup_steps`. Expected >= 0 and < train_steps "
                       f"({self.train_steps}). Received: "
                       f"warmup_steps={self.warmup_steps}")
    if self.eval_every_loops < 0 or self.eval_examples < 1:
      raise ValueError(
          "Invalid validation settings. Expected eval_every_loops >= 0 and "
          f"eval_examples >= 1. Received: eval_every_loops={self.eval_every_loops}, "
          f"eval_examples={self.eval_examples}")
    if self.channels not in (None, 1, 3):
      raise ValueError("Invalid `channels`. Expected 1 (grayscale) or 3 (RGB). "
                       f"Received: channels={self.channels}")
    if self.num_levels is not None and not 2 <= self.num_levels <= 256:
      raise ValueError("Invalid `num_levels`. Expected 2..256. "
                       f"Received: num_levels={self.num_levels}")
    if self.bad_files not in BAD_FILES:
      raise ValueError(f"Invalid `bad_files`. Expected one of {BAD_FILES}. "
                       f"Received: bad_files={self.bad_files!r}")


def save_config(model_dir, model_config, train_config):
  """Writes `model_dir/config.json` (atomically)."""
  tf.io.gfile.makedirs(model_dir)
  text = json.dumps({"model": dataclasses.asdict(model_config),
                     "train": dataclasses.asdict(train_config)}, indent=2)
  tmp = os.path.join(model_dir, CONFIG_FILE + ".tmp")
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(text)
  tf.io.gfile.rename(tmp, os.path.join(model_dir, CONFIG_FILE), overwrite=True)


# Fields that a config.json written before the field existed lacks, with the value
# such a file meant. Every other field must be present.
ADDED_FIELDS = {
    "model": {"num_classes": 0, "dropout": 0.0, "kernel_width": 3,
              "class_names": ()},
    "train": {"lr_schedule": "constant", "warmup_steps": 0,
              "mixed_precision": False, "init_from": None, "channels": None,
              "num_levels": None, "bad_files": "refuse"},
}


def load_config(model_dir):
  """Returns `(ModelConfig, TrainConfig)` saved in `model_dir`.

  Raises:
    ConfigError: no config.json, or one that is not JSON, lacks a field, has an
      unknown one or a value of the wrong type or range; the message names the file
      and the field.
  """
  path = os.path.join(model_dir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise ConfigError(
        f"No {CONFIG_FILE} in model_dir {model_dir!r}: train a model there first "
        "(--mode=train), or pass the --model_dir of a trained model.")
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  try:
    saved = json.loads(text)
  except json.JSONDecodeError as e:
    raise ConfigError(
        f"{path} is not valid JSON ({e}). Expected the {{\"model\": ..., "
        "\"train\": ...} object that train.py writes: restore the file, or train "
        "in a new --model_dir.") from None
  if not isinstance(saved, dict) or not {"model", "train"} <= set(saved):
    raise ConfigError(
        f"{path} lacks its \"model\" and \"train\" sections. Expected the "
        "{\"model\": ..., \"train\": ...} object that train.py writes: restore the "
        "file, or train in a new --model_dir.")
  return (_config_from(models.ModelConfig, saved["model"], path, "model"),
          _config_from(TrainConfig, saved["train"], path, "train"))


def _config_from(cls, fields, path, section):
  """`cls(**fields)` for the `section` of config file `path`, checked field by field."""
  if not isinstance(fields, dict):
    raise ConfigError(f"{path}: `{section}` is not an object of fields. "
                        f"Received: {fields!r}")
  hints = typing.get_type_hints(cls)
  unknown = sorted(set(fields) - set(hints))
  if unknown:
    raise ConfigError(
        f"{path}: unknown field(s) {', '.join(f'{section}.{n}' for n in unknown)}. "
        f"Expected only {', '.join(sorted(hints))}.")
  added = ADDED_FIELDS[section]
  missing = sorted(set(hints) - set(fields) - set(added))
  if missing:
    raise ConfigError(
        f"{path}: missing field(s) {', '.join(f'{section}.{n}' for n in missing)}. "
        "Every field that train.py writes is needed to rebuild the model: restore "
        "the file, or train in a new --model_dir.")
  for name in sorted(set(added) - set(fields)):
    logging.info("%s has no %s.%s (written before it existed): taking %r.", path,
                 section, name, added[name])
  for name, value in fields.items():
    if not _has_type(value, hints[name]):
      raise ConfigError(
          f"{path}: invalid {section}.{name}. Expected {_type_name(hints[name])}. "
          f"Received: {value!r}")
  try:
    return cls(**{**added, **fields})
  except (TypeError, ValueError) as e:
    raise ConfigError(f"{path}: {e}") from None


def _has_type(value, hint):
  """Whether the JSON `value` fits the type `hint` (an int fits float; a list, tuple)."""
  allowed = typing.get_args(hint) or (hint,)
  for kind in allowed:
    if kind is type(None) and value is None:
      return True
    if kind is float and isinstance(value, (int, float)) and not isinstance(value,
                                                                             bool):
      return True
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
      return True
    if kind is tuple and isinstance(value, (list, tuple)):
      return True
    if kind in (str, bool) and isinstance(value, kind):
      return True
  return False


def _type_name(hint):
  names = {type(None): "null", tuple: "a list", int: "an integer",
           float: "a number", str: "a string", bool: "true or false"}
  return " or ".join(names.get(k, str(k)) for k in (typing.get_args(hint) or (hint,)))
