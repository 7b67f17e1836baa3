"""Focal-loss family, the math: values and gradients against float64 NumPy,
Keras's focal losses and the tensorflow-addons formula; saturated logits, the
fault cases C1, C4, C5 and argument errors. (Precision, XLA, distribution and
serialization: test_focal_keras.py.)"""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
import support
from reference_focal import numeric_grad
from reference_focal import ref_sigmoid_focal
from reference_focal import ref_softmax_focal
from reference_focal import ref_sparse_focal
from reference_focal import sigmoid64
from reference_focal import tfa_sigmoid_focal
import tfloss
from tfloss import _keras

keras = _keras.keras


# --- hypothesis problems ----------------------------------------------------


@st.composite
def problems(draw, time_axis=None):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    batch = draw(st.integers(1, 5))
    classes = draw(st.integers(2, 8))
    with_time = draw(st.booleans()) if time_axis is None else time_axis
    shape = (batch, draw(st.integers(1, 3))) if with_time else (batch,)
    scale = draw(st.sampled_from([0.1, 1.0, 4.0, 12.0]))
    logits = (rng.normal(size=shape + (classes,)) * scale).astype(np.float32)
    labels = rng.integers(0, classes, size=shape).astype(np.int64)
    alpha = draw(st.sampled_from(["none", "scalar", "vector"]))
    alpha = {"none": None, "scalar": 0.25, "vector": [float(a) for a in rng.uniform(0.05, 0.95, classes)]}[alpha]
    gamma = draw(st.sampled_from(["two", "half", "vector"]))
    gamma = {"two": 2.0, "half": 0.5, "vector": [float(g) for g in rng.uniform(0.0, 3.0, classes)]}[gamma]
    return logits, labels, alpha, gamma


# Gradients: float32 implementation against float64 central differences; the
# difference is float32 rounding of O(1) terms (rtol 1e-4 leaves room for
# the few-ulp error of exp(gamma * log(1 - p)) multiplied through the chain).
GRAD_RTOL, GRAD_ATOL = 1e-4, 2e-6


def check(value, grad, want, want_grad):
    np.testing.assert_allclose(value.numpy(), want, rtol=2e-5, atol=1e-6 * max(1.0, np.abs(want).max()))
    if want_grad is not None:
        np.testing.assert_allclose(grad.numpy(), want_grad, rtol=GRAD_RTOL, atol=GRAD_ATOL)


@given(problems(), st.sampled_from([0.0, 0.2]))
def test_sparse_matches_reference(problem, smoothing):
    logits, labels, alpha, gamma = problem
    loss = tfloss.SparseCategoricalFocalCrossentropy(
        alpha=alpha, gamma=gamma, from_logits=True, label_smoothing=smoothing, reduction="none"
    )
    value, grad = support.value_and_grad(loss, labels, logits)
    kw = dict(alpha=alpha, gamma=gamma, label_smoothing=smoothing)
    want = ref_sparse_focal(labels, logits, **kw)
    check(value, grad, want, numeric_grad(lambda z: ref_sparse_focal(labels, z, **kw), logits))


@given(problems(), st.sampled_from([0.0, 0.1]), st.booleans())
def test_categorical_soft_targets_match_reference(problem, smoothing, from_logits):
    logits, labels, alpha, gamma = problem
    soft = np.random.default_rng(labels.size).dirichlet(np.ones(logits.shape[-1]), size=labels.shape).astype(np.float32)
    y_pred = logits if from_logits else ref.softmax(logits).astype(np.float32)
    loss = tfloss.CategoricalFocalCrossentropy(
        alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=smoothing, reduction="none"
    )
    value, grad = support.value_and_grad(loss, soft, y_pred)
    kw = dict(alpha=alpha, gamma=gamma, label_smoothing=smoothing, from_logits=from_logits)
    want = ref_softmax_focal(soft, y_pred, **kw)
    want_grad = numeric_grad(lambda z: ref_softmax_focal(soft, z, **kw), logits) if from_logits else None
    check(value, grad, want, want_grad)


