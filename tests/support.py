"""Helpers every family's tests share: XLA checks, config and save/load round trips."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

import tfloss
from tfloss import _keras

keras = _keras.keras


def value_and_grad(fn, y_true, y_pred):
    """Loss value and its gradient w.r.t. ``y_pred`` (eager)."""
    y_pred = tf.convert_to_tensor(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        value = fn(y_true, y_pred)
    return value, tape.gradient(value, y_pred)


def xla_value_and_grad(fn, y_true, y_pred):
    """The same, compiled by XLA (``jit_compile=True``; fails if any op does not compile)."""

    @tf.function(jit_compile=True)
    def compiled(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            value = fn(y_true, y_pred)
        return value, tape.gradient(value, y_pred)

    return compiled(tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred))


def assert_xla_matches_eager(fn, y_true, y_pred, rtol=1e-5, atol=1e-6):
    v, g = value_and_grad(fn, y_true, y_pred)
    vx, gx = xla_value_and_grad(fn, y_true, y_pred)
    np.testing.assert_allclose(vx.numpy(), v.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(gx.numpy(), g.numpy(), rtol=rtol, atol=atol)
    return v, g


def assert_config_roundtrip(obj):
    """get_config -> from_config, JSON and ``tfloss.get`` all give the same config."""
    config = obj.get_config()
    json.dumps(config)  # must be plain JSON (lists, not arrays)
    clone = type(obj).from_config(config)
    assert clone.get_config() == config
    again = tfloss.get(_keras.serialize(obj))
    assert type(again) is type(obj)
    assert again.get_config() == config
    name = _keras.registered_name(type(obj))
    assert name == f"tfloss>{type(obj).__name__}", name
    assert type(tfloss.get(name)) is type(obj)
    return clone


def _small_model(units, features, activation=None):
    inputs = keras.Input((features,))
    outputs = keras.layers.Dense(units, activation=activation)(inputs)
    return keras.Model(inputs, outputs)


def fresh_process_roundtrip(cases, directory):
    """Compile, fit, save each case; reload all in ONE new Python process that
    imports only tfloss and Keras (no ``custom_objects``); compare the compiled
    loss config and ``evaluate`` results with the originals.

    Each case is a dict: ``name``, ``x``, ``y``, and either ``model`` (already
    built) or ``units`` (+ optional ``activation``); ``loss`` and optional
    ``metrics``. Saves ``.keras`` on both Kerases and SavedModel on tf_keras.
    Returns the reloaded results for further checks.
    """
    directory = str(directory)
    expected = {}
    for case in cases:
        model = case.get("model") or _small_model(case["units"], case["x"].shape[-1], case.get("activation"))
        model.compile(optimizer="adam", loss=case["loss"], metrics=case.get("metrics", []))
        model.fit(case["x"], case["y"], epochs=1, batch_size=16, verbose=0)
        results = model.evaluate(case["x"], case["y"], batch_size=len(case["x"]), verbose=0, return_dict=True)
        np.savez(os.path.join(directory, case["name"] + ".npz"), x=case["x"], y=case["y"])
        paths = [os.path.join(directory, case["name"] + ".keras")]
        if not _keras.IS_KERAS_3:
            paths.append(os.path.join(directory, case["name"] + "_savedmodel"))
        for path in paths:
            model.save(path)
            expected[path] = {
                "npz": os.path.join(directory, case["name"] + ".npz"),
                "loss_config": model.loss.get_config(),
                "loss_class": type(model.loss).__name__,
                "results": {k: float(v) for k, v in results.items()},
            }
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import tensorflow as tf
        import tfloss
        from tfloss import _keras
        todo = json.load(open(sys.argv[1]))
        out = {}
        for path, item in todo.items():
            model = _keras.load_model(path)
            data = np.load(item["npz"])
            res = model.evaluate(data["x"], data["y"], batch_size=len(data["x"]), verbose=0, return_dict=True)
            out[path] = {
                "loss_class": type(model.loss).__name__,
                "loss_config": model.loss.get_config(),
                "results": {k: float(v) for k, v in res.items()},
            }
        json.dump(out, open(sys.argv[2], "w"))
        """
    )
    todo_path = os.path.join(directory, "todo.json")
    out_path = os.path.join(directory, "out.json")
    json.dump(expected, open(todo_path, "w"))
    script_path = os.path.join(directory, "reload.py")
    with open(script_path, "w") as f:
        f.write(script)
    proc = subprocess.run(
        [sys.executable, script_path, todo_path, out_path],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    got = json.load(open(out_path))
    for path, want in expected.items():
        have = got[path]
        assert have["loss_class"] == want["loss_class"], (path, have["loss_class"])
        assert have["loss_config"] == want["loss_config"], (path, have["loss_config"], want["loss_config"])
        for key, value in want["results"].items():
            assert key in have["results"], (path, key, have["results"])
            np.testing.assert_allclose(have["results"][key], value, rtol=1e-5, atol=1e-6, err_msg=f"{path}: {key}")
    return got


def assert_distributed_fit_matches_single(strategy, make_loss, num_classes, seed=11, features=5):
    """Fit the same linear model with ``make_loss()`` on one device and under
    ``strategy``: the loss history and the trained weights must agree."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, features)).astype(np.float32)
    y = rng.integers(0, num_classes, 32)
    init = rng.normal(size=(features, num_classes)).astype(np.float32)

    def build():
        model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(num_classes, use_bias=False)])
        model.layers[-1].set_weights([init])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=make_loss())
        return model

    single = build()
    h1 = single.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    with strategy.scope():
        multi = build()
    h2 = multi.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(
        multi.layers[-1].get_weights()[0], single.layers[-1].get_weights()[0], rtol=1e-5, atol=1e-6
    )
