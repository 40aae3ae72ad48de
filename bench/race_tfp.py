"""Equal-wall-time training race on binarized MNIST: this package vs `tfd.PixelCNN`.

Each contestant trains from scratch for `--minutes` of training wall time (TFP for
`--tfp_minutes` where given), one after the other in one process, on the same input
pipeline (`data.train_pipeline`, batch 64, seed 0) with Adam (`--learning_rate`,
default 1e-3; TFP's own with `--tfp_learning_rate`), without XLA. The rate is held
(`--lr_schedule=constant`) or, with `--lr_schedule=cosine`, decayed along half a
cosine to 0 at the end of the contestant's training time: a schedule over wall time,
not steps, so contestants of different speeds each get a whole one. `--warmup_s`
ramps it up linearly from 0 over the first seconds of training. Every
`--eval_every_s` seconds of training the clock stops and the exact validation NLL
over `--curve_examples` images is recorded; at the end every contestant is scored
on `--eval_examples` validation images. Prints a Markdown table and writes the JSON
(curves included).

Contestants:
  --model       a family of this package (default pixelcnn), `--layers` x `--hidden`
                (output layers 2*hidden; PixelCNN's block convs 3x`--kernel_width`)
  tfd.PixelCNN  TF Probability's PixelCNN++ (num_resnet=1, num_hierarchies=2,
                num_filters=`--tfp_filters`, 1 logistic, pixel values 0/1); 32 filters
                (624,582 parameters) is BASELINES.md's setup; 12 (88,782) matches
                `pixelcnn 6 x h=32` (88,065)

With `--mixed_precision`, this package's contestant computes in the machine's mixed
policy (`mixed_bfloat16` on CPU: bfloat16 layers, float32 weights and logits) and is
scored again at the end with the same weights in float32; tfd.PixelCNN stays float32
(its weight-normalized layers reject bfloat16 inputs under tf_keras' mixed policy).

With `--save_dir`, this package's trained contestant is saved there as a model_dir
(config.json, checkpoints/) that `train.py --mode=eval|sample --model_dir` and
`export.py` read.

  python -m bench.race_tfp --data_dir=../shared/data/tfds           # 30 min each
  python -m bench.race_tfp --quick                                   # smoke run
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # before TensorFlow loads

import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from bench import contestants  # pylint: disable=g-import-not-at-top
from bench import machine  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import configs  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import data  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import distribute  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import training  # pylint: disable=g-import-not-at-top


def mean_nll(nll, batches):
  """Mean over every image of `batches` of `nll(images) -> [batch]` (a tf.function)."""
  return float(np.concatenate([nll(images).numpy().astype(np.float64)
                               for images, _ in batches]).mean())


def race(contestant, train_batches, curve_batches, final_batches, minutes,
         eval_every_s, learning_rate, lr_schedule="constant", warmup_s=0.0):
  """Trains `contestant` for `minutes` of training time; returns its record.

  Before every step the learning rate is set from `train.py`'s schedule
  (`training.warmup_then`) with seconds of training for steps: linear from 0 to
  `learning_rate` over the first `warmup_s` seconds, then held ("constant") or
  decayed along half a cosine to 0 at `minutes` ("cosine").
  """

  step = contestants.train_step(contestant)
  schedule = training.warmup_then(lr_schedule, learning_rate, 60 * minutes, warmup_s)

  def set_learning_rate(trained_s):
    rate = float(schedule(trained_s))
    contestant.set_learning_rate(rate)
    return rate

  eval_nll = tf.function(contestant.nll)  # traced once, for every validation

  iterator = iter(train_batches)
  last_rate = set_learning_rate(0.0)
  step(next(iterator)[0])  # trace before the clock starts
  steps, trained_s, curve = 1, 0.0, []
  next_eval = eval_every_s
  while trained_s < 60 * minutes:
    last_rate = set_learning_rate(trained_s)
    start = time.perf_counter()
    loss = step(next(iterator)[0])
    float(loss)
    trained_s += time.perf_counter() - start
    steps += 1
    if trained_s >= next_eval or trained_s >= 60 * minutes:
      curve.append({"train_s": trained_s, "step": steps,
                    "val_nll": mean_nll(eval_nll, curve_batches)})
      print(f"  {contestant.name}: {trained_s / 60:.1f} min, step {steps}, "
            f"loss {float(loss):.2f}, val {curve[-1]['val_nll']:.2f}", flush=True)
      next_eval += eval_every_s
  batch_size = int(next(iterator)[0].shape[0])
  return {"contestant": contestant.name, "description": contestant.description,
          "params": contestants.count_params(contestant.variables),
          "train_s": trained_s, "steps": steps,
          "images_per_s": steps * batch_size / trained_s,
          "last_learning_rate": last_rate,
          "final_val_nll": mean_nll(eval_nll, final_batches), "curve": curve}


def markdown(results, eval_examples):
  return machine.markdown_table(
      ["model", "params", "steps", "train img/s",
       f"validation NLL, {eval_examples} images (nats)"],
      [[r["description"], f"{r['params']:,}", r["steps"], f"{r['images_per_s']:.1f}",
        f"{r['final_val_nll']:.2f}"] for r in results])


def score_in_float32(trained, fresh, batches):
  """Mean NLL over `batches` of `trained`'s weights in `fresh`, a float32 twin."""
  fresh.model.set_weights(trained.model.get_weights())
  return mean_nll(tf.function(fresh.nll), batches)


