"""Cross-entropy losses: tfloss against the nearest Keras built-in (not a test).

For each pair, an XLA-compiled forward+backward step (loss value and its
gradient w.r.t. the logits, batch mean) is timed interleaved with its Keras
counterpart in this one process (``_timing.interleaved_medians``); the table
gives median milliseconds per step and the ratio tfloss / Keras (< 1: tfloss
is faster).

Peak memory: on a GPU, the allocator's peak (``tf.config.experimental.
get_memory_info``, reset before each step) minus the inputs already resident.
On CPU TensorFlow exposes no allocator statistics, and neither tracemalloc
(Python objects only) nor getrusage (a process-wide high-water mark that only
ever grows) measures one step, so the columns print "-" there.

    python benchmarks/bench_losses.py                      # B=256, C in 10, 1000, 10000
    python benchmarks/bench_losses.py --classes 10 --repeats 5   # a quick smoke run
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

keras_losses = _keras.keras.losses


def pairs():
    """(name, label format, tfloss loss, Keras loss): the same quantity computed both ways."""
    return [
        ("sparse CE", "sparse",
         tfloss.SparseCategoricalCrossentropy(from_logits=True),
         keras_losses.SparseCategoricalCrossentropy(from_logits=True)),
        # Keras's sparse CE has no label smoothing: its nearest is categorical CE on one-hot labels
        ("sparse CE, smoothing 0.1", "sparse+onehot",
         tfloss.SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
         keras_losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)),
        ("categorical CE, smoothing 0.1", "onehot",
         tfloss.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
         keras_losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)),
        ("sigmoid CE", "onehot",
         tfloss.SigmoidCrossentropy(from_logits=True), keras_losses.BinaryCrossentropy(from_logits=True)),
    ]


def inputs(batch, classes, seed=0):
    rng = np.random.default_rng(seed)
    logits = tf.constant(rng.normal(size=(batch, classes)) * 3, tf.float32)
    labels = rng.integers(0, classes, size=batch)
    return {"sparse": tf.constant(labels, tf.int32), "onehot": tf.one_hot(labels, classes)}, logits


def peak_bytes(step, args):
    """Peak allocator bytes of one step above what was resident before it (GPU only)."""
    if not tf.config.list_logical_devices("GPU"):
        return None
    device = "GPU:0"
    step(*args)[1].numpy()  # compiled and warm
    tf.config.experimental.reset_memory_stats(device)
    before = tf.config.experimental.get_memory_info(device)["current"]
    step(*args)[1].numpy()
    return tf.config.experimental.get_memory_info(device)["peak"] - before


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--classes", default="10,1000,10000", help="comma-separated class counts")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"tfloss {tfloss.__version__} on TF {tf.__version__}, {tfloss.KERAS}, {device}; "
          f"B={args.batch}, median of {args.repeats} interleaved XLA fwd+bwd steps")
    rows = []
    for classes in [int(c) for c in args.classes.split(",")]:
        labels, logits = inputs(args.batch, classes)
        for name, fmt, ours, theirs in pairs():
            ours_labels = labels[fmt.split("+")[0]]
            theirs_labels = labels[fmt.split("+")[-1]]
            steps = [_timing.compiled_fwd_bwd(ours), _timing.compiled_fwd_bwd(theirs)]
            args_list = [(ours_labels, logits), (theirs_labels, logits)]
            ours_value, theirs_value = (float(s(*a)[0]) for s, a in zip(steps, args_list))
            ours_s, theirs_s = _timing.interleaved_medians(steps, args_list, repeats=args.repeats)
            mem = [peak_bytes(s, a) for s, a in zip(steps, args_list)]
            rows.append({
                "C": classes, "loss": name,
                "tfloss ms": ours_s * 1e3, "keras ms": theirs_s * 1e3, "ratio": ours_s / theirs_s,
                "tfloss peak MiB": None if mem[0] is None else mem[0] / 2**20,
                "keras peak MiB": None if mem[1] is None else mem[1] / 2**20,
                "|value diff|": abs(ours_value - theirs_value),
            })
    _timing.print_table(rows, list(rows[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
