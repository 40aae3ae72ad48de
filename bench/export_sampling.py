"""Sampling through a SavedModel as TF Serving runs it: the `sample` signature of a
default export (no XLA) against the naive cost, H*W*C full forward passes of the
same export's `serving_default`, measured in the same run.

The model is the default PixelCNN (random weights: the work does not depend on
them) or a shipped one (`--pretrained`). Reports the `sample` time of
`--num_samples` images (median of `--repeats` calls after a first, tracing one),
one forward pass of as many images (median of seven), and the ratio
`H*W*C * forward / sample`: how many times faster than the naive sampler the cached
one runs in the export.

  python -m bench.export_sampling                    # the default PixelCNN
  python -m bench.export_sampling --pretrained=pixelcnn_binarized_mnist
  python -m bench.export_sampling --quick            # smoke run: a tiny model
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # before TensorFlow loads

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from bench import machine  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import configs  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import export  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import pretrained  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import training  # pylint: disable=g-import-not-at-top


def random_model_dir(model_dir, model_config):
  """A model_dir holding `model_config` with random weights at step 1."""
  configs.save_config(model_dir, model_config, configs.TrainConfig())
  _, optimizer, manager = training.build_and_restore(model_dir, model_config)
  optimizer.iterations.assign(1)
  manager.save(checkpoint_number=1)
  return model_dir


def seconds(fn, repeats):
  """The median wall time of `repeats` calls of `fn`."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--pretrained", help="A shipped model instead of a random "
                      "default PixelCNN.")
  parser.add_argument("--num_samples", type=int, default=16)
  parser.add_argument("--repeats", type=int, default=3,
                      help="Timed `sample` calls after the first.")
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--out", default=os.path.join("bench", "results",
                                                    "export_sampling.json"))
  args = parser.parse_args(argv)
  start = time.time()
  with tempfile.TemporaryDirectory() as tmp:
    if args.pretrained:
      source = pretrained.path(args.pretrained)
    else:
      size = (dict(num_layers=1, hidden_dims=4, output_dims=8, image_shape=(8, 8, 1))
              if args.quick else {})
      source = random_model_dir(os.path.join(tmp, "model"),
                                models.ModelConfig(**size))
    model_config, _ = configs.load_config(source)
    loaded = tf.saved_model.load(export.export(source, os.path.join(tmp, "e")))
    sample = lambda: loaded.signatures["sample"](
        num_samples=tf.constant(args.num_samples), seed=tf.constant(0))
    first = seconds(sample, 1)
    sample_s = seconds(sample, 1 if args.quick else args.repeats)
    images = tf.constant(np.random.default_rng(0).integers(
        0, model_config.num_levels, (args.num_samples, *model_config.image_shape),
        np.uint8))
    forward = lambda: loaded.signatures["serving_default"](images=images)
    forward()
    forward_s = seconds(forward, 7)
  sub_pixels = int(np.prod(model_config.image_shape))
  result = {"model": args.pretrained or "default pixelcnn (random weights)",
            "num_samples": args.num_samples,
            "first_sample_s": first, "sample_s": sample_s,
            "forward_s": forward_s, "sub_pixels": sub_pixels,
            "naive_s": sub_pixels * forward_s,
            "speedup_vs_naive": sub_pixels * forward_s / sample_s}
  report = {"quick": args.quick, "results": [result],
            "wall_s": time.time() - start}
  table = machine.markdown_table(
      ["model", "images", "sample (s)", "one forward (s)", "naive = H*W*C forwards (s)",
       "cached / naive speed"],
      [[result["model"], args.num_samples, f"{sample_s:.2f}", f"{forward_s:.4f}",
        f"{result['naive_s']:.1f}", f"{result['speedup_vs_naive']:.1f}x"]])
  machine.write_report(args.out, report, table)


if __name__ == "__main__":
  main()
