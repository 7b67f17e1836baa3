"""Top-k losses against float64 NumPy references (subset enumeration, recursion)."""

import math

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from reference_topk import _log_esp_recursion, brute_smooth, hard_reference, recursion_smooth
import support
import tfloss
from tfloss import _keras

keras = _keras.keras


# --- float64 references (tests/reference_topk.py) ----------------------------


def reference_rows(scores, labels, k, alpha, tau):
    fn = brute_smooth if scores.shape[-1] <= 9 else recursion_smooth
    out = [fn(s, y, k, alpha, tau) for s, y in zip(scores, labels)]
    return np.array([o[0] for o in out]), np.stack([o[1] for o in out])


def value_grad(loss, labels, scores):
    return support.value_and_grad(loss, labels, tf.constant(scores))


def assert_close_to_reference(value, grad, scores, labels, want, want_grad):
    # float32 rounds each (s_i - s_y) / (k tau) by eps = 6e-8, so no float32
    # method beats eps * sum_i |dL/ds_i| |s_i - s_y| (the loss's condition):
    # ask 1e-6 of that plus of the value. Below 1e-37 float32 underflows.
    value = np.asarray(value, np.float64)
    cond = np.abs(want) + (np.abs(want_grad) * np.abs(scores - np.take_along_axis(scores, labels[:, None], 1))).sum(-1)
    np.testing.assert_array_less(np.abs(value - want), 1e-6 * cond + 1e-37)
    # gradient entries: differences of subset marginals in [0, 1/k], in float32
    np.testing.assert_allclose(np.asarray(grad, np.float64), want_grad, rtol=1e-5, atol=2e-6)


# --- values and gradients ---------------------------------------------------


@pytest.mark.parametrize("n, k", [(6, 5), (7, 1), (8, 3), (9, 2)])
def test_smooth_matches_subset_enumeration_over_scale_and_tau(n, k):
    rng = np.random.default_rng(n * 10 + k)
    for scale in (1.0, 10.0, 100.0, 1000.0):
        for tau in (1e-3, 1e-2, 1e-1, 1.0, 10.0):
            scores = (rng.normal(size=(4, n)) * scale).astype(np.float32)
            labels = rng.integers(0, n, 4)
            labels[0] = np.argmax(scores[0])  # the label on top
            labels[1] = np.argmin(scores[1])  # and at the bottom
            for alpha in (0.0, 1.0):
                loss = tfloss.SmoothTopKSVM(k=k, alpha=alpha, tau=tau, reduction="none")
                value, grad = value_grad(loss, labels, scores)
                want, want_grad = reference_rows(scores.astype(np.float64), labels, k, alpha, tau)
                assert_close_to_reference(value, grad, scores.astype(np.float64), labels, want, want_grad)


@pytest.mark.parametrize("n, k", [(60, 5), (200, 1), (200, 20), (1000, 10)])
def test_smooth_matches_recursion_for_larger_n(n, k):
    rng = np.random.default_rng(n + k)
    for scale, tau in [(1.0, 1.0), (1000.0, 1e-3), (30.0, 0.1), (1.0, 10.0)]:
        scores = (rng.normal(size=(2, n)) * scale).astype(np.float32)
        labels = rng.integers(0, n, 2)
        value, grad = value_grad(tfloss.SmoothTopKSVM(k=k, tau=tau, reduction="none"), labels, scores)
        want, want_grad = reference_rows(scores.astype(np.float64), labels, k, 1.0, tau)
        assert_close_to_reference(value, grad, scores.astype(np.float64), labels, want, want_grad)


def test_recursion_reference_agrees_with_enumeration():
    rng = np.random.default_rng(0)
    s = rng.normal(size=8) * 3
    for k in (1, 3, 7):
        a, ga = brute_smooth(s, 2, k, 0.5, 0.7)
        b, gb = recursion_smooth(s, 2, k, 0.5, 0.7)
        np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(ga, gb, atol=1e-12)


