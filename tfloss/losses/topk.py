"""Keras classes for the top-k SVM losses (math in ``tfloss.ops.topk``).

Berrada, Zisserman, Kumar, "Smooth Loss Functions for Deep Top-k
Classification", ICLR 2018. Both losses take the model's scores as given:
there is no probability form, so there is no ``from_logits`` argument (give
the layer's raw outputs, as for ``from_logits=True`` elsewhere; a softmax in
front only squashes the scores).
"""

import numbers

from tfloss import _keras
from tfloss.losses import base
from tfloss.ops import topk as ops


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not float(alpha) >= 0.0 or alpha == float("inf"):
        raise ValueError(f"alpha (the margin) must be a finite number >= 0; got {alpha!r}.")
    return float(alpha)


def _check_tau(tau):
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not float(tau) > 0.0 or tau == float("inf"):
        raise ValueError(f"tau (the temperature) must be a finite number > 0; got {tau!r}.")
    return float(tau)


class _TopKLoss(base.Loss):
    def __init__(self, k, alpha, reduction, name, dtype):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.k = ops.check_k(k)
        self.alpha = _check_alpha(alpha)

    def _check_classes(self, y_pred):
        ops.check_k(self.k, y_pred.shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(k=self.k, alpha=self.alpha)
        return config


@_keras.register
class SmoothTopKSVM(_TopKLoss):
    """Smooth top-k SVM loss ``L_{k,tau}`` (Berrada et al., ICLR 2018).

    ``tau * softplus(alpha / tau + log e_k(exp x) - log e_{k-1}(exp x) - s_y / (k tau))``
    with ``x = s_{\\y} / (k tau)``: the temperature-``tau`` smoothing of the
    hard top-k SVM (``HardTopKSVM``), which trains for top-k accuracy and is
    more robust than cross-entropy to noisy labels and small data. With
    ``k=1, alpha=0, tau=1`` it is exactly softmax cross-entropy; as tau -> 0
    it tends to the hard loss.

    Args:
      k: the k of top-k accuracy (int, 1 <= k < number of classes).
      alpha: the margin (>= 0; the paper uses 1).
      tau: the temperature (> 0; the paper uses 1). Tune by powers of ten.
      reduction, name, dtype: as for any Keras loss.
    Labels: integers (B,) or (B, 1), or one-hot rows (B, n). Scores (B, n)
    are used as given (no ``from_logits``: there is no probability form).
    Accurate in float32 for scores of scale 1 to 1e3 and tau from 1e-3 to
    10; half-precision inputs are computed in float32; compiles under XLA.
    """

    def __init__(self, k=5, alpha=1.0, tau=1.0, reduction="sum_over_batch_size", name="smooth_top_k_svm", dtype=None):
        super().__init__(k, alpha, reduction, name, dtype)
        self.tau = _check_tau(tau)

    def call(self, y_true, y_pred):
        self._check_classes(y_pred)
        return ops.smooth_topk_svm(y_true, y_pred, k=self.k, alpha=self.alpha, tau=self.tau)

    def get_config(self):
        config = super().get_config()
        config.update(tau=self.tau)
        return config


@_keras.register
class HardTopKSVM(_TopKLoss):
    """Hard top-k SVM loss ``max(alpha + (s_{\\y,[k]} - s_y) / k, 0)`` (Berrada et al., ICLR 2018).

    ``s_{\\y,[k]}`` is the k-th largest score among the other classes. This
    is the paper's rescaled form (each k-subset scored by its mean), the
    tau -> 0 limit of ``SmoothTopKSVM``; the unscaled top-k hinge of Lapin et
    al. is k times it with margin ``k * alpha``. Its gradient is sparse (two
    entries a row), which is why the smooth loss trains better with deep
    models. Args and labels as ``SmoothTopKSVM`` less ``tau``.
    """

    def __init__(self, k=5, alpha=1.0, reduction="sum_over_batch_size", name="hard_top_k_svm", dtype=None):
        super().__init__(k, alpha, reduction, name, dtype)

    def call(self, y_true, y_pred):
        self._check_classes(y_pred)
        return ops.hard_topk_svm(y_true, y_pred, k=self.k, alpha=self.alpha)
