"""``kl_report(model)``: where the KL comes from, layer by layer.

KL(q || p) of a mean-field posterior is a sum of one non-negative term per
weight, so a network's KL grows with its parameter count: a KL of ~1000 next
to a cross-entropy of ~1 says little until it is divided by the number of
parameters (the ``kl_per_param`` column) and weighed with the schedule's
beta_t (see ``tfloss.bayes.schedules``).
"""

from tfloss.bayes import kl as kl_lib


def kl_rows(model, mc_samples=kl_lib.MC_SAMPLES):
    """One dict per KL layer: ``layer``, ``type``, ``params``, ``kl``, ``kl_per_param``."""
    _, parts = kl_lib.model_kl(model, mc_samples)
    rows = []
    for part in parts:
        params = kl_lib.parameter_count(part.layer)
        kl = float(part.kl)
        rows.append(
            {
                "layer": part.name,
                "type": type(part.layer).__name__,
                "params": params,
                "kl": kl,
                "kl_per_param": kl / params if params else float("nan"),
            }
        )
    return rows


def kl_report(model, mc_samples=kl_lib.MC_SAMPLES, print_fn=print):
    """Print (with ``print_fn``) and return the per-layer KL table as text.

    Columns: layer name, layer type, number of variational parameters
    (trainable weights), KL, KL per parameter; a last row gives the totals.
    """
    rows = kl_rows(model, mc_samples)
    total_params = sum(r["params"] for r in rows)
    total_kl = sum(r["kl"] for r in rows)
    columns = ("layer", "type", "params", "kl", "kl_per_param")
    body = [[r["layer"], r["type"], str(r["params"]), f"{r['kl']:.4g}", f"{r['kl_per_param']:.4g}"] for r in rows]
    per_param = total_kl / total_params if total_params else float("nan")
    body.append(["total", "", str(total_params), f"{total_kl:.4g}", f"{per_param:.4g}"])
    widths = [max(len(c), *(len(line[i]) for line in body)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in body]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
