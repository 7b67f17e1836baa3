"""What every tfloss metric shares: summed state, sample weights, direction.

State lives only in variables made by ``_keras.add_state`` (SUM aggregation),
so under ``tf.distribute`` the replicas' partial sums add up to the sums a
single device would hold, and ``result()`` divides the totals.
"""

import numbers

import tensorflow as tf

from tfloss import _keras

UP, DOWN = "up", "down"


class Metric(_keras.Metric):
    """Base of tfloss metrics.

    ``direction`` ("up": higher is better, "down": lower is better) is what
    Keras 3 callbacks read (as ``_direction``) when ``mode="auto"``. tf_keras
    callbacks guess from the monitored name instead (``max`` only for names
    ending in ``acc``, ``accuracy`` or ``auc``), so the default names of
    higher-is-better tfloss metrics end in ``accuracy`` where that is honest;
    for PSNR and SSIM on tf_keras pass ``mode=tfloss.metrics.monitor_mode(m)``.
    """

    direction = None

    def __init__(self, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = self.direction

    def reset_state(self):
        # tf_keras's default assigns a scalar 0, which fails for per-bin tables.
        for variable in self.variables:
            variable.assign(tf.zeros(variable.shape, variable.dtype))

    def get_config(self):
        config = super().get_config()
        config["name"] = self.name
        return config


class MeanMetric(Metric):
    """Weighted mean of per-sample (or per-timestep) values: two summed scalars.

    Subclasses implement ``values(y_true, y_pred)``, returning one float32 value
    per sample, shaped (B,) or (B, T).
    """

    def __init__(self, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = _keras.add_state(self, name="total")
        self.count = _keras.add_state(self, name="count")

    def values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        mask = _keras.get_mask(y_pred)
        values = self.values(y_true, y_pred)
        total, count = weighted_sums(values, sample_weight, mask)
        self.total.assign_add(total)
        self.count.assign_add(count)

    def result(self):
        return tf.math.divide_no_nan(tf.convert_to_tensor(self.total), tf.convert_to_tensor(self.count))


def sample_weights_like(values, sample_weight, mask=None):
    """float32 weights broadcast to ``values`` (B,) or (B, T), or None.

    Accepts a scalar, (B,), (B, 1), (B, T) or (B, T, 1); per-sample weights
    against per-timestep values get trailing axes (never (B,) against (B, 1)).
    A Keras mask of the values' shape multiplies the weights.
    """
    if sample_weight is None and mask is None:
        return None
    if sample_weight is None:
        weights = tf.ones_like(values)
    else:
        weights = tf.cast(tf.convert_to_tensor(sample_weight), tf.float32)
    rank, target = weights.shape.rank, values.shape.rank
    if rank is None or target is None:
        raise ValueError("sample_weight and the metric values must have a known rank.")
    if rank == target + 1 and weights.shape[-1] == 1:
        weights = tf.squeeze(weights, axis=-1)
        rank -= 1
    if 1 <= rank < target:
        weights = tf.reshape(weights, tf.concat([tf.shape(weights), [1] * (target - rank)], 0))
    if rank > target:
        raise ValueError(
            f"sample_weight of shape {weights.shape} has more axes than the per-sample values "
            f"{values.shape}; give one weight per sample (or per timestep)."
        )
    weights = tf.broadcast_to(weights, tf.shape(values))
    if mask is not None:
        weights = weights * tf.cast(tf.reshape(mask, tf.shape(values)), tf.float32)
    return weights


def weighted_sums(values, sample_weight=None, mask=None):
    """(sum of w * value, sum of w). Entries with weight 0 contribute exactly 0,
    even when their value is not finite (padding must not poison the mean)."""
    values = tf.cast(values, tf.float32)
    weights = sample_weights_like(values, sample_weight, mask)
    if weights is None:
        return tf.reduce_sum(values), tf.cast(tf.size(values), tf.float32)
    weighted = tf.where(tf.not_equal(weights, 0.0), values * weights, 0.0)
    return tf.reduce_sum(weighted), tf.reduce_sum(weights)


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return int(value)


def check_positive_number(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0 or value != value:
        raise ValueError(f"{name} must be a positive number; got {value!r}.")
    return float(value)


def monitor_mode(metric):
    """``"max"`` or ``"min"`` for a callback's ``mode`` watching ``metric``."""
    direction = getattr(metric, "_direction", None)
    if direction not in (UP, DOWN):
        raise ValueError(f"monitor_mode: {metric!r} has no direction ('up' or 'down').")
    return "max" if direction == UP else "min"
