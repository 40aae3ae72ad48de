"""Trains, evaluates and samples PixelCNN / PixelRNN models (`pixelrnn-train`).

See `pixelrnn_tf/cli/train.py`, or `python train.py --help`.
"""

from pixelrnn_tf.cli import train

if __name__ == "__main__":
  train.run()
