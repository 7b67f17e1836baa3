"""Independent float64 NumPy references for the metrics (no TensorFlow here)."""

import numpy as np


def top_k_hits(labels, scores, k):
    """in_top_k's rule: a hit when fewer than k scores are strictly higher than
    the label's; rows holding a non-finite score are misses."""
    scores = np.asarray(scores, np.float64).reshape(-1, np.shape(scores)[-1])
    labels = np.asarray(labels).reshape(-1)
    own = scores[np.arange(len(labels)), labels]
    higher = (scores > own[:, None]).sum(-1)
    finite = np.isfinite(scores).all(-1)
    return ((higher < k) & finite).astype(np.float64)


def weighted_mean(values, weights=None):
    values = np.asarray(values, np.float64).reshape(-1)
    if weights is None:
        return values.mean() if values.size else 0.0
    weights = np.asarray(weights, np.float64).reshape(-1)
    return (values * weights).sum() / weights.sum() if weights.sum() else 0.0


def bin_of(values, num_bins):
    """Right-closed equal-width bins ((i-1)/M, i/M]; 0 in the first. The product
    is rounded to float32 first, as the metric computes it in float32, so a
    value on a bin edge lands in the same bin."""
    scaled = (np.asarray(values, np.float32) * np.float32(num_bins)).astype(np.float64)
    return np.clip(np.ceil(scaled).astype(int) - 1, 0, num_bins - 1)


def ece_top_label(targets, probs, num_bins, weights=None):
    """Top-label ECE from (N, C) targets and probabilities, by explicit loops over bins."""
    targets = np.asarray(targets, np.float64)
    probs = np.asarray(probs, np.float64)
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, np.float64)
    conf = probs.max(-1)
    correct = targets[np.arange(len(probs)), probs.argmax(-1)]
    bins = bin_of(probs.astype(np.float32).max(-1), num_bins)
    total = 0.0
    for b in range(num_bins):
        inside = bins == b
        n_b = w[inside].sum()
        if n_b > 0:
            acc_b = (w[inside] * correct[inside]).sum() / n_b
            conf_b = (w[inside] * conf[inside]).sum() / n_b
            total += n_b / w.sum() * abs(acc_b - conf_b)
    return total


def ece_class_wise(targets, probs, num_bins, weights=None):
    """Mean over classes of the ECE of each class's probability against its target mass."""
    targets = np.asarray(targets, np.float64)
    probs = np.asarray(probs, np.float64)
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, np.float64)
    per_class = []
    for c in range(probs.shape[1]):
        bins = bin_of(probs[:, c].astype(np.float32), num_bins)
        total = 0.0
        for b in range(num_bins):
            inside = bins == b
            n_b = w[inside].sum()
            if n_b > 0:
                gap = (w[inside] * (targets[inside, c] - probs[inside, c])).sum() / n_b
                total += n_b / w.sum() * abs(gap)
        per_class.append(total)
    return float(np.mean(per_class))


def psnr(a, b, max_val):
    mse = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean(axis=(-3, -2, -1))
    return 10 * np.log10(max_val**2 / mse)
