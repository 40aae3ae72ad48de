"""tf.distribute and mixed precision: same results as one device, workers agree."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf import configs
from pixelrnn_tf import distribute
from pixelrnn_tf import models
from pixelrnn_tf import training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs `training.train` in a fresh process (logical devices must be set before TF
# starts) and writes the losses and final weights to OUT.npz. With AS_SHARDS=n, a
# one-device run reads what n workers of one replica each read: each step's batch
# is their per-worker batches (`make_dataset` of shard 0, ..., n - 1) side by side.
WORKER = textwrap.dedent("""
    import json, os, sys
    import keras
    import numpy as np
    import tensorflow as tf
    strategy_name, folder, model_dir, steps, out = sys.argv[1:6]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pixelrnn_tf import configs, distribute, models, training
    shards = int(os.environ.get("AS_SHARDS", "0"))
    if shards:
      def as_shards(strategy, make_dataset, global_batch_size):
        assert strategy.num_replicas_in_sync == 1
        per_worker = [make_dataset(shards, index, global_batch_size // shards)
                      for index in range(shards)]
        return tf.data.Dataset.zip(tuple(per_worker)).map(
            lambda *pairs: tf.nest.map_structure(lambda *x: tf.concat(x, 0), *pairs))
      distribute.distribute_train_dataset = as_shards
    strategy = distribute.make_strategy(strategy_name)
    model_config = models.ModelConfig(image_shape=(8, 8, 1), num_levels=256,
                                      num_layers=1, hidden_dims=4, output_dims=8)
    args = dict(dataset="folder:" + folder, image_size=8, batch_size=8,
                train_steps=int(steps), steps_per_loop=int(steps),
                eval_every_loops=0, summary_samples=0, learning_rate=1e-2)
    args.update(json.loads(os.environ.get("EXTRA", "{}")))
    train_config = configs.TrainConfig(**args)
    losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"])))
    model = training.train(model_dir, model_config, train_config, strategy,
                           verbose=0, callbacks=[record])
    np.savez(out, losses=np.array(losses), replicas=strategy.num_replicas_in_sync,
             **{f"w{i}": w for i, w in enumerate(model.get_weights())})
""")


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _python(script_path, *args, env=None, **kwargs):
  full_env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2",
                  **(env or {}))
  return subprocess.Popen([sys.executable, script_path, *map(str, args)],
                          env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kwargs)


def _finish(proc, timeout):
  try:
    output, _ = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    output, _ = proc.communicate()
    pytest.fail(f"worker timed out after {timeout} s:\n{output[-3000:]}")
  assert proc.returncode == 0, output[-3000:]
  return output


def _weights(path):
  saved = np.load(path)
  return [saved[f"w{i}"] for i in range(len(saved.files) - 2)]


@pytest.fixture(scope="module")
def worker_script(tmp_path_factory):
  path = tmp_path_factory.mktemp("scripts") / "worker.py"
  path.write_text(WORKER)
  return str(path)


def test_mirrored_matches_one_device(worker_script, image_folder, tmp_path):
  """Same global batch: the losses and updated weights of 2 replicas == 1 device."""
  runs = {}
  for name in ("default", "mirrored"):
    out = tmp_path / f"{name}.npz"
    _finish(_python(worker_script, name, image_folder, tmp_path / name, 3, out), 300)
    runs[name] = out
  one, two = np.load(runs["default"]), np.load(runs["mirrored"])
  assert int(one["replicas"]) == 1 and int(two["replicas"]) == 2
  np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
  for w1, w2 in zip(_weights(runs["default"]), _weights(runs["mirrored"])):
    np.testing.assert_allclose(w2, w1, rtol=1e-4, atol=1e-5)
  # Training moved the weights: the comparison is not between two initial states.
  assert one["losses"][-1] < one["losses"][0]


def _start_workers(worker_script, folder, model_dir, steps, out_dir, extra=None):
  ports = [_free_port(), _free_port()]
  cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
  procs = []
  for index in range(2):
    tf_config = json.dumps({"cluster": cluster,
                            "task": {"type": "worker", "index": index}})
    procs.append(_python(
        worker_script, "multi_worker", folder, model_dir, steps,
        os.path.join(out_dir, f"worker{index}.npz"),
        env={"TF_CONFIG": tf_config, "EXTRA": json.dumps(extra or {})},
        start_new_session=True))
  return procs


def test_multi_worker_matches_one_device_and_resumes(worker_script, image_folder,
                                                     tmp_path):
  """Two workers on 127.0.0.1 train 4 steps and end with equal weights, the losses
  and weights of one device fed the same global batches (each worker's shard side
  by side); the chief's checkpoint restores them; killed mid-run, a rerun resumes
  from the last checkpoint."""
  model_dir = str(tmp_path / "run")
  for proc in _start_workers(worker_script, image_folder, model_dir, 4, tmp_path):
    _finish(proc, 300)
  w0, w1 = _weights(tmp_path / "worker0.npz"), _weights(tmp_path / "worker1.npz")
  for a, b in zip(w0, w1):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  _finish(_python(worker_script, "default", image_folder, tmp_path / "one_device", 4,
                  tmp_path / "one_device.npz", env={"AS_SHARDS": "2"}), 300)
  one, two = np.load(tmp_path / "one_device.npz"), np.load(tmp_path / "worker0.npz")
  assert int(one["replicas"]) == 1 and int(two["replicas"]) == 2
  # `fit` logs the loss averaged over the loop so far; the multi-worker loop logs
  # each step's.
  steps = np.arange(1, len(two["losses"]) + 1)
  assert len(one["losses"]) == len(two["losses"]) == 4
  np.testing.assert_allclose(np.cumsum(two["losses"]) / steps, one["losses"],
                             rtol=1e-5)
  for a, b in zip(w0, _weights(tmp_path / "one_device.npz")):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  # Training moved the weights: the comparison is not between two initial states.
  assert two["losses"][-1] < two["losses"][0]
  checkpoints = os.listdir(os.path.join(model_dir, "checkpoints"))
  assert not [c for c in checkpoints if c.startswith("tmp_")], checkpoints
  model, optimizer, _ = training.build_and_restore(model_dir)
  assert int(optimizer.iterations.numpy()) == 4
  for a, b in zip(model.get_weights(), w0):
    np.testing.assert_allclose(a, b, rtol=1e-6)

  # Kill worker 1 once a later checkpoint exists; the chief then cannot go on.
  procs = _start_workers(worker_script, image_folder, model_dir, 10_000, tmp_path,
                         extra={"steps_per_loop": 2})
  manager_dir = os.path.join(model_dir, "checkpoints")
  deadline = time.time() + 240
  while tf.train.latest_checkpoint(manager_dir).endswith("-4"):
    assert time.time() < deadline, "no checkpoint after step 4"
    assert all(p.poll() is None for p in procs), procs[0].communicate()[0][-3000:]
    time.sleep(0.5)
  for proc in reversed(procs):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
  killed_at = int(tf.train.latest_checkpoint(manager_dir).rsplit("-", 1)[1])
  assert killed_at > 4

  # Rerun: both workers restore the chief's last checkpoint and finish 2 steps on
  # (validating at the end of the loop).
  procs = _start_workers(worker_script, image_folder, model_dir, killed_at + 2,
                         tmp_path, extra={"steps_per_loop": 2, "eval_every_loops": 1})
  for proc in procs:
    _finish(proc, 300)
  assert tf.train.latest_checkpoint(manager_dir).endswith(f"-{killed_at + 2}")
  for index in range(2):  # each worker ran only the 2 steps after the restore
    assert len(np.load(tmp_path / f"worker{index}.npz")["losses"]) == 2


def test_tpu_without_tpu_fails_fast(monkeypatch):
  monkeypatch.delenv("TPU_NAME", raising=False)
  start = time.time()
  with pytest.raises(distribute.DistributeError, match="found no TPU"):
    distribute.make_strategy("tpu")
  assert time.time() - start < 5


def test_tpu_flag_without_tpu_gives_clear_cli_error(tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "train.py"), "--strategy=tpu",
       f"--model_dir={tmp_path}"], capture_output=True, text=True, timeout=120,
      env=dict(os.environ, TPU_NAME=""))
  assert proc.returncode != 0
  assert "found no TPU" in proc.stderr and "Traceback" not in proc.stderr


def test_multi_worker_without_tf_config_says_how(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(distribute.DistributeError, match="TF_CONFIG"):
    distribute.make_strategy("multi_worker")


def test_unknown_strategy_is_rejected():
  with pytest.raises(distribute.DistributeError, match="Unknown --strategy"):
    distribute.make_strategy("horovod")


def test_batch_must_split_over_replicas():
  strategy = types.SimpleNamespace(num_replicas_in_sync=2)
  with pytest.raises(distribute.DistributeError, match="multiple of 2"):
    distribute.distribute_train_dataset(strategy, None, 7)


@pytest.mark.parametrize("task_type,task_id,cluster,expected", [
    (None, None, {}, True),
    ("chief", 0, {"chief": ["a:1"], "worker": ["b:1"]}, True),
    ("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]}, False),
    ("worker", 0, {"worker": ["a:1", "b:1"]}, True),
    ("worker", 1, {"worker": ["a:1", "b:1"]}, False),
])
def test_is_chief(task_type, task_id, cluster, expected):
  resolver = types.SimpleNamespace(
      task_type=task_type, task_id=task_id,
      cluster_spec=lambda: tf.train.ClusterSpec(cluster))
  strategy = types.SimpleNamespace(cluster_resolver=resolver)
  assert distribute.is_chief(strategy) is expected


@pytest.mark.parametrize("name", models.names())
def test_mixed_precision_keeps_float32_logits(name):
  config = models.ModelConfig(model=name, image_shape=(6, 6, 3), num_levels=256,
                              num_layers=1, hidden_dims=6, output_dims=6)
  with distribute.dtype_policy("mixed_bfloat16"):
    model = models.build(config)
  assert keras.config.dtype_policy().name == "float32"  # restored after the block
  images = np.random.default_rng(0).integers(0, 256, (2, 6, 6, 3), np.uint8)
  logits = model(images)
  assert logits.dtype == tf.float32
  assert all(w.dtype == "float32" for w in model.weights)
  assert np.all(np.isfinite(logits.numpy()))
  compute = {layer.compute_dtype for layer in model.layers if layer.weights}
  assert "bfloat16" in compute  # the body does run in bfloat16


def test_mixed_precision_trains_without_nan(image_folder, tmp_path):
  model_config = models.ModelConfig(image_shape=(8, 8, 1), num_levels=256,
                                    num_layers=1, hidden_dims=8, output_dims=16)
  train_config = configs.TrainConfig(
      dataset="folder:" + image_folder, image_size=8, batch_size=8, train_steps=20,
      steps_per_loop=10, eval_every_loops=0, summary_samples=0,
      learning_rate=3e-3, mixed_precision=True)
  history = []
  record = keras.callbacks.LambdaCallback(
      on_train_batch_end=lambda batch, logs: history.append(float(logs["loss"])))
  model = training.train(str(tmp_path), model_config, train_config, verbose=0,
                         callbacks=[record])
  assert len(history) == 20 and np.all(np.isfinite(history))
  assert history[-1] < history[0]
  assert model.output.dtype == "float32"
  assert model.get_layer("block0_conv").compute_dtype == "bfloat16"
