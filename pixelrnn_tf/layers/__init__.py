"""Keras layers of the PixelRNN family."""

from pixelrnn_tf.layers.masked_conv import MaskedConv2D
from pixelrnn_tf.layers.recurrent import DiagonalBiLSTM
from pixelrnn_tf.layers.recurrent import RowLSTM
from pixelrnn_tf.layers.scales import PlaceSubsampled
from pixelrnn_tf.layers.scales import Subsample
from pixelrnn_tf.layers.shift import ShiftDown
from pixelrnn_tf.layers.shift import SliceAxis
