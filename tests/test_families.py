"""The family registry: a new family is one module (here, one record) and one
registration away from training, cached sampling and export by the generic code."""

import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf import configs
from pixelrnn_tf import distributions
from pixelrnn_tf import export
from pixelrnn_tf import families
from pixelrnn_tf import models
from pixelrnn_tf import sampling
from pixelrnn_tf import training
from pixelrnn_tf.families import base
from pixelrnn_tf.families import common


def toy_network(x, config, images, labels):
  """The 7x7 mask-A layer straight into the output layers."""
  del images, labels
  image = x
  x, first = common.first_layer(x, config)
  logits, output = common.output_layers(x, config)
  return logits, (image, first, output)


def toy_cached_network(model, parts, inputs, start_row):
  image, first, output = parts
  at_pixel = first.pixel_fn()
  cache = first.start_cache(base.maps_of(model, inputs, [image])[0], start_row)
  return base.CachedNetwork(
      pixel_step=lambda i, j, cache: (at_pixel(cache, j), cache), caches=cache,
      write_pixel=lambda cache, i, j, pixel: first.write(cache, j, pixel),
      output=output.vector_fn(), row_end=lambda i, cache: first.next_row(cache))


TOY = base.Family(name="toy", network=toy_network, cached_network=toy_cached_network,
                  default_sizes=dict(num_layers=1, hidden_dims=4, output_dims=8,
                                     kernel_width=3))


@pytest.fixture
def toy_family():
  families.register(TOY)
  yield TOY
  families.unregister(TOY.name)


def test_a_registered_family_trains_samples_cached_and_exports(
    toy_family, image_folder, tmp_path):
  assert "toy" in models.names()
  train_config = configs.TrainConfig(
      dataset=f"folder:{image_folder}", image_size=8, batch_size=8, train_steps=4,
      steps_per_loop=2, eval_every_loops=0, summary_samples=2)
  model_config = training.model_config_for_dataset(train_config, model="toy")
  model_dir = str(tmp_path / "run")
  model = training.train(model_dir, model_config, train_config, verbose=0)
  assert training.evaluate(model_dir, "validation")["num_examples"] == 16
  images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 1), np.uint8)
  seed = tf.constant([4, 0])
  assert sampling.sampler_name(model) == "cached"
  np.testing.assert_array_equal(
      sampling.complete_cached(model, images, 11, 256, seed),
      sampling.complete_naive(model, images, 11, 256, seed))
  loaded = tf.saved_model.load(export.export(model_dir, str(tmp_path / "e")))
  served = loaded.signatures["serving_default"](images=tf.constant(images))
  np.testing.assert_allclose(
      served["log_prob"], distributions.log_prob(model(images), images, 256),
      rtol=1e-5)
  drawn = loaded.signatures["sample"](num_samples=tf.constant(2),
                                      seed=tf.constant(4))["images"]
  assert drawn.shape == (2, 8, 8, 1)


def test_a_family_without_a_one_pixel_step_samples_naively_and_says_so(
    toy_family, monkeypatch):
  families.register(base.Family(name="toy", network=toy_network,
                                default_sizes=TOY.default_sizes))
  model = models.build(models.ModelConfig(model="toy", image_shape=(3, 3, 1)))
  assert sampling.sampler_name(model) == "naive"
  said = []
  monkeypatch.setattr(sampling.logging, "info",
                      lambda msg, *args: said.append(msg % args))
  blank, seed = tf.zeros((1, 3, 3, 1), tf.uint8), tf.constant([0, 0])
  sampling.complete(model, blank, 0, 2, seed)
  assert said == ["Sampling toy with the naive sampler."]
  with pytest.raises(ValueError, match="No cached sampler for model 'toy': its "
                     "family has no one-pixel step"):
    sampling.complete_cached(model, blank, 0, 2, seed)


def test_the_sampler_finds_the_family_whatever_the_models_name():
  config = models.ModelConfig(image_shape=(4, 4, 1), num_layers=1, hidden_dims=2,
                              output_dims=4, kernel_width=3)
  model = models.build(config, name="renamed")
  assert sampling.sampler_name(model) == "cached"
  blank, seed = tf.zeros((1, 4, 4, 1), tf.uint8), tf.constant([0, 0])
  np.testing.assert_array_equal(sampling.complete_cached(model, blank, 0, 2, seed),
                                sampling.complete_naive(model, blank, 0, 2, seed))


def test_an_unknown_family_lists_the_registered_ones():
  with pytest.raises(ValueError, match=r"Invalid `model`. Expected one of \["):
    families.get("pixel_gan")
