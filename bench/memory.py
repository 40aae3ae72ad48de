"""Peak host memory of a training step at batch 64, per model (and `tfd.PixelCNN`).

Each model runs in a fresh subprocess: build it, note the resident set size (RSS),
run `--steps` Adam steps (no XLA) on random binary 28x28x1 images, and report the
peak RSS (`ru_maxrss`) and the growth over the built model. On a GPU the device's
peak (`tf.config.experimental.get_memory_info`) is reported too.

  python -m bench.memory            # full run: the step_time.py sizes, batch 64
  python -m bench.memory --quick    # smoke run: tiny models, batch 8
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # before TensorFlow loads

from bench import machine  # pylint: disable=g-import-not-at-top
from bench import sizes  # pylint: disable=g-import-not-at-top

# name -> (num_layers, hidden_dims) as in step_time.py; tfd.PixelCNN: num_filters.
FULL = {**sizes.family_sizes(), "tfd.PixelCNN": (None, 32)}
# --quick: one model of this package and TFP, tiny (both code paths, two subprocesses).
QUICK = {"pixelcnn": (1, 8), "tfd.PixelCNN": (None, 4)}


def _rss_mib():
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_one(name, size, batch_size, steps):
  """Runs in the subprocess: returns the memory record of one model."""
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from bench import contestants  # pylint: disable=g-import-not-at-top

  keras.utils.set_random_seed(0)
  images = np.random.default_rng(0).integers(
      0, 2, (batch_size,) + contestants.IMAGE_SHAPE, np.uint8)
  if name == "tfd.PixelCNN":
    contestant = contestants.TFP(num_filters=size[1])
  else:
    contestant = contestants.Ours(name, *size, output_dims=32)
  step = contestants.train_step(contestant)
  built_mib = _rss_mib()
  for _ in range(steps):
    float(step(images))
  record = {"model": name, "size": list(size), "batch_size": batch_size,
            "params": contestants.count_params(contestant.variables),
            "rss_built_mib": built_mib,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
  record["step_growth_mib"] = record["peak_rss_mib"] - built_mib
  if tf.config.list_physical_devices("GPU"):
    record["gpu_peak_mib"] = (
        tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20)
  return record


def markdown(results):
  return machine.markdown_table(
      ["model", "params", "batch", "RSS after build (MiB)", "peak RSS (MiB)",
       "growth in training steps (MiB)"],
      [[r["model"], f"{r['params']:,}", r["batch_size"], f"{r['rss_built_mib']:.0f}",
        f"{r['peak_rss_mib']:.0f}", f"{r['step_growth_mib']:.0f}"] for r in results])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="Smoke run.")
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
  parser.add_argument("--out", default=os.path.join("bench", "results",
                                                    "memory.json"))
  args = parser.parse_args(argv)
  sizes = QUICK if args.quick else FULL
  batch_size = 8 if args.quick else 64
  if args.one:  # the subprocess
    print(json.dumps(measure_one(args.one, sizes[args.one], batch_size, args.steps)))
    return
  start = time.perf_counter()
  results = []
  for name in sizes:
    command = [sys.executable, "-m", "bench.memory", f"--one={name}",
               f"--steps={args.steps}"] + (["--quick"] if args.quick else [])
    output = subprocess.run(command, check=True, capture_output=True, text=True)
    results.append(json.loads(output.stdout.strip().splitlines()[-1]))
    print(results[-1], flush=True)
  wall_s = time.perf_counter() - start
  report = {"benchmark": "memory", "quick": args.quick, "wall_s": wall_s,
            "results": results}
  machine.write_report(args.out, report, markdown(results))


if __name__ == "__main__":
  main()
