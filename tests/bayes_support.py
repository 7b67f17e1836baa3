"""Shared pieces of the Bayesian tests: float64 references and a deterministic KL layer."""

import math

import numpy as np
import tensorflow as tf

import tfloss
from tfloss import _keras

keras = _keras.keras


def softplus(x):
    x = np.asarray(x, np.float64)
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def gaussian_kl(loc, scale, prior_scale):
    """sum KL(N(loc, scale^2) || N(0, prior_scale^2)) in float64."""
    m, s, p = np.asarray(loc, np.float64), np.asarray(scale, np.float64), float(prior_scale)
    return float(np.sum(np.log(p / s) + (s**2 + m**2) / (2 * p**2) - 0.5))


def normal_laplace_kl(m, s, b):
    """KL(N(m, s^2) || Laplace(0, b)) in closed form (float64)."""
    phi = 0.5 * math.erfc(m / s / math.sqrt(2))  # P(w < 0)
    e_abs = s * math.sqrt(2 / math.pi) * math.exp(-(m**2) / (2 * s**2)) + m * (1 - 2 * phi)
    return e_abs / b + math.log(2 * b) - 0.5 * math.log(2 * math.pi * math.e * s**2)


class PointKLDense(keras.layers.Layer):
    """Deterministic dense layer with a KL through the protocol: its kernel is
    the mean of N(kernel, 0.1^2) against a N(0, 1) prior. Lets a test compute
    the exact loss and gradient the ELBO should give."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), self.units),
            initializer=keras.initializers.RandomNormal(stddev=0.5, seed=3), trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        return tf.matmul(inputs, tf.cast(self.kernel, inputs.dtype))

    def kl_divergence(self):
        loc = tf.convert_to_tensor(self.kernel)
        return tfloss.bayes.gaussian_kl(loc, tf.fill(tf.shape(loc), 0.1), 1.0)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def set_variational(layer, rng, rho_low=-4.0, rho_high=1.0):
    """Random loc / rho for a tfloss Gaussian layer; returns (loc, scale) float64."""
    loc = rng.normal(size=layer.kernel_loc.shape).astype(np.float32)
    rho = rng.uniform(rho_low, rho_high, size=layer.kernel_rho.shape).astype(np.float32)
    layer.kernel_loc.assign(loc)
    layer.kernel_rho.assign(rho)
    return loc.astype(np.float64), softplus(rho) + tfloss.bayes.layers.SCALE_FLOOR
