"""Class-imbalance helpers: per-class weights and prior-probability output biases.

``class_weights`` gives weights usable as a focal loss's ``alpha`` (softmax
losses) or a cross-entropy's ``class_weight``; ``prior_bias`` and
``PriorBiasInitializer`` start a classifier's outputs at the class priors, as
Lin et al. 2017 (section 4.1, "Initialization") do for focal loss so that the
many easy negatives do not swamp the first steps of training.
"""

import numbers

import numpy as np
import tensorflow as tf

from tfloss import _keras

METHODS = ("inverse", "inverse_sqrt", "effective_number")
ACTIVATIONS = ("sigmoid", "softmax")


def _counts(counts_or_labels, num_classes):
    data = counts_or_labels
    if isinstance(data, tf.Tensor) or hasattr(data, "numpy") and not isinstance(data, np.ndarray):
        data = data.numpy()
    data = np.asarray(data)
    if data.ndim == 2:
        # one-hot or multi-hot labels (N, C): positives per class
        counts = data.astype(np.float64).sum(axis=0)
        if num_classes is not None and counts.size != num_classes:
            raise ValueError(
                f"counts_or_labels: labels of shape {data.shape} have {counts.size} classes, "
                f"but num_classes={num_classes}."
            )
        return counts
    if data.ndim != 1 or data.size == 0:
        raise ValueError(
            "counts_or_labels must be per-class counts (C,), integer labels (N,) with num_classes, "
            f"or one-hot labels (N, C); got shape {data.shape}."
        )
    if num_classes is None:
        counts = data.astype(np.float64)
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise ValueError("counts_or_labels: per-class counts must be finite and >= 0.")
        return counts
    if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int; got {num_classes!r}.")
    labels = data
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("counts_or_labels: with num_classes, a 1-D array holds integer labels.")
        labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"counts_or_labels: labels must lie in [0, {num_classes}); got min {labels.min()}, max {labels.max()}."
        )
    return np.bincount(labels, minlength=num_classes).astype(np.float64)


