"""The base class of every tfloss loss, and constructor-argument checks.

The one thing it changes from Keras's ``Loss``: Keras 3 casts ``y_true`` to the
loss dtype before ``call``, which would turn integer labels into floats (and
labels above 2048 into wrong ones under a float16 dtype). Here integer labels
reach ``call`` as integers; reduction is still Keras's own on both Kerases.
"""

import numbers

import numpy as np
import tensorflow as tf

from tfloss import _keras


class Loss(_keras.Loss):
    """Keras ``Loss`` that keeps integer labels and computes in ``dtype`` (float32)."""

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        check_reduction(reduction)
        if _keras.IS_KERAS_3:
            super().__init__(name=name, reduction=reduction, dtype=dtype)
        else:
            super().__init__(reduction=reduction, name=name)
            self._tfloss_dtype = tf.as_dtype(dtype or "float32").name

    @property
    def compute_dtype(self):
        return self.dtype if _keras.IS_KERAS_3 else self._tfloss_dtype

    def __call__(self, y_true, y_pred, sample_weight=None):
        if not _keras.IS_KERAS_3:
            return super().__call__(y_true, _cast_keep_mask(y_pred, self.compute_dtype), sample_weight)
        in_mask = _keras.get_mask(y_pred)
        with tf.name_scope(_scope_name(self.name)):
            y_pred = tf.cast(tf.convert_to_tensor(y_pred), self.dtype)
            y_true = tf.convert_to_tensor(y_true)
            if not y_true.dtype.is_integer:
                y_true = tf.cast(y_true, self.dtype)
            losses = self.call(y_true, y_pred)
            out_mask = _keras.get_mask(losses)
            if in_mask is not None and out_mask is not None:
                mask = tf.logical_and(tf.cast(in_mask, tf.bool), tf.cast(out_mask, tf.bool))
            else:
                mask = in_mask if in_mask is not None else out_mask
            sample_weight = _expand_weights(sample_weight, losses)
            return _keras.reduce_weighted_values(
                losses, sample_weight=sample_weight, mask=mask, reduction=self.reduction, dtype=self.dtype
            )

    def get_config(self):
        config = super().get_config()
        config["dtype"] = self.compute_dtype
        return config


def _expand_weights(sample_weight, losses):
    """Per-sample weights (B,) against per-timestep losses (B, T): add trailing
    axes so they broadcast (Keras 3 only squeezes or expands a size-1 axis)."""
    if sample_weight is None:
        return None
    sample_weight = tf.convert_to_tensor(sample_weight)
    rank, target = sample_weight.shape.rank, losses.shape.rank
    if rank is not None and target is not None and 1 <= rank < target:
        sample_weight = tf.reshape(sample_weight, tf.concat([tf.shape(sample_weight), [1] * (target - rank)], 0))
    return sample_weight


def _cast_keep_mask(x, dtype):
    mask = _keras.get_mask(x)
    x = tf.cast(x, dtype)
    if mask is not None:
        _keras.set_mask(x, mask)
    return x


def _scope_name(name):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def check_reduction(reduction):
    allowed = _keras.reduction_names()
    if reduction not in allowed:
        raise ValueError(
            f"reduction must be one of {list(allowed)} on {_keras.KERAS_NAME}; got {reduction!r}."
        )


def check_label_smoothing(value):
    if not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"label_smoothing must be a number in [0, 1); got {value!r}.")
    return float(value)


def check_probability(value, name):
    """A scalar in [0, 1] (e.g. focal alpha)."""
    if not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}.")
    return float(value)


def check_class_vector(value, name, allow_scalar=False, low=0.0, high=None):
    """A per-class parameter as a JSON-friendly float (scalar) or list of floats.

    Returns None for None. Checks every entry is finite and within [low, high].
    The length against the number of classes is checked at call time, when C
    is known.
    """
    if value is None:
        return None
    if isinstance(value, tf.Tensor) or hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        if not allow_scalar:
            raise ValueError(f"{name} must be a list with one entry per class; got the scalar {value!r}.")
        values = [float(array)]
    elif array.ndim == 1 and array.size > 0:
        values = [float(v) for v in array]
    else:
        raise ValueError(f"{name} must be a scalar or a 1-D list with one entry per class; got shape {array.shape}.")
    for v in values:
        if not np.isfinite(v) or v < low or (high is not None and v > high):
            bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
            raise ValueError(f"{name} entries must be finite and {bounds}; got {value!r}.")
    return values[0] if array.ndim == 0 else values


def check_num_classes(vector, num_classes, name):
    """Call-time length check of a per-class list against the static class count."""
    if isinstance(vector, list) and num_classes is not None and len(vector) != num_classes:
        raise ValueError(
            f"{name} has {len(vector)} entries but y_pred has {num_classes} classes; "
            f"give one entry per class."
        )
