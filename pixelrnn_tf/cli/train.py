"""Trains, evaluates and samples PixelCNN / PixelRNN models.

  python train.py --model=pixelcnn --dataset=binarized_mnist --model_dir=/tmp/pcnn
  python train.py --mode=eval --model_dir=/tmp/pcnn --split=validation
  python train.py --mode=sample --model_dir=/tmp/pcnn

Eval, sample and complete need only --model_dir: the config is read from it.
"""

import dataclasses
import json
import os

import sys

from absl import app
from absl import flags
from absl import logging

flags.DEFINE_enum("mode", "train", ["train", "eval", "train_and_eval", "sample",
                                    "complete"], "What to do.")
flags.DEFINE_string("model_dir", None, "Directory for config, checkpoints, logs.",
                    required=True)
flags.DEFINE_string("model", "pixelcnn", "Model family (see pixelrnn_tf.models).")
flags.DEFINE_string("dataset", "binarized_mnist",
                    "TFDS name (binarized_mnist, mnist, fashion_mnist, cifar10, "
                    "downsampled_imagenet/32x32, downsampled_imagenet/64x64) or "
                    "folder:/path/to/images.")
flags.DEFINE_string("data_dir", None,
                    "TFDS data dir with the prepared dataset (default: "
                    "$TFDS_DATA_DIR, else TFDS's default, downloading if needed).")
