"""Top-k accuracy, top-k error and classification error: scikit-learn and Keras
as oracles, ties, label formats, streaming with weights, XLA, distribution and
serialization."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import top_k_accuracy_score

import reference_metrics as ref
import support
import tfloss
from tfloss import _keras

keras = _keras.keras


@st.composite
def streams(draw, max_classes=12, ties=False):
    """Several batches of (labels, scores, weights) for one metric stream."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    classes = draw(st.integers(3, max_classes))
    batches = []
    for _ in range(draw(st.integers(1, 6))):
        size = draw(st.integers(1, 9))
        scores = rng.normal(size=(size, classes)).astype(np.float32)
        if ties:  # few distinct values: many ties, also at the top-k boundary
            scores = np.round(scores).astype(np.float32)
        labels = rng.integers(0, classes, size)
        weights = rng.uniform(0.0, 3.0, size).astype(np.float32)
        batches.append((labels, scores, weights))
    return classes, batches


def compiled_update(metric):
    """``metric.update_state`` under XLA (tf_keras's returns an Operation, so wrap it)."""

    @tf.function(jit_compile=True)
    def step(*args):
        metric.update_state(*args)

    return step


def _stream(metric, batches, weighted, dense=False, classes=None):
    metric.reset_state()
    for labels, scores, weights in batches:
        y = np.eye(classes, dtype=np.float32)[labels] if dense else labels
        metric.update_state(y, scores, sample_weight=weights if weighted else None)
    return float(metric.result())


# k >= C is allowed (every row a hit); sklearn warns that it is meaningless
@pytest.mark.filterwarnings("ignore:'k' .* greater than or equal to 'n_classes'")
@given(streams(), st.integers(1, 4), st.booleans(), st.booleans())
def test_streamed_topk_matches_sklearn(stream, k, weighted, dense):
    classes, batches = stream
    got = _stream(tfloss.TopKAccuracy(k), batches, weighted, dense, classes)
    labels = np.concatenate([b[0] for b in batches])
    scores = np.concatenate([b[1] for b in batches]).astype(np.float64)
    weights = np.concatenate([b[2] for b in batches]) if weighted else None
    if weighted and weights.sum() == 0:
        return
    want = top_k_accuracy_score(labels, scores, k=k, labels=np.arange(classes), sample_weight=weights)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    err = _stream(tfloss.TopKError(k), batches, weighted, dense, classes)
    np.testing.assert_allclose(err, 1.0 - want, rtol=1e-5, atol=1e-6)


@given(streams(ties=True), st.integers(1, 4), st.booleans())
def test_ties_follow_in_top_k_and_keras(stream, k, weighted):
    classes, batches = stream
    metric = tfloss.TopKAccuracy(k)
    keras_metric = keras.metrics.SparseTopKCategoricalAccuracy(k)
    got = _stream(metric, batches, weighted)
    keras_metric.reset_state()
    for labels, scores, weights in batches:
        keras_metric.update_state(labels, scores, sample_weight=weights if weighted else None)
        np.testing.assert_array_equal(
            tfloss.ops.top_k_hits(labels, scores, k).numpy(), tf.math.in_top_k(labels, scores, k).numpy()
        )
    np.testing.assert_allclose(got, float(keras_metric.result()), rtol=1e-5, atol=1e-6)
    labels = np.concatenate([b[0] for b in batches])
    scores = np.concatenate([b[1] for b in batches])
    weights = np.concatenate([b[2] for b in batches]) if weighted else None
    np.testing.assert_allclose(got, ref.weighted_mean(ref.top_k_hits(labels, scores, k), weights), rtol=1e-5, atol=1e-6)


def test_tie_rule_examples():
    scores = np.array([[1.0, 1.0, 1.0, 0.0], [2.0, 1.0, 1.0, 1.0], [3.0, 2.0, 1.0, 1.0]], np.float32)
    # row 0: label 2 tied with two others for first -> a top-1 hit; row 1: label 3 is tied
    # for second place with two others -> top-2 hit; row 2: label 3 tied for third -> not top-2
    hits = tfloss.ops.top_k_hits(np.array([2, 3, 3]), scores, 1).numpy()
    np.testing.assert_array_equal(hits, [1.0, 0.0, 0.0])
    hits = tfloss.ops.top_k_hits(np.array([2, 3, 3]), scores, 2).numpy()
    np.testing.assert_array_equal(hits, [1.0, 1.0, 0.0])
    ce = tfloss.ClassificationError()
    ce.update_state(np.array([2, 3, 3]), scores)
    np.testing.assert_allclose(ce.result(), 2.0 / 3.0, rtol=1e-6)


