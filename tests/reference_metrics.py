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
