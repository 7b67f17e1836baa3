"""Top-k losses: the hard and the smooth top-k SVM of Berrada, Zisserman and Kumar.

Reference: L. Berrada, A. Zisserman, M. P. Kumar, "Smooth Loss Functions for
Deep Top-k Classification", ICLR 2018 (arXiv:1802.07595): the top-k SVM loss
``l_k``, its rewriting with k-subset averages, the smooth loss ``L_{k,tau}``
and its expression through elementary symmetric polynomials.

For scores ``s`` (n classes), label ``y``, margin ``alpha`` and ``k``, the
paper's rescaled hard top-k SVM loss (the form where every k-subset is scored
by its *mean* score, the one it smooths) is

    l_k(s, y) = max( max_{Y in C_k} [alpha 1(y not in Y) + mean_{j in Y} s_j]
                     - max_{Y in C_k, y in Y} mean_{j in Y} s_j , 0 )
              = max( alpha + (s_{\\y,[k]} - s_y) / k , 0 ),

with ``s_{\\y,[k]}`` the k-th largest score other than the label's. Replacing
both maxima by temperature-``tau`` log-sum-exps gives the smooth loss
``L_{k,tau}``; summing the k-subsets that contain ``y`` and those that do not
separately, with ``x_i = s_i / (k tau)`` over the classes ``i != y``,

    L_{k,tau}(s, y) = tau * softplus( alpha / tau + log e_k(exp x)
                                      - log e_{k-1}(exp x) - s_y / (k tau) ),

where ``e_j`` is the j-th elementary symmetric polynomial (the paper writes
the same quantity as a ratio of sums over subsets and evaluates ``e_j`` as
the coefficients of ``prod_i (1 + exp(x_i) t)``). For k = 1, alpha = 0,
tau = 1 this is exactly softmax cross-entropy; as tau -> 0 it tends to
``l_k``.

The scores are centred at the label, ``x_i = (s_i - s_y) / (k tau)``, so
the label term is exactly 0 and the loss keeps its relative accuracy for
scores of scale 1e3 (the difference is formed before the division). How
``log e_j`` is computed, and the hand-written gradient: see
``tfloss.ops.symmetric``.

Ties are harmless: a tied element lands in ``H`` or in ``L`` and the sum over
the split is the same symmetric function, value and gradient alike. The
label and absent terms use finite stand-ins, never -inf, so gradients stay
finite. No switch to the hard loss is made at small tau: the computation
above stays accurate there, and a switch would add a jump of up to
``tau * log C(n, k)`` where it fired.
"""

import tensorflow as tf

from tfloss.ops import _common
# check_k is also reached as ops.topk.check_k by tfloss.losses.topk
from tfloss.ops.symmetric import _static_classes, _through_split, _top, check_k


def _labels_and_rows(labels, scores):
    """Integer labels (R,) and score rows (R, n) from sparse (B,), (B, 1) or
    one-hot (B, n) labels; checks the label range in eager and graph mode."""
    labels = tf.convert_to_tensor(labels)
    n = _static_classes(scores)
    if labels.shape.rank == scores.shape.rank and labels.shape[-1] == n and n > 1:
        onehot = tf.cast(labels, scores.dtype)
        tf.debugging.Assert(
            tf.reduce_all(tf.logical_and(tf.equal(tf.reduce_sum(onehot, -1), 1.0), tf.equal(tf.reduce_max(onehot, -1), 1.0))),
            ["y_true: one-hot labels for a top-k loss must have exactly one 1 a row (soft or multi-hot "
             "targets are not supported; pass integer labels)."],
            name="check_one_hot",
        )
        labels = tf.argmax(onehot, axis=-1, output_type=tf.int32)
    else:
        labels = _common.sparse_labels(labels, scores)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    safe, in_range = _common.check_label_range(labels, n)
    return safe, in_range, tf.reshape(scores, [-1, n])