@given(problems(time_axis=False), st.sampled_from([0.0, 0.1]), st.sampled_from(["mean", "sum"]), st.booleans())
def test_sigmoid_matches_reference(problem, smoothing, class_reduction, from_logits):
    logits, labels, alpha, gamma = problem
    multi_hot = (np.random.default_rng(labels.size).random(logits.shape) < 0.4).astype(np.float32)
    # keep probabilities away from float32's 0 and 1 on the probability path (an input property)
    probs = np.clip(sigmoid64(logits), 1e-3, 1 - 1e-3).astype(np.float32)
    y_pred = logits if from_logits else probs
    loss = tfloss.SigmoidFocalCrossentropy(
        alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=smoothing,
        class_reduction=class_reduction, reduction="none",
    )
    value, grad = support.value_and_grad(loss, multi_hot, y_pred)
    kw = dict(alpha=alpha, gamma=gamma, label_smoothing=smoothing, class_reduction=class_reduction, from_logits=from_logits)
    want = ref_sigmoid_focal(multi_hot, y_pred, **kw)
    want_grad = numeric_grad(lambda x: ref_sigmoid_focal(multi_hot, x, **kw), logits) if from_logits else None
    check(value, grad, want, want_grad)


def test_sparse_ignore_class_and_label_shapes():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, (3, 4))
    labels[0, :2] = -1
    loss = tfloss.SparseCategoricalFocalCrossentropy(alpha=[0.1, 0.2, 0.3, 0.2, 0.2], gamma=1.5, from_logits=True, ignore_class=-1)
    value = loss(labels, logits)
    per = ref_sparse_focal(labels, logits, ignore_class=-1, alpha=[0.1, 0.2, 0.3, 0.2, 0.2], gamma=1.5)
    np.testing.assert_allclose(value, per.sum() / (labels != -1).sum(), rtol=1e-5)
    # (B,) and (B, 1) labels (case C2's shapes) give the same per-sample losses
    flat = tfloss.SparseCategoricalFocalCrossentropy(from_logits=True, reduction="none")
    y = np.array([0, 2, 1, 4])
    np.testing.assert_array_equal(flat(y, logits[0]), flat(y[:, None], logits[0]))
    assert flat(y[:, None], logits[0]).shape == (4,)


# --- equalities: cross-entropy, Keras, tensorflow-addons ----------------------


PAIRS = [
    ("sparse", tfloss.SparseCategoricalFocalCrossentropy, tfloss.SparseCategoricalCrossentropy),
    ("categorical", tfloss.CategoricalFocalCrossentropy, tfloss.CategoricalCrossentropy),
    ("sigmoid", tfloss.SigmoidFocalCrossentropy, tfloss.SigmoidCrossentropy),
]


def _targets(kind, labels, classes):
    return labels if kind == "sparse" else ref.one_hot(labels, classes).astype(np.float32)


