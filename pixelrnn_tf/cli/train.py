"""Trains, evaluates and samples PixelCNN / PixelRNN models.

  python train.py --model=pixelcnn --dataset=binarized_mnist --model_dir=/tmp/pcnn
  python train.py --mode=eval --model_dir=/tmp/pcnn --split=validation
  python train.py --mode=sample --model_dir=/tmp/pcnn
  python train.py --mode=sample --pretrained=pixelcnn_binarized_mnist
  python train.py --init_from=pretrained:pixelcnn_binarized_mnist --model_dir=/tmp/ft

Eval, sample and complete need only --model_dir (the config is read from it) or
--pretrained=NAME (a shipped model). --init_from starts a new --model_dir from the
weights of a trained one, with a fresh optimizer. Every value is checked before any
work; a bad one ends the program with a one-line error and exit status 1, Ctrl-C
during training with a checkpoint of the current step and exit status 130.
"""

import dataclasses
import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from pixelrnn_tf import cli
from pixelrnn_tf import families

# The largest batch the SavedModel's `sample` signature draws (export.MAX_SAMPLES).
MAX_SAMPLES = 1024
INT32_MAX = 2**31 - 1

flags.DEFINE_enum("mode", "train", ["train", "eval", "train_and_eval", "sample",
                                    "complete"], "What to do.")
flags.DEFINE_string("model_dir", None, "Directory for config, checkpoints, logs "
                    "(needed to train; for eval/sample/complete, it or --pretrained).")
flags.DEFINE_string("pretrained", None, "--mode=eval/sample/complete: a shipped "
                    "model by name (pixelrnn_tf.pretrained.names()) instead of "
                    "--model_dir.")
flags.DEFINE_string("init_from", None, "Start a new --model_dir from these weights "
                    "(fresh optimizer): pretrained:NAME or a trained model_dir. "
                    "Image shape, levels, classes, family and sizes must fit.")
flags.DEFINE_string("model", "pixelcnn", "Model family: "
                    f"{', '.join(families.names())} (pixelrnn_tf.families).")
flags.DEFINE_string("dataset", "binarized_mnist",
                    "TFDS name (binarized_mnist, mnist, fashion_mnist, cifar10, "
                    "downsampled_imagenet/32x32, downsampled_imagenet/64x64) or "
                    "folder:/path/to/images.")
flags.DEFINE_string("data_dir", None,
                    "TFDS data dir with the prepared dataset (default: "
                    "$TFDS_DATA_DIR, else TFDS's default, downloading if needed).")
flags.DEFINE_integer("image_size", None, "Folder datasets: resize+crop side.",
                     lower_bound=1)
flags.DEFINE_enum("channels", None, ["1", "3"], "Folder datasets: convert every "
                  "image to 1 (grayscale) or 3 (RGB) channels (default: the "
                  "channels of most files).")
flags.DEFINE_integer("num_levels", None, "Folder datasets: quantize 8-bit values "
                     "to this many levels (2: binarize at 128; default 256).",
                     lower_bound=2, upper_bound=256)
flags.DEFINE_enum("bad_files", "refuse", ["refuse", "skip"], "Folder datasets: "
                  "refuse unreadable image files (listing them), or skip them.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.", lower_bound=1)
flags.DEFINE_integer("train_steps", None, "Total optimizer steps (default 20,000).",
                     lower_bound=1)
flags.DEFINE_float("epochs", None, "Train for this many passes over the train "
                   "split instead of --train_steps.", lower_bound=1e-9)
flags.DEFINE_float("learning_rate", 3e-3, "Adam learning rate (peak, with a "
                   "schedule).", lower_bound=1e-12)
flags.DEFINE_enum("lr_schedule", "cosine", ["constant", "cosine"],
                  "Learning rate after the warmup: constant, or cosine decay to 0 "
                  "at --train_steps.")
flags.DEFINE_integer("warmup_steps", 0, "Steps of linear learning-rate warmup from 0.",
                     lower_bound=0)
flags.DEFINE_string("preset", None, "A paper configuration from "
                    "pixelrnn_tf.models.PRESETS (e.g. row_lstm_mnist_7x16); sets "
                    "--model and the size flags, which still override it.")
flags.DEFINE_integer("num_layers", None, "Residual blocks / recurrent layers "
                     "(default: pixelcnn 16, other families 12).", lower_bound=1)
flags.DEFINE_integer("hidden_dims", None, "h: residual streams have 2h maps "
                     "(default: pixelcnn 32, other families 16).", lower_bound=1)
flags.DEFINE_integer("output_dims", None, "Maps of the 1x1 output layers "
                     "(default: pixelcnn 64, other families 32).", lower_bound=1)
