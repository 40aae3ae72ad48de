"""Exports a trained model as a versioned SavedModel for TF Serving and scoring.

`export(model_dir, export_dir)` (or a shipped model's folder) writes `export_dir/<version>/`, a SavedModel that
needs neither this package nor any Python function to load (plain TF ops only;
`tf.saved_model.load`, `saved_model_cli` and TF Serving all read it). Signatures,
whose names and tensor names are the serving contract (see docs/SERVING.md):

  serving_default    images uint8 [B, H, W, C]
                       -> log_prob float32 [B]            log p(image), nats
                          bits_per_dim float32 [B]        -log_prob / (H*W*C ln 2)
                          pixel_log_prob float32 [B, H, W, C]
  log_prob_encoded   image_bytes string [B] (PNG/JPEG/GIF/BMP file contents)
                       -> the same three outputs
  sample             num_samples int32 [], seed int32 [] -> images uint8 [N, H, W, C]
  complete           images uint8 [B, H, W, C], known_rows int32 [], seed int32 []
                       -> images uint8 [B, H, W, C]
  metadata           (no inputs) -> model, image_shape, num_levels, num_classes,
                       class_names, dataset, step, validation_nll,
                       validation_bits_per_dim, validation_step, config_json

A class-conditional model (`num_classes > 0`) takes `labels int32 [B]`, the class
of each image, as one more input of serving_default, log_prob_encoded and
complete; its sample signature takes `labels int32 [N], seed` (one image per label)
instead of num_samples.

Every input is validated inside the graph: a bad request fails with
`InvalidArgumentError` whose message says what was expected and what was received,
never with a silently wrong score.

`sample` and `complete` run the cached sampler without XLA by default, so that any
TF Serving build runs them; `xla_samplers=True` compiles them with XLA (several
times faster on CPU, bench/sampling_speed.py), which `tf.saved_model.load` runs as
is and TF Serving only with `--xla_cpu_compilation_enabled`.

The module is in three parts: input validation and decoding (pure functions of
tensors), the signature bodies, and the tables that declare the signatures'
inputs and the metadata's outputs.
"""

import json
import math
import os
import re
import uuid

from absl import logging
import tensorflow as tf

from pixelrnn_tf import configs
from pixelrnn_tf import distributions
from pixelrnn_tf import models
from pixelrnn_tf import sampling
from pixelrnn_tf import training

MAX_SAMPLES = 1024
VALIDATION_FILE = "eval_validation.json"
# First bytes of the file formats `tf.io.decode_image` reads.
_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")


class ExportError(ValueError):
  """The model_dir cannot be exported (no checkpoint, version taken, ...)."""