@pytest.mark.parametrize("n", [128, 129, 256, 1000, 8192, 8193, 30000])
def test_log_elementary_symmetric_across_slab_layouts(n):
    # one slab (n <= 128), a padded partial slab first (129 and 1000 with
    # lanes of 8, 8193 with lanes of 9), whole slabs only (256, and 8192 = 64
    # slabs of 128), and 30 lanes (30000): every path through
    # ops.symmetric._linear_esp
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.normal(size=(1, n)), rng.normal(size=(1, n)) * 8], 0).astype(np.float32)
    k = 12
    got = tfloss.ops.log_elementary_symmetric(x, k).numpy()
    want = _log_esp_recursion(x.astype(np.float64), k)
    tol = 1e-6 * (1 + np.sort(np.abs(x), -1)[:, ::-1].cumsum(-1)[:, :k])
    np.testing.assert_array_less(np.abs(got[:, 1:] - want[:, 1:]), tol)

def test_log_elementary_symmetric_matches_recursion():
    rng = np.random.default_rng(1)
    for scale in (1.0, 100.0, 1e4):
        x = (rng.normal(size=(3, 40)) * scale).astype(np.float32)
        got = tfloss.ops.log_elementary_symmetric(x, 6).numpy()
        want = _log_esp_recursion(x.astype(np.float64), 6)
        # each log e_j carries eps times the sum of the j largest |x|
        tol = 1e-6 * (1 + np.sort(np.abs(x), -1)[:, ::-1].cumsum(-1)[:, :6])
        np.testing.assert_array_less(np.abs(got[:, 1:] - want[:, 1:]), tol)
        np.testing.assert_array_equal(got[:, 0], 0.0)


def test_hard_matches_reference_and_gradient():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(16, 10)).astype(np.float32) * 2
    labels = rng.integers(0, 10, 16)
    for k, alpha in [(1, 1.0), (3, 0.5), (9, 2.0)]:
        value, grad = value_grad(tfloss.HardTopKSVM(k=k, alpha=alpha, reduction="none"), labels, scores)
        want = [hard_reference(s, y, k, alpha) for s, y in zip(scores, labels)]
        np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6)
        for row, (s, y) in enumerate(zip(scores, labels)):
            expected = np.zeros(10)
            if want[row] > 0:
                kth = np.argsort(-np.where(np.arange(10) == y, -np.inf, s), kind="stable")[k - 1]
                expected[kth], expected[y] = 1 / k, -1 / k
            np.testing.assert_allclose(grad[row], expected, atol=1e-7)


# --- limits -------------------------------------------------------------------


def test_k1_alpha0_tau1_is_softmax_cross_entropy():
    rng = np.random.default_rng(3)
    for scale in (0.1, 1.0, 30.0, 1e3):
        scores = (rng.normal(size=(32, 12)) * scale).astype(np.float32)
        labels = rng.integers(0, 12, 32)
        ours, g = value_grad(tfloss.SmoothTopKSVM(k=1, alpha=0.0, tau=1.0, reduction="none"), labels, scores)
        ce, g_ce = value_grad(tfloss.SparseCategoricalCrossentropy(from_logits=True, reduction="none"), labels, scores)
        np.testing.assert_allclose(ours, ce, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g, g_ce, rtol=1e-5, atol=1e-7)


