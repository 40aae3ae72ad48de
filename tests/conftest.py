"""Shared fixtures: quiet TF, small image folders for hermetic training tests."""

import os
import tarfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pixelrnn_tf import cli  # pylint: disable=g-import-not-at-top

cli.use_onednn()  # as the programs do

import numpy as np  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_TFDS = os.path.join(REPO, "..", "shared", "data", "tfds")
SHARED_CIFAR10_JPEG = os.path.join(REPO, "..", "shared", "data", "cifar10_jpeg",
                                   "train.tar.gz")


def write_pngs(directory, images):
  """Writes uint8 `(N, H, W, C)` images as PNG files 0000.png... in `directory`."""
  # Imported here, not at the top: pytest-xdist's controller process loads this file
  # without running tests, and TensorFlow's import banner would print after the summary.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  os.makedirs(directory, exist_ok=True)
  for k, image in enumerate(images):
    tf.io.write_file(os.path.join(directory, f"{k:04d}.png"),
                     tf.io.encode_png(image))


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
  """A folder dataset `root/{train,validation}/{a,b}/*.png` of 8x8 grayscale images.

  Images are simple stripes so that a tiny model can learn them quickly.
  """
  root = tmp_path_factory.mktemp("images")
  rng = np.random.default_rng(0)
  for split, count in (("train", 24), ("validation", 8)):
    for label in ("a", "b"):
      base = np.zeros((count, 8, 8, 1), np.uint8)
      base[:, ::2] = 200 if label == "a" else 50
      noise = rng.integers(0, 3, size=base.shape, dtype=np.uint8)
      write_pngs(os.path.join(root, split, label), base + noise)
  return str(root)


@pytest.fixture(scope="session")
def shared_tfds_dir():
  """The offline TFDS copy (binarized MNIST) beside the repo, or skip."""
  path = os.environ.get("TFDS_DATA_DIR") or SHARED_TFDS
  if not os.path.isdir(os.path.join(path, "binarized_mnist")):
    pytest.skip("offline binarized_mnist copy not found (set TFDS_DATA_DIR)")
  return path


@pytest.fixture(scope="session")
def shared_cifar10_jpeg(tmp_path_factory):
  """The offline CIFAR-10 JPEG copy, unpacked: its `train/<class>/*.jpg` folder, or
  skip."""
  if not os.path.exists(SHARED_CIFAR10_JPEG):
    pytest.skip("offline cifar10_jpeg copy not found")
  root = tmp_path_factory.mktemp("cifar10_jpeg")
  with tarfile.open(SHARED_CIFAR10_JPEG) as archive:
    archive.extractall(root, filter="data")
  return str(root / "train")
