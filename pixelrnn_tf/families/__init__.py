"""The model families, one module each, by name: the one registry generic code asks.

    families.names()            # ['diagonal_bilstm', 'gated_pixelcnn', ...]
    families.get("row_lstm")    # its `base.Family` record

`_MODULES` maps a family's name to its module, which defines `FAMILY`; modules are
imported on first use, so that `names()` costs no TensorFlow import (command-line
flag checks use it). Adding a family is one module and one line here, or a
`register(family)` call at run time.
"""

import importlib

_MODULES = {
    "pixelcnn": "pixelrnn_tf.families.pixelcnn",
    "gated_pixelcnn": "pixelrnn_tf.families.gated_pixelcnn",
    "row_lstm": "pixelrnn_tf.families.row_lstm",
    "diagonal_bilstm": "pixelrnn_tf.families.diagonal_bilstm",
    "multiscale": "pixelrnn_tf.families.multiscale",
}
_REGISTERED = {}  # name -> Family, added by `register`


def names():
  """The registered families' names, sorted."""
  return sorted({*_MODULES, *_REGISTERED})


def get(name):
  """The `base.Family` called `name`.

  Raises:
    ValueError: no family of that name (the message lists them).
  """
  if name in _REGISTERED:
    return _REGISTERED[name]
  if name not in _MODULES:
    raise ValueError(f"Invalid `model`. Expected one of {names()}. "
                     f"Received: model={name!r}")
  return importlib.import_module(_MODULES[name]).FAMILY


def register(family):
  """Adds `family` (a `base.Family`) to the registry under `family.name`."""
  _REGISTERED[family.name] = family


def unregister(name):
  """Removes a family added by `register`."""
  del _REGISTERED[name]
