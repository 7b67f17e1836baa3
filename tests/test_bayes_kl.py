"""KL from layers: tfloss's Gaussian layers, the protocol, TFP's layers (tf_keras),
Monte-Carlo fallback, kl_report; the layers themselves (noise, XLA, precision, config)."""

import json

import numpy as np
import pytest
import tensorflow as tf

import bayes_support as bs
import tfloss
from tfloss import _keras
from tfloss.bayes import DenseFlipout, DenseReparameterization

keras = _keras.keras


def _built(cls, in_dim=5, units=4, **kwargs):
    layer = cls(units, seed=7, **kwargs)
    layer.build((None, in_dim))
    return layer


@pytest.mark.parametrize("cls", [DenseReparameterization, DenseFlipout])
@pytest.mark.parametrize("prior_scale", [0.1, 1.0, 3.0])
def test_layer_kl_matches_closed_form(cls, prior_scale):
    layer = _built(cls, prior_scale=prior_scale)
    loc, scale = bs.set_variational(layer, np.random.default_rng(int(prior_scale * 10)))
    got = float(layer.kl_divergence())
    want = bs.gaussian_kl(loc, scale, prior_scale)
    np.testing.assert_allclose(got, want, rtol=2e-6)


def test_model_kl_walks_nested_models_once():
    rng = np.random.default_rng(0)
    inner = keras.Sequential([keras.Input((6,)), DenseFlipout(5, seed=1), bs.PointKLDense(4)])
    inputs = keras.Input((3,))
    h = DenseReparameterization(6, seed=2)(inputs)
    out = keras.layers.Dense(2)(inner(h))  # a plain layer: no KL
    model = keras.Model(inputs, out)
    a, b, c = model.layers[1], inner.layers[0], inner.layers[1]
    want = 0.0
    for layer in (a, b):
        loc, scale = bs.set_variational(layer, rng)
        want += bs.gaussian_kl(loc, scale, 1.0)
    want += bs.gaussian_kl(c.kernel.numpy(), np.full(c.kernel.shape, 0.1), 1.0)
    total, parts = tfloss.bayes.model_kl(model)
    assert [p.layer for p in parts] == [a, b, c]
    np.testing.assert_allclose(float(total), want, rtol=2e-6)
    empty = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    assert float(tfloss.bayes.total_kl(empty)) == 0.0


def test_protocol_must_return_a_scalar():
    class Bad(keras.layers.Layer):
        def kl_divergence(self):
            return tf.ones((3,))

    with pytest.raises(ValueError, match="kl_divergence\\(\\) must return a scalar"):
        tfloss.bayes.layer_kl(Bad(name="bad"))


def test_monte_carlo_fallback_matches_closed_form():
    tfd = pytest.importorskip("tensorflow_probability").distributions
    q, p = tfd.Normal(0.3, 0.7), tfd.Laplace(0.0, 1.5)
    with pytest.raises(NotImplementedError):
        tfd.kl_divergence(q, p)  # no closed form registered: the fallback is exercised
    got = float(tfloss.bayes.distribution_kl(q, p, mc_samples=20000, seed=(1, 2)))
    # standard error of the 20000-sample mean of log q - log p here is ~0.004
    np.testing.assert_allclose(got, bs.normal_laplace_kl(0.3, 0.7, 1.5), atol=0.02)
    with pytest.raises(ValueError, match="mc_samples"):
        tfloss.bayes.distribution_kl(q, p, mc_samples=0)


def test_kl_report_lists_layers_params_and_totals():
    model = keras.Sequential([keras.Input((4,)), DenseFlipout(3, seed=1), DenseReparameterization(2, seed=2)])
    rows = tfloss.bayes.kl_rows(model)
    assert [r["params"] for r in rows] == [4 * 3 * 2 + 3, 3 * 2 * 2 + 2]
    for row, layer in zip(rows, model.layers):
        np.testing.assert_allclose(row["kl"], float(layer.kl_divergence()), rtol=1e-6)
        np.testing.assert_allclose(row["kl_per_param"], row["kl"] / row["params"], rtol=1e-12)
    lines = []
    text = tfloss.bayes.kl_report(model, print_fn=lines.append)
    assert lines == [text]
    assert text.splitlines()[-1].split()[:2] == ["total", str(sum(r["params"] for r in rows))]


