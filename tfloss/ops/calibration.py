"""Probabilistic-prediction scores: NLL, Brier, and the binned sums behind ECE.

Shapes: ``y_pred`` is (..., C) scores for C >= 2 classes (softmax model), or
(..., 1) for a binary model (sigmoid; the positive class's probability or
logit). A binary model is treated as the two-class model ``[1 - p, p]`` so one
code path serves both. ``y_true`` is class ids (..., ) / (..., 1), or one-hot /
soft targets shaped like ``y_pred`` (see ``tfloss.ops.accuracy``); for a binary
model, 0/1 (or soft) targets shaped (...) or (..., 1).

Every function returns per-sample values (or per-bin sums); the metrics in
``tfloss.metrics.calibration`` weight and accumulate them.
"""

import tensorflow as tf

from tfloss.ops import _common
from tfloss.ops import accuracy
from tfloss.ops import crossentropy


def _scores(y_pred):
    y_pred = tf.convert_to_tensor(y_pred)
    if y_pred.shape.rank is None or y_pred.shape.rank < 2 or y_pred.shape[-1] is None:
        raise ValueError(
            "y_pred must have shape (batch, classes), (batch, time, classes), or (batch, 1) for a binary "
            f"model, with a known last axis; got {y_pred.shape}."
        )
    return tf.cast(y_pred, tf.float32) if y_pred.dtype != tf.float64 else y_pred


def _is_binary(y_pred):
    return y_pred.shape[-1] == 1


def check_probabilities(probs):
    """Eager/graph check that ``y_pred`` holds probabilities (compiled out by XLA)."""
    tf.debugging.Assert(
        tf.reduce_all(tf.logical_and(probs >= 0.0, probs <= 1.0 + 1e-5)),
        [
            "y_pred: probabilities must lie in [0, 1] (pass from_logits=True for logits); min and max:",
            tf.reduce_min(probs),
            tf.reduce_max(probs),
        ],
        name="check_probabilities",
    )


def class_probabilities(y_pred, from_logits=False):
    """Class probabilities (..., C); a binary (..., 1) model gives (..., 2)."""
    scores = _scores(y_pred)
    if _is_binary(scores):
        p = tf.sigmoid(scores) if from_logits else scores
        if not from_logits:
            check_probabilities(p)
        return tf.concat([1.0 - p, p], axis=-1)
    if from_logits:
        return tf.nn.softmax(scores, axis=-1)
    check_probabilities(scores)
    return scores


def class_log_probabilities(y_pred, from_logits=False):
    """Log class probabilities (..., C) (binary: (..., 2)), in log space from logits.

    Probabilities are normalised and clipped to [1e-7, 1 - 1e-7] as Keras's
    cross-entropy does, so a confident miss costs at most -log(1e-7) ~ 16.1.
    """
    scores = _scores(y_pred)
    if not from_logits:  # logits passed as probabilities would give a plausible, wrong NLL
        check_probabilities(scores)
    if _is_binary(scores):
        log_p, log_not_p = crossentropy.sigmoid_log_terms(scores, from_logits)
        return tf.concat([log_not_p, log_p], axis=-1)
    return crossentropy.log_probabilities(scores, from_logits)


def targets(y_true, probs_or_logs, binary):
    """Target distribution (..., C) for ``y_true`` and whether each row is valid.

    Class ids become one-hot rows (an out-of-range id raises in eager/graph
    mode and marks the row invalid for XLA); dense targets pass as floats.
    """
    y_true = tf.convert_to_tensor(y_true)
    if binary:
        template = probs_or_logs[..., 1:]
        z = tf.cast(crossentropy.align_binary_targets(y_true, template), probs_or_logs.dtype)
        valid = tf.logical_and(z[..., 0] >= 0.0, z[..., 0] <= 1.0)
        tf.debugging.Assert(
            tf.reduce_all(valid),
            ["y_true: binary targets must lie in [0, 1]; min and max:", tf.reduce_min(z), tf.reduce_max(z)],
            name="check_binary_targets",
        )
        return tf.concat([1.0 - z, z], axis=-1), valid
    if accuracy.is_dense_labels(y_true, probs_or_logs):
        if not y_true.shape.is_compatible_with(probs_or_logs.shape):
            raise ValueError(
                f"y_true (one-hot or soft targets) of shape {_common._shape_str(y_true.shape)} must have the "
                f"shape of y_pred {_common._shape_str(probs_or_logs.shape)}, or be class ids without the class axis."
            )
        q = tf.cast(y_true, probs_or_logs.dtype)
        return q, tf.ones(tf.shape(q)[:-1], tf.bool)
    labels = accuracy.class_ids(y_true, probs_or_logs)
    num_classes = probs_or_logs.shape[-1]
    safe, valid = _common.check_label_range(labels, num_classes)
    return tf.one_hot(safe, num_classes, dtype=probs_or_logs.dtype), valid


def negative_log_likelihood(y_true, y_pred, from_logits=False):
    """Per-sample ``-sum_c q_c log p_c`` (``-log p_label`` for class ids).

    Equal to the categorical cross-entropy without smoothing; for binary
    models to ``-(z log p + (1 - z) log(1 - p))``.
    """
    log_p = class_log_probabilities(y_pred, from_logits)
    q, valid = targets(y_true, log_p, _is_binary(_scores(y_pred)))
    # q * log_p with q = 0 and log_p = -inf must be 0, not NaN.
    terms = tf.where(q > 0, q * log_p, 0.0)
    return _common.nan_where_invalid(-tf.reduce_sum(terms, axis=-1), valid)


