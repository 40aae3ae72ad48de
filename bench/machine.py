"""What a benchmark ran on, stored beside its numbers."""

import json
import os
import platform

import keras
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-direct-tensorflow-import

from pixelrnn_tf import history


def machine_info():
  """Returns platform, CPU and its instruction sets, versions, cores, load average,
  devices and whether TensorFlow's oneDNN CPU kernels are on, as a dict."""
  gpus = tf.config.list_physical_devices("GPU")
  return {"platform": platform.platform(), "cpu": history.cpu_model(),
          "cpu_features": history.cpu_features(),
          "python": platform.python_version(),
          "tensorflow": tf.__version__, "keras": keras.__version__,
          "onednn": bool(_pywrap_util_port.IsMklEnabled()),
          "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
          "gpus": [g.name for g in gpus], "device": "GPU" if gpus else "CPU"}


def markdown_table(columns, rows):
  """A Markdown table: a header of `columns`, then one line per row of cells."""
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return "\n".join(lines)


def write_report(path, report, table):
  """Adds `machine_info()` to `report`, writes it as JSON to `path` (None: no file)
  and prints `table` (Markdown) with a line naming the machine, the wall time and
  the file."""
  report["machine"] = machine_info()
  if path:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
      json.dump(report, f, indent=2)
  print(table)
  print(f"\n{report['machine']['device']} ({report['machine']['cpu_count']} cores), "
        f"wall {report['wall_s']:.0f} s; JSON: {path or 'not written'}")
