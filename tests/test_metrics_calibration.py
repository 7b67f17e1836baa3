"""ECE (top-label and class-wise), reliability diagrams, NLL and Brier score:
scikit-learn and float64 NumPy references over streamed batches, XLA,
distribution, serialization (incl. a fresh process), errors."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss
from sklearn.metrics import log_loss

import reference as ref_ce
import reference_metrics as ref
import support
import tfloss
from tfloss import _keras

keras = _keras.keras


def compiled_update(metric):
    """``metric.update_state`` under XLA (tf_keras's returns an Operation, so wrap it)."""

    @tf.function(jit_compile=True)
    def step(*args):
        metric.update_state(*args)

    return step


@st.composite
def streams(draw, binary=False):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    classes = 2 if binary else draw(st.integers(2, 8))
    scale = draw(st.sampled_from([0.5, 2.0, 6.0]))
    batches = []
    for _ in range(draw(st.integers(1, 5))):
        size = draw(st.integers(1, 12))
        logits = (rng.normal(size=(size, 1 if binary else classes)) * scale).astype(np.float32)
        labels = rng.integers(0, classes, size)
        weights = rng.uniform(0.05, 3.0, size).astype(np.float32)
        batches.append((labels, logits, weights))
    return classes, batches


def _feed(metric, batches, weighted, label_fn=lambda y: y, pred_fn=lambda z: z, compiled=False):
    metric.reset_state()
    step = compiled_update(metric) if compiled else metric.update_state
    for labels, logits, weights in batches:
        args = (tf.constant(label_fn(labels)), tf.constant(pred_fn(logits)))
        if weighted:
            args += (tf.constant(weights),)
        step(*args)
    return float(metric.result())


def _joined(batches, weighted):
    labels = np.concatenate([b[0] for b in batches])
    logits = np.concatenate([b[1] for b in batches])
    weights = np.concatenate([b[2] for b in batches]) if weighted else None
    return labels, logits, weights


def _softmax32(z):
    return ref_ce.softmax(z).astype(np.float32)


# clipping at 1e-7 leaves rows a hair off 1, which sklearn warns about
@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")
@given(streams(), st.booleans(), st.booleans())
def test_nll_and_brier_match_sklearn(stream, weighted, from_logits):
    classes, batches = stream
    pred = (lambda z: z) if from_logits else _softmax32
    labels, logits, weights = _joined(batches, weighted)
    probs = _softmax32(logits).astype(np.float64)
    probs /= probs.sum(-1, keepdims=True)
    nll = _feed(tfloss.NegativeLogLikelihood(from_logits=from_logits), batches, weighted, pred_fn=pred)
    brier = _feed(tfloss.BrierScore(from_logits=from_logits), batches, weighted, pred_fn=pred)
    # from probabilities, log(p) is clipped at 1e-7 as in Keras (sklearn clips at float64 eps)
    want_nll = log_loss(labels, np.clip(probs, 1e-7, 1) if not from_logits else probs,
                        labels=np.arange(classes), sample_weight=weights)
    want_brier = brier_score_loss(labels, probs, labels=np.arange(classes), sample_weight=weights)
    if classes == 2:  # sklearn's binary convention from a 2-column input: (p_1 - y)^2, half the 2-class sum
        want_brier *= 2
    np.testing.assert_allclose(nll, want_nll, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(brier, want_brier, rtol=2e-5, atol=1e-6)


@given(streams(binary=True), st.booleans(), st.booleans())
def test_binary_models_match_sklearn(stream, weighted, from_logits):
    _, batches = stream
    labels, logits, weights = _joined(batches, weighted)
    sig = (lambda z: z) if from_logits else (lambda z: (1 / (1 + np.exp(-z))).astype(np.float32))
    # the reference sees what the metric sees: float32 probabilities (1 - p of a float32
    # p near 1 keeps few digits), or exact logits
    p = 1 / (1 + np.exp(-logits[:, 0].astype(np.float64))) if from_logits else sig(logits[:, 0]).astype(np.float64)
    for y_fn in (lambda y: y, lambda y: y[:, None].astype(np.float32)):
        nll = _feed(tfloss.NegativeLogLikelihood(from_logits=from_logits), batches, weighted, y_fn, sig)
        brier = _feed(tfloss.BrierScore(from_logits=from_logits), batches, weighted, y_fn, sig)
        # clipped at 1e-7 as Keras; the bounds are float32 numbers (1 - 1e-7 rounds to 1 - 1.19e-7)
        p_clip = p if from_logits else np.clip(p.astype(np.float32), np.float32(1e-7), np.float32(1 - 1e-7))
        p_clip = p_clip.astype(np.float64)
        np.testing.assert_allclose(nll, log_loss(labels, p_clip, labels=[0, 1], sample_weight=weights),
                                   rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(brier, brier_score_loss(labels, p, sample_weight=weights), rtol=2e-5, atol=1e-6)
        ece = _feed(tfloss.ExpectedCalibrationError(num_bins=10, from_logits=from_logits), batches, weighted, y_fn, sig)
        two_col = np.stack([1 - p, p], -1)
        want = ref.ece_top_label(np.eye(2)[labels], two_col, 10, weights)
        np.testing.assert_allclose(ece, want, rtol=1e-4, atol=2e-6)


@given(streams(), st.sampled_from([1, 5, 15]), st.booleans(), st.booleans())
def test_ece_matches_reference(stream, num_bins, class_wise, weighted):
    classes, batches = stream
    labels, logits, weights = _joined(batches, weighted)
    probs = _softmax32(logits)
    metric = tfloss.ExpectedCalibrationError(num_bins, class_wise=class_wise, num_classes=classes, from_logits=True)
    got = _feed(metric, batches, weighted)
    fn = ref.ece_class_wise if class_wise else ref.ece_top_label
    # bins are chosen from float32 probabilities (softmax rounding may move a value
    # across an edge only when it lies within 1 ulp of it: measure zero here)
    np.testing.assert_allclose(got, fn(np.eye(classes)[labels], probs, num_bins, weights), rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("from_logits", [True, False])
def test_xla_updates_match_eager(from_logits):
    """Every calibration metric's update compiles under XLA and streams the same state."""
    rng = np.random.default_rng(4)
    batches = [(rng.integers(0, 5, 16), (rng.normal(size=(16, 5)) * 3).astype(np.float32),
                rng.uniform(0, 2, 16).astype(np.float32)) for _ in range(3)]
    pred = (lambda z: z) if from_logits else _softmax32

    def makes():
        return [tfloss.ExpectedCalibrationError(10, from_logits=from_logits),
                tfloss.ExpectedCalibrationError(10, class_wise=True, num_classes=5, from_logits=from_logits),
                tfloss.NegativeLogLikelihood(from_logits=from_logits), tfloss.BrierScore(from_logits=from_logits)]

    eager, compiled = makes(), makes()

    @tf.function(jit_compile=True)
    def step(y, z, w):
        for metric in compiled:
            metric.update_state(y, z, w)

    for labels, logits, weights in batches:
        step(tf.constant(labels), tf.constant(pred(logits)), tf.constant(weights))
        for metric in eager:
            metric.update_state(labels, pred(logits), weights)
    for e, c in zip(eager, compiled):
        np.testing.assert_allclose(float(c.result()), float(e.result()), rtol=1e-5, atol=1e-7)


def test_ece_soft_and_onehot_targets_and_time_axis():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=(6, 5)).astype(np.float32)
    labels = rng.integers(0, 4, (6, 5))
    onehot = np.eye(4, dtype=np.float32)[labels]
    soft = (0.8 * onehot + 0.05).astype(np.float32)
    sw = rng.uniform(0, 1, 6).astype(np.float32)
    for y in (labels, onehot, labels[..., None]):
        m = tfloss.ExpectedCalibrationError(num_bins=7)
        m.update_state(y, probs, sample_weight=sw)
        want = ref.ece_top_label(onehot.reshape(-1, 4), probs.reshape(-1, 4), 7, np.repeat(sw, 5))
        np.testing.assert_allclose(m.result(), want, rtol=1e-5)
    m = tfloss.ExpectedCalibrationError(num_bins=7)
    m.update_state(soft, probs)
    np.testing.assert_allclose(m.result(), ref.ece_top_label(soft.reshape(-1, 4), probs.reshape(-1, 4), 7), rtol=1e-5)


def test_bin_edges_are_right_closed():
    # confidences exactly on edges 0.5 and 1.0 (binary model): bins (0.4, 0.5] and (0.9, 1.0]
    metric = tfloss.ExpectedCalibrationError(num_bins=10)
    # p = 0.5 ties the two classes: the prediction is the first (argmax), class 0
    metric.update_state(np.array([0, 1, 0]), np.array([[0.5], [1.0], [0.0]], np.float32))
    diagram = tfloss.reliability_diagram(metric, draw=False)
    np.testing.assert_array_equal(diagram["counts"], [0, 0, 0, 0, 1, 0, 0, 0, 0, 2])
    np.testing.assert_allclose(diagram["confidence"][[4, 9]], [0.5, 1.0])
    np.testing.assert_allclose(diagram["accuracy"][[4, 9]], [1.0, 1.0])
    assert np.isnan(diagram["accuracy"][0]) and np.isnan(diagram["gap"][0])
    np.testing.assert_allclose(diagram["ece"], 0.5 / 3, rtol=1e-6)
    np.testing.assert_allclose(diagram["edges"], np.linspace(0, 1, 11))


def test_reliability_diagram_draws_and_class_wise_arrays():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3) * 0.5, 200).astype(np.float32)
    labels = rng.integers(0, 3, 200)
    metric = tfloss.ExpectedCalibrationError(num_bins=5, class_wise=True, num_classes=3)
    metric.update_state(labels, probs)
    diagram = tfloss.reliability_diagram(metric)
    assert diagram["counts"].shape == (3, 5) and diagram["accuracy"].shape == (3, 5)
    np.testing.assert_allclose(diagram["counts"].sum(-1), [200, 200, 200])
    assert diagram["axes"] is not None and len(diagram["axes"].patches) > 0
    assert "ECE" in diagram["axes"].get_title()
    with pytest.raises(TypeError, match="ExpectedCalibrationError"):
        tfloss.reliability_diagram(tfloss.BrierScore())


def test_zero_weight_rows_never_poison_state():
    nll = tfloss.NegativeLogLikelihood()
    nll.update_state(np.array([0, 1]), np.array([[1.0, 0.0], [1.0, 0.0]], np.float32), sample_weight=[1.0, 0.0])
    np.testing.assert_allclose(nll.result(), -np.log(1 - 1e-7), rtol=1e-3, atol=1e-6)
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], np.float32)
    nll = tfloss.NegativeLogLikelihood(from_logits=True)
    nll.update_state(np.array([0, 0]), logits)
    np.testing.assert_allclose(nll.result(), 2e4 / 2, rtol=1e-6)  # exact log-softmax, no clipping


