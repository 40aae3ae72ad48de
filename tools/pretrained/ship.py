r"""Ships a trained, evaluated model_dir as `pretrained/<name>/` (maintainers' tool).

  python -m tools.pretrained.ship --model_dir=runs/pixelcnn \
      --name=pixelcnn_binarized_mnist --recipe=tools/pretrained/pixelcnn_binarized_mnist.sh

The model_dir must hold an `eval_validation.json` that `train.py --mode=eval` wrote
for its newest checkpoint over the whole validation split. The folder gets:

  1/                     the SavedModel (`export.export`, default signatures)
  model.weights.h5       the Keras weights
  config.json            the model_dir's, with the machine's TFDS data_dir left out
  eval_validation.json   the validation figure the card and the metadata carry
  history.json           every training run (`pixelrnn_tf.history`)
  card.json              family, dataset, config, parameters, commands, steps
                         (summed over every run, a parent's included), the
                         checkpoint's own step, batch size, wall hours, machines,
                         dates, validation NLL (all of the split, and of
                         its first 1,000 images)

and a sample grid goes to `docs/pretrained/<name>.png`. The folder is built beside
the old one and swapped in at the end; one over `--max_mb` is refused.
"""

import dataclasses
import json
import os
import shutil

from absl import app
from absl import flags

flags.DEFINE_string("model_dir", None, "Trained and evaluated model_dir.",
                    required=True)
flags.DEFINE_string("name", None, "<family>_<dataset>.", required=True)
flags.DEFINE_string("recipe", None, "The committed script that trains and "
                    "evaluates it (recorded in the card).", required=True)
flags.DEFINE_string("dataset_note", None, "A remark on the data the card shows "
                    "beside the figure (e.g. that it is a JPEG copy).")
flags.DEFINE_float("max_mb", 15.0, "Largest folder allowed, in MB.")
flags.DEFINE_string("pretrained_dir", None, "Where the model folders go (default: "
                    "the repository's pretrained/).")
flags.DEFINE_string("docs_dir", None, "Where the sample grid goes (default: the "
                    "repository's docs/pretrained/).")
flags.DEFINE_integer("samples", 16, "Images in the sample grid (a class-conditional "
                     "model draws them class by class).")

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The paper's test NLL (nats) for binarized MNIST, where it reports one.
PAPER_TEST_NLL = {"pixelcnn": 81.30, "row_lstm": 80.54, "diagonal_bilstm": 79.20}
FIRST_IMAGES = 1000


def validation_split(train_config):
  """The dataset's validation split (`training.load_split`) on this machine."""
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import data, training
  return training.load_split(train_config, data.default_eval_split(
      train_config.dataset))[0]


def check_evaluated(model_dir, step, validation):
  """The model_dir's validation result; refuses one that is not `--mode=eval`'s
  for checkpoint `step` over the whole `validation` split."""
  path = os.path.join(model_dir, "eval_validation.json")
  if not os.path.exists(path):
    raise SystemExit(f"error: no {path}: run train.py --mode=eval first.")
  with open(path) as f:
    result = json.load(f)
  if result["step"] != step:
    raise SystemExit(f"error: {path} is for step {result['step']}, the newest "
                     f"checkpoint is step {step}: evaluate again.")
  size = int(validation.reduce(0, lambda n, _: n + 1).numpy())
  if result["num_examples"] != size:
    raise SystemExit(f"error: {path} scored {result['num_examples']} of the "
                     f"{size} validation images: evaluate the whole split.")
  return result


def first_images_nll(model, model_config, validation, count=FIRST_IMAGES):
  """The mean NLL (nats) of `model` over the first `count` images of `validation`:
  a figure anyone with the data can check in seconds (tests/test_pretrained.py)."""
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import data, training
  batches = data.eval_pipeline(validation.take(count), 250,
                               bool(model_config.num_classes))
  return training.mean_nll(model, batches, model_config.num_levels)[0]


def card(name, model, model_config, train_config, records, result, first_nll,
         recipe, dataset_note):
  """The model card (see the module docstring) as a dict."""
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import history
  machines = []
  for record in records:
    if record["machine"] not in machines:
      machines.append(record["machine"])
  bits = ({"validation_bits_per_dim": result["bits_per_dim"]}
          if model_config.num_levels > 2 else {})
  return {
      "name": name,
      "family": model_config.model,
      "dataset": train_config.dataset,
      "dataset_note": dataset_note,
      "config": {"model": dataclasses.asdict(model_config),
                 "train": dataclasses.asdict(train_config)},
      "parameters": int(model.count_params()),
      "recipe": recipe,
      "commands": [" ".join(r["command"]) for r in records],
      "steps": history.total_steps(records),
      "checkpoint_step": int(result["step"]),
      "batch_size": train_config.batch_size,
      "training_wall_hours": round(history.total_hours(records), 4),
      "runs": len(records),
      "machines": machines,
      "trained_from": records[0]["start"] if records else None,
      "trained_until": records[-1]["end"] if records else None,
      "validation_nll_nats": result["nll_nats"],
      **bits,
      "validation_split": result["split"],
      "validation_examples": result["num_examples"],
      f"validation_nll_nats_first_{FIRST_IMAGES}": first_nll,
      "paper_test_nll_nats": PAPER_TEST_NLL.get(model_config.model)
                             if model_config.num_levels == 2 else None,
  }


def folder_mb(path):
  """The size of the files under `path`, in MB (10^6 bytes)."""
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
             for f in files) / 1e6


def main(argv):
  del argv
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf import configs, export, history, pretrained, training
  model, model_config, train_config, step = training.load_trained(FLAGS.model_dir)
  validation = validation_split(train_config)
  result = check_evaluated(FLAGS.model_dir, step, validation)
  records = history.read(FLAGS.model_dir)
  target = os.path.join(FLAGS.pretrained_dir or os.path.join(ROOT, "pretrained"),
                        FLAGS.name)
  building = target + ".new"
  shutil.rmtree(building, ignore_errors=True)
  os.makedirs(building)
  model.save_weights(os.path.join(building, pretrained.WEIGHTS_FILE))
  shipped_train = dataclasses.replace(train_config, data_dir=None)
  configs.save_config(building, model_config, shipped_train)
  for name in ("eval_validation.json", history.HISTORY_FILE):
    shutil.copy(os.path.join(FLAGS.model_dir, name), building)
  with open(os.path.join(building, pretrained.CARD_FILE), "w") as f:
    json.dump(card(FLAGS.name, model, model_config, shipped_train, records, result,
                   first_images_nll(model, model_config, validation),
                   FLAGS.recipe, FLAGS.dataset_note), f, indent=2)
    f.write("\n")
  # Exported from the folder itself: its metadata carries the shipped config.
  export.export(building, building, version=int(pretrained.VERSION))
  size = folder_mb(building)
  if size > FLAGS.max_mb:
    raise SystemExit(f"error: {building} is {size:.1f} MB, over {FLAGS.max_mb} MB.")
  shutil.rmtree(target, ignore_errors=True)
  os.rename(building, target)
  grid = os.path.join(FLAGS.docs_dir or os.path.join(ROOT, "docs", "pretrained"),
                      f"{FLAGS.name}.png")
  os.makedirs(os.path.dirname(grid), exist_ok=True)
  training.write_samples(target, FLAGS.samples, output=grid)
  print(json.dumps({"folder": target, "mb": round(size, 2), "samples": grid,
                    **result}))


if __name__ == "__main__":
  app.run(main)
