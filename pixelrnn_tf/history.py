"""The training history of a model: one record per run of `training.train`.

`model_dir/history.json` is a list of records, oldest first:

  {"command": [argv...], "start": ISO-8601 UTC, "end": ISO-8601 UTC,
   "wall_seconds": float, "first_step": int, "last_step": int,
   "machine": {"cpu", "cpu_features", "cpu_count", "tensorflow"},
   "model_dir": the directory the run trained in}

A model initialized from another (`--init_from`) starts its history with its
parent's records, so `total_hours` is the wall time of every run that shaped its
weights. The shipped models' cards (`pixelrnn_tf.pretrained`) are made from it.
"""

import datetime
import json
import os
import platform
import sys

import tensorflow as tf

HISTORY_FILE = "history.json"
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_model():
  """The CPU's model name from /proc/cpuinfo (Linux), else `platform.processor()`."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def cpu_features(wanted=CPU_FEATURES, cpuinfo="/proc/cpuinfo"):
  """Which of the instruction sets `wanted` the CPU reports (the `flags` line of
  Linux's cpuinfo; empty elsewhere): they decide whether oneDNN and bfloat16 pay."""
  try:
    with open(cpuinfo) as f:
      for line in f:
        if line.startswith("flags"):
          flags = set(line.split(":", 1)[1].split())
          return [name for name in wanted if name in flags]
  except OSError:
    pass
  return []


def machine():
  """The machine a run trains on: CPU model, instruction sets, cores, TF version."""
  return {"cpu": cpu_model(), "cpu_features": cpu_features(),
          "cpu_count": os.cpu_count(), "tensorflow": tf.__version__}


def now():
  """The current UTC time, ISO 8601 to the second."""
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read(model_dir):
  """The records of `model_dir` (an empty list when it has none)."""
  path = os.path.join(model_dir, HISTORY_FILE)
  if not tf.io.gfile.exists(path):
    return []
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def write(model_dir, records):
  """Replaces `model_dir`'s history with `records` (atomically)."""
  tf.io.gfile.makedirs(model_dir)
  path = os.path.join(model_dir, HISTORY_FILE)
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "w") as f:
    json.dump(records, f, indent=2)
  tf.io.gfile.rename(tmp, path, overwrite=True)


class Run:
  """Records one training run in `model_dir`'s history while it goes on.

  `start(step)` appends a record; `update(step)` sets its end time and last step
  (called after every loop, so a killed run keeps the time up to its last
  checkpoint).
  """

  def __init__(self, model_dir, command=None):
    self._model_dir = model_dir
    self._command = list(sys.argv if command is None else command)
    self._records = None
    self._started = None

  def start(self, step):
    self._records = read(self._model_dir)
    self._started = datetime.datetime.now(datetime.timezone.utc)
    self._records.append({
        "command": self._command, "start": now(), "end": now(),
        "wall_seconds": 0.0, "first_step": int(step), "last_step": int(step),
        "machine": machine(), "model_dir": os.path.abspath(self._model_dir)})
    write(self._model_dir, self._records)

  def update(self, step):
    ended = datetime.datetime.now(datetime.timezone.utc)
    self._records[-1].update(
        end=ended.isoformat(timespec="seconds"), last_step=int(step),
        wall_seconds=round((ended - self._started).total_seconds(), 1))
    write(self._model_dir, self._records)


def total_hours(records):
  """The wall time of all `records`, in hours."""
  return sum(r["wall_seconds"] for r in records) / 3600.0


def total_steps(records):
  """The optimizer steps of all `records`: a fine-tuned model counts its parent's
  steps and its own (its step counter starts again at 0)."""
  return sum(r["last_step"] - r["first_step"] for r in records)
