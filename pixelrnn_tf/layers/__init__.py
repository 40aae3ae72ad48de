"""Keras layers of the PixelRNN family."""

from pixelrnn_tf.layers.masked_conv import MaskedConv2D
from pixelrnn_tf.layers.recurrent import DiagonalBiLSTM
from pixelrnn_tf.layers.recurrent import RowLSTM
