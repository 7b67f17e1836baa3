"""Cross-entropy family: sparse (gather), categorical (soft targets), sigmoid.

All three work in log space from logits (``log_softmax``, ``softplus``); the
probability path (``from_logits=False``) normalises and clips, as Keras does,
and only there. Shapes: ``y_pred`` (..., C) with the class axis last by
default; sparse labels (...) or (..., 1); targets (..., C). Each returns one
loss per row (the class axis reduced).
"""

import tensorflow as tf

from tfloss.ops import _common

EPSILON = 1e-7  # Keras's backend.epsilon(), for the probability path.


def log_probabilities(y_pred, from_logits, axis=-1):
    """Log of the softmax distribution over ``axis``, from logits or probabilities."""
    if from_logits:
        return tf.nn.log_softmax(y_pred, axis=axis)
    probs = y_pred / tf.reduce_sum(y_pred, axis=axis, keepdims=True)
    return tf.math.log(tf.clip_by_value(probs, EPSILON, 1.0 - EPSILON))


def _class_axis_last(y_pred, axis):
    rank = y_pred.shape.rank
    axis = axis % rank
    if axis == rank - 1:
        return y_pred
    perm = [d for d in range(rank) if d != axis] + [axis]
    return tf.transpose(y_pred, perm)


def num_classes_of(x):
    static = x.shape[-1]
    return static if static is not None else tf.shape(x)[-1]


def sparse_targets(labels, y_pred, axis, ignore_class):
    """Shared entry of the softmax losses with integer labels.

    Returns ``(y_pred, labels, safe, in_range, valid, out_dtype)``: predictions
    in the compute dtype with the class axis last; labels shaped like them
    without it; ``safe`` labels usable as gather indices (ignored entries set to
    0); the in-range mask (see ``check_label_range``); the not-ignored mask (None
    without ``ignore_class``); the dtype to return the loss in.
    """
    y_pred, out_dtype = _common.to_compute(y_pred)
    y_pred = _class_axis_last(y_pred, axis)
    labels = _common.sparse_labels(labels, y_pred)
    safe, in_range = _common.check_label_range(labels, num_classes_of(y_pred), ignore_class)
    valid = None
    if ignore_class is not None:
        valid = tf.not_equal(labels, tf.cast(ignore_class, labels.dtype))
        safe = tf.where(valid, safe, tf.zeros_like(safe))
    return y_pred, labels, safe, in_range, valid, out_dtype


def sparse_categorical_crossentropy(
    labels,
    y_pred,
    from_logits=False,
    label_smoothing=0.0,
    class_weight=None,
    ignore_class=None,
    axis=-1,
):
    """Softmax cross-entropy with integer labels, by gathering the label's log-probability.

    With one-hot targets, ``-sum(onehot * log_softmax(z)) == -log_softmax(z)[y]``,
    so the (B, C) one-hot tensor is never built. Label smoothing ``eps`` uses
    targets ``(1 - eps) * onehot + eps / C``; ``class_weight`` w weights each
    class's term: ``loss = -sum_c w_c q_c log p_c`` (``w_y * CE`` without
    smoothing, as PyTorch's ``weight``; the batch mean divides by the number of
    samples, as Keras does, not by the sum of weights).

    Args:
      labels: int tensor (...) or (..., 1); ``ignore_class`` entries give 0.
      y_pred: float tensor (..., C) of logits or probabilities.
    Returns:
      Loss per row, shape ``labels`` without a trailing 1, in ``y_pred``'s dtype.
      Labels outside [0, C) raise InvalidArgumentError in eager and graph mode;
      under XLA (which drops assertions) their loss is NaN.
    """
    _common.check_values(label_smoothing, "label_smoothing", low=0.0, high=1.0, high_inclusive=False)
    y_pred, labels, safe, in_range, valid, out_dtype = sparse_targets(labels, y_pred, axis, ignore_class)
    log_p = log_probabilities(y_pred, from_logits)
    num_classes = num_classes_of(log_p)
    rank = labels.shape.rank
    nll = -tf.gather(log_p, safe, axis=rank, batch_dims=rank)
    if class_weight is not None:
        weights = _common.class_vector(class_weight, log_p.shape[-1], log_p.dtype, "class_weight")
        nll = nll * tf.gather(weights, safe)
    if label_smoothing:
        if class_weight is None:
            uniform = -tf.reduce_mean(log_p, axis=-1)
        else:
            uniform = -tf.reduce_sum(log_p * weights, axis=-1) / tf.cast(num_classes, log_p.dtype)
        loss = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    else:
        loss = nll
    if valid is not None:
        loss = tf.where(valid, loss, tf.zeros_like(loss))
    loss = _common.nan_where_invalid(loss, in_range)
    return tf.cast(loss, out_dtype)


