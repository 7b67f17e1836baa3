"""Pure TensorFlow loss and metric math (no Keras); every function compiles under XLA."""

from tfloss.ops.accuracy import top_k_hits
from tfloss.ops.calibration import (
    brier_score,
    class_wise_bin_sums,
    expected_calibration_error,
    negative_log_likelihood,
    top_label_bin_sums,
)
from tfloss.ops.crossentropy import (
    categorical_crossentropy,
    log_probabilities,
    sigmoid_crossentropy,
    sparse_categorical_crossentropy,
)
from tfloss.ops.focal import (
    categorical_focal_crossentropy,
    sigmoid_focal_crossentropy,
    sparse_categorical_focal_crossentropy,
)
from tfloss.ops.image import ms_ssim, psnr, ssim
from tfloss.ops.symmetric import log_elementary_symmetric
from tfloss.ops.topk import hard_topk_svm, smooth_topk_svm

binary_crossentropy = sigmoid_crossentropy
