"""Every model family: causality by perturbation, normalization over every image,
likelihood identities.

Parametrized over `models.names()` (and the class-conditional variant of each family
in `models.conditional_names()`), so a newly registered family is covered at once.
"""

import dataclasses
import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf import distributions
from pixelrnn_tf import models
from pixelrnn_tf.layers import scales

FAMILIES = models.names()
# (family, num_classes): every family unconditional, and conditioned on 3 classes.
VARIANTS = [(f, 0) for f in FAMILIES] + [(f, 3) for f in models.conditional_names()]
VARIANT_IDS = [f"{f}{'-classes' if n else ''}" for f, n in VARIANTS]
LABEL = 2  # every image's class when a test runs a conditional model


def small_config(family, channels, num_levels, size=6, num_classes=0, dropout=0.0):
  return models.ModelConfig(model=family, image_shape=(size, size, channels),
                            num_levels=num_levels, num_layers=2, hidden_dims=6,
                            output_dims=12, num_classes=num_classes, dropout=dropout)


def logits_of(model, images, label=LABEL):
  """`model`'s logits for `images`, all of class `label` if it is conditional."""
  labels = np.full(len(images), label) if models.is_conditional(model) else None
  return model(models.network_inputs(model, images, labels))


def build_random(config, seed=0):
  tf.keras.utils.set_random_seed(seed)
  return models.build(config)


def random_images(config, n, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, config.num_levels, size=(n,) + config.image_shape,
                      dtype=np.uint8)


