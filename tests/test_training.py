"""Trainer: overfitting, checkpoints, resume after kill -9, NaN, eval JSON, errors."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf import configs
from pixelrnn_tf import data
from pixelrnn_tf import distributions
from pixelrnn_tf import history
from pixelrnn_tf import models
from pixelrnn_tf import sampling
from pixelrnn_tf import training

from conftest import REPO

TINY = dict(num_layers=1, hidden_dims=4, output_dims=8)


def tiny_train_config(folder, **overrides):
  # A constant rate: a few steps at the default's decaying one teach too little for
  # the learning checks below.
  args = dict(dataset=f"folder:{folder}", image_size=8, batch_size=8, train_steps=6,
              steps_per_loop=3, eval_every_loops=0, eval_examples=16,
              summary_samples=0, jit_compile=False, seed=0, lr_schedule="constant")
  args.update(overrides)
  return configs.TrainConfig(**args)


def tiny_model_config(train_config):
  return training.model_config_for_dataset(train_config, **TINY)


def test_tiny_model_overfits_a_few_images():
  tf.keras.utils.set_random_seed(0)
  config = models.ModelConfig(image_shape=(6, 6, 1), num_levels=2, num_layers=2,
                              hidden_dims=8, output_dims=16)
  model = models.build(config)
  model.compile(keras.optimizers.Adam(1e-2),
                loss=distributions.NegativeLogLikelihood(2))
  images = np.random.default_rng(0).integers(0, 2, (4, 6, 6, 1), dtype=np.uint8)
  first = model.evaluate(images, images, verbose=0)
  model.fit(images, images, batch_size=4, epochs=300, verbose=0)
  last = model.evaluate(images, images, verbose=0)
  # 36 fair coin flips are 25 nats; memorising 4 images costs about log 4 = 1.4.
  assert first > 20 and last < 5, (first, last)


def test_mean_nll_is_exact_over_all_batches_and_refuses_an_empty_split():
  model = models.build(models.ModelConfig(image_shape=(4, 4, 1), num_levels=2,
                                          **TINY))
  images = np.random.default_rng(0).integers(0, 2, (5, 4, 4, 1), dtype=np.uint8)
  batches = [(images[:3], images[:3]), (images[3:], images[3:])]
  nats, count = training.mean_nll(model, batches, 2)
  expected = -distributions.log_prob(model(images), images, 2).numpy().mean()
  assert count == 5 and np.isclose(nats, expected, rtol=1e-6), (nats, expected)
  with pytest.raises(training.TrainingError, match="split is empty"):
    training.mean_nll(model, [], 2)


def test_train_writes_config_checkpoints_logs_and_eval_json(image_folder, tmp_path):
  train_config = tiny_train_config(image_folder, eval_every_loops=1,
                                   summary_samples=2, jit_compile=True)
  model_config = tiny_model_config(train_config)
  model_dir = str(tmp_path / "run")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    training.train(model_dir, model_config, train_config, verbose=0)
  assert not [w for w in caught if "shuffle" in str(w.message)]  # fit's own notice
  assert configs.load_config(model_dir) == (model_config, train_config)
  assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith(
      "ckpt-6")
  assert os.listdir(os.path.join(model_dir, "logs", "samples"))

  result = training.evaluate(model_dir, "validation")
  with open(os.path.join(model_dir, "eval_validation.json")) as f:
    assert json.load(f) == result
  assert set(result) == {"split", "num_examples", "nll_nats", "bits_per_dim", "step"}
  assert result["num_examples"] == 16 and result["step"] == 6

  # The same number, computed independently over the whole split.
  model, _, _ = training.build_and_restore(model_dir)
  ds, _ = data.load(f"folder:{image_folder}", "validation", image_size=8)
  images = np.stack([ex["image"] for ex in ds.as_numpy_iterator()])
  nll = -distributions.log_prob(model(images), images, 256).numpy().mean()
  np.testing.assert_allclose(result["nll_nats"], nll, rtol=1e-5)
  np.testing.assert_allclose(result["bits_per_dim"], nll / (64 * np.log(2)), rtol=1e-5)


def test_class_conditional_model_learns_and_samples_its_classes(image_folder,
                                                               tmp_path):
  # Class a has stripes of 200 on even rows, class b of 50: the label says which.
  train_config = tiny_train_config(image_folder, train_steps=150, steps_per_loop=50,
                                   learning_rate=1e-2)
  model_config = training.model_config_for_dataset(
      train_config, conditional=True, model="gated_pixelcnn", **TINY)
  assert model_config.num_classes == 2
  model_dir = str(tmp_path / "run")
  model = training.train(model_dir, model_config, train_config, verbose=0)
  result = training.evaluate(model_dir, "validation")
  ds, _ = data.load(f"folder:{image_folder}", "validation", image_size=8)
  batch = next(iter(ds.batch(16)))

  def nll(labels):
    logits = model(models.network_inputs(model, batch["image"], labels))
    return -distributions.log_prob(logits, batch["image"], 256).numpy().mean()

  np.testing.assert_allclose(result["nll_nats"], nll(batch["label"]), rtol=1e-5)
  assert nll(1 - batch["label"]) > result["nll_nats"] + 20, result
  images = sampling.sample(model, 4, (8, 8, 1), 256, tf.constant([0, 0]),
                           labels=[0, 1, 0, 1]).numpy().astype(float)
  assert images[[0, 2], ::2].mean() > images[[1, 3], ::2].mean() + 50
  assert os.path.getsize(training.write_samples(model_dir, num_samples=4)) > 0
  assert os.path.getsize(training.write_samples(model_dir, 4, known_rows=4)) > 0


def test_conditional_needs_a_labelled_dataset(image_folder, tmp_path):
  one_class = f"folder:{image_folder}/train/a"  # no class subfolders
  result = run_train_py([f"--model_dir={tmp_path}/m", "--conditional",
                         "--model=gated_pixelcnn", f"--dataset={one_class}",
                         "--image_size=8"])
  assert result.returncode != 0
  assert "has no class labels" in result.stderr
  # Resuming a model_dir never switches it to or from class conditioning.
  model_dir = str(tmp_path / "plain")
  train_config = tiny_train_config(image_folder, train_steps=3)
  training.train(model_dir, tiny_model_config(train_config), train_config, verbose=0)
  result = run_train_py([f"--model_dir={model_dir}", "--conditional"])
  assert result.returncode != 0
  assert "holds an unconditional model" in result.stderr


def test_training_continues_from_checkpoint_not_from_zero(image_folder, tmp_path):
  model_dir = str(tmp_path / "run")
  train_config = tiny_train_config(image_folder, train_steps=3)
  model_config = tiny_model_config(train_config)
  training.train(model_dir, model_config, train_config, verbose=0)
  more = tiny_train_config(image_folder, train_steps=6)
  model = training.train(model_dir, model_config, more, verbose=0)
  assert int(model.optimizer.iterations.numpy()) == 6


def test_loops_end_at_multiples_of_steps_per_loop_and_at_train_steps():
  assert training.loop_runs(0, 6, 3) == [(0, 3, 2)]
  assert training.loop_runs(0, 7, 3) == [(0, 3, 2), (2, 1, 3)]  # a last short loop
  assert training.loop_runs(0, 2, 3) == [(0, 2, 1)]
  assert training.loop_runs(4, 7, 3) == [(1, 2, 2), (2, 1, 3)]  # finish loop 1 first
  assert training.loop_runs(4, 11, 3) == [(1, 2, 2), (2, 3, 3), (3, 2, 4)]
  assert training.loop_runs(4, 5, 3) == [(1, 1, 2)]
  assert training.loop_runs(5, 6, 3) == [(1, 1, 2)]
  assert training.loop_runs(6, 9, 3) == [(2, 3, 3)]
  assert training.loop_runs(6, 6, 3) == []
  assert training.loop_runs(7, 6, 3) == []


def test_loop_runs_cover_exactly_the_steps_left_in_aligned_epochs():
  for start in range(12):
    for train_steps in range(12):
      step = start
      for first, steps, end in training.loop_runs(start, train_steps, 4):
        for epoch in range(first, end):
          step += steps
          # Epoch e ends at (e + 1) * 4, or earlier at train_steps only.
          assert step == min((epoch + 1) * 4, train_steps), (start, train_steps)
      assert step == max(start, train_steps)


def test_resume_between_loop_ends_realigns_checkpoints(image_folder, tmp_path):
  model_dir = str(tmp_path / "run")
  train_config = tiny_train_config(image_folder, train_steps=4, steps_per_loop=2)
  model_config = tiny_model_config(train_config)
  training.train(model_dir, model_config, train_config, verbose=0)
  # Step 4 is not a loop end for 3-step loops: 4 -> 6, 6 -> 9, then 9 -> 10.
  more = tiny_train_config(image_folder, train_steps=10, steps_per_loop=3)
  model = training.train(model_dir, model_config, more, verbose=0)
  assert int(model.optimizer.iterations.numpy()) == 10
  saved = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
  steps = sorted(int(p.rsplit("-", 1)[1]) for p in saved.all_model_checkpoint_paths)
  assert steps[-3:] == [6, 9, 10]


def test_learning_rate_warms_up_then_holds_or_decays_to_zero():
  cosine = training.learning_rate_schedule(configs.TrainConfig(
      train_steps=110, learning_rate=3e-3, lr_schedule="cosine", warmup_steps=10))
  constant = training.learning_rate_schedule(configs.TrainConfig(
      train_steps=110, learning_rate=3e-3, lr_schedule="constant", warmup_steps=10))
  steps = [0, 5, 10, 60, 110]
  np.testing.assert_allclose([float(cosine(s)) for s in steps],
                             [0, 1.5e-3, 3e-3, 1.5e-3, 0], atol=1e-9)
  np.testing.assert_allclose([float(constant(s)) for s in steps],
                             [0, 1.5e-3, 3e-3, 3e-3, 3e-3], atol=1e-9)
  with pytest.raises(ValueError, match="Expected >= 0 and < train_steps"):
    configs.TrainConfig(train_steps=10, warmup_steps=10)


class _RecordLearningRate(keras.callbacks.Callback):
  """Records `{step: learning rate}` of every step; stops after step `stop_at`."""

  def __init__(self, stop_at=None):
    super().__init__()
    self.stop_at = stop_at
    self.rates = {}

  def on_train_batch_end(self, batch, logs=None):
    optimizer = self.model.optimizer
    step = int(optimizer.iterations.numpy())
    self.rates[step - 1] = float(optimizer.learning_rate.numpy())
    if step == self.stop_at:
      self.model.stop_training = True  # as if killed right after a checkpoint


def test_every_step_trains_at_the_scheduled_rate_across_a_resume(image_folder,
                                                                 tmp_path):
  model_dir = str(tmp_path / "run")
  train_config = tiny_train_config(image_folder, train_steps=8, steps_per_loop=2,
                                   learning_rate=1e-2, lr_schedule="cosine",
                                   warmup_steps=2)
  model_config = tiny_model_config(train_config)
  killed, resumed = _RecordLearningRate(stop_at=4), _RecordLearningRate()
  training.train(model_dir, model_config, train_config, verbose=0,
                 callbacks=[killed])
  training.train(model_dir, model_config, train_config, verbose=0,
                 callbacks=[resumed])
  assert sorted(killed.rates) == [0, 1, 2, 3]
  assert sorted(resumed.rates) == [4, 5, 6, 7]
  schedule = training.learning_rate_schedule(train_config)
  rates = {**killed.rates, **resumed.rates}
  np.testing.assert_allclose([rates[s] for s in range(8)],
                             [float(schedule(s)) for s in range(8)], rtol=1e-6)
  assert rates[0] == 0 and np.isclose(rates[2], 1e-2) and 0 < rates[7] < rates[5] < 5e-3


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(
    image_folder, tmp_path):
  model_dir = str(tmp_path / "run")
  train_config = tiny_train_config(image_folder, train_steps=3)
  model_config = tiny_model_config(train_config)
  training.train(model_dir, model_config, train_config, verbose=0)
  exploding = tiny_train_config(image_folder, train_steps=30, learning_rate=1e35)
  with pytest.raises(training.TrainingError, match="NaN or inf.*ckpt-3"):
    training.train(model_dir, model_config, exploding, verbose=0)
  assert tf.train.latest_checkpoint(
      os.path.join(model_dir, "checkpoints")).endswith("ckpt-3")


def test_different_model_in_same_model_dir_is_refused(image_folder, tmp_path):
  model_dir = str(tmp_path / "run")
  train_config = tiny_train_config(image_folder, train_steps=3)
  model_config = tiny_model_config(train_config)
  training.train(model_dir, model_config, train_config, verbose=0)
  bigger = training.model_config_for_dataset(train_config, num_layers=2,
                                             hidden_dims=4, output_dims=8)
  with pytest.raises(training.TrainingError, match="holds a different model"):
    training.train(model_dir, bigger, train_config, verbose=0)


def corrupt(ckpt_dir, step):
  """Overwrites the data file of checkpoint `step` with garbage."""
  for name in os.listdir(ckpt_dir):
    if name.startswith(f"ckpt-{step}.data"):
      with open(os.path.join(ckpt_dir, name), "wb") as f:
        f.write(b"garbage")


def test_a_corrupt_latest_checkpoint_falls_back_to_the_newest_intact_one(
    image_folder, tmp_path, monkeypatch):
  model_dir = str(tmp_path / "run")
  train_config = tiny_train_config(image_folder, train_steps=6)
  model_config = tiny_model_config(train_config)
  training.train(model_dir, model_config, train_config, verbose=0)
  ckpt_dir = os.path.join(model_dir, "checkpoints")
  corrupt(ckpt_dir, 6)
  warnings = []
  monkeypatch.setattr(training.logging, "warning",
                      lambda msg, *args: warnings.append(msg % args))
  _, optimizer, manager = training.build_and_restore(model_dir, model_config)
  assert int(optimizer.iterations.numpy()) == 3
  assert manager.latest_checkpoint.endswith("ckpt-3")
  assert len(warnings) == 1 and "Skipped checkpoint" in warnings[0], warnings
  assert "ckpt-6" in warnings[0] and "corrupt/" in warnings[0]
  # The corrupt files are kept aside, never deleted, and training goes on.
  kept = sorted(os.listdir(os.path.join(ckpt_dir, "corrupt")))
  assert kept and all(name.startswith("ckpt-6.") for name in kept), kept
  training.train(model_dir, model_config, train_config, verbose=0)
  assert tf.train.latest_checkpoint(ckpt_dir).endswith("ckpt-6")
  assert training.evaluate(model_dir, "validation")["step"] == 6


def test_no_intact_checkpoint_gives_a_clear_error_that_deletes_nothing(
    image_folder, tmp_path):
  model_dir = str(tmp_path / "run")
  train_config = tiny_train_config(image_folder, train_steps=3)
  training.train(model_dir, tiny_model_config(train_config), train_config, verbose=0)
  ckpt_dir = os.path.join(model_dir, "checkpoints")
  corrupt(ckpt_dir, 3)
  before = sorted(os.listdir(ckpt_dir))
  with pytest.raises(training.TrainingError,
                     match="No checkpoint in .* can be restored.*ckpt-3") as error:
    training.evaluate(model_dir, "validation")
  assert "delete" not in str(error.value).lower()
  assert sorted(os.listdir(ckpt_dir)) == before


def test_history_records_every_run_with_its_steps_and_time(image_folder, tmp_path):
  model_dir = str(tmp_path / "run")
  train_config = tiny_train_config(image_folder, train_steps=3)
  model_config = tiny_model_config(train_config)
  training.train(model_dir, model_config, train_config, verbose=0)
  more = tiny_train_config(image_folder, train_steps=6)
  training.train(model_dir, model_config, more, verbose=0)
  records = history.read(model_dir)
  assert [(r["first_step"], r["last_step"]) for r in records] == [(0, 3), (3, 6)]
  assert all(r["wall_seconds"] > 0 and r["end"] >= r["start"] for r in records)
  assert records[0]["machine"]["cpu_count"] == os.cpu_count()
  assert history.total_hours(records) == pytest.approx(
      sum(r["wall_seconds"] for r in records) / 3600)


def write_config(model_dir, edit):
  """Saves a valid config in `model_dir`, then rewrites its JSON with `edit`."""
  configs.save_config(model_dir, models.ModelConfig(**TINY), configs.TrainConfig())
  path = os.path.join(model_dir, configs.CONFIG_FILE)
  with open(path) as f:
    saved = json.load(f)
  edit(saved)
  with open(path, "w") as f:
    json.dump(saved, f)
  return path


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["model"].pop("num_layers"), "missing field(s) model.num_layers"),
    (lambda c: c["train"].pop("batch_size"), "missing field(s) train.batch_size"),
    (lambda c: c["model"].update(colour=1), "unknown field(s) model.colour"),
    (lambda c: c["model"].update(num_layers="12"),
     "invalid model.num_layers. Expected an integer or null. Received: '12'"),
    (lambda c: c["train"].update(learning_rate=None),
     "invalid train.learning_rate. Expected a number"),
    (lambda c: c["model"].update(kernel_width=4), "Invalid `kernel_width`"),
    (lambda c: c.update(model=[]), "`model` is not an object of fields"),
])
def test_config_json_problems_name_the_file_and_the_field(tmp_path, edit, message):
  path = write_config(str(tmp_path), edit)
  with pytest.raises(configs.ConfigError) as error:
    configs.load_config(str(tmp_path))
  assert str(error.value).startswith(path + ": "), error.value
  assert message in str(error.value)


def test_fields_added_later_take_what_older_config_json_files_meant(tmp_path):
  def drop_added(saved):
    for section, added in configs.ADDED_FIELDS.items():
      for name in added:
        saved[section].pop(name)
  write_config(str(tmp_path), drop_added)
  model_config, train_config = configs.load_config(str(tmp_path))
  assert model_config.kernel_width == 3  # before the field, blocks were 3x3
  assert (model_config.num_classes, model_config.dropout) == (0, 0.0)
  assert (train_config.lr_schedule, train_config.warmup_steps) == ("constant", 0)
  assert train_config.bad_files == "refuse" and train_config.init_from is None


@pytest.mark.parametrize("program", ["train", "export"])
@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False")])
def test_the_programs_turn_onednn_on_unless_set_to_0(program, setting, expected):
  env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
  if setting is not None:
    env["TF_ENABLE_ONEDNN_OPTS"] = setting
  code = ("from absl import app\n"
          "app.run = lambda main: None\n"
          f"from pixelrnn_tf.cli import {program}\n"
          f"{program}.run()\n"
          "import tensorflow\n"
          "from tensorflow.python.util import _pywrap_util_port\n"
          "print(_pywrap_util_port.IsMklEnabled())")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, env=env, cwd=REPO, check=True)
  assert result.stdout.split()[-1] == expected


def test_importing_the_package_sets_nothing_in_the_process():
  env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
  code = ("import os, pixelrnn_tf, pixelrnn_tf.models, pixelrnn_tf.training\n"
          "print('TF_ENABLE_ONEDNN_OPTS' in os.environ)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, env=env, cwd=REPO, check=True)
  assert result.stdout.split()[-1] == "False"


def run_train_py(args, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, os.path.join(REPO, "train.py")] + args,
                        capture_output=True, text=True, timeout=timeout, env=env,
                        cwd=REPO, check=False)


@pytest.mark.slow
def test_kill_9_mid_run_then_same_command_resumes(image_folder, tmp_path):
  model_dir = str(tmp_path / "run")
  args = [f"--dataset=folder:{image_folder}", "--image_size=8", "--batch_size=8",
          f"--model_dir={model_dir}", "--train_steps=400", "--steps_per_loop=20",
          "--eval_every_loops=0", "--num_layers=1", "--hidden_dims=4",
          "--output_dims=8", "--dropout=0.2", "--summary_samples=0"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.Popen([sys.executable, os.path.join(REPO, "train.py")] + args,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=env, cwd=REPO)
  ckpt_dir = os.path.join(model_dir, "checkpoints")
  deadline = time.time() + 240
  while time.time() < deadline and not tf.train.latest_checkpoint(ckpt_dir):
    time.sleep(0.5)
  time.sleep(1.0)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = int(tf.train.latest_checkpoint(ckpt_dir).rsplit("-", 1)[1])
  assert 0 < killed_at < 400, "kill came too late to test resuming"

  rerun = run_train_py(args)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert f"at step {killed_at}" in rerun.stderr
  assert "Epoch 1/" not in rerun.stdout  # did not start over
  assert f"Epoch {killed_at // 20 + 1}/20" in rerun.stdout
  assert tf.train.latest_checkpoint(ckpt_dir).endswith("ckpt-400")
  assert configs.load_config(model_dir)[0].dropout == 0.2
  assert not os.path.exists(os.path.join(model_dir, "logs", "samples"))


@pytest.mark.parametrize("args, message", [
    (["--mode=bogus"], "--mode"),
    (["--train_steps=5", "--epochs=1"], "--train_steps or --epochs, not both"),
    (["--dataset=imagenet_full"], "Unknown dataset 'imagenet_full'"),
    (["--dataset=folder:/no/such/dir", "--image_size=8"],
     "'/no/such/dir' does not exist or is not a directory. Pass --dataset=folder:DIR"),
    (["--summary_samples=-1"], "--summary_samples=-1: -1 is not an integer"),
    (["--warmup_steps=-1"], "--warmup_steps=-1: -1 is not a non-negative integer"),
    (["--lr_schedule=linear"], "--lr_schedule"),
    # Model flags are checked before the data is read: no data here.
    (["--data_dir=/no/such/dir", "--dropout=1.5"], "--dropout=1.5"),
    (["--data_dir=/no/such/dir", "--num_layers=0"], "--num_layers=0"),
    (["--data_dir=/no/such/dir", "--model=pixel_gan"], "Invalid `model`"),
    (["--data_dir=/no/such/dir", "--kernel_width=4"], "Invalid `kernel_width`"),
])
def test_bad_flags_fail_with_clear_message(tmp_path, args, message):
  result = run_train_py([f"--model_dir={tmp_path}/m"] + args)
  assert result.returncode != 0
  assert message in result.stderr


def test_eval_without_trained_model_says_what_to_do(tmp_path):
  result = run_train_py([f"--model_dir={tmp_path}/empty", "--mode=eval"])
  assert result.returncode != 0
  assert "train a model there first" in result.stderr
