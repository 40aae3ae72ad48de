"""Samplers: determinism by seed, completion keeps known rows, valid values, and the
cached sampler draws what the naive one draws."""

import dataclasses
import itertools
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf import distribute
from pixelrnn_tf import distributions
from pixelrnn_tf import models
from pixelrnn_tf import sampling
from pixelrnn_tf.families import base


def tiny_model(channels=1, num_levels=2):
  tf.keras.utils.set_random_seed(0)
  return models.build(models.ModelConfig(image_shape=(5, 4, channels),
                                         num_levels=num_levels, num_layers=1,
                                         hidden_dims=6, output_dims=6))


def test_same_seed_same_images_other_seed_other_images():
  model = tiny_model()
  draw = lambda s: sampling.sample(model, 6, (5, 4, 1), 2, tf.constant([s, 0])).numpy()
  first, again, other = draw(1), draw(1), draw(2)
  np.testing.assert_array_equal(first, again)
  assert (first != other).any()
  assert first.dtype == np.uint8 and set(np.unique(first)) <= {0, 1}


def test_completion_keeps_known_rows_and_resamples_the_rest():
  model = tiny_model(channels=3, num_levels=256)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(3, 5, 4, 3), dtype=np.uint8)
  known_rows = 2
  out = sampling.complete(model, images, known_rows * 4 * 3, 256,
                          tf.constant([7, 0])).numpy()
  np.testing.assert_array_equal(out[:, :known_rows], images[:, :known_rows])
  assert (out[:, known_rows:] != images[:, known_rows:]).any()


def test_sampler_compiles_with_xla_and_is_deterministic():
  # XLA may pick another stateless RNG algorithm than the plain graph, so a seed
  # is reproducible within one compile mode, not across modes.
  model = tiny_model()
  run = tf.function(
      lambda s: sampling.sample(model, 2, (5, 4, 1), 2, tf.stack([s, 0])),
      jit_compile=True)
  first, again = run(tf.constant(3)).numpy(), run(tf.constant(3)).numpy()
  np.testing.assert_array_equal(first, again)
  assert set(np.unique(first)) <= {0, 1}


def randomized_model(image_shape, num_levels, family="pixelcnn", num_layers=2,
                     num_classes=0, dropout=0.0, kernel_width=3):
  """A model whose every weight and bias is random (zero biases hide bugs)."""
  tf.keras.utils.set_random_seed(1)
  model = models.build(models.ModelConfig(model=family, image_shape=image_shape,
                                          num_levels=num_levels,
                                          num_layers=num_layers, hidden_dims=4,
                                          output_dims=8, num_classes=num_classes,
                                          dropout=dropout,
                                          kernel_width=kernel_width))
  rng = np.random.default_rng(2)
  for v in model.trainable_weights:
    v.assign(rng.normal(0.0, 0.5, v.shape).astype(np.float32))
  return model


@pytest.mark.parametrize("family", models.names())
@pytest.mark.parametrize("image_shape,num_levels,known_rows", [
    ((6, 4, 1), 2, 0), ((6, 4, 1), 2, 3), ((4, 4, 3), 256, 0), ((4, 4, 3), 256, 2)])
def test_cached_sampler_draws_what_the_naive_sampler_draws(image_shape, num_levels,
                                                            known_rows, family):
  model = randomized_model(image_shape, num_levels, family)
  images = np.random.default_rng(3).integers(0, num_levels, (4,) + image_shape,
                                             dtype=np.uint8)
  start = known_rows * image_shape[1] * image_shape[2]
  seed = tf.constant([5, 0])
  naive = sampling.complete_naive(model, images, start, num_levels, seed).numpy()
  cached = sampling.complete_cached(model, images, start, num_levels, seed).numpy()
  np.testing.assert_array_equal(cached, naive)
  np.testing.assert_array_equal(cached[:, :known_rows], images[:, :known_rows])
  # The images are not constant: the comparison covers varied values.
  assert len(np.unique(naive[:, known_rows:])) > 1


@pytest.mark.parametrize("image_shape,num_levels", [((6, 7, 1), 2), ((4, 5, 3), 256)])
def test_cached_sampler_draws_what_the_naive_sampler_draws_for_wide_pixelcnn_blocks(
    image_shape, num_levels):
  """`kernel_width=5`: the cached sampler's 2 x 5 windows of the block convs."""
  model = randomized_model(image_shape, num_levels, kernel_width=5)
  assert_samplers_draw_the_same_from_scratch(model, image_shape, num_levels, seed=9)


