"""Training, exact evaluation and sampling driven by a `model_dir`.

`model_dir/` holds everything needed to continue, evaluate or export a run:

  config.json          {"model": ModelConfig, "train": TrainConfig}, written before step 1
  checkpoints/         tf.train.Checkpoint of model + optimizer (step = optimizer.iterations)
  logs/                TensorBoard events: loss and bits/dim per loop, validation, samples
  eval_<split>.json    {"split", "num_examples", "nll_nats", "bits_per_dim", "step"}
  samples.png          --mode=sample output
"""

import dataclasses
import functools
import json
import math
import os
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf import data
from pixelrnn_tf import distribute
from pixelrnn_tf import distributions
from pixelrnn_tf import models
from pixelrnn_tf import sampling

CONFIG_FILE = "config.json"
LR_SCHEDULES = ("constant", "cosine")


class TrainingError(RuntimeError):
  """Training cannot go on (NaN loss, unusable checkpoint, mismatched config)."""


@dataclasses.dataclass
class TrainConfig:
  """How a model is trained; saved beside the checkpoints.

  Attributes:
    dataset: `pixelrnn_tf.data` dataset name or `folder:/path`.
    data_dir: TFDS data dir (None: `$TFDS_DATA_DIR` or TFDS's default).
    image_size: side of folder images after resize and crop (folders only).
    batch_size: global batch size.
    train_steps: optimizer steps in total (a resumed run counts the steps done).
    learning_rate: Adam learning rate (the peak one under a warmup or decay).
    lr_schedule: "constant", or "cosine": decay to 0 at `train_steps` along half a
      cosine (`keras.optimizers.schedules.CosineDecay`).
    warmup_steps: ramp the learning rate linearly from 0 over this many first
      steps (0: none).
    steps_per_loop: steps between checkpoints and summaries (one Keras "epoch").
    eval_every_loops: validate on `eval_examples` images every this many loops
      (0: never during training).
    eval_examples: images of the evaluation split used for periodic validation.
    jit_compile: compile the train and evaluation steps and the naive samplers with
      XLA (off by default: on CPU the steps run faster without it,
      bench/step_time.py). The cached samplers always compile
      (`sampling.prefers_xla`: several times faster).
    mixed_precision: compute in float16 (GPU, with loss scaling) or bfloat16
      (TPU/CPU) with float32 weights; the logits, head and loss stay float32.
    summary_samples: images sampled into TensorBoard at the end of training (0:
      none).
    seed: seeds weights, shuffling and samples.
  """
  dataset: str = "binarized_mnist"
  data_dir: str | None = None
  image_size: int | None = None
  batch_size: int = 64
  train_steps: int = 20_000
  learning_rate: float = 1e-3
  lr_schedule: str = "constant"
  warmup_steps: int = 0
  steps_per_loop: int = 500
  eval_every_loops: int = 1
  eval_examples: int = 10_000
  jit_compile: bool = False
  mixed_precision: bool = False
  summary_samples: int = 16
  seed: int = 0

  def __post_init__(self):
    for name in ("batch_size", "train_steps", "steps_per_loop"):
      if getattr(self, name) < 1:
        raise ValueError(f"Invalid `{name}`. Expected >= 1. "
                         f"Received: {name}={getattr(self, name)}")
    if self.summary_samples < 0:
      raise ValueError("Invalid `summary_samples`. Expected >= 0. "
                       f"Received: summary_samples={self.summary_samples}")
    if not self.learning_rate > 0:
      raise ValueError("Invalid `learning_rate`. Expected > 0. "
                       f"Received: learning_rate={self.learning_rate}")
    if self.lr_schedule not in LR_SCHEDULES:
      raise ValueError(f"Invalid `lr_schedule`. Expected one of {LR_SCHEDULES}. "
                       f"Received: lr_schedule={self.lr_schedule!r}")
    if not 0 <= self.warmup_steps < self.train_steps:
      raise ValueError("Invalid `warmup_steps`. Expected >= 0 and < train_steps "
                       f"({self.train_steps}). Received: "
                       f"warmup_steps={self.warmup_steps}")


