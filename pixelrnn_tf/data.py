"""Input pipelines: TFDS datasets by name, or a folder of the user's own images.

Every dataset yields dicts `{"image": uint8 (H, W, C), "label": int32 ()}`.
"""

import dataclasses
import functools
import hashlib
import numbers
import os
import re
import socket
import time
import urllib.parse

from absl import logging
import tensorflow as tf

FOLDER_PREFIX = "folder:"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
# A folder without split subfolders holds out files whose name hash falls here.
FOLDER_VALIDATION_PERCENT = 5
BAD_FILES_CHOICES = ("refuse", "skip")
# How many unreadable files an error or warning lists by name.
_LISTED_BAD_FILES = 10


class DataError(ValueError):
  """A dataset cannot be found, read or used; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a model needs to know about a dataset.

  Attributes:
    image_shape: `(H, W, C)`.
    num_levels: values a sub-pixel takes, `0..num_levels - 1`: 2 (binary) to 256
      (8-bit).
    num_classes: number of labels (0 when the dataset has none).
    class_names: the name of each label, in label order (empty when the dataset has
      no class names).
  """
  image_shape: tuple
  num_levels: int
  num_classes: int
  class_names: tuple = ()


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


def load(dataset, split, data_dir=None, image_size=None, *, channels=None,
         num_levels=None, bad_files="refuse"):
  """Loads one split as a `tf.data.Dataset` of `{"image", "label"}` plus its info.

  A folder dataset is checked before anything is returned: every image file under
  the folder (every split) is decoded once per process, so that a file TensorFlow
  cannot decode is reported by name here rather than failing a training run later.
  Every split of a folder has the same number of channels: `channels`, or when it
  is `None` the one most of the folder's decodable files have, counting files with
  1 or 2 channels (gray, gray + alpha) as grayscale and files with 3 or 4 (RGB,
  RGBA, palette) as colour; a tie gives colour (3). When a folder mixes both, a
  warning says how many files are converted. Alpha is dropped.

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
    channels: 1 (grayscale) or 3 (RGB): folders convert every image to it; `None`
      decides by the rule above. A TFDS dataset only accepts its own channel count.
    num_levels: 2 to 256 values per sub-pixel: folders map each 8-bit value `v` to
      `floor(v * num_levels / 256)` (2 levels: `v >= 128` is 1); `None` keeps 256.
      A TFDS dataset only accepts its own number of levels.
    bad_files: folders only: what to do with files that cannot be decoded:
      'refuse' raises a `DataError` that lists them, 'skip' logs a warning that
      lists them and leaves them out of every split.

  Returns:
    `(tf.data.Dataset, DatasetInfo)`, examples in a fixed order (not shuffled).

  Raises:
    DataError: unknown dataset or split, data missing and not downloadable, an
      invalid argument, or (with `bad_files='refuse'`) image files that cannot be
      decoded.
  """
  _check_load_args(channels, num_levels, bad_files)
  if dataset.startswith(FOLDER_PREFIX):
    return _load_folder(dataset[len(FOLDER_PREFIX):], split, image_size, channels,
                        num_levels or 256, bad_files)
  return _load_tfds(dataset, split, data_dir, channels, num_levels)


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


def _check_load_args(channels, num_levels, bad_files):
  """Raises `DataError` for a `load` argument outside its allowed values."""
  if channels is not None and not (_is_int(channels) and channels in (1, 3)):
    raise DataError(
        f"channels must be 1 (grayscale) or 3 (RGB), but received {channels!r}. "
        "Pass --channels=1 or --channels=3, or leave it unset to take the channel "
        "count most of the images have.")
  if num_levels is not None and not (_is_int(num_levels) and
                                    2 <= num_levels <= 256):
    raise DataError(
        f"num_levels must be an integer from 2 to 256, but received {num_levels!r}. "
        "Pass e.g. --num_levels=2 for binary images, or leave it unset for 256.")
  if bad_files not in BAD_FILES_CHOICES:
    raise DataError(
        f"bad_files must be one of {list(BAD_FILES_CHOICES)}, but received "
        f"{bad_files!r}. Pass --bad_files=refuse to stop on image files that "
        "cannot be decoded, or --bad_files=skip to leave them out.")


