"""Focal losses against Keras's focal losses: XLA-compiled forward + backward.

Rows: batch B=256, classes C in {10, 1000, 10000}, from logits, gamma=2,
alpha=0.25. ``ratio`` is time_tfloss / time_keras (below 1: tfloss is faster);
the goal for the softmax focal loss at C=1000 is a ratio <= 1 / 0.7 = 1.43.

    python benchmarks/bench_focal.py            # full run (quiet machine)
    python benchmarks/bench_focal.py --repeats 3 --classes 10   # smoke run
"""

import argparse

import numpy as np
import tensorflow as tf

import _timing
import tfloss
from tfloss import _keras

keras = _keras.keras


def rows_for(batch, classes, repeats):
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(batch, classes)).astype(np.float32) * 3)
    labels = rng.integers(0, classes, batch)
    sparse = tf.constant(labels)
    onehot = tf.one_hot(sparse, classes)
    kw = dict(alpha=0.25, gamma=2.0, from_logits=True)
    pairs = [
        ("CategoricalFocal", tfloss.CategoricalFocalCrossentropy(**kw),
         keras.losses.CategoricalFocalCrossentropy(**kw), onehot, onehot),
        ("SparseCategoricalFocal", tfloss.SparseCategoricalFocalCrossentropy(**kw),
         keras.losses.CategoricalFocalCrossentropy(**kw), sparse, onehot),
        ("SigmoidFocal", tfloss.SigmoidFocalCrossentropy(**kw),
         keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, **kw), onehot, onehot),
    ]
    rows = []
    for name, ours, theirs, y_ours, y_theirs in pairs:
        steps = [_timing.compiled_fwd_bwd(ours), _timing.compiled_fwd_bwd(theirs)]
        t_ours, t_keras = _timing.interleaved_medians(steps, [(y_ours, logits), (y_theirs, logits)], repeats=repeats)
        rows.append({
            "loss": name, "B": batch, "C": classes,
            "tfloss_ms": 1e3 * t_ours, "keras_ms": 1e3 * t_keras, "ratio": t_ours / t_keras,
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    rows = []
    for classes in args.classes:
        rows += rows_for(args.batch, classes, args.repeats)
    print(f"tfloss focal losses vs Keras ({tfloss.KERAS}), XLA fwd+bwd, median of {args.repeats}")
    _timing.print_table(rows, ["loss", "B", "C", "tfloss_ms", "keras_ms", "ratio"])
    goal = [r for r in rows if r["loss"] == "CategoricalFocal" and r["C"] == 1000]
    if goal:
        ok = goal[0]["ratio"] <= 1 / 0.7
        print(f"goal (CategoricalFocal, C=1000, ratio <= {1 / 0.7:.2f}): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
