"""ELBOModel: the optimised loss is NLL + beta_t * KL (KL counted once), history terms,
XLA, MirroredStrategy equals single device, save/load with schedule state, diagnostics."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import bayes_support as bs
import tfloss
from tfloss import _keras
from tfloss.bayes import DenseReparameterization, ELBOModel, PerExample

keras = _keras.keras
RNG = np.random.default_rng(20)
X = RNG.normal(size=(16, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 16)
LR = 0.5


def point_network():
    return keras.Sequential([keras.Input((5,)), bs.PointKLDense(4, name="point"), keras.layers.Dense(3, name="head")])


def nll_fn():
    return tfloss.SparseCategoricalCrossentropy(from_logits=True)


def expected_step(network, beta):
    """Loss and SGD update of NLL + beta * KL, computed outside ELBOModel."""
    with tf.GradientTape() as tape:
        nll = nll_fn()(Y, network(X))
        kl = tfloss.bayes.total_kl(network)
        total = nll + beta * kl
    grads = tape.gradient(total, network.trainable_weights)
    after = [w.numpy() - LR * g.numpy() for w, g in zip(network.trainable_weights, grads)]
    return float(total), float(nll), float(kl), after


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_optimised_loss_is_nll_plus_scaled_kl(jit):
    network = point_network()
    model = ELBOModel(network, PerExample(40))
    model.compile(optimizer=keras.optimizers.SGD(LR), loss=nll_fn(), jit_compile=jit)
    total, nll, kl, after = expected_step(network, 1 / 40)
    logs = model.train_on_batch(X, Y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)
    np.testing.assert_allclose(logs["nll"], nll, rtol=1e-5)
    np.testing.assert_allclose(logs["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(logs["kl_weight"], 1 / 40, rtol=1e-7)
    for w, want in zip(network.trainable_weights, after):
        np.testing.assert_allclose(w.numpy(), want, rtol=1e-5, atol=1e-6)
    assert int(model.kl_step.numpy()) == 1


def test_history_shows_terms_and_schedule_advances():
    network = keras.Sequential([keras.Input((5,)), DenseReparameterization(4, seed=1), keras.layers.Dense(3)])
    sched = tfloss.bayes.LinearWarmup(4, base=tfloss.bayes.Constant(0.01))
    model = ELBOModel(network, sched)
    model.compile(optimizer="adam", loss=nll_fn())
    history = model.fit(X, Y, batch_size=8, epochs=3, verbose=0).history
    assert {"loss", "nll", "kl", "kl_weight"} <= set(history)
    # epoch means of beta_t over steps (0, 1), (2, 3), (4, 5)
    want = [np.mean([min(1, (t + 1) / 4) * 0.01 for t in (2 * e, 2 * e + 1)]) for e in range(3)]
    np.testing.assert_allclose(history["kl_weight"], want, rtol=1e-6)
    assert int(model.kl_step.numpy()) == 6
    model.evaluate(X, Y, verbose=0)
    assert int(model.kl_step.numpy()) == 6  # evaluation does not advance the schedule
    # regularizers added by other layers stay in the loss
    reg = keras.Sequential([keras.Input((5,)), bs.PointKLDense(4),
                            keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.1))])
    m2 = ELBOModel(reg, 0.0)
    m2.compile(optimizer=keras.optimizers.SGD(0.0), loss=nll_fn())
    logs = m2.test_on_batch(X, Y, return_dict=True)
    l2 = 0.1 * float(np.sum(reg.layers[-1].kernel.numpy() ** 2))
    np.testing.assert_allclose(logs["loss"], float(nll_fn()(Y, reg(X))) + l2, rtol=1e-5)


@pytest.mark.tf_keras
def test_tfp_layers_kl_counted_once():
    tfp = pytest.importorskip("tensorflow_probability")
    # a deterministic forward pass (posterior means) makes the NLL reproducible outside fit
    mean = dict(kernel_posterior_tensor_fn=lambda d: d.mean())
    network = keras.Sequential([
        keras.Input((5,)),
        tfp.layers.DenseReparameterization(6, activation="tanh", **mean),
        tfp.layers.DenseFlipout(3, **mean),
    ])
    network(X)
    kl = float(tfloss.bayes.total_kl(network))
    np.testing.assert_allclose(kl, float(tf.add_n(network.losses)), rtol=1e-6)
    model = ELBOModel(network, PerExample(100))
    model.compile(optimizer=keras.optimizers.SGD(LR), loss=nll_fn())
    total, nll, kl, after = expected_step(network, 1 / 100)
    logs = model.train_on_batch(X, Y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)  # not nll + kl/100 + kl
    np.testing.assert_allclose(logs["nll"], nll, rtol=1e-5)
    for w, want in zip(network.trainable_weights, after):
        np.testing.assert_allclose(w.numpy(), want, rtol=1e-5, atol=1e-6)


def test_distributed_equals_single_device(two_replica_strategy):
    init = {}

    def build():
        inputs = keras.Input((5,))
        h = DenseReparameterization(6, activation="tanh", seed=5, name="bayes")(inputs)
        out = bs.PointKLDense(3, name="point")(h)
        network = keras.Model(inputs, out)
        if init:
            network.set_weights(init["w"])
        else:
            init["w"] = network.get_weights()
        model = ELBOModel(network, tfloss.bayes.BlundellPi(2))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=nll_fn())
        return model

    single = build()
    h1 = single.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    with two_replica_strategy.scope():
        multi = build()
    h2 = multi.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    for key in ("loss", "nll", "kl", "kl_weight"):
        np.testing.assert_allclose(h2[key], h1[key], rtol=1e-5, err_msg=key)
    for a, b in zip(multi.network.get_weights(), single.network.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(multi.kl_step.numpy()) == int(single.kl_step.numpy()) == 4


def test_gradient_norms_diagnostic():
    network = point_network()
    model = ELBOModel(network, PerExample(10))
    model.compile(optimizer="sgd", loss=nll_fn())
    got = model.gradient_norms(X, Y)
    with tf.GradientTape(persistent=True) as tape:
        nll = nll_fn()(Y, network(X))
        scaled = tfloss.bayes.total_kl(network) / 10
    g1 = tape.gradient(nll, network.trainable_weights)
    g2 = [g for g in tape.gradient(scaled, network.trainable_weights) if g is not None]
    want_nll = np.sqrt(sum(np.sum(g.numpy().astype(np.float64) ** 2) for g in g1))
    want_kl = np.sqrt(sum(np.sum(g.numpy().astype(np.float64) ** 2) for g in g2))
    np.testing.assert_allclose(got["nll"], want_nll, rtol=1e-5)
    np.testing.assert_allclose(got["scaled_kl"], want_kl, rtol=1e-5)
    np.testing.assert_allclose(got["ratio"], want_kl / want_nll, rtol=1e-5)


def test_custom_loop_terms():
    network = point_network()
    terms = tfloss.bayes.elbo_terms(nll_fn()(Y, network(X)), network, tfloss.bayes.BlundellPi(3), step=1)
    kl = float(tfloss.bayes.total_kl(network))
    np.testing.assert_allclose(float(terms["kl_weight"]), 2 / 7, rtol=1e-6)
    np.testing.assert_allclose(float(terms["loss"]), float(terms["nll"]) + 2 / 7 * kl, rtol=1e-6)


def test_config_roundtrip():
    network = keras.Sequential([keras.Input((5,)), DenseReparameterization(3, seed=1)])
    model = ELBOModel(network, tfloss.bayes.LinearWarmup(5, base=PerExample(20)), mc_samples=4)
    config = model.get_config()
    json.dumps(config)
    clone = ELBOModel.from_config(config)
    assert clone.kl_weight.get_config() == model.kl_weight.get_config() and clone.mc_samples == 4
    assert _keras.registered_name(ELBOModel) == "tfloss>ELBOModel"
    with pytest.raises(TypeError, match="network must be a Keras model"):
        ELBOModel(lambda v: v, 1.0)
    with pytest.raises(ValueError, match="mc_samples"):
        ELBOModel(network, 1.0, mc_samples=0)
    with pytest.raises(ValueError, match="kl_weight must be"):
        ELBOModel(network, "1/N")


def test_fresh_process_save_and_load(tmp_path):
    network = keras.Sequential([keras.Input((5,)), DenseReparameterization(6, activation="relu", seed=2),
                                tfloss.DenseFlipout(3, seed=3)])
    model = ELBOModel(network, tfloss.bayes.LinearWarmup(7, base=PerExample(16)))
    model.compile(optimizer="adam", loss=tfloss.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1))
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    paths = [str(tmp_path / "elbo.keras")] + ([] if _keras.IS_KERAS_3 else [str(tmp_path / "elbo_savedmodel")])
    np.savez(tmp_path / "data.npz", x=X, y=Y)
    expected = {}
    for path in paths:
        model.save(path)
        # the saved noise and schedule state: evaluate from it, then restore it for the next save
        state = [v.numpy() for v in model.non_trainable_weights]
        res = model.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
        expected[path] = {"results": res, "kl_step": int(model.kl_step.numpy()),
                          "schedule": model.kl_weight.get_config(), "loss": model.loss.get_config()}
        for v, s in zip(model.non_trainable_weights, state):
            v.assign(s)
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import tfloss
        from tfloss import _keras
        data = np.load(sys.argv[1])
        out = {}
        for path in json.loads(sys.argv[2]):
            m = _keras.load_model(path)
            res = m.evaluate(data["x"], data["y"], batch_size=16, verbose=0, return_dict=True)
            out[path] = {"cls": type(m).__name__, "results": {k: float(v) for k, v in res.items()},
                         "kl_step": int(m.kl_step.numpy()), "schedule": m.kl_weight.get_config(),
                         "loss": m.loss.get_config()}
        print("RESULT" + json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data.npz"), json.dumps(paths)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout.split("RESULT", 1)[1])
    for path, want in expected.items():
        have = got[path]
        assert have["cls"] == "ELBOModel"
        assert have["kl_step"] == want["kl_step"] == 4
        assert have["schedule"] == want["schedule"] and have["loss"] == want["loss"]
        for key in ("loss", "nll", "kl", "kl_weight"):
            np.testing.assert_allclose(have["results"][key], want["results"][key], rtol=1e-5, err_msg=f"{path} {key}")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_fit_under_mixed_precision(policy):
    _keras.set_dtype_policy(policy)
    network = keras.Sequential([keras.Input((5,)), tfloss.DenseFlipout(8, activation="relu", seed=1),
                                DenseReparameterization(3, seed=2)])
    model = ELBOModel(network, PerExample(16))
    model.compile(optimizer="adam", loss=nll_fn())
    history = model.fit(X, Y, batch_size=8, epochs=2, verbose=0).history
    for key in ("loss", "nll", "kl", "kl_weight"):
        assert np.all(np.isfinite(history[key])), (key, history[key])
    want = sum(bs.gaussian_kl(layer.kernel_loc.numpy(), bs.softplus(layer.kernel_rho.numpy()) + 1e-6, 1.0)
               for layer in network.layers)
    np.testing.assert_allclose(float(model.kl()), want, rtol=2e-6)