def export(source, export_dir, version=None, xla_samplers=False):
  """Exports a trained model to `export_dir/<version>/`.

  The SavedModel is written to a temporary directory inside `export_dir` and then
  renamed, so a server polling `export_dir` never sees a half-written version.

  Args:
    source: a training directory (config.json and checkpoints/: its newest intact
      checkpoint) or a shipped model's folder (`pixelrnn_tf.pretrained.path`).
    export_dir: directory of integer-named versions, as TF Serving expects.
    version: positive int; `None` takes the next free one (1 + the largest
      existing integer, or 1).
    xla_samplers: compile the `sample` and `complete` signatures' sampler with XLA
      (see the module docstring).

  Returns:
    The path of the written version, `export_dir/<version>`.

  Raises:
    ExportError: `version` exists or is invalid.
    training.TrainingError: nothing trained in `source`, or an unreadable
      checkpoint.
    configs.ConfigError: no usable config.json in `source`.
  """
  model, model_config, train_config, step = training.load_trained(source)
  version = _version(export_dir, version)
  path = os.path.join(export_dir, str(version))
  metadata = metadata_values(source, model_config, train_config, step)
  module = _ServingModule(model, model_config, metadata,
                          os.path.join(source, configs.CONFIG_FILE), xla_samplers)
  tmp = os.path.join(export_dir, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
  try:
    tf.saved_model.save(module, tmp, signatures=module.signatures())
    tf.io.gfile.rename(tmp, path)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.rmtree(tmp)
  logging.info("Exported %s (step %d) to %s", source, step, path)
  return path


def _version(export_dir, version):
  """Returns the version to write: `version` if free, else the next free one."""
  tf.io.gfile.makedirs(export_dir)
  taken = [int(name.rstrip("/")) for name in tf.io.gfile.listdir(export_dir)
           if re.fullmatch(r"\d+/?", name)]
  if version is None:
    return max(taken, default=0) + 1
  if isinstance(version, bool) or not isinstance(version, int) or version < 1:
    raise ExportError(f"Invalid `version`. Expected a positive integer. "
                      f"Received: version={version!r}")
  if version in taken:
    raise ExportError(
        f"Version {version} already exists in {export_dir!r}; versions are never "
        f"overwritten. Pass another --version, or none to take the next free one "
        f"({max(taken) + 1}).")
  return version


def metadata_values(source, model_config, train_config, step):
  """Returns the constants of the `metadata` signature as Python values, keyed
  as `METADATA`.

  The validation figures are those of `source/eval_validation.json` (what
  `train.py --mode=eval` wrote there; NaN and step -1 without one).
  """
  nll, nll_step = math.nan, -1
  path = os.path.join(source, VALIDATION_FILE)
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      result = json.load(f)
    nll, nll_step = float(result["nll_nats"]), int(result.get("step", -1))
    if nll_step != step:
      logging.warning("%s is from step %d but the checkpoint is at step %d; "
                      "metadata reports validation_step=%d.", path, nll_step, step,
                      nll_step)
  with tf.io.gfile.GFile(os.path.join(source, configs.CONFIG_FILE)) as f:
    config_json = f.read()
  return {
      "model": model_config.model,
      "image_shape": list(model_config.image_shape),
      "num_levels": model_config.num_levels,
      "num_classes": model_config.num_classes,
      "class_names": list(model_config.class_names),
      "dataset": train_config.dataset,
      "step": step,
      "validation_nll": nll,
      "validation_bits_per_dim": float(distributions.bits_per_dim(
          nll, model_config.image_shape)),
      "validation_step": nll_step,
      "config_json": config_json,
  }


# The `metadata` signature's outputs: name -> dtype (`metadata_values` gives
# the values).
METADATA = {"model": tf.string, "image_shape": tf.int32, "num_levels": tf.int32,
            "num_classes": tf.int32, "class_names": tf.string,
            "dataset": tf.string, "step": tf.int64, "validation_nll": tf.float32,
            "validation_bits_per_dim": tf.float32, "validation_step": tf.int64,
            "config_json": tf.string}

_IMAGES = tf.TensorSpec(None, tf.uint8, name="images")  # rank checked in-graph
_IMAGE_BYTES = tf.TensorSpec([None], tf.string, name="image_bytes")
_LABELS = tf.TensorSpec(None, tf.int32, name="labels")  # checked in-graph
_SCALAR = lambda name: tf.TensorSpec([], tf.int32, name=name)


def signature_inputs(conditional):
  """The inputs of each signature, in order: name -> `[tf.TensorSpec]`.

  A class-conditional model takes `labels` last (its `sample` takes one label per
  image instead of `num_samples`).
  """
  labels = [_LABELS] if conditional else []
  return {
      "serving_default": [_IMAGES] + labels,
      "log_prob_encoded": [_IMAGE_BYTES] + labels,
      "sample": (labels or [_SCALAR("num_samples")]) + [_SCALAR("seed")],
      "complete": [_IMAGES, _SCALAR("known_rows"), _SCALAR("seed")] + labels,
      "metadata": [],
  }


SIGNATURES = tuple(signature_inputs(False))


# Input validation and decoding. ----------------------------------------------------
#
# Each check is a `tf.debugging.Assert`, which a tf.function always runs, and at most
# one of them fails for a given input. Grappler may reorder control edges, so the
# data path never relies on them: it is made safe by `tf.cond` on the same
# predicates (a bad input flows on as a zero image), and the failing assertion is
# the only op that raises.


def checked_scalar(value, name, low, high, note=""):
  """Asserts `low <= value <= high` in the graph; returns `value` clipped to it."""
  tf.debugging.Assert(
      tf.logical_and(value >= low, value <= high),
      [f"Invalid `{name}`. Expected {low} <= {name} <= {high}{note}. "
       f"Received: {name}=", value], name=f"check_{name}", summarize=8)
  return tf.clip_by_value(value, low, high)


def checked_images(images, image_shape, num_levels, name="images"):
  """Asserts uint8 `(B>0, H, W, C)` with values < `num_levels`; returns it shaped
  `(B, H, W, C)` (one zero image if it is invalid)."""
  height, width, channels = image_shape
  shape = tf.shape(images)
  padded = tf.concat([shape, tf.zeros([4], tf.int32)], 0)[:4]  # any rank -> (4,)
  shape_ok = tf.logical_and(tf.equal(tf.size(shape), 4),
                            tf.reduce_all(tf.equal(padded[1:], image_shape)))
  batch_ok = padded[0] > 0
  largest = tf.reduce_max(images)  # 0 for an empty batch
  levels_ok = largest < num_levels if num_levels < 256 else tf.constant(True)
  tf.debugging.Assert(
      shape_ok,
      [f"Invalid `{name}`. Expected uint8 of shape [batch, {height}, {width}, "
       f"{channels}]: images are never resized. Received shape:", shape],
      name="check_shape", summarize=8)
  tf.debugging.Assert(
      tf.logical_or(tf.logical_not(shape_ok), batch_ok),
      [f"Invalid `{name}`. Expected a non-empty batch [batch >= 1, {height}, "
       f"{width}, {channels}]. Received shape:", shape],
      name="check_batch", summarize=8)
  if num_levels < 256:
    hint = ("binarize 8-bit images first (value >= 128 -> 1) or send the encoded "
            "file to log_prob_encoded" if num_levels == 2 else
            "quantize first, or send the encoded file to log_prob_encoded")
    tf.debugging.Assert(
        tf.logical_or(tf.logical_not(tf.logical_and(shape_ok, batch_ok)),
                      levels_ok),
        [f"Invalid `{name}` values. Expected integer levels 0..{num_levels - 1} "
         f"(num_levels={num_levels}): {hint}. Received max value:", largest],
        name="check_levels", summarize=8)
  valid = tf.logical_and(tf.logical_and(shape_ok, batch_ok), levels_ok)
  return tf.cond(valid,
                 lambda: tf.reshape(images, (-1,) + tuple(image_shape)),
                 lambda: tf.zeros((1,) + tuple(image_shape), tf.uint8))


def checked_labels(labels, items, num_classes):
  """Asserts int32 `(B,)` classes `0..num_classes-1`, one per item of `items` (the
  request's images or image files, `(B, ...)` as received); returns them shaped
  `(B,)`. None (an unconditional model) stays None.

  Bad images alone never fail this check: a shape error of the images is reported
  by `checked_images`, whose data path may hold one blank image, which broadcasts
  against the `B` labels.
  """
  if labels is None:
    return None
  batch = tf.concat([tf.shape(items), [0]], 0)[0]  # 0 for a scalar
  shape_ok = tf.logical_and(tf.equal(tf.rank(labels), 1),
                            tf.equal(tf.size(labels), batch))
  range_ok = tf.reduce_all(tf.logical_and(labels >= 0, labels < num_classes))
  tf.debugging.Assert(
      shape_ok,
      ["Invalid `labels`. Expected int32 of shape [batch]: one class per image. "
       "Received shape and batch:", tf.shape(labels), batch],
      name="check_labels_shape", summarize=8)
  tf.debugging.Assert(
      tf.logical_or(tf.logical_not(shape_ok), range_ok),
      [f"Invalid `labels`. Expected classes 0..{num_classes - 1}. Received:",
       labels], name="check_labels_range", summarize=8)
  return tf.cond(tf.logical_and(shape_ok, range_ok),
                 lambda: tf.reshape(labels, [batch]),
                 lambda: tf.zeros([batch], tf.int32))


def decoded_images(image_bytes, image_shape, num_levels):
  """Decodes string `(B,)` image files to uint8 levels `(B, H, W, C)`, checked.

  8-bit values v become levels `floor(v * num_levels / 256)`: identity for 256
  levels, the threshold v >= 128 -> 1 for binary models. `decode_image` converts
  colour files to the model's channel count (RGB <-> grayscale); sizes must match.
  """
  height, width, channels = image_shape
  prefix = tf.strings.substr(image_bytes, 0, 4)  # (B,)
  known = tf.reduce_any(
      tf.stack([tf.strings.substr(prefix, 0, len(m)) == m for m in _MAGIC]), 0)
  tf.debugging.Assert(
      tf.reduce_all(known),
      ["Invalid `image_bytes`: cannot decode. Expected PNG or JPEG (or GIF, BMP) "
       "file contents. Undecodable at batch indices:",
       tf.where(tf.logical_not(known))[:, 0]],
      name="check_format", summarize=8)
  blank = tf.zeros(image_shape, tf.uint8)

  def decode_one(args):
    data, data_known = args
    image = tf.cond(
        data_known,
        lambda: tf.io.decode_image(data, channels=channels, expand_animations=False),
        lambda: blank)
    size = tf.shape(image)[:2]
    size_ok = tf.reduce_all(tf.equal(size, [height, width]))
    tf.debugging.Assert(
        size_ok,
        [f"Invalid `image_bytes`: wrong image size. Expected {height}x{width} "
         "(height x width) images: they are never resized. Received:", size],
        name="check_size", summarize=8)
    return tf.cond(size_ok, lambda: tf.reshape(image, image_shape), lambda: blank)

  images = tf.map_fn(decode_one, (image_bytes, known),
                     fn_output_signature=tf.TensorSpec(image_shape, tf.uint8))
  # (B, H, W, C) 8-bit values -> levels v * L // 256.
  levels = tf.cast(images, tf.int32) * num_levels // 256
  return checked_images(tf.cast(levels, tf.uint8), image_shape, num_levels,
                        "image_bytes")


# The SavedModel. ---------------------------------------------------------------------


class _ServingModule(tf.Module):
  """Holds the network's variables, the config asset and the signature functions.

  Built by hand rather than with `keras.export.ExportArchive`: the contract
  includes `assets/config.json`, a `tf.saved_model.Asset`, and an ExportArchive
  (Keras 3.15) that tracks one writes the signatures and variables but leaves
  `assets/` empty. The Keras model is closed over, not tracked: the SavedModel holds
  its variables and the traced graphs only, so loading needs no Keras class.
  """

  def __init__(self, model, model_config, metadata, config_path, xla_samplers):
    super().__init__(name="pixelrnn_tf_export")
    self._model = lambda: model  # a closure: not tracked
    def draw(images, start, seed, labels):
      """`sampling.complete` of the model, traced once as one graph function that
      `sample` and `complete` both call: the SavedModel holds the sampler once."""
      return sampling.complete(model, images, start, model_config.num_levels, seed,
                               labels)
    draw = tf.function(draw, jit_compile=xla_samplers)
    self._draw = lambda: draw  # a closure: not tracked
    self.config_asset = tf.saved_model.Asset(config_path)
    self._shape = tuple(model_config.image_shape)
    self._num_levels = model_config.num_levels
    self._num_classes = model_config.num_classes
    self._metadata = metadata
    bodies = {"serving_default": self._log_prob,
              "log_prob_encoded": self._log_prob_encoded,
              "sample": self._sample_classes if self._num_classes else self._sample,
              "complete": self._complete, "metadata": self._metadata_fn}
    self._signatures = {
        name: tf.function(bodies[name], input_signature=specs).get_concrete_function()
        for name, specs in signature_inputs(bool(self._num_classes)).items()}
    # Track the tf.Variables the graphs capture, not the Keras variables wrapping
    # them: only then does a TF1-style loader (TF Serving, `saved_model_cli run`)
    # find them restored under the names the graphs read.
    captured = {}
    for function in self._signatures.values():
      captured.update({v.ref(): v for v in function.variables})
    self.model_variables = list(captured.values())

  def signatures(self):
    """Returns the signature name -> concrete function map for `tf.saved_model.save`."""
    return dict(self._signatures)

  def _images(self, images):
    return checked_images(images, self._shape, self._num_levels)

  def _labels(self, labels, items):
    return checked_labels(labels, items, self._num_classes)

  def _log_prob(self, images, labels=None):
    """uint8 `(B, H, W, C)` (and their int32 `labels` `(B,)`) -> log_prob `(B,)`,
    bits_per_dim `(B,)`, pixel_log_prob `(B, H, W, C)`."""
    labels = self._labels(labels, images)
    return self._scores(self._images(images), labels)

  def _log_prob_encoded(self, image_bytes, labels=None):
    """string `(B,)` of image files (and their `labels`) -> `_log_prob`'s outputs."""
    labels = self._labels(labels, image_bytes)
    return self._scores(decoded_images(image_bytes, self._shape, self._num_levels),
                        labels)

  def _scores(self, images, labels):
    model = self._model()
    logits = model(models.network_inputs(model, images, labels),
                   training=False)  # (B, H, W, C, K)
    pixel = distributions.pixel_log_prob(logits, images, self._num_levels)
    log_prob = tf.reduce_sum(pixel, axis=[1, 2, 3])  # (B,)
    return {
        "log_prob": log_prob,
        "bits_per_dim": distributions.bits_per_dim(-log_prob, self._shape),
        "pixel_log_prob": pixel,  # (B, H, W, C)
    }

  def _sample(self, num_samples, seed):
    """Draws uint8 `(num_samples, H, W, C)`; the same seed gives the same images."""
    num_samples = checked_scalar(num_samples, "num_samples", 1, MAX_SAMPLES)
    return self._draw_samples(num_samples, seed)

  def _sample_classes(self, labels, seed):
    """Draws one uint8 `(H, W, C)` image of each class in `labels` `(N,)`."""
    num_samples = checked_scalar(tf.size(labels), "num_labels", 1, MAX_SAMPLES)
    labels = self._labels(labels, tf.zeros([num_samples]))
    return self._draw_samples(num_samples, seed, labels)

  def _draw_samples(self, num_samples, seed, labels=None):
    """`sample`'s output: uint8 `(num_samples, H, W, C)` drawn from blank images."""
    blank = sampling.blank_images(num_samples, self._shape)
    start = tf.constant(0)  # a tensor, as in `_complete`: the same trace of `draw`
    return {"images": self._draw()(blank, start, tf.stack([seed, 0]), labels)}

  def _complete(self, images, known_rows, seed, labels=None):
    """Keeps rows `< known_rows` of uint8 `(B, H, W, C)` and re-samples the rest
    (given each image's class in `labels` for a conditional model)."""
    height, width, channels = self._shape
    labels = self._labels(labels, images)
    images = self._images(images)
    known_rows = checked_scalar(known_rows, "known_rows", 0, height,
                                " (the image height)")
    start = known_rows * width * channels  # flat raster/RGB index
    return {"images": self._draw()(images, start, tf.stack([seed, 0]), labels)}

  def _metadata_fn(self):
    return {name: tf.constant(self._metadata[name], dtype)
            for name, dtype in METADATA.items()}