flags.DEFINE_integer("image_size", None, "Folder datasets: resize+crop side.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_integer("train_steps", None, "Total optimizer steps.")
flags.DEFINE_float("epochs", None, "Train for this many passes over the train "
                   "split instead of --train_steps.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate (peak, with a schedule).")
flags.DEFINE_enum("lr_schedule", "constant", ["constant", "cosine"],
                  "Learning rate after the warmup: constant, or cosine decay to 0 "
                  "at --train_steps.")
flags.DEFINE_integer("warmup_steps", 0, "Steps of linear learning-rate warmup from 0.")
flags.DEFINE_string("preset", None, "A paper configuration from "
                    "pixelrnn_tf.models.PRESETS (e.g. row_lstm_mnist_7x16); sets "
                    "--model and the size flags, which still override it.")
flags.DEFINE_integer("num_layers", None, "Residual blocks / recurrent layers "
                     "(default: pixelcnn 16, other families 12).")
flags.DEFINE_integer("hidden_dims", None, "h: residual streams have 2h maps "
                     "(default: pixelcnn 32, other families 16).")
flags.DEFINE_integer("output_dims", None, "Maps of the 1x1 output layers "
                     "(default: pixelcnn 64, other families 32).")
flags.DEFINE_float("dropout", None, "Dropout rate on every residual branch while "
                   "training (default 0: none).")
flags.DEFINE_integer("kernel_width", None, "PixelCNN: width of the residual blocks' "
                     "masked conv, 3 x this (odd; default 11; 3 is the paper's 3x3). "
                     "Wider shrinks the blind spot.")
flags.DEFINE_bool("conditional", False, "Condition the model on the dataset's class "
                  "labels (gated_pixelcnn); samples cycle through the classes.")
flags.DEFINE_integer("steps_per_loop", 500, "Steps between checkpoints/summaries.")
flags.DEFINE_integer("eval_every_loops", 1, "Validate every N loops (0: never).")
flags.DEFINE_integer("eval_examples", 10_000, "Images used for periodic validation.")
flags.DEFINE_bool("jit_compile", False, "Compile the train and eval steps and the "
                  "samplers with XLA (slower on CPU; PixelCNN's cached sampler "
                  "always compiles).")
flags.DEFINE_bool("mixed_precision", False, "Compute in float16 (GPU, loss scaling) "
                  "or bfloat16 (TPU/CPU); weights, logits and loss stay float32.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy for training (multi_worker reads TF_CONFIG).")
flags.DEFINE_string("tpu", None, "--strategy=tpu: TPU address or name ('local' on "
                    "a TPU VM; default: $TPU_NAME).")
flags.DEFINE_integer("summary_samples", 16, "Images sampled into TensorBoard at the "
                     "end of training (0: none).")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_string("split", None, "Split for --mode=eval/complete (default: the "
                    "dataset's held-out split).")
flags.DEFINE_integer("num_samples", 16, "Images for --mode=sample/complete.")
flags.DEFINE_integer("known_rows", 14, "--mode=complete keeps this many rows.")

FLAGS = flags.FLAGS
MODEL_FLAGS = ("model", "num_layers", "hidden_dims", "output_dims", "dropout",
               "kernel_width")
TRAIN_FLAGS = ("dataset", "data_dir", "image_size", "batch_size", "learning_rate",
               "lr_schedule", "warmup_steps", "steps_per_loop", "eval_every_loops",
               "eval_examples", "jit_compile", "mixed_precision", "summary_samples",
               "seed")


def _configs():
  """Model/train configs: saved ones in --model_dir, updated by flags given."""
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import data, models, training
  if os.path.exists(os.path.join(FLAGS.model_dir, training.CONFIG_FILE)):
    model_config, train_config = training.load_config(FLAGS.model_dir)
    train_config = dataclasses.replace(
        train_config, **{n: FLAGS[n].value for n in TRAIN_FLAGS if FLAGS[n].present})
    model_config = dataclasses.replace(
        model_config, **{n: FLAGS[n].value for n in MODEL_FLAGS if FLAGS[n].present})
    if FLAGS["conditional"].present and FLAGS.conditional != bool(
        model_config.num_classes):
      kind = "a class-conditional" if model_config.num_classes else "an unconditional"
      raise app.UsageError(
          f"--model_dir={FLAGS.model_dir} holds {kind} model; drop the "
          "--[no]conditional flag to resume it, or use a new --model_dir.")
  else:
    train_config = training.TrainConfig(
        **{n: FLAGS[n].value for n in TRAIN_FLAGS})
    model_args = _preset_args()
    model_args.update({n: FLAGS[n].value for n in MODEL_FLAGS
                       if FLAGS[n].present or
                       (FLAGS[n].value is not None and n not in model_args)})
    models.ModelConfig(**model_args)  # A bad model flag fails before data is read.
    model_config = training.model_config_for_dataset(
        train_config, conditional=FLAGS.conditional, **model_args)
  if FLAGS.epochs:
    ds, _ = data.load(train_config.dataset, "train", train_config.data_dir,
                      train_config.image_size)
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.train_steps and FLAGS.epochs:
    raise app.UsageError("Pass --train_steps or --epochs, not both.")
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import data, distribute, training
  try:
    if FLAGS.mode in ("train", "train_and_eval"):
      strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)
      model_config, train_config = _configs()
      training.train(FLAGS.model_dir, model_config, train_config, strategy)
    if FLAGS.mode in ("eval", "train_and_eval"):
      result = training.evaluate(FLAGS.model_dir, FLAGS.split,
                                 data_dir=FLAGS.data_dir)
      print(json.dumps(result))
    if FLAGS.mode in ("sample", "complete"):
      known_rows = FLAGS.known_rows if FLAGS.mode == "complete" else 0
      print(training.write_samples(FLAGS.model_dir, FLAGS.num_samples, FLAGS.seed,
                                   known_rows, FLAGS.split))
  except (data.DataError, distribute.DistributeError, training.TrainingError,
          ValueError) as e:
    logging.error("%s", e)
    raise SystemExit(f"error: {e}") from None


def run():
  """The console entry point: parses the flags and runs `main`."""
  # absl prints the __main__ module's docstring as --help's usage: a console
  # script or the top-level wrapper has none of its own.
  sys.modules["__main__"].__doc__ = __doc__
  app.run(main)


if __name__ == "__main__":
  run()
