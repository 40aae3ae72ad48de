"""SavedModel export: every family exports, reloads without this package, and serves.

Each family in `models.names()` is exported once per variant (8x8x1 binary, 6x6x3 with
256 levels) from a model_dir written here with random weights, and cached for the
module. The exported signatures must match the in-process Keras model, keep the
causal order, sample deterministically, and reject every bad input with an
`InvalidArgumentError` that says what was expected. A clean subprocess that cannot
import pixelrnn_tf loads the export, and `saved_model_cli` (TF1-style loading, as
TF Serving does) shows and runs it.
"""

import ast
import json
import math
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from pixelrnn_tf import configs
from pixelrnn_tf import distributions
from pixelrnn_tf import export
from pixelrnn_tf import models
from pixelrnn_tf import sampling
from pixelrnn_tf import score
from pixelrnn_tf import training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = models.names()
CLI_FAMILY = "pixelcnn" if "pixelcnn" in FAMILIES else FAMILIES[0]
# variant -> (image_shape, num_levels, writes eval_validation.json)
VARIANTS = {"binary": ((8, 8, 1), 2, True), "rgb": ((6, 6, 3), 256, False)}
STEP = 42
VALIDATION_NLL = 31.5
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
PY_FUNCTION_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def make_model_dir(model_dir, family, image_shape, num_levels, with_eval, seed=0,
                   num_classes=0):
  """Writes config.json, a checkpoint of random weights at step STEP, eval json.

  The weights are the initial ones plus noise (non-zero biases included), so the
  conditionals are far from uniform and a restore that silently failed would show.

  Returns:
    The in-process `keras.Model` holding exactly the checkpointed weights.
  """
  model_config = models.ModelConfig(model=family, image_shape=image_shape,
                                    num_levels=num_levels, num_layers=1,
                                    hidden_dims=6, output_dims=12,
                                    num_classes=num_classes,
                                    class_names=[f"class {k}" for k in
                                                 range(num_classes)])
  configs.save_config(model_dir, model_config,
                       configs.TrainConfig(dataset="fake_test_data"))
  keras.utils.set_random_seed(seed)
  model, optimizer, manager = training.build_and_restore(model_dir, model_config)
  rng = np.random.default_rng(seed)
  for variable in model.trainable_variables:
    variable.assign(variable.numpy()
                    + rng.normal(0, 0.3, variable.shape).astype(np.float32))
  optimizer.iterations.assign(STEP)
  manager.save(checkpoint_number=STEP)
  if with_eval:
    with open(os.path.join(model_dir, "eval_validation.json"), "w") as f:
      json.dump({"split": "validation", "num_examples": 10,
                 "nll_nats": VALIDATION_NLL, "bits_per_dim": 0.0, "step": STEP}, f)
  return model


class Exported:
  """One exported variant: its model_dir, version path, in-process model, reload."""

  def __init__(self, root, family, variant):
    self.family, self.variant = family, variant
    self.image_shape, self.num_levels, self.with_eval = VARIANTS[variant]
    self.model_dir = os.path.join(root, f"{family}_{variant}", "model")
    self.export_dir = os.path.join(root, f"{family}_{variant}", "export")
    self.model = make_model_dir(self.model_dir, family, self.image_shape,
                                self.num_levels, self.with_eval)
    self.path = export.export(self.model_dir, self.export_dir)
    self.loaded = tf.saved_model.load(self.path)

  def signature(self, name, **inputs):
    fn = self.loaded.signatures[name]
    return {k: v.numpy() for k, v in fn(**{
        k: tf.constant(v) for k, v in inputs.items()}).items()}

  def images(self, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, self.num_levels, (n,) + self.image_shape, np.uint8)

  def model_log_prob(self, images):
    """In-process `(log_prob (B,), pixel_log_prob (B, H, W, C))`."""
    logits = self.model(images, training=False)
    return (distributions.log_prob(logits, images, self.num_levels).numpy(),
            distributions.pixel_log_prob(logits, images, self.num_levels).numpy())


class ExportCache:
  """Exports each (family, variant) at most once per test module, on first use."""

  def __init__(self, root):
    self._root = root
    self._exports = {}

  def get(self, family, variant):
    key = (family, variant)
    if key not in self._exports:
      self._exports[key] = Exported(self._root, family, variant)
    return self._exports[key]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
  return ExportCache(str(tmp_path_factory.mktemp("exports")))


