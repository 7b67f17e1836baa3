"""Pure TensorFlow loss and metric math (no Keras); every function compiles under XLA."""

from tfloss.ops.crossentropy import categorical_crossentropy
from tfloss.ops.crossentropy import log_probabilities
from tfloss.ops.crossentropy import sigmoid_crossentropy
from tfloss.ops.crossentropy import sparse_categorical_crossentropy

binary_crossentropy = sigmoid_crossentropy
from tfloss.ops.topk import hard_topk_svm
from tfloss.ops.topk import log_elementary_symmetric
from tfloss.ops.topk import smooth_topk_svm
