"""Shared plumbing for the math layer: dtypes, sparse labels and checks.

No Keras here. Functions in ``tfloss.ops`` take plain tensors, compile under
``tf.function(jit_compile=True)`` and compute half-precision inputs in float32.
"""

import numpy as np
import tensorflow as tf

HALF_DTYPES = (tf.float16, tf.bfloat16)

# Stands in for a fractional float label: out of every class range, and fits int32.
NON_INTEGER_LABEL = -(2**30)


def compute_dtype(x):
    """float32 for half inputs (their range and precision are too small for
    log-space sums), otherwise the input's own floating dtype."""
    dtype = tf.as_dtype(x.dtype)
    if dtype in HALF_DTYPES or not dtype.is_floating:
        return tf.float32
    return dtype


def check_values(value, name, low=None, high=None, low_inclusive=True, high_inclusive=True):
    """Argument check for the ops functions, which users call without a Keras
    class in front: Python numbers or lists must lie in the given range.
    Tensors are left alone (their values are unknown while tracing)."""
    if value is None or isinstance(value, (tf.Tensor, tf.Variable)):
        return
    array = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(array)
    if low is not None:
        bad |= (array < low) if low_inclusive else (array <= low)
    if high is not None:
        bad |= (array > high) if high_inclusive else (array >= high)
    if bad.any():
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        bounds = ("[" if low_inclusive else "(") + f"{lo}, {hi}" + ("]" if high_inclusive else ")")
        raise ValueError(f"{name} must be finite and in {bounds}; got {value!r}.")


def to_compute(x):
    x = tf.convert_to_tensor(x)
    return tf.cast(x, compute_dtype(x)), x.dtype


def sparse_labels(labels, logits, axis=-1):
    """Return integer labels shaped like ``logits`` without its class axis.

    Accepts labels shaped (B,), (B, 1), (B, T), (B, T, 1) for logits (B, C) or
    (B, T, C). A trailing axis of size one is squeezed only when the ranks say
    it is the class axis, so (B,) labels are never broadcast against (B, 1).
    """
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_floating:
        # Float labels must hold whole numbers: 1.5 is no class. A fractional
        # label becomes NON_INTEGER_LABEL, which check_label_range reports
        # (an error in eager and graph mode, NaN under XLA), instead of being
        # truncated to a neighbouring class.
        whole = tf.equal(labels, tf.round(labels))
        labels = tf.where(whole, tf.cast(labels, tf.int64), tf.constant(NON_INTEGER_LABEL, tf.int64))
    logits_rank = logits.shape.rank
    labels_rank = labels.shape.rank
    if logits_rank is None or labels_rank is None:
        raise ValueError("y_true and y_pred must have a known rank (got an unknown rank).")
    if axis not in (-1, logits_rank - 1):
        logits_axis = axis % logits_rank
        # The class axis is not last: the label shape is the logits shape
        # without that axis.
        expected = logits.shape[:logits_axis] + logits.shape[logits_axis + 1 :]
    else:
        expected = logits.shape[:-1]
    if labels_rank == logits_rank and labels.shape[-1] == 1:
        labels = tf.squeeze(labels, axis=-1)
    elif labels_rank != logits_rank - 1:
        raise ValueError(
            "y_true (sparse integer labels) must have shape "
            f"{_shape_str(expected)} or {_shape_str(expected)[:-1]}, 1) for y_pred of shape "
            f"{_shape_str(logits.shape)}; got y_true of shape {_shape_str(labels.shape)}. "
            "For one-hot labels use the categorical loss."
        )
    if not labels.shape.is_compatible_with(expected):
        raise ValueError(
            f"y_true (sparse integer labels) of shape {_shape_str(labels.shape)} does not match "
            f"y_pred of shape {_shape_str(logits.shape)}: expected labels of shape "
            f"{_shape_str(expected)}."
        )
    return labels


def _shape_str(shape):
    dims = ["None" if d is None else str(d) for d in tf.TensorShape(shape).as_list()]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def check_label_range(labels, num_classes, ignore_class=None):
    """Assert 0 <= label < num_classes (ignored labels excepted).

    Returns ``(labels_safe, in_range)``: labels clipped into range so gathers are
    well defined, and a boolean mask of the labels that were valid. In eager and
    graph mode an out-of-range label raises InvalidArgumentError naming y_true.
    XLA compiles assertions out, so callers also turn the loss of an
    out-of-range label into NaN: a value nobody mistakes for a real loss
    (XLA's gather would otherwise clamp the index and return a plausible one).
    """
    num_classes = tf.cast(num_classes, labels.dtype)
    in_range = tf.logical_and(labels >= 0, labels < num_classes)
    if ignore_class is not None:
        in_range = tf.logical_or(in_range, tf.equal(labels, tf.cast(ignore_class, labels.dtype)))
    tf.debugging.Assert(
        tf.reduce_all(in_range),
        [
            "y_true: every sparse label must be an integer in [0, num_classes) "
            "(or equal to ignore_class); num_classes =",
            num_classes,
            "min label =",
            tf.reduce_min(labels),
            "max label =",
            tf.reduce_max(labels),
        ],
        summarize=8,
        name="check_label_range",
    )
    safe = tf.clip_by_value(labels, 0, num_classes - 1)
    return safe, in_range


def nan_where_invalid(values, valid):
    return tf.where(valid, values, tf.constant(float("nan"), values.dtype))


def class_vector(values, num_classes, dtype, name):
    """A per-class parameter (scalar or length-C vector) as a tensor broadcastable
    over the class axis; checks the length when C is static."""
    values = tf.convert_to_tensor(values, dtype=dtype)
    if values.shape.rank == 1 and num_classes is not None and values.shape[0] not in (None, num_classes):
        raise ValueError(
            f"{name} must have one entry per class ({num_classes}); got {values.shape[0]}."
        )
    return values


def smooth_one_hot_targets(targets, label_smoothing, num_classes):
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / tf.cast(num_classes, targets.dtype)
    return targets


def check_distribution_rows(targets, loss_name, axis=-1):
    """Reject multi-hot rows for single-label (softmax) losses.

    Rows must sum to 1 (one-hot or soft targets) or to 0 (padding, contributes
    nothing). Raises in eager/graph mode. XLA compiles the assertion out, so
    the boolean row mask is returned too: callers make the loss of a bad row
    NaN (see ``check_label_range``), never a plausible number.
    """
    sums = tf.reduce_sum(targets, axis=axis)
    tol = 1e-2 if targets.dtype in HALF_DTYPES else 1e-3
    ok = tf.logical_or(tf.abs(sums - 1.0) <= tol, tf.abs(sums) <= tol)
    tf.debugging.Assert(
        tf.reduce_all(ok),
        [
            f"y_true: every row of one-hot or soft targets for {loss_name} must sum to 1 "
            "(single-label data); smallest and largest row sums:",
            tf.reduce_min(sums),
            tf.reduce_max(sums),
            "- for multi-label (multi-hot) targets use tfloss.SigmoidCrossentropy or "
            "tfloss.SigmoidFocalCrossentropy.",
        ],
        summarize=4,
        name="check_target_rows",
    )
    return ok