flags.DEFINE_float("dropout", None, "Dropout rate on every residual branch while "
                   "training (default 0: none).", lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_integer("kernel_width", None, "PixelCNN: width of the residual blocks' "
                     "masked conv, 3 x this (odd; default 11; 3 is the paper's 3x3). "
                     "Wider shrinks the blind spot.", lower_bound=1)
flags.DEFINE_bool("conditional", False, "Condition the model on the dataset's class "
                  "labels (gated_pixelcnn); samples cycle through the classes.")
flags.DEFINE_integer("steps_per_loop", 500, "Steps between checkpoints/summaries.",
                     lower_bound=1)
flags.DEFINE_integer("eval_every_loops", 1, "Validate every N loops (0: never).",
                     lower_bound=0)
flags.DEFINE_integer("eval_examples", 10_000, "Images used for periodic validation.",
                     lower_bound=1)
flags.DEFINE_bool("jit_compile", False, "Compile the train and eval steps and the "
                  "samplers with XLA (slower on CPU; the cached samplers always "
                  "compile).")
flags.DEFINE_bool("mixed_precision", False, "Compute in float16 (GPU, loss scaling) "
                  "or bfloat16 (TPU/CPU); weights, logits and loss stay float32.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy for training (multi_worker reads TF_CONFIG).")
flags.DEFINE_string("tpu", None, "--strategy=tpu: TPU address or name ('local' on "
                    "a TPU VM; default: $TPU_NAME).")
flags.DEFINE_integer("summary_samples", 16, "Images sampled into TensorBoard at the "
                     "end of training (0: none).", lower_bound=0,
                     upper_bound=MAX_SAMPLES)
flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0, upper_bound=INT32_MAX)
flags.DEFINE_string("split", None, "Split for --mode=eval/complete (default: the "
                    "dataset's held-out split).")
flags.DEFINE_integer("num_samples", 16, "Images for --mode=sample/complete.",
                     lower_bound=1, upper_bound=MAX_SAMPLES)
flags.DEFINE_integer("known_rows", 14, "--mode=complete keeps this many rows "
                     "(0..image height).", lower_bound=0)
flags.DEFINE_string("output", None, "--mode=sample/complete: the PNG to write "
                    "(default: samples.png or completions.png in --model_dir, or in "
                    "the working directory with --pretrained).")

FLAGS = flags.FLAGS
MODEL_FLAGS = ("model", "num_layers", "hidden_dims", "output_dims", "dropout",
               "kernel_width")
TRAIN_FLAGS = ("dataset", "data_dir", "image_size", "batch_size", "learning_rate",
               "lr_schedule", "warmup_steps", "steps_per_loop", "eval_every_loops",
               "eval_examples", "jit_compile", "mixed_precision", "summary_samples",
               "seed", "init_from", "channels", "num_levels", "bad_files")
TRAINING_MODES = ("train", "train_and_eval")


def _train_flag_values(present_only):
  """TrainConfig fields from the flags (only those given, with `present_only`)."""
  values = {n: FLAGS[n].value for n in TRAIN_FLAGS
            if FLAGS[n].present or not present_only}
  if values.get("channels") is not None:
    values["channels"] = int(values["channels"])
  return values


def _configs():
  """Model/train configs: saved ones in --model_dir, updated by flags given."""
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import configs, models, training
  if os.path.exists(os.path.join(FLAGS.model_dir, configs.CONFIG_FILE)):
    model_config, train_config = configs.load_config(FLAGS.model_dir)
    train_config = dataclasses.replace(train_config,
                                       **_train_flag_values(present_only=True))
    model_config = dataclasses.replace(
        model_config, **{n: FLAGS[n].value for n in MODEL_FLAGS if FLAGS[n].present})
    if FLAGS["conditional"].present and FLAGS.conditional != bool(
        model_config.num_classes):
      kind = "a class-conditional" if model_config.num_classes else "an unconditional"
      raise app.UsageError(
          f"--model_dir={FLAGS.model_dir} holds {kind} model; drop the "
          "--[no]conditional flag to resume it, or use a new --model_dir.")
  else:
    train_config = configs.TrainConfig(**_train_flag_values(present_only=False))
    conditional = FLAGS.conditional
    if FLAGS.init_from:
      source_config, _ = configs.load_config(
          training.resolve_source(FLAGS.init_from))
      model_args = {n: getattr(source_config, n) for n in MODEL_FLAGS}
      if not FLAGS["conditional"].present:
        conditional = bool(source_config.num_classes)
    else:
      model_args = _preset_args()
    model_args.update({n: FLAGS[n].value for n in MODEL_FLAGS
                       if FLAGS[n].present or
                       (FLAGS[n].value is not None and n not in model_args)})
    models.ModelConfig(**model_args)  # A bad model flag fails before data is read.
    model_config = training.model_config_for_dataset(
        train_config, conditional=conditional, **model_args)
    if FLAGS.init_from:
      training.check_init_fits(source_config, model_config, FLAGS.init_from)
  if FLAGS.epochs:
    ds, _ = training.load_split(train_config, "train")
    num_examples = int(ds.cardinality().numpy())
    steps = int(FLAGS.epochs * num_examples / train_config.batch_size + 0.5)
    train_config = dataclasses.replace(train_config, train_steps=max(steps, 1))
  elif FLAGS.train_steps:
    train_config = dataclasses.replace(train_config, train_steps=FLAGS.train_steps)
  return model_config, train_config