def _prepare(labels, scores, k):
    scores, out_dtype = _common.to_compute(scores)
    check_k(k, _static_classes(scores))
    batch_shape = tf.shape(scores)[:-1]
    safe, in_range, rows = _labels_and_rows(labels, scores)
    is_label = tf.equal(tf.range(rows.shape[-1], dtype=tf.int32), safe[:, None])
    # a masked sum rather than a gather: exact (one non-zero term), and its
    # gradient is a select rather than a scatter
    label_score = tf.reduce_sum(tf.where(is_label, rows, tf.zeros_like(rows)), axis=-1)
    return rows, label_score, is_label, in_range, batch_shape, out_dtype


def _kth_largest(rows, exclude, k):
    """The k-th largest entry of each row of ``rows`` outside ``exclude``; its
    gradient goes to that one position (the first, among ties)."""
    n = rows.shape[-1]

    @tf.custom_gradient
    def kth(rows):
        values, positions = _top(rows, k, exclude)
        at = positions[:, k - 1 : k]

        def grad(upstream):
            hit = tf.equal(tf.range(n, dtype=tf.int32), at)
            return tf.where(hit, upstream[:, None], tf.zeros_like(rows))

        return values[:, k - 1], grad

    return kth(rows)


def _finish(loss, in_range, batch_shape, out_dtype):
    loss = _common.nan_where_invalid(loss, in_range)
    return tf.cast(tf.reshape(loss, batch_shape), out_dtype)


def smooth_topk_svm(labels, scores, k=5, alpha=1.0, tau=1.0):
    """Smooth top-k SVM loss ``L_{k,tau}`` of Berrada et al. (ICLR 2018), one value per row.

    Args:
      labels: integer labels (B,) or (B, 1), or one-hot rows (B, n).
      scores: float scores (B, n), used as given (no softmax: ``from_logits``
        has no meaning here). Half-precision inputs are computed in float32.
      k: the k of top-k (static int, 1 <= k < n).
      alpha: margin (>= 0); tau: temperature (> 0).
    Returns:
      Loss per row (B,) in ``scores``' dtype. Out-of-range labels raise in
      eager and graph mode and give NaN under XLA.
    """
    _common.check_values(alpha, "alpha", low=0.0)
    _common.check_values(tau, "tau", low=0.0, low_inclusive=False)
    rows, label_score, is_label, in_range, batch_shape, out_dtype = _prepare(labels, scores, k)
    scale = 1.0 / (k * tau)
    x = (rows - label_score[:, None]) * tf.constant(scale, rows.dtype)

    def head(combine, prefix, shift):
        # |H| = k - 1 here, so the sums of H left out of combine(k) and
        # combine(k - 1) are the same and cancel exactly.
        a, t = (tf.cast(v, shift.dtype) for v in (alpha, tau))
        return t * tf.nn.softplus(a / t + shift + (combine(k) - combine(k - 1)))

    loss = _through_split(x, is_label, k, k - 1, head)
    return _finish(loss, in_range, batch_shape, out_dtype)


def hard_topk_svm(labels, scores, k=5, alpha=1.0):
    """Hard top-k SVM loss ``max(alpha + (s_{\\y,[k]} - s_y) / k, 0)`` per row.

    The paper's rescaled form (k-subsets scored by their mean), the tau -> 0
    limit of ``smooth_topk_svm``; Lapin et al.'s unscaled top-k hinge is k
    times this with margin k * alpha. The k-th largest other score is found
    as in ``smooth_topk_svm`` (column-block maxima, then max-and-mask over
    the k best blocks); its gradient goes to one element (ties are broken by
    the lowest index). Args as ``smooth_topk_svm``.
    """
    _common.check_values(alpha, "alpha", low=0.0)
    rows, label_score, is_label, in_range, batch_shape, out_dtype = _prepare(labels, scores, k)
    loss = tf.nn.relu(alpha + (_kth_largest(rows, is_label, k) - label_score) / k)
    return _finish(loss, in_range, batch_shape, out_dtype)
