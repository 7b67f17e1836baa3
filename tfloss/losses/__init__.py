"""Keras loss classes. One module a family; the math lives in ``tfloss.ops``."""

from tfloss.losses.crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SigmoidCrossentropy,
    SparseCategoricalCrossentropy,
)
from tfloss.losses.focal import (
    CategoricalFocalCrossentropy,
    SigmoidFocalCrossentropy,
    SparseCategoricalFocalCrossentropy,
)
from tfloss.losses.image import SSIMLoss
from tfloss.losses.topk import HardTopKSVM, SmoothTopKSVM

__all__ = [
    "BinaryCrossentropy", "CategoricalCrossentropy", "SigmoidCrossentropy", "SparseCategoricalCrossentropy",
    "CategoricalFocalCrossentropy", "SigmoidFocalCrossentropy", "SparseCategoricalFocalCrossentropy",
    "SSIMLoss", "HardTopKSVM", "SmoothTopKSVM",
]