def test_reparameterization_noise_has_posterior_moments():
    layer = _built(DenseReparameterization, in_dim=3, units=2, use_bias=False)
    loc, scale = bs.set_variational(layer, np.random.default_rng(3), rho_low=-1.0, rho_high=0.0)
    x = np.array([[0.5, -1.0, 2.0]], np.float32)
    draw = tf.function(layer)
    draws = np.concatenate([draw(x).numpy() for _ in range(600)])
    mean, var = x.astype(np.float64) @ loc, (x.astype(np.float64) ** 2) @ scale**2
    # 600 draws: the sample mean's standard error is sqrt(var/600) ~ 0.04 sd; 5 of them allowed
    np.testing.assert_allclose(draws.mean(0), mean[0], atol=5 * np.sqrt(var[0] / 600).max())
    np.testing.assert_allclose(draws.var(0), var[0], rtol=0.25)  # chi-square, 600 dof: sd ~6%


def test_flipout_is_unbiased_and_per_example():
    layer = _built(DenseFlipout, in_dim=3, units=2, use_bias=False)
    loc, scale = bs.set_variational(layer, np.random.default_rng(4), rho_low=-1.0, rho_high=0.0)
    x = np.tile(np.array([[0.5, -1.0, 2.0]], np.float32), (4000, 1))
    out = layer(x).numpy()
    assert np.unique(out[:, 0]).size > 2, "Flipout must perturb examples differently"
    want = (x[:1].astype(np.float64) @ loc)[0]
    # signs make the perturbation symmetric around the mean output
    np.testing.assert_allclose(out.mean(0), want, atol=5 * out.std(0).max() / np.sqrt(4000))


