"""The command lines as a user runs them: bad values, Ctrl-C, logs, exit codes."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from pixelrnn_tf import configs
from pixelrnn_tf import history
from pixelrnn_tf import models

from conftest import REPO

TINY_FLAGS = ["--image_size=8", "--batch_size=8", "--num_layers=1", "--hidden_dims=4",
              "--output_dims=8", "--summary_samples=0"]


def run(program, args, timeout=300):
  """Runs `python program args` from the repo root; returns the CompletedProcess."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, *program, *args], capture_output=True,
                        text=True, timeout=timeout, env=env, cwd=REPO, check=False)


def assert_one_line_error(result, message):
  """Exit status 1, no signal, no traceback, and `message` said once, in the
  last line of stderr (before absl's hint after a flag-parsing error)."""
  assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
  assert "Traceback" not in result.stderr, result.stderr[-2000:]
  lines = [l for l in result.stderr.strip().splitlines()
           if not l.startswith("Pass --helpshort")]
  assert message in lines[-1], result.stderr[-2000:]
  assert result.stderr.count(message) == 1, result.stderr[-2000:]


@pytest.fixture(scope="module")
def config_only_dir(tmp_path_factory):
  """A model_dir with the config of an 8x8 grayscale model and no checkpoint."""
  model_dir = str(tmp_path_factory.mktemp("config_only"))
  configs.save_config(model_dir, models.ModelConfig(
      image_shape=(8, 8, 1), num_levels=256, num_layers=1, hidden_dims=4,
      output_dims=8), configs.TrainConfig(dataset="binarized_mnist"))
  return model_dir


@pytest.mark.parametrize("args, message", [
    (["--mode=sample", "--num_samples=0"], "--num_samples=0"),
    (["--mode=sample", "--num_samples=-1"], "--num_samples=-1"),
    (["--mode=complete", "--num_samples=0"], "--num_samples=0"),
    (["--mode=sample", "--num_samples=1025"], "--num_samples=1025"),
    (["--mode=complete", "--known_rows=-1"], "--known_rows=-1"),
    (["--mode=complete", "--known_rows=9"], "Expected 0..8"),
    (["--train_steps=0"], "--train_steps=0"),
    (["--batch_size=0"], "--batch_size=0"),
    (["--learning_rate=0"], "--learning_rate=0"),
    (["--epochs=0"], "--epochs=0"),
    (["--eval_every_loops=-1"], "--eval_every_loops=-1"),
    (["--seed=-3"], "--seed=-3"),
    (["--num_levels=1"], "--num_levels=1"),
    (["--channels=2"], "--channels"),
    (["--bad_files=ignore"], "--bad_files"),
    (["--mode=train", "--pretrained=x"], "--init_from=pretrained:x"),
    (["--mode=eval", "--init_from=pretrained:x"], "--init_from applies"),
])
def test_bad_values_end_in_one_line_before_any_work(config_only_dir, args, message):
  result = run(["train.py"], [f"--model_dir={config_only_dir}", *args])
  assert_one_line_error(result, message)


def test_a_model_dir_or_a_shipped_model_is_required():
  assert_one_line_error(run(["train.py"], ["--mode=sample"]), "--pretrained=NAME")
  assert_one_line_error(run(["train.py"], []), "--model_dir is required")
  assert_one_line_error(run(["export.py"], ["--export_dir=/tmp/x"]),
                        "Pass one of --model_dir")


def test_unknown_pretrained_name_lists_the_known_ones(tmp_path):
  for program, args in ((["train.py"], ["--mode=sample"]),
                        (["export.py"], [f"--export_dir={tmp_path}"]),
                        (["-m", "pixelrnn_tf.score"], [str(tmp_path)])):
    result = run(program, [*args, "--pretrained=no_such_model"])
    assert_one_line_error(result, "Unknown pretrained model 'no_such_model'")


@pytest.mark.parametrize("text, message", [
    ("", "config.json is not valid JSON"),
    ("{garbage", "config.json is not valid JSON"),
    ('{"model": {}}', "lacks its \"model\" and \"train\" sections"),
])
def test_unreadable_config_json_is_named_and_no_checkpoint_is_blamed(
    tmp_path, text, message):
  (tmp_path / "config.json").write_text(text)
  result = run(["train.py"], [f"--model_dir={tmp_path}", "--mode=eval"])
  assert_one_line_error(result, message)
  assert "checkpoint" not in result.stderr.lower()


