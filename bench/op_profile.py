"""Where a training step's time goes: op-level profile of one model's gradient step.

Builds a model family in a TF1-style graph (forward pass, sigmoid/softmax NLL of the
logits, `tf.gradients` of every weight), runs it once with `FULL_TRACE` and sums the
executed ops' times by op type (every iteration of a `tf.scan` counts). The op times
of the two cores add up, so their total exceeds the wall time of the step. Random
binary 28x28x1 images at batch 64, as in bench/step_time.py.

  python -m bench.op_profile --model=diagonal_bilstm --layers=7 --hidden=16
  python -m bench.op_profile --quick    # smoke run: tiny PixelCNN, batch 4

This is how the strided-slice gradients (`StridedSliceGrad`) were found to dominate
the Diagonal BiLSTM's and the Gated PixelCNN's steps (docs/RESULTS.md, step time).
"""

import argparse
import collections
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # before TensorFlow loads

import tensorflow as tf  # pylint: disable=g-import-not-at-top

from bench import machine  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import distributions  # pylint: disable=g-import-not-at-top
from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top


def profile(model_name, num_layers, hidden_dims, batch_size, top):
  """Returns `{"step_s", "op_ms_total", "ops": [{"op", "ms", "count"}]}`."""
  tf.compat.v1.disable_eager_execution()
  config = models.ModelConfig(model=model_name, num_layers=num_layers,
                              hidden_dims=hidden_dims)
  model = models.build(config)
  images = tf.cast(tf.random.uniform((batch_size,) + config.image_shape) > 0.5,
                   tf.uint8)
  loss = distributions.NegativeLogLikelihood(config.num_levels)(images, model(images))
  gradients = tf.gradients(loss, model.trainable_variables)
  session = tf.compat.v1.Session()
  session.run(tf.compat.v1.global_variables_initializer())
  session.run(gradients)  # warm-up
  start = time.perf_counter()
  session.run(gradients)
  step_s = time.perf_counter() - start
  metadata = tf.compat.v1.RunMetadata()
  session.run(gradients, run_metadata=metadata, options=tf.compat.v1.RunOptions(
      trace_level=tf.compat.v1.RunOptions.FULL_TRACE))
  micros, counts = collections.Counter(), collections.Counter()
  for device in metadata.step_stats.dev_stats:
    for node in device.node_stats:
      label = node.timeline_label  # "name = Op(inputs)"
      op = label.split("=")[-1].split("(")[0].strip() if "=" in label else node.node_name
      micros[op] += node.all_end_rel_micros
      counts[op] += 1
  return {"model": model_name, "num_layers": num_layers, "hidden_dims": hidden_dims,
          "batch_size": batch_size, "params": int(model.count_params()),
          "step_s": step_s, "op_ms_total": sum(micros.values()) / 1e3,
          "ops": [{"op": op, "ms": us / 1e3, "count": counts[op]}
                  for op, us in micros.most_common(top)]}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="pixelcnn", choices=models.names())
  parser.add_argument("--layers", type=int, default=12)
  parser.add_argument("--hidden", type=int, default=16)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--top", type=int, default=12, help="Op types listed.")
  parser.add_argument("--quick", action="store_true", help="Smoke run.")
  parser.add_argument("--out", default=None, help="JSON file (default: none).")
  args = parser.parse_args(argv)
  if args.quick:
    args.layers, args.hidden, args.batch_size = 1, 4, 4
  start = time.perf_counter()
  result = profile(args.model, args.layers, args.hidden, args.batch_size, args.top)
  total = result["op_ms_total"]
  table = machine.markdown_table(
      ["op", "ms", "share of op time", "executions"],
      [[o["op"], f"{o['ms']:.1f}", f"{o['ms'] / total:.0%}", o["count"]]
       for o in result["ops"]])
  print(f"{args.model} {args.layers} x h={args.hidden}, batch {args.batch_size}: "
        f"step {result['step_s']:.2f} s, op time {total:.0f} ms")
  machine.write_report(args.out, {"benchmark": "op_profile", "quick": args.quick,
                                  "wall_s": time.perf_counter() - start,
                                  "results": [result]}, table)


if __name__ == "__main__":
  main()
