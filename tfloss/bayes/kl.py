"""The KL term of the ELBO, read from the layers' posteriors and priors.

:func:`model_kl` walks a model (nested models and layers included) and sums,
per layer, KL(q || p) computed from the layer's own posterior and prior. It
never reads ``model.losses``, so it works where ``losses`` is unavailable or
holds tensors from another graph, and it is the single place the ELBO takes
its KL from.

Layers recognised, in this order (a recognised layer is not searched further):

1. **The protocol.** Any layer with a method ``kl_divergence(self)`` returning
   a scalar tensor (its KL, unscaled). tfloss's ``DenseReparameterization``
   and ``DenseFlipout`` implement it; so can users' own layers::

       class MyBayesLayer(keras.layers.Layer):
           def kl_divergence(self):
               return tf.reduce_sum(...)  # KL(q || p) of this layer's weights

2. **TFP's layers on tf_keras** (``Dense``/``Conv1D``/``Conv2D``/``Conv3D``
   ``Reparameterization`` and ``Flipout``, ``DenseLocalReparameterization``):
   KL(``kernel_posterior`` || ``kernel_prior``) + KL(``bias_posterior`` ||
   ``bias_prior``), each term only where the layer itself would add one (its
   ``*_divergence_fn`` is not None and both distributions exist). The
   layer's ``*_divergence_fn`` is not called: TFP's examples put the 1/N
   scaling inside it, and scaling here belongs to the KL-weight schedule.
3. **TFP's ``DenseVariational``**: KL(posterior || prior) of the
   distributions its ``make_posterior_fn`` / ``make_prior_fn`` models return;
   the layer's ``kl_weight`` is likewise left to the schedule. With its
   default ``kl_use_exact=False`` the layer's own ``add_loss`` term is a
   one-sample estimate, so it equals this KL only in expectation (with
   ``kl_use_exact=True``, exactly).

KL is analytic wherever TFP registers a closed form for the pair (e.g.
Normal/Normal, Independent of those); otherwise a Monte-Carlo estimate
``mean_s [log q(w_s) - log p(w_s)]`` with ``w_s ~ q`` and ``mc_samples``
samples (default :data:`MC_SAMPLES` = 16).

TFP is imported only when a TFP layer or distribution is met, so models built
from tfloss's own layers never import it.
"""

import collections

import tensorflow as tf

MC_SAMPLES = 16

LayerKL = collections.namedtuple("LayerKL", ["name", "layer", "kl"])


def kl_layers(model):
    """Layers of ``model`` (itself included) that contribute a KL, in walk order."""
    found, seen = [], set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if _kind(layer) is not None:
            found.append(layer)
            return
        for child in _children(layer):
            visit(child)

    visit(model)
    return found


def model_kl(model, mc_samples=MC_SAMPLES, seed=None):
    """Total KL of ``model`` and its per-layer breakdown.

    Returns:
      ``(total, parts)``: ``total`` a float32 scalar tensor (0 when no layer
      has a KL); ``parts`` a list of ``LayerKL(name, layer, kl)``.
    """
    parts = [LayerKL(layer.name, layer, layer_kl(layer, mc_samples, seed)) for layer in kl_layers(model)]
    total = tf.add_n([p.kl for p in parts]) if parts else tf.zeros((), tf.float32)
    return total, parts


def total_kl(model, mc_samples=MC_SAMPLES, seed=None):
    """Sum of :func:`model_kl`'s parts, a float32 scalar tensor."""
    return model_kl(model, mc_samples, seed)[0]


def layer_kl(layer, mc_samples=MC_SAMPLES, seed=None):
    """KL(q || p) of one layer as a float32 scalar tensor (see module docs)."""
    kind = _kind(layer)
    if kind == "protocol":
        return _as_scalar(layer.kl_divergence(), layer)
    if kind == "tfp":
        terms = []
        for part in ("kernel", "bias"):
            q, p = getattr(layer, part + "_posterior", None), getattr(layer, part + "_prior", None)
            if q is not None and p is not None and getattr(layer, part + "_divergence_fn", None) is not None:
                terms.append(distribution_kl(q, p, mc_samples, seed))
        return tf.add_n(terms) if terms else tf.zeros((), tf.float32)
    if kind == "tfp_variational":
        # the posterior/prior models ignore their input (they hold the variables)
        dummy = tf.zeros((1, 1), layer.dtype)
        return distribution_kl(layer._posterior(dummy), layer._prior(dummy), mc_samples, seed)
    raise TypeError(f"layer_kl: layer {layer.name!r} ({type(layer).__name__}) has no KL term.")


def distribution_kl(q, p, mc_samples=MC_SAMPLES, seed=None):
    """KL(q || p) summed to a float32 scalar: analytic if TFP registers it, else Monte-Carlo."""
    tfd = _tfd()
    try:
        kl = tfd.kl_divergence(q, p)
    except NotImplementedError:
        if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 1:
            raise ValueError(f"mc_samples must be a positive integer; got {mc_samples!r}.") from None
        samples = q.sample(mc_samples, seed=seed)
        kl = tf.reduce_mean(q.log_prob(samples) - p.log_prob(samples), axis=0)
    return tf.reduce_sum(tf.cast(kl, tf.float32))


def parameter_count(layer):
    """Number of variational parameters of ``layer`` (trainable weights)."""
    return int(sum(int(tf.size(w)) for w in layer.trainable_weights))


def _as_scalar(value, layer):
    value = tf.convert_to_tensor(value)
    if value.shape.rank not in (None, 0):
        raise ValueError(
            f"{type(layer).__name__}.kl_divergence() must return a scalar; got shape {value.shape} "
            f"from layer {layer.name!r}."
        )
    return tf.cast(value, tf.float32)


def _kind(layer):
    if callable(getattr(type(layer), "kl_divergence", None)):
        return "protocol"
    module = type(layer).__module__ or ""
    if module.startswith("tensorflow_probability"):
        if hasattr(layer, "kernel_posterior") and hasattr(layer, "kernel_divergence_fn"):
            return "tfp"
        if hasattr(layer, "_posterior") and hasattr(layer, "_prior") and hasattr(layer, "_kl_divergence_fn"):
            return "tfp_variational"
    return None


def _children(layer):
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=False))
    return list(getattr(layer, "layers", []))


def _tfd():
    import tensorflow_probability as tfp  # deferred: importing tfloss must stay fast

    return tfp.distributions
