"""Command-line programs: `train` (pixelrnn-train, train.py) and `export`
(pixelrnn-export, export.py). Each defines its absl flags on import and runs with
`run()`; the scoring program is `pixelrnn_tf.score` (pixelrnn-score).

Process settings belong here, in the programs, not in the library: `use_onednn`.
"""

import os


def use_onednn():
  """Turns on TensorFlow's oneDNN CPU kernels unless `TF_ENABLE_ONEDNN_OPTS` is set.

  TensorFlow turns them on by itself only on CPUs with features such as AVX-512
  VNNI/BF16 or AMX; elsewhere it runs Eigen's kernels, which train this package's
  models slower (docs/RESULTS.md, "oneDNN CPU kernels"). TensorFlow reads the
  variable once, when it loads, so a program calls this before importing it;
  `TF_ENABLE_ONEDNN_OPTS=0` keeps Eigen's kernels.
  """
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
