"""Scores, table, and files of ``python -m tfloss compare``.

Scores are tfloss's own metrics (``TopKAccuracy``, ``NegativeLogLikelihood``,
``ExpectedCalibrationError``, ``BrierScore``) on the test-set logits. Every
loss is scored the same way: probabilities are the softmax of the model's
logits (also for the sigmoid loss), so differences in NLL and ECE come from
the trained logits, not from a different scoring rule.
"""

import csv
import json
import os

import numpy as np

import tfloss

ECE_BINS = 15


def score(logits, labels, top_k, rare_classes=None):
    """Test-set scores of one model: top-1/top-k accuracy, NLL, ECE and Brier
    score (tfloss metrics), the reliability bins and, with ``rare_classes``, the
    mean recall over those classes.

    Returns ``(row, ece_metric)``; the metric keeps its per-bin state for
    ``tfloss.reliability_diagram``.
    """
    labels = np.asarray(labels)
    logits = np.asarray(logits, np.float32)
    metrics = {
        "top1_accuracy": tfloss.TopKAccuracy(k=1),
        f"top{top_k}_accuracy": tfloss.TopKAccuracy(k=top_k),
        "nll": tfloss.NegativeLogLikelihood(from_logits=True),
        "ece": tfloss.ExpectedCalibrationError(num_bins=ECE_BINS, from_logits=True),
        "brier": tfloss.BrierScore(from_logits=True),
    }
    result = {}
    for name, metric in metrics.items():
        metric.update_state(labels, logits)
        result[name] = float(metric.result())
    if rare_classes is not None:
        predicted = logits.argmax(axis=-1)
        recalls = [float(np.mean(predicted[labels == c] == c)) for c in rare_classes]
        result["rare3_recall"] = float(np.mean(recalls))
        result["rare_class_recall"] = dict(zip(map(str, rare_classes), recalls))
    bins = tfloss.reliability_diagram(metrics["ece"], draw=False)
    filled = bins["counts"] > 0
    result["reliability"] = {
        "confidence": bins["confidence"][filled].tolist(),
        "accuracy": bins["accuracy"][filled].tolist(),
        "count": [int(round(c)) for c in bins["counts"][filled]],
    }
    return result, metrics["ece"]


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


def write(out_dir, rows, config, ece_metrics=None):
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
    plot(paths["comparison.png"], rows, config["top_k"], ece_metrics or {})
    return paths


def plot(path, rows, top_k, ece_metrics):
    """First panel: top-1 and top-k accuracy per loss. Then one reliability
    diagram per loss, drawn by ``tfloss.reliability_diagram``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    panels = 1 + len(ece_metrics)
    cols = min(panels, 4)
    nrows = -(-panels // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 4.0 * nrows), squeeze=False)
    axes = axes.ravel()
    left = axes[0]
    names = [r["loss"] for r in rows]
    pos = np.arange(len(rows))
    for offset, key in ((-0.2, "top1_accuracy"), (0.2, f"top{top_k}_accuracy")):
        left.bar(pos + offset, [r[key] for r in rows], width=0.4, label=key.replace("_", " "))
    lowest = min(r["top1_accuracy"] for r in rows)
    left.set_ylim(max(0.0, lowest - 0.1), 1.06)  # headroom for the legend above the bars
    left.set_xticks(pos, names, rotation=30, fontsize="small")
    left.set_ylabel("test accuracy")
    left.legend(loc="upper center", ncol=2, fontsize="small")
    left.set_title("Accuracy per loss")
    for ax, (name, metric) in zip(axes[1:], ece_metrics.items()):
        tfloss.reliability_diagram(metric, ax=ax, title=name)
        ax.legend(loc="upper left", fontsize="x-small")
    for ax in axes[panels:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
