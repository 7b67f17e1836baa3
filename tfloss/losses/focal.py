"""Keras classes for the focal-loss family (math in ``tfloss.ops.focal``).

Defaults follow Keras's focal losses and Lin et al. 2017: ``alpha=0.25``,
``gamma=2.0``, ``from_logits=False``. Keras's ``BinaryFocalCrossentropy``
applies its alpha only with ``apply_class_balancing=True``; to match its
default, pass ``alpha=None`` to ``SigmoidFocalCrossentropy``.
"""

import numbers

import tensorflow as tf

from tfloss import _keras
from tfloss.losses import base
from tfloss.ops import _common
from tfloss.ops import crossentropy as ce_ops
from tfloss.ops import focal as ops


def _check_gamma(gamma):
    if gamma is None or isinstance(gamma, bool):
        raise ValueError(f"gamma must be a number >= 0 or a list of them, one per class; got {gamma!r}.")
    return base.check_class_vector(gamma, "gamma", allow_scalar=True, low=0.0)


def _check_alpha(alpha, probability):
    if isinstance(alpha, bool):
        raise ValueError(f"alpha must be None, a number or a list of numbers; got {alpha!r}.")
    if probability:
        return base.check_class_vector(alpha, "alpha", allow_scalar=True, low=0.0, high=1.0)
    return base.check_class_vector(alpha, "alpha", allow_scalar=True, low=0.0)


def _check_ignore_class(ignore_class):
    if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(ignore_class, numbers.Integral)):
        raise ValueError(f"ignore_class must be an int or None; got {ignore_class!r}.")
    return None if ignore_class is None else int(ignore_class)


