"""Float64 NumPy references for the focal losses (no TensorFlow here).

Written as the papers state them: probabilities and powers, in float64. The
implementation works from logits without forming 1 - p; these do not.
"""

import numpy as np

import reference as ref

def sigmoid64(x):
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def ref_sigmoid_focal(z, x, alpha=0.25, gamma=2.0, label_smoothing=0.0, class_reduction="mean", from_logits=True):
    """Lin et al. 2017 eq. 5 per output: alpha_t (1 - p_t)^gamma BCE, p_t = z p + (1 - z)(1 - p)."""
    z = np.asarray(z, np.float64) * (1 - label_smoothing) + 0.5 * label_smoothing
    x = np.asarray(x, np.float64)
    if from_logits:
        p, not_p = sigmoid64(x), sigmoid64(-x)
        log_p, log_not_p = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    else:
        p = np.clip(x, 1e-7, 1 - 1e-7)
        not_p = 1 - p
        log_p, log_not_p = np.log(p), np.log(not_p)
    bce = -(z * log_p + (1 - z) * log_not_p)
    one_minus_pt = z * not_p + (1 - z) * p
    a = 1.0 if alpha is None else z * np.asarray(alpha) + (1 - z) * (1 - np.asarray(alpha))
    elem = a * one_minus_pt ** np.asarray(gamma, np.float64) * bce
    return elem.mean(-1) if class_reduction == "mean" else elem.sum(-1)


def ref_softmax_focal(q, y_pred, alpha=0.25, gamma=2.0, label_smoothing=0.0, from_logits=True):
    """-sum_c alpha_c q_c (1 - p_c)^gamma_c log p_c, with 1 - p_c summed from the
    other classes' probabilities (no subtraction from 1)."""
    q = np.asarray(q, np.float64)
    c = q.shape[-1]
    q = q * (1 - label_smoothing) + label_smoothing / c
    if from_logits:
        log_p = ref.log_softmax(y_pred)
        p = np.exp(log_p)
        others = [np.delete(p, k, axis=-1).sum(-1) for k in range(c)]
        not_p = np.stack(others, -1)
    else:
        p = np.asarray(y_pred, np.float64)
        p = np.clip(p / p.sum(-1, keepdims=True), 1e-7, 1 - 1e-7)
        log_p, not_p = np.log(p), 1 - p
    a = 1.0 if alpha is None else np.asarray(alpha, np.float64)
    return -(a * q * not_p ** np.asarray(gamma, np.float64) * log_p).sum(-1)


def ref_sparse_focal(labels, y_pred, ignore_class=None, **kw):
    labels = np.asarray(labels)
    c = np.asarray(y_pred).shape[-1]
    valid = np.ones(labels.shape, bool) if ignore_class is None else labels != ignore_class
    loss = ref_softmax_focal(ref.one_hot(np.where(valid, labels, 0), c), y_pred, **kw)
    return np.where(valid, loss, 0.0)


def tfa_sigmoid_focal(y_true, logits, alpha=0.25, gamma=2.0):
    """The tensorflow-addons convention, re-derived from its documentation
    (``tfa.losses.SigmoidFocalCrossEntropy``, Lin et al. 2017 eq. 5): the
    element-wise ``alpha_t (1 - p_t)^gamma CE`` *summed* over the last axis,
    with ``alpha_t = y alpha + (1 - y)(1 - alpha)`` and CE the sigmoid
    cross-entropy from logits."""
    y = np.asarray(y_true, np.float64)
    x = np.asarray(logits, np.float64)
    ce = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    prob = sigmoid64(x)
    p_t = y * prob + (1 - y) * (1 - prob)
    alpha_t = y * alpha + (1 - y) * (1 - alpha)
    return np.sum(alpha_t * (1 - p_t) ** gamma * ce, axis=-1)


def numeric_grad(fn, x, h=1e-6):
    """Central differences of ``sum(fn(x))`` in float64."""
    x = np.asarray(x, np.float64)
    grad = np.zeros_like(x)
    flat = grad.reshape(-1)
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = h
        step = step.reshape(x.shape)
        flat[i] = (fn(x + step).sum() - fn(x - step).sum()) / (2 * h)
    return grad
