"""Independent float64 NumPy references for the top-k losses (no TensorFlow here)."""

import itertools

import numpy as np


def _lse(v, axis=None):
    v = np.asarray(v, np.float64)
    m = np.max(v, axis=axis, keepdims=True)
    out = m + np.log(np.exp(v - m).sum(axis=axis, keepdims=True))
    return np.squeeze(out, axis) if axis is not None else out.item()


def brute_smooth(s, y, k, alpha, tau):
    """L_{k,tau} by enumerating all k-subsets (the paper's definition), and its
    gradient as the difference of the two subset distributions' marginals."""
    s = np.asarray(s, np.float64)
    subsets = list(itertools.combinations(range(len(s)), k))
    score = np.array([(alpha * (y not in c) + (s[list(c)] - s[y]).sum() / k) / tau for c in subsets])
    has_y = np.array([y in c for c in subsets])
    loss = tau * np.logaddexp(0.0, _lse(score[~has_y]) - _lse(score[has_y]))
    p_all = np.exp(score - _lse(score))
    p_y = np.zeros(len(score))
    p_y[has_y] = np.exp(score[has_y] - _lse(score[has_y]))
    grad = np.zeros(len(s))
    for c, a, b in zip(subsets, p_all, p_y):
        grad[list(c)] += (a - b) / k
    return loss, grad


def _log_esp_recursion(x, k):
    """log e_j(exp x), j = 0..k, over the last axis, by the sequential
    log-space recursion (float64)."""
    x = np.asarray(x, np.float64)
    logs = [np.zeros(x.shape[:-1])] + [np.full(x.shape[:-1], -np.inf)] * k
    for i in range(x.shape[-1]):
        for j in range(k, 0, -1):
            logs[j] = np.logaddexp(logs[j], x[..., i] + logs[j - 1])
    return np.stack(logs, -1)


def recursion_smooth(s, y, k, alpha, tau, with_grad=True):
    """L_{k,tau} for larger n by the float64 recursion; gradient (O(n^2 k), so
    optional) from the leave-one-out polynomials
    d log e_j / dx_i = exp(x_i) e_{j-1}(x without i) / e_j."""
    s = np.asarray(s, np.float64)
    n = len(s)
    others = np.delete(np.arange(n), y)
    x = (s[others] - s[y]) / (k * tau)
    log_e = _log_esp_recursion(x, k)
    z = alpha / tau + log_e[k] - log_e[k - 1]
    loss = tau * np.logaddexp(0.0, z)
    if not with_grad:
        return loss, None
    without = np.where(np.eye(len(x), dtype=bool), -np.inf, x[None, :])
    log_wo = _log_esp_recursion(without, k - 1)  # (n - 1, k): row i leaves x_i out
    d_k = np.exp(x + log_wo[:, k - 1] - log_e[k])
    d_prev = np.exp(x + log_wo[:, k - 2] - log_e[k - 1]) if k > 1 else np.zeros_like(x)
    dz_dx = d_k - d_prev
    sigma = np.exp(-np.logaddexp(0.0, -z))
    grad = np.zeros(n)
    grad[others] = sigma * dz_dx / k  # dL/ds_i = tau * sigma * dz/dx_i / (k tau)
    grad[y] = -grad[others].sum()  # the loss depends on s - s_y only
    return loss, grad


def hard_reference(s, y, k, alpha):
    s = np.asarray(s, np.float64)
    others = np.delete(s, y)
    kth = np.sort(others)[::-1][k - 1]
    return max(alpha + (kth - s[y]) / k, 0.0)