@pytest.mark.parametrize("image_shape,num_levels,start", [
    ((5, 13, 1), 2, 0), ((3, 12, 3), 256, 0),
    ((4, 12, 3), 256, (1 * 12 + 6) * 3 + 1)])  # row 1, column 6, channel G
def test_cached_sampler_draws_what_the_naive_sampler_draws_for_the_default_3x11_blocks(
    image_shape, num_levels, start):
  """The default PixelCNN's 3 x 11 block convs (`kernel_width=11`; here 3 blocks of
  h=4): the cached sampler reads 2 x 11 windows, 5 columns either side of the
  pixel, and the images are wider than 11 columns, so every tap of the window lands
  on image pixels somewhere. Grayscale and RGB, from scratch and from mid-row."""
  model = randomized_model(image_shape, num_levels, num_layers=3, kernel_width=11)
  images = np.random.default_rng(6).integers(0, num_levels, (3,) + image_shape,
                                             dtype=np.uint8)
  seed = tf.constant([10, 0])
  naive = sampling.complete_naive(model, images, start, num_levels, seed).numpy()
  cached = sampling.complete_cached(model, images, start, num_levels, seed).numpy()
  np.testing.assert_array_equal(cached, naive)
  np.testing.assert_array_equal(cached.reshape(3, -1)[:, :start],
                                images.reshape(3, -1)[:, :start])
  assert len(np.unique(naive.reshape(3, -1)[:, start:])) > 1


@pytest.mark.parametrize("family", models.names())
def test_cached_sampler_matches_the_naive_one_for_a_model_with_dropout(family):
  """Dropout is off when sampling: both samplers draw from the inference model."""
  image_shape, num_levels = (4, 4, 3), 256
  model = randomized_model(image_shape, num_levels, family, dropout=0.5)
  assert_samplers_draw_the_same_from_scratch(model, image_shape, num_levels, seed=7)


def assert_samplers_draw_the_same_from_scratch(model, image_shape, num_levels, seed):
  """Three images sampled from nothing: cached == naive, and not constant."""
  images = np.zeros((3,) + image_shape, np.uint8)
  seed = tf.constant([seed, 0])
  naive = sampling.complete_naive(model, images, 0, num_levels, seed).numpy()
  cached = sampling.complete_cached(model, images, 0, num_levels, seed).numpy()
  np.testing.assert_array_equal(cached, naive)
  assert len(np.unique(naive)) > 1


@pytest.mark.parametrize("family", models.conditional_names())
@pytest.mark.parametrize("image_shape,num_levels", [((6, 5, 1), 2), ((4, 3, 3), 256)])
def test_cached_sampler_draws_what_the_naive_sampler_draws_given_classes(
    family, image_shape, num_levels):
  model = randomized_model(image_shape, num_levels, family, num_classes=3)
  images = np.random.default_rng(3).integers(0, num_levels, (4,) + image_shape,
                                             dtype=np.uint8)
  labels = np.array([0, 1, 2, 1], np.int32)
  start = image_shape[1] * image_shape[2]  # keep the first row
  seed = tf.constant([5, 0])
  draw = lambda sampler, labels: sampler(model, images, start, num_levels, seed,
                                         labels).numpy()
  cached = draw(sampling.complete_cached, labels)
  np.testing.assert_array_equal(cached, draw(sampling.complete_naive, labels))
  # The classes steer the draws (same seed, other classes, other images).
  assert (draw(sampling.complete_cached, labels[::-1]) != cached).any()
  with pytest.raises(ValueError, match="class-conditional: pass `labels`"):
    sampling.sample(model, 2, image_shape, num_levels, seed)


@pytest.mark.parametrize("family", models.names())
def test_cached_sampler_starts_mid_row(family):
  # Completion from the middle of a row reads the caches of the known pixels left
  # of the start, on its own row and the rows above.
  model = randomized_model((6, 4, 3), 256, family)
  images = np.random.default_rng(4).integers(0, 256, (3, 6, 4, 3), dtype=np.uint8)
  start = (2 * 4 + 2) * 3 + 1  # row 2, column 2, channel G
  seed = tf.constant([8, 0])
  naive = sampling.complete_naive(model, images, start, 256, seed).numpy()
  cached = sampling.complete_cached(model, images, start, 256, seed).numpy()
  np.testing.assert_array_equal(cached, naive)
  np.testing.assert_array_equal(cached.reshape(3, -1)[:, :start],
                                images.reshape(3, -1)[:, :start])