def test_small_tau_tends_to_hard_loss():
    rng = np.random.default_rng(4)
    scores = rng.normal(size=(20, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 20)
    hard = tfloss.HardTopKSVM(k=3, reduction="none")(labels, scores).numpy()
    gaps = []
    for tau in (1.0, 0.1, 0.01, 1e-3, 1e-4):
        smooth = tfloss.SmoothTopKSVM(k=3, tau=tau, reduction="none")(labels, scores).numpy()
        # each log-sum-exp exceeds its max by at most tau * log(number of subsets),
        # and the softplus exceeds the hinge by at most tau * log 2
        bound = tau * (math.log(math.comb(10, 3)) + math.log(2))
        assert (np.abs(smooth - hard) <= bound + 1e-6).all()
        gaps.append(np.abs(smooth - hard).max())
    assert gaps[-1] < 1e-3 and all(a >= b for a, b in zip(gaps, gaps[1:]))


# --- extremes -----------------------------------------------------------------


def test_all_equal_scores_closed_form():
    # e_j of n - 1 equal terms 1 is C(n - 1, j): L = tau softplus(alpha / tau + log((n - k) / k))
    for n, k, alpha, tau in [(6, 5, 1.0, 1.0), (10, 3, 0.0, 0.1), (1000, 20, 1.0, 10.0), (100000, 5, 1.0, 1.0)]:
        scores = np.full((2, n), 7.5, np.float32)
        value, grad = value_grad(tfloss.SmoothTopKSVM(k=k, alpha=alpha, tau=tau, reduction="none"), [0, n - 1], scores)
        want = tau * np.logaddexp(0.0, alpha / tau + math.log((n - k) / k))
        np.testing.assert_allclose(value, [want, want], rtol=2e-6)
        g = grad.numpy()
        # symmetric in the tied classes, to float32 rounding of the row's largest entry
        np.testing.assert_allclose(g[0, 1:], g[0, 1], rtol=0, atol=1e-6 * np.abs(g[0]).max())
        np.testing.assert_allclose(g.sum(-1), 0.0, atol=1e-5)


@pytest.mark.parametrize("k", [5, 10, 20])
def test_hand_written_gradient_where_the_tail_is_dominated_or_tied(k):
    # The backward pass forms each tail class's subset probability by a
    # recursion with a subtraction (tfloss/ops/symmetric.py, _through_split); it
    # is hardest when one tail class dominates the rest, when the tail ties
    # with the k - 1 largest, and for short rows (n = k + 1, k + 2).
    # Scores are exact in float32 and tau = 1, so the float32 rounding of the
    # inputs does not blur the comparison.
    for n in (k + 1, k + 2, 2 * k, 3 * k + 1):
        rows = []
        for gap in (0.0, 0.5, 4.0, 30.0):
            s = np.zeros(n)
            s[: k - 1] = gap
            rows.append(s.copy())  # the k - 1 largest tied, the tail tied below them
            s[k - 1] = gap - 0.25
            rows.append(s.copy())  # and one tail class far above the rest of the tail
            rows.append(-np.arange(n) * gap / 8)  # evenly spaced
        scores = np.repeat(np.array(rows, np.float32), 3, axis=0)
        labels = np.tile([0, k - 1, n - 1], len(rows))
        value, grad = value_grad(tfloss.SmoothTopKSVM(k=k, reduction="none"), labels, scores)
        want, want_grad = reference_rows(scores.astype(np.float64), labels, k, 1.0, 1.0)
        assert_close_to_reference(value, grad, scores.astype(np.float64), labels, want, want_grad)


def test_ties_split_gradient_symmetrically():
    scores = np.array([[3.0, 3.0, 3.0, 1.0, 0.0, -2.0]], np.float32)
    for k in (1, 2, 3, 4):
        value, grad = value_grad(tfloss.SmoothTopKSVM(k=k, reduction="none"), [4], scores)
        want, want_grad = brute_smooth(scores[0], 4, k, 1.0, 1.0)
        np.testing.assert_allclose(value, [want], rtol=1e-6)
        np.testing.assert_allclose(grad[0], want_grad, atol=1e-6)
        np.testing.assert_allclose(grad[0, :3], grad[0, 0], rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_extreme_scores_finite_in_every_dtype(dtype):
    scores = np.array(
        [[1e4, -1e4, 0.0, 5.0, 1e4, -1e4, 3.0], [-1e4] * 6 + [1e4], [0.0] * 7, [1e4] * 7], np.float32
    )
    labels = np.array([1, 6, 3, 0])
    x = tf.cast(scores, dtype)
    for loss in (tfloss.SmoothTopKSVM(k=3), tfloss.SmoothTopKSVM(k=5, tau=1e-3), tfloss.HardTopKSVM(k=3)):
        value, grad = support.value_and_grad(loss, labels, x)
        assert np.isfinite(value.numpy()) and np.isfinite(tf.cast(grad, tf.float32).numpy()).all()
    per_row, _ = support.value_and_grad(tfloss.SmoothTopKSVM(k=3, reduction="none"), labels, x)
    want, _ = reference_rows(tf.cast(x, tf.float64).numpy(), labels, 3, 1.0, 1.0)  # the rounded inputs
    np.testing.assert_allclose(per_row, want, rtol=1e-6)
    v = tfloss.ops.smooth_topk_svm(labels, x, k=3)
    assert v.dtype == dtype and np.isfinite(tf.cast(v, tf.float32).numpy()).all()


@pytest.mark.parametrize("dtype, rtol", [("float16", 2e-3), ("bfloat16", 2e-2)])
def test_half_precision_close_to_float32(dtype, rtol):
    # tolerance: the inputs themselves are rounded to float16 (11-bit) or bfloat16 (8-bit) mantissas
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(32, 20)).astype(np.float32) * 3
    labels = rng.integers(0, 20, 32)
    loss = tfloss.SmoothTopKSVM(k=5)
    np.testing.assert_allclose(loss(labels, tf.cast(scores, dtype)), loss(labels, scores), rtol=rtol)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_fit(policy):
    _keras.set_dtype_policy(policy)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 50, 64)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(50)])
    model.compile(optimizer="sgd", loss=tfloss.SmoothTopKSVM(k=5, tau=0.1))
    hist = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    out = model.predict(x[:4], verbose=0)
    assert out.dtype != np.float32  # really ran in half precision
    want, _ = reference_rows(out.astype(np.float64), y[:4], 5, 1.0, 0.1)
    got = tfloss.SmoothTopKSVM(k=5, tau=0.1, reduction="none")(y[:4], out)
    np.testing.assert_allclose(got, want, rtol=1e-5)