def dense_targets(targets, y_pred, axis, loss_name):
    """Shared entry of the softmax losses with one-hot or soft targets.

    Returns ``(targets, y_pred, rows_ok, out_dtype)``: both tensors in the
    compute dtype with the class axis last, the mask of rows that sum to 1 (or
    0), and the dtype to return the loss in. Raises on a shape mismatch.
    """
    y_pred, out_dtype = _common.to_compute(y_pred)
    targets = tf.cast(tf.convert_to_tensor(targets), y_pred.dtype)
    if not targets.shape.is_compatible_with(y_pred.shape):
        raise ValueError(
            "y_true (one-hot or soft targets) must have the shape of y_pred "
            f"{_common._shape_str(y_pred.shape)}; got {_common._shape_str(targets.shape)}. "
            "For integer labels use the sparse loss."
        )
    y_pred = _class_axis_last(y_pred, axis)
    targets = _class_axis_last(targets, axis)
    rows_ok = _common.check_distribution_rows(targets, loss_name)
    return targets, y_pred, rows_ok, out_dtype


def categorical_crossentropy(
    targets, y_pred, from_logits=False, label_smoothing=0.0, class_weight=None, axis=-1
):
    """Softmax cross-entropy against one-hot or soft targets (rows summing to 1).

    ``loss = -sum_c w_c q_c log p_c`` with ``q = (1 - eps) * targets + eps / C``.
    Multi-hot rows (sums above 1) are rejected in eager and graph mode: they
    are multi-label data, for which the sigmoid cross-entropy is the loss.
    """
    _common.check_values(label_smoothing, "label_smoothing", low=0.0, high=1.0, high_inclusive=False)
    targets, y_pred, rows_ok, out_dtype = dense_targets(targets, y_pred, axis, "a categorical (softmax) loss")
    num_classes = num_classes_of(y_pred)
    targets = _common.smooth_one_hot_targets(targets, label_smoothing, num_classes)
    log_p = log_probabilities(y_pred, from_logits)
    terms = targets * log_p
    if class_weight is not None:
        terms = terms * _common.class_vector(class_weight, y_pred.shape[-1], y_pred.dtype, "class_weight")
    loss = _common.nan_where_invalid(-tf.reduce_sum(terms, axis=-1), rows_ok)
    return tf.cast(loss, out_dtype)


def align_binary_targets(targets, y_pred):
    """Give targets the shape of ``y_pred`` without broadcasting (B,) against (B, 1)."""
    targets = tf.convert_to_tensor(targets)
    if targets.shape.rank == y_pred.shape.rank - 1 and y_pred.shape[-1] == 1:
        targets = tf.expand_dims(targets, -1)
    elif targets.shape.rank == y_pred.shape.rank + 1 and targets.shape[-1] == 1:
        targets = tf.squeeze(targets, -1)
    if not targets.shape.is_compatible_with(y_pred.shape):
        raise ValueError(
            "y_true must have the shape of y_pred "
            f"{_common._shape_str(y_pred.shape)} (one 0/1 target per output); got "
            f"{_common._shape_str(targets.shape)}. Labels are never broadcast against predictions."
        )
    return targets


def sigmoid_log_terms(y_pred, from_logits):
    """``(log p, log(1 - p))`` element-wise, stably from logits or clipped probabilities."""
    if from_logits:
        # log sigmoid(x) = -softplus(-x); log(1 - sigmoid(x)) = -softplus(x).
        return -tf.nn.softplus(-y_pred), -tf.nn.softplus(y_pred)
    p = tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
    return tf.math.log(p), tf.math.log1p(-p)


def sigmoid_crossentropy(
    targets, y_pred, from_logits=False, label_smoothing=0.0, pos_weight=None, axis=-1
):
    """Element-wise sigmoid (binary) cross-entropy, averaged over ``axis``.

    ``loss = -(pw_c z log p + (1 - z) log(1 - p))`` with smoothed targets
    ``z = z (1 - eps) + eps / 2`` (Keras's convention) and per-class positive
    weights ``pw`` (as ``tf.nn.weighted_cross_entropy_with_logits``). For
    ``y_pred`` of rank 1 (one output per sample) no axis is averaged.
    """
    _common.check_values(label_smoothing, "label_smoothing", low=0.0, high=1.0, high_inclusive=False)
    y_pred, out_dtype = _common.to_compute(y_pred)
    targets = tf.cast(align_binary_targets(targets, y_pred), y_pred.dtype)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
    log_p, log_not_p = sigmoid_log_terms(y_pred, from_logits)
    positive = targets * log_p
    if pos_weight is not None:
        positive = positive * _common.class_vector(pos_weight, y_pred.shape[axis], y_pred.dtype, "pos_weight")
    loss = -(positive + (1.0 - targets) * log_not_p)
    if y_pred.shape.rank > 1:
        loss = tf.reduce_mean(loss, axis=axis)
    return tf.cast(loss, out_dtype)
