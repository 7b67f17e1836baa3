"""Top-k hits by counting, not sorting.

A label is in the top k when fewer than k classes score strictly higher than
it. That is the rule of ``tf.math.in_top_k`` (and so of Keras's top-k
metrics): classes tied with the label's score at the boundary all count as in
the top k. Counting is one comparison and one sum per row (O(C)), exact, and
fuses into a single XLA loop; ``tf.math.top_k`` would sort.

Non-finite scores: TensorFlow's ``in_top_k`` kernel reports a miss for any row
holding a NaN or infinite score (its XLA lowering does not); tfloss follows the
kernel on every path, so a diverged model scores 0, never a lucky hit.
"""

import tensorflow as tf

from tfloss.ops import _common


def is_dense_labels(y_true, y_pred):
    """True when ``y_true`` holds one-hot or soft targets rather than class ids.

    The rule (by rank, then by the class axis): ``y_true`` with the rank of
    ``y_pred`` and a last axis of C > 1 entries is dense (any dtype, so integer
    one-hot works too); everything else ((B,), (B, 1), (B, T), (B, T, 1)) is
    sparse class ids, integer or float.
    """
    y_true_rank, y_pred_rank = y_true.shape.rank, y_pred.shape.rank
    if y_true_rank is None or y_pred_rank is None:
        raise ValueError("y_true and y_pred must have a known rank (got an unknown rank).")
    num_classes = y_pred.shape[-1]
    return y_true_rank == y_pred_rank and num_classes != 1 and y_true.shape[-1] != 1


def class_ids(y_true, y_pred):
    """Integer class ids shaped like ``y_pred`` without its class axis.

    Dense targets become their argmax (the first one on ties, as Keras's
    ``top_k_categorical_accuracy`` does); sparse ids pass the checks of
    ``_common.sparse_labels``.
    """
    y_true = tf.convert_to_tensor(y_true)
    if is_dense_labels(y_true, y_pred):
        if not y_true.shape[-1:].is_compatible_with(y_pred.shape[-1:]) or not y_true.shape.is_compatible_with(
            y_pred.shape
        ):
            raise ValueError(
                f"y_true (one-hot or soft targets) of shape {_common._shape_str(y_true.shape)} must have the "
                f"shape of y_pred {_common._shape_str(y_pred.shape)}, or be class ids without the class axis."
            )
        return tf.argmax(y_true, axis=-1, output_type=tf.int32)
    labels = _common.sparse_labels(y_true, y_pred)
    return tf.cast(labels, tf.int32)


def top_k_hits(y_true, y_pred, k=5):
    """1.0 where the true class is among the k highest scores, else 0.0.

    Args:
      y_true: class ids (B,), (B, 1), (B, T) or one-hot / soft targets shaped
        like ``y_pred`` (see ``is_dense_labels``).
      y_pred: scores (B, C) or (B, T, C): logits or probabilities (any
        monotone scores give the same answer).
      k: positive int; ``k >= C`` makes every finite row a hit.

    Returns:
      float32 tensor shaped like ``y_pred`` without its class axis. An
      out-of-range class id raises InvalidArgumentError in eager and graph
      mode; under XLA (which compiles assertions out) its entry is NaN.
    """
    y_pred = tf.convert_to_tensor(y_pred)
    if y_pred.shape.rank is None or y_pred.shape.rank < 2 or y_pred.shape[-1] is None:
        raise ValueError(
            f"y_pred must be scores of shape (batch, classes) or (batch, time, classes) with a known "
            f"number of classes; got shape {_common._shape_str(y_pred.shape) if y_pred.shape.rank else 'unknown'}."
        )
    scores = tf.cast(y_pred, tf.float32) if y_pred.dtype != tf.float64 else y_pred
    labels = class_ids(y_true, y_pred)
    num_classes = y_pred.shape[-1]
    safe, in_range = _common.check_label_range(labels, num_classes)
    out_shape = tf.shape(labels)
    flat_scores = tf.reshape(scores, [-1, num_classes])
    flat_labels = tf.reshape(safe, [-1])
    label_score = tf.gather(flat_scores, flat_labels, axis=1, batch_dims=1)
    # Strictly greater: ties with the label's score never push it out (in_top_k's rule).
    # A non-finite score counts k on its own, so one reduction both counts and
    # vetoes the row (a NaN label score compares false but is itself non-finite).
    k = min(int(k), num_classes)  # count <= C - 1 always: same hits, and no int32 overflow below
    votes = tf.where(tf.math.is_finite(flat_scores), tf.cast(flat_scores > label_score[:, None], tf.int32), k)
    hits = tf.cast(tf.reduce_sum(votes, axis=-1) < k, tf.float32)
    hits = tf.reshape(hits, out_shape)
    return _common.nan_where_invalid(hits, in_range)
