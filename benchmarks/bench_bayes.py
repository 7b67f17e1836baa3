"""Cost of gathering the KL per training step of a 4-layer Bayesian MLP.

Compares, compiled with XLA and measured interleaved (see ``_timing``):

* ``step+kl``: forward, NLL + beta * KL (KL walked from the layers by
  ``tfloss.bayes.total_kl``), backward, SGD update;
* ``step``: the same step without the KL term;
* ``kl only``: the KL and its gradient alone.

Goal: ``step+kl`` within 5% of ``step``. ``--small`` (or TFLOSS_SMALL=1) is a
seconds-long smoke run; real numbers need a quiet machine.

    python benchmarks/bench_bayes.py [--small] [--width 512] [--batch 256]
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


def network(width, features=64, classes=10, layers=4):
    stack = [keras.Input((features,))]
    stack += [tfloss.DenseFlipout(width, activation="relu", seed=i) for i in range(layers - 1)]
    stack += [tfloss.DenseFlipout(classes, seed=layers)]
    return keras.Sequential(stack)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    small = args.small or os.environ.get("TFLOSS_SMALL") == "1"
    width = args.width or (64 if small else 512)
    batch = args.batch or (64 if small else 256)
    repeats = args.repeats or (5 if small else 50)

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, 64)).astype(np.float32))
    y = tf.constant(rng.integers(0, 10, batch))
    net = network(width)
    net(x)
    loss_fn = tfloss.SparseCategoricalCrossentropy(from_logits=True)
    beta = 1.0 / 60000
    weights = net.trainable_weights

    def make_step(with_kl):
        @tf.function(jit_compile=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, net(x))
                if with_kl:
                    loss = loss + beta * tfloss.bayes.total_kl(net)
            grads = tape.gradient(loss, weights)
            for w, g in zip(weights, grads):
                w.assign_sub(1e-4 * g)
            return loss, grads[0]

        return step

    @tf.function(jit_compile=True)
    def kl_only(x, y):
        with tf.GradientTape() as tape:
            kl = tfloss.bayes.total_kl(net)
        return kl, tape.gradient(kl, weights)[0]

    t_kl, t_plain, t_only = _timing.interleaved_medians(
        [make_step(True), make_step(False), kl_only], [(x, y)] * 3, repeats=repeats
    )
    params = sum(int(np.prod(w.shape)) for w in weights)
    rows = [
        {"step": "step+kl", "ms": t_kl * 1e3, "vs step": t_kl / t_plain},
        {"step": "step", "ms": t_plain * 1e3, "vs step": 1.0},
        {"step": "kl only", "ms": t_only * 1e3, "vs step": t_only / t_plain},
    ]
    print(f"4-layer Bayesian MLP (DenseFlipout), width {width}, batch {batch}, {params} parameters, {tfloss.KERAS}")
    _timing.print_table(rows, ["step", "ms", "vs step"])
    print(f"KL overhead: {100 * (t_kl / t_plain - 1):+.1f}% of the train step (goal < 5%)")


if __name__ == "__main__":
    main()
