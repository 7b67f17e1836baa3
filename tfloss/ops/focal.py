"""Focal losses (Lin et al. 2017, "Focal Loss for Dense Object Detection",
arXiv:1708.02002): cross-entropy terms scaled by ``alpha_t (1 - p_t)^gamma``.

Everything is computed from the logits without cancellation: ``1 - p_t`` is
never formed by subtracting ``p_t`` from 1 (which is 0 in float32 once
``p_t > 1 - 6e-8``). The sigmoid loss takes ``1 - p_t`` from
log-sigmoids (``sigmoid(-x)``, not ``1 - sigmoid(x)``); the sparse
loss takes ``log(1 - p_y)`` as a log-sum-exp of the other classes' logits;
the categorical loss takes ``1 - p_c`` of the top class as the sum of the other
classes' probabilities. So the factor is exact where ``1 - p_t`` is tiny,
gradients stay finite for gamma in (0, 1) (the derivative of ``(1 - p)^gamma``
is infinite at ``1 - p = 0``, which these forms never reach), and the loss is
never capped by a clip of ``p``. Only ``from_logits=False`` clips
probabilities, as Keras does.

Shapes as in ``tfloss.ops.crossentropy``: ``y_pred`` (..., C); sparse labels
(...) or (..., 1); targets (..., C). Each function returns one loss per row.
"""

import numpy as np
import tensorflow as tf

from tfloss.ops import _common
from tfloss.ops.crossentropy import EPSILON
from tfloss.ops.crossentropy import align_binary_targets
from tfloss.ops.crossentropy import dense_targets
from tfloss.ops.crossentropy import log_probabilities
from tfloss.ops.crossentropy import num_classes_of
from tfloss.ops.crossentropy import sigmoid_log_terms
from tfloss.ops.crossentropy import sparse_targets

# Stands in for log(0) where a logit must be left out of a
# log-sum-exp: finite, so that no gradient ever meets inf - inf or 0 * inf.
MASKED = -1e30

CLASS_REDUCTIONS = ("mean", "sum")


def _focal_factor(log_not_p, gamma):
    """``(1 - p)^gamma`` as ``exp(gamma * log(1 - p))``."""
    return tf.exp(gamma * log_not_p)


def softmax_terms(y_pred, from_logits):
    """``(log p, 1 - p)`` for every class of a softmax over the last axis.

    From logits, every class but the row's top class has ``p_c <= 1/2``, so
    its ``1 - p_c`` is a subtraction free of cancellation. For the top class c*
    it is the sum of the other classes' probabilities (never ``1 - p_c*``,
    which rounds to 0 as soon as ``p_c* > 1 - 6e-8`` in float32). That sum is
    floored at the dtype's smallest normal number: below it ``-log p_c* =
    log1p(sum)`` is 0 in the same precision, so the loss term and its gradient
    are 0 either way, and the floor keeps ``(1 - p)^gamma`` differentiable
    for gamma in (0, 1).
    """
    if not from_logits:
        probs = y_pred / tf.reduce_sum(y_pred, axis=-1, keepdims=True)
        probs = tf.clip_by_value(probs, EPSILON, 1.0 - EPSILON)
        return tf.math.log(probs), 1.0 - probs
    log_p = tf.nn.log_softmax(y_pred, axis=-1)
    probs = tf.exp(log_p)
    is_top = tf.one_hot(tf.argmax(y_pred, axis=-1), num_classes_of(y_pred), on_value=True, off_value=False)
    others = tf.where(is_top, tf.zeros_like(probs), probs)
    tiny = tf.constant(np.finfo(probs.dtype.as_numpy_dtype).tiny, probs.dtype)
    rest = tf.maximum(tf.reduce_sum(others, axis=-1, keepdims=True), tiny)
    return log_p, tf.where(is_top, tf.broadcast_to(rest, tf.shape(probs)), 1.0 - others)


