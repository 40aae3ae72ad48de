"""The training contestants every bench script compares: a model of this package with
its Bernoulli head, and TF Probability's `tfd.PixelCNN` in BASELINES.md's setup, both
over binary 28x28x1 images, with Adam (1e-3 unless told) and one shared train step."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from pixelrnn_tf import distribute
from pixelrnn_tf import distributions
from pixelrnn_tf import models

IMAGE_SHAPE = (28, 28, 1)


def count_params(variables):
  """Number of scalars in `variables`."""
  return int(sum(v.shape.num_elements() for v in variables))


def tfp_pixelcnn(num_filters=32, image_shape=IMAGE_SHAPE, init_images=None):
  """Returns a built `tfd.PixelCNN` (PixelCNN++) over binary images `image_shape`.

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


class Ours:
  """A family of this package, `layers` x `hidden`, with its Bernoulli head.

  `output_dims` (maps of the 1x1 output layers) defaults to 2 * hidden;
  `kernel_width` is PixelCNN's block-conv width (3: the paper's 3x3);
  `dtype_policy` the Keras policy it computes in ("mixed_bfloat16": bfloat16 layers,
  float32 weights and logits).
  """

  def __init__(self, model, layers, hidden, output_dims=None, learning_rate=1e-3,
               kernel_width=3, dtype_policy="float32"):
    self.config = models.ModelConfig(model=model, num_layers=layers,
                                     hidden_dims=hidden,
                                     output_dims=output_dims or 2 * hidden,
                                     kernel_width=kernel_width)
    self.name = model
    blocks = f", 3x{kernel_width} blocks" if kernel_width != 3 else ""
    mixed = f", {dtype_policy}" if dtype_policy != "float32" else ""
    self.description = f"{model} {layers} x h={hidden}{blocks}{mixed}"
    with distribute.dtype_policy(dtype_policy):
      self.model = models.build(self.config)
    self.variables = self.model.trainable_variables
    self.optimizer = keras.optimizers.Adam(learning_rate)

  def nll(self, images):
    """`-log p(image)` in nats, `(B,)`, for uint8 0/1 images `(B, 28, 28, 1)`."""
    return -distributions.log_prob(self.model(images), images, 2)

  def apply(self, grads):
    self.optimizer.apply(grads, self.variables)

  def set_learning_rate(self, value):
    self.optimizer.learning_rate.assign(value)


class TFP:
  """`tfd.PixelCNN` over pixel values {0, 1} (see `tfp_pixelcnn`)."""

  name = "tfd.PixelCNN"

  def __init__(self, init_images=None, num_filters=32, learning_rate=1e-3):
    self.description = (f"tfd.PixelCNN num_resnet=1 num_hierarchies=2 "
                        f"num_filters={num_filters} num_logistic_mix=1")
    self.dist = tfp_pixelcnn(num_filters, init_images=init_images)
    self.variables = self.dist.trainable_variables
    self.optimizer = tf_keras.optimizers.Adam(learning_rate)

  def nll(self, images):
    """`-log p(image)` in nats, `(B,)`, for uint8 0/1 images `(B, 28, 28, 1)`."""
    return -self.dist.log_prob(tf.cast(images, tf.float32))

  def apply(self, grads):
    self.optimizer.apply_gradients(zip(grads, self.variables))

  def set_learning_rate(self, value):
    self.optimizer.learning_rate.assign(value)


def train_step(contestant):
  """A `tf.function(images) -> mean NLL` taking one optimizer step of `contestant`."""

  @tf.function
  def step(images):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(contestant.nll(images))
    contestant.apply(tape.gradient(loss, contestant.variables))
    return loss

  return step
