"""Training-step throughput of every model family, with and without XLA and mixed
precision.

Times `model.train_on_batch` (Adam, `NegativeLogLikelihood`) on a fixed batch of
random images (binary 28x28x1 unless `--image_shape`/`--num_levels` say otherwise),
for the families at similar parameter counts (about 72k-93k), each with
`jit_compile` off and on and in float32 and in the machine's mixed policy
(`mixed_bfloat16` on CPU/TPU, `mixed_float16` on GPU). Prints a Markdown table; the
numbers and the machine go to a JSON file.

  python -m bench.step_time           # full run: batch 64, 1 warm-up + 5 timed steps
  python -m bench.step_time --quick   # smoke run: tiny models, batch 8, 2 steps;
                                      # XLA and mixed precision on PixelCNN only
  python -m bench.step_time --out=/tmp/step_time.json
  python -m bench.step_time --models=pixelcnn,row_lstm --plain_only  # float32, no XLA
  python -m bench.step_time --models=pixelcnn --num_layers=16 --hidden_dims=32 \
    --output_dims=64 --kernel_width=11 --no_xla  # another size; float32 and mixed
  python -m bench.step_time --models=gated_pixelcnn --image_shape=32,32,3 \
    --num_levels=256 --num_classes=10 --no_xla  # CIFAR-10's shape, class-conditional

Compile time is the first step (XLA compilation included); throughput is the timed
steps only. On shared machines compare the ratios within one run, not absolutes.
"""

import argparse
import itertools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # before TensorFlow loads

import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from bench import machine  # pylint: disable=g-import-not-at-top
from bench import sizes  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import distribute  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import distributions  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top

# (model, num_layers, hidden_dims) of every family: similar parameter counts.
FULL = tuple((name, *size) for name, size in sizes.family_sizes().items())
QUICK = tuple((name, 1, 8) for name, _, _ in FULL)


def time_model(name, num_layers, hidden_dims, batch_size, warmup, steps, jit_compile,
               policy, output_dims=32, kernel_width=3, image_shape=(28, 28, 1),
               num_levels=2, num_classes=0, seed=0):
  """Returns a result dict for one model: params, compile and step times. The
  batch holds random `image_shape` images of `num_levels` levels (and random
  labels of `num_classes` classes for a class-conditional model, if > 0)."""
  keras.utils.set_random_seed(seed)
  config = models.ModelConfig(model=name, image_shape=image_shape,
                              num_levels=num_levels, num_layers=num_layers,
                              hidden_dims=hidden_dims, output_dims=output_dims,
                              kernel_width=kernel_width, num_classes=num_classes)
  with distribute.dtype_policy(policy):
    model = models.build(config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=distributions.NegativeLogLikelihood(num_levels),
                  jit_compile=jit_compile)
  rng = np.random.default_rng(seed)
  images = rng.integers(0, num_levels, (batch_size,) + tuple(image_shape), np.uint8)
  inputs = images
  if num_classes:
    inputs = {"images": images,
              "labels": rng.integers(0, num_classes, batch_size, np.int32)}
  start = time.perf_counter()
  model.train_on_batch(inputs, images)  # traces and compiles
  compile_s = time.perf_counter() - start
  for _ in range(warmup):
    model.train_on_batch(inputs, images)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    loss = model.train_on_batch(inputs, images)
    times.append(time.perf_counter() - start)
  if not np.isfinite(float(loss)):
    raise RuntimeError(f"{name}: non-finite loss {loss}")
  step_s = float(np.mean(times))
  return {"model": name, "jit_compile": jit_compile, "policy": policy,
          "num_layers": num_layers, "hidden_dims": hidden_dims,
          "output_dims": output_dims, "kernel_width": kernel_width,
          "params": int(model.count_params()), "batch_size": batch_size,
          "compile_s": compile_s, "step_ms_mean": 1e3 * step_s,
          "step_ms_median": 1e3 * float(np.median(times)),
          "images_per_s": batch_size / step_s, "timed_steps": steps}