@pytest.mark.parametrize("family, num_classes", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("channels", [1, 3])
def test_causality_by_perturbation(family, num_classes, channels):
  """Changing x[i, j, c] moves no conditional at or before (i, j, c) in the family's
  generation order (raster/RGB; the small image first for `multiscale`)."""
  num_levels = 2 if channels == 1 else 256
  config = small_config(family, channels, num_levels, num_classes=num_classes)
  model = build_random(config)
  h, w, _ = config.image_shape
  targets = [(0, 0, 0), (2, 3, 0), (h - 1, w - 1, channels - 1), (3, 1, channels - 1)]
  if channels == 3:
    targets += [(2, 2, 1), (4, 0, 2)]
  assert_causal(family, model, config, targets)


def assert_causal(family, model, config, targets):
  """Perturbs each sub-pixel (i, j, c) of `targets` in a random image (by half the
  levels) and checks `assert_only_later_conditionals_move` for each."""
  num_levels = config.num_levels
  image = random_images(config, 1)[0]
  batch = [image]
  for i, j, c in targets:
    perturbed = image.copy()
    perturbed[i, j, c] = (int(image[i, j, c]) + num_levels // 2) % num_levels
    batch.append(perturbed)
  logits = logits_of(model, np.stack(batch)).numpy()  # (1 + T, H, W, C, K)
  for t, target in enumerate(targets, start=1):
    assert_only_later_conditionals_move(family, logits[0], logits[t], target)


def assert_only_later_conditionals_move(family, logits, perturbed_logits, target):
  """Logits `(H, W, C, K)` of an image and of it with sub-pixel `target` = (i, j, c)
  changed: equal at and before `target` in the family's generation order, and not
  all equal after it (or the check proves nothing)."""
  h, w, channels, _ = logits.shape
  i, j, c = target
  order = models.generation_order(family, (h, w, channels))
  flat = [x.reshape(h * w * channels, -1)[order] for x in (logits, perturbed_logits)]
  p = list(order).index((i * w + j) * channels + c)
  np.testing.assert_allclose(flat[1][:p + 1], flat[0][:p + 1], rtol=0, atol=1e-5,
                             err_msg=f"{family}: conditional at or before {target} "
                                     "moved when x[i, j, c] changed")
  if p + 1 < len(order):
    assert np.abs(flat[1][p + 1:] - flat[0][p + 1:]).max() > 1e-6


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("channels, num_levels", [(1, 2), (3, 256)])
def test_log_prob_is_sum_of_pixel_log_probs(family, channels, num_levels):
  config = small_config(family, channels, num_levels)
  model = build_random(config)
  images = random_images(config, 3)
  logits = model(images)
  total = distributions.log_prob(logits, images, num_levels)
  per_pixel = distributions.pixel_log_prob(logits, images, num_levels)
  assert per_pixel.shape == images.shape
  np.testing.assert_allclose(total, tf.reduce_sum(per_pixel, [1, 2, 3]), rtol=1e-5)
  loss = distributions.NegativeLogLikelihood(num_levels)(images, logits)
  np.testing.assert_allclose(loss, -tf.reduce_mean(total), rtol=1e-5)


# Whole image spaces whose probabilities must add up to 1: (id, shape, num_levels).
# Binary images go through the Bernoulli head, 3 levels through the Categorical one:
# 2^12, 2^18 = 262,144, 3^8 = 6,561 and 3^6 = 729 images.
EXHAUSTIVE_CASES = [("binary-gray", (3, 4, 1), 2), ("binary-rgb", (2, 3, 3), 2),
                    ("levels-gray", (2, 4, 1), 3), ("levels-rgb", (1, 2, 3), 3)]
# `multiscale` needs even H and W: 4x4 grayscale (2^16 images) and 2x2 RGB (2^12
# binary, 3^12 = 531,441 with 3 levels; 2x4 RGB would be 2^24 binary images).
MULTISCALE_SHAPES = {"binary-gray": (4, 4, 1), "binary-rgb": (2, 2, 3),
                     "levels-rgb": (2, 2, 3)}


def every_image(shape, num_levels):
  """Every image of `shape` with values 0..num_levels-1: uint8 `(L^n, *shape)`."""
  size = int(np.prod(shape))
  values = np.indices((num_levels,) * size, dtype=np.uint8).reshape(size, -1)
  return values.T.reshape((-1,) + tuple(shape))


def total_probability(model, shape, num_levels, label=None, batch_size=16_384):
  """`sum_x p(x)` over every image `x` of `shape` (of class `label` for a
  conditional model), scored in batches and added up in float64."""

  @tf.function(input_signature=[tf.TensorSpec((None,) + tuple(shape), tf.uint8)])
  def log_prob(images):
    labels = None if label is None else tf.fill(tf.shape(images)[:1], label)
    logits = model(models.network_inputs(model, images, labels), training=False)
    return distributions.log_prob(logits, images, num_levels)

  images = every_image(shape, num_levels)
  log_p = np.concatenate([log_prob(images[k:k + batch_size]).numpy()
                          for k in range(0, len(images), batch_size)])
  return math.fsum(np.exp(log_p.astype(np.float64)))


def assert_probabilities_sum_to_one(config, seed=3):
  """The probabilities of all images of `config`'s shape and levels add up to 1
  (for a conditional model, for each class).

  Every weight and bias is drawn from N(0, 0.5^2): with Keras's initial weights
  (zero biases, small kernels) the conditionals hardly depend on the context, and a
  leak of the future moved the sum by as little as 5e-6.
  """
  model = build_random(config, seed=seed)
  rng = np.random.default_rng(seed)
  for v in model.trainable_weights:
    v.assign(rng.normal(0.0, 0.5, v.shape).astype(np.float32))
  for label in range(config.num_classes) if config.num_classes else [None]:
    total = total_probability(model, config.image_shape, config.num_levels, label)
    assert total == pytest.approx(1.0, abs=1e-5), (config, label)


@pytest.mark.parametrize("family, num_classes", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("case, shape, num_levels", EXHAUSTIVE_CASES,
                         ids=[case for case, _, _ in EXHAUSTIVE_CASES])
def test_probabilities_of_all_images_sum_to_one(family, num_classes, case, shape,
                                                num_levels):
  """End to end: a leak of the future anywhere (a mask, a shift, the colour groups
  of the logits) makes this sum differ from 1. Grayscale and RGB, binary and 3
  levels; for a conditional model, for each class. The PixelCNN runs its default
  3x11 blocks."""
  if family == "multiscale":
    shape = MULTISCALE_SHAPES.get(case, shape)
  config = models.ModelConfig(model=family, image_shape=shape, num_levels=num_levels,
                              num_layers=2, hidden_dims=6, output_dims=12,
                              num_classes=num_classes)
  assert_probabilities_sum_to_one(config)


@pytest.mark.parametrize("kernel_width", [3, 5])
@pytest.mark.parametrize("shape", [(3, 6, 1), (2, 3, 3)])
def test_probabilities_of_all_images_sum_to_one_for_pixelcnn_blocks_of_any_width(
    kernel_width, shape):
  """3 x `kernel_width` residual blocks (the paper's 3x3, and 3x5), every binary
  image (2^18 of each shape); the default 3x11 blocks run in the test above."""
  config = models.ModelConfig(image_shape=shape, num_levels=2, num_layers=2,
                              hidden_dims=6, output_dims=12, kernel_width=kernel_width)
  assert_probabilities_sum_to_one(config)


@pytest.mark.parametrize("family", models.conditional_names())
def test_class_conditioning_reaches_every_conditional(family):
  """The class moves the first conditional (no pixel context yet) and the last."""
  config = small_config(family, 3, 256, num_classes=3)
  model = build_random(config)
  images = random_images(config, 1)
  by_class = [logits_of(model, images, label).numpy() for label in range(3)]
  for a, b in itertools.combinations(by_class, 2):
    assert np.abs(a[0, 0, 0, 0] - b[0, 0, 0, 0]).max() > 1e-4
    assert np.abs(a[0, -1, -1, -1] - b[0, -1, -1, -1]).max() > 1e-4
  with pytest.raises(ValueError, match="class-conditional: pass `labels`"):
    models.network_inputs(model, images)


def test_model_config_errors_are_clear():
  with pytest.raises(ValueError, match="Invalid `model`"):
    models.ModelConfig(model="pixelgan")
  with pytest.raises(ValueError, match="Invalid `image_shape`"):
    models.ModelConfig(image_shape=(8, 8, 2))
  with pytest.raises(ValueError, match="Invalid `num_levels`"):
    models.ModelConfig(num_levels=1)
  with pytest.raises(ValueError, match="Invalid `num_classes`"):
    models.ModelConfig(model="gated_pixelcnn", num_classes=-1)
  with pytest.raises(ValueError, match="Class conditioning is implemented for"):
    models.ModelConfig(model="pixelcnn", num_classes=10)
  with pytest.raises(ValueError, match="Invalid `dropout`"):
    models.ModelConfig(dropout=1.0)
  with pytest.raises(ValueError, match="Invalid `kernel_width`"):
    models.ModelConfig(kernel_width=4)
  with pytest.raises(ValueError, match="has no such kernel"):
    models.ModelConfig(model="row_lstm", kernel_width=5)


def test_size_fields_left_out_take_the_familys_defaults():
  """The PixelCNN defaults to 16 blocks of h=32 with 3x11 convs (616k parameters,
  as README states); the other families to 12 x h=16; given fields win."""
  pixelcnn = models.ModelConfig()
  assert (pixelcnn.num_layers, pixelcnn.hidden_dims, pixelcnn.output_dims,
          pixelcnn.kernel_width) == (16, 32, 64, 11)
  assert models.build(pixelcnn).count_params() == 615_681
  for family in ("gated_pixelcnn", "row_lstm", "diagonal_bilstm", "multiscale"):
    config = models.ModelConfig(model=family)
    assert (config.num_layers, config.hidden_dims, config.output_dims,
            config.kernel_width) == (12, 16, 32, 3), family
  paper = models.ModelConfig(num_layers=12, kernel_width=3)
  assert (paper.num_layers, paper.hidden_dims, paper.kernel_width) == (12, 32, 3)
  assert dataclasses.replace(pixelcnn, dropout=0.1).kernel_width == 11


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kernel_width", [3, 5])
def test_pixelcnn_blocks_of_any_width_keep_causality(channels, kernel_width):
  """3 x `kernel_width` residual blocks (the paper's 3x3, and 3x5): conditionals
  move only after the changed sub-pixel. (The other causality tests run the
  default 3x11 blocks.)"""
  num_levels = 2 if channels == 1 else 256
  config = dataclasses.replace(small_config("pixelcnn", channels, num_levels, size=7),
                               kernel_width=kernel_width)
  model = build_random(config)
  assert_causal("pixelcnn", model, config,
                [(0, 0, 0), (2, 3, channels - 1), (4, 0, 0), (6, 6, channels - 1)])


@pytest.mark.parametrize("kernel_width, rows_up, reach", [
    (3, 1, 3), (3, 2, 4), (7, 1, 3), (7, 2, 6), (11, 1, 4), (11, 2, 9)])
def test_wider_blocks_see_into_the_paper_pixelcnns_blind_spot(kernel_width, rows_up,
                                                              reach):
  """How far right of a pixel its conditional sees, `rows_up` rows up, with blocks
  reaching m = kernel_width // 2 columns right in the row above: the 7x7 mask A
  reaches 3 in the rows above and only the left of its own row, so r rows up the
  reach is max((r - 1) m + 3, r m - 1) given enough blocks (here 3). Two rows up
  the paper's 3x3 blocks see 4 columns (the blind spot starts at 5), 3x7 blocks 6,
  3x11 blocks 9; one row up 3, 3 and 4. Flipping the pixel `reach` columns right
  moves the conditional; flipping the next one does not."""
  config = models.ModelConfig(image_shape=(10, 12, 1), num_levels=2, num_layers=3,
                              hidden_dims=6, output_dims=12, kernel_width=kernel_width)
  model = build_random(config)
  row, column = 5, 1
  images = np.repeat(random_images(config, 1), 3, axis=0)
  images[1, row - rows_up, column + reach, 0] ^= 1
  images[2, row - rows_up, column + reach + 1, 0] ^= 1
  logits = model(images).numpy()[:, row, column]
  seen, beyond = (np.abs(logits[i] - logits[0]).max() for i in (1, 2))
  assert seen > 1e-6 and beyond == 0, (seen, beyond)


def test_config_json_round_trip():
  for config in (small_config("pixelcnn", 3, 256),
                 small_config("gated_pixelcnn", 1, 2, num_classes=10)):
    assert models.ModelConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("family", FAMILIES)
def test_dropout_keeps_causality_in_training(family):
  """With dropout on, training-mode logits (one fixed dropout draw for every
  perturbed image) still move only after the changed sub-pixel, and they differ
  from the inference logits, so the dropout is really there."""
  config = small_config(family, 3, 256, dropout=0.5)
  model = build_random(config)
  seeds = [v for v in model.non_trainable_variables if "seed_generator" in v.path]
  assert seeds, f"{family}: no dropout layer was built"
  start = [v.numpy() for v in seeds]

  def training_logits(image):
    for v, value in zip(seeds, start):  # the same dropout masks on every call
      v.assign(value)
    return model(image[None], training=True).numpy()[0]

  image = random_images(config, 1)[0]
  base = training_logits(image)
  assert np.abs(base - model(image[None], training=False).numpy()[0]).max() > 1e-3
  for i, j, c in [(2, 3, 0), (3, 1, 2), (4, 0, 1)]:
    perturbed = image.copy()
    perturbed[i, j, c] = (int(image[i, j, c]) + 128) % 256
    assert_only_later_conditionals_move(family, base, training_logits(perturbed),
                                        (i, j, c))


def test_dropout_adds_no_weights_and_is_identity_at_inference():
  config = small_config("pixelcnn", 3, 256)
  plain = build_random(config)
  dropped = build_random(small_config("pixelcnn", 3, 256, dropout=0.3))
  assert len(dropped.trainable_weights) == len(plain.trainable_weights)
  for source, target in zip(plain.trainable_weights, dropped.trainable_weights):
    target.assign(source)
  images = random_images(config, 2)
  np.testing.assert_array_equal(dropped(images, training=False).numpy(),
                                plain(images, training=False).numpy())


def _earlier_pixels_that_move(model, image, target):
  """Pixels before `target` = (i, j) whose change moves the conditional at target."""
  h, w, _ = image.shape
  i, j = target
  earlier = [(r, c) for r in range(h) for c in range(w) if (r, c) < (i, j)]
  batch = [image]
  for r, c in earlier:
    perturbed = image.copy()
    perturbed[r, c, 0] = 1 - image[r, c, 0]
    batch.append(perturbed)
  logits = model(np.stack(batch)).numpy()[:, i, j, 0]  # (1 + N, K)
  moved = np.abs(logits[1:] - logits[0]).max(axis=-1) > 1e-6
  return {p for p, m in zip(earlier, moved) if m}, set(earlier)


@pytest.mark.parametrize("family", ["gated_pixelcnn", "pixelcnn"])
def test_gated_pixelcnn_has_no_blind_spot(family):
  """In a 6x6 image with a 7-wide first layer and 2 more 3-wide layers, every earlier
  pixel moves the conditionals of (4, 2) and (5, 0) for the Gated PixelCNN. The plain
  PixelCNN of the same depth misses x[4, 5] from (5, 0): its blind spot (one row up,
  beyond what the 3x3 masks can carry to the right)."""
  config = models.ModelConfig(model=family, image_shape=(6, 6, 1), num_levels=2,
                              num_layers=2, hidden_dims=4, output_dims=8,
                              kernel_width=3)
  model = build_random(config)
  image = random_images(config, 1)[0]
  for target in ((4, 2), (5, 0)):
    moved, earlier = _earlier_pixels_that_move(model, image, target)
    if family == "gated_pixelcnn":
      assert moved == earlier, (target, earlier - moved)
    elif target == (5, 0):
      assert (4, 5) in earlier - moved


def _op_types(graph_def):
  """Op types of a GraphDef and of every function in its library (loop bodies)."""
  ops = {node.op for node in graph_def.node}
  for function in graph_def.library.function:
    ops |= {node.op for node in function.node_def}
  return ops


@pytest.mark.parametrize("family, num_classes", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("channels, num_levels", [(1, 2), (3, 256)])
def test_training_gradient_has_no_strided_slice_grad(family, num_classes, channels,
                                                      num_levels):
  """`StridedSliceGrad` was the largest op of the Diagonal BiLSTM's and the Gated
  PixelCNN's training steps on CPU (`pixelrnn_tf.layers.shift`); no family (nor the
  loss) uses it."""
  config = small_config(family, channels, num_levels, size=4, num_classes=num_classes)
  model = build_random(config)
  images = tf.constant(random_images(config, 2))

  @tf.function
  def gradients(images):
    with tf.GradientTape() as tape:
      loss = distributions.NegativeLogLikelihood(num_levels)(
          images, logits_of(model, images))
    return tape.gradient(loss, model.trainable_variables)

  ops = _op_types(gradients.get_concrete_function(images).graph.as_graph_def())
  assert "Conv2DBackpropFilter" in ops or "Einsum" in ops  # it is the backward graph
  assert "StridedSliceGrad" not in ops


def test_generation_order_puts_the_small_image_first_for_multiscale():
  raster = models.generation_order("row_lstm", (4, 4, 1))
  np.testing.assert_array_equal(raster, np.arange(16))
  order = models.generation_order("multiscale", (4, 4, 2))
  # Pixels (0,0), (0,2), (2,0), (2,2), two channels each, then the rest in raster.
  np.testing.assert_array_equal(order[:8], [0, 1, 4, 5, 16, 17, 20, 21])
  np.testing.assert_array_equal(np.sort(order), np.arange(32))
  assert list(order[8:]) == sorted(order[8:])


def test_multiscale_small_image_logits_come_from_the_small_network():
  """At the small image's pixels the logits are the nested `small` network's, on
  x[::2, ::2] alone; elsewhere they also depend on the small image (the
  upsampling network's bias reaches every pixel, also those before it in raster)."""
  config = small_config("multiscale", 1, 2)
  model = build_random(config)
  images = random_images(config, 2)
  logits = model(images).numpy()
  small = model.get_layer("small")(images[:, ::2, ::2]).numpy()
  np.testing.assert_allclose(logits[:, ::2, ::2], small, rtol=1e-6, atol=1e-6)
  changed = images.copy()
  changed[:, 4, 4] = 1 - changed[:, 4, 4]  # a small-image pixel late in raster order
  moved = np.abs(model(changed).numpy() - logits).max(axis=(0, 3, 4)) > 1e-6
  # Off-grid pixels earlier in raster order: later in generation order, they see it.
  assert moved[:4][~scales.subsampled_positions(6, 6, 2)[:4]].any()
  assert not moved[0, 0]  # the first small-image pixel precedes it


def test_multiscale_needs_even_sizes():
  with pytest.raises(ValueError, match="Expected H and W divisible by 2"):
    models.ModelConfig(model="multiscale", image_shape=(5, 4, 1))