def _label_log_not_p(y_pred, labels, from_logits):
    """``log(1 - p_y)`` for the label class only: ``log_sigmoid(logsumexp_{j != y} z_j - z_y)``."""
    if not from_logits:
        _, not_p = softmax_terms(y_pred, False)
        rank = labels.shape.rank
        return tf.math.log(tf.gather(not_p, labels, axis=rank, batch_dims=rank))
    is_label = tf.one_hot(labels, num_classes_of(y_pred), on_value=True, off_value=False)
    masked = tf.where(is_label, tf.fill(tf.shape(y_pred), tf.cast(MASKED, y_pred.dtype)), y_pred)
    z_y = tf.reduce_sum(tf.where(is_label, y_pred, tf.zeros_like(y_pred)), axis=-1)
    return tf.math.log_sigmoid(tf.reduce_logsumexp(masked, axis=-1) - z_y)


def _vector(values, num_classes, dtype, name):
    if values is None:
        return None
    return _common.class_vector(values, num_classes, dtype, name)


def sparse_categorical_focal_crossentropy(
    labels,
    y_pred,
    alpha=0.25,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    ignore_class=None,
    axis=-1,
):
    """Softmax focal loss with integer labels.

    ``loss = -sum_c alpha_c q_c (1 - p_c)^gamma_c log p_c`` with targets
    ``q = (1 - eps) onehot(y) + eps / C``; without smoothing this is
    ``alpha_y (1 - p_y)^gamma_y CE`` and only the label class's
    ``log(1 - p_y)`` is computed. ``alpha`` (None, scalar or length-C weights
    >= 0) and ``gamma`` (scalar or length-C, >= 0) may be per class. With
    ``gamma=0`` and ``alpha=None`` it is ``sparse_categorical_crossentropy``.

    Returns:
      Loss per row (labels' shape without a trailing 1), in ``y_pred``'s dtype;
      0 where the label equals ``ignore_class``; labels outside [0, C) raise in
      eager and graph mode and give NaN under XLA.
    """
    _common.check_values(alpha, "alpha", low=0.0)
    _common.check_values(gamma, "gamma", low=0.0)
    _common.check_values(label_smoothing, "label_smoothing", low=0.0, high=1.0, high_inclusive=False)
    y_pred, labels, safe, in_range, valid, out_dtype = sparse_targets(labels, y_pred, axis, ignore_class)
    alpha = _vector(alpha, y_pred.shape[-1], y_pred.dtype, "alpha")
    gamma = _vector(gamma, y_pred.shape[-1], y_pred.dtype, "gamma")
    rank = labels.shape.rank

    def per_label(vector):
        return vector if vector.shape.rank == 0 else tf.gather(vector, safe)

    if label_smoothing:
        log_p, not_p = softmax_terms(y_pred, from_logits)
        weighted = -log_p * tf.pow(not_p, gamma)
        if alpha is not None:
            weighted = weighted * alpha
        label_term = tf.gather(weighted, safe, axis=rank, batch_dims=rank)
        loss = (1.0 - label_smoothing) * label_term + label_smoothing * tf.reduce_mean(weighted, axis=-1)
    else:
        log_p = log_probabilities(y_pred, from_logits)
        nll = -tf.gather(log_p, safe, axis=rank, batch_dims=rank)
        loss = nll * _focal_factor(_label_log_not_p(y_pred, safe, from_logits), per_label(gamma))
        if alpha is not None:
            loss = loss * per_label(alpha)
    if valid is not None:
        loss = tf.where(valid, loss, tf.zeros_like(loss))
    loss = _common.nan_where_invalid(loss, in_range)
    return tf.cast(loss, out_dtype)


