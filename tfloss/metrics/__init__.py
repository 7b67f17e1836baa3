"""Streaming Keras metrics. One module a family; the math lives in ``tfloss.ops``."""

from tfloss.metrics._base import monitor_mode
from tfloss.metrics.accuracy import ClassificationError
from tfloss.metrics.accuracy import TopKAccuracy
from tfloss.metrics.accuracy import TopKError
