"""Exports a trained model as a versioned SavedModel for TF Serving and scoring.

  python export.py --model_dir=/tmp/pcnn --export_dir=/exports/pcnn
  python export.py --model_dir=/tmp/pcnn --export_dir=/exports/pcnn --version=7
  python export.py --model_dir=/tmp/pcnn --export_dir=/exports/pcnn --xla_samplers
  python export.py --pretrained=pixelcnn_binarized_mnist --export_dir=/exports/pcnn

Writes EXPORT_DIR/<version>/ (default version: the next free integer) and prints its
path. Signatures and their tensors are described in docs/SERVING.md.
"""

import sys

from absl import app
from absl import flags

from pixelrnn_tf import cli

flags.DEFINE_string("model_dir", None,
                    "Training directory (config.json, checkpoints/); or --pretrained.")
flags.DEFINE_string("pretrained", None,
                    "A shipped model by name (pixelrnn_tf.pretrained.names()) "
                    "instead of --model_dir.")
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
  if bool(FLAGS.model_dir) == bool(FLAGS.pretrained):
    print("error: Pass one of --model_dir (a training directory) or "
          "--pretrained=NAME (a shipped model).", file=sys.stderr)
    sys.exit(1)
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import configs, export, pretrained, training
  try:
    source = (pretrained.path(FLAGS.pretrained) if FLAGS.pretrained
              else FLAGS.model_dir)
    path = export.export(source, FLAGS.export_dir, FLAGS.version,
                         FLAGS.xla_samplers)
  except (configs.ConfigError, export.ExportError, pretrained.PretrainedError,
          training.TrainingError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt:
    print("Interrupted; no version was written.", file=sys.stderr)
    sys.exit(130)
  print(path)


def run():
  """The console entry point: parses the flags and runs `main`."""
  cli.run_program(main, __doc__)


if __name__ == "__main__":
  run()
