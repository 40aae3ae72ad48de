"""Training, exact evaluation and sampling driven by a `model_dir`.

`model_dir/` holds everything needed to continue, evaluate or export a run:

  config.json          {"model": ModelConfig, "train": TrainConfig} (`configs`),
                       written before step 1
  checkpoints/         tf.train.Checkpoint of model + optimizer (step = optimizer.iterations)
  history.json         one record per training run: command, times, steps, machine
  logs/                TensorBoard events: loss and bits/dim per loop, validation, samples
  eval_<split>.json    {"split", "num_examples", "nll_nats", "bits_per_dim", "step"}
  samples.png          --mode=sample output

Evaluation and sampling also read a shipped model's folder (`pixelrnn_tf.pretrained`),
which holds Keras weights instead of checkpoints (`load_trained`).
"""

import dataclasses
import functools
import json
import math
import os
import signal
import threading
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from pixelrnn_tf import configs
from pixelrnn_tf import data
from pixelrnn_tf import distribute
from pixelrnn_tf import distributions
from pixelrnn_tf import history
from pixelrnn_tf import models
from pixelrnn_tf import pretrained
from pixelrnn_tf import sampling


class TrainingError(RuntimeError):
  """Training cannot go on (NaN loss, unusable checkpoint, mismatched config)."""


class Interrupted(TrainingError):
  """Training was interrupted (Ctrl-C); a checkpoint of the last step was saved."""


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

def load_split(train_config, split):
  """`data.load` of `split` of the dataset `train_config` trains on, read the same
  way (folder images converted, quantized and checked as in training)."""
  return data.load(train_config.dataset, split, train_config.data_dir,
                   train_config.image_size, channels=train_config.channels,
                   num_levels=train_config.num_levels,
                   bad_files=train_config.bad_files)


def model_config_for_dataset(train_config, conditional=False, **model_args):
  """Returns a `ModelConfig` whose image shape and levels come from the dataset.

  With `conditional`, the model is conditioned on the dataset's class labels.

  Raises:
    TrainingError: `conditional` but the dataset has no class labels.
  """
  _, info = load_split(train_config, "train")
  if conditional and not info.num_classes:
    raise TrainingError(
        f"Dataset {train_config.dataset!r} has no class labels, so a model cannot "
        "be conditioned on them. Drop --conditional, or use a labelled dataset "
        "(mnist, fashion_mnist, cifar10, or a folder with one subfolder per class).")
  return models.ModelConfig(image_shape=info.image_shape,
                            num_levels=info.num_levels,
                            num_classes=info.num_classes if conditional else 0,
                            class_names=info.class_names if conditional else (),
                            **model_args)


def build_and_restore(model_dir, model_config=None, learning_rate=1e-3):
  """Builds the network, an Adam optimizer and restores the newest intact checkpoint.

  A checkpoint that cannot be read (a truncated or corrupt file) is moved to
  `checkpoints/corrupt/`, kept, and logged; the newest one that reads is restored.

  Returns:
    `(model, optimizer, manager)`; `optimizer.iterations` is the restored step (0
    when `model_dir` has no checkpoint yet).

  Raises:
    TrainingError: checkpoints exist but none can be restored (corrupt, or from
      another model config); the message names them and says what to do.
  """
  model_config = model_config or configs.load_config(model_dir)[0]
  model = models.build(model_config)
  optimizer = keras.optimizers.Adam(learning_rate)
  optimizer.build(model.trainable_variables)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
  directory = os.path.join(model_dir, "checkpoints")
  manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=3)
  failures = []
  for path in reversed(manager.checkpoints):
    try:
      checkpoint.restore(path).assert_existing_objects_matched()
    except Exception as e:  # pylint: disable=broad-except  # any unreadable file
      failures.append((path, _first_line(e)))
      continue
    if failures:
      manager = _set_aside(checkpoint, directory, [p for p, _ in failures])
      for bad, reason in failures:
        logging.warning("Skipped checkpoint %s (%s); moved it to %s/corrupt/.", bad,
                        reason, directory)
    logging.info("Restored %s at step %d", path, int(optimizer.iterations.numpy()))
    return model, optimizer, manager
  if failures:
    bad, reason = failures[0]
    raise TrainingError(
        f"No checkpoint in {directory} can be restored; the newest, {bad}: {reason}. "
        "They are corrupt or belong to another model than config.json describes: "
        "check that config.json is the one this model was trained with, or train in "
        "a new --model_dir.")
  return model, optimizer, manager