@pytest.mark.parametrize("family", models.names())
@pytest.mark.parametrize("image_shape,num_levels,start", [
    ((6, 4, 1), 2, 0), ((6, 4, 3), 256, (2 * 4 + 2) * 3 + 1)])  # row 2, column 2, G
def test_cached_sampler_compiles_with_xla_and_matches_its_naive_twin(
    family, image_shape, num_levels, start):
  model = randomized_model(image_shape, num_levels, family)
  images = np.random.default_rng(5).integers(0, num_levels, (3,) + image_shape,
                                             dtype=np.uint8)
  run = lambda fn: tf.function(
      lambda: fn(model, images, start, num_levels, tf.constant([4, 0])),
      jit_compile=True)().numpy()
  np.testing.assert_array_equal(run(sampling.complete_cached),
                                run(sampling.complete_naive))


def per_draw_copies(hlo):
  """Copies, pads and conditionals of arrays of rank >= 3 (caches, canvas) in the
  loop body that draws a sub-pixel (the `while` body holding the random draw) of
  XLA's optimized HLO text: each is a pass over a whole map per sub-pixel."""
  found = []
  for computation in re.split(r"\n(?=\S)", hlo):
    header = computation.split("\n", 1)[0]
    if "while_body" not in header or "StatelessRandom" not in computation:
      continue
    for line in computation.split("\n")[1:]:
      match = re.match(r"\s*(?:ROOT )?%(\S+) = \w+\[([\d,]*)\]\S* (\S+)\(", line)
      if match and len(match[2].split(",")) >= 3 and (
          match[3] in ("copy", "pad", "conditional") or
          match[1].startswith("wrapped_pad")):
        found.append(f"{match[3]} {match[1]} [{match[2]}]")
  return found


@pytest.mark.parametrize("family", models.names())
def test_xla_updates_the_caches_in_place_at_every_draw(family):
  # Before: a slice of size -1 padded a whole cache per read, a read of the Row
  # LSTM's cell state fused into its update copied the cache, and the per-draw
  # `tf.cond` of the row passes copied every cache it returned.
  model = randomized_model((6, 4, 1), 2, family)
  draw = tf.function(lambda: sampling.complete_cached(
      model, tf.zeros((3, 6, 4, 1), tf.uint8), 0, 2, tf.constant([4, 0])),
      jit_compile=True)
  hlo = draw.experimental_get_compiler_ir()(stage="optimized_hlo")
  assert "StatelessRandom" in hlo  # the draw loop is there to inspect
  assert per_draw_copies(hlo) == []


@pytest.mark.parametrize("family", models.names())
@pytest.mark.parametrize("image_shape,num_levels,start,num_images", [
    ((6, 4, 1), 2, 0, 4),
    ((4, 4, 3), 256, 0, 4),
    ((4, 4, 3), 256, (1 * 4 + 2) * 3 + 1, 8)])  # from row 1, column 2, G
def test_cached_sampler_of_a_mixed_precision_model_draws_what_a_float32_twin_draws(
    family, image_shape, num_levels, start, num_images):
  """`complete_cached` "runs in float32 whatever the dtype policy": for a model
  built under mixed_bfloat16 it draws exactly what the naive sampler draws for a
  float32 twin with the same weights. With 256 levels the comparison can tell a
  sampler that computes in bfloat16: the mixed model's own naive sampler (a
  bfloat16 forward pass per sub-pixel) draws 3 to 23 other sub-pixels."""
  with distribute.dtype_policy("mixed_bfloat16"):
    mixed = randomized_model(image_shape, num_levels, family)
  assert "bfloat16" in {layer.compute_dtype for layer in mixed.layers if layer.weights}
  twin = randomized_model(image_shape, num_levels, family)  # float32 policy
  twin.set_weights(mixed.get_weights())
  images = np.random.default_rng(3).integers(0, num_levels,
                                             (num_images,) + image_shape, np.uint8)
  seed = tf.constant([6, 0])
  naive = sampling.complete_naive(twin, images, start, num_levels, seed).numpy()
  if num_levels > 2:
    bfloat16_naive = sampling.complete_naive(mixed, images, start, num_levels,
                                             seed).numpy()
    assert (bfloat16_naive != naive).any()
  cached = sampling.complete_cached(mixed, images, start, num_levels, seed).numpy()
  np.testing.assert_array_equal(cached, naive)
  assert len(np.unique(naive.reshape(num_images, -1)[:, start:])) > 1


