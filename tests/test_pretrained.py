"""Shipped models: the shipping tool, loading by name everywhere, fine-tuning, and
the models in pretrained/ themselves."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf import configs
from pixelrnn_tf import distributions
from pixelrnn_tf import history
from pixelrnn_tf import models
from pixelrnn_tf import pretrained
from pixelrnn_tf import score
from pixelrnn_tf import training

from conftest import REPO
from conftest import write_pngs

NAME = "pixelcnn_tiny_folder"


def run(args, env=None, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
  result = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO, check=False)
  return result


@pytest.fixture(scope="module")
def shipped(image_folder, tmp_path_factory):
  """A tiny model trained on `image_folder`, evaluated and shipped with the tool
  into a pretrained root of its own: `(root, model_dir)`."""
  base = tmp_path_factory.mktemp("shipped")
  model_dir = str(base / "run")
  train_config = configs.TrainConfig(
      dataset=f"folder:{image_folder}", image_size=8, batch_size=8, train_steps=6,
      steps_per_loop=3, eval_every_loops=0, summary_samples=0)
  model_config = training.model_config_for_dataset(
      train_config, model="pixelcnn", num_layers=1, hidden_dims=4, output_dims=8,
      kernel_width=3)
  training.train(model_dir, model_config, train_config, verbose=0)
  training.evaluate(model_dir, "validation")
  root = str(base / "pretrained")
  result = run(["-m", "tools.pretrained.ship", f"--model_dir={model_dir}",
                f"--name={NAME}", "--recipe=tests/test_pretrained.py",
                f"--pretrained_dir={root}", f"--docs_dir={base}/docs"])
  assert result.returncode == 0, result.stderr[-3000:]
  return root, model_dir


@pytest.fixture
def use_root(shipped, monkeypatch):
  monkeypatch.setenv("PIXELRNN_PRETRAINED_DIR", shipped[0])
  return shipped[0]


@pytest.mark.slow
def test_the_shipped_folder_holds_a_servable_model_and_an_honest_card(
    shipped, use_root):
  root, model_dir = shipped
  folder = pretrained.path(NAME)
  assert sorted(os.listdir(folder)) == [
      "1", "card.json", "config.json", "eval_validation.json", "history.json",
      "model.weights.h5"]
  card = pretrained.card(NAME)
  with open(os.path.join(model_dir, "eval_validation.json")) as f:
    evaluated = json.load(f)
  assert card["validation_bits_per_dim"] == evaluated["bits_per_dim"]
  assert card["validation_nll_nats"] == evaluated["nll_nats"]
  assert card["validation_examples"] == evaluated["num_examples"] == 16
  # Its split has fewer than 1,000 images: the first 1,000 are all of them.
  assert card["validation_nll_nats_first_1000"] == pytest.approx(
      evaluated["nll_nats"], rel=1e-6)
  metadata = pretrained.load(NAME).signatures["metadata"]()
  assert metadata["validation_nll"].numpy() == np.float32(evaluated["nll_nats"])
  assert card["steps"] == card["checkpoint_step"] == 6 == int(
      metadata["step"].numpy())
  assert card["family"] == "pixelcnn" and card["batch_size"] == 8
  runs = history.read(model_dir)
  assert card["training_wall_hours"] == round(history.total_hours(runs), 4) > 0
  assert card["commands"] and card["machines"][0]["cpu"]
  assert configs.load_config(folder)[1].data_dir is None  # no machine paths
  model = pretrained.build(NAME)
  assert card["parameters"] == model.count_params()
  # The SavedModel and the Keras weights are the same model.
  images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), np.uint8)
  served = pretrained.load(NAME).signatures["serving_default"](
      images=tf.constant(images))["log_prob"].numpy()
  np.testing.assert_allclose(
      served, distributions.log_prob(model(images), images, 256).numpy(), rtol=1e-5)
  assert os.path.getsize(os.path.join(os.path.dirname(root), "docs",
                                      f"{NAME}.png")) > 0


@pytest.mark.slow
def test_every_program_reads_a_shipped_model_by_name(shipped, image_folder,
                                                     tmp_path):
  root, model_dir = shipped
  env = {"PIXELRNN_PRETRAINED_DIR": root}
  result = run(["train.py", "--mode=eval", f"--pretrained={NAME}",
                f"--dataset=folder:{image_folder}"], env)
  assert result.returncode == 0, result.stderr[-2000:]
  with open(os.path.join(model_dir, "eval_validation.json")) as f:
    assert json.loads(result.stdout.strip().splitlines()[-1]) == json.load(f)
  grid = tmp_path / "grid.png"
  result = run(["train.py", "--mode=sample", f"--pretrained={NAME}",
                "--num_samples=4", f"--output={grid}"], env)
  assert result.returncode == 0 and grid.stat().st_size > 0, result.stderr[-2000:]
  result = run(["export.py", f"--pretrained={NAME}", f"--export_dir={tmp_path}/e"],
               env)
  assert result.returncode == 0, result.stderr[-2000:]
  image = tmp_path / "one" / "0000.png"
  write_pngs(str(image.parent), np.full((1, 8, 8, 1), 50, np.uint8))
  by_name = run(["-m", "pixelrnn_tf.score", f"--pretrained={NAME}", str(image)], env)
  by_root = run(["-m", "pixelrnn_tf.score", f"--saved_model={tmp_path}/e",
                 str(image)], env)
  assert by_name.returncode == 0 == by_root.returncode, by_root.stderr[-2000:]
  assert by_name.stdout == by_root.stdout.replace(f"{tmp_path}/e", root)
  assert json.loads(by_name.stdout.splitlines()[0])["nats"] > 0


@pytest.mark.slow
def test_fine_tuning_starts_from_the_shipped_weights_with_a_fresh_optimizer(
    shipped, image_folder, tmp_path):
  root, model_dir = shipped
  env = {"PIXELRNN_PRETRAINED_DIR": root}
  tuned = str(tmp_path / "tuned")
  common = [f"--dataset=folder:{image_folder}", "--image_size=8", "--batch_size=8",
            "--eval_every_loops=0", "--summary_samples=0"]
  # One step at a negligible rate: the weights are still the shipped ones.
  result = run(["train.py", f"--init_from=pretrained:{NAME}", f"--model_dir={tuned}",
                "--train_steps=1", "--learning_rate=1e-12", *common], env)
  assert result.returncode == 0, result.stderr[-2000:]
  tuned_model, tuned_config, _, step = training.load_trained(tuned)
  source_model, source_config, _, _ = training.load_trained(model_dir)
  assert step == 1 and tuned_config == source_config
  for a, b in zip(tuned_model.get_weights(), source_model.get_weights()):
    np.testing.assert_allclose(a, b, atol=1e-6)
  records = history.read(tuned)
  assert records[:-1] == history.read(model_dir) and records[-1]["last_step"] == 1
  assert history.total_steps(records) == 6 + 1  # the parent's steps and its own
  assert configs.load_config(tuned)[1].init_from == f"pretrained:{NAME}"

  for flags, field in ((["--num_layers=2"], "num_layers=1"),
                       (["--image_size=6"], "image_shape=(8, 8, 1)"),
                       (["--num_levels=2"], "num_levels=256")):
    result = run(["train.py", f"--init_from=pretrained:{NAME}",
                  f"--model_dir={tmp_path}/bad", *common, *flags], env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert field in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
  for name in ("b_model", "a_model"):
    os.makedirs(tmp_path / name)
    (tmp_path / name / "card.json").write_text("{}")
  os.makedirs(tmp_path / "not_a_model")
  monkeypatch.setenv("PIXELRNN_PRETRAINED_DIR", str(tmp_path))
  assert pretrained.names() == ["a_model", "b_model"]
  with pytest.raises(pretrained.PretrainedError,
                     match="Unknown pretrained model 'c'. Expected one of: a_model, "
                     "b_model"):
    pretrained.path("c")


def test_an_export_root_resolves_to_its_highest_version(tmp_path):
  for version in ("1", "2", "10"):
    os.makedirs(tmp_path / version)
    (tmp_path / version / "saved_model.pb").write_bytes(b"")
  os.makedirs(tmp_path / "11")  # no SavedModel: not a version
  assert score.saved_model_path(str(tmp_path)) == str(tmp_path / "10")
  assert score.saved_model_path(str(tmp_path / "2")) == str(tmp_path / "2")
  with pytest.raises(ValueError, match="No SavedModel"):
    score.saved_model_path(str(tmp_path / "11"))


# The models shipped in pretrained/. ------------------------------------------------

SHIPPED = pretrained.names()
MAX_FOLDER_MB, MAX_TOTAL_MB = 15.0, 80.0


def folder_mb(path):
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
             for f in files) / 1e6


def test_shipped_models_fit_the_size_budget():
  total = sum(folder_mb(pretrained.path(name)) for name in SHIPPED)
  assert total <= MAX_TOTAL_MB, total
  for name in SHIPPED:
    assert folder_mb(pretrained.path(name)) <= MAX_FOLDER_MB, name


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_is_what_its_card_says(name):
  folder = pretrained.path(name)
  card = pretrained.card(name)
  model_config, train_config = configs.load_config(folder)
  assert name.startswith(card["family"] + "_") and card["family"] == model_config.model
  with open(os.path.join(folder, "eval_validation.json")) as f:
    evaluated = json.load(f)
  assert card["validation_examples"] == evaluated["num_examples"]
  assert card["checkpoint_step"] == evaluated["step"]
  assert card["steps"] == history.total_steps(history.read(folder))
  assert card["batch_size"] == train_config.batch_size
  assert card["training_wall_hours"] == round(
      history.total_hours(history.read(folder)), 4)
  loaded = pretrained.load(name)
  metadata = loaded.signatures["metadata"]()
  assert metadata["validation_nll"].numpy() == np.float32(evaluated["nll_nats"])
  assert json.loads(metadata["config_json"].numpy()) == card["config"]
  model = pretrained.build(name)
  assert card["parameters"] == model.count_params()
  # SavedModel and Keras weights agree on random images of the model's kind.
  shape = model_config.image_shape
  rng = np.random.default_rng(0)
  images = rng.integers(0, model_config.num_levels, (2, *shape), np.uint8)
  inputs = dict(images=tf.constant(images))
  labels = None
  if model_config.num_classes:
    labels = np.array([0, model_config.num_classes - 1], np.int32)
    inputs["labels"] = tf.constant(labels)
    assert [n.decode() for n in metadata["class_names"].numpy()] == list(
        model_config.class_names)
  served = loaded.signatures["serving_default"](**inputs)["log_prob"].numpy()
  ours = distributions.log_prob(model(models.network_inputs(model, images, labels)),
                                images, model_config.num_levels).numpy()
  np.testing.assert_allclose(served, ours, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_savedmodel_is_causal(name):
  """Perturbing one sub-pixel leaves every earlier conditional of the served
  `pixel_log_prob` unchanged and moves some later one."""
  served = pretrained.load(name).signatures["serving_default"]
  model_config = configs.load_config(pretrained.path(name))[0]
  levels = model_config.num_levels
  order = np.stack(np.unravel_index(  # (H*W*C, 3) sub-pixels in drawing order
      models.generation_order(model_config.model, model_config.image_shape),
      model_config.image_shape), -1)
  rng = np.random.default_rng(1)
  image = rng.integers(0, levels, (1, *model_config.image_shape), np.uint8)
  extra = ({"labels": tf.constant([0], tf.int32)} if model_config.num_classes
           else {})
  base = served(images=tf.constant(image), **extra)["pixel_log_prob"].numpy()[0]
  for k in (0, len(order) // 3, len(order) // 2 + 1, len(order) - 2):
    i, j, c = order[k]
    changed = image.copy()
    changed[0, i, j, c] = (int(changed[0, i, j, c]) + 1) % levels
    out = served(images=tf.constant(changed), **extra)["pixel_log_prob"].numpy()[0]
    diff = np.abs(out - base)
    assert all(diff[tuple(p)] == 0 for p in order[:k]), (name, k)
    assert max(diff[tuple(p)] for p in order[k + 1:]) > 0, (name, k)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_scores_the_first_validation_images_as_its_card_says(
    name, request):
  """The SavedModel's mean NLL over the first 1,000 validation images, through
  `serving_default`, is the card's (computed by the shipping tool from the Keras
  weights): to 1e-3 nats for binarized MNIST (from the offline TFDS copy), to 1e-6
  relative for the CIFAR-10 JPEG copy (unpacked from the offline archive)."""
  card = pretrained.card(name)
  model_config, train_config = configs.load_config(pretrained.path(name))
  if train_config.dataset.startswith("folder:"):
    data = {"dataset": "folder:" + request.getfixturevalue("shared_cifar10_jpeg")}
  else:
    data = {"data_dir": request.getfixturevalue("shared_tfds_dir")}
  ds, _ = training.load_split(dataclasses.replace(train_config, **data), "validation")
  served = pretrained.load(name).signatures["serving_default"]
  log_probs = []
  for batch in ds.take(1000).batch(250).as_numpy_iterator():
    labels = ({"labels": tf.constant(batch["label"])} if model_config.num_classes
              else {})
    log_probs.append(served(images=tf.constant(batch["image"]),
                            **labels)["log_prob"].numpy())
  log_probs = np.concatenate(log_probs).astype(np.float64)
  assert len(log_probs) == 1000
  expected = card["validation_nll_nats_first_1000"]
  assert abs(-log_probs.mean() - expected) < max(1e-3, 1e-6 * expected)


@pytest.mark.slow
def test_the_quick_start_scores_and_samples_with_a_shipped_model(tmp_path):
  """README's two quick-start commands, each under a minute."""
  name = "pixelcnn_binarized_mnist"
  if name not in SHIPPED:
    pytest.skip(f"{name} is not shipped")
  started = time.monotonic()
  result = run(["-m", "pixelrnn_tf.score", f"--pretrained={name}", "docs/digit.png"])
  assert result.returncode == 0, result.stderr[-2000:]
  assert time.monotonic() - started < 60
  line = json.loads(result.stdout.splitlines()[0])
  assert line["path"] == "docs/digit.png" and 0 < line["nats"] < 200
  grid = tmp_path / "samples.png"
  started = time.monotonic()
  result = run(["train.py", "--mode=sample", f"--pretrained={name}",
                f"--output={grid}"])
  assert result.returncode == 0, result.stderr[-2000:]
  assert time.monotonic() - started < 60
  picture = tf.io.decode_png(grid.read_bytes()).numpy()
  assert picture.shape[0] >= 4 * 28 and picture.std() > 0  # 16 drawn digits, not blank
