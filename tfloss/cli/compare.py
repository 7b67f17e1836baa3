"""``python -m tfloss compare``: a loss bake-off on real data.

The same small Keras model (an MLP on the features) is trained once per loss,
from the same initial weights and with the same batches, then scored on the
held-out split. Data and noise options are in ``tfloss.cli._data``, scores and
files in ``tfloss.cli._report``.
"""

import argparse
import contextlib
import math
import os
import sys
import time

import numpy as np
import tensorflow as tf

import tfloss
from tfloss import _keras
from tfloss.cli import _data
from tfloss.cli import _report

HELP = "train one small model per loss on real data (default: scikit-learn digits) and compare them"

SMALL = os.environ.get("TFLOSS_SMALL") == "1"
DEFAULT_EPOCHS = 2 if SMALL else 30

# Short name -> factory(ctx) returning (loss, label format "sparse" | "onehot", model outputs logits).
# ``ctx.counts`` are the training examples per class, ``ctx.top_k`` the k of --top-k.
# Adding a loss is one line here.
LOSSES = {
    "sparse_ce": lambda ctx: (tfloss.SparseCategoricalCrossentropy(from_logits=True), "sparse", True),
    "smoothed_ce": lambda ctx: (
        tfloss.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), "onehot", True),
    "sigmoid_ce": lambda ctx: (tfloss.SigmoidCrossentropy(from_logits=True), "onehot", True),
    # per-class alpha from the class counts (Cui et al. 2019); ~1 everywhere on balanced data
    "focal": lambda ctx: (tfloss.SparseCategoricalFocalCrossentropy(
        alpha=tfloss.class_weights(ctx.counts, method="effective_number"), gamma=2.0, from_logits=True),
        "sparse", True),
    "sigmoid_focal": lambda ctx: (
        tfloss.SigmoidFocalCrossentropy(alpha=0.25, gamma=2.0, from_logits=True), "onehot", True),
    # the smooth top-k SVM for the k that is reported (Berrada et al. 2018)
    "topk_svm": lambda ctx: (tfloss.SmoothTopKSVM(k=ctx.top_k, alpha=1.0, tau=1.0), "sparse", True),
}
DEFAULT_LOSSES = ("sparse_ce", "smoothed_ce", "sigmoid_ce", "focal", "sigmoid_focal", "topk_svm")