def test_complete_picks_the_cached_sampler_for_every_family(monkeypatch):
  calls = []
  cached = sampling.complete_cached
  monkeypatch.setattr(sampling, "complete_cached",
                      lambda *args: calls.append(args[0].name) or cached(*args))
  seed = tf.constant([0, 0])
  compiled = []
  for family in models.names():
    model = randomized_model((4, 4, 1), 2, family, num_layers=1)
    sampling.sample(model, 1, (4, 4, 1), 2, seed)
    if sampling.prefers_xla(model):
      compiled.append(family)
  assert calls == compiled == models.names()


def test_other_networks_sample_naively_and_the_cached_sampler_refuses_them():
  pixelcnn = randomized_model((3, 3, 1), 2, num_layers=1)
  custom = keras.Model(pixelcnn.input, pixelcnn.output, name="custom")
  assert not sampling.has_cached_sampler(custom)
  blank, seed = tf.zeros((1, 3, 3, 1), tf.uint8), tf.constant([0, 0])
  np.testing.assert_array_equal(sampling.complete(custom, blank, 0, 2, seed),
                                sampling.complete_naive(pixelcnn, blank, 0, 2, seed))
  with pytest.raises(ValueError, match="No cached sampler for model 'custom'"):
    sampling.complete_cached(custom, blank, 0, 2, seed)


def test_image_grid_tiles_in_rows():
  images = np.arange(5 * 2 * 2 * 1, dtype=np.uint8).reshape(5, 2, 2, 1)
  grid = sampling.image_grid(images, columns=3).numpy()
  assert grid.shape == (4, 6, 1)
  np.testing.assert_array_equal(grid[:2, 2:4], images[1])
  np.testing.assert_array_equal(grid[2:, 4:], 0)  # blank fill


def _empirical_vs_model(model, shape, num_samples, seed, sampler=sampling.complete):
  """Total variation between binary images drawn by `sampler` and the model's p(x)."""
  size = int(np.prod(shape))
  every = np.array(list(itertools.product([0, 1], repeat=size)),
                   np.uint8).reshape((-1,) + shape)
  p = np.exp(distributions.log_prob(model(every), every, 2).numpy().astype(np.float64))
  blank = tf.zeros((num_samples,) + shape, tf.uint8)
  draws = sampler(model, blank, 0, 2, tf.constant([seed, 0]))
  codes = draws.numpy().reshape(num_samples, size) @ (2 ** np.arange(size)[::-1])
  freq = np.bincount(codes, minlength=2 ** size) / num_samples
  return 0.5 * np.abs(freq - p).sum(), p


def test_multiscale_sampler_draws_from_the_model_distribution():
  """Draws in the multi-scale order (pixels (0, 0) and (0, 2) first) follow p(x):
  total variation 0.028 over the 256 images with 20,000 draws; the naive sampler
  drawing the same conditionals in raster order is far off (0.099), so the test
  sees the order."""
  model = randomized_model((2, 4, 1), 2, "multiscale", num_layers=1)
  tv, p = _empirical_vs_model(model, (2, 4, 1), 20_000, seed=3)
  assert p.sum() == pytest.approx(1.0, abs=1e-5)
  assert tv < 0.055, tv
  network = model.pixelrnn  # the same model, drawn in raster order
  model.pixelrnn = dataclasses.replace(network, family=dataclasses.replace(
      network.family, generation_order=base.raster_order))
  tv_raster, _ = _empirical_vs_model(model, (2, 4, 1), 20_000, seed=3,
                                     sampler=sampling.complete_naive)
  assert tv_raster > 0.07, tv_raster


def test_multiscale_completion_keeps_known_sub_pixels():
  model = randomized_model((4, 4, 3), 256, "multiscale", num_layers=1)
  images = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), np.uint8)
  start = 1 * 4 * 3 + 2 * 3  # row 0 and pixels (1, 0), (1, 1) known
  out = sampling.complete(model, images, start, 256, tf.constant([5, 0])).numpy()
  flat_in, flat_out = images.reshape(2, -1), out.reshape(2, -1)
  np.testing.assert_array_equal(flat_out[:, :start], flat_in[:, :start])
  assert (flat_out[:, start:] != flat_in[:, start:]).all(axis=0).sum() > 20
