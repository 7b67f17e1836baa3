"""Class-balance helpers: class_weights (inverse, inverse_sqrt, effective number)
against the formulas in float64 and scikit-learn, and the prior-bias helpers."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import support
import tfloss
from tfloss import _keras

keras = _keras.keras


def normalised(raw):
    raw = np.asarray(raw, np.float64)
    return raw * raw.size / raw.sum()


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=12), st.sampled_from([0.9, 0.99, 0.999, 0.9999]))
def test_weights_match_formulas(counts, beta):
    n = np.asarray(counts, np.float64)
    inverse = tfloss.class_weights(counts)
    sqrt = tfloss.class_weights(counts, method="inverse_sqrt")
    # Cui et al. 2019: weight ~ 1 / E_n with E_n = (1 - beta^n) / (1 - beta)
    effective = tfloss.class_weights(counts, method="effective_number", beta=beta)
    np.testing.assert_allclose(inverse, normalised(1 / n), rtol=1e-12)
    np.testing.assert_allclose(sqrt, normalised(1 / np.sqrt(n)), rtol=1e-12)
    np.testing.assert_allclose(effective, normalised((1 - beta) / (1 - beta**n)), rtol=1e-9)
    for w in (inverse, sqrt, effective):
        assert isinstance(w, list) and all(isinstance(v, float) for v in w)
        np.testing.assert_allclose(sum(w), len(counts), rtol=1e-12)


def test_effective_number_limits():
    counts = [5, 50, 500]
    # beta = 0: every class has effective number 1, equal weights
    np.testing.assert_allclose(tfloss.class_weights(counts, method="effective_number", beta=0.0), [1, 1, 1])
    # beta -> 1: E_n -> n, the inverse-frequency weights
    near_one = tfloss.class_weights(counts, method="effective_number", beta=1 - 1e-9)
    np.testing.assert_allclose(near_one, tfloss.class_weights(counts), rtol=1e-5)
    # in between, rare classes are up-weighted less than by inverse frequency
    mid = tfloss.class_weights(counts, method="effective_number", beta=0.99)
    assert mid[0] / mid[2] < tfloss.class_weights(counts)[0] / tfloss.class_weights(counts)[2]


def test_labels_counts_and_onehot_agree_and_match_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.default_rng(0)
    labels = rng.choice(4, size=500, p=[0.7, 0.2, 0.07, 0.03])
    counts = np.bincount(labels, minlength=4)
    from_counts = tfloss.class_weights(counts)
    np.testing.assert_allclose(tfloss.class_weights(labels, num_classes=4), from_counts, rtol=1e-12)
    np.testing.assert_allclose(tfloss.class_weights(np.eye(4)[labels]), from_counts, rtol=1e-12)
    np.testing.assert_allclose(tfloss.class_weights(tf.constant(counts)), from_counts, rtol=1e-12)
    # scikit-learn's "balanced" weights n / (C n_c) are the same up to scale
    balanced = compute_class_weight("balanced", classes=np.arange(4), y=labels)
    np.testing.assert_allclose(from_counts, normalised(balanced), rtol=1e-12)


def test_weights_as_focal_alpha():
    weights = tfloss.class_weights([100, 10, 1])
    loss = tfloss.SparseCategoricalFocalCrossentropy(alpha=weights, from_logits=True, reduction="none")
    logits = np.zeros((3, 3), np.float32)
    value = loss(np.array([0, 1, 2]), logits).numpy()
    # equal logits: each row is alpha_y (2/3)^2 log 3
    np.testing.assert_allclose(value, np.asarray(weights) * (2 / 3) ** 2 * np.log(3), rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tfloss.class_weights([3, 0, 2]), r"classes \[1\] have no samples"),
        (lambda: tfloss.class_weights([3, 2], method="balanced"), "method must be one of"),
        (lambda: tfloss.class_weights([3, 2], method="effective_number", beta=1.0), r"beta must be a number in \[0, 1\)"),
        (lambda: tfloss.class_weights([0, 1, 5], num_classes=3), r"labels must lie in \[0, 3\)"),
        (lambda: tfloss.class_weights([0, 1, 1.5], num_classes=3), "integer labels"),
        (lambda: tfloss.class_weights([[[1]]]), "counts_or_labels must be"),
        (lambda: tfloss.class_weights([3, -1]), "must be finite and >= 0"),
        (lambda: tfloss.class_weights(np.eye(3), num_classes=4), "num_classes=4"),
    ],
)
def test_class_weight_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- prior bias ------------------------------------------------------------------


def test_prior_bias_gives_the_priors():
    freq = [0.5, 0.1, 0.01]
    sig = np.asarray(tfloss.prior_bias(freq))
    np.testing.assert_allclose(1 / (1 + np.exp(-sig)), freq, rtol=1e-12)
    # Lin et al. 2017: b = -log((1 - pi) / pi)
    np.testing.assert_allclose(sig, -np.log((1 - np.asarray(freq)) / freq), rtol=1e-12)
    counts = np.array([60, 30, 10])
    soft = np.asarray(tfloss.prior_bias(counts, activation="softmax"))
    np.testing.assert_allclose(np.exp(soft) / np.exp(soft).sum(), counts / counts.sum(), rtol=1e-12)
    np.testing.assert_allclose(soft.sum(), 0.0, atol=1e-12)


@pytest.mark.parametrize("prior, activation", [(0.01, "sigmoid"), ([0.3, 0.05, 0.6], "sigmoid"), ([0.7, 0.2, 0.1], "softmax")])
def test_initializer_starts_outputs_at_prior(prior, activation):
    init = tfloss.prior_bias_initializer(prior, activation=activation)
    layer = keras.layers.Dense(3, kernel_initializer="zeros", bias_initializer=init)
    out = layer(np.ones((2, 4), np.float32)).numpy()
    probs = tf.nn.sigmoid(out) if activation == "sigmoid" else tf.nn.softmax(out)
    np.testing.assert_allclose(probs, np.broadcast_to(prior, (2, 3)), rtol=1e-5)
    clone = support.assert_config_roundtrip(init)
    assert clone.get_config() == {"prior": prior, "activation": activation}
    np.testing.assert_array_equal(clone((3,), "float32"), init((3,), "float32"))


def test_initializer_dtype_and_shape_errors():
    assert tfloss.prior_bias_initializer(0.2)((2, 3), dtype="float16").dtype == tf.float16
    with pytest.raises(ValueError, match="3 per-class priors cannot initialise a weight of shape"):
        tfloss.prior_bias_initializer([0.1, 0.2, 0.3])((4,))
    for bad in (0.0, 1.0, -0.5, [0.5, 1.2], None):
        with pytest.raises(ValueError, match="prior"):
            tfloss.prior_bias_initializer(bad)
    with pytest.raises(ValueError, match="must sum to 1"):
        tfloss.prior_bias_initializer([0.5, 0.2], activation="softmax")
    with pytest.raises(ValueError, match="activation must be one of"):
        tfloss.prior_bias([0.5], activation="relu")
    with pytest.raises(ValueError, match="probability in"):
        tfloss.prior_bias([0.5, 0.0])