def _loss_list(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in LOSSES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown loss(es) {unknown or [text]}; choose from {', '.join(LOSSES)}")
    return list(dict.fromkeys(names))  # drop repeats, keep order


def _bounded(kind, low, high=None):
    """An argparse type: ``kind(text)`` in [low, high) (no upper bound when ``high`` is None)."""

    def parse(text):
        value = kind(text)
        if not math.isfinite(value) or value < low or (high is not None and value >= high):
            upper = f" and < {high}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"must be >= {low}{upper}; got {text}")
        return value

    return parse


def add_arguments(parser):
    add = parser.add_argument
    add("--losses", type=_loss_list, default=list(DEFAULT_LOSSES),
        help=f"comma-separated, from: {', '.join(LOSSES)} (default: {','.join(DEFAULT_LOSSES)})")
    add("--epochs", type=_bounded(int, 1), default=DEFAULT_EPOCHS,
        help="training epochs per loss (default 30; 2 when TFLOSS_SMALL=1)")
    add("--batch-size", type=_bounded(int, 1), default=64, help="default 64")
    add("--seed", type=int, default=0, help="fixes split, noise, initial weights and batch order (default 0)")
    add("--top-k", type=_bounded(int, 1), default=3, help="k of the top-k accuracy column (default 3)")
    add("--data", default=None,
        help="an .npz file with arrays x (N, features...) and y (N,) integer labels; default: scikit-learn digits")
    add("--label-noise", type=_bounded(float, 0.0, 1.0), default=0.0, metavar="P",
        help="change each training label with probability P (default 0)")
    add("--noise-mode", choices=("symmetric", "block"), default="symmetric",
        help="symmetric: to any other class; block: to another class of its group of neighbouring classes")
    add("--noise-group", type=_bounded(int, 2), default=2, metavar="G",
        help="block mode: classes 0..G-1, G..2G-1, ... form the groups (default 2)")
    add("--imbalance", type=_bounded(float, 1.0), default=None, metavar="R",
        help="geometric training class sizes, largest/smallest = R (class 0 largest); "
        "adds the recall of the 3 rarest classes")
    add("--out", default="tfloss-compare",
        help="output folder for results.json, results.csv, comparison.png (default ./tfloss-compare/)")


@contextlib.contextmanager
def deterministic(seed):
    """Seed Python, NumPy, TF and Keras, and make TF ops deterministic for the
    duration (restoring the previous setting, since it is process-wide and makes
    unseeded random ops raise)."""
    try:  # TF has no public "disable"; without this module the setting stays on
        from tensorflow.python.util import _pywrap_determinism
    except ImportError:  # pragma: no cover - depends on the TF version
        _pywrap_determinism = None
    was_enabled = _pywrap_determinism.is_enabled() if _pywrap_determinism else True
    _keras.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if _pywrap_determinism is not None:
            _pywrap_determinism.enable(was_enabled)


def build_model(num_features, num_classes, logits):
    keras = _keras.keras
    inputs = keras.Input((num_features,))
    hidden = keras.layers.Dense(64, activation="relu")(inputs)
    outputs = keras.layers.Dense(num_classes, activation=None if logits else "softmax")(hidden)
    return keras.Model(inputs, outputs)


class _Progress(_keras.keras.callbacks.Callback):
    """One line per epoch, readable in logs (Keras's bar rewrites one line)."""

    def __init__(self, name, epochs):
        super().__init__()
        self.name, self.epochs, self.start = name, epochs, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss", float("nan"))
        print(f"  [{self.name}] epoch {epoch + 1}/{self.epochs}  loss {float(loss):.4f}  "
              f"({time.perf_counter() - self.start:.1f} s)", flush=True)


def train_and_score(name, data, args, rare_classes):
    ctx = argparse.Namespace(counts=np.asarray(data["train_counts"]), top_k=args.top_k)
    loss, label_format, logits = LOSSES[name](ctx)
    num_classes = data["num_classes"]
    targets = data["y_train"]
    if label_format == "onehot":
        targets = np.eye(num_classes, dtype=np.float32)[targets]
    _keras.keras.utils.set_random_seed(args.seed)  # same initial weights and batch order for every loss
    model = build_model(data["x_train"].shape[1], num_classes, logits)
    model.compile(optimizer=_keras.keras.optimizers.Adam(1e-3), loss=loss)
    start = time.perf_counter()
    model.fit(data["x_train"], targets, epochs=args.epochs, batch_size=args.batch_size, shuffle=True,
              verbose=0, callbacks=[_Progress(name, args.epochs)])
    seconds = time.perf_counter() - start
    outputs = model(data["x_test"], training=False).numpy()
    if not logits:  # probabilities: their log is a logit vector with the same softmax
        outputs = np.log(np.clip(outputs, 1e-12, 1.0))
    row = {"loss": name}
    scores, ece_metric = _report.score(outputs, data["y_test"], args.top_k, rare_classes)
    row.update(scores)
    row["train_seconds"] = round(seconds, 2)
    return row, ece_metric


def run(args):
    try:
        data = _data.load(args.data, args.seed, args.label_noise, args.noise_mode, args.noise_group, args.imbalance)
    except _data.DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.top_k > data["num_classes"]:
        print(f"error: --top-k {args.top_k} exceeds the {data['num_classes']} classes.", file=sys.stderr)
        return 2
    if "topk_svm" in args.losses and args.top_k >= data["num_classes"]:
        print(f"error: topk_svm needs --top-k below the number of classes ({data['num_classes']}); "
              f"got {args.top_k}.", file=sys.stderr)
        return 2
    try:  # fail before training, not after, if the results cannot be written
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        print(f"error: --out {args.out!r}: cannot create the folder ({err}).", file=sys.stderr)
        return 2
    counts = data["train_counts"]
    # the 3 classes with the fewest training examples (ties: the higher class index)
    rare = sorted(sorted(range(len(counts)), key=lambda c: (counts[c], -c))[:3]) if args.imbalance else None
    print(f"data: {data['source']}: {len(data['y_train'])} train / {len(data['y_test'])} test, "
          f"{data['num_classes']} classes, {data['x_train'].shape[1]} features")
    print(f"      train examples per class {counts}; label noise {args.label_noise} ({args.noise_mode}): "
          f"{data['flipped']} labels changed")
    print(f"model: MLP {data['x_train'].shape[1]}-64-{data['num_classes']}, Adam 1e-3, {args.epochs} epochs, "
          f"batch {args.batch_size}, seed {args.seed}, {tfloss.KERAS}")
    rows, ece_metrics = [], {}
    with deterministic(args.seed):
        for name in args.losses:
            row, ece_metrics[name] = train_and_score(name, data, args, rare)
            rows.append(row)
    print()
    print(_report.format_table(rows))
    if rare is not None:
        print(f"rare3_recall: mean test recall of classes {rare} (fewest training examples)")
    print("probabilities scored: softmax of the model's logits, for every loss; "
          f"ECE: top-label, {_report.ECE_BINS} equal-width bins")
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config.update(keras=tfloss.KERAS, tensorflow=tf.__version__, tfloss=tfloss.__version__,
                  data_source=data["source"], num_classes=data["num_classes"], train_counts=counts,
                  labels_changed=data["flipped"], rare_classes=rare)
    paths = _report.write(args.out, rows, config, ece_metrics)
    print("wrote " + ", ".join(paths.values()))
    return 0