def learning_rate_schedule(train_config):
  """Returns `train_config`'s learning rate as a function of the step."""
  return warmup_then(train_config.lr_schedule, train_config.learning_rate,
                     train_config.train_steps, train_config.warmup_steps)


def warmup_then(lr_schedule, peak, end, warmup):
  """Returns a learning rate as a function of progress (steps, or seconds).

  A `keras.optimizers.schedules.CosineDecay`: linear warmup from 0 to `peak` over
  `warmup`, then `peak` held ("constant": `alpha=1`, nothing to decay) or decayed
  along half a cosine to 0 at `end` ("cosine"), and held there after `end`.
  """
  return keras.optimizers.schedules.CosineDecay(
      initial_learning_rate=0.0, decay_steps=end - warmup,
      alpha=1.0 if lr_schedule == "constant" else 0.0,
      warmup_target=peak, warmup_steps=warmup)


class _ScheduleLearningRate(keras.callbacks.Callback):
  """Sets the optimizer's learning rate to `schedule(step)` before every step.

  The optimizer keeps its float learning-rate variable (rather than owning the
  schedule), so its checkpoints stay the same whatever the schedule and a model
  resumes under another `--lr_schedule` or `--train_steps`.
  """

  def __init__(self, schedule):
    super().__init__()
    self.schedule = schedule

  def on_train_batch_begin(self, batch, logs=None):
    optimizer = self.model.optimizer
    optimizer.learning_rate = self.schedule(optimizer.iterations)


def save_config(model_dir, model_config, train_config):
  """Writes `model_dir/config.json` (atomically)."""
  tf.io.gfile.makedirs(model_dir)
  text = json.dumps({"model": dataclasses.asdict(model_config),
                     "train": dataclasses.asdict(train_config)}, indent=2)
  tmp = os.path.join(model_dir, CONFIG_FILE + ".tmp")
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(text)
  tf.io.gfile.rename(tmp, os.path.join(model_dir, CONFIG_FILE), overwrite=True)


def load_config(model_dir):
  """Returns `(ModelConfig, TrainConfig)` saved in `model_dir`."""
  path = os.path.join(model_dir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise TrainingError(
        f"No {CONFIG_FILE} in model_dir {model_dir!r}: train a model there first "
        "(--mode=train), or pass the --model_dir of a trained model.")
  with tf.io.gfile.GFile(path) as f:
    saved = json.load(f)
  return models.ModelConfig(**saved["model"]), TrainConfig(**saved["train"])


def model_config_for_dataset(train_config, conditional=False, **model_args):
  """Returns a `ModelConfig` whose image shape and levels come from the dataset.

  With `conditional`, the model is conditioned on the dataset's class labels.

  Raises:
    TrainingError: `conditional` but the dataset has no class labels.
  """
  _, info = data.load(train_config.dataset, "train", train_config.data_dir,
                      train_config.image_size)
  if conditional and not info.num_classes:
    raise TrainingError(
        f"Dataset {train_config.dataset!r} has no class labels, so a model cannot "
        "be conditioned on them. Drop --conditional, or use a labelled dataset "
        "(mnist, fashion_mnist, cifar10, or a folder with one subfolder per class).")
  return models.ModelConfig(image_shape=info.image_shape,
                            num_levels=info.num_levels,
                            num_classes=info.num_classes if conditional else 0,
                            **model_args)


def build_and_restore(model_dir, model_config=None, learning_rate=1e-3):
  """Builds the network, an Adam optimizer and restores the latest checkpoint.

  Returns:
    `(model, optimizer, manager)`; `optimizer.iterations` is the restored step (0
    when `model_dir` has no checkpoint yet).

  Raises:
    TrainingError: a checkpoint exists but cannot be read (corrupt or from another
      model); the message names the file and how to recover.
  """
  model_config = model_config or load_config(model_dir)[0]
  model = models.build(model_config)
  optimizer = keras.optimizers.Adam(learning_rate)
  optimizer.build(model.trainable_variables)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(model_dir, "checkpoints"), max_to_keep=3)
  if manager.latest_checkpoint:
    try:
      checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    except Exception as e:  # pylint: disable=broad-except  # any unreadable file
      raise TrainingError(
          f"Cannot restore checkpoint {manager.latest_checkpoint}: {e}. The file is "
          "corrupt or belongs to a different model config. Delete it (and its entry "
          f"in {manager.directory}/checkpoint) to fall back to an earlier one, or "
          "train in a new --model_dir.") from e
    logging.info("Restored %s at step %d", manager.latest_checkpoint,
                 int(optimizer.iterations.numpy()))
  return model, optimizer, manager


