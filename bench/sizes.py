"""The size each bench times a family at, for every family of the registry.

`family_sizes()` maps each name in `pixelrnn_tf.families.names()` to `(num_layers,
hidden_dims)`: about 80k parameters each (the recurrent families at the paper's
binarized-MNIST 7 layers x h=16; the multi-scale model has two Row LSTM networks and
an upsampling one, so 3 layers each). A family not listed here runs at `DEFAULT`.
"""

from pixelrnn_tf import families

DEFAULT = (3, 16)
_SIZES = {"pixelcnn": (10, 24), "gated_pixelcnn": (3, 16), "row_lstm": (7, 16),
          "diagonal_bilstm": (7, 16), "multiscale": (3, 16)}


def family_sizes():
  """`{family name: (num_layers, hidden_dims)}` for every registered family."""
  return {name: _SIZES.get(name, DEFAULT) for name in families.names()}
