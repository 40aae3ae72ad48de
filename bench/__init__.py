"""Benchmarks of pixelrnn_tf (speed, memory, training races, curves), one module each.

Run a script from the repository root as a module, e.g.
`python -m bench.step_time --quick`. This file imports nothing: each script imports
`pixelrnn_tf` before TensorFlow, which turns on TensorFlow's oneDNN CPU kernels
(pixelrnn_tf/__init__.py).
"""
