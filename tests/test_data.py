"""Data: TFDS offline copy, missing data errors fast, folder datasets."""

import os
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf import data

from conftest import write_pngs


def test_binarized_mnist_from_offline_copy(shared_tfds_dir):
  ds, info = data.load("binarized_mnist", "validation", data_dir=shared_tfds_dir)
  assert info == data.DatasetInfo((28, 28, 1), 2, 0)
  first = next(iter(ds))
  assert first["image"].dtype == "uint8" and first["image"].shape == (28, 28, 1)
  assert set(np.unique(first["image"])) <= {0, 1}


def test_missing_split_lists_available_ones(shared_tfds_dir):
  with pytest.raises(data.DataError, match=r"no split 'test'.*'train', 'validation'"):
    data.load("binarized_mnist", "test", data_dir=shared_tfds_dir)


def test_missing_dataset_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
  def unreachable(*args, **kwargs):
    raise OSError("network is unreachable")
  monkeypatch.setattr(socket, "create_connection", unreachable)
  start = time.time()
  with pytest.raises(data.DataError, match="--data_dir.*TFDS_DATA_DIR"):
    data.load("binarized_mnist", "train", data_dir=str(tmp_path))
  assert time.time() - start < 30


def test_unknown_dataset_names_the_choices():
  with pytest.raises(data.DataError, match="Unknown dataset 'nope'.*binarized_mnist"):
    data.load("nope", "train")


def test_folder_with_split_and_class_subfolders(image_folder):
  ds, info = data.load(f"folder:{image_folder}", "train", image_size=8)
  assert info == data.DatasetInfo((8, 8, 1), 256, 2, ("a", "b"))
  examples = list(ds.as_numpy_iterator())
  assert len(examples) == 48
  assert {int(ex["label"]) for ex in examples} == {0, 1}


def test_flat_rgb_folder_is_resized_cropped_and_hash_split(tmp_path):
  rng = np.random.default_rng(0)
  write_pngs(str(tmp_path), rng.integers(0, 256, (60, 12, 16, 3), dtype=np.uint8))
  train, info = data.load(f"folder:{tmp_path}", "train", image_size=8)
  val, _ = data.load(f"folder:{tmp_path}", "validation", image_size=8)
  assert info.image_shape == (8, 8, 3) and info.num_classes == 0
  assert info.class_names == ()
  n_train, n_val = len(list(train)), len(list(val))
  assert n_train + n_val == 60 and n_val < n_train
  assert next(iter(train))["image"].shape == (8, 8, 3)


def test_folder_errors_say_what_is_expected(tmp_path):
  with pytest.raises(data.DataError, match="needs --image_size"):
    data.load(f"folder:{tmp_path}", "train")
  with pytest.raises(data.DataError, match="No images"):
    data.load(f"folder:{tmp_path}", "train", image_size=8)
  os.makedirs(tmp_path / "x")
  with pytest.raises(data.DataError, match="does not exist"):
    data.load(f"folder:{tmp_path}/nothing", "train", image_size=8)


