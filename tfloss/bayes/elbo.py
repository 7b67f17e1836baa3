"""The ELBO in ``model.fit``: a model wrapper that adds ``beta_t * KL`` once.

``ELBOModel(network, kl_weight)`` wraps any Keras model. ``fit`` /
``evaluate`` then optimise and report, per step ``t``::

    loss_t = NLL_t + beta_t * KL + other_t

* ``NLL_t``: the compiled loss (``compile(loss=...)``) of the batch;
* ``KL``: :func:`tfloss.bayes.total_kl` of the network, read from the layers'
  posteriors and priors;
* ``beta_t``: the schedule (``tfloss.bayes.PerExample(N)`` etc.) at the
  model's own step counter ``kl_step`` (advanced once per training step,
  saved with the model, so a reloaded model resumes its schedule);
* ``other_t``: ``model.losses`` **except** those added by the layers that
  contribute to ``KL`` (TFP's layers ``add_loss`` their KL: it is left out
  here, so the KL is counted exactly once); weight regularizers and other
  ``add_loss`` terms stay.

The history shows ``loss`` (the total), ``nll``, ``kl`` and ``kl_weight``.

Under ``tf.distribute`` each replica's ``NLL`` is already divided by the number
of replicas ``R`` by Keras (gradients are summed across replicas); the KL
term, a property of the shared weights rather than of the batch, is divided by
``R`` too, so the summed gradient is that of ``NLL + beta_t * KL`` on one
device: neither ``R`` times the KL nor ``1/R`` of it.

For a custom training loop, :func:`elbo_terms` gives the same terms.
"""

import tensorflow as tf

from tfloss import _keras
from tfloss.bayes import kl as kl_lib
from tfloss.bayes import schedules

keras = _keras.keras


def _replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def _scale_for_replicas(value):
    """Divide by the number of replicas, as Keras does with each replica's loss."""
    replicas = _replicas()
    return value / tf.cast(replicas, value.dtype) if replicas > 1 else value


def elbo_terms(nll, model, kl_weight, step, mc_samples=kl_lib.MC_SAMPLES):
    """``{"loss", "nll", "kl", "kl_weight"}`` with ``loss = nll + beta_t * KL``.

    For custom loops: ``nll`` is the batch loss (a scalar), ``model`` the
    network whose layers carry the KL, ``kl_weight`` a schedule and ``step``
    the 0-based step. Under ``tf.distribute`` divide the returned ``loss`` by
    the number of replicas if ``nll`` was (as ``tf.nn.compute_average_loss``
    does with ``global_batch_size``).
    """
    schedule = schedules.get(kl_weight)
    beta = schedule(step)
    kl = kl_lib.total_kl(model, mc_samples)
    nll = tf.cast(nll, tf.float32)
    return {"loss": nll + beta * kl, "nll": nll, "kl": kl, "kl_weight": beta}


def _step_counter(model):
    aggregation = "only_first_replica" if _keras.IS_KERAS_3 else tf.VariableAggregation.ONLY_FIRST_REPLICA
    return model.add_weight(
        name="kl_step", shape=(), dtype="int64", initializer="zeros", trainable=False, aggregation=aggregation
    )