def run(args, **kwargs):
  """Runs a command with TF quiet and without PYTHONPATH; returns CompletedProcess."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  return subprocess.run(args, capture_output=True, text=True, env=env,
                        timeout=300, **kwargs)


def encoded_inputs(e, n, seed):
  """8-bit PNGs and the levels the export must read from them.

  Binary models threshold at 128; values 120..135 are over-represented so that a
  threshold off by a few would change the levels.
  """
  rng = np.random.default_rng(seed)
  pixels = rng.integers(0, 256, (n,) + e.image_shape, np.uint8)
  if e.num_levels == 2:
    near = rng.random(pixels.shape) < 0.3
    pixels[near] = rng.integers(120, 136, int(near.sum()))
    levels = (pixels >= 128).astype(np.uint8)
  else:
    levels = pixels
  pngs = [tf.io.encode_png(image).numpy() for image in pixels]
  return pngs, levels


# Export layout and graph contents. --------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_export_writes_version_1_with_every_signature_and_config_asset(
    exports, family):
  e = exports.get(family, "binary")
  assert e.path == os.path.join(e.export_dir, "1")
  assert sorted(os.listdir(e.export_dir)) == ["1"]  # no temporary dir left
  assert set(e.loaded.signatures) == set(export.SIGNATURES)
  with open(os.path.join(e.path, "assets", "config.json")) as f:
    asset = json.load(f)
  assert asset["model"]["model"] == family
  with open(os.path.join(e.model_dir, "config.json")) as f:
    assert json.load(f) == asset


@pytest.mark.parametrize("family", FAMILIES)
def test_graph_has_no_python_function_and_holds_every_weight(exports, family):
  e = exports.get(family, "rgb")
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(e.path, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  graph = proto.meta_graphs[0].graph_def
  ops = {node.op for node in graph.node}
  for function in graph.library.function:
    ops |= {node.op for node in function.node_def}
  assert not ops & PY_FUNCTION_OPS
  assert "DecodeImage" in ops or "DecodePng" in ops
  assert xla_compiled_functions(e.path) == []  # any TF Serving build runs it
  reader = tf.train.load_checkpoint(os.path.join(e.path, "variables", "variables"))
  saved = [name for name in reader.get_variable_to_shape_map()
           if name.startswith("model_variables/")]
  assert len(saved) == len(e.model.weights)


def function_library(path):
  """The `FunctionDef`s of the SavedModel at `path` (its graph functions)."""
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  return proto.meta_graphs[0].graph_def.library.function


def sampler_calls(path):
  """`(draws, callers)`: the names of the SavedModel's graph functions traced from
  the export's sampler (`draw`), and those of the graph functions that call one,
  numeric suffixes dropped."""
  library = function_library(path)
  draws = [f.signature.name for f in library
           if re.fullmatch(r"__inference_draw_\d+", f.signature.name)]
  callers = {re.sub(r"_\d+$", "", f.signature.name) for f in library
             for node in f.node_def if node.attr["f"].func.name in draws}
  return draws, sorted(callers)


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_and_complete_call_one_traced_sampler(exports, family):
  """The sampler is stored once, not once per signature (a SavedModel's size)."""
  draws, callers = sampler_calls(exports.get(family, "rgb").path)
  assert len(draws) == 1, draws
  assert callers == ["__inference__complete", "__inference__sample"]


# Signatures against the in-process model. -------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_log_prob_matches_in_process_model(exports, family, variant):
  e = exports.get(family, variant)
  images = e.images(5, seed=1)
  out = e.signature("serving_default", images=images)
  log_prob, pixel = e.model_log_prob(images)
  np.testing.assert_allclose(out["log_prob"], log_prob, rtol=1e-4)
  np.testing.assert_allclose(out["pixel_log_prob"], pixel, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out["log_prob"],
                             out["pixel_log_prob"].sum(axis=(1, 2, 3)), rtol=1e-5)
  dims = math.prod(e.image_shape)
  np.testing.assert_allclose(out["bits_per_dim"],
                             -out["log_prob"] / (dims * math.log(2)), rtol=1e-6)
  assert out["pixel_log_prob"].shape == (5,) + e.image_shape
  assert out["log_prob"].dtype == np.float32


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_log_prob_encoded_decodes_and_quantizes_like_the_docs_say(
    exports, family, variant):
  e = exports.get(family, variant)
  pngs, levels = encoded_inputs(e, 4, seed=2)
  out = e.signature("log_prob_encoded", image_bytes=np.array(pngs, object))
  np.testing.assert_allclose(out["log_prob"], e.model_log_prob(levels)[0],
                             rtol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_pixel_log_prob_of_export_is_causal(exports, family, variant):
  """Perturbing sub-pixel (i, j, c) changes no conditional before it in the family's
  generation order (`models.generation_order`)."""
  e = exports.get(family, variant)
  height, width, channels = e.image_shape
  image = e.images(1, seed=3)[0]
  positions = [(0, 0, 0), (height // 2, width // 2, channels - 1),
               (height // 2, width - 1, 0), (height - 1, width - 1, channels - 1)]
  batch = [image]
  for i, j, c in positions:
    perturbed = image.copy()
    perturbed[i, j, c] = (int(image[i, j, c]) + e.num_levels // 2) % e.num_levels
    batch.append(perturbed)
  pixel = e.signature("serving_default", images=np.stack(batch))["pixel_log_prob"]
  order = models.generation_order(family, e.image_shape)
  flat = pixel.reshape(len(batch), -1)[:, order]  # generation order
  for k, (i, j, c) in enumerate(positions, start=1):
    p = list(order).index((i * width + j) * channels + c)
    np.testing.assert_allclose(flat[k, :p], flat[0, :p], rtol=0, atol=1e-5,
                               err_msg=f"perturbing {(i, j, c)} leaks backwards")
    assert flat[k, p] != flat[0, p]  # its own conditional is read at a new value


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_sample_is_deterministic_by_seed(exports, family, variant):
  e = exports.get(family, variant)
  draw = lambda seed: e.signature("sample", num_samples=np.int32(3),
                                  seed=np.int32(seed))["images"]
  first, again, other = draw(7), draw(7), draw(8)
  np.testing.assert_array_equal(first, again)
  assert (first != other).any()
  assert first.shape == (3,) + e.image_shape and first.dtype == np.uint8
  assert first.max() < e.num_levels
  # complete() from row 0 is sampling: same seed, same images.
  completed = e.signature("complete", images=e.images(3), known_rows=np.int32(0),
                          seed=np.int32(7))["images"]
  np.testing.assert_array_equal(completed, first)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_complete_keeps_known_rows_bit_identical(exports, family, variant):
  e = exports.get(family, variant)
  images = e.images(3, seed=4)
  known = 3
  out = e.signature("complete", images=images, known_rows=np.int32(known),
                    seed=np.int32(1))["images"]
  np.testing.assert_array_equal(out[:, :known], images[:, :known])
  assert (out[:, known:] != images[:, known:]).any()
  whole = e.signature("complete", images=images,
                      known_rows=np.int32(e.image_shape[0]), seed=np.int32(1))
  np.testing.assert_array_equal(whole["images"], images)


@pytest.mark.parametrize("variant", VARIANTS)
def test_metadata(exports, variant):
  e = exports.get(CLI_FAMILY, variant)
  m = e.signature("metadata")
  assert m["model"] == CLI_FAMILY.encode()
  np.testing.assert_array_equal(m["image_shape"], e.image_shape)
  assert m["image_shape"].dtype == np.int32
  assert m["num_levels"] == e.num_levels and m["dataset"] == b"fake_test_data"
  assert m["num_classes"] == 0 and m["class_names"].shape == (0,)
  assert set(m) == set(export.METADATA)
  assert m["step"] == STEP
  assert json.loads(m["config_json"])["model"]["image_shape"] == list(e.image_shape)
  if e.with_eval:
    assert m["validation_nll"] == pytest.approx(VALIDATION_NLL)
    assert m["validation_bits_per_dim"] == pytest.approx(
        VALIDATION_NLL / (math.prod(e.image_shape) * math.log(2)))
    assert m["validation_step"] == STEP
  else:
    assert np.isnan(m["validation_nll"]) and m["validation_step"] == -1


@pytest.mark.parametrize("family", models.conditional_names())
def test_class_conditional_export_takes_labels_everywhere(family, tmp_path):
  shape = (6, 6, 3)
  model = make_model_dir(str(tmp_path / "model"), family, shape, 256, False,
                         num_classes=3)
  loaded = tf.saved_model.load(export.export(str(tmp_path / "model"),
                                             str(tmp_path / "export")))
  call = lambda name, **inputs: {k: v.numpy() for k, v in loaded.signatures[name](
      **{k: tf.constant(v) for k, v in inputs.items()}).items()}
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (3,) + shape, np.uint8)
  labels = np.array([2, 0, 1], np.int32)
  logits = model(models.network_inputs(model, images, labels), training=False)
  expected = distributions.log_prob(logits, images, 256).numpy()
  out = call("serving_default", images=images, labels=labels)
  np.testing.assert_allclose(out["log_prob"], expected, rtol=1e-5)
  other = call("serving_default", images=images, labels=labels[::-1].copy())
  assert np.abs(other["log_prob"] - expected).max() > 1e-3
  pngs = [tf.io.encode_png(image).numpy() for image in images]
  encoded = call("log_prob_encoded", image_bytes=np.array(pngs, object),
                 labels=labels)
  np.testing.assert_allclose(encoded["log_prob"], expected, rtol=1e-5)
  first = call("sample", labels=labels, seed=np.int32(4))["images"]
  again = call("sample", labels=labels, seed=np.int32(4))["images"]
  assert first.shape == (3,) + shape
  np.testing.assert_array_equal(first, again)
  completed = call("complete", images=images, labels=labels,
                   known_rows=np.int32(2), seed=np.int32(1))["images"]
  np.testing.assert_array_equal(completed[:, :2], images[:, :2])
  metadata = call("metadata")
  assert metadata["num_classes"] == 3
  assert list(metadata["class_names"]) == [b"class 0", b"class 1", b"class 2"]
  for bad, message in (([0, 3, 1], "Expected classes 0..2"),
                       ([0, 1], "one class per image")):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
      call("serving_default", images=images, labels=np.array(bad, np.int32))
  with pytest.raises(tf.errors.InvalidArgumentError, match="Invalid `images`"):
    call("serving_default", images=images[..., :1].copy(), labels=labels)
  with pytest.raises(ValueError, match="class-conditional model"):
    score.Scorer(os.path.join(str(tmp_path / "export"), "1"))


def xla_compiled_functions(path):
  """Names of the SavedModel's graph functions that must compile with XLA."""
  return [function.signature.name for function in function_library(path)
          if function.attr["_XlaMustCompile"].b]


# The wiring, unconditional and conditional; tests/test_sampling.py compiles every
# family's sampler with XLA.
@pytest.mark.parametrize("family,num_classes",
                         [(CLI_FAMILY, 0), (models.conditional_names()[0], 3)])
def test_xla_samplers_draw_what_the_in_process_xla_sampler_draws(
    family, num_classes, tmp_path):
  shape, levels = (6, 4, 3), 256
  model = make_model_dir(str(tmp_path / "model"), family, shape, levels, False,
                         num_classes=num_classes)
  path = export.export(str(tmp_path / "model"), str(tmp_path / "export"),
                       xla_samplers=True)
  assert xla_compiled_functions(path)
  draws, callers = sampler_calls(path)
  assert len(draws) == 1 and draws[0] in xla_compiled_functions(path)
  sample = "__inference__sample_classes" if num_classes else "__inference__sample"
  assert callers == ["__inference__complete", sample]
  loaded = tf.saved_model.load(path)
  images = np.random.default_rng(3).integers(0, levels, (2,) + shape, np.uint8)
  labels = np.array([2, 0], np.int32) if num_classes else None
  by_label = {"labels": tf.constant(labels)} if num_classes else {}
  in_process = lambda fn: tf.function(fn, jit_compile=True)().numpy()
  if num_classes:
    sampled = loaded.signatures["sample"](seed=tf.constant(7), **by_label)
  else:
    sampled = loaded.signatures["sample"](num_samples=tf.constant(2),
                                          seed=tf.constant(7))
  np.testing.assert_array_equal(sampled["images"], in_process(
      lambda: sampling.sample(model, 2, shape, levels, tf.constant([7, 0]), labels)))
  completed = loaded.signatures["complete"](
      images=tf.constant(images), known_rows=tf.constant(3), seed=tf.constant(1),
      **by_label)["images"].numpy()
  np.testing.assert_array_equal(completed, in_process(
      lambda: sampling.complete(model, images, 3 * 4 * 3, levels,
                                tf.constant([1, 0]), labels)))
  np.testing.assert_array_equal(completed[:, :3], images[:, :3])


# Bad input: InvalidArgumentError with what was expected. ----------------------------


def bad_inputs(height, width, channels):
  """(signature, inputs, message regex) for binary `(height, width, channels)`."""
  shape = rf"Expected uint8 of shape \[batch, {height}, {width}, {channels}\]"
  good = np.zeros((1, height, width, channels), np.uint8)
  seed = np.int32(0)
  png = lambda h, w: tf.io.encode_png(np.zeros((h, w, channels), np.uint8)).numpy()
  return {
      "wrong_width": ("serving_default",
                      dict(images=np.zeros((2, height, width + 1, channels),
                                           np.uint8)), shape),
      "wrong_channels": ("serving_default",
                         dict(images=np.zeros((2, height, width, 3), np.uint8)),
                         shape),
      "no_batch_axis": ("serving_default", dict(images=good[0]), shape),
      "empty_batch": ("serving_default", dict(images=good[:0]),
                      "Expected a non-empty batch"),
      "value_2_in_binary": ("serving_default", dict(images=good + 2),
                            r"Expected integer levels 0\.\.1 .*Received max "
                            r"value:\] \[2\]"),
      "8bit_in_binary": ("serving_default", dict(images=good + 255),
                         r"Expected integer levels 0\.\.1"),
      "undecodable_bytes": ("log_prob_encoded",
                            dict(image_bytes=np.array([png(height, width),
                                                       b"not an image"], object)),
                            r"cannot decode\. Expected PNG or JPEG.*indices:\] "
                            r"\[1\]"),
      "wrong_size_bytes": ("log_prob_encoded",
                           dict(image_bytes=np.array([png(height + 2, width)],
                                                     object)),
                           rf"wrong image size\. Expected {height}x{width}.*never "
                           r"resized"),
      "empty_bytes": ("log_prob_encoded",
                      dict(image_bytes=np.array([], object)),
                      "Expected a non-empty batch"),
      "zero_samples": ("sample", dict(num_samples=np.int32(0), seed=seed),
                       r"Expected 1 <= num_samples <= 1024"),
      "too_many_samples": ("sample", dict(num_samples=np.int32(1025), seed=seed),
                           r"Expected 1 <= num_samples <= 1024"),
      "negative_known_rows": ("complete",
                              dict(images=good, known_rows=np.int32(-1), seed=seed),
                              rf"Expected 0 <= known_rows <= {height}"),
      "known_rows_past_height": ("complete",
                                 dict(images=good, known_rows=np.int32(height + 1),
                                      seed=seed),
                                 rf"Expected 0 <= known_rows <= {height}"),
      "complete_wrong_shape": ("complete",
                               dict(images=good[:, :-1], known_rows=np.int32(1),
                                    seed=seed), shape),
  }


BAD_INPUTS = sorted(bad_inputs(8, 8, 1))


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_bad_input_raises_invalid_argument_saying_what_was_expected(
    exports, family, case):
  e = exports.get(family, "binary")
  signature, inputs, message = bad_inputs(*e.image_shape)[case]
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    e.signature(signature, **inputs)


# Clean process and saved_model_cli: the export stands alone. ------------------------

CLEAN_SCRIPT = textwrap.dedent("""\
    import contextlib, importlib.util, io, json, runpy, sys
    import numpy as np
    import tensorflow as tf
    assert importlib.util.find_spec("pixelrnn_tf") is None, "pixelrnn_tf importable"
    job = json.load(open(sys.argv[1]))
    for case in job["cases"]:
      loaded = tf.saved_model.load(case["path"])
      sig = loaded.signatures
      images = tf.constant(np.load(case["images"]))
      pngs = [open(p, "rb").read() for p in case["pngs"]]
      out = {}
      for k, v in sig["serving_default"](images=images).items():
        out["serving_default/" + k] = v.numpy()
      for k, v in sig["log_prob_encoded"](image_bytes=tf.constant(pngs)).items():
        out["log_prob_encoded/" + k] = v.numpy()
      for run in ("a", "b"):
        out["sample/" + run] = sig["sample"](num_samples=tf.constant(2),
                                             seed=tf.constant(5))["images"].numpy()
      out["complete"] = sig["complete"](images=images, known_rows=tf.constant(2),
                                        seed=tf.constant(5))["images"].numpy()
      meta = {k: v.numpy() for k, v in sig["metadata"]().items()}
      out["metadata/step"] = meta["step"]
      out["metadata/model"] = np.array(meta["model"].decode())
      np.savez(case["output"], **out)
    # The scoring program, run as a script (as Bazel's py_binary runs it).
    sys.argv = ["score.py"] + job["score_args"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
      try:
        runpy.run_path(job["score_script"], run_name="__main__")
        code = 0
      except SystemExit as e:
        code = e.code
    json.dump({"exit": code, "stdout": stdout.getvalue()}, open(job["score_out"], "w"))
    assert not [m for m in sys.modules if m.startswith("pixelrnn_tf")]
    print("CLEAN_OK")
    """)


@pytest.fixture(scope="module")
def clean_run(exports, tmp_path_factory):
  """Runs every family's export, and the scoring script, in one clean process.

  The process runs with `python -I` outside the repo: pixelrnn_tf is not
  importable there, and the script checks it never got imported.

  Returns:
    `(tmp dir, {family: {variant: (Exported, images, levels)}}, score_folder,
    expected score levels by path)`.
  """
  tmp = tmp_path_factory.mktemp("clean")
  cases, expected = [], {}
  for family in FAMILIES:
    expected[family] = {}
    for variant in VARIANTS:
      e = exports.get(family, variant)
      name = f"{family}_{variant}"
      images = e.images(3, seed=5)
      np.save(tmp / f"{name}.npy", images)
      pngs, levels = encoded_inputs(e, 2, seed=6)
      png_paths = [str(tmp / f"{name}_{k}.png") for k in range(len(pngs))]
      for path, data in zip(png_paths, pngs):
        with open(path, "wb") as f:
          f.write(data)
      cases.append({"path": e.path, "images": str(tmp / f"{name}.npy"),
                    "pngs": png_paths, "output": str(tmp / f"{name}_out.npz")})
      expected[family][variant] = (e, images, levels)
  e = exports.get(CLI_FAMILY, "binary")
  folder = tmp / "score"
  score_levels = write_score_folder(e, str(folder))
  job = {"cases": cases, "score_script": os.path.join(REPO, "pixelrnn_tf", "score.py"),
         "score_args": [f"--saved_model={e.path}", "--batch_size=2",
                        sorted(score_levels)[0], str(folder / "sub")],
         "score_out": str(tmp / "score.json")}
  (tmp / "job.json").write_text(json.dumps(job))
  (tmp / "clean.py").write_text(CLEAN_SCRIPT)
  result = run([sys.executable, "-I", str(tmp / "clean.py"), str(tmp / "job.json")],
               cwd=str(tmp))
  assert result.returncode == 0 and "CLEAN_OK" in result.stdout, result.stderr[-3000:]
  return tmp, expected, score_levels


@pytest.mark.parametrize("family", FAMILIES)
def test_clean_process_loads_and_runs_every_signature(clean_run, family):
  tmp, expected, _ = clean_run
  for variant, (e, images, levels) in expected[family].items():
    out = np.load(tmp / f"{family}_{variant}_out.npz")
    np.testing.assert_allclose(out["serving_default/log_prob"],
                               e.model_log_prob(images)[0], rtol=1e-4)
    np.testing.assert_allclose(out["log_prob_encoded/log_prob"],
                               e.model_log_prob(levels)[0], rtol=1e-4)
    np.testing.assert_array_equal(out["sample/a"], out["sample/b"])
    assert out["sample/a"].shape == (2,) + e.image_shape
    np.testing.assert_array_equal(out["complete"][:, :2], images[:, :2])
    assert int(out["metadata/step"]) == STEP and str(out["metadata/model"]) == family


def test_saved_model_cli_shows_every_signature(exports):
  e = exports.get(CLI_FAMILY, "binary")
  result = run([SAVED_MODEL_CLI, "show", "--all", "--dir", e.path])
  assert result.returncode == 0, result.stderr[-3000:]
  for name in export.SIGNATURES:
    assert f"signature_def['{name}']" in result.stdout
  for tensor in ("images", "image_bytes", "num_samples", "known_rows", "seed",
                 "log_prob", "bits_per_dim", "pixel_log_prob", "validation_nll"):
    assert f"['{tensor}']" in result.stdout


def test_saved_model_cli_runs_serving_default(exports, tmp_path):
  """`saved_model_cli run` loads TF1-style, like TF Serving: weights must restore."""
  e = exports.get(CLI_FAMILY, "binary")
  images = e.images(4, seed=8)
  np.save(tmp_path / "images.npy", images)
  result = run([SAVED_MODEL_CLI, "run", "--dir", e.path, "--tag_set", "serve",
                "--signature_def", "serving_default",
                "--inputs", f"images={tmp_path / 'images.npy'}",
                "--outdir", str(tmp_path / "out")])
  assert result.returncode == 0, result.stderr[-3000:]
  np.testing.assert_allclose(np.load(tmp_path / "out" / "log_prob.npy"),
                             e.model_log_prob(images)[0], rtol=1e-4)


# Versions and the export.py binary. -------------------------------------------------


def test_next_free_version_and_no_overwrite(tmp_path):
  version = export._version  # pylint: disable=protected-access
  for name in ("1", "3", "notes", ".tmp-9-abcd"):
    (tmp_path / name).mkdir()
  assert version(str(tmp_path), None) == 4
  assert version(str(tmp_path), 2) == 2
  with pytest.raises(export.ExportError, match="Version 3 already exists"):
    version(str(tmp_path), 3)
  with pytest.raises(export.ExportError, match="Expected a positive integer"):
    version(str(tmp_path), 0)
  assert version(str(tmp_path / "new"), None) == 1


def test_export_without_checkpoint_is_an_error(tmp_path):
  configs.save_config(str(tmp_path), models.ModelConfig(
      image_shape=(4, 4, 1), num_layers=1, hidden_dims=2, output_dims=2),
                       configs.TrainConfig())
  with pytest.raises(training.TrainingError, match="No checkpoint.*Train first"):
    export.export(str(tmp_path), str(tmp_path / "export"))
  assert not os.path.exists(tmp_path / "export" / "1")


def test_export_binary_writes_the_next_free_version(exports, tmp_path):
  e = exports.get(CLI_FAMILY, "binary")
  export_dir = tmp_path / "export"
  (export_dir / "3").mkdir(parents=True)
  result = run([sys.executable, os.path.join(REPO, "export.py"),
                f"--model_dir={e.model_dir}", f"--export_dir={export_dir}"],
               cwd=REPO)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().splitlines()[-1] == str(export_dir / "4")
  assert sorted(os.listdir(export_dir)) == ["3", "4"]


# Scoring. ---------------------------------------------------------------------------


def test_score_imports_nothing_from_the_package_at_module_level():
  """The script runs alone with TF; only --pretrained looks a name up."""
  with open(os.path.join(REPO, "pixelrnn_tf", "score.py")) as f:
    tree = ast.parse(f.read())
  top_level = set()
  for node in tree.body:
    if isinstance(node, ast.Import):
      top_level |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
      top_level.add(node.module or "")
  assert not [name for name in top_level if name.startswith("pixelrnn_tf")]
  everywhere = {alias.name for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
  assert "keras" not in everywhere and "models" not in everywhere


def write_score_folder(e, root):
  """Five good PNGs in root and root/sub, one wrong size, one not an image."""
  pngs, levels = encoded_inputs(e, 5, seed=9)
  paths = [os.path.join(root, f"{k}.png") for k in range(3)]
  paths += [os.path.join(root, "sub", f"{k}.png") for k in range(3, 5)]
  os.makedirs(os.path.join(root, "sub"))
  for path, data in zip(paths, pngs):
    with open(path, "wb") as f:
      f.write(data)
  h, w, c = e.image_shape
  with open(os.path.join(root, "sub", "big.png"), "wb") as f:
    f.write(tf.io.encode_png(np.zeros((h + 1, w, c), np.uint8)).numpy())
  with open(os.path.join(root, "sub", "junk.png"), "wb") as f:
    f.write(b"not an image")
  with open(os.path.join(root, "notes.txt"), "w") as f:  # skipped in folders
    f.write("x")
  return dict(zip(paths, levels))


def test_score_files_matches_model_and_reports_bad_files(exports, tmp_path):
  e = exports.get(CLI_FAMILY, "binary")
  expected = write_score_folder(e, str(tmp_path))
  records = list(score.score_files(e.path, [str(tmp_path)], batch_size=3))
  scored = {r["path"]: r for r in records if "error" not in r}
  errors = {os.path.basename(r["path"]): r["error"] for r in records
            if "error" in r}
  assert set(scored) == set(expected)
  assert set(errors) == {"big.png", "junk.png"}
  assert "wrong image size" in errors["big.png"]
  assert "cannot decode" in errors["junk.png"]
  paths = sorted(expected)
  log_prob = e.model_log_prob(np.stack([expected[p] for p in paths]))[0]
  np.testing.assert_allclose([scored[p]["nats"] for p in paths], -log_prob,
                             rtol=1e-4)
  mean = score.summary(records)
  assert mean["num_images"] == 5 and mean["num_errors"] == 2
  assert mean["nats"] == pytest.approx(-log_prob.mean(), rel=1e-4)


def test_score_script_prints_json_lines_without_the_package(clean_run):
  """Run in the clean process: one file and a folder holding two bad files."""
  tmp, exported, expected = clean_run
  e = exported[CLI_FAMILY]["binary"][0]
  with open(tmp / "score.json") as f:
    result = json.load(f)
  assert result["exit"] == 1  # sub/ holds two bad files
  lines = [json.loads(line) for line in result["stdout"].splitlines()]
  assert [os.path.basename(r.get("path") or "") for r in lines] == [
      "0.png", "3.png", "4.png", "big.png", "junk.png", ""]
  paths = sorted(expected)
  paths = [paths[0]] + [p for p in paths if os.sep + "sub" + os.sep in p]
  log_prob = e.model_log_prob(np.stack([expected[p] for p in paths]))[0]
  np.testing.assert_allclose([r["nats"] for r in lines[:3]], -log_prob, rtol=1e-4)
  assert [r["path"] for r in lines[:3]] == paths
  assert "wrong image size" in lines[3]["error"]
  assert "cannot decode" in lines[4]["error"]
  assert lines[-1]["mean"] and lines[-1]["num_images"] == 3
  assert lines[-1]["num_errors"] == 2
  assert lines[-1]["nats"] == pytest.approx(-log_prob.mean(), rel=1e-4)


# Validation and decoding on their own. ----------------------------------------------


def run_graph(fn, *args):
  """`fn(*args)` traced as a tf.function, as in a signature (assertions run)."""
  return tf.function(fn)(*args)


def test_checked_images_passes_good_batches_and_names_what_is_wrong():
  images = np.ones((2, 3, 4, 1), np.uint8)
  ok = run_graph(lambda x: export.checked_images(x, (3, 4, 1), 2), images)
  np.testing.assert_array_equal(ok, images)
  for bad, message in ((np.ones((2, 4, 3, 1), np.uint8), "Expected uint8 of shape"),
                       (np.ones((0, 3, 4, 1), np.uint8), "non-empty batch"),
                       (np.full((1, 3, 4, 1), 2, np.uint8), "levels 0..1")):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
      run_graph(lambda x: export.checked_images(x, (3, 4, 1), 2), bad)


def test_checked_labels_and_scalars_bound_their_values():
  labels = run_graph(lambda l, x: export.checked_labels(l, x, 3),
                     np.array([0, 2], np.int32), np.zeros((2, 5), np.uint8))
  np.testing.assert_array_equal(labels, [0, 2])
  with pytest.raises(tf.errors.InvalidArgumentError, match="classes 0..2"):
    run_graph(lambda l, x: export.checked_labels(l, x, 3),
              np.array([0, 3], np.int32), np.zeros((2, 5), np.uint8))
  with pytest.raises(tf.errors.InvalidArgumentError, match="one class per image"):
    run_graph(lambda l, x: export.checked_labels(l, x, 3),
              np.array([0], np.int32), np.zeros((2, 5), np.uint8))
  assert export.checked_labels(None, np.zeros(2), 3) is None
  assert int(run_graph(lambda v: export.checked_scalar(v, "k", 0, 4), 4)) == 4
  with pytest.raises(tf.errors.InvalidArgumentError, match="Expected 0 <= k <= 4"):
    run_graph(lambda v: export.checked_scalar(v, "k", 0, 4), 5)


def test_decoded_images_quantize_8_bit_files_to_the_models_levels():
  pixels = np.array([[[0], [127], [128], [255]]], np.uint8)  # 1 x 4, grayscale
  png = tf.stack([tf.io.encode_png(pixels)])  # (1,) string
  binary = run_graph(lambda b: export.decoded_images(b, (1, 4, 1), 2), png)
  np.testing.assert_array_equal(binary[0, 0, :, 0], [0, 0, 1, 1])
  four = run_graph(lambda b: export.decoded_images(b, (1, 4, 1), 4), png)
  np.testing.assert_array_equal(four[0, 0, :, 0], [0, 1, 2, 3])
  with pytest.raises(tf.errors.InvalidArgumentError, match="cannot decode"):
    run_graph(lambda b: export.decoded_images(b, (1, 4, 1), 2),
              tf.constant([b"not an image"]))
  with pytest.raises(tf.errors.InvalidArgumentError, match="wrong image size"):
    run_graph(lambda b: export.decoded_images(b, (2, 4, 1), 2), png)


def test_every_signature_and_metadata_output_is_declared_in_one_table():
  plain, conditional = export.signature_inputs(False), export.signature_inputs(True)
  assert tuple(plain) == tuple(conditional) == export.SIGNATURES
  assert [s.name for s in plain["sample"]] == ["num_samples", "seed"]
  assert [s.name for s in conditional["sample"]] == ["labels", "seed"]
  assert all(specs[-1].name == "labels" for name, specs in conditional.items()
             if name not in ("sample", "metadata"))
