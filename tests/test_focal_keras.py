"""Focal-loss family on Keras: extreme logits in every dtype, half precision and
mixed policies, XLA, tf.distribute, config and save/load round trips (case C3)."""

import os

import numpy as np
import pytest
import tensorflow as tf

import reference as ref
import support
import tfloss
from reference_focal import ref_sigmoid_focal
from tfloss import _keras

keras = _keras.keras


ALL = [
    ("sparse", lambda: tfloss.SparseCategoricalFocalCrossentropy(alpha=[0.1, 0.2, 0.3, 0.4], gamma=0.5, from_logits=True, label_smoothing=0.1)),
    ("sparse_plain", lambda: tfloss.SparseCategoricalFocalCrossentropy(gamma=[0.5, 1.0, 2.0, 2.0], from_logits=True, ignore_class=3)),
    ("categorical", lambda: tfloss.CategoricalFocalCrossentropy(alpha=[1.0, 2.0, 0.5, 0.5], gamma=0.5, from_logits=True, label_smoothing=0.1)),
    ("sigmoid", lambda: tfloss.SigmoidFocalCrossentropy(alpha=[0.2, 0.8, 0.5, 0.5], gamma=0.5, from_logits=True, label_smoothing=0.1)),
]


def _labels_for(kind, labels):
    return labels if kind.startswith("sparse") else ref.one_hot(labels, 4).astype(np.float32)


@pytest.mark.parametrize("kind, make", ALL)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_extreme_logits_finite_in_every_dtype(kind, make, dtype):
    logits = tf.cast(tf.constant([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, -1e4, 1e4], [0.0, 0.0, 0.0, 0.0]]), dtype)
    labels = np.array([1, 3, 2])
    value, grad = support.value_and_grad(make(), _labels_for(kind, labels), logits)
    assert np.isfinite(value.numpy()) and np.isfinite(tf.cast(grad, tf.float32).numpy()).all()
    fn = {"sparse": tfloss.ops.sparse_categorical_focal_crossentropy, "categorical": tfloss.ops.categorical_focal_crossentropy,
          "sigmoid": tfloss.ops.sigmoid_focal_crossentropy}[kind.split("_")[0]]
    v, g = support.value_and_grad(lambda y, p: tf.reduce_sum(fn(y, p, gamma=0.5, from_logits=True)), _labels_for(kind, labels), logits)
    assert v.dtype == dtype
    assert np.isfinite(tf.cast(v, tf.float32).numpy()) and np.isfinite(tf.cast(g, tf.float32).numpy()).all()


@pytest.mark.parametrize("kind, make", ALL)
@pytest.mark.parametrize("dtype, rtol", [("float16", 3e-3), ("bfloat16", 3e-2)])
def test_half_precision_close_to_float32(kind, make, dtype, rtol):
    # tolerance: the inputs themselves are rounded to float16 (11-bit) or
    # bfloat16 (8-bit) mantissas, and the focal factor amplifies a logit's
    # relative error by up to gamma
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(32, 4)).astype(np.float32) * 3
    labels = _labels_for(kind, rng.integers(0, 3, 32))
    full = make()(labels, logits)
    half = make()(labels, tf.cast(logits, dtype))
    np.testing.assert_allclose(half, full, rtol=rtol)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_fit(policy):
    _keras.set_dtype_policy(policy)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 5, 64)
    for loss, target in [
        (tfloss.SparseCategoricalFocalCrossentropy(gamma=0.5, from_logits=True), y),
        (tfloss.SigmoidFocalCrossentropy(alpha=[0.5] * 5, from_logits=True), ref.one_hot(y, 5)),
    ]:
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(5)])
        model.compile(optimizer="sgd", loss=loss)
        hist = model.fit(x, target, epochs=1, batch_size=32, verbose=0)
        assert np.isfinite(hist.history["loss"]).all()
    out = model.predict(x[:4], verbose=0)
    assert out.dtype != np.float32  # really ran in half precision
    got = tfloss.SigmoidFocalCrossentropy(from_logits=True, reduction="none")(ref.one_hot(y[:4], 5), out)
    np.testing.assert_allclose(got, ref_sigmoid_focal(ref.one_hot(y[:4], 5), out.astype(np.float64)), rtol=1e-5)


