"""What a benchmark ran on, stored beside its numbers."""

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
