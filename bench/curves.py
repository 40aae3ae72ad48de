"""Validation NLL curves from training runs' TensorBoard logs or race_tfp.py JSON.

Reads `MODEL_DIR/logs/validation` events (Keras' `epoch_loss`: mean nats per image
over the validation images), converts epochs to optimizer steps with the run's
`steps_per_loop` (the last loop ends at `train_steps`), and prints a Markdown table
of (step, hours since the first event, NLL, and for images of more than 2 levels
also bits/dim); with --plot, also draws NLL against wall time and step into a PNG.
A `bench/race_tfp.py` JSON file given instead of a model_dir adds one curve per
contestant (hours of training time, validation stopped the clock).

  python -m bench.curves /path/to/model_dir [...] [--plot=docs/curves.png]
  python -m bench.curves bench/results/race_tfp.json --plot=docs/race_tfp.png

Wall time counts from the run's first TensorBoard event (written when `fit` starts,
before the first step is compiled), so it includes compilation, validation and any
pause between a kill and a resume.
"""

import argparse
import glob
import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # pylint: disable=g-import-not-at-top


def scalar_events(directory, tag):
  """Yields `(wall_time, step, value)` of scalar `tag` in a TensorBoard directory."""
  for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.tag == tag:
          yield event.wall_time, event.step, float(tf.make_ndarray(value.tensor))


def first_event_time(directory):
  """Returns the wall time of the first event: when training began writing logs."""
  path = sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*")))[0]
  record = next(iter(tf.data.TFRecordDataset(path)))
  return tf.compat.v1.Event.FromString(record.numpy()).wall_time


def validation_curve(model_dir):
  """Returns `[(step, hours, nll_nats)]` of a model_dir's periodic validation."""
  with open(os.path.join(model_dir, "config.json")) as f:
    train = json.load(f)["train"]
  steps_per_loop, train_steps = train["steps_per_loop"], train["train_steps"]
  val = list(scalar_events(os.path.join(model_dir, "logs", "validation"),
                           "epoch_loss"))
  if not val:
    return []
  first = first_event_time(os.path.join(model_dir, "logs", "train"))
  # The last loop ends at train_steps, which need not be a multiple of the loop.
  return [(min((epoch + 1) * steps_per_loop, train_steps), (wall - first) / 3600.0,
           nll) for wall, epoch, nll in val]


def bits_per_dim_scale(model_dir):
  """Bits/dim per nat/image of a model_dir's images (`1 / (H W C ln 2)`), or None
  for binary images, whose figures are given in nats."""
  with open(os.path.join(model_dir, "config.json")) as f:
    model = json.load(f)["model"]
  if model["num_levels"] <= 2:
    return None
  return 1.0 / (math.prod(model["image_shape"]) * math.log(2.0))


def race_curves(path):
  """Returns `{contestant: [(step, hours, nll_nats)]}` from a race_tfp.py JSON file."""
  with open(path) as f:
    report = json.load(f)
  return {_label(report, r):
          [(p["step"], p["train_s"] / 3600.0, p["val_nll"]) for p in r["curve"]]
          for r in report["results"]}


def _label(report, result):
  """Names `result`'s contestant, its size, optimizer and (if not float32) precision;
  TFP's optimizer may be its own and it always runs in float32."""
  if result["contestant"] == "tfd.PixelCNN":
    optimizer, policy = report.get("tfp_optimizer", report["optimizer"]), "float32"
  else:
    optimizer, policy = report["optimizer"], report.get("dtype_policy", "float32")
  precision = "" if policy == "float32" else f", {policy}"
  return f"{result['contestant']}, {result['params']:,} params, {optimizer}{precision}"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("model_dirs", nargs="+")
  parser.add_argument("--plot", help="PNG path for the plot")
  args = parser.parse_args()
  curves, scales = {}, {}
  for source in args.model_dirs:
    if source.endswith(".json"):
      curves.update(race_curves(source))
    else:
      name = os.path.basename(os.path.normpath(source))
      curves[name] = validation_curve(source)
      scales[name] = bits_per_dim_scale(source)
  for name, curve in curves.items():
    scale = scales.get(name)
    print(f"\n{name}\n\n| step | hours | validation NLL (nats) |"
          + (" bits/dim |\n|---|---|---|---|" if scale else "\n|---|---|---|"))
    for step, hours, nll in curve:
      print(f"| {step} | {hours:.2f} | {nll:.2f} |"
            + (f" {nll * scale:.4f} |" if scale else ""))
  if args.plot:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
    fig, (by_time, by_step) = plt.subplots(
        1, 2, figsize=(10, 4 + 0.25 * len(curves)))
    for name, curve in curves.items():
      steps, hours, nll = zip(*curve) if curve else ((), (), ())
      by_time.plot(hours, nll, marker="o", label=name)
      by_step.plot(steps, nll, marker="o", label=name)
    by_time.set(xlabel="wall-clock hours", ylabel="validation NLL (nats/image)")
    by_step.set(xlabel="optimizer steps")
    for ax in (by_time, by_step):
      ax.grid(True, alpha=0.3)
    # The legend, a row per curve, goes under both panels: it cannot hide a curve.
    fig.legend(*by_time.get_legend_handles_labels(), loc="lower center",
               fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.055 * len(curves), 1, 1))
    fig.savefig(args.plot, dpi=100)
    print(f"\nwrote {args.plot}")


if __name__ == "__main__":
  main()
