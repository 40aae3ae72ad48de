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
  assert info == data.DatasetInfo((8, 8, 1), 256, 2)
  examples = list(ds.as_numpy_iterator())
  assert len(examples) == 48
  assert {int(ex["label"]) for ex in examples} == {0, 1}


def test_flat_rgb_folder_is_resized_cropped_and_hash_split(tmp_path):
  rng = np.random.default_rng(0)
  write_pngs(str(tmp_path), rng.integers(0, 256, (60, 12, 16, 3), dtype=np.uint8))
  train, info = data.load(f"folder:{tmp_path}", "train", image_size=8)
  val, _ = data.load(f"folder:{tmp_path}", "validation", image_size=8)
  assert info.image_shape == (8, 8, 3) and info.num_classes == 0
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