def categorical_focal_crossentropy(
    targets, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1
):
    """Softmax focal loss against one-hot or soft targets (rows summing to 1).

    ``loss = -sum_c alpha_c q_c (1 - p_c)^gamma_c log p_c`` with
    ``q = (1 - eps) targets + eps / C``: each class's cross-entropy term carries
    its own focal factor, which is Keras's ``categorical_focal_crossentropy``
    for any targets. ``alpha`` is a weight per class (None, a scalar applied to
    every class, or C values >= 0, e.g. from ``tfloss.class_weights``).
    Multi-hot rows are rejected in eager and graph mode, naming the sigmoid loss.
    """
    _common.check_values(alpha, "alpha", low=0.0)
    _common.check_values(gamma, "gamma", low=0.0)
    _common.check_values(label_smoothing, "label_smoothing", low=0.0, high=1.0, high_inclusive=False)
    targets, y_pred, rows_ok, out_dtype = dense_targets(
        targets, y_pred, axis, "a categorical (softmax) focal loss"
    )
    num_classes = num_classes_of(y_pred)
    targets = _common.smooth_one_hot_targets(targets, label_smoothing, num_classes)
    log_p, not_p = softmax_terms(y_pred, from_logits)
    gamma = _vector(gamma, y_pred.shape[-1], y_pred.dtype, "gamma")
    terms = targets * log_p * tf.pow(not_p, gamma)
    alpha = _vector(alpha, y_pred.shape[-1], y_pred.dtype, "alpha")
    if alpha is not None:
        terms = terms * alpha
    loss = _common.nan_where_invalid(-tf.reduce_sum(terms, axis=-1), rows_ok)
    return tf.cast(loss, out_dtype)


def sigmoid_focal_crossentropy(
    targets,
    y_pred,
    alpha=0.25,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    class_reduction="mean",
    axis=-1,
):
    """Sigmoid (one-vs-rest, multi-label) focal loss, reduced over ``axis``.

    Per output (Lin et al. 2017, eq. 5): ``alpha_t (1 - p_t)^gamma BCE(z, p)``
    with ``p_t = z p + (1 - z)(1 - p)`` and ``alpha_t = z alpha + (1 - z)(1 - alpha)``,
    targets smoothed towards 1/2 as ``z (1 - eps) + eps / 2``. The same
    definition as Keras's ``binary_focal_crossentropy`` and tensorflow-addons'
    ``sigmoid_focal_crossentropy``, soft targets included.
    ``1 - p_t = z sigmoid(-x) + (1 - z) sigmoid(x)``, with each sigmoid from
    its log-sigmoid: exact where ``1 - p_t`` is tiny.

    Args:
      alpha: None (no balancing), a scalar in [0, 1] or C values in [0, 1]:
        the weight of positives, ``1 - alpha`` that of negatives.
      gamma: scalar or C values >= 0.
      class_reduction: ``"mean"`` over ``axis`` (Keras's convention) or ``"sum"``
        (tensorflow-addons'); a rank-1 ``y_pred`` is not reduced.
    """
    if class_reduction not in CLASS_REDUCTIONS:
        raise ValueError(f"class_reduction must be one of {list(CLASS_REDUCTIONS)}; got {class_reduction!r}.")
    _common.check_values(alpha, "alpha", low=0.0, high=1.0)
    _common.check_values(gamma, "gamma", low=0.0)
    _common.check_values(label_smoothing, "label_smoothing", low=0.0, high=1.0, high_inclusive=False)
    y_pred, out_dtype = _common.to_compute(y_pred)
    targets = tf.cast(align_binary_targets(targets, y_pred), y_pred.dtype)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
    log_p, log_not_p = sigmoid_log_terms(y_pred, from_logits)
    bce = -(targets * log_p + (1.0 - targets) * log_not_p)
    # 1 - p_t = z (1 - p) + (1 - z) p: a sum of non-negative terms, with
    # 1 - p = exp(log(1 - p)) taken from the logits, never 1 minus p. It is
    # floored at the smallest normal number, below which the BCE it multiplies
    # (about the same size) is 0 in the same precision.
    tiny = tf.constant(np.finfo(y_pred.dtype.as_numpy_dtype).tiny, y_pred.dtype)
    not_pt = tf.maximum(targets * tf.exp(log_not_p) + (1.0 - targets) * tf.exp(log_p), tiny)
    num_outputs = y_pred.shape[axis] if y_pred.shape.rank > 1 else None
    gamma = _vector(gamma, num_outputs, y_pred.dtype, "gamma")
    loss = bce * tf.pow(not_pt, gamma)
    if alpha is not None:
        alpha = _vector(alpha, num_outputs, y_pred.dtype, "alpha")
        loss = loss * (targets * alpha + (1.0 - targets) * (1.0 - alpha))
    if y_pred.shape.rank > 1:
        reduce = tf.reduce_mean if class_reduction == "mean" else tf.reduce_sum
        loss = reduce(loss, axis=axis)
    return tf.cast(loss, out_dtype)
