"""Scoring throughput: exported SavedModel vs the in-process Keras model.

Scores the 10,000 binarized MNIST validation images with a PixelCNN of 12
residual blocks, h=16, the paper's 3x3 blocks (43k parameters, the package's
default size until 2026-12-06), 28x28x1, random weights (the numbers are about
speed, not quality), in one process, the same batches each way:

  keras (tf.function)      `distributions.log_prob(model(x))` in a tf.function
  keras (tf.function+XLA)  the same with `jit_compile=True` (as evaluation with
                           --jit_compile)
  SavedModel serving_default   uint8 images through the `tf.saved_model.load`ed export
  SavedModel log_prob_encoded  PNG bytes, decoded in the graph (encoding not timed)

Every way runs one untimed warm-up batch, then `--repeats` timed passes over all
images, interleaved; the best pass is reported (the machine is shared). The JSON
also records every pass, the largest relative difference of the exported
log-probabilities from Keras's, and the wall time.

  python -m bench.score_throughput            # full run, writes the JSON below
  python -m bench.score_throughput --quick    # smoke run: tiny model, 512 random images
  python -m bench.score_throughput --out=/tmp/score_throughput.json
"""

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # before TensorFlow loads

import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from bench import machine  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import configs  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import data  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import distributions  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import export  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import training  # pylint: disable=g-import-not-at-top

DEFAULT_OUT = os.path.join("bench", "results", "score_throughput.json")


def load_images(quick, data_dir, limit):
  """uint8 `(N, 28, 28, 1)`: the validation split, or random bits for --quick."""
  if quick:
    return np.random.default_rng(0).integers(0, 2, (limit, 28, 28, 1), np.uint8)
  ds, _ = data.load("binarized_mnist", "validation", data_dir)
  images = np.stack([ex["image"] for ex in ds.take(limit).as_numpy_iterator()])
  return images.astype(np.uint8)


def make_export(model_config, root):
  """Random-weight model_dir (config + checkpoint at step 0) and its export."""
  model_dir = os.path.join(root, "model")
  configs.save_config(model_dir, model_config, configs.TrainConfig())
  keras.utils.set_random_seed(0)
  model, _, manager = training.build_and_restore(model_dir, model_config)
  manager.save(checkpoint_number=0)
  start = time.perf_counter()
  path = export.export(model_dir, os.path.join(root, "export"))
  return model, path, time.perf_counter() - start


def scorers(model, num_levels, path):
  """name -> `(fn(batch) -> log_prob numpy (B,), input kind)`."""
  def keras_fn(jit):
    fn = tf.function(
        lambda x: distributions.log_prob(model(x, training=False), x, num_levels),
        jit_compile=jit)
    return lambda x: fn(tf.constant(x)).numpy()

  loaded = tf.saved_model.load(path)
  serving = loaded.signatures["serving_default"]
  encoded = loaded.signatures["log_prob_encoded"]
  return {
      "keras (tf.function)": (keras_fn(False), "images"),
      "keras (tf.function+XLA)": (keras_fn(True), "images"),
      "SavedModel serving_default": (
          lambda x: serving(images=tf.constant(x))["log_prob"].numpy(), "images"),
      "SavedModel log_prob_encoded": (
          lambda b: encoded(image_bytes=tf.constant(b))["log_prob"].numpy(), "png"),
  }


def one_pass(fn, batches):
  start = time.perf_counter()
  out = np.concatenate([fn(b) for b in batches])
  return time.perf_counter() - start, out


def markdown(results, reference):
  return machine.markdown_table(
      ["way", "images/s (best pass)", "ms/batch", "vs keras (tf.function)",
       "max rel. diff of log p"],
      [[r["way"], f"{r['images_per_s']:.0f}", f"{r['ms_per_batch']:.1f}",
        f"{r['images_per_s'] / reference:.2f}x", f"{r['max_rel_diff']:.1e}"]
       for r in results])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="Smoke run: tiny model, 512 random images, 1 pass, no "
                      "JSON unless --out is given.")
  parser.add_argument("--num_images", type=int, default=None,
                      help="Images scored per pass (default 10000; 512 --quick).")
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=None,
                      help="Timed passes per way (default 2; 1 with --quick).")
  parser.add_argument("--data_dir", default=None,
                      help="TFDS data dir (default: $TFDS_DATA_DIR).")
  parser.add_argument("--out", default=None,
                      help=f"JSON output path (default {DEFAULT_OUT}; none for "
                      "--quick).")
  args = parser.parse_args(argv)
  wall_start = time.perf_counter()
  num_images = args.num_images or (512 if args.quick else 10_000)
  repeats = args.repeats or (1 if args.quick else 2)
  out_path = args.out or (None if args.quick else DEFAULT_OUT)
  model_config = (models.ModelConfig(num_layers=1, hidden_dims=4, output_dims=8,
                                     kernel_width=3) if args.quick else
                  models.ModelConfig(num_layers=12, hidden_dims=16, output_dims=32,
                                     kernel_width=3))
  images = load_images(args.quick, args.data_dir, num_images)
  # 8-bit PNGs of the binary images (0 -> 0, 1 -> 255), encoded before timing.
  pngs = [tf.io.encode_png(image * 255).numpy() for image in images]
  batches = {
      "images": [images[i:i + args.batch_size]
                 for i in range(0, len(images), args.batch_size)],
      "png": [pngs[i:i + args.batch_size]
              for i in range(0, len(pngs), args.batch_size)],
  }
  root = tempfile.mkdtemp(prefix="score_throughput_")
  try:
    model, path, export_s = make_export(model_config, root)
    ways = scorers(model, model_config.num_levels, path)
    for fn, kind in ways.values():  # warm-up: tracing, XLA compilation
      fn(batches[kind][0])
    passes = {name: [] for name in ways}
    outputs = {}
    for _ in range(repeats):
      for name, (fn, kind) in ways.items():
        seconds, outputs[name] = one_pass(fn, batches[kind])
        passes[name].append(seconds)
        print(f"{name}: {len(images) / seconds:.0f} images/s", flush=True)
  finally:
    shutil.rmtree(root, ignore_errors=True)
  reference = outputs["keras (tf.function)"]
  results = []
  for name, seconds in passes.items():
    best = min(seconds)
    rel = np.abs(outputs[name] - reference) / np.abs(reference)
    results.append({"way": name, "images_per_s": len(images) / best,
                    "ms_per_batch": 1e3 * best / len(batches["images"]),
                    "pass_seconds": seconds, "max_rel_diff": float(rel.max())})
  wall_s = time.perf_counter() - wall_start
  report = {
      "benchmark": "score_throughput", "quick": args.quick,
      "data": "random bits" if args.quick else "binarized_mnist validation",
      "num_images": len(images), "batch_size": args.batch_size,
      "repeats": repeats, "model": json.loads(model_config.to_json()),
      "params": int(model.count_params()), "export_s": export_s,
      "mean_nll_nats": float(-reference.mean()), "wall_s": wall_s,
      "results": results,
  }
  table = (markdown(results, results[0]["images_per_s"]) +
           f"\n\n{report['params']:,} params, {len(images)} images, batch "
           f"{args.batch_size}, best of {repeats}; export {export_s:.0f} s")
  machine.write_report(out_path, report, table)


if __name__ == "__main__":
  main()