# --- labels and shapes ----------------------------------------------------------


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    batch = draw(st.integers(1, 6))
    n = draw(st.integers(2, 9))
    k = draw(st.integers(1, n - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 30.0, 1000.0]))
    scores = (rng.normal(size=(batch, n)) * scale).astype(np.float32)
    labels = rng.integers(0, n, batch)
    return scores, labels, k, draw(st.sampled_from([1e-2, 1.0, 5.0])), draw(st.sampled_from(["flat", "column", "onehot"]))


@given(problems())
def test_label_formats_and_shapes_match_reference(problem):
    scores, labels, k, tau, form = problem
    y = {"flat": labels, "column": labels[:, None], "onehot": ref.one_hot(labels, scores.shape[-1]).astype(np.float32)}[form]
    value, grad = value_grad(tfloss.SmoothTopKSVM(k=k, tau=tau, reduction="none"), y, scores)
    assert value.shape == (len(labels),)
    want, want_grad = reference_rows(scores.astype(np.float64), labels, k, 1.0, tau)
    assert_close_to_reference(value, grad, scores.astype(np.float64), labels, want, want_grad)
    hard = tfloss.HardTopKSVM(k=k, reduction="none")(y, scores)
    np.testing.assert_allclose(hard, [hard_reference(s, t, k, 1.0) for s, t in zip(scores, labels)], rtol=1e-5, atol=1e-5)


def test_sample_weight_and_reductions():
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(6, 8)).astype(np.float32)
    labels = rng.integers(0, 8, 6)
    sw = rng.uniform(0, 2, 6).astype(np.float32)
    per, _ = reference_rows(scores.astype(np.float64), labels, 2, 1.0, 1.0)
    np.testing.assert_allclose(tfloss.SmoothTopKSVM(k=2)(labels, scores, sw), (per * sw).mean(), rtol=1e-6)
    np.testing.assert_allclose(tfloss.SmoothTopKSVM(k=2, reduction="sum")(labels, scores), per.sum(), rtol=1e-6)


def test_bad_labels_are_clear_errors():
    loss = tfloss.SmoothTopKSVM(k=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true: every sparse label"):
        loss(np.array([0, 5]), tf.zeros((2, 5)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="exactly one 1 a row"):
        loss(np.array([[1.0, 0, 1, 0, 0]]), tf.zeros((1, 5)))
    values = tf.function(lambda y, s: tfloss.ops.smooth_topk_svm(y, s, k=2), jit_compile=True)(
        tf.constant([0, 5]), tf.zeros((2, 5))
    ).numpy()
    assert np.isfinite(values[0]) and np.isnan(values[1])  # XLA drops asserts: NaN, not a plausible value


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tfloss.SmoothTopKSVM(k=0), "k must be an integer >= 1"),
        (lambda: tfloss.HardTopKSVM(k=2.5), "k must be an integer >= 1"),
        (lambda: tfloss.SmoothTopKSVM(tau=0.0), r"tau \(the temperature\) must be"),
        (lambda: tfloss.SmoothTopKSVM(tau=-1.0), r"tau \(the temperature\) must be"),
        (lambda: tfloss.SmoothTopKSVM(alpha=-0.5), r"alpha \(the margin\) must be"),
        (lambda: tfloss.HardTopKSVM(alpha=float("nan")), r"alpha \(the margin\) must be"),
        (lambda: tfloss.SmoothTopKSVM(reduction="mean_of_everything"), "reduction must be one of"),
    ],
)
def test_constructor_errors_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("cls", [tfloss.SmoothTopKSVM, tfloss.HardTopKSVM])
def test_k_not_below_number_of_classes_is_an_error_at_call(cls):
    for n in (5, 3):
        with pytest.raises(ValueError, match=f"k must be smaller than the number of classes: k = 5 but y_pred has {n}"):
            cls(k=5)(np.array([0]), np.zeros((1, n), np.float32))


