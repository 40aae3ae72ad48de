"""Forward + backward time of `MaskedConv2D`, which convolves only the kernel taps its
mask can leave non-zero, against the full masked kernel in a 'same' convolution.

The baseline is what the layer computed before it skipped the taps: `kernel * mask`
over the whole `(kh, kw)` window, rows below the centre included. Both compute the
same outputs (tests/test_masks.py); each timed call is a gradient of the summed
squared output with respect to the input and the kernel, the two alternating so that
load on the machine hits both alike. Prints a Markdown table, writes JSON.

  python -m bench.masked_conv_speed          # batch 64, 3 warm-up + 50 timed calls each
  python -m bench.masked_conv_speed --quick  # smoke run: batch 2, 2 timed calls
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # before TensorFlow loads

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from bench import machine  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import masks  # pylint: disable=g-import-not-at-top
from pixelrnn_tf.layers import MaskedConv2D  # pylint: disable=g-import-not-at-top

# (what it is in a model, kernel, mask, image side, in maps, out maps, colour groups)
LAYERS = (
    ("PixelCNN input conv, h=16", (7, 7), "A", 28, 1, 32, 1),
    ("PixelCNN block conv, h=16", (3, 3), "B", 28, 16, 16, 1),
    ("PixelCNN block conv, h=32", (3, 3), "B", 28, 32, 32, 1),
    ("PixelCNN block conv, h=48", (3, 3), "B", 28, 48, 48, 1),
    ("Gated horizontal / Row LSTM input-to-state, h=16", (1, 3), "B", 28, 32, 64, 1),
    ("PixelCNN block conv, RGB, h=32", (3, 3), "B", 32, 32, 32, 3),
    ("PixelCNN block conv, RGB, h=128 (CIFAR-10 size)", (3, 3), "B", 32, 128, 128, 3),
    ("Row LSTM input-to-state, RGB, h=128", (1, 3), "B", 32, 256, 512, 3),
)


def gradient_fn(conv):
  """A `tf.function` returning d(sum(conv(x)^2)) / (x, kernel)."""
  @tf.function
  def grads(x, kernel):
    with tf.GradientTape() as tape:
      tape.watch([x, kernel])
      y = conv(x, kernel)
      loss = tf.reduce_sum(y * y)
    return tape.gradient(loss, [x, kernel])
  return grads


def time_layer(kernel_size, mask_type, side, in_maps, out_maps, groups, batch_size,
               warmup, calls):
  """Returns the median seconds per call of the kept-taps and full convolutions."""
  layer = MaskedConv2D(out_maps, kernel_size, mask_type=mask_type, num_groups=groups,
                       use_bias=False)
  x = tf.random.stateless_normal((batch_size, side, side, in_maps), seed=(0, 1))
  layer.build(x.shape)
  mask = masks.causal_kernel_mask(kernel_size, in_maps, out_maps, mask_type, groups)
  contestants = {
      "kept": gradient_fn(layer.convolution_op),
      "full": gradient_fn(lambda x, k: tf.nn.conv2d(x, k * mask, 1, "SAME")),
  }
  np.testing.assert_allclose(
      *(f(x, layer.kernel)[0].numpy() for f in contestants.values()),
      rtol=1e-4, atol=1e-3)
  times = {name: [] for name in contestants}
  for call in range(warmup + calls):
    for name, grads in contestants.items():
      start = time.perf_counter()
      grads(x, layer.kernel)[0].numpy()
      if call >= warmup:
        times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="Smoke run: batch 2, 2 timed calls, two layers.")
  parser.add_argument("--batch_size", type=int, default=None,
                      help="Images per call (default 64; 2 with --quick).")
  parser.add_argument("--calls", type=int, default=None,
                      help="Timed calls per convolution (default 50; 2 with --quick).")
  parser.add_argument("--out", default=os.path.join("bench", "results",
                                                    "masked_conv.json"),
                      help="JSON output path.")
  args = parser.parse_args(argv)
  batch_size = args.batch_size or (2 if args.quick else 64)
  calls = args.calls or (2 if args.quick else 50)
  warmup = 1 if args.quick else 3
  start = time.perf_counter()
  results = []
  for name, kernel_size, mask_type, side, in_maps, out_maps, groups in (
      LAYERS[:2] if args.quick else LAYERS):
    seconds = time_layer(kernel_size, mask_type, side, in_maps, out_maps, groups,
                         batch_size, warmup, calls)
    results.append({"layer": name, "kernel": list(kernel_size), "mask": mask_type,
                    "image_side": side, "in_maps": in_maps, "out_maps": out_maps,
                    "groups": groups, "full_ms": 1e3 * seconds["full"],
                    "kept_ms": 1e3 * seconds["kept"],
                    "speedup": seconds["full"] / seconds["kept"]})
    print(f"{name}: {results[-1]['speedup']:.2f}x", flush=True)
  report = {"benchmark": "masked_conv", "quick": args.quick,
            "batch_size": batch_size, "timed_calls": calls, "warmup_calls": warmup,
            "wall_s": time.perf_counter() - start, "results": results}
  table = machine.markdown_table(
      ["layer", "kernel", "mask", "maps in -> out", "full kernel (ms)",
       "kept taps (ms)", "speed-up"],
      [[r["layer"], "x".join(map(str, r["kernel"])), r["mask"],
        f"{r['in_maps']} -> {r['out_maps']}", f"{r['full_ms']:.1f}",
        f"{r['kept_ms']:.1f}", f"{r['speedup']:.2f}x"] for r in results])
  machine.write_report(args.out, report, table)


if __name__ == "__main__":
  main()
