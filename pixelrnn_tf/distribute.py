"""`tf.distribute` strategies by name, per-worker input, and who writes what.

`train.py --strategy=NAME` picks one of `STRATEGIES`:

  default       one device (the first GPU if any, else the CPU)
  mirrored      every local GPU (or logical CPU device), synchronous all-reduce
  multi_worker  `MultiWorkerMirroredStrategy` over the workers in `TF_CONFIG`
  tpu           `TPUStrategy` on `--tpu` (a Cloud TPU address or name; empty: local)

Keras `fit` runs the train step on every replica and averages the loss over the
global batch. The input is sharded per worker (`input_pipeline_id`) before it is
shuffled, so the workers see disjoint images; each replica gets
`global_batch_size / num_replicas` of them. Every worker saves checkpoints (a save
may need all of them) but only the chief's land in `model_dir`.
"""

import contextlib
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


class DistributeError(RuntimeError):
  """The requested strategy cannot run here; the message says why and what to do."""


def make_strategy(name, tpu=None):
  """Returns the `tf.distribute.Strategy` called `name` (one of `STRATEGIES`).

  Raises:
    DistributeError: `multi_worker` without `TF_CONFIG`, or `tpu` without a TPU
      (found in seconds, never after connection retries).
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise DistributeError(
          "--strategy=multi_worker needs TF_CONFIG, the cluster spec and this "
          "worker's task, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:2222\", "
          "\"host2:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'. Start "
          "the same command on every worker with its own index.")
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "tpu":
    return _tpu_strategy(tpu)
  raise DistributeError(f"Unknown --strategy={name!r}. Expected one of {STRATEGIES}.")


def _tpu_strategy(tpu):
  if not (tpu or os.environ.get("TPU_NAME") or tf.io.gfile.glob("/dev/accel*")
          or tf.io.gfile.glob("/dev/vfio/[0-9]*")):
    raise DistributeError(
        "--strategy=tpu found no TPU: no --tpu address, no TPU_NAME and no local "
        "TPU device (/dev/accel*, /dev/vfio). Run on a Cloud TPU VM (--tpu=local) "
        "or pass --tpu=grpc://HOST:8470 or the TPU's name; on CPU or GPU use "
        "--strategy=default or --strategy=mirrored.")
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu="" if tpu == "local" else tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, RuntimeError, tf.errors.OpError) as e:
    raise DistributeError(f"Cannot reach the TPU {tpu or os.environ.get('TPU_NAME')!r}"
                          f": {e}. Check --tpu and that the TPU is up.") from e
  return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
  """True on the worker that writes config, checkpoints and summaries.

  That is the only worker of a single-machine strategy, the `chief` task if the
  cluster has one, else worker 0.
  """
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def save_checkpoint(manager, step, strategy):
  """Saves `manager`'s checkpoint at `step` on this worker.

  Non-chief workers write to a scratch directory beside the checkpoints
  (`tmp_<task_type>_<task_id>`) and delete it: the save runs on every worker, as
  multi-worker saving requires, but only the chief's copy is kept.
  """
  if is_chief(strategy):
    manager.save(checkpoint_number=step)
    return
  resolver = strategy.cluster_resolver
  scratch = os.path.join(manager.directory,
                         f"tmp_{resolver.task_type}_{resolver.task_id}")
  manager.checkpoint.write(os.path.join(scratch, "ckpt"))
  tf.io.gfile.rmtree(scratch)


def distribute_train_dataset(strategy, make_dataset, global_batch_size):
  """Returns the per-replica input for `fit`, sharded by worker.

  Args:
    strategy: the `tf.distribute.Strategy` training runs under.
    make_dataset: `fn(num_shards, shard_index, per_replica_batch) ->
      tf.data.Dataset` of per-replica batches; it must shard before shuffling.
    global_batch_size: images per step over all replicas; must divide evenly.

  Raises:
    DistributeError: the global batch does not split evenly over the replicas.
  """
  replicas = strategy.num_replicas_in_sync
  if global_batch_size % replicas:
    raise DistributeError(
        f"--batch_size={global_batch_size} does not split over {replicas} replicas: "
        f"use a multiple of {replicas}.")

  def dataset_fn(context):
    return make_dataset(context.num_input_pipelines, context.input_pipeline_id,
                        context.get_per_replica_batch_size(global_batch_size))

  return strategy.distribute_datasets_from_function(dataset_fn)


def mixed_precision_policy():
  """The Keras mixed policy for this machine: float16 on GPU, bfloat16 otherwise.

  float16 needs loss scaling, which Keras `compile` adds (`LossScaleOptimizer`);
  bfloat16 (TPU, CPU) has float32's range and needs none.
  """
  return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name):
  """Sets the global Keras dtype policy to `name` inside the `with` block only."""
  saved = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(saved)
