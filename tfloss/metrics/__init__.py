"""Streaming Keras metrics. One module a family; the math lives in ``tfloss.ops``."""

from tfloss.metrics._base import monitor_mode
from tfloss.metrics.accuracy import ClassificationError
from tfloss.metrics.accuracy import TopKAccuracy
from tfloss.metrics.accuracy import TopKError
from tfloss.metrics.calibration import BrierScore
from tfloss.metrics.calibration import ExpectedCalibrationError
from tfloss.metrics.calibration import NegativeLogLikelihood
from tfloss.metrics.calibration import reliability_diagram
from tfloss.metrics.image import PSNR
from tfloss.metrics.image import SSIM
from tfloss.metrics.image import MultiScaleSSIM
