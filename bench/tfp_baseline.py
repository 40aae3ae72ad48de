"""The `tfd.PixelCNN` baseline of `../shared/notes/BASELINES.md`, built the same way
by every bench script that compares against it."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

IMAGE_SHAPE = (28, 28, 1)


def tfp_pixelcnn(num_filters=32, image_shape=IMAGE_SHAPE, init_images=None):
  """Returns a built `tfd.PixelCNN` (PixelCNN++) over binary images (28x28x1).

  num_resnet=1, num_hierarchies=2, one logistic, pixel values {0, 1}; TFP's defaults
  otherwise. With num_filters=32 it has about 623k parameters.

  Args:
    num_filters: maps per layer.
    image_shape: `(H, W, 1)`.
    init_images: uint8 0/1 images `(B, H, W, 1)`. TFP's weight-normalized layers set
      their initial scales from the first batch they see (data-dependent init), so
      training should pass real images here; None: random bits (for speed only).
  """
  if init_images is None:
    init_images = np.random.default_rng(0).integers(
        0, 2, (16,) + tuple(image_shape), np.uint8)
  dist = tfp.distributions.PixelCNN(
      image_shape=image_shape, num_resnet=1, num_hierarchies=2,
      num_filters=num_filters, num_logistic_mix=1, high=1, low=0)
  dist.log_prob(tf.cast(init_images, tf.float32))  # builds and initializes
  return dist


def describe(num_filters=32):
  return (f"tfd.PixelCNN num_resnet=1 num_hierarchies=2 num_filters={num_filters} "
          "num_logistic_mix=1")
