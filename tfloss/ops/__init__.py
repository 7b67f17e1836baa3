"""Pure TensorFlow loss and metric math (no Keras); every function compiles under XLA."""

from tfloss.ops.crossentropy import categorical_crossentropy
from tfloss.ops.crossentropy import log_probabilities
from tfloss.ops.crossentropy import sigmoid_crossentropy
from tfloss.ops.crossentropy import sparse_categorical_crossentropy

binary_crossentropy = sigmoid_crossentropy
from tfloss.ops.topk import hard_topk_svm
from tfloss.ops.topk import log_elementary_symmetric
from tfloss.ops.topk import smooth_topk_svm
from tfloss.ops.accuracy import top_k_hits
from tfloss.ops.calibration import brier_score
from tfloss.ops.calibration import class_wise_bin_sums
from tfloss.ops.calibration import expected_calibration_error
from tfloss.ops.calibration import negative_log_likelihood
from tfloss.ops.calibration import top_label_bin_sums
from tfloss.ops.image import ms_ssim
from tfloss.ops.image import psnr
from tfloss.ops.image import ssim
