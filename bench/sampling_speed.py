"""Sampling speed: this package's naive and cached samplers (with and without XLA)
vs TFP's.

Draws binary 28x28x1 images from untrained models (speed only; the weights do not
change the work) and reports images/s:

  <family> naive        `sampling.complete_naive`: one full forward pass per
                        sub-pixel, in a tf.while_loop
  <family> cached       `sampling.complete_cached` (what `sampling.sample` uses):
                        one pixel through the network per sub-pixel
  tfd.PixelCNN naive    `tfd.PixelCNN.sample` (also one pass per pixel, an eager
                        Python loop: one call), BASELINES's configuration,
                        `--tfp_samples` images (it is slow)

PixelCNN (12 x h=16 with the paper's 3x3 blocks; `--pixelcnn_num_layers`,
`--pixelcnn_hidden_dims` and `--kernel_width` change the depth, h and the block
width; its output layers have 2h maps) runs both samplers with `jit_compile`
off and on, `--num_samples` images, the first call (tracing, compiling) timed apart
from a second one. The other families (gated_pixelcnn 12 x h=16, the recurrent ones at the
paper's 7 x h=16, the multi-scale model with two 7 x h=16 Row LSTM networks) run
the naive sampler as the package runs it (without XLA,
`--naive_samples` images, one call) and the cached one with XLA off and on
(`--num_samples` images, two calls). The cached and naive samplers draw the same
images for the same seed (tests/test_sampling.py), so the ratio is pure speed.

  python -m bench.sampling_speed            # full run
  python -m bench.sampling_speed --quick    # smoke run: tiny models, 2 images of 8x8
  python -m bench.sampling_speed --families=multiscale,tfp   # a subset
  python -m bench.sampling_speed --families=pixelcnn --pixelcnn_hidden_dims=32 \
      --kernel_width=7                      # PixelCNN 12 x h=32 with 3x7 blocks
  python -m bench.sampling_speed --families=pixelcnn --pixelcnn_num_layers=16 \
      --pixelcnn_hidden_dims=32 --kernel_width=11   # the default PixelCNN
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # before TensorFlow loads

import keras  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from bench import contestants  # pylint: disable=g-import-not-at-top
from bench import machine  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import sampling  # pylint: disable=g-import-not-at-top


def time_calls(fn, num_images, calls=2):
  """Times `calls` calls of `fn`: `{"first_s", "steady_s", "images_per_s"}`.

  `steady_s` is the last call (the first one with a single call).
  """
  seconds = []
  for _ in range(calls):
    start = time.perf_counter()
    fn()
    seconds.append(time.perf_counter() - start)
  return {"num_images": num_images, "first_s": seconds[0], "steady_s": seconds[-1],
          "images_per_s": num_images / seconds[-1]}


SAMPLERS = {"naive": sampling.complete_naive, "cached": sampling.complete_cached}
FAMILIES = (*models.names(), "tfp")


def ours(family, num_layers, hidden_dims, num_samples, image_shape, sampler,
         jit_compile, calls=2, kernel_width=3):
  config = models.ModelConfig(model=family, image_shape=image_shape,
                              num_layers=num_layers, hidden_dims=hidden_dims,
                              output_dims=2 * hidden_dims, kernel_width=kernel_width)
  model = models.build(config)
  blank = tf.zeros((num_samples,) + tuple(image_shape), tf.uint8)
  draw = tf.function(lambda: SAMPLERS[sampler](model, blank, 0, 2, tf.constant([0, 0])),
                     jit_compile=jit_compile)
  result = time_calls(lambda: draw().numpy(), num_samples, calls)
  blocks = f" 3x{kernel_width} blocks" if kernel_width != 3 else ""
  result.update(sampler=f"{family} {num_layers} x h={hidden_dims}{blocks} {sampler}, "
                        f"XLA {'on' if jit_compile else 'off'}",
                params=int(model.count_params()))
  return result


def tfp_pixelcnn(num_filters, num_samples, image_shape):
  dist = contestants.tfp_pixelcnn(num_filters, image_shape)
  result = time_calls(lambda: dist.sample(num_samples, seed=0).numpy(), num_samples,
                      calls=1)
  result.update(sampler=f"tfd.PixelCNN num_filters={num_filters} naive",
                params=contestants.count_params(dist.trainable_variables))
  return result


def markdown(results):
  return machine.markdown_table(
      ["sampler", "params", "images", "first call (s)", "steady (s)", "images/s"],
      [[r["sampler"], f"{r['params']:,}", r["num_images"], f"{r['first_s']:.1f}",
        f"{r['steady_s']:.1f}", f"{r['images_per_s']:.3f}"] for r in results])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="Smoke run: tiny models, 2 images each.")
  parser.add_argument("--num_samples", type=int, default=16)
  parser.add_argument("--naive_samples", type=int, default=4,
                      help="Images for the other families' naive sampler.")
  parser.add_argument("--tfp_samples", type=int, default=4)
  parser.add_argument("--families", default=",".join(FAMILIES),
                      help="Comma-separated subset of: " + ",".join(FAMILIES))
  parser.add_argument("--pixelcnn_num_layers", type=int, default=None,
                      help="Residual blocks of the pixelcnn runs (default 12; 1 "
                      "with --quick).")
  parser.add_argument("--pixelcnn_hidden_dims", type=int, default=None,
                      help="h of the pixelcnn runs (default 16; 4 with --quick).")
  parser.add_argument("--kernel_width", type=int, default=3,
                      help="Width of the pixelcnn runs' 3 x k block convs.")
  parser.add_argument("--out", default=os.path.join("bench", "results",
                                                    "sampling.json"))
  args = parser.parse_args(argv)
  if args.quick:
    args.num_samples = args.naive_samples = args.tfp_samples = 2
  image_shape = (8, 8, 1) if args.quick else contestants.IMAGE_SHAPE
  # (family, layers, h, sampler, XLA, images, calls)
  pixelcnn = (args.pixelcnn_num_layers or (1 if args.quick else 12),
              args.pixelcnn_hidden_dims or (4 if args.quick else 16))
  gated = (1, 4) if args.quick else (12, 16)
  recurrent = (1, 4) if args.quick else (7, 16)
  runs = [("pixelcnn", *pixelcnn, sampler, xla, args.num_samples, 2)
          for sampler in SAMPLERS for xla in (False, True)]
  others = [("gated_pixelcnn", *gated), ("row_lstm", *recurrent),
            ("diagonal_bilstm", *recurrent), ("multiscale", *recurrent)]
  for family, *size in others:
    runs += [(family, *size, "naive", False, args.naive_samples, 1)]
    runs += [(family, *size, "cached", xla, args.num_samples, 2)
             for xla in (False, True)]
  families = args.families.split(",")
  unknown = set(families) - set(FAMILIES)
  if unknown:
    parser.error(f"Unknown --families {sorted(unknown)}; expected some of "
                 f"{list(FAMILIES)}")
  runs = [run for run in runs if run[0] in families]
  start = time.perf_counter()
  results = []
  for family, layers, hidden, sampler, xla, num_samples, calls in runs:
    keras.utils.set_random_seed(0)
    kernel_width = args.kernel_width if family == "pixelcnn" else 3
    results.append(ours(family, layers, hidden, num_samples, image_shape, sampler,
                        xla, calls, kernel_width))
    print(results[-1], flush=True)
  if "tfp" in families:
    results.append(tfp_pixelcnn(4 if args.quick else 32, args.tfp_samples,
                                image_shape))
    print(results[-1], flush=True)
  wall_s = time.perf_counter() - start
  report = {"benchmark": "sampling", "quick": args.quick,
            "image_shape": image_shape, "wall_s": wall_s,
            "results": results}
  machine.write_report(args.out, report, markdown(results))


if __name__ == "__main__":
  main()
