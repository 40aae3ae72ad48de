"""Row LSTM and Diagonal BiLSTM: dependency fields, colour groups, models, serialization.

Everything runs at random initialisation on tiny maps. Dependency fields are measured
by perturbation: change one input pixel and see which outputs move.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from pixelrnn_tf import distributions
from pixelrnn_tf import models
from pixelrnn_tf.layers import DiagonalBiLSTM
from pixelrnn_tf.layers import RowLSTM
from pixelrnn_tf.layers import recurrent

H = W = 6
FAMILIES = {"row_lstm": RowLSTM, "diagonal_bilstm": DiagonalBiLSTM}
ATOL = 1e-6  # models (float32): "unchanged"; masked taps contribute exact zeros
MOVED = 1e-5  # models: "changed", well above float noise
LAYER_ATOL = 1e-12  # layers run in float64: far fields decay below float32 noise
LAYER_MOVED = 1e-9

_MODELS = {}


def small_config(family, channels, size=H, **kwargs):
  # hidden_dims=4 is not a multiple of 3: the gate layout must keep the groups of
  # hidden channels [0, 0, 1, 2] for any `units`.
  kwargs = dict(num_layers=2, hidden_dims=4, output_dims=12) | kwargs
  return models.ModelConfig(model=family, image_shape=(size, size, channels),
                            num_levels=2 if channels == 1 else 256, **kwargs)


def random_model(family, channels):
  """A cached random-init model of `family` on 6x6 images with `channels`."""
  key = (family, channels)
  if key not in _MODELS:
    keras.utils.set_random_seed(0)
    _MODELS[key] = models.build(small_config(family, channels))
  return _MODELS[key]


def random_images(config, n, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, config.num_levels, (n,) + config.image_shape, np.uint8)


def perturbed_logits(model, config, image, pixels):
  """Logits of `image` and of one copy per `(i, j, c)` with that sub-pixel changed.

  Returns:
    `(1 + len(pixels), H*W*C, K)` logits in raster/RGB order; row 0 is `image`.
  """
  batch = [image]
  for i, j, c in pixels:
    changed = image.copy()
    changed[i, j, c] = (int(image[i, j, c]) + config.num_levels // 2) % config.num_levels
    batch.append(changed)
  logits = model(np.stack(batch)).numpy()  # (1+T, H, W, C, K)
  return logits.reshape(len(batch), -1, logits.shape[-1])


def layer_field(layer, i, j, in_channels=4, groups=None, seed=0):
  """Which input pixels move output `[i, j]` of a layer (random input and noise).

  Args:
    groups: None (perturb all channels of a pixel) or a list of channel index lists:
      then returns, per group, which output channels at `[i, j]` moved when that
      group of input channels at `[i, j]` changed.

  Returns:
    bool `(H, W)` (groups None) or `(len(groups), units)`.
  """
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(H, W, in_channels))  # float64, as the layers under test
  batch = [x]
  if groups is None:
    for a, b in itertools.product(range(H), range(W)):
      changed = x.copy()
      changed[a, b] += rng.normal(size=in_channels)
      batch.append(changed)
  else:
    for channels in groups:
      changed = x.copy()
      changed[i, j, channels] += 1.0 + rng.random(len(channels))
      batch.append(changed)
  out = np.asarray(layer(np.stack(batch)))[:, i, j]  # (1+T, units)
  moved = np.abs(out[1:] - out[:1])  # (T, units)
  untouched = moved <= LAYER_ATOL
  assert np.all(untouched | (moved > LAYER_MOVED)), "ambiguous change size"
  if groups is None:
    return ~untouched.all(-1).reshape(H, W)
  return ~untouched


def row_lstm_field(i, j):
  """The Row LSTM triangle: row i - d reads columns j - d - 1 .. j + d; row i: j-1, j."""
  field = np.zeros((H, W), bool)
  for a, b in itertools.product(range(H), range(W)):
    d = i - a
    field[a, b] = (d == 0 and b in (j - 1, j)) or (d >= 1 and j - d - 1 <= b <= j + d)
  return field


def diagonal_field(i, j):
  """The full context: every row above, and columns <= j on row i."""
  field = np.zeros((H, W), bool)
  field[:i] = True
  field[i, :j + 1] = True
  return field


# --- skew ---------------------------------------------------------------------------


def test_skew_places_row_r_at_offset_r_and_unskew_inverts_it():
  x = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 6)).astype(np.float32)
  skewed = recurrent.skew(tf.constant(x)).numpy()  # (2, 3, 4, 8, 6)
  assert skewed.shape == (2, 3, 4, 5 + 4 - 1, 6)
  expected = np.zeros_like(skewed)
  for r in range(4):
    expected[..., r, r:r + 5, :] = x[..., r, :, :]
  np.testing.assert_array_equal(skewed, expected)
  np.testing.assert_array_equal(recurrent.unskew(tf.constant(skewed), 5).numpy(), x)


def test_unskew_rejects_a_wrong_width():
  with pytest.raises(ValueError, match="Invalid skewed map. Expected width"):
    recurrent.unskew(tf.zeros((1, 4, 8, 2)), 6)


# --- layers alone -------------------------------------------------------------------


@pytest.mark.parametrize("i, j", [(4, 2), (0, 0), (5, 5), (3, 0), (1, 4)])
def test_row_lstm_layer_reads_exactly_its_triangle(i, j):
  keras.utils.set_random_seed(1)
  field = layer_field(RowLSTM(5, dtype="float64"), i, j)
  np.testing.assert_array_equal(field, row_lstm_field(i, j))


@pytest.mark.parametrize("i, j", [(4, 2), (0, 0), (5, 5), (3, 0), (5, 0), (1, 4)])
def test_diagonal_bilstm_layer_reads_the_full_context_and_nothing_later(i, j):
  """Rows above in full (right of j only through the shifted right-to-left pass);
  on row i nothing right of j, so the right-to-left pass never leaks row i."""
  keras.utils.set_random_seed(1)
  field = layer_field(DiagonalBiLSTM(5, dtype="float64"), i, j)
  np.testing.assert_array_equal(field, diagonal_field(i, j))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_layer_keeps_colour_groups_at_the_current_pixel(family):
  """Output channel k (group k*3//units) reads input groups <= its own at (i, j)."""
  keras.utils.set_random_seed(2)
  units = 4  # hidden groups [0, 0, 1, 2]: not a multiple of 3
  layer = FAMILIES[family](units, num_groups=3, dtype="float64")
  in_groups = [[0, 1], [2, 3], [4, 5]]  # 6 input channels, 2 per group
  moved = layer_field(layer, 3, 2, in_channels=6, groups=in_groups)  # (3, units)
  out_group = np.arange(units) * 3 // units
  expected = out_group[None, :] >= np.arange(3)[:, None]
  np.testing.assert_array_equal(moved, expected)


# --- models -------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("channels", [1, 3])
def test_model_causality_by_perturbation(family, channels):
  """Changing x[i, j, c] moves no conditional at or before (i, j, c); later ones move."""
  model = random_model(family, channels)
  config = small_config(family, channels)
  targets = [(0, 0, 0), (2, 3, 0), (3, 1, channels - 1), (5, 4, 0), (4, 5, 0)]
  if channels == 3:
    targets += [(2, 2, 1), (4, 0, 2), (1, 5, 1)]
  flat = perturbed_logits(model, config, random_images(config, 1)[0], targets)
  for t, (i, j, c) in enumerate(targets, start=1):
    p = (i * W + j) * channels + c
    np.testing.assert_allclose(
        flat[t, :p + 1], flat[0, :p + 1], rtol=0, atol=ATOL,
        err_msg=f"{family}: a conditional at or before {(i, j, c)} moved")
    assert np.abs(flat[t, p + 1:] - flat[0, p + 1:]).max() > MOVED, (
        f"{family}: no later conditional saw x{(i, j, c)}")


@pytest.fixture
def float64():
  """Builds models in float64: far-field effects are tiny at random init."""
  floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
  keras.config.set_floatx("float64")
  keras.config.set_dtype_policy("float64")
  yield
  keras.config.set_floatx(floatx)
  keras.config.set_dtype_policy(policy)


@pytest.mark.parametrize("channels", [1, 3])
def test_diagonal_bilstm_model_sees_the_far_right_of_the_rows_above(channels, float64):
  """Full dependency field: x[0, W-1] and x[H-2, W-1] move the conditionals of pixel
  (H-1, 0). Neither is in a Row LSTM's triangle nor reachable by a 7x7 convolution
  plus a left-to-right recurrence: only the shifted right-to-left pass sees them."""
  keras.utils.set_random_seed(0)
  config = small_config("diagonal_bilstm", channels)
  model = models.build(config)
  flat = perturbed_logits(model, config, random_images(config, 1)[0],
                          [(0, W - 1, 0), (H - 2, W - 1, channels - 1)])
  target = slice((H - 1) * W * channels, ((H - 1) * W + 1) * channels)  # (H-1, 0)
  for t in (1, 2):
    assert np.abs(flat[t, target] - flat[0, target]).max() > LAYER_MOVED


@pytest.mark.parametrize("channels", [1, 3])
def test_row_lstm_model_has_a_triangular_field(channels):
  """Row distance D reaches at most D + 2 columns to the right (7x7 conv: +3 on the
  rows above, each Row LSTM layer: +1 per row), however many layers."""
  model = random_model("row_lstm", channels)
  config = small_config("row_lstm", channels)
  i, j = 4, 0
  flat = perturbed_logits(model, config, random_images(config, 1)[0],
                          [(i - 1, j + 4, 0), (i - 2, j + 5, 0), (i - 1, j + 3, 0),
                           (i - 2, j + 4, 0)])
  target = slice((i * W + j) * channels, (i * W + j + 1) * channels)  # pixel (i, j)
  moved = [np.abs(flat[t, target] - flat[0, target]).max() for t in (1, 2, 3, 4)]
  assert moved[0] <= ATOL and moved[1] <= ATOL  # outside the triangle
  assert moved[2] > MOVED and moved[3] > MOVED  # on its edge


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("size", [2, 3])
def test_probabilities_of_all_binary_images_sum_to_one(family, size):
  """A leak anywhere (layer, gate layout, shift) makes this sum differ from 1."""
  keras.utils.set_random_seed(4)
  config = small_config(family, 1, size=size, output_dims=4)
  model = models.build(config)
  bits = np.array(list(itertools.product([0, 1], repeat=size * size)), np.uint8)
  images = bits.reshape((-1, size, size, 1))  # every binary image
  log_p = distributions.log_prob(model(images), images, 2).numpy().astype(np.float64)
  np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, atol=1e-4)


