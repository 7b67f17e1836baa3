"""Keras loss classes. One module a family; the math lives in ``tfloss.ops``."""

from tfloss.losses.crossentropy import BinaryCrossentropy
from tfloss.losses.crossentropy import CategoricalCrossentropy
from tfloss.losses.crossentropy import SigmoidCrossentropy
from tfloss.losses.crossentropy import SparseCategoricalCrossentropy
from tfloss.losses.topk import HardTopKSVM
from tfloss.losses.topk import SmoothTopKSVM
from tfloss.losses.image import SSIMLoss