@pytest.mark.parametrize("kind, focal, ce", PAIRS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("from_logits", [True, False])
def test_gamma_zero_no_alpha_is_exactly_crossentropy(kind, focal, ce, smoothing, from_logits):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(16, 6)).astype(np.float32) * 4
    if from_logits:
        y_pred = logits
    else:
        y_pred = (tf.nn.sigmoid if kind == "sigmoid" else tf.nn.softmax)(logits).numpy()
    y = _targets(kind, rng.integers(0, 6, 16), 6)
    ours = focal(alpha=None, gamma=0.0, from_logits=from_logits, label_smoothing=smoothing, reduction="none")
    base = ce(from_logits=from_logits, label_smoothing=smoothing, reduction="none")
    v1, g1 = support.value_and_grad(ours, y, y_pred)
    v2, g2 = support.value_and_grad(base, y, y_pred)
    np.testing.assert_array_equal(v1.numpy(), v2.numpy())
    np.testing.assert_array_equal(g1.numpy(), g2.numpy())


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), ([0.1, 0.5, 0.2, 0.9, 0.3], [0.5, 1.0, 2.0, 3.0, 0.0])])
def test_matches_keras_focal_losses(from_logits, smoothing, alpha, gamma):
    # logits of scale 2: every probability in (1e-4, 1 - 1e-4), where Keras's
    # clipping to [1e-7, 1 - 1e-7] does not bite
    rng = np.random.default_rng(2)
    logits = (rng.normal(size=(16, 5)) * 2).astype(np.float32)
    labels = rng.integers(0, 5, 16)
    onehot = ref.one_hot(labels, 5).astype(np.float32)
    sw = rng.uniform(0, 2, 16).astype(np.float32)
    softmax_pred = logits if from_logits else tf.nn.softmax(logits).numpy()
    sigmoid_pred = logits if from_logits else tf.nn.sigmoid(logits).numpy()
    kw = dict(alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=smoothing)
    # Keras takes per-class vectors as arrays (its binary loss computes 1 - alpha)
    kw_keras = dict(kw, alpha=np.float32(alpha), gamma=np.float32(gamma))
    cases = [
        (tfloss.CategoricalFocalCrossentropy(**kw), keras.losses.CategoricalFocalCrossentropy(**kw_keras), onehot, softmax_pred),
        # Keras's alpha for the binary loss: alpha on positives, 1 - alpha on
        # negatives, applied only with apply_class_balancing=True
        (tfloss.SigmoidFocalCrossentropy(**kw),
         keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, **kw_keras), onehot, sigmoid_pred),
    ]
    if not isinstance(alpha, list):
        kw_none = dict(kw, alpha=None)
        cases.append((tfloss.SigmoidFocalCrossentropy(**kw_none),
                      keras.losses.BinaryFocalCrossentropy(**dict(kw_none, alpha=0.25)), onehot, sigmoid_pred))
    if smoothing == 0.0:
        cases.append((tfloss.SparseCategoricalFocalCrossentropy(**kw),
                      keras.losses.CategoricalFocalCrossentropy(**kw_keras), (labels, onehot), softmax_pred))
    for ours, theirs, y, y_pred in cases:
        y_ours, y_theirs = y if isinstance(y, tuple) else (y, y)
        v1, g1 = support.value_and_grad(lambda t, p: ours(t, p, sw), y_ours, y_pred)
        v2, g2 = support.value_and_grad(lambda t, p: theirs(t, p, sw), y_theirs, y_pred)
        np.testing.assert_allclose(v1, v2, rtol=1e-5, err_msg=type(ours).__name__)
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-7, err_msg=type(ours).__name__)


def test_sum_class_reduction_is_the_tensorflow_addons_formula():
    rng = np.random.default_rng(3)
    logits = (rng.normal(size=(12, 7)) * 5).astype(np.float32)
    multi_hot = (rng.random((12, 7)) < 0.3).astype(np.float32)
    loss = tfloss.SigmoidFocalCrossentropy(from_logits=True, class_reduction="sum", reduction="none")
    np.testing.assert_allclose(loss(multi_hot, logits), tfa_sigmoid_focal(multi_hot, logits), rtol=2e-5, atol=1e-7)
    mean = tfloss.SigmoidFocalCrossentropy(from_logits=True, reduction="none")(multi_hot, logits)
    np.testing.assert_allclose(mean * 7, tfa_sigmoid_focal(multi_hot, logits), rtol=2e-5, atol=1e-7)


# --- fault cases and saturated logits -------------------------------------------


def test_case_c1_sigmoid_focal_gamma_half_saturated():
    loss = tfloss.SigmoidFocalCrossentropy(alpha=0.25, gamma=0.5, from_logits=True, reduction="none")
    logits = tf.constant([[-100.0, -100.0, 100.0, 100.0]])
    labels = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)
    elem = tfloss.SigmoidFocalCrossentropy(alpha=0.25, gamma=0.5, from_logits=True, class_reduction="sum", reduction="none")
    value, grad = support.value_and_grad(loss, labels, logits)
    assert np.isfinite(value.numpy()).all() and np.isfinite(grad.numpy()).all()
    # badly classified: alpha_t * 100 * (focal factor ~1); well classified: ~0
    np.testing.assert_allclose(value.numpy(), [(0.25 * 100 + 0.75 * 100) / 4], rtol=1e-6)
    np.testing.assert_allclose(elem(labels, logits).numpy(), [100.0], rtol=1e-6)
    np.testing.assert_allclose(grad.numpy(), [[0.0, -0.25 / 4, 0.75 / 4, 0.0]], atol=1e-7)