# --- serialization, errors, presets -------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_layer_config_round_trip(family):
  layer = FAMILIES[family](5, num_groups=3, unit_forget_bias=False,
                           kernel_initializer="he_normal", name="rnn")
  config = layer.get_config()
  assert config["units"] == 5 and config["num_groups"] == 3
  assert type(layer).from_config(config).get_config() == config
  restored = keras.saving.deserialize_keras_object(
      keras.saving.serialize_keras_object(layer))
  assert type(restored) is type(layer) and restored.get_config() == config


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_keras_save_and_load_gives_identical_outputs(family, tmp_path):
  model = random_model(family, 3)
  config = small_config(family, 3)
  images = random_images(config, 2, seed=5)
  path = str(tmp_path / f"{family}.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  np.testing.assert_array_equal(loaded(images).numpy(), model(images).numpy())


def test_forget_bias_starts_at_one():
  layer = RowLSTM(3)
  layer.build((None, 4, 4, 2))
  np.testing.assert_array_equal(np.asarray(layer.bias), [0] * 3 + [1] * 3 + [0] * 6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(units=0), "Invalid `units`. Expected a positive int. Received: units=0"),
    (dict(units=4, num_groups=2),
     r"Invalid `num_groups`. Expected 1 \(grayscale\) or 3 \(RGB\). Received: "
     "num_groups=2"),
    (dict(units=2, num_groups=3), "Invalid `units`. Expected units >= num_groups"),
])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_invalid_arguments(family, kwargs, message):
  with pytest.raises(ValueError, match=message):
    FAMILIES[family](**kwargs)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_unknown_spatial_size_is_rejected(family):
  with pytest.raises(ValueError, match="Expected \\(B, H, W, C\\) with static H, W"):
    FAMILIES[family](4)(keras.Input((None, None, 3)))


def test_presets_are_valid_configs():
  assert {"row_lstm_mnist_7x16", "diagonal_bilstm_mnist_7x16",
          "diagonal_bilstm_mnist_1x32", "row_lstm_cifar10_12x128",
          "diagonal_bilstm_cifar10_12x128"} <= set(models.PRESETS)
  for name, kwargs in models.PRESETS.items():
    config = models.ModelConfig(**kwargs)
    assert name.startswith(config.model)


# --- training -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_overfits_a_few_images_with_xla(family):
  keras.utils.set_random_seed(6)
  config = small_config(family, 1, size=8, num_layers=1, hidden_dims=8,
                        output_dims=16)
  model = models.build(config)
  model.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss=distributions.NegativeLogLikelihood(2), jit_compile=True)
  images = random_images(config, 4, seed=7)
  losses = [float(model.train_on_batch(images, images)) for _ in range(80)]
  assert all(np.isfinite(losses))
  assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