def test_onehot_soft_and_sparse_shapes_agree_with_keras():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(20, 6)).astype(np.float32)
    labels = rng.integers(0, 6, 20)
    onehot = np.eye(6, dtype=np.float32)[labels]
    soft = 0.5 * onehot + 0.5 * rng.dirichlet(np.ones(6), 20).astype(np.float32) * 0.9
    results = []
    for y in (labels, labels[:, None], labels.astype(np.float32), onehot, onehot.astype(np.int32), soft):
        m = tfloss.TopKAccuracy(3)
        m.update_state(y, scores)
        results.append(float(m.result()))
    keras_onehot = keras.metrics.TopKCategoricalAccuracy(3)
    keras_onehot.update_state(onehot, scores)
    np.testing.assert_allclose(results, float(keras_onehot.result()), rtol=1e-6)
    assert tfloss.ops.accuracy.is_dense_labels(tf.constant(onehot), tf.constant(scores))
    assert not tfloss.ops.accuracy.is_dense_labels(tf.constant(labels[:, None]), tf.constant(scores))


def test_time_axis_and_per_timestep_weights():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(3, 5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (3, 5))
    sw_sample = np.array([1.0, 0.0, 2.0], np.float32)
    sw_step = rng.uniform(0, 1, (3, 5)).astype(np.float32)
    hits = ref.top_k_hits(labels, scores, 2).reshape(3, 5)
    for sw, want_w in ((None, None), (sw_sample, np.repeat(sw_sample, 5)), (sw_step, sw_step)):
        m = tfloss.TopKAccuracy(2)
        m.update_state(labels, scores, sample_weight=sw)
        np.testing.assert_allclose(m.result(), ref.weighted_mean(hits, want_w), rtol=1e-6)


