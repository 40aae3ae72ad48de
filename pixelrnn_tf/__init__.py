"""pixelrnn_tf: PixelCNN and PixelRNN (Row LSTM, Diagonal BiLSTM), multi-scale PixelRNN
and Gated PixelCNN in TF 2 / Keras 3.

Importing the package changes nothing in the process; the programs
(`pixelrnn_tf.cli`) choose TensorFlow's CPU kernels (`cli.use_onednn`).
"""
