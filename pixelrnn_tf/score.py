r"""Scores image files with an exported SavedModel: nats and bits/dim per image.

  python -m pixelrnn_tf.score --saved_model=/exports/pcnn digit.png more_digits/
  python -m pixelrnn_tf.score --pretrained=pixelcnn_binarized_mnist digit.png

`--saved_model` is a version (`/exports/pcnn/1`) or an export root, whose highest
version is used (as TF Serving does); `--pretrained` names a shipped model.

Prints one JSON line per image, `{"path", "nats", "bits_per_dim"}` where `nats` is
`-log p(image)` in nats and `bits_per_dim` is `nats / (H*W*C ln 2)`, then one summary
line `{"mean": true, "num_images", "num_errors", "nats", "bits_per_dim"}` with the
means over the scored images. An image the model cannot score (undecodable, wrong
size) gets `{"path", "error"}` instead, is left out of the means, and makes the exit
status 1. Directories are searched recursively for .png/.jpg/.jpeg/.gif/.bmp files.

Files go through the `log_prob_encoded` signature, so they are decoded and
quantized inside the SavedModel exactly as TF Serving would (a binary model reads
8-bit values >= 128 as 1). Scoring needs TensorFlow only: this module loads the
SavedModel with `tf.saved_model.load` and imports nothing else from pixelrnn_tf
(but `pixelrnn_tf.pretrained`, for --pretrained), so it also runs as a lone script.
"""

import json
import math
import os
import re
import sys
import time

from absl import app
from absl import flags
import tensorflow as tf

SIGNATURE = "log_prob_encoded"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def find_images(paths):
  """Expands directories (recursively, sorted) into image files; files stay as given.

  Raises:
    FileNotFoundError: a path does not exist.
  """
  files = []
  for path in paths:
    if tf.io.gfile.isdir(path):
      found = []
      for root, _, names in tf.io.gfile.walk(path):
        found += [os.path.join(root, n) for n in names
                  if n.lower().endswith(IMAGE_EXTENSIONS)]
      files += sorted(found)
    elif tf.io.gfile.exists(path):
      files.append(path)
    else:
      raise FileNotFoundError(f"No such file or directory: {path!r}")
  return files


def saved_model_path(export_dir):
  """The newest version of a SavedModel export root (its highest integer-named
  subfolder with a SavedModel, as TF Serving picks), or `export_dir` itself if it
  is a SavedModel.

  Raises:
    ValueError: neither a SavedModel nor a folder of numbered versions.
  """
  if tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
    return export_dir
  versions = []
  if tf.io.gfile.isdir(export_dir):
    versions = [int(n.rstrip("/")) for n in tf.io.gfile.listdir(export_dir)
                if re.fullmatch(r"\d+/?", n) and tf.io.gfile.exists(
                    os.path.join(export_dir, n.rstrip("/"), "saved_model.pb"))]
  if not versions:
    raise ValueError(
        f"No SavedModel at {export_dir!r}: expected a folder with saved_model.pb, or "
        "an export root of numbered versions (1/, 2/, ...) as export.py writes.")
  return os.path.join(export_dir, str(max(versions)))


class Scorer:
  """Scores encoded images with the `log_prob_encoded` signature of a SavedModel.

  Args:
    saved_model: a SavedModel version directory, or an export root of numbered
      versions (its highest is loaded).

  Raises:
    ValueError: no SavedModel there, one that is not a pixelrnn_tf export, or a
      conditional one.
  """

  def __init__(self, saved_model):
    saved_model = saved_model_path(saved_model)
    self._loaded = tf.saved_model.load(saved_model)
    if SIGNATURE not in self._loaded.signatures:
      raise ValueError(
          f"Invalid `saved_model`: expected a pixelrnn_tf export with a "
          f"{SIGNATURE!r} signature. Received {saved_model!r} with signatures "
          f"{sorted(self._loaded.signatures)}.")
    self._signature = self._loaded.signatures[SIGNATURE]
    if "labels" in self._signature.structured_input_signature[1]:
      raise ValueError(
          f"{saved_model!r} is a class-conditional model: scoring a file needs its "
          "class too, which this tool does not take. Call the SavedModel's "
          f"{SIGNATURE!r} (or serving_default) signature with `labels` instead.")

  def score(self, paths):
    """Returns a record per path: `{"path", "nats", "bits_per_dim"}` or `{"path", "error"}`.

    The batch is scored in one call; if the model rejects it, each image is scored
    alone so that one bad file only costs its own record.
    """
    contents = [_read(p) for p in paths]
    try:
      return self._records(paths, contents)
    except tf.errors.InvalidArgumentError as e:
      if len(paths) == 1:
        return [{"path": paths[0], "error": short_error(e)}]
    records = []
    for path, data in zip(paths, contents):
      try:
        records += self._records([path], [data])
      except tf.errors.InvalidArgumentError as e:
        records.append({"path": path, "error": short_error(e)})
    return records

  def _records(self, paths, contents):
    out = self._signature(image_bytes=tf.constant(contents, tf.string))
    nats = (-out["log_prob"]).numpy()
    bits = out["bits_per_dim"].numpy()
    return [{"path": p, "nats": float(n), "bits_per_dim": float(b)}
            for p, n, b in zip(paths, nats, bits)]