def test_errors_of_the_data_are_said_once(tmp_path):
  result = run(["train.py"], [f"--model_dir={tmp_path}/m", "--image_size=8",
                              "--dataset=folder:/no/such/dir"])
  assert_one_line_error(result, "does not exist")


def wait_for(path, proc, timeout=240):
  """Polls until `path` exists (or `proc` ends)."""
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(path):
      return
    time.sleep(0.2)
  raise AssertionError(f"{path} did not appear")


@pytest.mark.slow
# 0 s: Ctrl-C as fit starts, while TensorFlow traces the train step; Python can
# raise it inside a finalizer there, which swallows it (training went on).
@pytest.mark.parametrize("delay_s", [0.0, 5.0])
def test_ctrl_c_saves_the_current_step_and_says_so_in_one_line(image_folder,
                                                               tmp_path, delay_s):
  model_dir = str(tmp_path / "run")
  # One loop of 100,000 steps: no checkpoint is due before the interrupt.
  args = [f"--dataset=folder:{image_folder}", f"--model_dir={model_dir}",
          "--train_steps=100000", "--steps_per_loop=100000",
          "--eval_every_loops=0", *TINY_FLAGS]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  wait_for(os.path.join(model_dir, "history.json"), proc)  # written as fit starts
  time.sleep(delay_s)
  proc.send_signal(signal.SIGINT)
  try:
    stdout, stderr = proc.communicate(timeout=120)
  finally:
    proc.kill()  # a missed Ctrl-C must not leave it training beside the suite
  assert proc.returncode == 130, stderr[-2000:]
  assert "Traceback" not in stderr, stderr[-2000:]
  last = stderr.strip().splitlines()[-1]
  assert last.startswith("Interrupted at step "), stderr[-2000:]
  step = int(last.split()[3].rstrip(";"))
  assert (0 if delay_s == 0 else 1) <= step < 100000, step
  assert tf.train.latest_checkpoint(
      os.path.join(model_dir, "checkpoints")).endswith(f"ckpt-{step}")
  assert history.read(model_dir)[-1]["last_step"] == step
  # Stdout is a pipe here, so Keras prints a line per loop, not a progress bar.
  assert "\x1b[" not in stdout and "\r" not in stdout, stdout[-500:]


@pytest.mark.slow
def test_a_healthy_run_logs_no_error_and_a_line_per_loop_to_a_file(image_folder,
                                                                   tmp_path):
  result = run(["train.py"], [f"--dataset=folder:{image_folder}",
                              f"--model_dir={tmp_path}/run", "--train_steps=4",
                              "--steps_per_loop=2", "--eval_examples=8",
                              *TINY_FLAGS, "--num_layers=2",
                              "--summary_samples=2"])
  assert result.returncode == 0, result.stderr[-2000:]
  # Error-level lines (C++ or absl: "E" and four digits), but for TensorFlow's own
  # note that it finds no CUDA driver on a machine without a GPU.
  errors = [line for line in result.stderr.splitlines()
            if re.match(r"E\d{4} ", line) and "cuInit" not in line]
  assert not errors, errors
  # Stdout is a file here: one line per loop (2 loops), no progress-bar redraws.
  assert "\r" not in result.stdout and "\x1b[" not in result.stdout
  loops = [line for line in result.stdout.splitlines() if "loss:" in line]
  assert len(loops) == 2, result.stdout


def test_train_flags_default_to_the_library_defaults():
  """`train.py` and `configs.TrainConfig()` train the same way by default."""
  # pylint: disable-next=g-import-not-at-top
  from pixelrnn_tf.cli import train as train_cli
  library = configs.TrainConfig()
  for name in train_cli.TRAIN_FLAGS:
    assert train_cli.FLAGS[name].default == getattr(library, name), name
  assert train_cli.FLAGS["train_steps"].default is None  # "20,000" via TrainConfig
  assert (library.learning_rate, library.lr_schedule) == (3e-3, "cosine")
