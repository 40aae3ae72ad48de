"""Input pipelines: TFDS datasets by name, or a folder of the user's own images.

Every dataset yields dicts `{"image": uint8 (H, W, C), "label": int32 ()}`.
"""

import dataclasses
import hashlib
import os
import socket
import urllib.parse

from absl import logging
import tensorflow as tf

FOLDER_PREFIX = "folder:"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
# A folder without split subfolders holds out files whose name hash falls here.
FOLDER_VALIDATION_PERCENT = 5


class DataError(ValueError):
  """A dataset cannot be found, read or used; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a model needs to know about a dataset.

  Attributes:
    image_shape: `(H, W, C)`.
    num_levels: values a sub-pixel takes: 2 (binary) or 256 (8-bit).
    num_classes: number of labels (0 when the dataset has none).
  """
  image_shape: tuple
  num_levels: int
  num_classes: int


@dataclasses.dataclass(frozen=True)
class _TfdsSpec:
  tfds_name: str
  num_levels: int
  eval_split: str


TFDS_DATASETS = {
    "binarized_mnist": _TfdsSpec("binarized_mnist", 2, "validation"),
    "mnist": _TfdsSpec("mnist", 256, "test"),
    "fashion_mnist": _TfdsSpec("fashion_mnist", 256, "test"),
    "cifar10": _TfdsSpec("cifar10", 256, "test"),
    "downsampled_imagenet/32x32": _TfdsSpec("downsampled_imagenet/32x32", 256,
                                            "validation"),
    "downsampled_imagenet/64x64": _TfdsSpec("downsampled_imagenet/64x64", 256,
                                            "validation"),
}


def default_eval_split(dataset):
  """Returns the split that evaluation uses by default for `dataset`."""
  if dataset.startswith(FOLDER_PREFIX):
    return "validation"
  return _tfds_spec(dataset).eval_split


def load(dataset, split, data_dir=None, image_size=None):
  """Loads one split as a `tf.data.Dataset` of `{"image", "label"}` plus its info.

  Args:
    dataset: a name in `TFDS_DATASETS`, or `folder:/path` for a folder of images
      (`/path/<split>/<class>/*.png|jpg`, `/path/<class>/*.png|jpg`, or a flat
      `/path/*.png|jpg`; without split subfolders, 5% of the files, chosen by a hash
      of their names, form the 'validation' split and the rest 'train').
    split: split name, e.g. 'train' or 'validation'.
    data_dir: TFDS data directory; `None` uses `$TFDS_DATA_DIR` or TFDS's default.
      Ignored for folders.
    image_size: folders only: images are resized (shorter side) and centre-cropped
      to `image_size x image_size`; required for folders.

  Returns:
    `(tf.data.Dataset, DatasetInfo)`, examples in a fixed order (not shuffled).

  Raises:
    DataError: unknown dataset or split, data missing and not downloadable.
  """
  if dataset.startswith(FOLDER_PREFIX):
    return _load_folder(dataset[len(FOLDER_PREFIX):], split, image_size)
  return _load_tfds(dataset, split, data_dir)


def train_pipeline(ds, batch_size, seed=None, shuffle_buffer=10_000, cache=True,
                   labels=False):
  """Returns an infinite, shuffled, batched, prefetched stream of uint8 images.

  Elements are `(inputs, images)` pairs, the form Keras `fit` takes (the model maps
  its inputs to logits; the loss compares them with the images): `inputs` is the
  uint8 `(B, H, W, C)` images, or with `labels` (class-conditional models) `{"images":
  ..., "labels": int32 (B,)}`. With a `seed`, every iterator over the stream yields
  the same images in the same order (epochs run into one another through the
  shuffle buffer), whoever peeks at it first.
  """
  examples = _images_and_labels(ds)
  if cache:
    examples = examples.cache()
  examples = examples.repeat().shuffle(shuffle_buffer, seed=seed,
                                       reshuffle_each_iteration=False)
  examples = examples.batch(batch_size, drop_remainder=True)
  return _model_pairs(examples, labels)


def eval_pipeline(ds, batch_size, labels=False):
  """Every example once, batched (the last batch may be smaller), as
  `train_pipeline`'s `(inputs, images)` pairs."""
  return _model_pairs(_images_and_labels(ds).batch(batch_size), labels)


def _images_and_labels(ds):
  return ds.map(lambda ex: (ex["image"], ex["label"]),
                num_parallel_calls=tf.data.AUTOTUNE)


def _model_pairs(batches, labels):
  if labels:
    pair = lambda x, y: ({"images": x, "labels": y}, x)
  else:
    pair = lambda x, _: (x, x)
  return batches.map(pair).prefetch(tf.data.AUTOTUNE)


def _tfds_spec(dataset):
  if dataset not in TFDS_DATASETS:
    raise DataError(
        f"Unknown dataset {dataset!r}. Expected one of {sorted(TFDS_DATASETS)} or "
        "'folder:/path/to/images'.")
  return TFDS_DATASETS[dataset]


