"""Bayesian layers and the ELBO: KL read from the layers, scaled by a named schedule.

* :func:`model_kl` / :func:`total_kl`: the KL of a model, from each layer's
  posterior and prior (tfloss layers, TFP layers on tf_keras, or any layer with
  a ``kl_divergence()`` method); :func:`kl_report` prints it per layer.
* Schedules for the KL weight beta_t: :class:`PerExample`, :class:`PerBatch`,
  :class:`BlundellPi`, :class:`LinearWarmup`, :class:`Constant`.
* :class:`ELBOModel`: ``fit`` minimises ``NLL + beta_t * KL`` and reports the
  terms apart; :func:`kl_gradient_norms`: is the KL too large?
* :class:`DenseReparameterization`, :class:`DenseFlipout`: mean-field Gaussian
  layers for Keras 3 (and tf_keras).

TensorFlow Probability is imported only when a TFP layer or distribution is met.
"""

from tfloss.bayes.elbo import ELBOModel, elbo_terms, kl_gradient_norms  # noqa: F401
from tfloss.bayes.kl import MC_SAMPLES, LayerKL, distribution_kl, kl_layers, layer_kl, model_kl, total_kl  # noqa: F401
from tfloss.bayes.layers import DenseFlipout, DenseReparameterization, gaussian_kl  # noqa: F401
from tfloss.bayes.report import kl_report, kl_rows  # noqa: F401
from tfloss.bayes.schedules import BlundellPi, Constant, KLSchedule, LinearWarmup, PerBatch, PerExample  # noqa: F401