def class_weights(counts_or_labels, method="inverse", beta=0.999, num_classes=None):
    """Per-class weights from class sizes, normalised to sum to C.

    Args:
      counts_or_labels: per-class counts (C,); or integer labels (N,) together
        with ``num_classes``; or one-hot / multi-hot labels (N, C).
      method: ``"inverse"`` (w_c ~ 1 / n_c), ``"inverse_sqrt"`` (w_c ~ 1 /
        sqrt(n_c)) or ``"effective_number"``: Cui et al. 2019, "Class-Balanced
        Loss Based on Effective Number of Samples" (arXiv:1901.05555), w_c ~
        (1 - beta) / (1 - beta^n_c), the inverse of the effective number of
        samples ``E_n = (1 - beta^n) / (1 - beta)``. beta -> 0 gives equal
        weights, beta -> 1 gives ``"inverse"``.
      beta: in [0, 1), for ``"effective_number"`` only.
      num_classes: the number of classes when passing integer labels.

    Returns:
      A list of C floats, mean 1 (sum C): pass it as ``alpha`` of
      ``CategoricalFocalCrossentropy`` / ``SparseCategoricalFocalCrossentropy``,
      as ``class_weight`` of the tfloss cross-entropies, or as
      ``dict(enumerate(weights))`` to ``model.fit(class_weight=...)``.
      Every class must occur at least once (a weight for an unseen class would
      be infinite).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}.")
    if method == "effective_number" and (
        not isinstance(beta, numbers.Real) or isinstance(beta, bool) or not 0.0 <= beta < 1.0
    ):
        raise ValueError(f"beta must be a number in [0, 1); got {beta!r}.")
    counts = _counts(counts_or_labels, num_classes)
    empty = np.flatnonzero(counts <= 0)
    if empty.size:
        raise ValueError(
            f"counts_or_labels: classes {empty.tolist()[:10]} have no samples; every class needs a count > 0."
        )
    if method == "inverse":
        raw = 1.0 / counts
    elif method == "inverse_sqrt":
        raw = 1.0 / np.sqrt(counts)
    else:
        # (1 - beta^n) written as -expm1(n log beta): accurate for beta near 1.
        raw = 1.0 if beta == 0.0 else (1.0 - beta) / -np.expm1(counts * np.log(beta))
        raw = np.broadcast_to(raw, counts.shape)
    weights = raw * (counts.size / raw.sum())
    return [float(w) for w in weights]


def _bias_from_prior(prior, activation):
    prior = np.asarray(prior, np.float64)
    if not np.all(np.isfinite(prior)) or np.any(prior <= 0.0) or np.any(prior >= 1.0):
        raise ValueError(f"prior: every entry must be a probability in (0, 1); got {prior.tolist()!r}.")
    if activation == "sigmoid":
        # Lin et al. 2017: b = -log((1 - pi) / pi), so sigmoid(b) = pi.
        return np.log(prior) - np.log1p(-prior)
    if prior.ndim != 1:
        raise ValueError("prior: a softmax output needs one prior per class (a list), summing to 1.")
    if abs(prior.sum() - 1.0) > 1e-6:
        raise ValueError(f"prior: softmax class priors must sum to 1; got a sum of {prior.sum():.6g}.")
    # softmax(log pi) = pi; centred so the biases sum to 0 (softmax is shift-invariant).
    log_prior = np.log(prior)
    return log_prior - log_prior.mean()


def prior_bias(frequencies, activation="sigmoid"):
    """The output-bias vector that makes an untrained classifier predict the class priors.

    Args:
      frequencies: per-class frequencies in (0, 1) (fractions of samples in
        which each class is positive); for ``activation="softmax"`` they are
        class proportions and are normalised to sum to 1.
      activation: ``"sigmoid"`` (per-class ``log(pi / (1 - pi))``, Lin et al.
        2017) or ``"softmax"`` (``log pi``, centred).

    Returns:
      A list of C floats, e.g. for ``keras.initializers.Constant`` or
      ``tfloss.prior_bias_initializer(frequencies)``.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}; got {activation!r}.")
    freq = np.asarray(frequencies, np.float64)
    if freq.ndim != 1 or freq.size == 0:
        raise ValueError(f"frequencies must be a 1-D list with one entry per class; got shape {freq.shape}.")
    if activation == "softmax":
        if np.any(freq <= 0) or not np.all(np.isfinite(freq)):
            raise ValueError("frequencies: every class needs a finite frequency > 0.")
        freq = freq / freq.sum()
    return [float(b) for b in _bias_from_prior(freq, activation)]


@_keras.register
class PriorBiasInitializer(_keras.keras.initializers.Initializer):
    """Bias initializer that starts each output at foreground probability ``prior``.

    Lin et al. 2017 (section 4.1) initialise the last layer's bias of a
    sigmoid classifier to ``-log((1 - pi) / pi)`` with ``pi = 0.01``, so at the
    start every output predicts 0.01 and the loss of the many negatives does
    not dominate. ``prior`` may also be a list, one prior per class (from
    class frequencies); ``activation="softmax"`` takes class proportions.

    Usage: ``keras.layers.Dense(C, bias_initializer=tfloss.prior_bias_initializer(0.01))``.
    """

    def __init__(self, prior=0.01, activation="sigmoid"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}; got {activation!r}.")
        if isinstance(prior, bool) or prior is None:
            raise ValueError(f"prior must be a probability in (0, 1) or a list of them; got {prior!r}.")
        array = np.asarray(prior, np.float64)
        if array.ndim > 1:
            raise ValueError(f"prior must be a scalar or a 1-D list; got shape {array.shape}.")
        self._bias = _bias_from_prior(array, activation)
        self.prior = float(array) if array.ndim == 0 else [float(p) for p in array]
        self.activation = activation

    def __call__(self, shape, dtype=None, **kwargs):
        shape = tuple(int(d) for d in shape)
        bias = np.asarray(self._bias)
        if bias.ndim == 1 and (len(shape) != 1 or shape[0] != bias.size):
            raise ValueError(
                f"PriorBiasInitializer: {bias.size} per-class priors cannot initialise a weight of shape {shape}."
            )
        dtype = tf.as_dtype(dtype or "float32")
        return tf.constant(np.broadcast_to(bias, shape), dtype=dtype)

    def get_config(self):
        return {"prior": self.prior, "activation": self.activation}


# Keras spells initializer shortcuts in lowercase too (``keras.initializers.constant``).
prior_bias_initializer = PriorBiasInitializer
