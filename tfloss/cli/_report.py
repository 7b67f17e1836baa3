"""Scores, table, and files of ``python -m tfloss compare``.

Scoring is plain float64 NumPy on the test-set logits. Every loss is scored
the same way: probabilities are the softmax of the model's logits (also for
the sigmoid loss), so differences in NLL and ECE come from the trained logits,
not from a different scoring rule.
"""

import csv
import json
import os

import numpy as np

ECE_BINS = 15


def log_softmax(logits):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def reliability(probs, labels, num_bins=ECE_BINS):
    """Top-label reliability over ``num_bins`` equal-width confidence bins (i/n, (i+1)/n].

    Returns (ece, bins) where bins lists, for each non-empty bin, its mean
    confidence, accuracy and count. ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|
    (Guo et al., 2017, "On Calibration of Modern Neural Networks", eq. 3).
    """
    confidence = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == labels
    # bin i holds confidences in (i/n, (i+1)/n]; a confidence of exactly 0 cannot occur
    index = np.clip(np.ceil(confidence * num_bins).astype(int) - 1, 0, num_bins - 1)
    ece, bins = 0.0, {"confidence": [], "accuracy": [], "count": []}
    for b in range(num_bins):
        in_bin = index == b
        n = int(in_bin.sum())
        if n == 0:
            continue
        conf, acc = float(confidence[in_bin].mean()), float(correct[in_bin].mean())
        ece += n / len(labels) * abs(acc - conf)
        bins["confidence"].append(conf)
        bins["accuracy"].append(acc)
        bins["count"].append(n)
    return float(ece), bins


def score(logits, labels, top_k, rare_classes=None):
    """Test-set scores of one model: accuracies, NLL, ECE, reliability bins and,
    with ``rare_classes``, the mean recall over those classes."""
    labels = np.asarray(labels)
    logp = log_softmax(logits)
    # rank of the true class = number of classes scored strictly higher
    true_logp = logp[np.arange(len(labels)), labels]
    rank = (logp > true_logp[:, None]).sum(axis=-1)
    ece, bins = reliability(np.exp(logp), labels)
    result = {
        "top1_accuracy": float(np.mean(rank == 0)),
        f"top{top_k}_accuracy": float(np.mean(rank < top_k)),
        "nll": float(-true_logp.mean()),
        "ece": ece,
    }
    if rare_classes is not None:
        predicted = logp.argmax(axis=-1)
        recalls = [float(np.mean(predicted[labels == c] == c)) for c in rare_classes]
        result["rare3_recall"] = float(np.mean(recalls))
        result["rare_class_recall"] = dict(zip(map(str, rare_classes), recalls))
    result["reliability"] = bins
    return result


TABLE_SKIP = ("reliability", "rare_class_recall")


def columns(rows):
    return [k for k in rows[0] if k not in TABLE_SKIP]


def format_table(rows):
    cols = columns(rows)
    text = [[_fmt(r[c], c) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths)) for t in text]
    return "\n".join(lines)


def _fmt(v, column):
    if not isinstance(v, float):
        return str(v)
    return f"{v:.2f}" if column.endswith("seconds") else f"{v:.4f}"


def write(out_dir, rows, config):
    """Write results.json (config + every row, reliability bins included),
    results.csv (the table's columns) and comparison.png; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, name) for name in ("results.json", "results.csv", "comparison.png")}
    with open(paths["results.json"], "w") as f:
        json.dump({"config": config, "results": rows}, f, indent=2)
    with open(paths["results.csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns(rows), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    plot(paths["comparison.png"], rows, config["top_k"])
    return paths


def plot(path, rows, top_k):
    """Left: top-1 and top-k accuracy per loss. Right: reliability curves."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = [r["loss"] for r in rows]
    pos = np.arange(len(rows))
    for offset, key in ((-0.2, "top1_accuracy"), (0.2, f"top{top_k}_accuracy")):
        left.bar(pos + offset, [r[key] for r in rows], width=0.4, label=key.replace("_", " "))
    lowest = min(r["top1_accuracy"] for r in rows)
    left.set_ylim(max(0.0, lowest - 0.1), 1.06)  # headroom for the legend above the bars
    left.set_xticks(pos, names, rotation=15)
    left.set_ylabel("test accuracy")
    left.legend(loc="upper center", ncol=2, fontsize="small")
    left.set_title("Accuracy per loss")
    right.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for r in rows:
        bins = r["reliability"]
        right.plot(bins["confidence"], bins["accuracy"], marker="o", label=f"{r['loss']} (ECE {r['ece']:.3f})")
    right.set_xlabel("confidence (top-label, softmax of logits)")
    right.set_ylabel("accuracy")
    right.set_title(f"Reliability ({ECE_BINS} equal-width bins)")
    right.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
