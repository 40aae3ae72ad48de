"""Command-line programs: `train` (pixelrnn-train, train.py) and `export`
(pixelrnn-export, export.py). Each defines its absl flags on import and runs with
`run()`; the scoring program is `pixelrnn_tf.score` (pixelrnn-score)."""
