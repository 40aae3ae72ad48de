"""Command-line programs: `train` (pixelrnn-train, train.py) and `export`
(pixelrnn-export, export.py). Each defines its absl flags on import and runs with
`run()`; the scoring program is `pixelrnn_tf.score` (pixelrnn-score).

Process settings belong here, in the programs, not in the library: `use_onednn`.
"""

import os
import sys

from absl import app


def run_program(main, usage):
  """Runs the absl program `main`: oneDNN on (`use_onednn`), `usage` as --help's
  text (absl prints the __main__ module's docstring, and a console script or a
  top-level wrapper has none of its own)."""
  sys.modules["__main__"].__doc__ = usage
  use_onednn()  # before `main` imports TensorFlow
  app.run(main)


def use_onednn():
  """Turns on TensorFlow's oneDNN CPU kernels unless `TF_ENABLE_ONEDNN_OPTS` is set.

  TensorFlow turns them on by itself only on CPUs with features such as AVX-512
  VNNI/BF16 or AMX; elsewhere it runs Eigen's kernels, which train this package's
  models slower (docs/RESULTS.md, "oneDNN CPU kernels"). TensorFlow reads the
  variable once, when it loads, so a program calls this before importing it;
  `TF_ENABLE_ONEDNN_OPTS=0` keeps Eigen's kernels.
  """
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