def save_model_dir(contestant, save_dir, data_dir, learning_rate, steps,
                   mixed_precision):
  """Writes `contestant` (one of ours) as a `train.py` model_dir at `steps`."""
  train_config = configs.TrainConfig(data_dir=data_dir, learning_rate=learning_rate,
                                      train_steps=steps,
                                      mixed_precision=mixed_precision)
  configs.save_config(save_dir, contestant.config, train_config)
  checkpoint = tf.train.Checkpoint(model=contestant.model,
                                   optimizer=contestant.optimizer)
  tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, "checkpoints"),
                             max_to_keep=1).save(checkpoint_number=steps)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="Smoke run: random data, tiny models, 3 s each.")
  parser.add_argument("--data_dir", default=None, help="TFDS data dir.")
  parser.add_argument("--minutes", type=float, default=30.0,
                      help="Training wall time per contestant.")
  parser.add_argument("--tfp_minutes", type=float, default=None,
                      help="tfd.PixelCNN's training wall time (default --minutes).")
  parser.add_argument("--eval_every_s", type=float, default=300.0,
                      help="Training seconds between curve points.")
  parser.add_argument("--curve_examples", type=int, default=2000)
  parser.add_argument("--eval_examples", type=int, default=10_000)
  parser.add_argument("--model", default="pixelcnn", choices=models.names(),
                      help="This package's contestant.")
  parser.add_argument("--layers", type=int, default=12,
                      help="Its residual blocks / layers.")
  parser.add_argument("--hidden", type=int, default=16, help="Its h.")
  parser.add_argument("--kernel_width", type=int, default=3,
                      help="PixelCNN: its block convs' width (7: 3x7, mask B).")
  parser.add_argument("--learning_rate", type=float, default=1e-3,
                      help="Adam's learning rate (TFP's too, unless given).")
  parser.add_argument("--tfp_learning_rate", type=float, default=None,
                      help="tfd.PixelCNN's learning rate (default --learning_rate).")
  parser.add_argument("--lr_schedule", default="constant",
                      choices=["constant", "cosine"],
                      help="Learning rate over each contestant's training time: "
                      "held, or cosine decay to 0 at its end.")
  parser.add_argument("--warmup_s", type=float, default=0.0,
                      help="Seconds of linear learning-rate warmup from 0.")
  parser.add_argument("--tfp_filters", type=int, default=32,
                      help="tfd.PixelCNN's num_filters.")
  parser.add_argument("--contestants", default="ours,tfp",
                      help="Who races, in order: a comma list of ours, tfp.")
  parser.add_argument("--mixed_precision", action="store_true",
                      help="Train and score this package's contestant in the "
                      "machine's mixed policy (bfloat16 on CPU).")
  parser.add_argument("--save_dir", default=None,
                      help="Save this package's contestant here as a model_dir.")
  parser.add_argument("--out", default=os.path.join("bench", "results",
                                                    "race_tfp.json"))
  args = parser.parse_args(argv)
  if args.quick:
    args.minutes, args.tfp_minutes, args.eval_every_s = 0.05, None, 1.5
    args.curve_examples = args.eval_examples = 64
    images = np.random.default_rng(0).integers(
        0, 2, (256,) + contestants.IMAGE_SHAPE, np.uint8)
    train_ds = val_ds = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": np.zeros(len(images), np.int32)})
  else:
    train_ds, _ = data.load("binarized_mnist", "train", args.data_dir)
    val_ds, _ = data.load("binarized_mnist", "validation", args.data_dir)
  if not 0 <= args.warmup_s < 60 * min(args.minutes, args.tfp_minutes or args.minutes):
    parser.error(f"--warmup_s must be >= 0 and shorter than every contestant's "
                 f"training time. Received: --warmup_s={args.warmup_s}")
  train_batches = data.train_pipeline(train_ds, 64, seed=0)
  curve_batches = data.eval_pipeline(val_ds.take(args.curve_examples).cache(), 256)
  final_batches = data.eval_pipeline(val_ds.take(args.eval_examples), 256)
  start = time.perf_counter()
  results = []
  tfp_learning_rate = args.tfp_learning_rate or args.learning_rate
  policy = (distribute.mixed_precision_policy() if args.mixed_precision
            else "float32")
  size = (1, 8) if args.quick else (args.layers, args.hidden)

  def ours(dtype_policy=policy):
    return contestants.Ours(args.model, *size, learning_rate=args.learning_rate,
                            kernel_width=args.kernel_width, dtype_policy=dtype_policy)

  makers = {"ours": ours,
            "tfp": lambda: contestants.TFP(
                init_images, 4 if args.quick else args.tfp_filters, tfp_learning_rate)}
  # TFP's data-dependent init sees a training batch; the race then starts afresh.
  init_images = next(iter(train_batches))[0]
  minutes = {"ours": args.minutes, "tfp": args.tfp_minutes or args.minutes}
  for name in args.contestants.split(","):
    keras.utils.set_random_seed(0)
    contestant = makers[name]()
    print(f"{contestant.description}: training {minutes[name]} min", flush=True)
    peak = tfp_learning_rate if name == "tfp" else args.learning_rate
    results.append(race(contestant, train_batches, curve_batches, final_batches,
                        minutes[name], args.eval_every_s, peak, args.lr_schedule,
                        args.warmup_s))
    if name == "ours" and args.mixed_precision:
      results[-1]["final_val_nll_float32"] = score_in_float32(
          contestant, ours("float32"), final_batches)
      print(f"  {contestant.name}: scored in float32 "
            f"{results[-1]['final_val_nll_float32']:.2f}", flush=True)
    if name == "ours" and args.save_dir:
      save_model_dir(contestant, args.save_dir, args.data_dir, args.learning_rate,
                     results[-1]["steps"], args.mixed_precision)
  wall_s = time.perf_counter() - start
  schedule = "" if args.lr_schedule == "constant" else f", {args.lr_schedule} over time"
  report = {"benchmark": "race_tfp", "quick": args.quick, "batch_size": 64,
            "contestants": args.contestants,
            "optimizer": f"Adam {args.learning_rate:g}{schedule}", "xla": False,
            "dtype_policy": policy,
            "tfp_optimizer": f"Adam {tfp_learning_rate:g}{schedule}",
            "lr_schedule": args.lr_schedule, "warmup_s": args.warmup_s,
            "minutes": minutes,
            "eval_examples": args.eval_examples, "wall_s": wall_s,
            "results": results}
  machine.write_report(args.out, report, markdown(results, args.eval_examples))


if __name__ == "__main__":
  main()