def _is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _tfds_spec(dataset):
  if dataset not in TFDS_DATASETS:
    raise DataError(
        f"Unknown dataset {dataset!r}. Expected one of {sorted(TFDS_DATASETS)} or "
        "'folder:/path/to/images'.")
  return TFDS_DATASETS[dataset]


def _load_tfds(dataset, split, data_dir, channels, num_levels):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  spec = _tfds_spec(dataset)
  if num_levels not in (None, spec.num_levels):
    raise DataError(
        f"Dataset {dataset!r} has {spec.num_levels} levels per sub-pixel, but "
        f"num_levels={num_levels} was requested; only folder datasets are "
        f"requantized. Drop --num_levels, or pass --num_levels={spec.num_levels}.")
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
  builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
  image_shape = tuple(builder.info.features["image"].shape)
  if channels not in (None, image_shape[-1]):
    raise DataError(
        f"Dataset {dataset!r} has {image_shape[-1]} channel(s), but channels="
        f"{channels} was requested; only folder datasets are converted. Drop "
        f"--channels, or pass --channels={image_shape[-1]}.")
  if not builder.is_prepared():
    _check_download_reachable(builder, dataset)
    logging.info("Downloading and preparing %s into %s", dataset, builder.data_dir)
    builder.download_and_prepare()
  if split not in builder.info.splits:
    raise DataError(
        f"Dataset {dataset!r} in {builder.data_dir} has no split {split!r}. "
        f"Available splits: {sorted(builder.info.splits)}. Pass one with --split.")
  ds = builder.as_dataset(split=split, shuffle_files=False)
  label = builder.info.features["label"] if "label" in builder.info.features else None
  num_classes = label.num_classes if label else 0
  class_names = tuple(label.names) if label else ()
  ds = ds.map(lambda ex: _example(ex["image"], ex.get("label")),
              num_parallel_calls=tf.data.AUTOTUNE)
  return ds, DatasetInfo(image_shape, spec.num_levels, num_classes, class_names)


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


