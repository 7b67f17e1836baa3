"""Update cost of tfloss metrics against Keras, per batch of 256 x 1000.

Each row times one XLA-compiled ``update_state`` (then a read of the state,
so the step has finished) and divides by the matching Keras built-in, timed
interleaved in the same process. Goal: ``TopKAccuracy`` within 1.2x of
Keras's ``SparseTopKCategoricalAccuracy``. ECE has no Keras counterpart; its
rows are divided by the Keras top-k time as a yardstick.

    python benchmarks/bench_metrics.py [--repeats 30] [--batch 256] [--classes 1000]
"""

import argparse
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing  # noqa: E402

import tfloss  # noqa: E402
from tfloss import _keras  # noqa: E402

keras = _keras.keras


def update_step(metric, state):
    """Compiled ``update_state`` returning one state variable (to block on)."""

    def step(y_true, y_pred):
        metric.update_state(y_true, y_pred)
        return tf.identity(state(metric))

    return _timing.compiled_call(step)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(args.batch, args.classes)).astype(np.float32))
    labels = tf.constant(rng.integers(0, args.classes, args.batch).astype(np.int32))
    onehot = tf.one_hot(labels, args.classes)
    probs = tf.nn.softmax(logits)

    def total(m):
        return m.total if hasattr(m, "total") else m.variables[0]

    def keras_state(m):
        return m.variables[0]

    cases = [
        ("TopKAccuracy sparse", update_step(tfloss.TopKAccuracy(args.k), total), (labels, logits),
         update_step(keras.metrics.SparseTopKCategoricalAccuracy(args.k), keras_state), (labels, logits)),
        ("TopKAccuracy one-hot", update_step(tfloss.TopKAccuracy(args.k), total), (onehot, logits),
         update_step(keras.metrics.TopKCategoricalAccuracy(args.k), keras_state), (onehot, logits)),
        ("ExpectedCalibrationError", update_step(tfloss.ExpectedCalibrationError(), lambda m: m.bin_counts),
         (labels, probs), update_step(keras.metrics.SparseTopKCategoricalAccuracy(args.k), keras_state),
         (labels, logits)),
        ("ECE class-wise",
         update_step(tfloss.ExpectedCalibrationError(class_wise=True, num_classes=args.classes),
                     lambda m: m.bin_counts),
         (labels, probs), update_step(keras.metrics.SparseTopKCategoricalAccuracy(args.k), keras_state),
         (labels, logits)),
        ("NegativeLogLikelihood", update_step(tfloss.NegativeLogLikelihood(from_logits=True), total),
         (labels, logits), update_step(keras.metrics.SparseCategoricalCrossentropy(from_logits=True), keras_state),
         (labels, logits)),
    ]
    rows = []
    for name, ours, ours_args, theirs, theirs_args in cases:
        t_ours, t_theirs = _timing.interleaved_medians([ours, theirs], [ours_args, theirs_args], repeats=args.repeats)
        rows.append({"metric": name, "tfloss_ms": t_ours * 1e3, "keras_ms": t_theirs * 1e3,
                     "ratio": t_ours / t_theirs})
    print(f"batch {args.batch} x {args.classes} classes, k={args.k}, {_keras.KERAS_NAME}, XLA update_state")
    _timing.print_table(rows, ["metric", "tfloss_ms", "keras_ms", "ratio"])
    print("keras_ms: the Keras top-k metric for the top-k and ECE rows (same labels and scores),")
    print("          SparseCategoricalCrossentropy (metric) for NegativeLogLikelihood.")


if __name__ == "__main__":
    main()