def test_out_of_range_and_bad_probabilities():
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true: every sparse label"):
        tfloss.BrierScore().update_state(np.array([0, 5]), np.full((2, 3), 1 / 3, np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="from_logits=True"):
        tfloss.ExpectedCalibrationError().update_state(np.array([0, 1]), np.array([[2.0, -1.0], [0.0, 1.0]]))
    m = tfloss.NegativeLogLikelihood(from_logits=True)
    compiled_update(m)(tf.constant([0, 9]), tf.zeros((2, 3)))
    assert np.isnan(float(m.result()))
    ece = tfloss.ExpectedCalibrationError(from_logits=True)
    compiled_update(ece)(tf.constant([0, 9]), tf.zeros((2, 3)))
    assert np.isnan(float(ece.result()))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tfloss.ExpectedCalibrationError(num_bins=0), "num_bins must be a positive int"),
        (lambda: tfloss.ExpectedCalibrationError(class_wise=True), "num_classes is required"),
        (lambda: tfloss.ExpectedCalibrationError(class_wise=True, num_classes=1), "num_classes must be at least 2"),
    ],
)
def test_constructor_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_class_wise_num_classes_must_match():
    with pytest.raises(ValueError, match="num_classes=3"):
        tfloss.ExpectedCalibrationError(class_wise=True, num_classes=3).update_state([0], np.full((1, 4), 0.25))