def test_non_finite_rows_are_misses_everywhere():
    scores = np.array([[1.0, 2.0, np.inf], [1.0, np.nan, 0.5], [1.0, 2.0, 3.0]], np.float32)
    labels = np.array([2, 0, 2])
    eager = tfloss.ops.top_k_hits(labels, scores, 2).numpy()
    xla = tf.function(lambda y, p: tfloss.ops.top_k_hits(y, p, 2), jit_compile=True)(labels, scores).numpy()
    np.testing.assert_array_equal(eager, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(xla, eager)
    np.testing.assert_array_equal(eager, tf.math.in_top_k(labels, scores, 2).numpy())


def test_zero_weights_and_empty_state():
    m = tfloss.TopKAccuracy(1)
    assert float(m.result()) == 0.0
    m.update_state([0, 1], np.array([[1.0, 0.0], [1.0, 0.0]], np.float32), sample_weight=[0.0, 0.0])
    assert float(m.result()) == 0.0
    m.update_state([0, 1], np.array([[1.0, 0.0], [1.0, 0.0]], np.float32), sample_weight=[1.0, 3.0])
    np.testing.assert_allclose(m.result(), 0.25)
    m.reset_state()
    assert float(m.result()) == 0.0 and float(m.count) == 0.0


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="k must be a positive int"):
        tfloss.TopKAccuracy(0)
    with pytest.raises(ValueError, match="k must be a positive int"):
        tfloss.TopKError(2.5)
    with pytest.raises(ValueError, match=r"y_true \(sparse integer labels\)"):
        tfloss.TopKAccuracy(2).update_state(np.zeros((4, 2, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"y_true \(one-hot or soft targets\)"):
        tfloss.TopKAccuracy(2).update_state(np.zeros((4, 5)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="y_pred must be scores"):
        tfloss.TopKAccuracy(2).update_state(np.zeros((4,)), np.zeros((4,)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true: every sparse label"):
        tfloss.TopKAccuracy(2).update_state(np.array([0, 3]), np.zeros((2, 3)))


def test_out_of_range_label_is_nan_under_xla():
    m = tfloss.TopKAccuracy(1)
    compiled_update(m)(tf.constant([0, 7]), tf.zeros((2, 3)))
    assert np.isnan(float(m.result()))


@pytest.mark.parametrize("dense", [False, True])
def test_xla_update_matches_eager(dense):
    rng = np.random.default_rng(2)
    batches = [(rng.integers(0, 10, 16), rng.normal(size=(16, 10)).astype(np.float32),
                rng.uniform(0, 2, 16).astype(np.float32)) for _ in range(4)]
    eager, compiled = tfloss.TopKAccuracy(3), tfloss.TopKAccuracy(3)
    step = compiled_update(compiled)
    for labels, scores, weights in batches:
        y = np.eye(10, dtype=np.float32)[labels] if dense else labels
        eager.update_state(y, scores, weights)
        step(tf.constant(y), tf.constant(scores), tf.constant(weights))
    np.testing.assert_allclose(float(compiled.result()), float(eager.result()), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_other_score_dtypes(dtype):
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(32, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 32)
    cast = tf.cast(scores, dtype)
    want = ref.top_k_hits(labels, tf.cast(cast, tf.float64).numpy(), 2)
    np.testing.assert_array_equal(tfloss.ops.top_k_hits(labels, cast, 2).numpy(), want)


def test_direction_and_monitor_mode():
    assert tfloss.TopKAccuracy()._direction == "up"
    assert tfloss.TopKError()._direction == "down"
    assert tfloss.ClassificationError()._direction == "down"
    assert tfloss.monitor_mode(tfloss.TopKAccuracy()) == "max"
    assert tfloss.monitor_mode(tfloss.ClassificationError()) == "min"
    assert tfloss.TopKAccuracy(3).name == "top_3_accuracy" and tfloss.TopKError(3).name == "top_3_error"


@pytest.mark.parametrize("make", [lambda: tfloss.TopKAccuracy(3, name="t3"), lambda: tfloss.TopKError(2),
                                  lambda: tfloss.ClassificationError()])
def test_config_roundtrip(make):
    metric = make()
    clone = support.assert_config_roundtrip(metric)
    assert clone.name == metric.name and getattr(clone, "k", None) == metric.k


def test_early_stopping_auto_mode_direction():
    """EarlyStopping(mode="auto") must maximise top-k accuracy and minimise the error."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 4, 64)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=tfloss.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[tfloss.TopKAccuracy(2), tfloss.ClassificationError()])
    stops = [keras.callbacks.EarlyStopping(monitor=m, mode="auto") for m in ("top_2_accuracy", "classification_error")]
    model.fit(x, y, epochs=1, verbose=0, callbacks=stops)
    if _keras.IS_KERAS_3:
        assert [s.monitor_op for s in stops] == [keras.ops.greater, keras.ops.less]
    else:
        assert [s.monitor_op for s in stops] == [np.greater, np.less]


def test_mirrored_strategy_equals_single_device(two_replica_strategy):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(48, 6)).astype(np.float32)
    y = rng.integers(0, 5, 48)
    sw = rng.uniform(0, 2, 48).astype(np.float32)
    kernel = rng.normal(size=(6, 5)).astype(np.float32)

    def build():
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, use_bias=False)])
        model.layers[-1].set_weights([kernel])
        # weighted_metrics: Keras passes sample_weight only to these
        model.compile(loss=tfloss.SparseCategoricalCrossentropy(from_logits=True),
                      weighted_metrics=[tfloss.TopKAccuracy(2), tfloss.ClassificationError()])
        return model

    single = build().evaluate(x, y, sample_weight=sw, batch_size=16, verbose=0, return_dict=True)
    with two_replica_strategy.scope():
        multi = build()
    multi = multi.evaluate(x, y, sample_weight=sw, batch_size=16, verbose=0, return_dict=True)
    scores = x @ kernel
    want = ref.weighted_mean(ref.top_k_hits(y, scores, 2), sw)
    np.testing.assert_allclose(single["top_2_accuracy"], want, rtol=1e-5)
    for key in ("top_2_accuracy", "classification_error"):
        np.testing.assert_allclose(multi[key], single[key], rtol=1e-6)