def _write_png(path, image):
  """Writes the uint8 `(H, W, C)` array `image` as a PNG file at `path`."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tf.io.write_file(path, tf.io.encode_png(image))


def _images(ds):
  return [ex["image"] for ex in ds.as_numpy_iterator()]


@pytest.fixture
def warnings_logged(monkeypatch):
  """The messages of the warnings that `data` logs during the test."""
  messages = []
  monkeypatch.setattr(data.logging, "warning", lambda message, *args: messages.append(
      message % args if args else message))
  return messages


@pytest.fixture
def mixed_folder(tmp_path):
  """3 grayscale and 2 RGB 6x6 PNG files in `train` and `validation`.

  Each split's first file is of a different kind.
  """
  rng = np.random.default_rng(1)
  gray = lambda: rng.integers(0, 256, (6, 6, 1), dtype=np.uint8)
  rgb = lambda: rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
  _write_png(str(tmp_path / "train" / "0.png"), gray())
  _write_png(str(tmp_path / "train" / "1.png"), rgb())
  _write_png(str(tmp_path / "train" / "2.png"), gray())
  _write_png(str(tmp_path / "validation" / "0.png"), rgb())
  _write_png(str(tmp_path / "validation" / "1.png"), gray())
  return tmp_path


def test_folder_mixing_grayscale_and_rgb_gives_every_split_the_majority_channels(
    mixed_folder, warnings_logged):
  train, train_info = data.load(f"folder:{mixed_folder}", "train", image_size=4)
  val, val_info = data.load(f"folder:{mixed_folder}", "validation", image_size=4)
  assert train_info.image_shape == val_info.image_shape == (4, 4, 1)
  assert [x.shape for x in _images(train) + _images(val)] == [(4, 4, 1)] * 5
  assert len(warnings_logged) == 1  # once, although both splits were loaded
  assert "2 colour files are converted" in warnings_logged[0]
  assert "--channels" in warnings_logged[0]


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_argument_converts_every_image(mixed_folder, warnings_logged,
                                                channels):
  for split in ("train", "validation"):
    ds, info = data.load(f"folder:{mixed_folder}", split, image_size=4,
                         channels=channels)
    assert info.image_shape == (4, 4, channels)
    assert {x.shape for x in _images(ds)} == {(4, 4, channels)}
  assert not warnings_logged


def test_conversions_keep_gray_pixels_and_a_tie_gives_rgb(tmp_path):
  gray = np.arange(36, dtype=np.uint8).reshape(6, 6, 1) * 7
  _write_png(str(tmp_path / "train" / "gray.png"), gray)
  _write_png(str(tmp_path / "train" / "rgb.png"), np.repeat(gray, 3, axis=-1))
  for channels, expected in ((1, gray), (3, np.repeat(gray, 3, axis=-1)),
                             (None, np.repeat(gray, 3, axis=-1))):
    ds, _ = data.load(f"folder:{tmp_path}", "train", image_size=6,
                      channels=channels)
    np.testing.assert_array_equal(np.stack(_images(ds)), np.stack([expected] * 2))


@pytest.fixture
def folder_with_bad_files(tmp_path):
  """Returns `(root, bad paths)`: 4 + 2 good PNG files and 2 bad ones.

  `train` holds 4 good 4x4 PNG files and a truncated PNG, `validation` 2 good ones
  and a text file named `x.png`.
  """
  rng = np.random.default_rng(2)
  for split, count in (("train", 4), ("validation", 2)):
    for k in range(count):
      _write_png(str(tmp_path / split / f"{k}.png"),
                 rng.integers(0, 256, (4, 4, 1), dtype=np.uint8))
  truncated = tmp_path / "train" / "truncated.png"
  truncated.write_bytes((tmp_path / "train" / "0.png").read_bytes()[:42])
  text = tmp_path / "validation" / "x.png"
  text.write_text("not an image\n")
  return tmp_path, (str(truncated), str(text))


def test_unreadable_files_are_refused_by_name_before_training(folder_with_bad_files):
  root, (truncated, text) = folder_with_bad_files
  with pytest.raises(data.DataError) as error:
    data.load(f"folder:{root}", "train", image_size=4)
  message = str(error.value)
  assert f"{truncated}: Invalid PNG data" in message
  assert f"{text}: Unknown image file format" in message  # from the other split
  assert "--bad_files=skip" in message


def test_skipped_unreadable_files_are_left_out_of_every_split(
    folder_with_bad_files, warnings_logged):
  root, bad = folder_with_bad_files
  train, _ = data.load(f"folder:{root}", "train", image_size=4, bad_files="skip")
  val, _ = data.load(f"folder:{root}", "validation", image_size=4,
                     bad_files="skip")
  assert (len(_images(train)), len(_images(val))) == (4, 2)
  assert len(warnings_logged) == 1
  assert all(path in warnings_logged[0] for path in bad)


def test_a_folder_is_checked_once_until_a_file_changes(folder_with_bad_files):
  root, _ = folder_with_bad_files
  cache_info = data._scan_folder.cache_info  # pylint: disable=protected-access
  scans = lambda: cache_info().misses
  before = scans()
  for split in ("train", "validation", "train"):
    data.load(f"folder:{root}", split, image_size=4, bad_files="skip")
  assert scans() == before + 1
  _write_png(str(root / "train" / "0.png"), np.zeros((4, 4, 3), np.uint8))
  ds, info = data.load(f"folder:{root}", "train", image_size=4, bad_files="skip")
  assert scans() == before + 2
  assert info.image_shape == (4, 4, 1) and len(_images(ds)) == 4


def test_a_broken_link_is_reported_as_unreadable(tmp_path):
  _write_png(str(tmp_path / "good.png"), np.zeros((4, 4, 1), np.uint8))
  os.symlink(tmp_path / "gone.png", tmp_path / "link.png")
  with pytest.raises(data.DataError, match=r"link.png: .*No such file"):
    data.load(f"folder:{tmp_path}", "train", image_size=4)


def test_many_unreadable_files_are_listed_up_to_ten(tmp_path):
  _write_png(str(tmp_path / "good.png"), np.zeros((4, 4, 1), np.uint8))
  for k in range(13):
    (tmp_path / f"bad{k:02d}.png").write_bytes(b"")
  with pytest.raises(data.DataError, match=r"(?s)13 image file.*bad09.png: Input "
                     r"is empty.\n  and 3 more\n"):
    data.load(f"folder:{tmp_path}", "train", image_size=4)


@pytest.mark.parametrize("argument", [
    dict(bad_files="ignore"), dict(channels=2), dict(channels=True),
    dict(num_levels=1), dict(num_levels=257), dict(num_levels=2.0)])
def test_invalid_folder_arguments_name_the_valid_values(image_folder, argument):
  with pytest.raises(data.DataError, match=r"\['refuse', 'skip'\]|1 \(grayscale\) "
                     r"or 3|from 2 to 256"):
    data.load(f"folder:{image_folder}", "train", image_size=8, **argument)


def test_num_levels_requantizes_folder_images(tmp_path):
  values = np.array([0, 63, 64, 127, 128, 191, 192, 255], np.uint8)
  _write_png(str(tmp_path / "train" / "stripes.png"),
             np.tile(values[None, :, None], (8, 1, 1)))
  for num_levels, levels in ((2, [0, 0, 0, 0, 1, 1, 1, 1]),
                             (4, [0, 0, 1, 1, 2, 2, 3, 3]),
                             (None, values)):
    ds, info = data.load(f"folder:{tmp_path}", "train", image_size=8,
                         num_levels=num_levels)
    assert info.num_levels == (num_levels or 256)
    (image,) = _images(ds)
    np.testing.assert_array_equal(image[..., 0], np.tile(levels, (8, 1)))


def test_tfds_dataset_refuses_other_num_levels():
  with pytest.raises(data.DataError, match="has 2 levels.*--num_levels=2"):
    data.load("binarized_mnist", "train", num_levels=256)


def test_tfds_class_names_and_channel_check(shared_tfds_dir):
  _, info = data.load("binarized_mnist", "validation", data_dir=shared_tfds_dir,
                      num_levels=2, channels=1)
  assert info.class_names == ()
  with pytest.raises(data.DataError, match="has 1 channel.*--channels=1"):
    data.load("binarized_mnist", "validation", data_dir=shared_tfds_dir, channels=3)


def _first_batches(stream, count):
  iterator = iter(stream)
  return [next(iterator)[0].numpy() for _ in range(count)]


def test_train_pipeline_order_is_fixed_by_the_seed():
  images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1)
  ds = tf.data.Dataset.from_tensor_slices({"image": images,
                                           "label": np.zeros(40, np.int32)})
  stream = data.train_pipeline(ds, 8, seed=3, shuffle_buffer=40)
  first = _first_batches(stream, 6)  # 48 images: runs into the second epoch
  again = _first_batches(stream, 6)  # a second iterator over the same stream
  rebuilt = _first_batches(data.train_pipeline(ds, 8, seed=3, shuffle_buffer=40), 6)
  other_seed = _first_batches(data.train_pipeline(ds, 8, seed=4, shuffle_buffer=40), 6)
  np.testing.assert_array_equal(np.stack(again), np.stack(first))
  np.testing.assert_array_equal(np.stack(rebuilt), np.stack(first))
  assert not np.array_equal(np.stack(other_seed), np.stack(first))
  drawn = np.concatenate(first)[:40].ravel()
  assert not np.array_equal(drawn, np.arange(40))  # shuffled
  # Drawn from the whole set, not from a window sliding along it: a buffer of 8
  # could not reach image 30 within the first 16 draws.
  assert drawn[:16].max() >= 30 and len(set(drawn.tolist())) > 25


def test_pipelines_with_labels_keep_each_label_with_its_image():
  images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1)
  ds = tf.data.Dataset.from_tensor_slices({"image": images,
                                           "label": np.arange(40, dtype=np.int32)})
  train = next(iter(data.train_pipeline(ds, 8, seed=3, shuffle_buffer=40,
                                        labels=True)))
  evaluated = list(data.eval_pipeline(ds, 16, labels=True))
  for inputs, targets in [train] + evaluated:
    np.testing.assert_array_equal(inputs["images"].numpy(), targets.numpy())
    np.testing.assert_array_equal(inputs["labels"].numpy(),
                                  targets.numpy().reshape(-1))
  assert sum(len(t) for _, t in evaluated) == 40
  unlabelled, targets = next(iter(data.eval_pipeline(ds, 16)))
  np.testing.assert_array_equal(unlabelled.numpy(), targets.numpy())


def test_classes_are_numbered_over_every_split(tmp_path):
  """A class missing from one split keeps its label in the others."""
  image = np.zeros((1, 4, 4, 1), np.uint8)
  for split, classes in (("train", ("a", "b", "c")), ("validation", ("b", "c"))):
    for name in classes:
      write_pngs(str(tmp_path / split / name), image)
  labels = {}
  for split in ("train", "validation"):
    ds, info = data.load(f"folder:{tmp_path}", split, image_size=4)
    assert info.class_names == ("a", "b", "c")
    labels[split] = sorted(int(ex["label"]) for ex in ds.as_numpy_iterator())
  assert labels == {"train": [0, 1, 2], "validation": [1, 2]}


def test_a_hash_split_that_leaves_no_validation_image_says_what_to_do(tmp_path):
  names = [n for n in (f"{k}.png" for k in range(100)) if not data._held_out(n)][:3]
  for name in names:
    write_pngs(str(tmp_path), np.zeros((1, 4, 4, 1), np.uint8))
    os.rename(tmp_path / "0000.png", tmp_path / name)
  data.load(f"folder:{tmp_path}", "train", image_size=4)
  with pytest.raises(data.DataError, match="hash split of the 3 images .* left none "
                     "for split 'validation'.*--eval_every_loops=0"):
    data.load(f"folder:{tmp_path}", "validation", image_size=4)