@_keras.register
class ELBOModel(keras.Model):
    """Wrap ``network`` so that ``fit`` minimises ``NLL + beta_t * KL``.

    Args:
      network: a Keras model (or layer) built from Bayesian layers: tfloss's
        ``DenseReparameterization`` / ``DenseFlipout``, TFP's layers on
        tf_keras, or layers with a ``kl_divergence()`` method.
      kl_weight: a schedule (``PerExample(N)``, ``PerBatch(M)``,
        ``BlundellPi(M)``, ``LinearWarmup(S, base)``, ``Constant(b)``) or a
        number (constant beta).
      mc_samples: Monte-Carlo samples for layers whose KL has no closed form.

    Example::

        elbo = tfloss.bayes.ELBOModel(net, kl_weight=tfloss.bayes.PerExample(len(x)))
        elbo.compile("adam", loss=tfloss.SparseCategoricalCrossentropy(from_logits=True))
        elbo.fit(x, y)   # history: loss, nll, kl, kl_weight
    """

    def __init__(self, network, kl_weight, mc_samples=kl_lib.MC_SAMPLES, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(network, _keras.Layer):
            raise TypeError(f"ELBOModel: network must be a Keras model or layer; got {type(network).__name__}.")
        if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 1:
            raise ValueError(f"ELBOModel: mc_samples must be a positive integer; got {mc_samples!r}.")
        self.network = network
        self.kl_weight = schedules.get(kl_weight)
        self.mc_samples = mc_samples
        self.kl_step = _step_counter(self)
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.kl_weight_tracker = keras.metrics.Mean(name="kl_weight")
        self._advance_step = False

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def kl(self):
        """Total KL of the network (float32 scalar)."""
        return kl_lib.total_kl(self.network, self.mc_samples)

    def current_kl_weight(self):
        return self.kl_weight(self.kl_step)

    def _kl_term(self, advance):
        step = tf.convert_to_tensor(self.kl_step)
        beta = self.kl_weight(step)
        kl = self.kl()
        if advance:
            self.kl_step.assign_add(tf.constant(1, tf.int64))
        return beta, kl

    def _other_losses(self):
        """``self.losses`` minus the KL that TFP-style layers add themselves."""
        kl_ids = {id(t) for layer in kl_lib.kl_layers(self.network) for t in layer.losses}
        return [t for t in self.losses if id(t) not in kl_ids]

    def _track(self, nll, kl, beta):
        self.nll_tracker.update_state(nll)
        self.kl_tracker.update_state(kl)
        self.kl_weight_tracker.update_state(beta)

    if _keras.IS_KERAS_3:

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            nll = self._compile_loss(y, y_pred, sample_weight) if self._compile_loss is not None else None
            nll = tf.zeros((), tf.float32) if nll is None else tf.cast(nll, tf.float32)
            beta, kl = self._kl_term(advance=training)
            total = nll + _scale_for_replicas(beta * kl)
            for loss in self._other_losses():
                total = total + tf.cast(self._aggregate_additional_loss(loss), tf.float32)
            self._track(nll * tf.cast(_replicas(), tf.float32), kl, beta)
            return total

    else:

        def train_step(self, data):
            # compute_loss has no `training` argument on tf_keras; this flag is
            # read while train_step is traced.
            self._advance_step = True
            try:
                return super().train_step(data)
            finally:
                self._advance_step = False

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            beta, kl = self._kl_term(advance=self._advance_step)
            extra = [tf.cast(t, tf.float32) for t in self._other_losses()] + [beta * kl]
            # LossesContainer divides the NLL and the summed extra terms by the replica count.
            total = self.compiled_loss(y, y_pred, sample_weight, regularization_losses=extra)
            nll = (total - _scale_for_replicas(tf.add_n(extra))) * tf.cast(_replicas(), total.dtype)
            self._track(nll, kl, beta)
            return total

    @property
    def metrics(self):
        base = list(super().metrics)
        own = [self.nll_tracker, self.kl_tracker, self.kl_weight_tracker]
        return base + [m for m in own if all(m is not b for b in base)]

    def gradient_norms(self, x, y, loss=None, sample_weight=None):
        """See :func:`kl_gradient_norms`; the schedule is read at ``kl_step``."""
        return kl_gradient_norms(
            self.network, x, y, loss or self.loss, self.kl_weight, self.kl_step, sample_weight, self.mc_samples
        )

    def get_config(self):
        return {
            "name": self.name,
            "network": _keras.serialize(self.network),
            "kl_weight": _keras.serialize(self.kl_weight),
            "mc_samples": self.mc_samples,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        network = _deserialize_network(config.pop("network"))
        kl_weight = schedules.get(config.pop("kl_weight"))
        return cls(network, kl_weight, **config)


def _deserialize_network(config):
    # tf_keras's SavedModel loader deserializes in its legacy mode, which does
    # not know the new format's "Functional" / "Sequential" class names.
    custom = {"Functional": keras.Model, "Sequential": keras.Sequential}
    return keras.saving.deserialize_keras_object(config, custom_objects=custom)


def kl_gradient_norms(network, x, y, loss, kl_weight, step=0, sample_weight=None, mc_samples=kl_lib.MC_SAMPLES):
    """Gradient norms of the NLL term and of the scaled KL term on one batch.

    Returns a dict of floats: ``nll`` and ``scaled_kl`` (global L2 norms over
    the trainable weights of ``NLL`` and ``beta_t * KL``), ``ratio``
    (``scaled_kl / nll``: far above 1 means the KL dominates the update and the
    posterior is being pulled to the prior), plus the values ``nll_value``,
    ``kl_value`` and ``kl_weight``.
    """
    loss_fn = keras.losses.get(loss)
    if loss_fn is None:
        raise ValueError("kl_gradient_norms: give `loss` (or compile the ELBOModel first).")
    weights = network.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        y_pred = network(x, training=True)
        nll = tf.cast(loss_fn(y, y_pred, sample_weight), tf.float32)
        beta = schedules.get(kl_weight)(step)
        kl = kl_lib.total_kl(network, mc_samples)
        scaled = beta * kl
    g_nll = [g for g in tape.gradient(nll, weights) if g is not None]
    g_kl = [g for g in tape.gradient(scaled, weights) if g is not None]
    del tape
    n_nll = float(tf.linalg.global_norm(g_nll)) if g_nll else 0.0
    n_kl = float(tf.linalg.global_norm(g_kl)) if g_kl else 0.0
    return {
        "nll": n_nll,
        "scaled_kl": n_kl,
        "ratio": n_kl / n_nll if n_nll > 0 else float("inf"),
        "nll_value": float(nll),
        "kl_value": float(kl),
        "kl_weight": float(beta),
    }
