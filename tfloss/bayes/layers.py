"""Mean-field Gaussian dense layers for Keras 3 (also usable on tf_keras).

Each weight of the kernel has a posterior ``q(w) = N(mu, sigma^2)`` with
``sigma = softplus(rho) + 1e-6`` and a prior ``p(w) = N(0, prior_scale^2)``;
the bias is a point estimate (no KL), as in TFP's layers' defaults. The KL
term is returned by :meth:`kl_divergence` (the protocol of
``tfloss.bayes.kl``), analytically and in float32, and is never added with
``add_loss``: the ELBO is assembled once, by ``tfloss.bayes.ELBOModel`` or by
the user's loop, with an explicit KL weight.

Randomness is stateless (``tf.random.stateless_*``, Philox, the same numbers
with and without XLA) keyed by the layer's
``seed`` and a step counter variable, so the layers compile under XLA and a
saved model resumes its noise sequence. The counter's aggregation is
``ONLY_FIRST_REPLICA``: under ``tf.distribute`` every replica draws the same
weight noise, as a single device would for the whole batch.

Under ``mixed_float16`` / ``mixed_bfloat16`` the variables stay float32 and are
read without autocasting; the sampled kernel is cast to the compute dtype only
for the matmul, and the KL is computed in float32 from the float32 variables.
"""

import math
import random

import tensorflow as tf

from tfloss import _keras

keras = _keras.keras

SCALE_FLOOR = 1e-6  # keeps sigma > 0 when softplus(rho) underflows


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}.")
    return float(value)


def _add_float32_weight(layer, name, shape, initializer, trainable=True):
    """A float32 variable read without mixed-precision autocasting."""
    if _keras.IS_KERAS_3:
        return layer.add_weight(
            name=name, shape=shape, initializer=initializer, dtype="float32", trainable=trainable, autocast=False
        )
    return layer.add_weight(
        name=name,
        shape=shape,
        initializer=initializer,
        dtype="float32",
        trainable=trainable,
        experimental_autocast=False,
    )


def _add_counter(layer, name):
    if _keras.IS_KERAS_3:
        return layer.add_weight(
            name=name, shape=(), initializer="zeros", dtype="int64", trainable=False, aggregation="only_first_replica"
        )
    return layer.add_weight(
        name=name,
        shape=(),
        initializer="zeros",
        dtype="int64",
        trainable=False,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


def gaussian_kl(loc, scale, prior_scale):
    """Sum over entries of KL(N(loc, scale^2) || N(0, prior_scale^2)), float32.

    KL = log(p / s) + (s^2 + m^2) / (2 p^2) - 1/2 per entry (closed form for
    two univariate Gaussians).
    """
    loc = tf.cast(loc, tf.float32)
    scale = tf.cast(scale, tf.float32)
    p = tf.constant(prior_scale, tf.float32)
    terms = tf.math.log(p) - tf.math.log(scale) + (tf.square(scale) + tf.square(loc)) / (2.0 * p * p) - 0.5
    return tf.reduce_sum(terms)


class _GaussianDense(_keras.Layer):
    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        prior_scale=1.0,
        posterior_scale_init=0.01,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive integer; got {units!r}.")
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.prior_scale = _check_positive(prior_scale, "prior_scale")
        self.posterior_scale_init = _check_positive(posterior_scale_init, "posterior_scale_init")
        if seed is None:
            seed = random.randrange(2**31)  # drawn once, then kept in the config
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer or None; got {seed!r}.")
        self.seed = seed

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"{type(self).__name__} needs a known last input dimension; got shape {input_shape}.")
        in_dim = int(in_dim)
        # rho such that softplus(rho) = posterior_scale_init
        rho = math.log(math.expm1(self.posterior_scale_init))
        self.kernel_loc = _add_float32_weight(
            self, "kernel_loc", (in_dim, self.units), keras.initializers.GlorotUniform(seed=self.seed)
        )
        self.kernel_rho = _add_float32_weight(self, "kernel_rho", (in_dim, self.units), keras.initializers.Constant(rho))
        self.bias = _add_float32_weight(self, "bias", (self.units,), "zeros") if self.use_bias else None
        self.noise_step = _add_counter(self, "noise_step")
        super().build(input_shape)

    def kernel_scale(self):
        return tf.nn.softplus(tf.convert_to_tensor(self.kernel_rho)) + SCALE_FLOOR

    def kl_divergence(self):
        """KL(q(kernel) || p(kernel)) in float32 (the ``tfloss.bayes`` protocol)."""
        return gaussian_kl(tf.convert_to_tensor(self.kernel_loc), self.kernel_scale(), self.prior_scale)

    def _next_seed(self):
        step = tf.convert_to_tensor(self.noise_step)
        self.noise_step.assign_add(tf.constant(1, tf.int64))
        return tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])

    def _finish(self, outputs):
        if self.bias is not None:
            outputs = outputs + tf.cast(tf.convert_to_tensor(self.bias), outputs.dtype)
        return self.activation(outputs) if self.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            prior_scale=self.prior_scale,
            posterior_scale_init=self.posterior_scale_init,
            seed=self.seed,
        )
        return config


