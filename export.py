"""Exports a trained model as a versioned SavedModel (`pixelrnn-export`).

See `pixelrnn_tf/cli/export.py`, or `python export.py --help`.
"""

from pixelrnn_tf.cli import export

if __name__ == "__main__":
  export.run()
