"""Calibration and proper scoring rules as streaming metrics (math in
``tfloss.ops.calibration``): expected calibration error with its reliability
diagram, negative log-likelihood and the Brier score."""

import importlib.util

import numpy as np
import tensorflow as tf

from tfloss import _keras
from tfloss.metrics import _base
from tfloss.ops import calibration as ops


@_keras.register
class ExpectedCalibrationError(_base.Metric):
    """Streaming expected calibration error over equal-width confidence bins.

    Top-label ECE (default): each sample's confidence is its largest class
    probability; bins ``((i-1)/M, i/M]`` collect weight, confidence and
    accuracy sums, and ``ECE = sum_b (n_b / N) |accuracy_b - confidence_b|``
    (Naeini et al., 2015; Guo et al., 2017). ``class_wise=True`` bins every
    class's probability separately and averages the per-class ECEs (Kull et
    al., 2019); it needs ``num_classes`` (the state is a (C, M) table).

    The state is three summed per-bin tables (``bin_counts``,
    ``bin_confidence``, ``bin_accuracy``), filled by segment sums: exact under
    XLA and across replicas, and what ``reliability_diagram`` draws.

    ``y_pred``: probabilities (or logits with ``from_logits=True``) shaped
    (B, C) / (B, T, C), or (B, 1) for a binary (sigmoid) model. ``y_true``:
    class ids (B,) / (B, 1), one-hot or soft targets shaped like ``y_pred``,
    or 0/1 targets for a binary model. Lower is better.

    Args:
      num_bins: number of equal-width bins (default 15).
      class_wise: class-wise instead of top-label ECE.
      num_classes: number of classes (2 for a binary model); required with
        ``class_wise=True``, otherwise ignored.
      from_logits: whether ``y_pred`` are logits.
      name, dtype: as for any Keras metric.
    """

    direction = _base.DOWN

    def __init__(self, num_bins=15, class_wise=False, num_classes=None, from_logits=False,
                 name="expected_calibration_error", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_bins = _base.check_positive_int(num_bins, "num_bins")
        self.class_wise = bool(class_wise)
        self.from_logits = bool(from_logits)
        if self.class_wise:
            if num_classes is None:
                raise ValueError("num_classes is required with class_wise=True (the state is a table of "
                                 "num_classes x num_bins); got None.")
            self.num_classes = _base.check_positive_int(num_classes, "num_classes")
            if self.num_classes < 2:
                raise ValueError(f"num_classes must be at least 2 (2 for a binary model); got {num_classes!r}.")
            shape = (self.num_classes, self.num_bins)
        else:
            self.num_classes = None if num_classes is None else _base.check_positive_int(num_classes, "num_classes")
            shape = (self.num_bins,)
        self.bin_counts = _keras.add_state(self, name="bin_counts", shape=shape)
        self.bin_confidence = _keras.add_state(self, name="bin_confidence", shape=shape)
        self.bin_accuracy = _keras.add_state(self, name="bin_accuracy", shape=shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        mask = _keras.get_mask(y_pred)
        y_pred = tf.convert_to_tensor(y_pred)
        weights = None
        if sample_weight is not None or mask is not None:
            per_sample = tf.zeros(tf.shape(y_pred)[:-1], tf.float32)
            per_sample = tf.ensure_shape(per_sample, y_pred.shape[:-1])
            weights = _base.sample_weights_like(per_sample, sample_weight, mask)
        if self.class_wise:
            classes = max(int(y_pred.shape[-1]), 2) if y_pred.shape[-1] is not None else None
            if classes != self.num_classes:
                raise ValueError(
                    f"ExpectedCalibrationError(class_wise=True, num_classes={self.num_classes}) got y_pred with "
                    f"{y_pred.shape[-1]} classes (a binary model with one output counts as 2)."
                )
            sums = ops.class_wise_bin_sums(y_true, y_pred, self.num_bins, self.from_logits, weights)
        else:
            sums = ops.top_label_bin_sums(y_true, y_pred, self.num_bins, self.from_logits, weights)
        for state, value in zip((self.bin_counts, self.bin_confidence, self.bin_accuracy), sums):
            state.assign_add(value)

    def result(self):
        return ops.expected_calibration_error(
            tf.convert_to_tensor(self.bin_counts),
            tf.convert_to_tensor(self.bin_confidence),
            tf.convert_to_tensor(self.bin_accuracy),
        )

    def get_config(self):
        config = super().get_config()
        config.update(num_bins=self.num_bins, class_wise=self.class_wise, num_classes=self.num_classes,
                      from_logits=self.from_logits)
        return config


def reliability_diagram(metric, ax=None, draw=True, title=None):
    """Per-bin arrays of an ``ExpectedCalibrationError`` metric, drawn if
    matplotlib is installed.

    Returns a dict of NumPy arrays: ``edges`` (M + 1), ``counts`` (summed
    weights per bin), ``confidence`` and ``accuracy`` (per-bin means, NaN for
    empty bins), ``gap`` (accuracy - confidence), ``ece`` (float), and
    ``axes`` (the matplotlib Axes drawn on, or None). For a class-wise metric
    the per-bin arrays are (C, M), one row per class; the drawing then pools
    the classes (sums over them).

    Args:
      metric: an ``ExpectedCalibrationError`` after some ``update_state`` calls.
      ax: optional matplotlib Axes to draw on (a new figure otherwise).
      draw: set False to get the arrays only.
      title: optional title; the default names the metric and its ECE.
    """
    if not isinstance(metric, ExpectedCalibrationError):
        raise TypeError(f"reliability_diagram needs an ExpectedCalibrationError metric; got {type(metric).__name__}.")
    counts = np.asarray(metric.bin_counts.numpy(), np.float64)
    conf_sums = np.asarray(metric.bin_confidence.numpy(), np.float64)
    acc_sums = np.asarray(metric.bin_accuracy.numpy(), np.float64)
    edges = np.linspace(0.0, 1.0, metric.num_bins + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(counts > 0, conf_sums / counts, np.nan)
        accuracy = np.where(counts > 0, acc_sums / counts, np.nan)
    out = {
        "edges": edges,
        "counts": counts,
        "confidence": confidence,
        "accuracy": accuracy,
        "gap": accuracy - confidence,
        "ece": float(metric.result()),
        "axes": None,
    }
    if draw and importlib.util.find_spec("matplotlib") is not None:
        out["axes"] = _draw(ax, edges, counts, conf_sums, acc_sums, out["ece"], title or metric.name)
    return out


def _draw(ax, edges, counts, conf_sums, acc_sums, ece, title):
    if counts.ndim == 2:  # class-wise: pool the classes for one picture
        counts, conf_sums, acc_sums = counts.sum(0), conf_sums.sum(0), acc_sums.sum(0)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 4.5))
    centers = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    filled = counts > 0
    accuracy = np.divide(acc_sums, counts, out=np.zeros_like(acc_sums), where=filled)
    confidence = np.divide(conf_sums, counts, out=np.zeros_like(conf_sums), where=filled)
    ax.bar(centers[filled], accuracy[filled], width=width, edgecolor="black", color="tab:blue", label="accuracy")
    ax.bar(centers[filled], (confidence - accuracy)[filled], bottom=accuracy[filled], width=width,
           color="tab:red", alpha=0.3, edgecolor="tab:red", hatch="//", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} (ECE = {ece:.3f})")
    ax.legend(loc="upper left", fontsize="small")
    return ax


@_keras.register
class NegativeLogLikelihood(_base.MeanMetric):
    """Streaming mean negative log-likelihood of the true class (log loss).

    ``-sum_c q_c log p_c`` per sample, from logits (log-softmax / log-sigmoid,
    exact for any finite logits) or probabilities (normalised and clipped to
    [1e-7, 1 - 1e-7], as Keras's cross-entropy). Labels: class ids, one-hot or
    soft targets, or 0/1 targets for a (B, 1) binary model. Lower is better.
    """

    direction = _base.DOWN

    def __init__(self, from_logits=False, name="negative_log_likelihood", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = bool(from_logits)

    def values(self, y_true, y_pred):
        return ops.negative_log_likelihood(y_true, y_pred, self.from_logits)

    def get_config(self):
        config = super().get_config()
        config["from_logits"] = self.from_logits
        return config


@_keras.register
class BrierScore(_base.MeanMetric):
    """Streaming mean Brier score: ``sum_c (p_c - q_c)^2`` per sample for a
    softmax model (range [0, 2]); ``(p - z)^2`` for a (B, 1) binary model
    (range [0, 1]), as scikit-learn's ``brier_score_loss``. Labels as for
    ``NegativeLogLikelihood``. Lower is better.
    """

    direction = _base.DOWN

    def __init__(self, from_logits=False, name="brier_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = bool(from_logits)

    def values(self, y_true, y_pred):
        return ops.brier_score(y_true, y_pred, self.from_logits)

    def get_config(self):
        config = super().get_config()
        config["from_logits"] = self.from_logits
        return config
