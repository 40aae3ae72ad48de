"""Weights saved before the one-module-per-family layout still load, to the same
log-probabilities: checkpoints of a model_dir and Keras `.weights.h5` files alike.

The fixtures (tests/fixtures/weights_before_families/, made by
tests/fixtures/make_weights_before_families.py at commit 9f6f437) hold a tiny RGB
model of each family with random weights, and the log-probs it gave then.
"""

import os

import numpy as np
import pytest

from pixelrnn_tf import configs
from pixelrnn_tf import distributions
from pixelrnn_tf import models
from pixelrnn_tf import training

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures",
                        "weights_before_families")
CASES = sorted(os.listdir(FIXTURES))


def expected(case):
  saved = np.load(os.path.join(FIXTURES, case, "expected.npz"))
  return saved["images"], saved.get("labels"), saved["log_prob"]


def log_prob(model, config, images, labels):
  logits = model(models.network_inputs(model, images, labels))
  return distributions.log_prob(logits, images, config.num_levels).numpy()


def test_every_family_has_a_fixture():
  assert {c.replace("_classes", "") for c in CASES} == set(models.names())


@pytest.mark.parametrize("case", CASES)
def test_a_model_dir_from_before_restores_to_the_same_log_probs(case):
  model, config, _, step = training.load_trained(os.path.join(FIXTURES, case))
  images, labels, log_probs = expected(case)
  assert step == 7
  np.testing.assert_allclose(log_prob(model, config, images, labels), log_probs,
                             rtol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_keras_weights_from_before_load_to_the_same_log_probs(case):
  config, _ = configs.load_config(os.path.join(FIXTURES, case))
  model = models.build(config)
  model.load_weights(os.path.join(FIXTURES, case, "keras.weights.h5"))
  images, labels, log_probs = expected(case)
  np.testing.assert_allclose(log_prob(model, config, images, labels), log_probs,
                             rtol=1e-5)
