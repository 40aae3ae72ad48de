"""pixelrnn_tf: PixelCNN and PixelRNN (Row LSTM, Diagonal BiLSTM) in TF 2 / Keras 3."""