# --- XLA, distribution ---------------------------------------------------------


@pytest.mark.parametrize("kind, make", ALL)
def test_xla_value_and_gradient(kind, make):
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(6, 4)).astype(np.float32) * 3
    labels = _labels_for(kind, rng.integers(0, 4, 6))
    support.assert_xla_matches_eager(make(), labels, logits)


def test_xla_time_axis_and_probability_path():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(3, 5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (3, 5))
    support.assert_xla_matches_eager(tfloss.SparseCategoricalFocalCrossentropy(from_logits=True), labels, logits)
    probs = tf.nn.softmax(logits).numpy()
    support.assert_xla_matches_eager(tfloss.SparseCategoricalFocalCrossentropy(label_smoothing=0.1), labels, probs)
    support.assert_xla_matches_eager(tfloss.CategoricalFocalCrossentropy(), ref.one_hot(labels, 4), probs)


def test_distributed_fit_equals_single_device(two_replica_strategy):
    support.assert_distributed_fit_matches_single(
        two_replica_strategy,
        lambda: tfloss.SparseCategoricalFocalCrossentropy(alpha=[0.2, 0.3, 0.5], gamma=1.5, from_logits=True),
        num_classes=3,
        seed=11,
    )


# --- serialization (case C3) ------------------------------------------------------

@pytest.mark.parametrize("kind, make", ALL)
def test_config_roundtrip(kind, make):
    clone = support.assert_config_roundtrip(make())
    config = clone.get_config()
    assert isinstance(config["gamma"], (float, list)) and config["from_logits"] is True
    if isinstance(make().alpha, list):
        assert isinstance(config["alpha"], list) and len(config["alpha"]) == 4


def test_defaults_follow_keras():
    for cls in (tfloss.SparseCategoricalFocalCrossentropy, tfloss.CategoricalFocalCrossentropy, tfloss.SigmoidFocalCrossentropy):
        config = cls().get_config()
        assert (config["alpha"], config["gamma"], config["from_logits"]) == (0.25, 2.0, False)
    assert tfloss.SigmoidFocalCrossentropy().get_config()["class_reduction"] == "mean"
    assert tfloss.get({"class_name": "SigmoidFocalCrossentropy", "config": {"alpha": None}}).alpha is None
    assert isinstance(tfloss.get("sparse_categorical_focal_crossentropy"), tfloss.SparseCategoricalFocalCrossentropy)


def test_case_c3_fresh_process_save_and_load(tmp_path):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(48, 5)).astype(np.float32)
    y = rng.integers(0, 2, 48)
    prior_model = keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(3, bias_initializer=tfloss.prior_bias_initializer(0.01)),
    ])
    cases = [
        dict(name="c3_categorical", x=x, y=ref.one_hot(y, 2).astype(np.float32), units=2,
             loss=tfloss.CategoricalFocalCrossentropy(alpha=[0.2, 0.8], gamma=[1.0, 2.0], from_logits=True)),
        dict(name="c3_sigmoid", x=x, y=ref.one_hot(y, 2).astype(np.float32), units=2, activation="sigmoid",
             loss=tfloss.SigmoidFocalCrossentropy(alpha=[0.2, 0.8], label_smoothing=0.05, class_reduction="sum")),
        dict(name="sparse_prior", x=x, y=y, model=prior_model,
             loss=tfloss.SparseCategoricalFocalCrossentropy(alpha=[0.2, 0.8, 1.0], gamma=0.5, from_logits=True, ignore_class=2)),
    ]
    got = support.fresh_process_roundtrip(cases, tmp_path)
    for path, item in got.items():
        if os.path.basename(path).startswith("c3_"):
            assert item["loss_config"]["alpha"] == [0.2, 0.8], path