def _set_aside(checkpoint, directory, paths):
  """Moves the files of checkpoints `paths` to `directory/corrupt/` and returns a
  new manager of `checkpoint` over the checkpoints left."""
  corrupt = os.path.join(directory, "corrupt")
  tf.io.gfile.makedirs(corrupt)
  for path in paths:
    for name in tf.io.gfile.glob(path + ".*"):
      tf.io.gfile.rename(name, os.path.join(corrupt, os.path.basename(name)),
                         overwrite=True)
  state = tf.train.get_checkpoint_state(directory)
  kept = [p for p in state.all_model_checkpoint_paths if p not in paths]
  tf.compat.v1.train.update_checkpoint_state(
      directory, kept[-1], all_model_checkpoint_paths=kept)
  return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=3)


def _first_line(error):
  """The first line of an exception's message, for one-line logs and errors."""
  text = getattr(error, "message", None) or str(error) or type(error).__name__
  return text.strip().splitlines()[0]


# Trained models: a model_dir (checkpoints) or a shipped folder (Keras weights). --

def resolve_source(spec):
  """The folder of a trained model: `pretrained:NAME` -> `pretrained.path(NAME)`,
  anything else is a model_dir (or a shipped model's folder) as given."""
  if spec.startswith(pretrained.PREFIX):
    return pretrained.path(spec[len(pretrained.PREFIX):])
  return spec


def load_trained(source):
  """The trained network of `source`, a model_dir or a shipped model's folder.

  Returns:
    `(model, model_config, train_config, step)`: the network (float32) with the
    newest intact checkpoint's weights (a model_dir) or `model.weights.h5`'s (a
    shipped folder, whose step is its card's `checkpoint_step`).

  Raises:
    TrainingError: nothing trained there.
  """
  model_config, train_config = configs.load_config(source)
  weights = os.path.join(source, pretrained.WEIGHTS_FILE)
  if tf.io.gfile.exists(weights):
    model = models.build(model_config)
    model.load_weights(weights)
    with tf.io.gfile.GFile(os.path.join(source, pretrained.CARD_FILE)) as f:
      return model, model_config, train_config, int(
          json.load(f)["checkpoint_step"])
  model, optimizer, manager = build_and_restore(source, model_config)
  if not manager.latest_checkpoint:
    raise TrainingError(
        f"No checkpoint in {manager.directory}: there is no trained model in "
        f"{source!r}. Train first (--mode=train), or pass the --model_dir of a "
        "trained model or --pretrained=NAME.")
  return model, model_config, train_config, int(optimizer.iterations.numpy())


def check_init_fits(source_config, model_config, source):
  """Refuses to start `model_config` from the weights of `source_config`.

  Everything that shapes the weights must agree: family, image shape, levels,
  classes and sizes (dropout may differ: it has no weights).

  Raises:
    TrainingError: naming the first field that differs and both values.
  """
  for field in ("model", "image_shape", "num_levels", "num_classes", "num_layers",
                "hidden_dims", "output_dims", "kernel_width"):
    ours, theirs = getattr(model_config, field), getattr(source_config, field)
    if ours != theirs:
      raise TrainingError(
          f"--init_from={source} holds a model with {field}={theirs!r}, but this "
          f"run's model has {field}={ours!r} (from the dataset or the flags). "
          "Fine-tuning needs the same family, image shape, levels, classes and "
          "sizes: use data and flags that fit it.")


def _init_from(model, model_config, spec, model_dir):
  """Sets `model`'s weights from `spec` (`TrainConfig.init_from`) and, when
  `model_dir` is given, starts its history with the source's."""
  source = resolve_source(spec)
  source_model, source_config, _, step = load_trained(source)
  check_init_fits(source_config, model_config, spec)
  model.set_weights(source_model.get_weights())
  logging.info("Initialized from %s (trained %d steps); the optimizer starts anew.",
               source, step)
  if model_dir and not history.read(model_dir):
    history.write(model_dir, history.read(source))


class _CheckpointAndStopOnNaN(keras.callbacks.Callback):
  """Saves a checkpoint after every loop whose loss is finite; stops on NaN/inf.

  Each save also updates the run's record in `model_dir/history.json`.
  """

  def __init__(self, manager, optimizer, strategy, run=None):
    super().__init__()
    self.manager = manager
    self.optimizer = optimizer
    self.strategy = strategy
    self.run = run  # a `history.Run` (the chief's), or None
    self.bad_step = None

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    if loss is not None and not math.isfinite(float(loss)):
      self.bad_step = int(self.optimizer.iterations.numpy())
      self.model.stop_training = True

  def on_epoch_end(self, epoch, logs=None):
    if self.bad_step is None:
      self.save()

  def save(self):
    """Checkpoints the current step (once) and records it in the run's history."""
    step = int(self.optimizer.iterations.numpy())
    if self.manager.latest_checkpoint != self._path(step):
      distribute.save_checkpoint(self.manager, step, self.strategy)
    if self.run is not None:
      self.run.update(step)

  def _path(self, step):
    return os.path.join(self.manager.directory, f"ckpt-{step}")


