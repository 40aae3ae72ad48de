"""`pip install .`: pyproject.toml's packages, pins and console scripts, and the
trained models of pretrained/ installed as package data (pixelrnn_tf/_pretrained/)."""

import ast
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPTS = {  # console script -> the module whose docstring is its --help usage
    "pixelrnn-train": "pixelrnn_tf/cli/train.py",
    "pixelrnn-export": "pixelrnn_tf/cli/export.py",
    "pixelrnn-score": "pixelrnn_tf/score.py",
}
# A stand-in trained model, as pretrained/<name>/ holds one (binary files included).
DUMMY_MODEL = {
    "dummy_model/card.json": b'{"name": "dummy_model"}\n',
    "dummy_model/weights.h5": bytes(range(256)),
    "dummy_model/1/saved_model.pb": b"\x08\x01\x12\x00\xff\xfe",
    "dummy_model/1/variables/variables.index": b"\x00\x01\x02",
    "dummy_model/1/variables/variables.data-00000-of-00001": b"\x00" * 64 + b"\xff",
}


def pyproject():
  """pyproject.toml as a dict."""
  tomllib = pytest.importorskip("tomllib")  # Python 3.11+
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)


def requirements(name):
  """The requirement lines of a requirements file, `-r` includes left out."""
  with open(os.path.join(REPO, name)) as f:
    lines = [line.split("#")[0].strip() for line in f]
  return [line for line in lines if line and not line.startswith("-r ")]


def source_packages(root):
  """Dotted names of the folders of `root`/pixelrnn_tf that have an __init__.py."""
  return sorted(
      os.path.relpath(path, root).replace(os.sep, ".")
      for path, _, files in os.walk(os.path.join(root, "pixelrnn_tf"))
      if "__init__.py" in files)


def test_pyproject_lists_every_subpackage_and_the_pretrained_folder():
  config = pyproject()["tool"]["setuptools"]
  assert sorted(config["packages"]) == sorted(
      source_packages(REPO) + ["pixelrnn_tf._pretrained"])
  assert config["package-dir"] == {"pixelrnn_tf._pretrained": "pretrained"}


def test_requirements_files_pin_what_pyproject_pins():
  project = pyproject()["project"]
  assert requirements("requirements.txt") == project["dependencies"]
  extras = project["optional-dependencies"]
  assert requirements("requirements-test.txt") == extras["bench"] + extras["test"]


def copy_checkout(destination):
  """Copies the checkout's files (tracked, and untracked ones git does not ignore) to
  `destination`, leaving out the models of pretrained/; skips outside a git checkout
  (e.g. in Bazel's runfiles tree)."""
  top = subprocess.run(["git", "-C", REPO, "rev-parse", "--show-toplevel"],
                       capture_output=True, text=True, check=False)
  if top.returncode or os.path.realpath(top.stdout.strip()) != os.path.realpath(REPO):
    pytest.skip("not a git checkout")
  listed = subprocess.run(
      ["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
       "--exclude-standard"], capture_output=True, text=True, check=True).stdout
  for name in listed.split("\0"):
    if (not name or not os.path.isfile(os.path.join(REPO, name))
        or re.match(r"pretrained/.+/", name)):
      continue
    os.makedirs(os.path.join(destination, os.path.dirname(name)), exist_ok=True)
    shutil.copyfile(os.path.join(REPO, name), os.path.join(destination, name))


@pytest.mark.slow
def test_pip_install_gives_console_scripts_modules_and_pretrained_models(tmp_path):
  source, venv = tmp_path / "source", tmp_path / "venv"
  copy_checkout(source)
  for name, content in DUMMY_MODEL.items():
    (source / "pretrained" / name).parent.mkdir(parents=True, exist_ok=True)
    (source / "pretrained" / name).write_bytes(content)
  subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
  # Only the fresh venv's packages: no PYTHONPATH into the checkout or the dev venv.
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  python = str(venv / "bin" / "python")
  install = subprocess.run([python, "-m", "pip", "install", "-q", str(source)],
                           env=env, capture_output=True, text=True, timeout=1200,
                           check=False)
  assert install.returncode == 0, install.stderr[-3000:]

  for script, module in SCRIPTS.items():
    result = subprocess.run([str(venv / "bin" / script), "--help"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    # absl prints the usage (the module's docstring) on stdout and exits 1 for --help.
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    usage = ast.get_docstring(ast.parse((source / module).read_text()))
    assert result.stdout.startswith(usage.splitlines()[0]), result.stdout
    assert "Try --helpfull" in result.stdout, result.stdout

  # From outside the checkout, the modules and data come from the installed package.
  where = subprocess.run(
      [python, "-c", "import os, pixelrnn_tf.cli.train, pixelrnn_tf.score; "
       "print(os.path.dirname(pixelrnn_tf.__file__))"],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
      check=True).stdout.strip()
  assert where.startswith(str(venv)), where
  installed = {os.path.relpath(os.path.join(path, name), where)
               for path, _, files in os.walk(where) for name in files
               if "__pycache__" not in path}
  assert {name for name in installed if name.endswith(".py")} == {
      os.path.relpath(os.path.join(path, name), source / "pixelrnn_tf")
      for path, _, files in os.walk(source / "pixelrnn_tf") for name in files
      if name.endswith(".py")}
  for name, content in DUMMY_MODEL.items():
    with open(os.path.join(where, "_pretrained", name), "rb") as f:
      assert f.read() == content
