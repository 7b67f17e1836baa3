"""``python -m tfloss elbo``: how the KL scaling changes a Bayesian MLP.

Trains the same small Bayesian MLP (``DenseFlipout`` layers) on scikit-learn's
bundled handwritten digits once per KL-weight schedule, then prints a table
(last-epoch means of NLL, KL and beta; test accuracy and mean predictive
entropy of the posterior predictive) and writes
``results.json``, ``results.csv`` and ``training.png`` (NLL and beta*KL per
epoch) to ``--out``. ``TFLOSS_SMALL=1`` (or ``--small``) shrinks it to a
seconds-long smoke run.
"""

import csv
import json
import os
import time

import numpy as np

HELP = "train a Bayesian MLP on the digits under each KL scaling and compare"
SCALINGS = ("per_example", "per_batch", "blundell_pi", "warmup", "tempered")


def add_arguments(parser):
    parser.add_argument("--out", default="tfloss-elbo", help="output folder (default ./tfloss-elbo/)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 30, 2 with --small)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64, help="width of the two hidden layers")
    parser.add_argument("--samples", type=int, default=None, help="posterior samples for prediction (default 20)")
    parser.add_argument("--scalings", default=",".join(SCALINGS), help=f"comma-separated subset of {','.join(SCALINGS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="tiny, fast run (also TFLOSS_SMALL=1)")


def _schedule(name, num_examples, num_batches, total_steps):
    from tfloss import bayes

    if name == "per_example":
        return bayes.PerExample(num_examples)
    if name == "per_batch":
        return bayes.PerBatch(num_batches)
    if name == "blundell_pi":
        return bayes.BlundellPi(num_batches)
    if name == "warmup":
        return bayes.LinearWarmup(max(1, total_steps // 2), base=bayes.PerExample(num_examples))
    if name == "tempered":
        return bayes.PerExample(num_examples, temperature=0.1)
    raise ValueError(f"--scalings: unknown scaling {name!r}; choose from {', '.join(SCALINGS)}.")


def _data(small, seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    if small:
        x_tr, y_tr, x_te, y_te = x_tr[:256], y_tr[:256], x_te[:128], y_te[:128]
    return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


def _network(hidden, seed):
    import tfloss
    from tfloss import _keras

    keras = _keras.keras
    return keras.Sequential(
        [
            keras.Input((64,)),
            tfloss.DenseFlipout(hidden, activation="relu", seed=seed),
            tfloss.DenseFlipout(hidden, activation="relu", seed=seed + 1),
            tfloss.DenseFlipout(10, seed=seed + 2),
        ]
    )


def _predict(network, x, samples):
    """Posterior-predictive probabilities: the mean softmax over ``samples`` draws."""
    import tensorflow as tf

    forward = tf.function(lambda v: tf.nn.softmax(network(v, training=False)))
    return np.mean([forward(x).numpy() for _ in range(samples)], axis=0)


def _train_one(name, data, args, epochs, samples):
    import tensorflow as tf

    import tfloss
    from tfloss import _keras

    keras = _keras.keras
    x_tr, y_tr, x_te, y_te = data
    steps = -(-len(x_tr) // args.batch_size)
    keras.utils.set_random_seed(args.seed)
    network = _network(args.hidden, args.seed)
    model = tfloss.ELBOModel(network, _schedule(name, len(x_tr), steps, steps * epochs))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=tfloss.SparseCategoricalCrossentropy(from_logits=True),
    )
    start = time.perf_counter()

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % max(1, epochs // 4) == 0 or epoch + 1 == epochs:
                print(
                    f"  [{name}] epoch {epoch + 1}/{epochs}  nll {logs['nll']:.3f}  kl {logs['kl']:.0f}"
                    f"  beta {logs['kl_weight']:.2e}  ({time.perf_counter() - start:.0f}s)",
                    flush=True,
                )

    hist = model.fit(x_tr, y_tr, batch_size=args.batch_size, epochs=epochs, verbose=0, callbacks=[Progress()]).history
    probs = _predict(network, tf.constant(x_te), samples)
    entropy = -np.sum(probs * np.log(np.clip(probs, 1e-12, 1.0)), axis=-1)
    return {
        "scaling": name,
        "schedule": repr(model.kl_weight),
        "nll": float(hist["nll"][-1]),
        "kl": float(hist["kl"][-1]),
        "beta": float(hist["kl_weight"][-1]),
        "test_accuracy": float(np.mean(np.argmax(probs, -1) == y_te)),
        "predictive_entropy": float(np.mean(entropy)),
        "seconds": round(time.perf_counter() - start, 2),
        "history": {
            "nll": [float(v) for v in hist["nll"]],
            "beta_kl": [float(b * k) for b, k in zip(hist["kl_weight"], hist["kl"])],
        },
    }


def _plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for r in results:
        epochs = np.arange(1, len(r["history"]["nll"]) + 1)
        axes[0].plot(epochs, r["history"]["nll"], label=r["scaling"])
        axes[1].plot(epochs, np.maximum(r["history"]["beta_kl"], 1e-12), label=r["scaling"])
    axes[0].set(title="NLL (train, per example)", xlabel="epoch")
    axes[1].set(title="beta * KL (epoch mean)", xlabel="epoch", yscale="log")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


COLUMNS = ("scaling", "nll", "kl", "beta", "test_accuracy", "predictive_entropy", "seconds")


def run(args):
    small = args.small or os.environ.get("TFLOSS_SMALL") == "1"
    epochs = args.epochs or (2 if small else 30)
    samples = args.samples or (4 if small else 20)
    names = [n.strip() for n in args.scalings.split(",") if n.strip()]
    for n in names:
        if n not in SCALINGS:
            raise SystemExit(f"--scalings: unknown scaling {n!r}; choose from {', '.join(SCALINGS)}.")
    if epochs < 1 or args.batch_size < 1 or args.hidden < 1 or samples < 1:
        raise SystemExit("--epochs, --batch-size, --hidden and --samples must be positive integers.")
    data = _data(small, args.seed)
    print(f"digits: {len(data[0])} train / {len(data[2])} test, {epochs} epochs, batch {args.batch_size}", flush=True)
    results = [_train_one(name, data, args, epochs, samples) for name in names]

    os.makedirs(args.out, exist_ok=True)
    print()
    print(_table(results))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"epochs": epochs, "batch_size": args.batch_size, "small": small, "runs": results}, f, indent=1)
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS + ("schedule",))
        writer.writeheader()
        for r in results:
            writer.writerow({k: r[k] for k in COLUMNS + ("schedule",)})
    _plot(results, os.path.join(args.out, "training.png"))
    print(f"\nwrote results.json, results.csv, training.png to {os.path.abspath(args.out)}")
    return 0


def _table(results):
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [[fmt(r[c]) for c in COLUMNS] for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows])