def test_directions():
    for metric in (tfloss.ExpectedCalibrationError(), tfloss.NegativeLogLikelihood(), tfloss.BrierScore()):
        assert metric._direction == "down" and tfloss.monitor_mode(metric) == "min"


CONFIGS = [
    lambda: tfloss.ExpectedCalibrationError(num_bins=10, class_wise=True, num_classes=3, from_logits=True),
    lambda: tfloss.ExpectedCalibrationError(),
    lambda: tfloss.NegativeLogLikelihood(from_logits=True, name="nll"),
    lambda: tfloss.BrierScore(),
]


@pytest.mark.parametrize("make", CONFIGS)
def test_config_roundtrip(make):
    metric = make()
    clone = support.assert_config_roundtrip(metric)
    assert clone.get_config() == metric.get_config()


def test_distributed_equals_single_device(two_replica_strategy):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 40)
    logits = (rng.normal(size=(40, 4)) * 3).astype(np.float32)
    weights = rng.uniform(0, 2, 40).astype(np.float32)

    def makes():
        return [tfloss.ExpectedCalibrationError(8, from_logits=True),
                tfloss.ExpectedCalibrationError(8, class_wise=True, num_classes=4, from_logits=True),
                tfloss.NegativeLogLikelihood(from_logits=True), tfloss.BrierScore(from_logits=True)]

    single = makes()
    for metric in single:
        metric.update_state(labels, logits, weights)
    with two_replica_strategy.scope():
        multi = makes()
    dataset = tf.data.Dataset.from_tensor_slices((labels, logits, weights)).batch(10)
    dist = two_replica_strategy.experimental_distribute_dataset(dataset)

    @tf.function
    def step(y, z, w):
        for metric in multi:
            metric.update_state(y, z, w)

    for y, z, w in dist:
        two_replica_strategy.run(step, args=(y, z, w))
    for one, many in zip(single, multi):
        np.testing.assert_allclose(float(many.result()), float(one.result()), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(multi[0].bin_counts.numpy(), single[0].bin_counts.numpy(), rtol=1e-6)


def test_fresh_process_roundtrip_of_compiled_metrics(tmp_path):
    """One subprocess for the whole metrics family: every metric compiled into a model."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(48, 5)).astype(np.float32)
    y = rng.integers(0, 3, 48)
    images = rng.uniform(size=(16, 12, 12, 1)).astype(np.float32)
    image_model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(1, 3, padding="same")])
    cases = [
        dict(name="classifier", x=x, y=y, units=3, loss=tfloss.SparseCategoricalCrossentropy(from_logits=True),
             metrics=[tfloss.TopKAccuracy(2), tfloss.ClassificationError(), tfloss.TopKError(1, name="err1"),
                      tfloss.ExpectedCalibrationError(5, from_logits=True),
                      tfloss.ExpectedCalibrationError(5, class_wise=True, num_classes=3, from_logits=True,
                                                      name="cw_ece"),
                      tfloss.NegativeLogLikelihood(from_logits=True), tfloss.BrierScore(from_logits=True)]),
        dict(name="denoiser", x=images, y=images, model=image_model,
             loss=tfloss.SSIMLoss(filter_size=5, filter_sigma=1.0),
             metrics=[tfloss.PSNR(), tfloss.SSIM(filter_size=5, filter_sigma=1.0),
                      tfloss.MultiScaleSSIM(power_factors=[0.5, 0.5], filter_size=3, filter_sigma=0.8)]),
    ]
    got = support.fresh_process_roundtrip(cases, tmp_path)
    results = next(v for k, v in got.items() if k.endswith("classifier.keras"))["results"]
    assert {"top_2_accuracy", "classification_error", "err1", "cw_ece", "brier_score"} <= set(results)
    results = next(v for k, v in got.items() if k.endswith("denoiser.keras"))["results"]
    assert {"psnr", "ssim", "ms_ssim"} <= set(results)


def test_nll_from_probabilities_rejects_logits():
    metric = tfloss.NegativeLogLikelihood(from_logits=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_pred"):
        metric.update_state(np.array([0, 1]), np.array([[-0.5, 1.5], [2.0, -1.0]], np.float32))