def markdown(results):
  return machine.markdown_table(
      ["model", "XLA", "precision", "layers x h", "params", "compile (s)",
       "step (ms, mean)", "step (ms, median)", "images/s"],
      [[r["model"], "on" if r["jit_compile"] else "off", r["policy"],
        f"{r['num_layers']} x {r['hidden_dims']}" + (
            f", 3x{r['kernel_width']} blocks" if r.get("kernel_width", 3) != 3
            else ""), f"{r['params']:,}",
        f"{r['compile_s']:.1f}", f"{r['step_ms_mean']:.0f}",
        f"{r['step_ms_median']:.0f}", f"{r['images_per_s']:.1f}"] for r in results])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="Smoke run: tiny models, batch 8, 2 timed steps.")
  parser.add_argument("--batch_size", type=int, default=None,
                      help="Images per step (default 64; 8 with --quick).")
  parser.add_argument("--steps", type=int, default=None,
                      help="Timed steps per model (default 5; 2 with --quick).")
  parser.add_argument("--warmup", type=int, default=1,
                      help="Untimed steps after the compiling one.")
  parser.add_argument("--models", default=None,
                      help="Comma-separated families to time (default: all).")
  parser.add_argument("--plain_only", action="store_true",
                      help="Only float32 without XLA.")
  parser.add_argument("--no_xla", action="store_true",
                      help="Only without XLA (float32 and mixed precision).")
  parser.add_argument("--num_layers", type=int, default=None,
                      help="Layers of every family timed (default: the table's).")
  parser.add_argument("--hidden_dims", type=int, default=None,
                      help="Hidden maps of every family timed (default: the table's).")
  parser.add_argument("--output_dims", type=int, default=32,
                      help="Maps of the 1x1 output layers.")
  parser.add_argument("--kernel_width", type=int, default=3,
                      help="PixelCNN's residual-block conv width (3: the paper's 3x3).")
  parser.add_argument("--image_shape", default="28,28,1",
                      help="Height,width,channels of the random images.")
  parser.add_argument("--num_levels", type=int, default=2,
                      help="Levels per channel (2: binary, 256: 8-bit).")
  parser.add_argument("--num_classes", type=int, default=0,
                      help="Classes of a class-conditional model (0: unconditional; "
                           "gated_pixelcnn only).")
  parser.add_argument("--out", default=os.path.join("bench", "results",
                                                    "step_time.json"),
                      help="JSON output path.")
  args = parser.parse_args(argv)
  try:
    image_shape = tuple(int(n) for n in args.image_shape.split(","))
  except ValueError:
    image_shape = ()
  if len(image_shape) != 3 or min(image_shape) < 1:
    parser.error(f"--image_shape={args.image_shape!r}: expected three positive "
                 "integers, height,width,channels (e.g. 32,32,3)")
  families = QUICK if args.quick else FULL
  if args.models:
    names = args.models.split(",")
    unknown = set(names) - {name for name, _, _ in families}
    if unknown:
      parser.error(f"unknown --models {sorted(unknown)}; expected some of "
                   f"{[name for name, _, _ in families]}")
    families = tuple(f for f in families if f[0] in names)
  families = tuple((name, args.num_layers or num_layers, args.hidden_dims or hidden_dims)
                   for name, num_layers, hidden_dims in families)
  batch_size = args.batch_size or (8 if args.quick else 64)
  steps = args.steps or (2 if args.quick else 5)
  warmup = 0 if args.quick else args.warmup
  start = time.perf_counter()
  results = []
  mixed = distribute.mixed_precision_policy()
  for name, num_layers, hidden_dims in families:
    for jit_compile, policy in itertools.product((False, True), ("float32", mixed)):
      plain = not jit_compile and policy == "float32"
      # The smoke run tries XLA and mixed precision on the first family only.
      if not plain and (args.plain_only or args.quick and name != families[0][0]):
        continue
      if jit_compile and args.no_xla:
        continue
      results.append(time_model(name, num_layers, hidden_dims, batch_size,
                                warmup, steps, jit_compile, policy,
                                args.output_dims, args.kernel_width, image_shape,
                                args.num_levels, args.num_classes))
      print(f"{name} XLA={jit_compile} {policy}: "
            f"{results[-1]['images_per_s']:.1f} images/s", flush=True)
  wall_s = time.perf_counter() - start
  report = {"benchmark": "train_step", "image_shape": image_shape,
            "num_levels": args.num_levels, "num_classes": args.num_classes,
            "quick": args.quick, "warmup_steps": warmup, "wall_s": wall_s,
            "results": results}
  machine.write_report(args.out, report, markdown(results))


if __name__ == "__main__":
  main()