@_keras.register
class DenseReparameterization(_GaussianDense):
    """Dense layer with a mean-field Gaussian kernel, one kernel sample per call.

    ``y = x @ (mu + sigma * eps) + b``, ``eps ~ N(0, I)``: the reparameterization
    estimator of Blundell et al. (2015), "Weight Uncertainty in Neural Networks".
    Every call draws a new sample (also at inference: average several calls
    for a predictive distribution).

    Args:
      units: output width.
      activation: Keras activation (name or callable).
      use_bias: add a point-estimate bias.
      prior_scale: standard deviation of the N(0, prior_scale^2) prior.
      posterior_scale_init: initial posterior standard deviation.
      seed: integer seed of the noise sequence (drawn at random when None and
        then stored in the config).
    """

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        scale = self.kernel_scale()
        eps = tf.random.stateless_normal(tf.shape(scale), seed=self._next_seed(), dtype=tf.float32, alg="philox")
        kernel = tf.convert_to_tensor(self.kernel_loc) + scale * eps
        return self._finish(tf.matmul(x, tf.cast(kernel, x.dtype)))


@_keras.register
class DenseFlipout(_GaussianDense):
    """Dense layer with a mean-field Gaussian kernel and Flipout noise.

    ``y = x @ mu + ((x * s_in) @ (sigma * eps)) * s_out + b`` with random signs
    ``s_in``, ``s_out`` per example: pseudo-independent weight perturbations
    per example at the cost of one extra matmul (Wen et al. 2018, "Flipout:
    Efficient Pseudo-Independent Weight Perturbations on Mini-Batches", eq. 4).
    Arguments as :class:`DenseReparameterization`.
    """

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        scale = self.kernel_scale()
        # three independent streams from one key (not seed + 1, which is another layer's seed)
        seeds = tf.random.experimental.stateless_split(self._next_seed(), num=3, alg="philox")
        eps = tf.random.stateless_normal(tf.shape(scale), seed=seeds[0], dtype=tf.float32, alg="philox")
        lead = tf.shape(x)[:-1]
        signs_in = _rademacher(tf.concat([lead, tf.shape(scale)[:1]], 0), seeds[1], x.dtype)
        signs_out = _rademacher(tf.concat([lead, [self.units]], 0), seeds[2], x.dtype)
        mean = tf.matmul(x, tf.cast(tf.convert_to_tensor(self.kernel_loc), x.dtype))
        perturbation = tf.matmul(x * signs_in, tf.cast(scale * eps, x.dtype)) * signs_out
        return self._finish(mean + perturbation)


def _rademacher(shape, seed, dtype):
    bits = tf.random.stateless_uniform(shape, seed=seed, minval=0, maxval=2, dtype=tf.int32, alg="philox")
    return tf.cast(2 * bits - 1, dtype)