class _InterruptAtStepEnd(keras.callbacks.Callback):
  """Raises Ctrl-C's KeyboardInterrupt at the next step's end, not wherever it lands.

  Python raises it in whatever the main thread runs when SIGINT arrives; during
  TensorFlow's tracing that can be a finalizer (`__del__`), which swallows it, and
  training would go on. Used as a context manager (main thread only), it makes a
  first Ctrl-C set a flag that the callback raises at the next batch, validation
  batch or loop start; that Ctrl-C also puts the previous handler back, so a second
  one interrupts at once.
  """

  def __init__(self):
    super().__init__()
    self.requested = False
    self._installed = False
    self._previous = signal.SIG_DFL

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      # None: a handler not set from Python; the default stands in for it.
      self._previous = signal.signal(signal.SIGINT, self._request) or signal.SIG_DFL
      self._installed = True
    return self

  def __exit__(self, *exc_info):
    if self._installed:
      signal.signal(signal.SIGINT, self._previous)
      self._installed = False

  def _request(self, signum, frame):
    del signum, frame
    self.requested = True
    signal.signal(signal.SIGINT, self._previous)

  def _raise_if_requested(self, *args, **kwargs):
    del args, kwargs
    if self.requested:
      self.requested = False
      raise KeyboardInterrupt

  on_train_begin = on_epoch_begin = _raise_if_requested
  on_train_batch_end = on_test_batch_end = _raise_if_requested


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
    train_config: `configs.TrainConfig`.
    strategy: a `tf.distribute.Strategy` (default: the current one).
    verbose: Keras progress: 1 a progress bar, 2 one line per loop, 0 none.
    callbacks: extra `keras.callbacks.Callback`s for `fit`.

  Returns:
    The trained `keras.Model`.

  Raises:
    TrainingError: the loss became NaN/inf (the last good checkpoint is kept),
      `model_dir` holds a different model, or `train_config.init_from` holds one
      that does not fit this one.
    Interrupted: Ctrl-C (KeyboardInterrupt); the current step was checkpointed.
  """
  strategy = strategy or tf.distribute.get_strategy()
  chief = distribute.is_chief(strategy)
  _check_same_model(model_dir, model_config)
  if chief:
    configs.save_config(model_dir, model_config, train_config)
  keras.utils.set_random_seed(train_config.seed)
  train_ds, info = load_split(train_config, "train")
  _check_dataset_fits(train_ds, info, model_config)
  labels = bool(model_config.num_classes)
  validation = {}
  if train_config.eval_every_loops:
    eval_split = data.default_eval_split(train_config.dataset)
    val_ds, _ = load_split(train_config, eval_split)
    validation = dict(
        validation_data=data.eval_pipeline(
            val_ds.take(train_config.eval_examples).cache(), 256, labels),
        validation_freq=train_config.eval_every_loops)
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
  if not manager.latest_checkpoint and train_config.init_from:
    _init_from(model, model_config, train_config.init_from,
               model_dir if chief else None)
  run = history.Run(model_dir) if chief else None
  with _InterruptAtStepEnd() as interrupt:
    if run:
      run.start(step)
    guard = _CheckpointAndStopOnNaN(manager, optimizer, strategy, run)
    callbacks = [interrupt, guard, *callbacks]
    if train_config.lr_schedule != "constant" or train_config.warmup_steps:
      callbacks.insert(0, _ScheduleLearningRate(learning_rate_schedule(train_config)))
    if chief:
      callbacks.append(keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")))
    start = time.time()
    # The input stream is shuffled already (`data.train_pipeline`).
    fit = functools.partial(model.fit, shuffle=False)
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
      try:
        fit(train_input, steps_per_epoch=loop_steps, initial_epoch=first_loop,
            epochs=end_loop, callbacks=callbacks, verbose=verbose, **validation)
      except KeyboardInterrupt:
        if guard.bad_step is None:
          guard.save()
        raise Interrupted(
            f"Interrupted at step {int(optimizer.iterations.numpy())}; saved "
            f"{manager.latest_checkpoint}. Run the same command again to resume."
        ) from None
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


def evaluate(source, split=None, batch_size=256, data_dir=None, dataset=None,
             output_dir=None):
  """Exact NLL of a trained model over a whole split; writes eval_<split>.json.

  Args:
    source: a model_dir (its newest intact checkpoint) or a shipped model's folder.
    split: the split to score (None: the dataset's held-out split).
    batch_size: images per batch.
    data_dir: TFDS data dir (None: the one the model trained with).
    dataset: the dataset to score (None: the one the model trained on), e.g. the
      `folder:` path of a copy of it on this machine.
    output_dir: where eval_<split>.json goes (None: `source` if it is a
      model_dir; nowhere for a shipped folder).

  Returns:
    `{"split", "num_examples", "nll_nats", "bits_per_dim", "step"}`: `nll_nats` is
    the mean of `-log p(image)` in nats per image over every image of the split,
    `bits_per_dim` the same divided by `H*W*C*ln 2`.
  """
  model, model_config, train_config, step = load_trained(source)
  train_config = dataclasses.replace(
      train_config, dataset=dataset or train_config.dataset,
      data_dir=data_dir or train_config.data_dir)
  split = split or data.default_eval_split(train_config.dataset)
  ds, info = load_split(train_config, split)
  _check_dataset_fits(ds, info, model_config)
  batches = data.eval_pipeline(ds, batch_size, bool(model_config.num_classes))
  nats, count = mean_nll(model, batches, model_config.num_levels,
                         train_config.jit_compile)
  result = {"split": split, "num_examples": count, "nll_nats": nats,
            "bits_per_dim": float(distributions.bits_per_dim(
                nats, model_config.image_shape)),
            "step": step}
  if output_dir is None and not _is_shipped(source):
    output_dir = source
  if output_dir:
    tf.io.gfile.makedirs(output_dir)
    with tf.io.gfile.GFile(os.path.join(output_dir, f"eval_{split}.json"),
                           "w") as f:
      json.dump(result, f, indent=2)
  return result


def _is_shipped(source):
  return tf.io.gfile.exists(os.path.join(source, pretrained.WEIGHTS_FILE))


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


def write_samples(source, num_samples=16, seed=0, known_rows=0, split=None,
                  output=None, dataset=None, data_dir=None):
  """Samples (or, with `known_rows` > 0, completes split images) to a PNG grid.

  Args:
    source: a model_dir or a shipped model's folder.
    num_samples: images to draw (or to complete).
    seed: the sampler's seed: the same seed draws the same images.
    known_rows: 0 to sample; else the rows of each split image kept.
    split: the split whose first images are completed (None: held-out split).
    output: the PNG file to write (None: `samples.png` or `completions.png` in
      `source` if it is a model_dir, in the working directory for a shipped one).
    dataset: the dataset to complete images of (None: the one trained on).
    data_dir: TFDS data dir (None: the one the model trained with).

  Returns:
    The path of the PNG written. A class-conditional model samples image `n` of
    class `n % num_classes` (grid row by row) and completes each split image given
    its own label.
  """
  model, model_config, train_config, _ = load_trained(source)
  train_config = dataclasses.replace(
      train_config, dataset=dataset or train_config.dataset,
      data_dir=data_dir or train_config.data_dir)
  seed = tf.constant([seed, 0], tf.int32)
  run = lambda fn: _sampler_function(fn, model, train_config)
  if known_rows:
    if model_config.model == "multiscale":
      logging.warning(
          "Completions of a multiscale model are approximate: its small image "
          "(x[::2, ::2]) is drawn first, and those draws do not read the known "
          "pixels off that grid.")
    split = split or data.default_eval_split(train_config.dataset)
    ds, info = load_split(train_config, split)
    _check_dataset_fits(ds, info, model_config)
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
  if output is None:
    output = name if _is_shipped(source) else os.path.join(source, name)
  tf.io.write_file(output, tf.io.encode_png(grid))
  return output


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
      fn, jit_compile=train_config.jit_compile or sampling.prefers_xla(model),
      autograph=False)  # plain TF ops: nothing to convert


def to_display(images, num_levels):
  """Scales integer levels to 0..255 uint8 for viewing."""
  return tf.cast(tf.cast(images, tf.int32) * (255 // (num_levels - 1)), tf.uint8)


def _check_same_model(model_dir, model_config):
  if tf.io.gfile.exists(os.path.join(model_dir, configs.CONFIG_FILE)):
    saved, _ = configs.load_config(model_dir)
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
