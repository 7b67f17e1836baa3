"""Shared timing harness for the benchmark scripts (not tests).

Each benchmark compares a tfloss function with its nearest Keras / TF
built-in, measured in the same process and interleaved (A, B, A, B, ...), so
the ratio is fair even on a busy machine. Times are medians of repeats of a
compiled (XLA) forward+backward step.
"""

import statistics
import time

import tensorflow as tf


def compiled_fwd_bwd(loss_fn):
    """``loss_fn(y_true, y_pred) -> scalar`` as an XLA-compiled value+gradient step."""

    @tf.function(jit_compile=True)
    def step(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            value = loss_fn(y_true, y_pred)
        return value, tape.gradient(value, y_pred)

    return step


def compiled_call(fn):
    """``fn(*args) -> tensor`` as an XLA-compiled step without gradients
    (metric updates, evaluation-only ops)."""

    return tf.function(fn, jit_compile=True)


def _run(step, args):
    out = step(*args)
    # block until done: .numpy() on the gradient
    out[-1].numpy() if isinstance(out, (tuple, list)) else out.numpy()


def interleaved_medians(steps, args_list, repeats=30, warmup=3):
    """Median seconds per call of each step, measured round-robin.

    ``steps``: list of callables; ``args_list``: matching argument tuples.
    """
    for step, args in zip(steps, args_list):
        for _ in range(warmup):
            _run(step, args)
    samples = [[] for _ in steps]
    for _ in range(repeats):
        for i, (step, args) in enumerate(zip(steps, args_list)):
            start = time.perf_counter()
            _run(step, args)
            samples[i].append(time.perf_counter() - start)
    return [statistics.median(s) for s in samples]


def print_table(rows, columns):
    """Print ``rows`` (list of dicts) as a fixed-width table with ``columns``."""
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)
