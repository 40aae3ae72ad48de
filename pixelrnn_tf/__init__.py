"""pixelrnn_tf: PixelCNN and PixelRNN (Row LSTM, Diagonal BiLSTM) in TF 2 / Keras 3.

Importing the package before TensorFlow turns on TensorFlow's oneDNN CPU kernels
where the variable `TF_ENABLE_ONEDNN_OPTS` is unset. TensorFlow turns them on by itself
only on CPUs with features such as AVX-512 VNNI/BF16 or AMX; on others (an AVX2-only
AMD EPYC here) it uses Eigen's kernels, which train this package's models 1.0-1.8x
slower (docs/RESULTS.md, "oneDNN CPU kernels"). TensorFlow reads the variable once, when it
loads: entry points import pixelrnn_tf first. `TF_ENABLE_ONEDNN_OPTS=0` keeps Eigen's
kernels.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