def _load_folder(root, split, image_size, channels, num_levels, bad_files):
  if not image_size:
    raise DataError(
        "A folder dataset needs --image_size: images are resized and centre-cropped "
        "to image_size x image_size.")
  if not os.path.isdir(root):
    raise DataError(f"Image folder {root!r} does not exist or is not a directory. "
                    "Pass --dataset=folder:DIR with a folder of images on this "
                    "machine.")
  all_files = _image_files(root)
  split_dir = os.path.join(root, split)
  if os.path.isdir(split_dir):
    files = _image_files(split_dir)
  else:
    files = [f for f in all_files if _held_out(f) == (split == "validation")]
    if split not in ("train", "validation"):
      raise DataError(
          f"Image folder {root!r} has no {split!r} subfolder; without split "
          "subfolders only 'train' and 'validation' (a 5% hash split) exist.")
  if not files and all_files and not os.path.isdir(split_dir):
    raise DataError(
        f"The {FOLDER_VALIDATION_PERCENT}% hash split of the {len(all_files)} images "
        f"under {root!r} left none for split {split!r}. Add a {root}/validation/ "
        "folder (and move the training images to train/), add images, or train "
        "without validation (--eval_every_loops=0).")
  if not files:
    raise DataError(
        f"No images ({', '.join(IMAGE_EXTENSIONS[:3])}) found for split {split!r} "
        f"under {root!r}. Expected {root}/{split}/<class>/*.png, {root}/<class>/"
        f"*.png or {root}/*.png.")
  # The whole folder (every split) is checked; `files` joins in for a split folder
  # that the walk of `root` reached under another name, through a link.
  scan = _scan_folder(root, _stamped(sorted(set(all_files).union(files))))
  _handle_bad_files(root, scan.bad, bad_files)
  files = [f for f in files if f not in scan.bad]
  if not files:
    raise DataError(
        f"None of the image files for split {split!r} under {root!r} can be "
        "decoded, so skipping them (--bad_files=skip) leaves no images. Fix or "
        "replace them.")
  channels = channels or _majority_channels(root, scan.native_channels)
  base = split_dir if os.path.isdir(split_dir) else root
  # Classes are numbered over the whole folder, so that every split agrees.
  split_layout = os.path.isdir(split_dir)
  classes = sorted({_class_of(f, _split_base(f, root) if split_layout else root)
                    for f in all_files if f not in scan.bad})
  class_ids = {name: i for i, name in enumerate(classes)}
  labels = [class_ids[_class_of(f, base)] for f in files]

  def decode(path, label):
    image = _with_channels(tf.cast(_decode(path), tf.float32), channels)
    image = _resize_shorter_side(image, image_size)
    image = tf.image.resize_with_crop_or_pad(image, image_size, image_size)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    if num_levels != 256:
      image = tf.cast(tf.cast(image, tf.int32) * num_levels // 256, tf.uint8)
    return {"image": tf.ensure_shape(image, (image_size, image_size, channels)),
            "label": label}

  ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(labels, tf.int32)))
  ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  num_classes = len(classes) if len(classes) > 1 else 0
  class_names = tuple(classes) if num_classes else ()
  return ds, DatasetInfo((image_size, image_size, channels), num_levels,
                         num_classes, class_names)


def _image_files(directory):
  """Returns the sorted paths of the image files under `directory`.

  Linked folders are followed; a folder reached twice is listed once.
  """
  found, seen = [], set()
  for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
    real = os.path.realpath(dirpath)
    if real in seen:
      dirnames.clear()
      continue
    seen.add(real)
    found.extend(os.path.join(dirpath, f) for f in filenames
                 if f.endswith(IMAGE_EXTENSIONS))
  return sorted(found)


def _held_out(path):
  digest = hashlib.md5(os.path.basename(path).encode()).hexdigest()
  return int(digest, 16) % 100 < FOLDER_VALIDATION_PERCENT


def _split_base(path, root):
  """The split folder `root/<split>` that holds `path`."""
  return os.path.join(root, os.path.relpath(path, root).split(os.sep)[0])


def _class_of(path, base):
  parent = os.path.relpath(os.path.dirname(path), base)
  return "" if parent == "." else parent.split(os.sep)[0]


def _decode(path):
  """Decodes the image file at `path` to uint8 `(h, w, c)`, `c` as stored (1 to 4)."""
  return tf.io.decode_image(tf.io.read_file(path), expand_animations=False)


def _with_channels(image, channels):
  """Converts `(h, w, 1..4)` float pixels to `channels` (1 or 3), dropping alpha."""
  grayscale = tf.shape(image)[-1] < 3
  if channels == 3:
    return tf.cond(grayscale, lambda: tf.tile(image[..., :1], [1, 1, 3]),
                   lambda: image[..., :3])
  return tf.cond(grayscale, lambda: image[..., :1],
                 lambda: tf.image.rgb_to_grayscale(image[..., :3]))


def _stamped(paths):
  """Returns `(path, size, mtime_ns)` for each path: a key that changes with a file.

  A path that cannot be stat'ed (e.g. a broken link) gets `(path, -1, -1)`; the
  folder check then reports why it cannot be read.
  """
  stamps = []
  for path in paths:
    try:
      stat = os.stat(path)
    except OSError:
      stamps.append((path, -1, -1))
    else:
      stamps.append((path, stat.st_size, stat.st_mtime_ns))
  return tuple(stamps)