def brier_score(y_true, y_pred, from_logits=False):
    """Per-sample Brier score (Brier, 1950, Monthly Weather Review 78(1)).

    Multi-class: ``sum_c (p_c - q_c)^2`` (range [0, 2]); binary (..., 1)
    models: ``(p - z)^2`` (range [0, 1]). The same conventions as scikit-
    learn's ``brier_score_loss``.
    """
    scores = _scores(y_pred)
    binary = _is_binary(scores)
    probs = class_probabilities(scores, from_logits)
    q, valid = targets(y_true, probs, binary)
    if binary:
        score = tf.square(probs[..., 1] - q[..., 1])
    else:
        score = tf.reduce_sum(tf.square(probs - q), axis=-1)
    return _common.nan_where_invalid(score, valid)


def bin_index(values, num_bins):
    """Equal-width bin of each value in [0, 1]: bins ``((i - 1)/M, i/M]``, as in
    Guo et al. (2017), "On Calibration of Modern Neural Networks", ICML; a value
    of exactly 0 goes to the first bin."""
    idx = tf.cast(tf.math.ceil(values * num_bins), tf.int32) - 1
    return tf.clip_by_value(idx, 0, num_bins - 1)


def _flat_weights(weights, n, dtype):
    if weights is None:
        return tf.ones([n], dtype)
    return tf.reshape(tf.cast(weights, dtype), [-1])


def top_label_bin_sums(y_true, y_pred, num_bins=15, from_logits=False, weights=None):
    """Per-bin sums for the top-label reliability diagram and ECE.

    Each sample falls in the bin of its confidence ``max_c p_c``; it adds its
    weight to ``counts``, weight x confidence to ``confidence`` and weight x
    correctness to ``accuracy`` (correctness is the target mass on the
    predicted (argmax) class: 0/1 for class ids, fractional for soft targets).

    Built with ``unsorted_segment_sum`` over a static number of bins, so it
    compiles under XLA; the three (M,) sums add up across batches and replicas.
    ``weights``: optional, shaped like the samples (y_pred without its class axis).
    """
    probs = class_probabilities(y_pred, from_logits)
    q, valid = targets(y_true, probs, _is_binary(_scores(y_pred)))
    num_classes = probs.shape[-1]
    probs = tf.reshape(probs, [-1, num_classes])
    q = tf.reshape(q, [-1, num_classes])
    confidence = tf.reduce_max(probs, axis=-1)
    predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
    correct = tf.gather(q, predicted, axis=1, batch_dims=1)
    correct = _common.nan_where_invalid(correct, tf.reshape(valid, [-1]))
    w = _flat_weights(weights, tf.shape(confidence)[0], confidence.dtype)
    bins = bin_index(confidence, num_bins)
    return _segment_sums(bins, w, confidence, correct, num_bins)


def class_wise_bin_sums(y_true, y_pred, num_bins=15, from_logits=False, weights=None):
    """Per-class, per-bin sums (C, M) for class-wise ECE (Kull et al., 2019,
    "Beyond temperature scaling", NeurIPS): every sample enters the bins of all
    C classes with that class's probability as confidence and its target mass
    for the class as accuracy."""
    probs = class_probabilities(y_pred, from_logits)
    q, valid = targets(y_true, probs, _is_binary(_scores(y_pred)))
    num_classes = probs.shape[-1]
    probs = tf.reshape(probs, [-1, num_classes])
    q = _common.nan_where_invalid(tf.reshape(q, [-1, num_classes]), tf.reshape(valid, [-1, 1]))
    w = _flat_weights(weights, tf.shape(probs)[0], probs.dtype)
    w = tf.broadcast_to(w[:, None], tf.shape(probs))
    # segment id = class * M + bin: one segment sum fills the whole (C, M) table
    ids = bin_index(probs, num_bins) + num_bins * tf.range(num_classes, dtype=tf.int32)[None, :]
    sums = _segment_sums(
        tf.reshape(ids, [-1]), tf.reshape(w, [-1]), tf.reshape(probs, [-1]), tf.reshape(q, [-1]),
        num_classes * num_bins,
    )
    return tuple(tf.reshape(s, [num_classes, num_bins]) for s in sums)


def _segment_sums(bins, weights, confidence, correct, num_segments):
    # Weight-0 samples (padding) contribute exactly 0 even with NaN entries.
    keep = tf.not_equal(weights, 0.0)
    counts = tf.math.unsorted_segment_sum(weights, bins, num_segments)
    conf = tf.math.unsorted_segment_sum(tf.where(keep, weights * confidence, 0.0), bins, num_segments)
    acc = tf.math.unsorted_segment_sum(tf.where(keep, weights * correct, 0.0), bins, num_segments)
    return counts, conf, acc


def expected_calibration_error(counts, confidence_sums, accuracy_sums):
    """``sum_b |acc_sum_b - conf_sum_b| / N`` = ``sum_b (n_b / N) |acc_b - conf_b|``
    (Naeini et al., 2015, AAAI; Guo et al., 2017). For (C, M) class-wise sums
    each class's ECE is taken over its own N, then averaged over classes;
    0 before any sample is seen."""
    gaps = tf.reduce_sum(tf.abs(accuracy_sums - confidence_sums), axis=-1)
    per_row = tf.math.divide_no_nan(gaps, tf.reduce_sum(counts, axis=-1))
    return tf.reduce_mean(per_row)
