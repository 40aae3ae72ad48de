"""Every bench script runs in its --quick mode (smoke only: no timing asserted)."""

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO


def run(args, tmp_path):
  # Unset, as for a user: each script must import pixelrnn_tf before TensorFlow
  # to turn oneDNN on (its report's machine["onednn"]).
  env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  result = subprocess.run([sys.executable] + args, cwd=REPO, env=env, timeout=600,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def quick_report(script, flags, tmp_path):
  """Runs `python -m bench.<script> --quick` with `flags`; returns (its stdout, its
  JSON report)."""
  out = tmp_path / "result.json"
  stdout = run(["-m", f"bench.{script}", "--quick", f"--out={out}"] + flags, tmp_path)
  return stdout, json.loads(out.read_text())


def pixelcnn_params_by_block_width(**size):
  """{3: params, 5: params} of a PixelCNN of `size` with 3x3 and 3x5 blocks; checks
  that they differ, so a bench that drops the width is caught by its count."""
  from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top
  params = {width: models.build(models.ModelConfig(
      model="pixelcnn", kernel_width=width, **size)).count_params()
            for width in (3, 5)}
  assert params[3] != params[5]
  return params


@pytest.mark.slow
@pytest.mark.parametrize("script", ["step_time", "score_throughput", "race_tfp",
                                    "sampling_speed", "memory", "op_profile",
                                    "masked_conv_speed"])
def test_bench_script_quick_mode_writes_table_and_json(script, tmp_path):
  race = script == "race_tfp"
  extra = [f"--save_dir={tmp_path}/saved", "--lr_schedule=cosine",
           "--learning_rate=0.01", "--warmup_s=0.5"] if race else []
  stdout, report = quick_report(script, extra, tmp_path)
  assert "|" in stdout  # the Markdown table
  assert report["quick"] is True and report["results"]
  assert report["machine"]["onednn"] is True
  if race:
    # The race saved its first contestant, ours, as a train.py model_dir.
    from pixelrnn_tf import training  # pylint: disable=g-import-not-at-top
    _, optimizer, _ = training.build_and_restore(str(tmp_path / "saved"))
    assert int(optimizer.iterations.numpy()) == report["results"][0]["steps"] > 0
    # The last steps of each 3-second race ran far down the cosine, and the
    # optimizer used the rate the schedule set.
    assert optimizer.learning_rate.numpy() == pytest.approx(
        report["results"][0]["last_learning_rate"])
    for result in report["results"]:
      assert 0.0 <= result["last_learning_rate"] < 0.25 * 0.01, result
    assert report["optimizer"] == "Adam 0.01, cosine over time"


@pytest.mark.slow
def test_step_time_times_only_the_models_and_variants_asked_for(tmp_path):
  _, report = quick_report("step_time",
                           ["--models=row_lstm,pixelcnn", "--plain_only"], tmp_path)
  results = report["results"]
  assert [(r["model"], r["jit_compile"], r["policy"]) for r in results] == [
      ("pixelcnn", False, "float32"), ("row_lstm", False, "float32")]


@pytest.mark.slow
def test_step_time_times_the_size_and_block_width_asked_for(tmp_path):
  params = pixelcnn_params_by_block_width(num_layers=2, hidden_dims=8, output_dims=16,
                                          image_shape=(28, 28, 1), num_levels=2)
  _, report = quick_report("step_time",
                           ["--models=pixelcnn", "--num_layers=2", "--hidden_dims=8",
                            "--output_dims=16", "--kernel_width=5", "--no_xla"],
                           tmp_path)
  results = report["results"]
  assert [(r["jit_compile"], r["policy"]) for r in results] == [
      (False, "float32"), (False, "mixed_bfloat16")]
  assert {r["params"] for r in results} == {params[5]}


@pytest.mark.slow
def test_step_time_times_the_image_shape_levels_and_classes_asked_for(tmp_path):
  from pixelrnn_tf import models  # pylint: disable=g-import-not-at-top
  size = dict(model="gated_pixelcnn", num_layers=1, hidden_dims=8, output_dims=16)
  params = models.build(models.ModelConfig(
      image_shape=(8, 8, 3), num_levels=256, num_classes=10, **size)).count_params()
  # Each of the three settings changes the count: RGB, 256 levels, class vectors.
  for other in (dict(image_shape=(8, 8, 1), num_levels=256, num_classes=10),
                dict(image_shape=(8, 8, 3), num_levels=2, num_classes=10),
                dict(image_shape=(8, 8, 3), num_levels=256, num_classes=0)):
    assert models.build(models.ModelConfig(**other, **size)).count_params() != params
  _, report = quick_report("step_time",
                           ["--models=gated_pixelcnn", "--num_layers=1",
                            "--hidden_dims=8", "--output_dims=16", "--plain_only",
                            "--image_shape=8,8,3", "--num_levels=256",
                            "--num_classes=10"], tmp_path)
  assert [r["params"] for r in report["results"]] == [params]
  assert (report["image_shape"], report["num_levels"], report["num_classes"]) == (
      [8, 8, 3], 256, 10)


def test_step_time_refuses_a_malformed_image_shape():
  result = subprocess.run(
      [sys.executable, "-m", "bench.step_time", "--image_shape=32x32"], cwd=REPO,
      timeout=120, capture_output=True, text=True, check=False)
  assert result.returncode == 2
  assert "--image_shape='32x32': expected three positive integers" in result.stderr


@pytest.mark.slow
def test_sampling_bench_times_the_pixelcnn_size_and_block_width_asked_for(tmp_path):
  _, report = quick_report("sampling_speed",
                           ["--families=pixelcnn", "--kernel_width=5",
                            "--pixelcnn_num_layers=2"], tmp_path)
  results = report["results"]
  assert [r["sampler"] for r in results] == [
      f"pixelcnn 2 x h=4 3x5 blocks {sampler}, XLA {xla}"
      for sampler in ("naive", "cached") for xla in ("off", "on")]
  params = pixelcnn_params_by_block_width(image_shape=(8, 8, 1), num_layers=2,
                                          hidden_dims=4, output_dims=8)
  assert {r["params"] for r in results} == {params[5]}


@pytest.mark.slow
def test_race_trains_pixelcnn_with_the_block_width_asked_for(tmp_path):
  _, report = quick_report("race_tfp",
                           ["--contestants=ours", "--kernel_width=5"], tmp_path)
  [result] = report["results"]
  assert result["description"] == "pixelcnn 1 x h=8, 3x5 blocks"
  params = pixelcnn_params_by_block_width(num_layers=1, hidden_dims=8,
                                          output_dims=16)
  assert result["params"] == params[5]


@pytest.mark.slow
def test_race_trains_ours_in_bfloat16_and_rescores_it_in_float32(tmp_path):
  _, report = quick_report("race_tfp", ["--contestants=ours", "--mixed_precision"],
                           tmp_path)
  [result] = report["results"]
  assert report["dtype_policy"] == "mixed_bfloat16"
  assert result["description"] == "pixelcnn 1 x h=8, mixed_bfloat16"
  # The same weights in float32 score within bfloat16's rounding of the same NLL,
  # and not identically (so the first score really was computed in bfloat16).
  assert result["final_val_nll_float32"] == pytest.approx(
      result["final_val_nll"], rel=0.02)
  assert result["final_val_nll_float32"] != result["final_val_nll"]


def test_race_learning_rate_warms_up_then_follows_a_cosine_over_wall_time():
  # race_tfp.py's schedule: train.py's, over 110 s of training with 10 s of warmup.
  from pixelrnn_tf import training  # pylint: disable=g-import-not-at-top
  rate = lambda schedule, t: float(training.warmup_then(schedule, 2.0, 110.0, 10.0)(t))
  assert rate("cosine", 0.0) == 0.0 and rate("cosine", 5.0) == pytest.approx(1.0)
  assert rate("cosine", 10.0) == pytest.approx(2.0)
  assert rate("cosine", 60.0) == pytest.approx(1.0)  # half-way down the cosine
  assert rate("cosine", 110.0) == pytest.approx(0.0, abs=1e-12)
  assert rate("cosine", 200.0) == pytest.approx(0.0, abs=1e-12)  # past the end
  assert rate("constant", 5.0) == pytest.approx(1.0)
  assert rate("constant", 100.0) == 2.0


def test_machine_info_names_the_cpus_instruction_sets(tmp_path):
  from bench import machine  # pylint: disable=g-import-not-at-top
  from pixelrnn_tf import history  # pylint: disable=g-import-not-at-top
  assert machine.machine_info()["cpu_features"] == history.cpu_features()
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("model name\t: Some CPU\nflags\t\t: fpu sse2 avx2 amx_bf16 avx512f\n")
  assert history.cpu_features(cpuinfo=str(cpuinfo)) == ["avx2", "avx512f", "amx_bf16"]
  assert history.cpu_features(cpuinfo=str(tmp_path / "missing")) == []


def test_curves_reads_a_training_run(image_folder, tmp_path):
  from pixelrnn_tf import configs  # pylint: disable=g-import-not-at-top
  from pixelrnn_tf import training  # pylint: disable=g-import-not-at-top
  train_config = configs.TrainConfig(
      dataset=f"folder:{image_folder}", image_size=8, batch_size=8, train_steps=5,
      steps_per_loop=2, eval_examples=8, summary_samples=0, jit_compile=False)
  model_config = training.model_config_for_dataset(
      train_config, num_layers=1, hidden_dims=4, output_dims=8)
  model_dir = tmp_path / "run"
  training.train(str(model_dir), model_config, train_config, verbose=0)
  stdout = run(["-m", "bench.curves", str(model_dir), f"--plot={tmp_path}/c.png"],
               tmp_path)
  rows = [[cell.strip() for cell in line.split("|")[1:-1]]
          for line in stdout.splitlines() if line.startswith("| ")]
  assert rows[0] == ["step", "hours", "validation NLL (nats)", "bits/dim"], stdout
  steps = [row[0] for row in rows[1:]]
  assert steps == ["2", "4", "5"], stdout  # the last, short loop ends at step 5
  # 8x8 grey images of 256 levels: bits/dim = nats / (64 ln 2).
  for row in rows[1:]:
    assert float(row[3]) == pytest.approx(float(row[2]) / (64 * math.log(2)),
                                          abs=1e-3), row
  assert (tmp_path / "c.png").stat().st_size > 0


def test_curves_reads_a_race_json(tmp_path):
  race = {"optimizer": "Adam 0.003", "tfp_optimizer": "Adam 0.001",
          "dtype_policy": "mixed_bfloat16",
          "results": [{"contestant": name, "params": params, "curve": [
              {"train_s": 1800.0, "step": 100, "val_nll": nll}]}
                      for name, params, nll in (("pixelcnn", 88065, 90.5),
                                                ("tfd.PixelCNN", 88782, 86.7))]}
  path = tmp_path / "race.json"
  path.write_text(json.dumps(race))
  stdout = run(["-m", "bench.curves", str(path), f"--plot={tmp_path}/r.png"],
               tmp_path)
  # Binarized MNIST: nats only, no bits/dim column.
  assert "| 100 | 0.50 | 90.50 |\n" in stdout and "| 100 | 0.50 | 86.70 |\n" in stdout
  # Only this package's contestant ran in the race's mixed policy.
  assert "pixelcnn, 88,065 params, Adam 0.003, mixed_bfloat16\n" in stdout
  assert "tfd.PixelCNN, 88,782 params, Adam 0.001\n" in stdout
  assert (tmp_path / "r.png").stat().st_size > 0