@dataclasses.dataclass(frozen=True)
class _FolderScan:
  """What decoding every file of a folder found (read-only: results are cached).

  Attributes:
    native_channels: `{path: channels as stored (1 to 4)}` for each decodable file.
    bad: `{path: why it cannot be decoded}` for the others.
  """
  native_channels: dict
  bad: dict


@functools.lru_cache(maxsize=4)
def _scan_folder(root, stamped_files):
  """Decodes every file once and returns the `_FolderScan` of the files.

  Cached: a folder is decoded once per process, and again only when a file is
  added, removed or changed, which changes `stamped_files` (`_stamped` of the files
  under `root`).
  """
  start = time.monotonic()
  paths = [path for path, _, _ in stamped_files]
  ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths)), paths))
  ds = ds.map(lambda i, path: (i, tf.shape(_decode(path))[-1]),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
  native_channels = {}
  for indices, counts in ds.ignore_errors().batch(4096).as_numpy_iterator():
    native_channels.update((paths[i], int(c)) for i, c in zip(indices, counts))
  bad = {path: _decode_error(path) for path in paths if path not in native_channels}
  logging.info("Checked the %d image files under %s in %.1f s: %d cannot be decoded.",
               len(paths), root, time.monotonic() - start, len(bad))
  return _FolderScan(native_channels, bad)


def _decode_error(path):
  """Returns why TensorFlow cannot decode the image file at `path`, in a few words."""
  try:
    _decode(path)
  except tf.errors.OpError as e:
    message = re.sub(r"^\{\{.*?\}\}\s*", "", e.message)
    return re.sub(r"\s*\[Op:.*", "", message, flags=re.DOTALL)
  return "could not be decoded when the folder was checked"


def _handle_bad_files(root, bad, bad_files):
  """Raises `DataError` for files in `bad`, or with 'skip' logs a warning (once)."""
  if not bad:
    return
  listed = [f"  {path}: {reason}" for path, reason in
            sorted(bad.items())[:_LISTED_BAD_FILES]]
  if len(bad) > _LISTED_BAD_FILES:
    listed.append(f"  and {len(bad) - _LISTED_BAD_FILES} more")
  listing = "\n".join(listed)
  if bad_files == "refuse":
    raise DataError(
        f"{len(bad)} image file(s) under {root!r} cannot be decoded (every image "
        f"must be a readable PNG, JPEG, GIF, BMP or WebP file):\n{listing}\n"
        "Fix or remove them, or pass --bad_files=skip (bad_files='skip') to leave "
        "them out of every split.")
  _warn_once(f"Skipping {len(bad)} image file(s) under {root!r} that cannot be "
             f"decoded (--bad_files=skip):\n{listing}")


def _majority_channels(root, native_channels):
  """Returns 1 when most files are grayscale (1 or 2 channels), else 3.

  Warns (once per process) when the folder mixes grayscale and colour files.
  """
  grayscale = sum(1 for c in native_channels.values() if c < 3)
  colour = len(native_channels) - grayscale
  channels = 1 if grayscale > colour else 3
  if grayscale and colour:
    converted, kind = ((colour, "colour") if channels == 1
                       else (grayscale, "grayscale"))
    _warn_once(
        f"Image folder {root!r} mixes {grayscale} grayscale and {colour} colour "
        f"files; the {converted} {kind} files are converted to {channels} "
        "channel(s) (the majority; a tie gives 3). Pass --channels=1 or "
        "--channels=3 to choose.")
  return channels


@functools.lru_cache(maxsize=None)
def _warn_once(message):
  """Logs `message` as a warning the first time it is given in this process."""
  logging.warning(message)


def _resize_shorter_side(image, size):
  """Resizes `(h, w, c)` so that min(h, w) == size, keeping the aspect ratio."""
  hw = tf.cast(tf.shape(image)[:2], tf.float32)
  new_hw = tf.cast(tf.math.ceil(hw * size / tf.reduce_min(hw)), tf.int32)
  return tf.image.resize(image, new_hw, antialias=True)