@pytest.mark.parametrize("cls", [DenseReparameterization, DenseFlipout])
def test_seeded_noise_and_xla(cls):
    x = np.random.default_rng(5).normal(size=(6, 5)).astype(np.float32)
    a, b = _built(cls), _built(cls)
    b.set_weights(a.get_weights())
    first = a(x).numpy()
    np.testing.assert_array_equal(b(x).numpy(), first)  # same seed and step: same noise
    assert not np.allclose(a(x).numpy(), first)  # the step advances: fresh noise

    # XLA's stateless kernels draw other numbers than the CPU kernels for the same
    # seed, so the compiled step is checked for reproducibility and against the
    # gradient formula of the sample it drew, not against an eager draw.
    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            out = a(x)
            value = tf.reduce_sum(tf.square(out)) + a.kl_divergence()
        return out, value, tape.gradient(value, a.kernel_loc)

    a.noise_step.assign(10)
    out, value, grad = step()
    a.noise_step.assign(10)
    np.testing.assert_array_equal(step()[0].numpy(), out.numpy())
    loc = a.kernel_loc.numpy().astype(np.float64)
    want = x.T.astype(np.float64) @ (2 * out.numpy().astype(np.float64)) + loc  # d KL / d loc = loc / prior^2
    np.testing.assert_allclose(grad.numpy(), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(float(value), np.sum(out.numpy() ** 2) + float(a.kl_divergence()), rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("cls", [DenseReparameterization, DenseFlipout])
def test_mixed_precision(cls, policy):
    _keras.set_dtype_policy(policy)
    x = np.random.default_rng(6).normal(size=(8, 5)).astype(np.float32)
    layer = cls(4, seed=3)
    out = layer(x)
    assert out.dtype == tf.as_dtype(policy.split("_")[1])
    assert np.all(np.isfinite(out.numpy().astype(np.float32)))
    assert all(w.dtype == tf.float32 for w in layer.trainable_weights)
    kl = layer.kl_divergence()
    assert kl.dtype == tf.float32
    loc, scale = layer.kernel_loc.numpy(), bs.softplus(layer.kernel_rho.numpy()) + 1e-6
    np.testing.assert_allclose(float(kl), bs.gaussian_kl(loc, scale, 1.0), rtol=2e-6)
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(tf.cast(layer(x), tf.float32)) + kl
    grads = tape.gradient(value, layer.trainable_weights)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


@pytest.mark.parametrize("cls", [DenseReparameterization, DenseFlipout])
def test_layer_config_roundtrip_and_errors(cls):
    layer = cls(3, activation="relu", use_bias=False, prior_scale=0.5, posterior_scale_init=0.02, seed=11)
    config = layer.get_config()
    json.dumps(config)
    clone = cls.from_config(config)
    assert clone.get_config() == config
    again = tfloss.get(_keras.serialize(layer))
    assert type(again) is cls and again.get_config() == config
    assert _keras.registered_name(cls) == f"tfloss>{cls.__name__}"
    for kwargs, match in [({"units": 0}, "units"), ({"units": 2, "prior_scale": -1.0}, "prior_scale"),
                          ({"units": 2, "posterior_scale_init": 0}, "posterior_scale_init"),
                          ({"units": 2, "seed": -3}, "seed")]:
        with pytest.raises(ValueError, match=match):
            cls(**kwargs)


@pytest.mark.tf_keras
def test_tfp_layers_kl_equals_closed_form_and_model_losses():
    tfp = pytest.importorskip("tensorflow_probability")
    tfpl, tfd = tfp.layers, tfp.distributions

    def posterior(kernel_size, bias_size=0, dtype=None):
        n = kernel_size + bias_size
        return keras.Sequential([
            tfpl.VariableLayer(2 * n, dtype=dtype),
            tfpl.DistributionLambda(lambda t: tfd.Independent(tfd.Normal(t[..., :n], 1e-3 + tf.nn.softplus(t[..., n:])), 1)),
        ])

    def prior(kernel_size, bias_size=0, dtype=None):
        n = kernel_size + bias_size
        return keras.Sequential([
            tfpl.VariableLayer(n, dtype=dtype),
            tfpl.DistributionLambda(lambda t: tfd.Independent(tfd.Normal(t, 1.0), 1)),
        ])

    net = keras.Sequential([
        keras.Input((6, 6, 1)),
        tfpl.Convolution2DFlipout(2, 3),
        keras.layers.Flatten(),
        keras.Sequential([tfpl.DenseReparameterization(8, activation="relu"), tfpl.DenseLocalReparameterization(5)]),
        tfpl.DenseFlipout(4),
        tfpl.DenseVariational(3, posterior, prior, kl_use_exact=True),
    ])
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 1)).astype(np.float32)
    net(x)
    total, parts = tfloss.bayes.model_kl(net)
    assert [type(p.layer).__name__ for p in parts] == [
        "Conv2DFlipout", "DenseReparameterization", "DenseLocalReparameterization", "DenseFlipout", "DenseVariational"]
    # closed form from the variables, per TFP default mean-field layer: softplus(rho) + eps(float32), prior N(0, 1)
    for part in parts[:4]:
        layer = part.layer
        loc = layer.kernel_posterior.distribution.loc.numpy()
        rho = layer.kernel_posterior.distribution.scale.pretransformed_input.numpy()
        want = bs.gaussian_kl(loc, bs.softplus(rho) + np.finfo(np.float32).eps, 1.0)
        np.testing.assert_allclose(float(part.kl), want, rtol=1e-5)
    dv = parts[4].layer
    post = dv._posterior.trainable_weights[0].numpy()
    prior_loc = dv._prior.trainable_weights[0].numpy().astype(np.float64)
    n = prior_loc.shape[-1]
    m, s = post[:n].astype(np.float64), 1e-3 + bs.softplus(post[n:])
    want = float(np.sum(np.log(1.0 / s) + (s**2 + (m - prior_loc) ** 2) / 2 - 0.5))
    np.testing.assert_allclose(float(parts[4].kl), want, rtol=1e-5)
    # with the layers' default divergence functions the KL is what they add_loss
    np.testing.assert_allclose(float(total), float(tf.add_n(net.losses)), rtol=1e-6)