def _load_tfds(dataset, split, data_dir):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  spec = _tfds_spec(dataset)
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
  builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
  if not builder.is_prepared():
    _check_download_reachable(builder, dataset)
    logging.info("Downloading and preparing %s into %s", dataset, builder.data_dir)
    builder.download_and_prepare()
  if split not in builder.info.splits:
    raise DataError(
        f"Dataset {dataset!r} in {builder.data_dir} has no split {split!r}. "
        f"Available splits: {sorted(builder.info.splits)}. Pass one with --split.")
  ds = builder.as_dataset(split=split, shuffle_files=False)
  image_shape = tuple(builder.info.features["image"].shape)
  num_classes = (builder.info.features["label"].num_classes
                 if "label" in builder.info.features else 0)
  ds = ds.map(lambda ex: _example(ex["image"], ex.get("label")),
              num_parallel_calls=tf.data.AUTOTUNE)
  return ds, DatasetInfo(image_shape, spec.num_levels, num_classes)


def _example(image, label=None):
  label = tf.constant(0, tf.int32) if label is None else tf.cast(label, tf.int32)
  return {"image": image, "label": label}


def _check_download_reachable(builder, dataset, timeout_s=5.0):
  """Fails within seconds, with the offline recipe, when TFDS could not download."""
  hosts = sorted({urllib.parse.urlsplit(url) for url in builder.url_infos or {}},
                 key=str)
  for parts in hosts:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
      socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as e:
      raise DataError(
          f"Dataset {dataset!r} is not prepared in {builder.data_dir_root} and its "
          f"source {parts.hostname} cannot be reached ({e}). On a machine with a "
          "network it is downloaded automatically. Offline, point --data_dir (or the "
          "TFDS_DATA_DIR environment variable) at a TFDS data directory that holds "
          f"{builder.name}/{builder.version}/, e.g. one prepared elsewhere with "
          f"`tfds build {builder.name} --data_dir=DIR` and copied here.") from e


def _load_folder(root, split, image_size):
  if not image_size:
    raise DataError(
        "A folder dataset needs --image_size: images are resized and centre-cropped "
        "to image_size x image_size.")
  if not os.path.isdir(root):
    raise DataError(f"Image folder {root!r} does not exist or is not a directory.")
  split_dir = os.path.join(root, split)
  if os.path.isdir(split_dir):
    files = _image_files(split_dir)
  else:
    files = [f for f in _image_files(root) if _held_out(f) == (split == "validation")]
    if split not in ("train", "validation"):
      raise DataError(
          f"Image folder {root!r} has no {split!r} subfolder; without split "
          "subfolders only 'train' and 'validation' (a 5% hash split) exist.")
  if not files:
    raise DataError(
        f"No images ({', '.join(IMAGE_EXTENSIONS[:3])}) found for split {split!r} "
        f"under {root!r}. Expected {root}/{split}/<class>/*.png, {root}/<class>/"
        f"*.png or {root}/*.png.")
  base = split_dir if os.path.isdir(split_dir) else root
  classes = sorted({_class_of(f, base) for f in files})
  class_ids = {name: i for i, name in enumerate(classes)}
  labels = [class_ids[_class_of(f, base)] for f in files]
  channels = _channels_of(files[0])

  def decode(path, label):
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                               expand_animations=False)
    image = _resize_shorter_side(image, image_size)
    image = tf.image.resize_with_crop_or_pad(image, image_size, image_size)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return {"image": tf.ensure_shape(image, (image_size, image_size, channels)),
            "label": label}

  ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(labels, tf.int32)))
  ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  num_classes = len(classes) if len(classes) > 1 else 0
  return ds, DatasetInfo((image_size, image_size, channels), 256, num_classes)


def _image_files(directory):
  found = []
  for dirpath, _, filenames in os.walk(directory):
    found.extend(os.path.join(dirpath, f) for f in filenames
                 if f.endswith(IMAGE_EXTENSIONS))
  return sorted(found)


def _held_out(path):
  digest = hashlib.md5(os.path.basename(path).encode()).hexdigest()
  return int(digest, 16) % 100 < FOLDER_VALIDATION_PERCENT


def _class_of(path, base):
  parent = os.path.relpath(os.path.dirname(path), base)
  return "" if parent == "." else parent.split(os.sep)[0]


def _channels_of(path):
  """Returns 1 for grayscale files, else 3 (alpha is dropped)."""
  image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
  return 1 if image.shape[-1] in (1, 2) else 3


def _resize_shorter_side(image, size):
  """Resizes `(h, w, c)` so that min(h, w) == size, keeping the aspect ratio."""
  hw = tf.cast(tf.shape(image)[:2], tf.float32)
  new_hw = tf.cast(tf.math.ceil(hw * size / tf.reduce_min(hw)), tf.int32)
  return tf.image.resize(image, new_hw, antialias=True)
