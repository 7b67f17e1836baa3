"""KL-weight schedules: the beta_t in ``loss_t = NLL_t + beta_t * KL``.

``NLL_t`` is the compiled Keras loss of the mini-batch, i.e. the **mean** over
its ``B`` examples of ``-log p(y_n | x_n, w)`` with ``w ~ q``, and ``KL`` is
KL(q(w) || p(w)) of the whole network. ``t`` is the 0-based training step
(one per mini-batch); with ``M`` mini-batches per epoch the batch index within
the epoch is ``i = (t mod M) + 1``. ``T`` is a tempering factor (default 1).

=================  ==============================================  ==========================================
schedule           beta_t                                          objective per example
=================  ==============================================  ==========================================
``PerExample(N)``  ``T / N``                                       ``mean_n nll_n + (T/N) KL`` = -ELBO / N
                                                                   (TFP's examples; the unbiased ELBO).
``PerBatch(M)``    ``T / M``                                       ``mean_n nll_n + (T/M) KL``: Blundell
                                                                   et al. 2015 eq. 8, whose likelihood is
                                                                   *summed* over the batch; with Keras's
                                                                   mean NLL the KL weighs ``B = N/M`` times
                                                                   more than in -ELBO / N.
``BlundellPi(M)``  ``T * 2^(M-i) / (2^M - 1)``                     ``mean_n nll_n + beta_t KL``: eq. 9; the
                                                                   weights sum to T over an epoch, the
                                                                   first batches carry most of the KL.
``Constant(b)``    ``b``                                           ``mean_n nll_n + b KL``.
``LinearWarmup``   ``min(1, (t + 1) / S) * base_t``                the base objective with its KL weight
                                                                   ramped up linearly over S steps
                                                                   (Sønderby et al. 2016, "Ladder VAEs").
=================  ==============================================  ==========================================

Tempering: ``T < 1`` ("cold") multiplies the KL by ``T``; this is the
variational counterpart of raising the likelihood to the power ``1/T``
(``q`` fitted to ``p(D | w)^(1/T) p(w)``, then the objective multiplied by
``T``), the likelihood-tempered posterior of Wenzel et al. 2020, "How Good is
the Bayes Posterior in Deep Neural Networks Really?".

Schedules are stateless functions of ``t``; the step counter lives in the
model (``ELBOModel.kl_step``), so a saved model resumes its schedule.
Each is a registered Keras-serializable object (``get_config`` /
``from_config``).
"""

import math
import numbers

import tensorflow as tf

from tfloss import _keras


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return float(value)


class KLSchedule:
    """Base class: ``schedule(step) -> beta`` (float32 scalar tensor)."""

    def __init__(self, temperature=1.0):
        self.temperature = _non_negative(temperature, "temperature")

    def __call__(self, step):
        step = tf.cast(tf.convert_to_tensor(step), tf.int64)
        return tf.cast(self.temperature, tf.float32) * self.weight(step)

    def weight(self, step):
        """beta_t before tempering."""
        raise NotImplementedError

    def get_config(self):
        return {"temperature": self.temperature}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@_keras.register
class Constant(KLSchedule):
    """beta_t = T * value."""

    def __init__(self, value=1.0, temperature=1.0):
        super().__init__(temperature)
        self.value = _non_negative(value, "value")

    def weight(self, step):
        return tf.constant(self.value, tf.float32)

    def get_config(self):
        return {"value": self.value, **super().get_config()}


@_keras.register
class PerExample(KLSchedule):
    """beta_t = T / N (N training examples): ``mean NLL + KL/N`` = -ELBO / N."""

    def __init__(self, num_examples, temperature=1.0):
        super().__init__(temperature)
        self.num_examples = _positive_int(num_examples, "num_examples")

    def weight(self, step):
        return tf.constant(1.0 / self.num_examples, tf.float32)

    def get_config(self):
        return {"num_examples": self.num_examples, **super().get_config()}


@_keras.register
class PerBatch(KLSchedule):
    """beta_t = T / M (M mini-batches per epoch; Blundell et al. 2015, eq. 8)."""

    def __init__(self, num_batches, temperature=1.0):
        super().__init__(temperature)
        self.num_batches = _positive_int(num_batches, "num_batches")

    def weight(self, step):
        return tf.constant(1.0 / self.num_batches, tf.float32)

    def get_config(self):
        return {"num_batches": self.num_batches, **super().get_config()}


@_keras.register
class BlundellPi(KLSchedule):
    """beta_t = T * pi_i, pi_i = 2^(M-i) / (2^M - 1), i = (t mod M) + 1.

    Blundell et al. 2015, eq. 9. Computed as ``2^-i / (1 - 2^-M)`` so large M
    does not overflow; for M > ~150 the late batches' weights underflow to 0
    in float32, as their exact values (< 2^-149) would.
    """

    def __init__(self, num_batches, temperature=1.0):
        super().__init__(temperature)
        self.num_batches = _positive_int(num_batches, "num_batches")

    def weight(self, step):
        m = self.num_batches
        i = tf.math.floormod(step, m) + 1
        log2 = tf.cast(-i, tf.float64) - tf.math.log1p(-tf.constant(2.0, tf.float64) ** -m) / math.log(2.0)
        return tf.cast(tf.pow(tf.constant(2.0, tf.float64), log2), tf.float32)

    def get_config(self):
        return {"num_batches": self.num_batches, **super().get_config()}


@_keras.register
class LinearWarmup(KLSchedule):
    """beta_t = T * min(1, (t + 1) / S) * base_t (Sønderby et al. 2016).

    ``base`` is another schedule (default ``Constant(1.0)``); the first step
    already has weight 1/S, step S-1 and later the full base weight.
    """

    def __init__(self, warmup_steps, base=None, temperature=1.0):
        super().__init__(temperature)
        self.warmup_steps = _positive_int(warmup_steps, "warmup_steps")
        base = get(base) if base is not None else Constant(1.0)
        self.base = base

    def weight(self, step):
        ramp = tf.minimum(1.0, tf.cast(step + 1, tf.float32) / float(self.warmup_steps))
        return ramp * self.base(step)

    def get_config(self):
        return {"warmup_steps": self.warmup_steps, "base": _keras.serialize(self.base), **super().get_config()}


SCHEDULES = {"per_example": PerExample, "per_batch": PerBatch, "blundell_pi": BlundellPi, "constant": Constant}


def get(identifier):
    """A schedule from an instance, a number (``Constant``) or a serialized config."""
    if isinstance(identifier, KLSchedule):
        return identifier
    if isinstance(identifier, numbers.Real) and not isinstance(identifier, bool):
        return Constant(float(identifier))
    if isinstance(identifier, dict):
        obj = _keras.deserialize(identifier)
        if isinstance(obj, KLSchedule):
            return obj
    raise ValueError(
        f"kl_weight must be a KLSchedule (PerExample, PerBatch, BlundellPi, LinearWarmup, Constant), "
        f"a number or a serialized schedule; got {identifier!r}."
    )