def _preset_args():
  """Model fields of --preset (its image shape and levels come from the dataset)."""
  from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top
  if not FLAGS.preset:
    return {}
  if FLAGS.preset not in models.PRESETS:
    raise app.UsageError(f"Unknown --preset={FLAGS.preset!r}. Expected one of "
                         f"{sorted(models.PRESETS)}.")
  return {k: v for k, v in models.PRESETS[FLAGS.preset].items()
          if k not in ("image_shape", "num_levels")}


def _check_flag_combinations():
  """Flags that contradict each other, found before anything is imported or read."""
  if FLAGS.train_steps and FLAGS.epochs:
    raise app.UsageError("Pass --train_steps or --epochs, not both.")
  training_mode = FLAGS.mode in TRAINING_MODES
  if FLAGS.pretrained and training_mode:
    raise app.UsageError(
        f"--pretrained reads a shipped model for --mode=eval/sample/complete; to "
        f"train from it, pass --init_from=pretrained:{FLAGS.pretrained} and a new "
        "--model_dir.")
  if not FLAGS.pretrained and not FLAGS.model_dir:
    raise app.UsageError(
        "--model_dir is required" + ("." if training_mode else
                                     " (or --pretrained=NAME, a shipped model)."))
  if FLAGS.init_from and not training_mode:
    raise app.UsageError("--init_from applies to --mode=train or train_and_eval.")
  if FLAGS.pretrained and FLAGS.model_dir and FLAGS.mode != "eval":
    raise app.UsageError(
        "Pass --pretrained or --model_dir for --mode=sample/complete, not both "
        "(--output names the PNG).")


def _source():
  """The trained model that eval/sample/complete read: --pretrained or --model_dir."""
  from pixelrnn_tf import pretrained  # pylint: disable=g-import-not-at-top
  return pretrained.path(FLAGS.pretrained) if FLAGS.pretrained else FLAGS.model_dir


def _check_known_rows(source):
  """--known_rows within 0..H of the model's images (the SavedModel's bounds)."""
  from pixelrnn_tf import configs  # pylint: disable=g-import-not-at-top
  height = configs.load_config(source)[0].image_shape[0]
  if FLAGS.known_rows > height:
    raise app.UsageError(
        f"--known_rows={FLAGS.known_rows} is more rows than the model's images have. "
        f"Expected 0..{height}.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    _check_flag_combinations()
  except app.UsageError as e:
    _exit(f"error: {e}", 1)
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import configs, data, distribute, pretrained, training
  try:
    if FLAGS.mode in TRAINING_MODES:
      strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)
      model_config, train_config = _configs()
      # A progress bar on a terminal; one line per loop in a log file.
      training.train(FLAGS.model_dir, model_config, train_config, strategy,
                     verbose=1 if sys.stdout.isatty() else 2)
    if FLAGS.mode in ("eval", "train_and_eval"):
      result = training.evaluate(_source(), FLAGS.split, data_dir=FLAGS.data_dir,
                                 dataset=_given("dataset"),
                                 output_dir=FLAGS.model_dir)
      print(json.dumps(result))
    if FLAGS.mode in ("sample", "complete"):
      source = _source()
      known_rows = 0
      if FLAGS.mode == "complete":
        known_rows = FLAGS.known_rows
        _check_known_rows(source)
      print(training.write_samples(source, FLAGS.num_samples, FLAGS.seed,
                                   known_rows, FLAGS.split, output=FLAGS.output,
                                   dataset=_given("dataset"),
                                   data_dir=FLAGS.data_dir))
  except training.Interrupted as e:
    _exit(str(e), 130)
  except KeyboardInterrupt:
    _exit("Interrupted.", 130)
  except (app.UsageError, configs.ConfigError, data.DataError,
          distribute.DistributeError, pretrained.PretrainedError,
          training.TrainingError, ValueError) as e:
    _exit(f"error: {e}", 1)


def _given(name):
  """The flag's value if it was given on the command line, else None."""
  return FLAGS[name].value if FLAGS[name].present else None


def _exit(message, status):
  """Ends the program with `message` on one line of stderr and exit `status`."""
  logging.flush()
  print(message, file=sys.stderr)
  sys.exit(status)


def run():
  """The console entry point: parses the flags and runs `main`."""
  cli.run_program(main, __doc__)


if __name__ == "__main__":
  run()
