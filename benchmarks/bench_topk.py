"""Benchmark: top-k losses against sparse softmax cross-entropy (fwd+bwd, XLA, CPU).

For each (n, k): XLA-compiled value-and-gradient steps of
``tf.nn.sparse_softmax_cross_entropy_with_logits`` (the baseline), the hard
top-k SVM and the smooth top-k SVM, timed interleaved in one process (see
``_timing.py``) so the ratios stay fair on a busy machine.

    python benchmarks/bench_topk.py                      # the full table
    python benchmarks/bench_topk.py --n 1000 --k 5       # one cell
    python benchmarks/bench_topk.py --n 100 1000 --k 1 5 --repeats 10
"""

import argparse
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _timing  # noqa: E402

from tfloss.ops import topk  # noqa: E402


def _sparse_ce(labels, scores):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=scores))


def measure(n, k, batch, repeats, seed=0):
    rng = np.random.default_rng(seed)
    scores = tf.constant(rng.normal(size=(batch, n)).astype(np.float32) * 3)
    labels = tf.constant(rng.integers(0, n, batch).astype(np.int32))
    steps = [
        _timing.compiled_fwd_bwd(_sparse_ce),
        _timing.compiled_fwd_bwd(lambda y, s: tf.reduce_mean(topk.hard_topk_svm(y, s, k=k))),
        _timing.compiled_fwd_bwd(lambda y, s: tf.reduce_mean(topk.smooth_topk_svm(y, s, k=k))),
    ]
    ce, hard, smooth = _timing.interleaved_medians(steps, [(labels, scores)] * 3, repeats=repeats)
    return {
        "n": n,
        "k": k,
        "sparse CE ms": ce * 1e3,
        "hard ms": hard * 1e3,
        "smooth ms": smooth * 1e3,
        "hard / CE": hard / ce,
        "smooth / CE": smooth / ce,
        "smooth us / class": smooth * 1e6 / n,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000, 100000], help="numbers of classes")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 5, 10, 20], help="values of k")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls of each step (median reported)")
    args = parser.parse_args(argv)
    print(f"B = {args.batch}, fwd+bwd under XLA on {tf.config.list_logical_devices('CPU')[0].name}, "
          f"median of {args.repeats} interleaved calls; cpu count {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    rows = []
    for n in args.n:
        for k in (k for k in args.k if k < n):
            rows.append(measure(n, k, args.batch, args.repeats))
            print(" ".join(f"{key}={_timing._fmt(value)}" for key, value in rows[-1].items()), flush=True)
    _timing.print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
