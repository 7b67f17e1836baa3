"""Streaming Keras metrics. One module a family; the math lives in ``tfloss.ops``."""
