"""Keras classes for the cross-entropy family (math in ``tfloss.ops.crossentropy``)."""

import tensorflow as tf

from tfloss import _keras
from tfloss.losses import base
from tfloss.ops import _common
from tfloss.ops import crossentropy as ops


@_keras.register
class SparseCategoricalCrossentropy(base.Loss):
    """Softmax cross-entropy for integer labels, computed by gathering the
    label's log-probability (no one-hot tensor).

    Beyond Keras's version it has ``label_smoothing`` and per-class
    ``class_weight``. Labels may be shaped (B,), (B, 1) or (B, T) for
    predictions (B, C) / (B, T, C); they stay integers under any dtype policy.

    Args:
      from_logits: whether ``y_pred`` are logits (recommended) or probabilities.
      label_smoothing: eps in [0, 1): targets ``(1 - eps) onehot + eps / C``.
      class_weight: optional list of C non-negative weights, one per class.
      ignore_class: label value whose entries are excluded from loss and mean.
      axis: the class axis of ``y_pred``.
      reduction, name, dtype: as for any Keras loss.
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        class_weight=None,
        ignore_class=None,
        axis=-1,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = base.check_label_smoothing(label_smoothing)
        self.class_weight = base.check_class_vector(class_weight, "class_weight")
        if ignore_class is not None and not isinstance(ignore_class, int):
            raise ValueError(f"ignore_class must be an int or None; got {ignore_class!r}.")
        self.ignore_class = ignore_class
        self.axis = int(axis)

    def call(self, y_true, y_pred):
        base.check_num_classes(self.class_weight, y_pred.shape[self.axis], "class_weight")
        losses = ops.sparse_categorical_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            class_weight=self.class_weight,
            ignore_class=self.ignore_class,
            axis=self.axis,
        )
        if self.ignore_class is not None:
            labels = _common.sparse_labels(y_true, _move_axis_last(y_pred, self.axis))
            _keras.set_mask(losses, tf.not_equal(labels, tf.cast(self.ignore_class, labels.dtype)))
        return losses

    def get_config(self):
        config = super().get_config()
        config.update(
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            class_weight=self.class_weight,
            ignore_class=self.ignore_class,
            axis=self.axis,
        )
        return config


def _move_axis_last(y_pred, axis):
    return ops._class_axis_last(y_pred, axis)


@_keras.register
class CategoricalCrossentropy(base.Loss):
    """Softmax cross-entropy for one-hot or soft targets (each row sums to 1).

    Multi-hot rows are rejected with an error naming the sigmoid loss (they are
    multi-label data). Args as ``SparseCategoricalCrossentropy`` less
    ``ignore_class``.
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        class_weight=None,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = base.check_label_smoothing(label_smoothing)
        self.class_weight = base.check_class_vector(class_weight, "class_weight")
        self.axis = int(axis)

    def call(self, y_true, y_pred):
        base.check_num_classes(self.class_weight, y_pred.shape[self.axis], "class_weight")
        return ops.categorical_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            class_weight=self.class_weight,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            class_weight=self.class_weight,
            axis=self.axis,
        )
        return config


@_keras.register
class SigmoidCrossentropy(base.Loss):
    """Sigmoid (binary) cross-entropy per output, averaged over the class axis:
    for multi-label and one-vs-rest data.

    Args:
      from_logits: whether ``y_pred`` are logits (recommended) or probabilities.
      label_smoothing: eps in [0, 1): targets ``z (1 - eps) + eps / 2``.
      pos_weight: optional list of C non-negative weights on the positive term.
      axis: the axis averaged over.
    Labels (B,) against predictions (B, 1) are aligned, never broadcast to (B, B).
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        pos_weight=None,
        axis=-1,
        reduction="sum_over_batch_size",
        name="sigmoid_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = base.check_label_smoothing(label_smoothing)
        self.pos_weight = base.check_class_vector(pos_weight, "pos_weight")
        self.axis = int(axis)

    def call(self, y_true, y_pred):
        base.check_num_classes(self.pos_weight, y_pred.shape[-1], "pos_weight")
        return ops.sigmoid_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            pos_weight=self.pos_weight,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            pos_weight=self.pos_weight,
            axis=self.axis,
        )
        return config


BinaryCrossentropy = SigmoidCrossentropy