def score_files(saved_model, paths, batch_size=64, progress=None):
  """Yields a record per image file under `paths` (see `Scorer.score`).

  Args:
    saved_model: an exported version, e.g. `export_dir/1`, or an export root.
    paths: image files and/or directories.
    batch_size: images per signature call.
    progress: callable `(done, total)` called once the model is loaded (done=0)
      and after every batch, or None.
  """
  if batch_size < 1:
    raise ValueError(f"Invalid `batch_size`. Expected >= 1. "
                     f"Received: batch_size={batch_size}")
  files = find_images(paths)
  scorer = Scorer(saved_model)
  if progress:
    progress(0, len(files))
  for start in range(0, len(files), batch_size):
    yield from scorer.score(files[start:start + batch_size])
    if progress:
      progress(min(start + batch_size, len(files)), len(files))


def summary(records):
  """Returns the final line: means of nats and bits/dim over the scored images."""
  scored = [r for r in records if "error" not in r]
  mean = lambda key: (math.fsum(r[key] for r in scored) / len(scored)
                      if scored else None)
  return {"mean": True, "num_images": len(scored),
          "num_errors": len(records) - len(scored), "nats": mean("nats"),
          "bits_per_dim": mean("bits_per_dim")}


def short_error(error):
  """The first line of an `InvalidArgumentError`'s message that says what is wrong."""
  lines = [line.strip() for line in error.message.splitlines() if line.strip()]
  for line in lines:
    if line.startswith("assertion failed:"):
      return line
  return next((line for line in lines if not line.startswith(
      ("Graph execution error", "Detected at node", "<stack traces", "[["))),
              lines[0] if lines else str(error))


def _read(path):
  with tf.io.gfile.GFile(path, "rb") as f:
    return f.read()


class _Progress:
  """A one-line progress bar on stderr (stdout carries the JSON lines)."""

  def __init__(self, stream=sys.stderr, width=30):
    self._stream = stream
    self._width = width
    self._start = time.time()

  def __call__(self, done, total):
    if done == 0:  # the model is loaded: time the scoring only
      self._start = time.time()
    filled = self._width * done // max(total, 1)
    rate = done / max(time.time() - self._start, 1e-9)
    bar = "=" * filled + (">" if filled < self._width else "")
    self._stream.write(f"\r[{bar:<{self._width}}] {done}/{total} images, "
                       f"{rate:.0f} img/s")
    if done >= total:
      self._stream.write("\n")
    self._stream.flush()


def _define_flags():
  """Defines the command-line flags; only when run as a program (no import effects)."""
  flags.DEFINE_string("saved_model", None,
                      "An export root (its highest version is used) or one "
                      "version directory, e.g. /exports/pcnn or /exports/pcnn/1.")
  flags.DEFINE_string("pretrained", None, "A shipped model by name instead of "
                      "--saved_model (pixelrnn_tf.pretrained.names()).")
  flags.DEFINE_integer("batch_size", 64, "Images per SavedModel call.",
                       lower_bound=1)
  flags.DEFINE_bool("progress", None,
                    "Show a progress bar on stderr (default: when stderr is a "
                    "terminal and there is more than one batch).")


def main(argv):
  flags_ = flags.FLAGS
  paths = argv[1:]
  if not paths:
    raise app.UsageError("Pass one or more image files or directories to score.")
  if bool(flags_.saved_model) == bool(flags_.pretrained):
    print("error: Pass one of --saved_model (an export) or --pretrained=NAME (a "
          "shipped model).", file=sys.stderr)
    sys.exit(1)
  try:
    files = find_images(paths)
    saved_model = flags_.saved_model
    if flags_.pretrained:
      # Imported here: without --pretrained this file runs alone, with TF only.
      from pixelrnn_tf import pretrained  # pylint: disable=g-import-not-at-top
      saved_model = pretrained.path(flags_.pretrained)
    show = flags_.progress
    if show is None:
      show = sys.stderr.isatty() and len(files) > flags_.batch_size
    records = []
    for record in score_files(saved_model, files, flags_.batch_size,
                              _Progress() if show else None):
      records.append(record)
      print(json.dumps(record), flush=True)
  except (OSError, ValueError) as e:  # PretrainedError is a ValueError
    print(f"error: {short_error(e) if isinstance(e, tf.errors.OpError) else e}",
          file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt:
    print("Interrupted.", file=sys.stderr)
    sys.exit(130)
  print(json.dumps(summary(records)), flush=True)
  if any("error" in r for r in records):
    sys.exit(1)


def run():
  """The console entry point (pixelrnn-score): defines the flags and runs `main`."""
  _define_flags()
  # absl prints the __main__ module's docstring as --help's usage.
  sys.modules["__main__"].__doc__ = __doc__
  app.run(main)


if __name__ == "__main__":
  run()
