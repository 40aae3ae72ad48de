"""What a benchmark ran on, stored beside its numbers."""

import json
import os
import platform

import keras
import tensorflow as tf


def machine_info():
  """Returns platform, versions, cores, load average and devices as a dict."""
  gpus = tf.config.list_physical_devices("GPU")
  return {"platform": platform.platform(), "python": platform.python_version(),
          "tensorflow": tf.__version__, "keras": keras.__version__,
          "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
          "gpus": [g.name for g in gpus], "device": "GPU" if gpus else "CPU"}


def write_report(path, report, table):
  """Adds `machine_info()` to `report`, writes it as JSON to `path` and prints
  `table` (Markdown) with a line naming the machine, the wall time and the file."""
  report["machine"] = machine_info()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(report, f, indent=2)
  print(table)
  print(f"\n{report['machine']['device']} ({report['machine']['cpu_count']} cores), "
        f"wall {report['wall_s']:.0f} s; JSON: {path}")
