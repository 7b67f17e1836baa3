"""Top-k accuracy and its complements (math in ``tfloss.ops.accuracy``)."""

from tfloss import _keras
from tfloss.metrics import _base
from tfloss.ops import accuracy as ops


@_keras.register
class TopKAccuracy(_base.MeanMetric):
    """Fraction of samples whose true class is among the k highest scores.

    One class for both label formats, told apart by shape (see
    ``tfloss.ops.accuracy.is_dense_labels``):

    * class ids shaped (B,), (B, 1), (B, T) or (B, T, 1), integer or float;
    * one-hot or soft targets shaped like ``y_pred`` (B, C) / (B, T, C), any
      dtype; the true class is their argmax (first on ties), as in Keras's
      ``TopKCategoricalAccuracy``.

    Ties follow ``tf.math.in_top_k`` (and so Keras): a sample is a hit when
    fewer than k classes score strictly higher than its true class, so
    classes tied at the boundary are all in the top k. Rows with a NaN or
    infinite score are misses. ``sample_weight`` is per sample (or per
    timestep); a Keras mask on ``y_pred`` is honoured.

    Args:
      k: positive int, how many top classes count (default 5, as Keras).
      name: default ``"top_{k}_accuracy"``.
      dtype: dtype of the result.
    """

    direction = _base.UP

    def __init__(self, k=5, name=None, dtype=None):
        k = _base.check_positive_int(k, "k")
        super().__init__(name=name or self._default_name(k), dtype=dtype)
        self.k = k

    @staticmethod
    def _default_name(k):
        return f"top_{k}_accuracy"

    def values(self, y_true, y_pred):
        return ops.top_k_hits(y_true, y_pred, self.k)

    def get_config(self):
        config = super().get_config()
        config["k"] = self.k
        return config


@_keras.register
class TopKError(TopKAccuracy):
    """1 - ``TopKAccuracy(k)``: fraction of samples whose true class is not in
    the top k (same label formats, ties and weights). Lower is better."""

    direction = _base.DOWN

    @staticmethod
    def _default_name(k):
        return f"top_{k}_error"

    def values(self, y_true, y_pred):
        return 1.0 - ops.top_k_hits(y_true, y_pred, self.k)


@_keras.register
class ClassificationError(TopKError):
    """Fraction of misclassified samples: ``TopKError(k=1)``.

    With ties for the highest score every tied class counts as the
    prediction (the ``in_top_k`` rule), so a row of equal scores is correct.
    """

    def __init__(self, name="classification_error", dtype=None):
        super().__init__(k=1, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.pop("k")
        return config