def test_case_c5_softmax_focal_not_capped():
    logits = tf.constant([[0.0, 100.0]])
    onehot = np.array([[1.0, 0.0]], np.float32)
    for alpha, want in [(0.25, 25.0), (None, 100.0)]:
        for loss, y in [(tfloss.CategoricalFocalCrossentropy(alpha=alpha, gamma=2.0, from_logits=True), onehot),
                        (tfloss.SparseCategoricalFocalCrossentropy(alpha=alpha, gamma=2.0, from_logits=True), np.array([0]))]:
            value, grad = support.value_and_grad(loss, y, logits)
            np.testing.assert_allclose(value.numpy(), want, rtol=1e-6)
            a = 1.0 if alpha is None else alpha
            # d/dz of a (1 - p0)^2 (-log p0) at p0 = e^-100: -a for z0, +a for z1
            np.testing.assert_allclose(grad.numpy(), [[-a, a]], rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.9])
def test_fractional_gamma_with_saturated_logits(gamma):
    # 1 - p underflows in float32 (a naive (1 - p)^gamma has an infinite
    # derivative there, giving NaN gradients); the loss and its gradient are
    # tiny but exact
    logits = np.array([[40.0, 0.0, -5.0], [1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], np.float32)
    labels = np.array([0, 0, 0])
    sparse = tfloss.SparseCategoricalFocalCrossentropy(alpha=None, gamma=gamma, from_logits=True, reduction="none")
    cat = tfloss.CategoricalFocalCrossentropy(alpha=None, gamma=gamma, from_logits=True, reduction="none")
    sig = tfloss.SigmoidFocalCrossentropy(alpha=None, gamma=gamma, from_logits=True, reduction="none")
    for loss, y in [(sparse, labels), (cat, ref.one_hot(labels, 3)), (sig, ref.one_hot(labels, 3))]:
        value, grad = support.value_and_grad(loss, y, logits)
        assert np.isfinite(value.numpy()).all() and np.isfinite(grad.numpy()).all(), type(loss).__name__
        _, xla_grad = support.xla_value_and_grad(loss, y, logits)
        assert np.isfinite(xla_grad.numpy()).all()
    # against float64 (central differences): on the saturated rows the true
    # values are below 1e-20, and match to that absolute level
    kw = dict(alpha=None, gamma=gamma)
    value, grad = support.value_and_grad(sparse, labels, logits)
    np.testing.assert_allclose(value.numpy(), ref_sparse_focal(labels, logits, **kw), rtol=1e-5, atol=1e-20)
    want_grad = numeric_grad(lambda z: ref_sparse_focal(labels[:1], z, **kw), logits[:1], h=1e-3)
    np.testing.assert_allclose(grad.numpy()[:1], want_grad, atol=1e-20)
    # nearly saturated (1 - p = 6e-6): (1 - p)^(gamma - 1) is large, the gradient is not
    near = np.array([[12.0, 0.0, 0.0]], np.float32)
    value, grad = support.value_and_grad(sparse, labels[:1], near)
    # rtol 2e-2: the cross-entropy factor -log p = 6e-6 comes from float32
    # log_softmax (as in SparseCategoricalCrossentropy, which gamma=0 must equal
    # exactly), whose log(1 + 6e-6) is resolved to ~1% (float32 ulp of 1 is 1.2e-7)
    np.testing.assert_allclose(value.numpy(), ref_sparse_focal(labels[:1], near, **kw), rtol=2e-2)
    want_grad = numeric_grad(lambda z: ref_sparse_focal(labels[:1], z, **kw), near, h=1e-4)
    np.testing.assert_allclose(grad.numpy(), want_grad, rtol=2e-2, atol=1e-12)
    # the badly classified row keeps its full cross-entropy (no cap)
    np.testing.assert_allclose(value_and_row(sparse, labels[2:], logits[2:]), [2e4], rtol=1e-6)


def value_and_row(loss, labels, logits):
    return loss(labels, logits).numpy()


def test_case_c4_multi_hot_rejected_naming_sigmoid_focal():
    multi_hot = np.array([[1.0, 0.0, 1.0, 0.0]], np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="SigmoidFocalCrossentropy") as err:
        tfloss.CategoricalFocalCrossentropy(from_logits=True)(multi_hot, np.zeros((1, 4), np.float32))
    assert "sum to 1" in str(err.value)
    # the same targets are fine for the sigmoid focal loss
    assert np.isfinite(tfloss.SigmoidFocalCrossentropy(from_logits=True)(multi_hot, np.zeros((1, 4), np.float32)))


# --- argument errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tfloss.SigmoidFocalCrossentropy(alpha=1.5), r"alpha entries must be finite and \[0.0, 1.0\]"),
        (lambda: tfloss.SigmoidFocalCrossentropy(alpha=[0.2, -0.1]), r"alpha entries must be finite and \[0.0, 1.0\]"),
        (lambda: tfloss.CategoricalFocalCrossentropy(alpha=-0.5), "alpha entries must be finite and >= 0"),
        (lambda: tfloss.SparseCategoricalFocalCrossentropy(gamma=-1.0), "gamma entries must be finite and >= 0"),
        (lambda: tfloss.SigmoidFocalCrossentropy(gamma=[2.0, -0.5]), "gamma entries must be finite and >= 0"),
        (lambda: tfloss.CategoricalFocalCrossentropy(gamma=None), "gamma must be a number >= 0"),
        (lambda: tfloss.CategoricalFocalCrossentropy(alpha=[[0.5]]), "alpha must be a scalar or a 1-D list"),
        (lambda: tfloss.SigmoidFocalCrossentropy(class_reduction="max"), "class_reduction must be one of"),
        (lambda: tfloss.SparseCategoricalFocalCrossentropy(ignore_class=0.5), "ignore_class must be an int"),
        (lambda: tfloss.SparseCategoricalFocalCrossentropy(label_smoothing=1.0), "label_smoothing must be"),
    ],
)
def test_constructor_errors_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_per_class_vectors_of_wrong_length_fail_at_call():
    logits = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="alpha has 2 entries but y_pred has 3 classes"):
        tfloss.SparseCategoricalFocalCrossentropy(alpha=[0.2, 0.8])(np.array([0, 1]), logits)
    with pytest.raises(ValueError, match="alpha has 2 entries but y_pred has 3 classes"):
        tfloss.CategoricalFocalCrossentropy(alpha=[0.2, 0.8])(ref.one_hot([0, 1], 3), logits)
    with pytest.raises(ValueError, match="gamma has 4 entries but y_pred has 3 classes"):
        tfloss.SigmoidFocalCrossentropy(gamma=[1.0, 1.0, 1.0, 1.0])(np.zeros((2, 3)), logits)
    with pytest.raises(ValueError, match="alpha must have one entry per class"):
        tfloss.ops.sigmoid_focal_crossentropy(np.zeros((2, 3)), logits, alpha=[0.5, 0.5])


