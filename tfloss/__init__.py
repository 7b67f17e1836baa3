"""tfloss: Keras losses and metrics for what classifiers are judged by.

Works on Keras 3 (``tf.keras`` on TF >= 2.16) and on tf_keras
(``TF_USE_LEGACY_KERAS=1``); ``tfloss.KERAS`` says which is active. The math
is public as plain TensorFlow functions in ``tfloss.ops``.
"""

__version__ = "0.1.0"

from tfloss import bayes, ops  # noqa: F401
from tfloss._get import get
from tfloss._keras import KERAS_NAME as KERAS
from tfloss.bayes import DenseFlipout, DenseReparameterization, ELBOModel, kl_report
from tfloss.class_balance import PriorBiasInitializer, class_weights, prior_bias, prior_bias_initializer
from tfloss.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    HardTopKSVM,
    SigmoidCrossentropy,
    SigmoidFocalCrossentropy,
    SmoothTopKSVM,
    SparseCategoricalCrossentropy,
    SparseCategoricalFocalCrossentropy,
    SSIMLoss,
)
from tfloss.metrics import (
    PSNR,
    SSIM,
    BrierScore,
    ClassificationError,
    ExpectedCalibrationError,
    MultiScaleSSIM,
    NegativeLogLikelihood,
    TopKAccuracy,
    TopKError,
    monitor_mode,
    reliability_diagram,
)

__all__ = [
    "KERAS", "get", "ops", "bayes",
    # cross-entropy
    "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "SigmoidCrossentropy", "BinaryCrossentropy",
    # focal and class balance
    "SigmoidFocalCrossentropy", "CategoricalFocalCrossentropy", "SparseCategoricalFocalCrossentropy",
    "class_weights", "prior_bias", "prior_bias_initializer", "PriorBiasInitializer",
    # top-k
    "SmoothTopKSVM", "HardTopKSVM",
    # metrics
    "TopKAccuracy", "TopKError", "ClassificationError", "ExpectedCalibrationError", "reliability_diagram",
    "NegativeLogLikelihood", "BrierScore", "PSNR", "SSIM", "MultiScaleSSIM", "SSIMLoss", "monitor_mode",
    # Bayesian
    "ELBOModel", "DenseReparameterization", "DenseFlipout", "kl_report",
]
