"""Independent float64 NumPy references for the losses (no TensorFlow here)."""

import numpy as np


def log_softmax(z):
    z = np.asarray(z, np.float64)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


def log_probs(y_pred, from_logits):
    y_pred = np.asarray(y_pred, np.float64)
    if from_logits:
        return log_softmax(y_pred)
    p = y_pred / y_pred.sum(-1, keepdims=True)
    return np.log(np.clip(p, 1e-7, 1 - 1e-7))


def one_hot(labels, num_classes):
    return np.eye(num_classes)[np.asarray(labels)]


def categorical_ce(targets, y_pred, from_logits=True, label_smoothing=0.0, class_weight=None):
    """-sum_c w_c q_c log p_c per row, and d/dlogits (from_logits only)."""
    q = np.asarray(targets, np.float64)
    c = q.shape[-1]
    q = q * (1 - label_smoothing) + label_smoothing / c
    w = np.ones(c) if class_weight is None else np.asarray(class_weight, np.float64)
    lp = log_probs(y_pred, from_logits)
    loss = -(w * q * lp).sum(-1)
    grad = None
    if from_logits:
        p = np.exp(lp)
        grad = (w * q).sum(-1, keepdims=True) * p - w * q
    return loss, grad


def sparse_ce(labels, y_pred, from_logits=True, label_smoothing=0.0, class_weight=None, ignore_class=None):
    labels = np.asarray(labels)
    c = np.asarray(y_pred).shape[-1]
    valid = np.ones(labels.shape, bool) if ignore_class is None else labels != ignore_class
    safe = np.where(valid, labels, 0)
    loss, grad = categorical_ce(one_hot(safe, c), y_pred, from_logits, label_smoothing, class_weight)
    loss = np.where(valid, loss, 0.0)
    if grad is not None:
        grad = np.where(valid[..., None], grad, 0.0)
    return loss, grad


def sigmoid_ce(targets, logits, label_smoothing=0.0, pos_weight=None, from_logits=True):
    z = np.asarray(targets, np.float64)
    x = np.asarray(logits, np.float64)
    z = z * (1 - label_smoothing) + 0.5 * label_smoothing
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    if from_logits:
        log_p = -np.logaddexp(0, -x)
        log_not_p = -np.logaddexp(0, x)
    else:
        p = np.clip(x, 1e-7, 1 - 1e-7)
        log_p, log_not_p = np.log(p), np.log1p(-p)
    elem = -(pw * z * log_p + (1 - z) * log_not_p)
    sig = 1 / (1 + np.exp(-x))
    grad = (-pw * z * (1 - sig) + (1 - z) * sig) / x.shape[-1]
    return elem.mean(-1), grad