def test_out_of_range_labels_raise_on_cpu_and_are_nan_under_xla():
    logits = tf.zeros((3, 4))
    for smoothing in (0.0, 0.1):
        loss = tfloss.SparseCategoricalFocalCrossentropy(from_logits=True, label_smoothing=smoothing, reduction="none")
        with pytest.raises(tf.errors.InvalidArgumentError, match="y_true: every sparse label"):
            loss(np.array([0, 1, 4]), logits)
        values = tf.function(loss, jit_compile=True)(tf.constant([0, 1, 4]), logits).numpy()
        assert np.isfinite(values[:2]).all() and np.isnan(values[2])


def test_ops_functions_check_their_arguments_too():
    targets, logits = np.array([[1.0, 0.0]]), np.zeros((1, 2), np.float32)
    with pytest.raises(ValueError, match="alpha must be finite and in"):
        tfloss.ops.sigmoid_focal_crossentropy(targets, logits, alpha=2.0, from_logits=True)
    with pytest.raises(ValueError, match="gamma must be finite and in"):
        tfloss.ops.categorical_focal_crossentropy(targets, logits, gamma=-1.0, from_logits=True)
    with pytest.raises(ValueError, match="label_smoothing must be finite and in"):
        tfloss.ops.sparse_categorical_focal_crossentropy(np.array([0]), logits, label_smoothing=1.0)
