"""Streaming Keras metrics. One module a family; the math lives in ``tfloss.ops``."""

from tfloss.metrics._base import monitor_mode
from tfloss.metrics.accuracy import ClassificationError, TopKAccuracy, TopKError
from tfloss.metrics.calibration import BrierScore, ExpectedCalibrationError, NegativeLogLikelihood, reliability_diagram
from tfloss.metrics.image import PSNR, SSIM, MultiScaleSSIM

__all__ = [
    "monitor_mode", "ClassificationError", "TopKAccuracy", "TopKError", "BrierScore",
    "ExpectedCalibrationError", "NegativeLogLikelihood", "reliability_diagram", "PSNR", "SSIM", "MultiScaleSSIM",
]