# --- XLA, fit, serialization ------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: tfloss.SmoothTopKSVM(k=3, tau=0.5), lambda: tfloss.HardTopKSVM(k=3)])
def test_xla_value_and_gradient(make):
    rng = np.random.default_rng(8)
    scores = rng.normal(size=(6, 37)).astype(np.float32)
    labels = rng.integers(0, 37, 6)
    support.assert_xla_matches_eager(make(), labels, scores)
    support.assert_xla_matches_eager(make(), ref.one_hot(labels, 37).astype(np.float32), scores)


def test_xla_large_n_matches_reference():
    rng = np.random.default_rng(9)
    scores = rng.normal(size=(3, 10000)).astype(np.float32) * 5
    labels = rng.integers(0, 10000, 3)
    value, _ = support.xla_value_and_grad(lambda y, s: tfloss.ops.smooth_topk_svm(y, s, k=5), labels, scores)
    want = [recursion_smooth(s, t, 5, 1.0, 1.0, with_grad=False)[0] for s, t in zip(scores.astype(np.float64), labels)]
    np.testing.assert_allclose(value, want, rtol=1e-6)


def test_model_fit_with_jit_compile():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0) + 4 * (x[:, 2] > 0)
    for loss in (tfloss.SmoothTopKSVM(k=2, tau=0.5), tfloss.HardTopKSVM(k=2)):
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss, jit_compile=True)
        hist = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
        assert hist.history["loss"][-1] < hist.history["loss"][0]


@pytest.mark.parametrize("make", [lambda: tfloss.SmoothTopKSVM(k=3, alpha=0.5, tau=0.1), lambda: tfloss.HardTopKSVM(k=2, alpha=2.0)])
def test_config_roundtrip(make):
    loss = make()
    clone = support.assert_config_roundtrip(loss)
    assert clone.get_config()["k"] == loss.k and clone.get_config()["alpha"] == loss.alpha
    got = tfloss.get({"class_name": type(loss).__name__, "config": {"k": 2}})
    assert type(got) is type(loss) and got.k == 2


def test_fresh_process_save_and_load(tmp_path):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(48, 5)).astype(np.float32)
    y = rng.integers(0, 7, 48)
    cases = [
        dict(name="smooth", x=x, y=y, units=7, loss=tfloss.SmoothTopKSVM(k=3, alpha=0.5, tau=0.2)),
        dict(name="hard", x=x, y=ref.one_hot(y, 7).astype(np.float32), units=7, loss=tfloss.HardTopKSVM(k=2)),
    ]
    got = support.fresh_process_roundtrip(cases, tmp_path)
    some = next(v for key, v in got.items() if key.endswith("smooth.keras"))
    assert some["loss_config"]["tau"] == 0.2 and some["loss_config"]["k"] == 3


def test_distributed_fit_equals_single_device(two_replica_strategy):
    support.assert_distributed_fit_matches_single(
        two_replica_strategy, lambda: tfloss.SmoothTopKSVM(k=2, tau=0.5), num_classes=6, seed=12
    )


def test_ops_functions_check_their_arguments_too():
    labels, scores = np.array([0, 1]), np.zeros((2, 4), np.float32)
    for tau in (0.0, -1.0):
        with pytest.raises(ValueError, match="tau must be finite and in"):
            tfloss.ops.smooth_topk_svm(labels, scores, k=2, tau=tau)
    with pytest.raises(ValueError, match="alpha must be finite and in"):
        tfloss.ops.hard_topk_svm(labels, scores, k=2, alpha=-1.0)
