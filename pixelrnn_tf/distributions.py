"""The one output head: logits -> per-sub-pixel TFP distributions, NLL and metrics.

Every network maps images `(B, H, W, C)` to logits `(B, H, W, C, K)`, where
`K = num_logits(num_levels)`: one Bernoulli logit for binary data (`num_levels=2`),
`num_levels` Categorical logits otherwise. Logit `[b, i, j, c]` parametrises the
conditional `p(x[i, j, c] | x before (i, j, c) in raster/RGB order)`, so the likelihood
of an image is the product of these conditionals evaluated at its own values.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def num_logits(num_levels):
  """Returns `K`, the logits per sub-pixel: 1 for binary data, else `num_levels`."""
  if num_levels < 2:
    raise ValueError(f"Invalid `num_levels`. Expected >= 2. Received: {num_levels}")
  return 1 if num_levels == 2 else num_levels


def conditionals(logits, num_levels):
  """Returns the per-sub-pixel distribution with batch shape `(B, H, W, C)`.

  Args:
    logits: float `(B, H, W, C, K)` with `K = num_logits(num_levels)`.
    num_levels: 2 (Bernoulli) or the number of Categorical levels.
  """
  logits = tf.cast(logits, tf.float32)
  if num_levels == 2:
    # `squeeze`, not `logits[..., 0]`: a strided slice's gradient is slow on CPU.
    return tfd.Bernoulli(logits=tf.squeeze(logits, -1), dtype=tf.int32)
  return tfd.Categorical(logits=logits, dtype=tf.int32)


def image_distribution(logits, num_levels):
  """Returns `tfd.Independent` over `(H, W, C)`: `log_prob(images)` has shape `(B,)`.

  Valid for scoring the images the logits were computed from (teacher forcing).
  """
  return tfd.Independent(conditionals(logits, num_levels),
                         reinterpreted_batch_ndims=3)


def pixel_log_prob(logits, images, num_levels):
  """Returns `log p(x[i,j,c] | context)` in nats, float32 `(B, H, W, C)`."""
  return conditionals(logits, num_levels).log_prob(tf.cast(images, tf.int32))


def log_prob(logits, images, num_levels):
  """Returns `log p(image)` in nats, float32 `(B,)`: the sum of `pixel_log_prob`."""
  return image_distribution(logits, num_levels).log_prob(tf.cast(images, tf.int32))


def bits_per_dim(nats_per_image, image_shape):
  """Converts negative log-likelihood in nats per image to bits per sub-pixel."""
  return nats_per_image / (math.prod(image_shape) * math.log(2.0))


def sample(logits, num_levels, seed):
  """Draws one value per sub-pixel, int32 `(B, H, W, C)`, from stateless `seed`."""
  return conditionals(logits, num_levels).sample(seed=seed)


@keras.saving.register_keras_serializable(package="pixelrnn_tf")
class NegativeLogLikelihood(keras.losses.Loss):
  """Keras loss `-log p(image)` in nats per image (`y_true`: images, `y_pred`: logits).

  Keras averages it over the batch, so the reported loss is nats per image.
  """

  def __init__(self, num_levels, name="nll", **kwargs):
    super().__init__(name=name, **kwargs)
    self.num_levels = num_levels

  def call(self, y_true, y_pred):
    return -log_prob(y_pred, y_true, self.num_levels)

  def get_config(self):
    return {**super().get_config(), "num_levels": self.num_levels}


def bits_per_dim_metric(num_levels, image_shape):
  """Returns a Keras metric: mean bits/dim over every image it has seen."""

  def bits(images, logits):
    return bits_per_dim(-log_prob(logits, images, num_levels), image_shape)

  return keras.metrics.MeanMetricWrapper(bits, name="bits_per_dim")