class _FocalBase(base.Loss):
    """Shared arguments: alpha, gamma, from_logits, label_smoothing, axis."""

    _alpha_is_probability = False

    def __init__(self, alpha, gamma, from_logits, label_smoothing, axis, reduction, name, dtype):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = _check_alpha(alpha, self._alpha_is_probability)
        self.gamma = _check_gamma(gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = base.check_label_smoothing(label_smoothing)
        self.axis = int(axis)

    def _check_lengths(self, y_pred):
        # A rank-1 y_pred is one output per sample: one class.
        num_classes = y_pred.shape[self.axis] if (y_pred.shape.rank or 0) > 1 else 1
        base.check_num_classes(self.alpha, num_classes, "alpha")
        base.check_num_classes(self.gamma, num_classes, "gamma")

    def get_config(self):
        config = super().get_config()
        config.update(
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )
        return config


@_keras.register
class SparseCategoricalFocalCrossentropy(_FocalBase):
    """Softmax focal loss for integer labels (single-label classification).

    ``loss = alpha_y (1 - p_y)^gamma_y (-log p_y)`` (Lin et al. 2017), computed
    from log-probabilities: not capped by clipping, finite for logits of
    +-1e4 and for gamma in (0, 1). With ``gamma=0`` and ``alpha=None`` it equals
    ``SparseCategoricalCrossentropy``.

    Args:
      alpha: None, a scalar weight for every class (Keras's default 0.25), or C
        class weights >= 0 (e.g. ``tfloss.class_weights(counts)``).
      gamma: focusing parameter >= 0, scalar or one per class (default 2.0).
      from_logits: whether ``y_pred`` are logits (recommended) or probabilities.
      label_smoothing: eps in [0, 1): targets ``(1 - eps) onehot + eps / C``,
        each class's term with its own focal factor.
      ignore_class: label value whose entries are excluded from loss and mean.
      axis: the class axis of ``y_pred``.
      reduction, name, dtype: as for any Keras loss.
    Labels may be shaped (B,), (B, 1) or (B, T) and stay integers.
    """

    def __init__(
        self,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        ignore_class=None,
        axis=-1,
        reduction="sum_over_batch_size",
        name="sparse_categorical_focal_crossentropy",
        dtype=None,
    ):
        super().__init__(alpha, gamma, from_logits, label_smoothing, axis, reduction, name, dtype)
        self.ignore_class = _check_ignore_class(ignore_class)

    def call(self, y_true, y_pred):
        self._check_lengths(y_pred)
        losses = ops.sparse_categorical_focal_crossentropy(
            y_true,
            y_pred,
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            ignore_class=self.ignore_class,
            axis=self.axis,
        )
        if self.ignore_class is not None:
            labels = _common.sparse_labels(y_true, ce_ops._class_axis_last(y_pred, self.axis))
            _keras.set_mask(losses, tf.not_equal(labels, tf.cast(self.ignore_class, labels.dtype)))
        return losses

    def get_config(self):
        config = super().get_config()
        config["ignore_class"] = self.ignore_class
        return config


@_keras.register
class CategoricalFocalCrossentropy(_FocalBase):
    """Softmax focal loss for one-hot or soft targets (each row sums to 1).

    ``loss = -sum_c alpha_c q_c (1 - p_c)^gamma_c log p_c``: Keras's
    ``CategoricalFocalCrossentropy`` (same arguments and defaults) computed from
    log-probabilities, so from logits [[0, 100]] with target [[1, 0]] it is
    ``alpha * 100``, not a value capped by clipping. Multi-hot rows are
    rejected with an error naming ``SigmoidFocalCrossentropy``. Args as
    ``SparseCategoricalFocalCrossentropy`` less ``ignore_class``.
    """

    def __init__(
        self,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_focal_crossentropy",
        dtype=None,
    ):
        super().__init__(alpha, gamma, from_logits, label_smoothing, axis, reduction, name, dtype)

    def call(self, y_true, y_pred):
        self._check_lengths(y_pred)
        return ops.categorical_focal_crossentropy(
            y_true,
            y_pred,
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )


@_keras.register
class SigmoidFocalCrossentropy(_FocalBase):
    """Sigmoid focal loss per output, for multi-label and one-vs-rest data.

    Per output ``alpha_t (1 - p_t)^gamma BCE`` (Lin et al. 2017) with
    ``p_t = z p + (1 - z)(1 - p)`` and ``alpha_t = z alpha + (1 - z)(1 - alpha)``.

    Args:
      alpha: None (no balancing), a scalar in [0, 1] or one value in [0, 1] per
        class: the weight of positive targets; negatives get ``1 - alpha``.
        Default 0.25 (Lin et al.; tensorflow-addons). Keras's
        ``BinaryFocalCrossentropy`` uses alpha only with
        ``apply_class_balancing=True``: pass ``alpha=None`` for its default.
      gamma: focusing parameter >= 0, scalar or one per class (default 2.0).
      from_logits: whether ``y_pred`` are logits (recommended) or probabilities.
      label_smoothing: eps in [0, 1): targets ``z (1 - eps) + eps / 2``.
      class_reduction: how the per-class losses of a row are combined:
        ``"mean"`` (default; Keras's ``BinaryFocalCrossentropy``) or ``"sum"``
        (tensorflow-addons' ``SigmoidFocalCrossEntropy``, and Lin et al.'s
        detector, which sums over classes). They differ by the factor C.
      axis: the class axis reduced by ``class_reduction``.
    """

    _alpha_is_probability = True

    def __init__(
        self,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        class_reduction="mean",
        axis=-1,
        reduction="sum_over_batch_size",
        name="sigmoid_focal_crossentropy",
        dtype=None,
    ):
        super().__init__(alpha, gamma, from_logits, label_smoothing, axis, reduction, name, dtype)
        if class_reduction not in ops.CLASS_REDUCTIONS:
            raise ValueError(
                f"class_reduction must be one of {list(ops.CLASS_REDUCTIONS)}; got {class_reduction!r}."
            )
        self.class_reduction = class_reduction

    def call(self, y_true, y_pred):
        self._check_lengths(y_pred)
        return ops.sigmoid_focal_crossentropy(
            y_true,
            y_pred,
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            class_reduction=self.class_reduction,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config["class_reduction"] = self.class_reduction
        return config
