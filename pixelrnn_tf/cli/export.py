"""Exports a trained model_dir as a versioned SavedModel for TF Serving and scoring.

  python export.py --model_dir=/tmp/pcnn --export_dir=/exports/pcnn
  python export.py --model_dir=/tmp/pcnn --export_dir=/exports/pcnn --version=7
  python export.py --model_dir=/tmp/pcnn --export_dir=/exports/pcnn --xla_samplers

Writes EXPORT_DIR/<version>/ (default version: the next free integer) and prints its
path. Signatures and their tensors are described in docs/SERVING.md.
"""

import sys

from absl import app
from absl import flags
from absl import logging

flags.DEFINE_string("model_dir", None,
                    "Training directory (config.json, checkpoints/).", required=True)
flags.DEFINE_string("export_dir", None,
                    "Directory of integer-named versions (TF Serving's model base "
                    "path).", required=True)
flags.DEFINE_integer("version", None,
                     "Version to write (>= 1; never overwritten). Default: the "
                     "next free one.", lower_bound=1)
flags.DEFINE_bool("xla_samplers", False,
                  "Compile the sample/complete signatures with XLA: several times "
                  "faster, but TF Serving then needs --xla_cpu_compilation_enabled.")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  from pixelrnn_tf import export, training  # pylint: disable=g-import-not-at-top
  try:
    path = export.export(FLAGS.model_dir, FLAGS.export_dir, FLAGS.version,
                         FLAGS.xla_samplers)
  except (export.ExportError, training.TrainingError) as e:
    logging.error("%s", e)
    raise SystemExit(f"error: {e}") from None
  print(path)


def run():
  """The console entry point: parses the flags and runs `main`."""
  # absl prints the __main__ module's docstring as --help's usage: a console
  # script or the top-level wrapper has none of its own.
  sys.modules["__main__"].__doc__ = __doc__
  app.run(main)


if __name__ == "__main__":
  run()