class _CheckpointAndStopOnNaN(keras.callbacks.Callback):
  """Saves a checkpoint after every loop whose loss is finite; stops on NaN/inf."""

  def __init__(self, manager, optimizer, strategy):
    super().__init__()
    self.manager = manager
    self.optimizer = optimizer
    self.strategy = strategy
    self.bad_step = None

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    if loss is not None and not math.isfinite(float(loss)):
      self.bad_step = int(self.optimizer.iterations.numpy())
      self.model.stop_training = True

  def on_epoch_end(self, epoch, logs=None):
    if self.bad_step is None:
      distribute.save_checkpoint(self.manager, int(self.optimizer.iterations.numpy()),
                                 self.strategy)


def train(model_dir, model_config, train_config, strategy=None, verbose=1,
          callbacks=()):
  """Trains (or resumes) the model in `model_dir` up to `train_config.train_steps`.

  Resumes from the latest checkpoint in `model_dir`; a run killed at any point loses
  at most the steps since the last loop. Writes config.json before the first step.
  Under a multi-worker `strategy` every worker runs this with the same arguments
  (a shared `model_dir`); only the chief writes config, checkpoints and summaries.

  Args:
    model_dir: where config, checkpoints and logs go.
    model_config: `models.ModelConfig`.
    train_config: `TrainConfig`.
    strategy: a `tf.distribute.Strategy` (default: the current one).
    verbose: Keras progress bar (1) or none (0).
    callbacks: extra `keras.callbacks.Callback`s for `fit`.

  Returns:
    The trained `keras.Model`.

  Raises:
    TrainingError: the loss became NaN/inf (the last good checkpoint is kept), or
      `model_dir` holds a different model.
  """
  strategy = strategy or tf.distribute.get_strategy()
  chief = distribute.is_chief(strategy)
  _check_same_model(model_dir, model_config)
  if chief:
    save_config(model_dir, model_config, train_config)
  keras.utils.set_random_seed(train_config.seed)
  train_ds, info = data.load(train_config.dataset, "train", train_config.data_dir,
                             train_config.image_size)
  _check_dataset_fits(train_ds, info, model_config)
  labels = bool(model_config.num_classes)
  policy = (distribute.mixed_precision_policy() if train_config.mixed_precision
            else "float32")
  with strategy.scope(), distribute.dtype_policy(policy):
    model, optimizer, manager = build_and_restore(
        model_dir, model_config, train_config.learning_rate)
    optimizer.learning_rate = train_config.learning_rate
    model.compile(optimizer=optimizer,
                  loss=distributions.NegativeLogLikelihood(model_config.num_levels),
                  metrics=[distributions.bits_per_dim_metric(
                      model_config.num_levels, model_config.image_shape)],
                  jit_compile=train_config.jit_compile)
  step = int(optimizer.iterations.numpy())
  if step >= train_config.train_steps:
    logging.info("Already trained %d steps in %s; nothing to do.", step, model_dir)
    return model
  guard = _CheckpointAndStopOnNaN(manager, optimizer, strategy)
  callbacks = [guard, *callbacks]
  if train_config.lr_schedule != "constant" or train_config.warmup_steps:
    callbacks.insert(0, _ScheduleLearningRate(learning_rate_schedule(train_config)))
  if chief:
    callbacks.append(keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")))
  validation = {}
  if train_config.eval_every_loops:
    eval_split = data.default_eval_split(train_config.dataset)
    val_ds, _ = data.load(train_config.dataset, eval_split, train_config.data_dir,
                          train_config.image_size)
    validation = dict(
        validation_data=data.eval_pipeline(
            val_ds.take(train_config.eval_examples).cache(), 256, labels),
        validation_freq=train_config.eval_every_loops)
  start = time.time()
  fit = model.fit
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    fit = functools.partial(_fit_multi_worker, model, strategy,
                            model_config.num_levels, train_config.batch_size)
  for first_loop, loop_steps, end_loop in loop_runs(
      step, train_config.train_steps, train_config.steps_per_loop):
    step = int(optimizer.iterations.numpy())
    # A resumed run (step > 0) draws a new image order rather than replaying one.
    train_input = distribute.distribute_train_dataset(
        strategy, functools.partial(_train_shard, train_ds, train_config.seed + step,
                                    labels),
        train_config.batch_size)
    fit(train_input, steps_per_epoch=loop_steps, initial_epoch=first_loop,
        epochs=end_loop, callbacks=callbacks, verbose=verbose, **validation)
    if guard.bad_step is not None:
      raise TrainingError(
          f"Loss became NaN or inf near step {guard.bad_step}. Training stopped; the "
          f"last good checkpoint {manager.latest_checkpoint} is kept. Lower "
          "--learning_rate or check the data, then rerun the same command to resume.")
  logging.info("Trained to step %d in %.0f s", int(optimizer.iterations.numpy()),
               time.time() - start)
  if chief and train_config.summary_samples:
    _write_sample_summary(model_dir, model, model_config, train_config,
                          int(optimizer.iterations.numpy()))
  return model


def loop_runs(step, train_steps, steps_per_loop):
  """Returns the `fit` calls `[(initial_epoch, steps_per_epoch, epochs)]` from `step`.

  Loops (one Keras epoch each: a checkpoint and summaries at its end) end at the
  multiples of `steps_per_loop` and at `train_steps`, so epoch `e` covers the steps
  after `e * steps_per_loop` and training stops at exactly `train_steps`. A run
  resumed between two loop ends (a new `--steps_per_loop` or `--train_steps`, or a
  model saved by bench/race_tfp.py) first finishes that loop in a call of its own;
  a last partial loop gets a call of its own too.
  """
  runs = []
  loop, offset = divmod(step, steps_per_loop)
  if offset and step < train_steps:  # finish the loop the last run stopped in
    end = min((loop + 1) * steps_per_loop, train_steps)
    runs.append((loop, end - step, loop + 1))
    step, loop = end, loop + 1
  whole_loops = max(train_steps - step, 0) // steps_per_loop
  if whole_loops:
    runs.append((loop, steps_per_loop, loop + whole_loops))
    step, loop = step + whole_loops * steps_per_loop, loop + whole_loops
  if step < train_steps:
    runs.append((loop, train_steps - step, loop + 1))
  return runs


def _train_shard(train_ds, seed, labels, shards, index, batch_size):
  """The training pipeline of one input shard (`distribute_train_dataset`'s fn)."""
  return data.train_pipeline(train_ds.shard(shards, index), batch_size, seed=seed,
                             labels=labels)


def _fit_multi_worker(model, strategy, num_levels, global_batch_size, train_input,
                      steps_per_epoch, initial_epoch, epochs, callbacks, verbose,
                      validation_data=None, validation_freq=1):
  """`model.fit` for `MultiWorkerMirroredStrategy`, which Keras 3 `fit` cannot run.

  Keras 3.15 `fit` fails under that strategy on every `(x, y)` dataset (it
  all-reduces the peeked input batch and the per-step metrics across workers;
  keras-team/keras#20585). This loop runs the same optimizer step with
  `strategy.run` (the Keras optimizer all-reduces the gradients), drives the same
  callbacks (checkpoints, NaN stop, TensorBoard) and logs each loop's mean loss and
  validation NLL. The arguments after `global_batch_size` are `fit`'s.
  """
  callback_list = keras.callbacks.CallbackList(callbacks, model=model)
  step = _distributed_train_step(model, strategy, num_levels, global_batch_size)
  iterator = iter(train_input)
  model.stop_training = False
  callback_list.on_train_begin()
  for epoch in range(initial_epoch, epochs):
    callback_list.on_epoch_begin(epoch)
    losses = []
    for batch in range(steps_per_epoch):
      callback_list.on_train_batch_begin(batch)
      losses.append(float(step(iterator)))
      callback_list.on_train_batch_end(batch, {"loss": losses[-1]})
      if model.stop_training:
        break
    logs = {"loss": float(np.mean(losses))}
    if validation_data is not None and (epoch + 1) % validation_freq == 0:
      logs["val_loss"], _ = mean_nll(model, validation_data, num_levels)
    if verbose:
      logging.info("loop %d/%d: %s", epoch + 1, epochs, logs)
    callback_list.on_epoch_end(epoch, logs)
    if model.stop_training:
      break
  callback_list.on_train_end()


def _distributed_train_step(model, strategy, num_levels, global_batch_size):
  """Returns `fn(iterator) -> loss`: one synchronous step on every replica.

  The loss is the mean NLL (nats per image) over the global batch; gradients are
  summed over replicas by the Keras optimizer, as in `fit`.
  """
  optimizer = model.optimizer

  def replica_step(inputs, images):
    with tf.GradientTape() as tape:
      nll = -distributions.log_prob(model(inputs, training=True), images,
                                    num_levels)
      loss = tf.nn.compute_average_loss(nll, global_batch_size=global_batch_size)
      scaled = optimizer.scale_loss(loss)  # loss scaling under mixed_float16
    grads = tape.gradient(scaled, model.trainable_variables)
    optimizer.apply(grads, model.trainable_variables)
    return loss

  @tf.function
  def step(iterator):
    inputs, images = next(iterator)
    return strategy.reduce("SUM", strategy.run(replica_step, args=(inputs, images)),
                           axis=None)

  return step


def _write_sample_summary(model_dir, model, model_config, train_config, step):
  seed = tf.constant([train_config.seed, step], tf.int32)
  num_samples = train_config.summary_samples
  images = _sampler_function(lambda: sampling.sample(
      model, num_samples, model_config.image_shape, model_config.num_levels, seed,
      sample_labels(model_config, num_samples)), model, train_config)()
  grid = sampling.image_grid(to_display(images, model_config.num_levels))
  writer = tf.summary.create_file_writer(os.path.join(model_dir, "logs", "samples"))
  with writer.as_default():
    tf.summary.image("samples", grid[None], step=step)
  writer.close()


def evaluate(model_dir, split=None, batch_size=256, data_dir=None):
  """Exact NLL of the latest checkpoint over a whole split; writes eval_<split>.json.

  Returns:
    `{"split", "num_examples", "nll_nats", "bits_per_dim", "step"}`: `nll_nats` is
    the mean of `-log p(image)` in nats per image over every image of the split,
    `bits_per_dim` the same divided by `H*W*C*ln 2`.
  """
  model_config, train_config = load_config(model_dir)
  split = split or data.default_eval_split(train_config.dataset)
  ds, _ = data.load(train_config.dataset, split, data_dir or train_config.data_dir,
                    train_config.image_size)
  model, optimizer, manager = build_and_restore(model_dir, model_config)
  if not manager.latest_checkpoint:
    raise TrainingError(f"No checkpoint in {manager.directory}: train first.")

  batches = data.eval_pipeline(ds, batch_size, bool(model_config.num_classes))
  nats, count = mean_nll(model, batches, model_config.num_levels,
                         train_config.jit_compile)
  result = {"split": split, "num_examples": count, "nll_nats": nats,
            "bits_per_dim": float(distributions.bits_per_dim(
                nats, model_config.image_shape)),
            "step": int(optimizer.iterations.numpy())}
  with tf.io.gfile.GFile(os.path.join(model_dir, f"eval_{split}.json"), "w") as f:
    json.dump(result, f, indent=2)
  return result


def mean_nll(model, batches, num_levels, jit_compile=False):
  """Exact mean `-log p(image)` in nats over `(inputs, images)` batches
  (`data.eval_pipeline`).

  Returns:
    `(nll_nats, num_images)`, summed in float64 over every image of `batches`.

  Raises:
    TrainingError: `batches` holds no image (an empty split).
  """

  @tf.function(jit_compile=jit_compile)
  def batch_nll(inputs, images):
    return -distributions.log_prob(model(inputs, training=False), images,
                                   num_levels)

  total, count = 0.0, 0
  for inputs, images in batches:
    nll = batch_nll(inputs, images).numpy().astype(np.float64)
    total += nll.sum()
    count += nll.size
  if not count:
    raise TrainingError("No images to score: the split is empty. Check --split "
                        "and --dataset.")
  return total / count, count


def write_samples(model_dir, num_samples=16, seed=0, known_rows=0, split=None):
  """Samples (or, with `known_rows` > 0, completes split images) to a PNG grid.

  Writes `model_dir/samples.png` (or `completions.png`) and returns its path. A
  class-conditional model samples image `n` of class `n % num_classes` (grid row
  by row) and completes each split image given its own label.
  """
  model_config, train_config = load_config(model_dir)
  model, _, manager = build_and_restore(model_dir, model_config)
  if not manager.latest_checkpoint:
    raise TrainingError(f"No checkpoint in {manager.directory}: train first.")
  seed = tf.constant([seed, 0], tf.int32)
  run = lambda fn: _sampler_function(fn, model, train_config)
  if known_rows:
    if model_config.model == "multiscale":
      logging.warning(
          "Completions of a multiscale model are approximate: its small image "
          "(x[::2, ::2]) is drawn first, and those draws do not read the known "
          "pixels off that grid.")
    split = split or data.default_eval_split(train_config.dataset)
    ds, _ = data.load(train_config.dataset, split, train_config.data_dir,
                      train_config.image_size)
    originals = next(iter(ds.batch(num_samples)))
    labels = originals["label"] if model_config.num_classes else None
    width, channels = model_config.image_shape[1:]
    images = run(lambda x: sampling.complete(
        model, x, known_rows * width * channels, model_config.num_levels, seed,
        labels))(originals["image"])
    originals = originals["image"]
    images = tf.concat([originals, images], axis=2)  # side by side
    name = "completions.png"
  else:
    images = run(lambda: sampling.sample(
        model, num_samples, model_config.image_shape, model_config.num_levels,
        seed, sample_labels(model_config, num_samples)))()
    name = "samples.png"
  grid = sampling.image_grid(to_display(images, model_config.num_levels))
  path = os.path.join(model_dir, name)
  tf.io.write_file(path, tf.io.encode_png(grid))
  return path


def sample_labels(model_config, num_samples):
  """Classes `0, 1, .., num_classes-1, 0, ..` for `num_samples` images of a
  class-conditional model, int32 `(num_samples,)`; None for other models."""
  if not model_config.num_classes:
    return None
  return tf.range(num_samples, dtype=tf.int32) % model_config.num_classes


def _sampler_function(fn, model, train_config):
  """`tf.function(fn)`, compiled with XLA under --jit_compile or where the sampler
  prefers it (`sampling.prefers_xla`)."""
  return tf.function(
      fn, jit_compile=train_config.jit_compile or sampling.prefers_xla(model))


def to_display(images, num_levels):
  """Scales integer levels to 0..255 uint8 for viewing."""
  return tf.cast(tf.cast(images, tf.int32) * (255 // (num_levels - 1)), tf.uint8)


def _check_same_model(model_dir, model_config):
  if tf.io.gfile.exists(os.path.join(model_dir, CONFIG_FILE)):
    saved, _ = load_config(model_dir)
    if saved != model_config:
      raise TrainingError(
          f"model_dir {model_dir!r} holds a different model ({saved}); this run asks "
          f"for {model_config}. Use a new --model_dir, or the same model flags to "
          "resume.")


def _check_dataset_fits(ds, info, model_config):
  shape = tuple(ds.element_spec["image"].shape)
  if shape != model_config.image_shape:
    raise TrainingError(
        f"Dataset images have shape {shape} but the model expects "
        f"{model_config.image_shape}.")
  if model_config.num_classes and info.num_classes != model_config.num_classes:
    raise TrainingError(
        f"The model is conditioned on {model_config.num_classes} classes but the "
        f"dataset has {info.num_classes}. Train it on the dataset it was built for, "
        "or start a new --model_dir.")
