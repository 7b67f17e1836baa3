"""tfloss: Keras losses and metrics for what classifiers are judged by.

Works on Keras 3 (``tf.keras`` on TF >= 2.16) and on tf_keras
(``TF_USE_LEGACY_KERAS=1``); ``tfloss.KERAS`` says which is active.
"""

__version__ = "0.1.0"

from tfloss import ops  # noqa: F401
from tfloss._get import get  # noqa: F401
from tfloss._keras import KERAS_NAME as KERAS  # noqa: F401
from tfloss.losses import *  # noqa: F401,F403
from tfloss.losses import BinaryCrossentropy  # noqa: F401
from tfloss.losses import HardTopKSVM  # noqa: F401
from tfloss.losses import SmoothTopKSVM  # noqa: F401
from tfloss.losses import CategoricalCrossentropy  # noqa: F401
from tfloss.losses import SigmoidCrossentropy  # noqa: F401
from tfloss.losses import SparseCategoricalCrossentropy  # noqa: F401
from tfloss.losses import SSIMLoss  # noqa: F401
from tfloss.metrics import *  # noqa: F401,F403
